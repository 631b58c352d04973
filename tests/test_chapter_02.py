"""Chapter 2, recurrent networks and BPTT: the page's figures, the numbers it prints, and the
claims behind them, recomputed here independently with PyTorch autograd.

The tests that read the built page are marked slow and use the session-wide `book` fixture;
build this chapter alone with

    BOOK_PAGES=book/02_rnn_bptt pytest tests/test_chapter_02.py
"""

from __future__ import annotations

import ast
import html
import json
import re

import numpy as np
import pytest
import torch

import lstm_ref
from book_build import ROOT
import chapter_pages
from chapter_pages import graded_points
from lstm_ref.gradients import scale_to_spectral_radius, spectral_radius

PAGE = "book/02_rnn_bptt"
SOURCE = ROOT / f"{PAGE}.md"
NOTEBOOK = ROOT / "solutions" / "ex02_rnn_bptt" / "ex02_rnn_bptt.ipynb"
FLOAT = r"([0-9]\.[0-9]+e[+-][0-9]+)"


def _text(page_html: str) -> str:
    """The page's visible text, tags stripped and entities decoded (code outputs keep their lines)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page_html))


def _figure(page_html: str, name: str) -> str:
    match = re.search(rf'<figure[^>]*id="{name}".*?</figure>', page_html, flags=re.DOTALL)
    assert match, f"the page has no figure named {name}"
    return match.group(0)


def _prose(source: str) -> str:
    """The chapter without its front matter, code cells and display math."""
    text = re.sub(r"\A---\n.*?\n---\n", "", source, flags=re.DOTALL)
    text = re.sub(r"```\{code-cell\}.*?```", "", text, flags=re.DOTALL)
    return re.sub(r"\$\$.*?\$\$", "", text, flags=re.DOTALL)


# ---------------------------------------------------------------------------------------------
# The truncation experiment of the chapter, rebuilt here: the same seeds and sizes as the
# chapter's setup cell, but the gradients come from torch autograd with h.detach().

SEED, T, N, D, H = 2, 30, 4, 3, 16
RADII = (0.5, 1.0, 1.5)


def _truncation_setup():
    """xs (T, N, D), h0 (N, H), g_last (N, H) and one parameter dict per spectral radius."""
    rng = np.random.default_rng(SEED)
    xs = rng.standard_normal((T, N, D))
    h0 = np.tanh(rng.standard_normal((N, H)))
    g_last = rng.standard_normal((N, H))
    base = lstm_ref.init_rnn_params(D, H, rng)
    nets = {rho: {**base, "W_hh": scale_to_spectral_radius(base["W_hh"], rho)} for rho in RADII}
    return xs, h0, g_last, nets


def _torch_truncated(xs, h0, params, g_last, k):
    """Autograd gradients of sum(g_last * h_{T-1}), the state detached before the last k steps.

    Returns dxs (T, N, D) and {"W_xh", "W_hh", "b_h"} as numpy arrays.
    """
    leaves = {name: torch.tensor(value, requires_grad=True) for name, value in params.items()}
    xs_t = torch.tensor(xs, requires_grad=True)
    h = torch.tensor(h0)
    for t in range(len(xs)):
        if t == len(xs) - k:
            h = h.detach()  # the window starts here: no gradient reaches further back
        h = torch.tanh(xs_t[t] @ leaves["W_xh"] + h @ leaves["W_hh"] + leaves["b_h"])
    (h * torch.tensor(g_last)).sum().backward()
    return xs_t.grad.numpy(), {name: leaf.grad.numpy() for name, leaf in leaves.items()}


def _lstm_ref_truncated(xs, h0, params, g_last, k):
    """The same gradients from lstm_ref: full forward, then BPTT over the last k steps only."""
    hs, _ = lstm_ref.rnn_forward(xs, h0, params)
    start = len(xs) - k
    _, cache = lstm_ref.rnn_forward(xs[start:], h0 if start == 0 else hs[start - 1], params)
    dhs = np.zeros((k, *h0.shape))
    dhs[-1] = g_last
    dxs_window, _, grads = lstm_ref.rnn_backward(dhs, cache)
    dxs = np.zeros_like(xs)
    dxs[start:] = dxs_window
    return dxs, grads


def test_truncation_setup_has_the_spectral_radii_the_chapter_names():
    _, _, _, nets = _truncation_setup()
    for rho, params in nets.items():
        radius = np.max(np.abs(np.linalg.eigvals(params["W_hh"])))
        assert radius == pytest.approx(rho, rel=1e-10), f"W_hh scaled to {rho} has spectral radius {radius}"
        assert spectral_radius(params["W_hh"]) == pytest.approx(radius, rel=1e-10)


def test_truncated_bptt_with_lstm_ref_matches_torch_autograd_with_detach():
    xs, h0, g_last, nets = _truncation_setup()
    for rho, params in nets.items():
        for k in range(1, T + 1):
            dxs, grads = _lstm_ref_truncated(xs, h0, params, g_last, k)
            dxs_t, grads_t = _torch_truncated(xs, h0, params, g_last, k)
            assert lstm_ref.rel_error(dxs, dxs_t) < 1e-12, f"rho = {rho}, k = {k}: dxs differ from torch"
            for name in grads:
                err = lstm_ref.rel_error(grads[name], grads_t[name])
                assert err < 1e-12, f"rho = {rho}, k = {k}: d{name} differs from torch (rel_error {err:.1e})"


def test_truncated_gradient_equals_the_full_one_only_when_the_window_covers_the_sequence():
    xs, h0, g_last, nets = _truncation_setup()
    for rho, params in nets.items():
        hs = torch.tensor(lstm_ref.rnn_forward(xs, h0, params)[0])
        leaves = {name: torch.tensor(value, requires_grad=True) for name, value in params.items()}
        h = torch.tensor(h0)
        for t in range(T):  # full BPTT by autograd, no detach anywhere
            h = torch.tanh(torch.tensor(xs[t]) @ leaves["W_xh"] + h @ leaves["W_hh"] + leaves["b_h"])
        assert torch.allclose(h, hs[-1], rtol=0, atol=1e-14)
        (h * torch.tensor(g_last)).sum().backward()
        full = leaves["W_hh"].grad.numpy()
        for k in range(1, T + 1):
            dxs, grads = _lstm_ref_truncated(xs, h0, params, g_last, k)
            err = lstm_ref.rel_error(grads["W_hh"], full)
            if k == T:
                assert err < 1e-13, f"rho = {rho}: truncation at k = T should be full BPTT; rel_error {err:.1e}"
            else:
                # far above the ~1e-15 at which lstm_ref and torch agree on the same quantity
                assert err > 1e-12, f"rho = {rho}, k = {k}: the truncated dW_hh equals the full one"
            assert not dxs[: T - k].any(), f"rho = {rho}, k = {k}: inputs before the window got a gradient"
            assert np.all(np.abs(dxs[T - k :]).sum(axis=(1, 2)) > 0), f"rho = {rho}, k = {k}: a zero inside the window"


def test_shared_weight_gradient_is_the_sum_of_the_per_step_terms_h_prev_T_da():
    """Equations ch2-shared-sum and ch2-dWhh: give every step its own copy of W_hh in torch."""
    rng = np.random.default_rng(7)
    Ts, Ns, Ds, Hs = 6, 3, 4, 5
    params = lstm_ref.init_rnn_params(Ds, Hs, rng)
    xs, h0 = rng.standard_normal((Ts, Ns, Ds)), rng.standard_normal((Ns, Hs))
    dhs = rng.standard_normal((Ts, Ns, Hs))
    copies = [torch.tensor(params["W_hh"], requires_grad=True) for _ in range(Ts)]
    W_xh, b_h = torch.tensor(params["W_xh"]), torch.tensor(params["b_h"])
    h, h_prevs, pre, loss = torch.tensor(h0), [], [], 0.0
    for t in range(Ts):
        h_prevs.append(h.detach().numpy().copy())
        a = torch.tensor(xs[t]) @ W_xh + h @ copies[t] + b_h  # (N, H)
        a.retain_grad()
        pre.append(a)
        h = torch.tanh(a)
        loss = loss + (h * torch.tensor(dhs[t])).sum()  # L = sum_t L_t
    loss.backward()

    _, cache = lstm_ref.rnn_forward(xs, h0, params)
    _, _, grads = lstm_ref.rnn_backward(dhs, cache)
    per_copy = [c.grad.numpy() for c in copies]
    err = lstm_ref.rel_error(sum(per_copy), grads["W_hh"])
    assert err < 1e-13, f"dW_hh is not the sum of the per-copy gradients (rel_error {err:.1e})"
    for t in range(Ts):
        term = h_prevs[t].T @ pre[t].grad.numpy()  # h_{t-1}^T da_t, (H, H)
        assert lstm_ref.rel_error(per_copy[t], term) < 1e-13, f"step {t}: copy gradient is not h_(t-1)^T da_t"
    assert lstm_ref.rel_error(per_copy[0], per_copy[-1]) > 1e-3, "the per-step terms should differ"


# ---------------------------------------------------------------------------------------------
# The source: length, labels, and the exercise box against the solution notebook.


def test_chapter_opens_with_its_label_and_has_1500_to_3000_words_of_prose():
    source = SOURCE.read_text()
    assert re.search(r"^\(ch-rnn-bptt\)=\n# 2\. Recurrent networks and backpropagation through time$",
                     source, flags=re.MULTILINE)
    words = len(re.sub(r"\$[^$]*\$", "M", _prose(source)).split())  # inline math counts as one word
    assert 1500 <= words <= 3000, f"chapter 2 has {words} words of prose"


def test_equation_labels_carry_the_chapter_prefix_and_every_eq_reference_resolves():
    source = SOURCE.read_text()
    labels = re.findall(r"^\$\$ \(([^)]+)\)$", source, flags=re.MULTILINE)
    assert labels, "no labelled equations"
    assert all(label.startswith("ch2-") for label in labels), labels
    assert len(set(labels)) == len(labels), "an equation label is used twice"
    for needed in ("ch2-recurrence", "ch2-dh", "ch2-da", "ch2-dWxh", "ch2-dWhh", "ch2-db", "ch2-dx",
                   "ch2-dhprev", "ch2-shared-sum"):
        assert needed in labels, f"equation {needed} is missing"
    unresolved = set(re.findall(r"\{eq\}`([^`]+)`", source)) - set(labels)
    assert not unresolved, f"{{eq}} references to equations this page does not define: {unresolved}"


def test_exercise_box_lists_the_notebooks_functions_with_their_points():
    box = SOURCE.read_text().split("## Exercise", 1)[1]
    points, _ = graded_points(json.loads(NOTEBOOK.read_text()))
    functions = [f for f in points if f != "written"]
    assert len(functions) == 4, points
    for function in functions:
        assert re.search(rf"`{function}\([^`]*\)`:.*?\({points[function]} points\)", box, flags=re.DOTALL), (
            f"the exercise box should list {function} with {points[function]} points"
        )
    assert f"graded by hand ({points['written']} points)" in box


# ---------------------------------------------------------------------------------------------
# The built page.


@pytest.mark.slow
def test_page_has_the_unrolled_diagram_and_the_truncation_figure_with_images_and_alt_text(book):
    page = book.page(PAGE)
    for name in ("fig-ch2-unrolled", "fig-ch2-truncation"):
        figure = _figure(page, name)
        img = re.search(r'<img[^>]*src="[^"]+\.png"[^>]*>', figure)
        assert img, f"the {name} figure has no rendered image"
        alt = re.search(r'alt="([^"]*)"', img.group(0))
        assert alt and len(alt.group(1).split()) >= 20, f"the {name} image lacks a descriptive alt text"
        assert re.search(r"<figcaption", figure), f"the {name} figure has no caption"
    assert "same arrays in every tanh box" in _figure(page, "fig-ch2-unrolled")


@pytest.mark.slow
def test_gradient_checks_printed_on_the_page_are_small(book):
    text = _text(book.page(PAGE))
    rows = dict(re.findall(rf"^(xs|h0|W_xh|W_hh|b_h)\s+\([0-9, ]+\)\s+{FLOAT}$", text, flags=re.MULTILINE))
    assert set(rows) == {"xs", "h0", "W_xh", "W_hh", "b_h"}, f"finite-difference table not found: {rows}"
    for name, value in rows.items():
        assert float(value) < 1e-7, f"finite-difference rel_error of d{name} is {value}"
    directional = re.search(rf"directional rel_error {FLOAT}", text)
    assert directional and float(directional.group(1)) < 1e-7, "directional check missing or too large"
    torch_diff = re.search(rf"max \|lstm_ref - torch\| over hs and all gradients: {FLOAT}", text)
    assert torch_diff and float(torch_diff.group(1)) < 1e-12, "torch comparison missing or too large"
    assert "weights survive the round trip: True" in text
    assert "hs[1] is one step from hs[0]: True" in text


@pytest.mark.slow
def test_truncation_table_on_the_page_matches_torch_autograd(book):
    text = _text(book.page(PAGE))
    table = text.split("rel. error of the truncated dW_hh", 1)[1]
    rows = re.findall(rf"^\s*(\d+)\s+{FLOAT}\s+{FLOAT}\s+{FLOAT}\s*$", table, flags=re.MULTILINE)
    assert [int(r[0]) for r in rows] == [1, 5, 10, 20, T - 1, T], f"unexpected table rows: {rows}"
    xs, h0, g_last, nets = _truncation_setup()
    for row in rows:
        k = int(row[0])
        for printed, (rho, params) in zip(row[1:], nets.items()):
            full = _torch_truncated(xs, h0, params, g_last, T)[1]["W_hh"]
            truncated = _torch_truncated(xs, h0, params, g_last, k)[1]["W_hh"]
            expected = lstm_ref.rel_error(truncated, full)
            assert float(printed) == pytest.approx(expected, rel=6e-3, abs=1e-300), (
                f"rho = {rho}, k = {k}: the page prints {printed}, torch gives {expected:.3e}"
            )
    assert "k = 10: every dx_t with t < T - k is exactly zero: True" in text


# ---------------------------------------------------------------------------------------------
# The claims the page makes about its printed numbers.


def _bptt(xs, h0, params, dhs, bug=None):
    """BPTT as the page derives it (ch2-dh ... ch2-db), with one of the mistakes the page names as `bug`:
    "no_transpose" (W_hh instead of W_hh^T in ch2-dhprev), "no_slope" (1 - h^2 forgotten in ch2-da),
    "last_step_only" (dW_hh not summed over time). Returns {"xs", "h0", "W_xh", "W_hh", "b_h"}."""
    hs = lstm_ref.rnn_forward(xs, h0, params)[0]
    h_prevs = np.concatenate([h0[None], hs[:-1]])
    grads = {"xs": np.zeros_like(xs), **{k: np.zeros_like(v) for k, v in params.items()}}
    back = np.zeros_like(h0)
    for t in reversed(range(len(xs))):
        dh = dhs[t] + back  # ch2-dh
        da = dh if bug == "no_slope" else dh * (1 - hs[t] ** 2)  # ch2-da
        grads["xs"][t] = da @ params["W_xh"].T  # ch2-dx
        grads["W_xh"] += xs[t].T @ da
        term = h_prevs[t].T @ da
        grads["W_hh"] = term if (bug == "last_step_only" and t == len(xs) - 1) else (
            grads["W_hh"] if bug == "last_step_only" else grads["W_hh"] + term)
        grads["b_h"] += da.sum(axis=0)
        back = da @ (params["W_hh"] if bug == "no_transpose" else params["W_hh"].T)  # ch2-dhprev
    grads["h0"] = back
    return grads


@pytest.mark.slow
def test_each_mistake_the_page_names_gives_errors_orders_of_magnitude_above_the_printed_ones(book):
    """"A missing transpose, a forgotten 1 - h^2 or a parameter gradient not summed over time would give an
    error many orders of magnitude larger": on the page's own case (seed 0, T, N, D, H = 4, 3, 5, 6)."""
    text = _text(book.page(PAGE))
    rows = dict(re.findall(rf"^(xs|h0|W_xh|W_hh|b_h)\s+\([0-9, ]+\)\s+{FLOAT}$", text, flags=re.MULTILINE))
    worst_printed = max(float(v) for v in rows.values())
    rng = np.random.default_rng(0)
    params = lstm_ref.init_rnn_params(5, 6, rng)
    xs = rng.standard_normal((4, 3, 5))
    h0 = 0.5 * rng.standard_normal((3, 6))
    dhs = rng.standard_normal((4, 3, 6))
    point = {"xs": xs, "h0": h0, **params}

    def numeric(name):
        def f(value):
            a = {**point, name: value}
            return lstm_ref.rnn_forward(a["xs"], a["h0"], {k: a[k] for k in params})[0]
        return lstm_ref.gradcheck.numerical_gradient(f, point[name], df=dhs)

    truth = {name: numeric(name) for name in point}
    right = _bptt(xs, h0, params, dhs)
    assert max(lstm_ref.rel_error(right[n], truth[n]) for n in point) < 1e-8, "the test's own BPTT is wrong"
    for bug in ("no_transpose", "no_slope", "last_step_only"):
        wrong = _bptt(xs, h0, params, dhs, bug)
        err = max(lstm_ref.rel_error(wrong[n], truth[n]) for n in point)
        assert err > 1e4 * worst_printed, f"{bug}: worst rel_error {err:.1e}; the page prints up to {worst_printed}"


