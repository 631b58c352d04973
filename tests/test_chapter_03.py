"""Chapter 3, vanishing and exploding gradients: its numbers and curves, checked independently.

The fast tests recompute the chapter's claims without the chapter's code: 0.9**100 and 1.1**100 in
exact decimal arithmetic, the chapter's lag-norm curves by torch autograd through an RNN typed out
again here (with the recurrent matrix rescaled by numpy's own eigenvalues, not lstm_ref's), and the
linear-regime curves as norms of matrix powers. The slow tests read the built page: the printed
numbers must agree with those recomputations, the figures must be rendered, and every claim the prose
makes about the clipping runs (six seeds, held-out accuracy) must hold in the printed table, with a margin.
"""

from __future__ import annotations

import html
import json
import re
from decimal import Decimal, localcontext
from pathlib import Path

import numpy as np
import pytest
import torch
from bs4 import BeautifulSoup

from lstm_ref.gradients import rnn_lag_jacobian_norms

ROOT = Path(__file__).resolve().parent.parent
PAGE = "book/03_vanishing_exploding"

# The chapter's experiment, restated: the seed, the sizes, the draws in order, the radii, the lags printed.
SEED, T, N, D, H = 1, 60, 1, 4, 32
RHOS = (0.5, 1.0, 1.5, 3.0)
PRINTED_LAGS = (10, 30, 59)


def chapter_setup():
    """W_base (H, H), W_xh (D, H) and the strong inputs (T, N, D), drawn exactly as the chapter draws them."""
    rng = np.random.default_rng(SEED)
    W_base = rng.standard_normal((H, H)) / np.sqrt(H)
    W_xh = rng.standard_normal((D, H))
    strong = rng.standard_normal((T, N, D))
    return W_base, W_xh, {"none": np.zeros((T, N, D)), "strong": strong}


def with_radius(W, rho):
    """W rescaled to spectral radius rho, from numpy's eigenvalues."""
    return W * (rho / np.max(np.abs(np.linalg.eigvals(W))))


def torch_lag_norms(xs, W_xh, W_hh, lags=None):
    """||d h_{T-1} / d h_{T-1-k}||_2 (N = 1) by autograd through h_t = tanh(x_t W_xh + h_{t-1} W_hh), h0 = 0.

    lags: the k to compute (default all, 0..T-1). Returns (norms for those lags, mean of 1 - h**2 over all states).
    """
    W_xh_t, W_hh_t = torch.tensor(W_xh), torch.tensor(W_hh)
    txs = torch.tensor(xs)  # (T, 1, D)
    states = [torch.zeros(1, W_hh.shape[0], dtype=torch.float64)]
    with torch.no_grad():
        for x in txs:
            states.append(torch.tanh(x @ W_xh_t + states[-1] @ W_hh_t))
    T = len(xs)

    def from_step(start):
        def unrolled(h):  # the state entering step `start`, run to the end
            for x in txs[start:]:
                h = torch.tanh(x @ W_xh_t + h @ W_hh_t)
            return h
        return unrolled

    norms = []
    for k in range(T) if lags is None else lags:
        start = T - k  # h_{T-1-k} = states[T - k] enters step T - k
        J = torch.autograd.functional.jacobian(from_step(start), states[start], vectorize=True)  # (1, H, 1, H)
        J = J[0, :, 0, :]  # (H, H), rows: units of h_{T-1}
        norms.append(torch.linalg.matrix_norm(J, ord=2).item())
    slopes = torch.stack([1 - s**2 for s in states[1:]]).mean().item()
    return np.array(norms), slopes


# ---------------------------------------------------------------------------------------------
# Fast: the claims, recomputed.


