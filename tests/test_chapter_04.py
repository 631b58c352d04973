"""Chapter 4, the LSTM forward: every number the page prints is right, its figures are drawn, and
the page keeps to the plan (label, title, length, figure metadata).

The truth for the parameter counts is the closed form 4 H (H + D) + 4 H per bias vector, and
PyTorch's own modules (sum of p.numel()); for the worked example it is the page's own printed
comparisons of the hand-stepped cell with lstm_ref and torch.nn.LSTM.
"""

from __future__ import annotations

import math
import re

import pytest
import torch

import lstm_ref
from book_build import ROOT
from chapter_pages import number, printed

PAGE = "book/04_lstm_forward"
SOURCE = ROOT / f"{PAGE}.md"

# The Keras model of the chapter: Embedding(10000, 512) -> LSTM(1024) -> Dense(1), in closed form.
VOCAB, EMB, UNITS = 10_000, 512, 1024
EMBEDDING = VOCAB * EMB  # one 512-vector per word
LSTM_ONE_BIAS = 4 * UNITS * (UNITS + EMB) + 4 * UNITS  # four (D + H, H) layers, one bias each
DENSE = UNITS + 1
TOTAL = EMBEDDING + LSTM_ONE_BIAS + DENSE


def test_two_bias_count_is_torch_nn_lstm_numel_and_keras_count_is_the_closed_form():
    torch_count = sum(p.numel() for p in torch.nn.LSTM(EMB, UNITS).parameters())
    assert lstm_ref.count_lstm_params(EMB, UNITS, biases=2) == torch_count == LSTM_ONE_BIAS + 4 * UNITS
    assert lstm_ref.count_lstm_params(EMB, UNITS) == LSTM_ONE_BIAS


@pytest.mark.slow
def test_page_prints_the_keras_model_counts_of_the_closed_form(book):
    text = printed(book.page(PAGE))
    for name, n in {"Embedding(10000, 512)": EMBEDDING, "LSTM(1024)": LSTM_ONE_BIAS, "Dense(1)": DENSE,
                    "total": TOTAL}.items():
        assert re.search(rf"{re.escape(name)}\s+{re.escape(f'{n:,}')}\n", text), f"the page does not print {name} {n:,}"
    assert f"{TOTAL:,}" == "11,416,577" and f"{LSTM_ONE_BIAS:,}" == "6,295,552"


@pytest.mark.slow
def test_page_prints_torch_two_bias_counts_equal_to_torch_modules(book):
    text = printed(book.page(PAGE))
    lstm = sum(p.numel() for p in torch.nn.LSTM(EMB, UNITS).parameters())
    embedding = sum(p.numel() for p in torch.nn.Embedding(VOCAB, EMB).parameters())
    linear = sum(p.numel() for p in torch.nn.Linear(UNITS, 1).parameters())
    assert re.search(rf"nn\.LSTM\(512, 1024\)\s+{lstm:,}\s+\(\+{lstm - LSTM_ONE_BIAS:,} vs Keras\)", text)
    assert re.search(rf"nn\.Embedding\(10000, 512\)\s+{embedding:,}\s+\(\+0 vs Keras\)", text)
    assert re.search(rf"nn\.Linear\(1024, 1\)\s+{linear:,}\s+\(\+0 vs Keras\)", text)
    assert f"count_lstm_params(512, 1024, biases=2) = {lstm:,}" in text


@pytest.mark.slow
def test_worked_example_by_hand_matches_lstm_ref_and_torch(book):
    text = printed(book.page(PAGE))
    assert "x_0 = [1. 0. 0.]  我" in text and "x_3 = [0. 0. 1.]  画" in text, "the one-hot inputs are not printed"
    assert len(re.findall(r"^t = \d  \S$", text, flags=re.MULTILINE)) == 4, "the gate table should have four steps"
    assert number(text, r"lstm_ref vs by hand: max \|difference\| = (\S+)") < 1e-12
    assert number(text, r"torch vs by hand: max \|difference\| = (\S+)") < 1e-10
    assert "torch's blocks are our gates: i, f, c, o" in text, "PyTorch's third block should be our W_xc"
    assert re.search(r"D = 3, H = 5: 180 parameters", text) and 4 * 5 * (5 + 3) + 4 * 5 == 180


@pytest.mark.slow
def test_repeated_character_gives_a_different_hidden_state(book):
    text = printed(book.page(PAGE))
    assert "x_2 == x_3: True" in text
    assert number(text, r"max \|h_3 - h_2\| = (\S+)") > 1e-3


@pytest.mark.slow
def test_hidden_state_is_bounded_and_cell_state_is_not(book):
    text = printed(book.page(PAGE))
    assert number(text, r"largest \|c_t\| = ([\d.]+)") > 2.0
    assert number(text, r"largest \|h_t\| = ([\d.]+)") < 1.0


@pytest.mark.slow
def test_carrying_the_state_between_chunks_equals_one_long_run(book):
    text = printed(book.page(PAGE))
    assert number(text, r"state carried:\s+max \|diff\| = (\S+)") < 1e-12
    assert number(text, r"zeros per chunk: max \|diff\| = (\S+)") > 1e-3
    assert "output[-1] equals h_n[-1]: True" in text
    assert "carried state needs a gradient: False" in text