def _printed_truncation_table(text: str) -> dict[int, list[float]]:
    table = text.split("rel. error of the truncated dW_hh", 1)[1]
    rows = re.findall(rf"^\s*(\d+)\s+{FLOAT}\s+{FLOAT}\s+{FLOAT}\s*$", table, flags=re.MULTILINE)
    return {int(k): [float(v) for v in values] for k, *values in rows}


@pytest.mark.slow
def test_truncation_error_shrinks_as_the_window_grows_at_a_speed_set_by_rho(book):
    """"the error shrinks as the window grows, at a speed that depends on the recurrent matrix"; "with rho = 0.5
    ... a short window loses almost nothing"; "with rho = 1.5 ... any shorter window discards a real part"."""
    table = _printed_truncation_table(_text(book.page(PAGE)))
    ks = [k for k in table if k < T]
    for column, rho in enumerate(RADII):
        errors = [table[k][column] for k in ks]
        assert all(b < a for a, b in zip(errors, errors[1:])), f"rho = {rho}: errors {errors} do not shrink with k"
        assert table[T][column] == 0.0
    for k in ks:
        assert table[k] == sorted(table[k]), f"k = {k}: a larger rho should lose more: {table[k]}"
    assert table[10][0] < 1e-2, f"rho = 0.5 loses {table[10][0]} at k = 10"
    assert table[T - 1][2] > 1e-2, f"rho = 1.5 loses only {table[T - 1][2]} at k = T - 1"