def test_the_scalar_numbers_agree_with_exact_decimal_arithmetic():
    with localcontext() as ctx:
        ctx.prec = 60
        exact_shrink, exact_grow = Decimal("0.9") ** 100, Decimal("1.1") ** 100
    # 4 and 7 significant digits of the exact values, and the floats the page formats agree with them
    assert exact_shrink.scaleb(5).quantize(Decimal("0.001")) == Decimal("2.656") and f"{0.9**100:.4g}" == "2.656e-05"
    assert exact_grow.quantize(Decimal("0.01")) == Decimal("13780.61") and f"{1.1**100:.7g}" == "13780.61"
    # The quoted 0.000017 is not a rounding of the true value: it is off by more than half.
    assert float(exact_shrink) / 0.000017 > 1.5


@pytest.mark.parametrize("rho", [1.5, 3.0])
def test_the_strong_input_curves_match_torch_autograd(rho):
    W_base, W_xh, inputs = chapter_setup()
    W_hh = with_radius(W_base, rho)
    want, _ = torch_lag_norms(inputs["strong"], W_xh, W_hh)
    params = {"W_xh": W_xh, "W_hh": W_hh, "b_h": np.zeros(H)}
    got = rnn_lag_jacobian_norms(inputs["strong"], np.zeros((N, H)), params)[:, 0]
    np.testing.assert_allclose(got, want, rtol=1e-9, err_msg=f"rho = {rho}")


@pytest.mark.parametrize("rho", RHOS)
def test_without_input_the_lag_norms_are_norms_of_matrix_powers(rho):
    """x = 0 and h0 = 0 keep every state at 0, so each Jacobian is W_hh^T and lag k gives ||W_hh^k||_2."""
    W_base, W_xh, inputs = chapter_setup()
    W_hh = with_radius(W_base, rho)
    params = {"W_xh": W_xh, "W_hh": W_hh, "b_h": np.zeros(H)}
    got = rnn_lag_jacobian_norms(inputs["none"], np.zeros((N, H)), params)[:, 0]
    want = [np.linalg.norm(np.linalg.matrix_power(W_hh, k), 2) for k in range(T)]
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # and the growth rate per step approaches the radius (Gelfand), as the chapter says
    assert abs(want[-1] ** (1 / (T - 1)) / rho - 1) < 0.05


def test_the_chapter_names_the_last_state_h_T_minus_1_and_keeps_g_for_the_loss_gradient():
    """Steps run over 0..T-1 (chapter 2's notation): no h_T, and g_s is the loss's own gradient, as in chapter 2."""
    source = (ROOT / f"{PAGE}.md").read_text()
    assert not re.search(r"h_T\b|h_\{T\}", source), "the last state is h_{T-1}"
    assert "g_s = \\partial L_s / \\partial h_s" in source


def test_the_exercise_box_names_the_verdicts_the_notebook_returns():
    source = (ROOT / f"{PAGE}.md").read_text()
    box = source[source.index("```{admonition} Exercise 3"):]
    notebook = json.loads((ROOT / "solutions/ex03_vanishing_exploding/ex03_vanishing_exploding.ipynb").read_text())
    code = "".join("".join(c["source"]) for c in notebook["cells"]
                   if c["metadata"].get("nbgrader", {}).get("grade_id") == "predict_regime")
    returned = set(re.findall(r'regime = "(\w+)"', code))
    assert returned == {"vanish", "explode", "unclear"}, returned
    assert set(re.findall(r'`"(\w+)"`', box)) == returned, "the box must name exactly the strings the notebook returns"


# ---------------------------------------------------------------------------------------------
# Slow: the built page.


def _text(book) -> str:
    soup = BeautifulSoup(book.page(PAGE), "html.parser")
    return html.unescape((soup.find("article") or soup).get_text())


@pytest.mark.slow
def test_page_prints_the_computed_powers_and_flags_the_quoted_value(book):
    text = _text(book)
    shrink, grow = f"{0.9**100:.4g}", f"{1.1**100:.7g}"
    assert (shrink, grow) == ("2.656e-05", "13780.61")
    assert f"0.9**100 = {shrink}" in text and f"1.1**100 = {grow}" in text, "the page must print both powers"
    assert re.search(r"as 0\.000017\. That value is wrong", text), "the page must call the quoted 0.000017 wrong"
    factor = re.search(r"too small by a factor of ([\d.]+)", text)
    assert factor and float(factor.group(1)) == round(0.9**100 / 0.000017, 2)


