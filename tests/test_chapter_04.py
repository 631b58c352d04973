"""Chapter 4, the LSTM forward: every number the page prints is right, its figures are drawn, and
the page keeps to the plan (label, title, length, figure metadata).

The truth for the parameter counts is the closed form 4 H (H + D) + 4 H per bias vector, and
PyTorch's own modules (sum of p.numel()); for the worked example it is the page's own printed
comparisons of the hand-stepped cell with lstm_ref and torch.nn.LSTM.
"""

from __future__ import annotations

import html
import re

import pytest
import torch
import yaml

import lstm_ref
from book_build import PLAN, ROOT

PAGE = "book/04_lstm_forward"
SOURCE = ROOT / f"{PAGE}.md"

# The Keras model of the chapter: Embedding(10000, 512) -> LSTM(1024) -> Dense(1), in closed form.
VOCAB, EMB, UNITS = 10_000, 512, 1024
EMBEDDING = VOCAB * EMB  # one 512-vector per word
LSTM_ONE_BIAS = 4 * UNITS * (UNITS + EMB) + 4 * UNITS  # four (D + H, H) layers, one bias each
DENSE = UNITS + 1
TOTAL = EMBEDDING + LSTM_ONE_BIAS + DENSE
FIGURES = ("fig-ch4-cell", "fig-ch4-cell-state", "fig-ch4-forget", "fig-ch4-input", "fig-ch4-candidate",
           "fig-ch4-update", "fig-ch4-output")