@pytest.mark.slow
def test_printed_input_gradient_by_lag_fades_for_rho_half_and_stays_large_for_rho_1_5(book):
    """The printed norms of the full dL/dx_t at lags 0, 10, T-1 equal autograd's; for rho = 0.5 they fall by many
    orders of magnitude, for rho = 1.5 they stay within a factor of ten of the lag-0 value (the figure's right
    panel and alt text: "stays roughly level")."""
    text = _text(book.page(PAGE))
    rows = re.findall(r"^rho = (\S+)\s+(\d\.\de[+-]\d+)\s+(\d\.\de[+-]\d+)\s+(\d\.\de[+-]\d+)$", text, flags=re.MULTILINE)
    assert [float(r[0]) for r in rows] == list(RADII), rows
    assert re.search(rf"lag 0\s+lag 10\s+lag {T - 1}$", text, flags=re.MULTILINE)
    xs, h0, g_last, nets = _truncation_setup()
    norms = {}
    for (rho, *values), params in zip(rows, nets.values()):
        dxs = _torch_truncated(xs, h0, params, g_last, T)[0]
        by_lag = np.linalg.norm(dxs.reshape(T, -1), axis=1)[::-1]
        norms[float(rho)] = [float(v) for v in values]
        for value, k in zip(values, (0, 10, T - 1)):
            assert float(value) == pytest.approx(by_lag[k], rel=0.05), f"rho = {rho}, lag {k}: page {value}, torch {by_lag[k]:.2e}"
    assert norms[0.5][2] < 1e-6 * norms[0.5][0], norms[0.5]
    assert min(norms[1.5]) > 0.1 * norms[1.5][0], norms[1.5]