@pytest.mark.slow
def test_page_lag_norm_table_matches_torch_autograd(book):
    text = _text(book)
    rows = re.findall(r"^(none|strong)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", text, re.MULTILINE)
    assert len(rows) == 2 * len(RHOS), f"expected {2 * len(RHOS)} table rows, found {len(rows)}"
    W_base, W_xh, inputs = chapter_setup()
    for name, rho, spectral_norm, slope, *at_lags in rows:
        W_hh = with_radius(W_base, float(rho))
        norms, mean_slope = torch_lag_norms(inputs[name], W_xh, W_hh, PRINTED_LAGS)
        where = f"{name} inputs, rho = {rho}"
        assert float(spectral_norm) == pytest.approx(np.linalg.norm(W_hh, 2), abs=0.006), where
        assert float(slope) == pytest.approx(mean_slope, abs=6e-4), where
        for k, printed, norm in zip(PRINTED_LAGS, at_lags, norms):
            assert float(printed) == pytest.approx(norm, rel=6e-3), f"{where}, lag {k}"
    # the chapter's reading of the table
    printed = {(n, float(r)): float(v[-1]) for n, r, *v in rows}
    assert printed["none", 0.5] < 1e-10 and printed["none", 1.5] > 1e6, "linear regime: vanish below 1, explode above"
    assert printed["strong", 1.5] < 1e-6 < 1e3 < printed["strong", 3.0], "saturation: 1.5 vanishes, 3 still explodes"
    assert 1.5 < printed["none", 1.0] < 10, "at rho = 1 without input the norm neither grows nor decays, well above 1"
    assert all(float(v[-1]) < 1 for n, r, *v in rows if n == "strong" and float(r) < 3), "strong inputs: only 3 explodes"


@pytest.mark.slow
def test_relu_and_orthogonal_rows_say_what_the_prose_says(book):
    text = _text(book)
    relu = {float(r): tuple(map(float, v)) for r, *v in re.findall(
        r"^rho = ([\d.]+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", text, re.MULTILINE)}
    assert set(relu) == set(RHOS), f"ReLU rows not found: {relu}"
    # "Below rho = 1 the gradient still vanishes, and at rho = 1 too"
    assert relu[0.5][2] < 1e-20 and relu[1.0][2] < 1e-6
    # "slowly at 1.5, explosively at 3, and its forward pass grows with it"
    assert 1 < relu[1.5][2] < 1e4 and relu[3.0][2] > 1e10
    assert relu[3.0][3] > 1e10 > relu[1.5][3] > relu[0.5][3]
    # where the tanh network vanished (strong inputs, rho = 1.5, recomputed by autograd)
    W_base, W_xh, inputs = chapter_setup()
    tanh_norms, _ = torch_lag_norms(inputs["strong"], W_xh, with_radius(W_base, 1.5), [59])
    assert tanh_norms[0] < 1e-6 < relu[1.5][2]
    orth = dict(re.findall(r"^\s*(none|strong)\s+inputs: lag-59 norm (\S+)$", text, re.MULTILINE))
    assert float(orth["none"]) == pytest.approx(1.0, rel=1e-6), "an orthogonal matrix preserves the norm without input"
    assert float(orth["strong"]) < 1e-6, "the tanh slopes shrink it once the inputs do anything"


@pytest.mark.slow
def test_page_reports_its_own_torch_cross_check(book):
    match = re.search(r"autograd vs lstm_ref, all 60 lags: largest relative difference (\S+)", _text(book))
    assert match and float(match.group(1)) < 1e-10