def _text(page_html: str) -> str:
    """What the page's code cells printed (not their source): stream outputs, tags removed, entities decoded."""
    streams = re.findall(r'<div class="output stream[^"]*"><div class="highlight"><pre>(.*?)</pre>', page_html,
                         flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", "", "".join(streams)))


def _number(text: str, pattern: str) -> float:
    match = re.search(pattern, text)
    assert match, f"the page does not print a line matching {pattern!r}"
    return float(match.group(1))


def _code_cells(source: str) -> list[tuple[dict, str]]:
    """(metadata, code) of every code cell of a MyST notebook."""
    cells = []
    for block in re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```$", source, flags=re.DOTALL | re.MULTILINE):
        meta = {}
        if block.startswith("---\n"):
            head, block = block[4:].split("\n---\n", 1)
            meta = yaml.safe_load(head)
        cells.append((meta, block))
    return cells


def _prose(source: str) -> str:
    body = source.split("\n---\n", 1)[1]  # drop the jupytext header
    body = re.sub(r"^```\{code-cell\}.*?^```$", " ", body, flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"^\$\$.*?^\$\$.*?$", " ", body, flags=re.DOTALL | re.MULTILINE)


def test_page_opens_with_its_label_and_title():
    label, title = PLAN[PAGE]
    assert re.search(rf"^\({re.escape(label)}\)=\n# {re.escape(title)}\n", SOURCE.read_text(), flags=re.MULTILINE)


def test_prose_is_between_1500_and_3000_words():
    words = len(re.findall(r"\S+", _prose(SOURCE.read_text())))
    assert 1500 <= words <= 3000, f"chapter 4 has {words} words of prose outside code and display math"


def test_every_figure_cell_has_a_caption_a_name_and_alt_text():
    named = {}
    for meta, _ in _code_cells(SOURCE.read_text()):
        mystnb = meta.get("mystnb", {})
        if "figure" in mystnb:
            figure, image = mystnb["figure"], mystnb.get("image", {})
            assert figure.get("caption", "").strip(), f"figure {figure.get('name')} has no caption"
            assert len(image.get("alt", "")) > 40, f"figure {figure.get('name')} has no real alt text"
            assert "hide-input" in meta.get("tags", []), f"the plotting code of {figure['name']} is not hidden"
            named[figure["name"]] = figure
    assert sorted(named) == sorted(FIGURES)


def test_two_bias_count_is_torch_nn_lstm_numel_and_keras_count_is_the_closed_form():
    torch_count = sum(p.numel() for p in torch.nn.LSTM(EMB, UNITS).parameters())
    assert lstm_ref.count_lstm_params(EMB, UNITS, biases=2) == torch_count == LSTM_ONE_BIAS + 4 * UNITS
    assert lstm_ref.count_lstm_params(EMB, UNITS) == LSTM_ONE_BIAS


@pytest.mark.slow
def test_page_prints_the_keras_model_counts_of_the_closed_form(book):
    text = _text(book.page(PAGE))
    for name, n in {"Embedding(10000, 512)": EMBEDDING, "LSTM(1024)": LSTM_ONE_BIAS, "Dense(1)": DENSE,
                    "total": TOTAL}.items():
        assert re.search(rf"{re.escape(name)}\s+{re.escape(f'{n:,}')}\n", text), f"the page does not print {name} {n:,}"
    assert f"{TOTAL:,}" == "11,416,577" and f"{LSTM_ONE_BIAS:,}" == "6,295,552"


@pytest.mark.slow
def test_page_prints_torch_two_bias_counts_equal_to_torch_modules(book):
    text = _text(book.page(PAGE))
    lstm = sum(p.numel() for p in torch.nn.LSTM(EMB, UNITS).parameters())
    embedding = sum(p.numel() for p in torch.nn.Embedding(VOCAB, EMB).parameters())
    linear = sum(p.numel() for p in torch.nn.Linear(UNITS, 1).parameters())
    assert re.search(rf"nn\.LSTM\(512, 1024\)\s+{lstm:,}\s+\(\+{lstm - LSTM_ONE_BIAS:,} vs Keras\)", text)
    assert re.search(rf"nn\.Embedding\(10000, 512\)\s+{embedding:,}\s+\(\+0 vs Keras\)", text)
    assert re.search(rf"nn\.Linear\(1024, 1\)\s+{linear:,}\s+\(\+0 vs Keras\)", text)
    assert f"count_lstm_params(512, 1024, biases=2) = {lstm:,}" in text


@pytest.mark.slow
def test_worked_example_by_hand_matches_lstm_ref_and_torch(book):
    text = _text(book.page(PAGE))
    assert "x_0 = [1. 0. 0.]  我" in text and "x_3 = [0. 0. 1.]  画" in text, "the one-hot inputs are not printed"
    assert len(re.findall(r"^t = \d  \S$", text, flags=re.MULTILINE)) == 4, "the gate table should have four steps"
    assert _number(text, r"lstm_ref vs by hand: max \|difference\| = (\S+)") < 1e-12
    assert _number(text, r"torch vs by hand: max \|difference\| = (\S+)") < 1e-10
    assert "third block, transposed, is our W_xc: True" in text
    assert re.search(r"D = 3, H = 5: 180 parameters", text) and 4 * 5 * (5 + 3) + 4 * 5 == 180


@pytest.mark.slow
def test_repeated_character_gives_a_different_hidden_state(book):
    text = _text(book.page(PAGE))
    assert "x_2 == x_3: True" in text
    assert _number(text, r"max \|h_3 - h_2\| = (\S+)") > 1e-3


@pytest.mark.slow
def test_hidden_state_is_bounded_and_cell_state_is_not(book):
    text = _text(book.page(PAGE))
    assert _number(text, r"largest \|c_t\| = ([\d.]+)") > 2.0
    assert _number(text, r"largest \|h_t\| = ([\d.]+)") < 1.0


@pytest.mark.slow
def test_carrying_the_state_between_chunks_equals_one_long_run(book):
    text = _text(book.page(PAGE))
    assert _number(text, r"state carried:\s+max \|diff\| = (\S+)") < 1e-12
    assert _number(text, r"zeros per chunk: max \|diff\| = (\S+)") > 1e-3
    assert "output[-1] equals h_n[0]: True" in text
    assert "carried state needs a gradient: False" in text


@pytest.mark.slow
def test_figures_render_as_images_with_alt_text_and_citations_resolve(book):
    page = book.page(PAGE)
    for name in FIGURES:
        figure = re.search(rf'<figure[^>]*id="{name}".*?</figure>', page, flags=re.DOTALL)
        assert figure, f"chapter 4 has no figure named {name}"
        assert re.search(r'<img[^>]*alt="[^"]{40,}"[^>]*src="[^"]+\.png"|<img[^>]*src="[^"]+\.png"[^>]*alt="[^"]{40,}"',
                         figure.group(0)), f"{name} has no rendered image with alt text"
    assert 'href="references.html#' in page, "the citations do not link to the bibliography"