# ---------------------------------------------------------------------------------------------
# The worked example with numbers (D = H = N = 1, T = 3, L = sum_t (h_t - y_t)^2 / 2): every printed
# path term, the sums and the two routes into h_t, against torch autograd on the page's own constants.


def _scalar_example_constants() -> dict:
    """w_xh, w_hh, b, h_init, x, y as the page's worked example sets them (read from the source)."""
    source = SOURCE.read_text()
    weights = re.search(r"^w_xh, w_hh, b = ([^#\n]+)", source, flags=re.MULTILINE)
    assert weights, "the worked example's weights line `w_xh, w_hh, b = ...` is missing"
    found = dict(zip(("w_xh", "w_hh", "b"), ast.literal_eval(weights.group(1).strip())))
    for name in ("h_init", "x", "y"):
        match = re.search(rf"^{name} = ([^#\n]+)", source, flags=re.MULTILINE)
        assert match, f"the worked example's line `{name} = ...` is missing"
        found[name] = ast.literal_eval(match.group(1).strip())
    assert len(found["x"]) == len(found["y"]) == 3, "the worked example has T = 3"
    return found


def _scalar_truth(c: dict) -> dict:
    """By torch autograd: the states, the path terms dL_s/dw_hh^(t) (one copy of w_hh per step), the total
    dL/dw_hh, and dL/dh_t split into the local gradient and the rest."""
    T = len(c["x"])
    copies = [torch.tensor(c["w_hh"], dtype=torch.float64, requires_grad=True) for _ in range(T)]
    h, losses = torch.tensor(c["h_init"], dtype=torch.float64), []
    for t in range(T):
        h = torch.tanh(c["x"][t] * c["w_xh"] + h * copies[t] + c["b"])
        losses.append((h - c["y"][t]) ** 2 / 2)
    terms = {}
    for s in range(T):
        grads = torch.autograd.grad(losses[s], copies, retain_graph=True, allow_unused=True)
        for t, grad in enumerate(grads):
            if t > s:  # a later use of w_hh cannot reach an earlier loss
                assert grad is None or grad.item() == 0.0
            else:
                terms[s, t] = grad.item()
    # the real network: one shared w_hh, and the states kept to read dL/dh_t
    shared = torch.tensor(c["w_hh"], dtype=torch.float64, requires_grad=True)
    h, hs, loss = torch.tensor(c["h_init"], dtype=torch.float64), [], 0.0
    for t in range(T):
        h = torch.tanh(c["x"][t] * c["w_xh"] + h * shared + c["b"])
        h.retain_grad()
        hs.append(h)
        loss = loss + (h - c["y"][t]) ** 2 / 2
    loss.backward()
    total = shared.grad.item()
    assert abs(sum(terms.values()) - total) < 1e-14, "the path terms do not add up to dL/dw_hh (ch2-shared-sum)"
    local = [h.item() - y for h, y in zip(hs, c["y"])]
    return {"h": [h.item() for h in hs], "L": loss.item(), "terms": terms, "total": total,
            "dh": [h.grad.item() for h in hs], "local": local}