def _clipping_table(text: str) -> tuple[float, dict]:
    """The threshold and {(lag, mode): {"accuracy", "best", "norm", "step"}: per-seed arrays} the clipping cell prints."""
    c = float(re.search(r"threshold c = ([\d.]+)", text).group(1))
    rows = re.findall(r"^lag (\d+)\s+(no clipping|clipped at [\d.]+)\s+accuracy((?:[ \t]+\S+)+)[ \t]*\n"
                      r"\s*best accuracy((?:[ \t]+\S+)+)[ \t]*\n"
                      r"\s*largest norm((?:[ \t]+\S+)+)[ \t]*\n"
                      r"\s*largest step((?:[ \t]+\S+)+)[ \t]*$", text, re.MULTILINE)
    table = {}
    for lag, mode, *columns in rows:
        values = [np.array(col.split(), dtype=float) for col in columns]
        table[int(lag), mode.replace(f"clipped at {c:g}", "clipped")] = dict(zip(("accuracy", "best", "norm", "step"), values))
    return c, table


@pytest.mark.slow
def test_clipping_runs_show_what_the_prose_says(book):
    """Six seeds per setting, held-out accuracy: clipping rescues lag 5, nothing rescues lag 10."""
    text = _text(book)
    c, table = _clipping_table(text)
    assert set(table) == {(5, "no clipping"), (5, "clipped"), (10, "no clipping"), (10, "clipped")}, \
        f"clipping table not found or incomplete: {sorted(table)}"
    seeds = {len(v) for row in table.values() for v in row.values()}
    assert seeds == {6}, f"every setting must have six seeds, one value each: {seeds}"
    solved = 0.95
    for (lag, mode), row in table.items():
        count = re.search(rf"lag {lag}, {'no clipping' if mode == 'no clipping' else f'clipped at {c:g}'}: "
                          rf"(\d+) of 6 runs solve the task", text)
        assert count and int(count.group(1)) == int(np.sum(row["accuracy"] >= solved)), f"lag {lag}, {mode}: count"
        assert np.all(row["best"] >= row["accuracy"] - 1e-9), "the best accuracy cannot be below the final one"
    clip5, raw5 = table[5, "clipped"], table[5, "no clipping"]
    # "At lag 5, every clipped run solves the task" (with a margin above the 0.95 line)
    assert np.all(clip5["accuracy"] >= 0.97), f"a clipped lag-5 run did not solve the task: {clip5['accuracy']}"
    # "without clipping the outcome depends on the seed ... the others end close to chance"
    failed = raw5["accuracy"] < solved
    assert failed.any(), f"every unclipped lag-5 run solved the task: the prose says some fail {raw5['accuracy']}"
    assert np.all(raw5["accuracy"][failed] < 0.8), f"failing unclipped runs should end near chance: {raw5['accuracy']}"
    # "the unclipped runs met gradients far above the threshold"; "a step is as long as its gradient"
    assert raw5["norm"].max() > 100 * c and np.allclose(raw5["step"], raw5["norm"], rtol=1e-2)
    # "The clipped runs meet the same walls ... but none of their steps is longer than lr * c"
    for lag in (5, 10):
        assert np.all(table[lag, "clipped"]["norm"] > c), "every clipped run should have met a gradient above c"
        assert np.all(table[lag, "clipped"]["step"] <= c * (1 + 1e-6)), "a clipped step exceeded the threshold"
    # "no run learns [lag 10], clipped or not: every held-out accuracy stays far from 0.95, most within a few
    # points of chance"
    lag10 = np.concatenate([table[10, m]["accuracy"] for m in ("no clipping", "clipped")])
    assert lag10.max() < 0.75 and np.median(lag10) < 0.56, f"lag 10 accuracies: {lag10}"
    # the largest unclipped gradient is the one the by-norm / by-value comparison uses
    by_norm = re.search(r"clip by norm\s*: norm (\S+) -> (\S+), cosine with the original (\S+)", text)
    by_value = re.search(r"clip by value\s*: norm (\S+) -> (\S+), cosine with the original (\S+)", text)
    assert by_norm and float(by_norm.group(1)) == pytest.approx(raw5["norm"].max(), rel=5e-3)
    assert float(by_norm.group(2)) == pytest.approx(c, rel=1e-3) and float(by_norm.group(3)) == 1.0
    assert by_value and float(by_value.group(3)) < 0.99, "clipping by value should turn the largest gradient"