# ---------------------------------------------------------------------------------------------
# Notation: gate order, concatenation order, the initial state.

def _gate_table(source: str) -> dict[str, list[str]]:
    """The table of section ch4-gate-order: for each column, the gate letters in stacking order, plus the rows' gates."""
    section = source.split("(ch4-gate-order)=", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    orders = {"gate": [row[0] for row in rows]}
    for column, name in enumerate(header):
        if column < 2 or name == "other names":
            continue
        placed = [re.fullmatch(r"`(\w)`, (\d)", row[column]) for row in rows]
        assert all(placed), f"column {name!r} should hold `letter`, position in every row: {[r[column] for r in rows]}"
        orders[name] = [m.group(1) for m in sorted(placed, key=lambda m: int(m.group(2)))]
        orders[name + " by row"] = [m.group(1) for m in placed]
    return orders


def test_gate_order_table_matches_lstm_ref_and_torch_interop():
    from lstm_ref.lstm import _STACK, GATES
    from lstm_ref.families import FAMILIES

    table = _gate_table(SOURCE.read_text())
    assert table["gate"] == ["input gate", "forget gate", "output gate", "candidate"], table["gate"]
    ours = table["`lstm_ref` (`GATES`)"]
    assert tuple(ours) == GATES and table["`lstm_ref` (`GATES`) by row"] == ["i", "f", "o", "c"]
    torch_order = table["PyTorch `nn.LSTM` (rows of `weight_ih_l0`)"]
    assert torch_order == ["i", "f", "g", "o"], torch_order
    assert tuple("c" if g == "g" else g for g in torch_order) == FAMILIES["lstm"].torch_gates, (
        "PyTorch's order, as torch_interop reads it")
    assert table["Keras `LSTM` (columns of `kernel`)"] == ["i", "f", "c", "o"]
    # "Inside lstm_ref.lstm_forward the blocks are stacked in yet another order, (o, i, f, c)"
    assert _STACK == ("o", "i", "f", "c") and "(o, i, f, c)" in SOURCE.read_text()


def test_stacked_equation_follows_gates_and_puts_the_input_first_as_the_code_does():
    from lstm_ref.lstm import GATES

    source = SOURCE.read_text()
    equation = re.search(r"^\$\$\n([^$]*)\n\$\$ \(ch4-stacked\)$", source, flags=re.MULTILINE).group(1)
    left, right = equation.split("=", 1)
    assert re.findall(r"a_(\w)", left) == list(GATES), left
    for kind in ("x", "h"):
        assert re.findall(rf"W_{{{kind}(\w)}}", right) == list(GATES), f"the W_{kind}* blocks of ch4-stacked"
    assert re.findall(r"b_(\w)", right) == list(GATES)
    assert re.search(r"\[\\,x_t \\;\\, h_\{t-1\}\\,\]", right), "the concatenation in ch4-stacked should be [x_t, h_{t-1}]"
    # the figure (drawn by book/lstm_diagram.py) and its captions use the same order; [h_{t-1}, x_t] appears
    # once, where the prose names it
    assert (ROOT / "book" / "lstm_diagram.py").read_text().count(r"$[x_t,\ h_{t-1}]$ feeds all four boxes") == 1
    reversed_order = re.findall(r"\[h_\{t-1\},\s*(?:\\ )?x_t\]", source)
    assert len(reversed_order) == 1 and "Many texts write $[h_{t-1}, x_t]$ instead" in source, reversed_order


def test_initial_state_is_h_minus_1_as_in_chapters_0_2_and_5():
    source = SOURCE.read_text()
    assert not re.search(r"h_0,\s*c_0", source), "the initial states are h_{-1}, c_{-1} (code: h0, c0)"
    assert "# h_{-1}, c_{-1}: (N, H)" in source


@pytest.mark.slow
def test_page_prints_torchs_block_order_as_the_table_gives_it(book):
    text = printed(book.page(PAGE))
    table = _gate_table(SOURCE.read_text())
    torch_order = ["c" if g == "g" else g for g in table["PyTorch `nn.LSTM` (rows of `weight_ih_l0`)"]]
    assert f"torch's blocks are our gates: {', '.join(torch_order)}" in text
    assert re.search(rf"lstm_ref\.GATES:\s+{', '.join(table['`lstm_ref` (`GATES`)'])}$", text, flags=re.MULTILINE)


@pytest.mark.slow
def test_a_forget_bias_of_1_keeps_orders_of_magnitude_more_after_20_steps(book):
    """"With b_f = 0 that is one half ... The difference compounds over time", from the printed lines."""
    lines = re.findall(r"^b_f = (\S+): f = (\S+), c kept after 20 steps: (\S+)$", printed(book.page(PAGE)), flags=re.MULTILINE)
    assert [float(b) for b, _, _ in lines] == [0.0, 1.0], lines
    kept = []
    for b_f, f, after_20 in lines:
        assert float(f) == pytest.approx(1 / (1 + math.exp(-float(b_f))), abs=5e-4)
        assert float(after_20) == pytest.approx(float(f) ** 20, rel=0.06)
        kept.append(float(after_20))
    assert float(lines[0][1]) == 0.5, "the page says f is one half for b_f = 0"
    assert kept[1] > 100 * kept[0], f"kept after 20 steps: {kept}"