def test_worked_example_path_terms_are_products_of_the_chain_rule_factors():
    """The closed form the page prints per path (g_s, (1 - h_r^2) w_hh per step in between, (1 - h_t^2) h_{t-1}
    for the use) equals torch's gradient of L_s with respect to the copy of w_hh used at step t."""
    c = _scalar_example_constants()
    truth = _scalar_truth(c)
    h = truth["h"]
    h_prev = [c["h_init"], *h[:-1]]
    for (s, t), want in truth["terms"].items():
        through = np.prod([(1 - h[r] ** 2) * c["w_hh"] for r in range(t + 1, s + 1)])
        closed = (h[s] - c["y"][s]) * through * (1 - h[t] ** 2) * h_prev[t]
        assert closed == pytest.approx(want, rel=1e-12, abs=1e-15), f"path L_{s} <- step {t}"
    assert len(truth["terms"]) == 3 * 4 // 2


def _printed_worked_example(text: str) -> dict:
    rows = re.findall(r"^(L_(\d)(?: <- h_\d)+)\s+step (\d)\s+([+-]\d\.\d{8})$", text, flags=re.MULTILINE)
    sums = dict(re.findall(r"^(sum of the \d terms|finite difference|sum of the 3 terms h_\(t-1\) da_t):\s+"
                           r"([+-]\d\.\d{10})$", text, flags=re.MULTILINE))
    table = text.split("local g_t", 1)[1] if "local g_t" in text else ""
    routes = re.findall(r"^\s*(\d)\s+([+-]\d\.\d{6})\s+([+-]\d\.\d{6})\s+([+-]\d\.\d{6})$", table, flags=re.MULTILINE)
    states = re.search(r"^h_0, h_1, h_2 = ([+-]\S+), ([+-]\S+), ([+-]\S+)\s+L = (\S+)$", text, flags=re.MULTILINE)
    return {"rows": rows, "sums": sums, "routes": routes, "states": states}


