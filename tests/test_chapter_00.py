"""Chapter 0, how to use the course: the notation it fixes, the numbers its cells print and the claims
it makes about them, and the promise the exercise notebook makes about its visible tests.

The truth is numpy's own float limits, the closed forms of the two derivatives, and the shapes the
notation table gives. The tests that read the built page are marked slow; build this chapter alone with

    BOOK_PAGES=book/00_how_to_use pytest tests/test_chapter_00.py
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from book_build import ROOT
from chapter_pages import number, printed

PAGE = "book/00_how_to_use"
SOURCE = ROOT / f"{PAGE}.md"
NOTEBOOK = ROOT / "solutions" / "ex00_how_to_use" / "ex00_how_to_use.ipynb"


# ---------------------------------------------------------------------------------------------
# The source: the notation table.

def test_notation_table_settles_the_initial_state_as_h_minus_1_passed_as_h0():
    source = SOURCE.read_text()
    row = re.search(r"^\| \$h_\{-1\}\$, \$c_\{-1\}\$ \| `h0`, `c0` \| \$\(N, H\)\$ \|(.*)\|$", source, flags=re.MULTILINE)
    assert row, "the notation table needs a row for the initial states h_{-1}, c_{-1} (code h0, c0)"
    assert "`h0` is $h_{-1}$, not $h_0$" in row.group(1)
    assert re.search(r"`hs\[t\]` is \$h_t\$", source), "the table should say that hs[t] is h_t"
    for page in ("02_rnn_bptt", "04_lstm_forward", "05_lstm_backward", "06_lstm_in_practice"):
        text = (ROOT / "book" / f"{page}.md").read_text()
        assert "h_{-1}" in text, f"{page} should call the initial state h_{{-1}}"
        assert not re.search(r"h_0,\s*c_0|\(h_0, c_0\)", text), f"{page} calls the initial states h_0, c_0"


# ---------------------------------------------------------------------------------------------
# The exercise: what the intro promises about the visible tests.

def _cells():
    return [(c["metadata"].get("nbgrader", {}), "".join(c["source"])) for c in json.loads(NOTEBOOK.read_text())["cells"]]


def test_every_visible_test_ends_by_printing_the_line_the_intro_promises():
    cells = _cells()
    intro = cells[0][1]
    quoted = re.search(r"A visible test that passes prints a line such as\s+`([^`]+)`", intro)
    assert quoted, "the intro should say what a passing visible test prints"
    lines = []
    for meta, code in cells:
        if meta.get("grade") and meta["grade_id"].endswith("_visible"):
            last = code.rstrip().splitlines()[-1]
            match = re.fullmatch(r'print\("([^"]+: visible tests? passed)"\)', last)
            assert match, f"{meta['grade_id']} should end by printing '<function>: visible test passed'; ends with {last!r}"
            lines.append(match.group(1))
        elif meta.get("grade") and meta["grade_id"].endswith("_hidden"):
            assert "print(" not in code, f"{meta['grade_id']} prints: hidden tests should be silent"
    assert quoted.group(1) in lines, f"the intro quotes {quoted.group(1)!r}; the tests print {lines}"
    assert "prints nothing" not in intro


# ---------------------------------------------------------------------------------------------
# The built page.

@pytest.mark.slow
def test_printed_shapes_are_the_notation_tables(book):
    text = printed(book.page(PAGE))
    T, N, D, H = map(int, re.search(r"^T, N, D, H = (\d+), (\d+), (\d+), (\d+)", SOURCE.read_text(), re.MULTILINE).groups())
    assert len({T, N, D, H}) == 4, "the sizes should all differ, so that a swapped axis shows"
    for line in (f"W_xi: {(D, H)}", f"W_hi: {(H, H)}", f"b_i: {(H,)}",
                 f"xs: {(T, N, D)} -> hs: {(T, N, H)}, cs: {(T, N, H)}, float64"):
        assert line in text, f"the page does not print {line!r}"


@pytest.mark.slow
def test_both_derivative_bounds_are_reached_at_zero(book):
    """"Both bounds are reached only at z = 0": 1/4 for the sigmoid, 1 for tanh, found on the grid."""
    text = printed(book.page(PAGE))
    assert number(text, r"max sigma'\(z\) = (\S+) at z = [+-]0\.0\n") == 0.25
    assert number(text, r"max tanh'\(z\)  = (\S+) at z = [+-]0\.0\n") == 1.0
    assert "tanh(z) == 2 sigma(2z) - 1 on the grid: True" in text


@pytest.mark.slow
def test_printed_overflow_limits_are_log_of_the_largest_float(book):
    text = printed(book.page(PAGE))
    for dtype in (np.float64, np.float32):
        limit = number(text, rf"{np.dtype(dtype).name}: exp\(u\) overflows for u > (\S+)\n")
        assert limit == pytest.approx(np.log(np.finfo(dtype).max), abs=0.005)
        with np.errstate(over="ignore"):
            assert np.isinf(np.exp(np.array(limit + 0.01, dtype=dtype)))
        assert np.isfinite(np.exp(np.array(limit - 0.01, dtype=dtype)))


@pytest.mark.slow
def test_naive_sigmoid_warns_and_the_stable_one_does_not(book):
    text = printed(book.page(PAGE))
    assert "naive sigmoid:   [0.  0.5 1. ]\n  RuntimeWarning: overflow encountered in exp" in text
    assert "lstm_ref.sigmoid: [0.  0.5 1. ] float64" in text and "float32:  [0.  0.5 1. ] float32" in text
    assert number(text, r"warnings raised:\s+(\d+)") == 0
    assert "torch.sigmoid: [0.  0.5 1. ]" in text


@pytest.mark.slow
def test_finite_difference_check_separates_right_from_wrong_in_float64_only(book):
    """"The correct derivative agrees with the finite difference to many more digits than the buggy one", and
    in float32 "the check can no longer tell a correct derivative from a slightly wrong one"."""
    text = printed(book.page(PAGE))
    right = number(text, r"1 - tanh\^2 vs numeric: (\S+)\n")
    wrong = number(text, r"1 - tanh   vs numeric: (\S+)  <- a bug")
    right32 = number(text, r"1 - tanh\^2 vs numeric, float32: (\S+)")
    assert right < 1e-8 and wrong > 1e6 * right, f"float64: right {right}, buggy {wrong}"
    # in float32 the correct derivative's error is thousands of times the float64 one, at the size a
    # derivative that is wrong in the third or fourth digit would show
    assert right32 > 1e3 * right and right32 > 1e-5, f"float32: {right32}"


@pytest.mark.slow
def test_torch_agrees_and_the_dtype_trap_is_shown(book):
    text = printed(book.page(PAGE))
    assert number(text, r"autograd vs tanh_grad: (\S+)") < 1e-14
    assert "torch.tensor([0.5]): torch.float32" in text and "torch.from_numpy(x): torch.float64" in text