@pytest.mark.slow
def test_the_explosion_at_radius_3_is_explained_by_what_the_page_prints(book):
    """The prose: rho x mean slope is below 1 for both 1.5 and 3, a quarter to a third of the slopes exceed 1/rho,
    and the matrix's spectral norm is almost twice its radius."""
    text = _text(book)
    lines = dict((float(rho), (float(prod), float(share))) for rho, prod, share in re.findall(
        r"strong inputs, rho = ([\d.]+): rho x mean tanh' = ([\d.]+), share of slopes above 1/rho = ([\d.]+)", text))
    assert set(lines) == {1.5, 3.0}, f"lines not found: {lines}"
    for rho, (prod, share) in lines.items():
        assert prod < 0.9, f"rho = {rho}: the prose says the average alone would predict vanishing ({prod})"
        assert 0.2 <= share <= 0.4, f"rho = {rho}: the prose says about a quarter to a third ({share})"
    W_base, _, _ = chapter_setup()
    ratio = np.linalg.norm(with_radius(W_base, 3.0), 2) / 3.0
    assert 1.6 < ratio < 2.0, f"'its spectral norm is almost twice its radius': {ratio:.3f}"


@pytest.mark.slow
def test_jordan_block_powers_follow_k_rho_to_the_k(book):
    text = _text(book)
    rows = re.findall(r"\|\|W\^(\d+)\|\|_2 = (\S+), 10 k 0\.5\^\(k-1\) = (\S+), 0\.5\^k = (\S+)", text)
    assert [int(r[0]) for r in rows] == [1, 5, 20, 60], rows
    norms = []
    for k, norm, off, diag in rows:
        norm, off, diag = float(norm.rstrip(",")), float(off.rstrip(",")), float(diag)
        # the 2x2 block [[d, b], [0, d]] has b <= ||.||_2 <= b + d
        assert off * (1 - 5e-3) <= norm <= (off + diag) * (1 + 5e-3), f"k = {k}"
        norms.append(norm)
    # "it first stretches vectors a lot and shrinks them only later": above 1 while rho^k is already small
    assert norms[0] > 1 and norms[1] > 1 > norms[2] > norms[3], f"first stretches, later shrinks: {norms}"
    assert norms[1] > 50 * 0.5**5, "at k = 5 the norm should be far above rho^k"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fig-ch3-powers", "fig-ch3-lag-norms", "fig-ch3-clipping"])
def test_figures_are_rendered_with_alt_text(book, name):
    soup = BeautifulSoup(book.page(PAGE), "html.parser")
    figure = soup.find("figure", id=name)
    assert figure is not None, f"no figure named {name}"
    img = figure.find("img")
    assert img is not None and img["src"].endswith(".png"), f"{name} has no rendered image"
    assert len(img.get("alt", "")) > 40, f"{name} needs alt text"
    assert figure.find("figcaption"), f"{name} has no caption"


@pytest.mark.slow
def test_page_opens_with_its_label_cites_the_analyses_and_links_the_exercise(book):
    page = book.page(PAGE)
    text = _text(book)
    assert "3. Vanishing and exploding gradients" in text
    assert "Towards Data Science" in text, "the article that prints 0.000017 must be cited"
    assert "Towards Data Science" in book.page("book/references"), "the quoted article must be in the bibliography"
    assert "Residual connections" in text, "residual connections are the feedforward remedy that carries over"
    assert 'href="references.html#' in page, "the citations must link to the bibliography"
    for author in ("Bengio", "Pascanu"):
        assert author in text, f"{author} is not cited"
    for label in ("ch3-step-jacobian", "ch3-jacobian-product", "ch3-norm-bound", "ch3-spectral-radius"):
        assert f'id="equation-{label}"' in page, f"equation {label} is missing"
    assert "exercises/ex03_vanishing_exploding/ex03_vanishing_exploding.ipynb" in page