@pytest.mark.slow
def test_worked_example_prints_every_path_term_and_their_sum_equals_the_finite_difference(book):
    printed = _printed_worked_example(chapter_pages.printed(book.page(PAGE)))
    c = _scalar_example_constants()
    truth = _scalar_truth(c)
    assert printed["states"], "the worked example's states line is missing"
    for value, want in zip(printed["states"].groups(), [*truth["h"], truth["L"]]):
        assert float(value) == pytest.approx(want, abs=1e-6)
    terms = {}
    for path, s, t, value in printed["rows"]:
        s, t = int(s), int(t)
        assert path == " <- ".join([f"L_{s}"] + [f"h_{r}" for r in range(s, t - 1, -1)]), f"wrong path name {path}"
        terms[s, t] = float(value)
    assert sorted(terms) == sorted(truth["terms"]), f"expected one line per path (s, t), t <= s: {sorted(terms)}"
    for key, value in terms.items():
        assert value == pytest.approx(truth["terms"][key], abs=1e-8), f"path L_{key[0]} <- step {key[1]}"
    sums = {name: float(value) for name, value in printed["sums"].items()}
    total, fd = sums.get(f"sum of the {len(terms)} terms"), sums.get("finite difference")
    assert total is not None and fd is not None, f"the total and the finite difference are missing: {sums}"
    assert total == pytest.approx(sum(terms.values()), abs=len(terms) * 5e-9 + 1e-12)  # terms rounded to 1e-8
    assert total == pytest.approx(truth["total"], abs=2e-10), "the printed total is not torch's dL/dw_hh"
    assert fd == pytest.approx(total, abs=1e-8), f"sum of the terms {total} vs finite difference {fd}"
    # "the longest path ... carries the smallest term; it passes through the most factors (1 - h_r^2) w_hh,
    # each below 1 here"
    assert min(terms, key=lambda key: abs(terms[key])) == (2, 0), terms
    assert all(0 < (1 - h**2) * c["w_hh"] < 1 for h in truth["h"])


