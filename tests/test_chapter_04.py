"""Chapter 4, the LSTM forward: every number the page prints is right, its figures are drawn, and
the page keeps to the plan (label, title, length, figure metadata).

The truth for the parameter counts is the closed form 4 H (H + D) + 4 H per bias vector, and
PyTorch's own modules (sum of p.numel()); for the worked example it is the page's own printed
comparisons of the hand-stepped cell with lstm_ref and torch.nn.LSTM.
"""

from __future__ import annotations

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
    assert "third block, transposed, is our W_xc: True" in text
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
    assert "output[-1] equals h_n[0]: True" in text
    assert "carried state needs a gradient: False" in text