@pytest.mark.slow
def test_worked_example_two_routes_into_h_t_match_torch(book):
    printed = _printed_worked_example(chapter_pages.printed(book.page(PAGE)))
    truth = _scalar_truth(_scalar_example_constants())
    assert [int(r[0]) for r in printed["routes"]] == [2, 1, 0], f"the dL/dh_t table: {printed['routes']}"
    for t, local, back, total in printed["routes"]:
        t = int(t)
        assert float(local) == pytest.approx(truth["local"][t], abs=2e-6), f"t = {t}: local gradient"
        assert float(back) == pytest.approx(truth["dh"][t] - truth["local"][t], abs=2e-6), f"t = {t}: from h_(t+1)"
        assert float(total) == pytest.approx(truth["dh"][t], abs=2e-6), f"t = {t}: dL/dh_t"
        assert float(total) == pytest.approx(float(local) + float(back), abs=3e-6)
    assert float(printed["routes"][0][2]) == 0.0, "nothing comes back to the last state"
    grouped = float(printed["sums"]["sum of the 3 terms h_(t-1) da_t"])
    assert grouped == pytest.approx(truth["total"], abs=2e-10), "the three grouped terms are not dL/dw_hh"


@pytest.mark.slow
def test_two_routes_figure_follows_equation_ch2_dh_and_its_alt_text_names_what_it_draws(book):
    page = book.page(PAGE)
    figure = _figure(page, "fig-ch2-two-routes")
    assert re.search(r'<img[^>]*src="[^"]+\.png"', figure), "the two-routes figure has no rendered image"
    assert 'href="#equation-ch2-dh"' in figure, "the caption should link to equation ch2-dh"
    assert page.index('id="equation-ch2-dh"') < page.index('id="fig-ch2-two-routes"'), "figure before its equation"
    assert 'href="#fig-ch2-two-routes"' in page, "the text should refer to the figure"
    source = SOURCE.read_text()
    (meta, code), = [(m, c) for m, c in chapter_pages.code_cells(source)
                     if m.get("mystnb", {}).get("figure", {}).get("name") == "fig-ch2-two-routes"]
    alt = meta["mystnb"]["image"]["alt"]
    # what the code draws and the alt text says: the three steps, the labels of the two routes and their sum
    for drawn, said in (('"t-1"', "t-1"), ('"t+1"', "t+1"), ("$g_t$", "g_t"), ("$dh_t$", "dh_t"),
                        ("$da_{t+1} W_{hh}^\\\\top$", "da_t+1 times W_hh transposed"), ('"+"', "plus node"),
                        ("VERMILLION", "second colour")):
        assert drawn in code, f"the figure code does not draw {drawn}"
        assert said in alt, f"the alt text does not mention {said!r}"
