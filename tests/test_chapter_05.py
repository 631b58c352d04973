"""Chapter 5, backpropagation through the LSTM: the equations the page derives, the numbers it
prints and the claims it makes about them, each against an independent truth.

The truth is PyTorch autograd throughout: the step backward equations, written here in numpy as the
page writes them, against autograd of a one-step nn.LSTM; the per-lag gradient norms of the page's
measurement against Jacobians of nn.RNN / nn.LSTM (weights loaded from the same seeds) computed by
autograd. The tests that read the built page are marked slow; build this chapter alone with

    BOOK_PAGES=book/05_lstm_backward pytest tests/test_chapter_05.py
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
import torch

import lstm_ref
from book_build import ROOT
from chapter_pages import code_cells, number, printed
from lstm_ref.gradients import lag_gradient_norms
from lstm_ref.torch_interop import lstm_params_to_torch, rnn_params_to_torch

PAGE = "book/05_lstm_backward"
SOURCE = ROOT / f"{PAGE}.md"

# The measurement of the page: sizes, seeds and the lags its table prints.
T, N, D, H = 100, 8, 10, 32
DATA_SEED, RNN_SEED, LSTM_SEED = 5, 6, 7
TABLE_LAGS = (0, 10, 25, 50, 75, 99)
FORGET_BIASES = (0.0, 1.0, 3.0)
BIG_SCALE = 10  # large enough to explode, small enough that the forward is not chaotic
PRINTED = 5e-3  # relative precision of a number printed with %.2e (three significant digits)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Autograd through 100-step sequences is a long chain of tiny operations: on a shared machine,
    extra intra-op threads make it an order of magnitude slower, not faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------
# Reading the page.


# ---------------------------------------------------------------------------------------------
# The page's source.


def test_visible_code_cells_are_short():
    for meta, code in code_cells(SOURCE.read_text()):
        if "hide-input" not in meta.get("tags", []):
            lines = [line for line in code.splitlines() if line.strip()]
            assert len(lines) <= 20, f"a visible code cell has {len(lines)} lines:\n{code[:300]}"


# ---------------------------------------------------------------------------------------------
# The derivation, written here as the page writes it, against autograd.

def _chapter_step_backward(dh, dc, x, h_prev, c_prev, p):
    """Equations ch5-forward, ch5-do ... ch5-param-grads of the page, term by term, in numpy."""
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))
    a = {g: x @ p[f"W_x{g}"] + h_prev @ p[f"W_h{g}"] + p[f"b_{g}"] for g in "ifoc"}
    i, f, o, c_tilde = sig(a["i"]), sig(a["f"]), sig(a["o"]), np.tanh(a["c"])
    c = f * c_prev + i * c_tilde
    do = dh * np.tanh(c)  # ch5-do
    dc_t = dc + dh * o * (1 - np.tanh(c) ** 2)  # ch5-dc
    df, di, dct = dc_t * c_prev, dc_t * c_tilde, dc_t * i  # ch5-df, ch5-di, ch5-dctilde
    dc_prev = dc_t * f  # ch5-dcprev
    da = {"i": di * i * (1 - i), "f": df * f * (1 - f), "o": do * o * (1 - o), "c": dct * (1 - c_tilde**2)}  # ch5-da
    dx = sum(da[g] @ p[f"W_x{g}"].T for g in "ifoc")  # ch5-dx
    dh_prev = sum(da[g] @ p[f"W_h{g}"].T for g in "ifoc")  # ch5-dhprev (g_{t-1} = 0)
    grads = {}
    for g in "ifoc":  # ch5-param-grads, one term
        grads.update({f"W_x{g}": x.T @ da[g], f"W_h{g}": h_prev.T @ da[g], f"b_{g}": da[g].sum(axis=0)})
    return dx, dh_prev, dc_prev, grads, f


def _torch_step(x, h_prev, c_prev, params, dh, dc):
    """Autograd of sum(dh * h) + sum(dc * c) for one step of an nn.LSTM holding params."""
    module = lstm_params_to_torch(params, torch.nn.LSTM(x.shape[1], h_prev.shape[1]).double())
    xt, ht, ct = (torch.tensor(a[None], requires_grad=True) for a in (x, h_prev, c_prev))
    _, (h, c) = module(xt, (ht, ct))
    (h[0] * torch.from_numpy(dh)).sum().add((c[0] * torch.from_numpy(dc)).sum()).backward()
    H_ = h_prev.shape[1]
    grads = {}
    # nn.LSTM stacks the gate blocks as (i, f, g, o) and transposes; unstack them by hand here
    for n, g in enumerate("ifco"):
        rows = slice(n * H_, (n + 1) * H_)
        grads[f"W_x{g}"] = module.weight_ih_l0.grad[rows].numpy().T
        grads[f"W_h{g}"] = module.weight_hh_l0.grad[rows].numpy().T
        grads[f"b_{g}"] = module.bias_ih_l0.grad[rows].numpy()
    return xt.grad[0].numpy(), ht.grad[0].numpy(), ct.grad[0].numpy(), grads


@pytest.mark.parametrize("shape", [(3, 4, 5), (1, 1, 1), (4, 6, 2)])
def test_the_chapters_step_backward_equations_match_torch_autograd(shape, rng):
    n, d, h = shape
    params = {k: rng.standard_normal(s) * 0.7 for k, s in lstm_ref.lstm_param_shapes(d, h).items()}
    x, dh_ = rng.standard_normal((n, d)), rng.standard_normal((n, h))
    h_prev, c_prev, dc_ = (rng.standard_normal((n, h)) for _ in range(3))
    *ours, grads, _ = _chapter_step_backward(dh_, dc_, x, h_prev, c_prev, params)
    *theirs, torch_grads = _torch_step(x, h_prev, c_prev, params, dh_, dc_)
    for name, a, b in zip(("dx", "dh_prev", "dc_prev"), ours, theirs):
        assert np.abs(a - b).max() < 1e-12, f"{name} of the chapter's equations differs from autograd, shape {shape}"
    for key in params:
        assert np.abs(grads[key] - torch_grads[key]).max() < 1e-12, f"d{key} differs from autograd, shape {shape}"


def test_along_the_cell_state_alone_the_jacobian_is_diag_f(rng):
    """ch5-dcprev: with h_{t-1} and x_t held fixed, d c_t / d c_{t-1} = diag(f_t), for every sequence."""
    n, d, h = 2, 3, 4
    params = lstm_ref.init_lstm_params(d, h, rng, forget_bias=1.0)
    x, h_prev, c_prev = rng.standard_normal((n, d)), rng.standard_normal((n, h)), rng.standard_normal((n, h))
    module = lstm_params_to_torch(params, torch.nn.LSTM(d, h).double())
    cell = lambda c: module(torch.from_numpy(x[None]), (torch.from_numpy(h_prev[None]), c[None]))[1][1][0]
    J = torch.autograd.functional.jacobian(cell, torch.from_numpy(c_prev)).numpy()  # (n, h, n, h)
    f = _chapter_step_backward(np.zeros((n, h)), np.zeros((n, h)), x, h_prev, c_prev, params)[-1]
    for s in range(n):
        assert np.abs(J[s, :, s, :] - np.diag(f[s])).max() < 1e-14
    assert np.abs(J[0, :, 1, :]).max() == 0.0, "sequences of a batch must not interact"


# ---------------------------------------------------------------------------------------------
# The measurement, recomputed with torch autograd.

def _data():
    rng = np.random.default_rng(DATA_SEED)
    xs = rng.standard_normal((T, N, D))
    lead_in = rng.standard_normal((100, N, D))
    return xs, lead_in


def _lstm_params(b_f, scale=1.0):
    params = lstm_ref.init_lstm_params(D, H, np.random.default_rng(LSTM_SEED), forget_bias=b_f)
    for g in "ifoc":
        params[f"W_h{g}"] = scale * params[f"W_h{g}"]
    return params


def _rnn_params():
    return lstm_ref.init_rnn_params(D, H, np.random.default_rng(RNN_SEED))


def _torch_lag_norms(module, xs, lead_in):
    """(T, N) by lag: ||d h_{T-1}[n] / d x_{T-1-k}[n]||_F by autograd, after the lead-in from zero states."""
    with torch.no_grad():
        _, state = module(torch.from_numpy(lead_in))  # nn.RNN / nn.LSTM start from zeros
    x = torch.from_numpy(xs).requires_grad_()
    out, _ = module(x, state)  # (T, N, H)
    rows = [torch.autograd.grad(out[-1, :, j].sum(), x, retain_graph=True)[0] for j in range(H)]
    J = torch.stack(rows, dim=2)  # (T, N, H, D): row j of every sample's Jacobian
    return J.pow(2).sum(dim=(2, 3)).sqrt().flip(0).numpy()


@functools.lru_cache(maxsize=None)
def _torch_medians(family: str, b_f: float = 1.0, scale: float = 1.0) -> np.ndarray:
    """The page's median curve for one network, (T,), computed by torch autograd."""
    xs, lead_in = _data()
    if family == "rnn":
        module = rnn_params_to_torch(_rnn_params(), torch.nn.RNN(D, H).double())
    else:
        module = lstm_params_to_torch(_lstm_params(b_f, scale), torch.nn.LSTM(D, H).double())
    return np.median(_torch_lag_norms(module, xs, lead_in), axis=1)


def _torch_mean_forget_gate(b_f: float) -> float:
    """The mean of f_t over the measured window, from nn.LSTM's hidden states."""
    xs, lead_in = _data()
    params = _lstm_params(b_f)
    module = lstm_params_to_torch(params, torch.nn.LSTM(D, H).double())
    with torch.no_grad():
        _, (h0, c0) = module(torch.from_numpy(lead_in))
        out, _ = module(torch.from_numpy(xs), (h0, c0))
    h_prev = torch.cat([h0, out[:-1]]).numpy()  # (T, N, H)
    return float((1 / (1 + np.exp(-(xs @ params["W_xf"] + h_prev @ params["W_hf"] + params["b_f"])))).mean())


@pytest.mark.parametrize("family", ["rnn", "lstm"])
def test_lstm_ref_lag_norms_match_torch_autograd(family):
    xs, lead_in = _data()
    zeros = np.zeros((N, H))
    if family == "rnn":
        params = _rnn_params()
        state = lstm_ref.rnn_forward(lead_in, zeros, params)[0][-1]
        module = rnn_params_to_torch(params, torch.nn.RNN(D, H).double())
    else:
        params = _lstm_params(1.0)
        hs, cs, _ = lstm_ref.lstm_forward(lead_in, zeros, zeros, params)
        state = (hs[-1], cs[-1])
        module = lstm_params_to_torch(params, torch.nn.LSTM(D, H).double())
    ours = lag_gradient_norms(family, xs, state, params)
    theirs = _torch_lag_norms(module, xs, lead_in)
    lags = list(TABLE_LAGS)
    rel = np.abs(ours[lags] - theirs[lags]) / theirs[lags]
    assert rel.max() < 1e-8, f"{family}: lstm_ref's lag norms differ from autograd by {rel.max():.1e} (relative)"


def test_a_larger_forget_bias_gives_larger_long_lag_norms_by_autograd():
    at_50 = [_torch_medians("lstm", b_f)[50] for b_f in FORGET_BIASES]
    assert at_50[0] < at_50[1] < at_50[2], f"norms at lag 50 for b_f = {FORGET_BIASES}: {at_50}"
    assert _torch_medians("rnn")[50] < at_50[0]


# ---------------------------------------------------------------------------------------------
# What the page prints, and what it claims.

@pytest.mark.slow
def test_printed_finite_difference_errors_are_small(book):
    errors = re.findall(r"rel_error\(d(\w+)\) = (\S+)", printed(book.page(PAGE)))
    names = [name for name, _ in errors]
    assert names[:3] == ["x", "h_prev", "c_prev"] and names[4:7] == ["xs", "h0", "c0"] and len(names) == 8, names
    for name, value in errors:
        assert float(value) < 1e-7, f"the page prints rel_error(d{name}) = {value}"


@pytest.mark.slow
def test_printed_torch_differences_are_at_rounding_level(book):
    diffs = re.findall(r"max \|lstm_ref - torch\| in (\w+) = (\S+)", printed(book.page(PAGE)))
    assert [name for name, _ in diffs] == ["dxs", "dh0", "dc0", "grads"], diffs
    for name, value in diffs:
        assert float(value) < 1e-10, f"the page prints a torch difference of {value} in {name}"


@pytest.mark.slow
def test_page_shows_the_carousel_exactly(book):
    assert "with dh = 0, dc_prev == dc * f exactly: True" in printed(book.page(PAGE))


@pytest.mark.slow
def test_printed_lag_table_equals_torch_autograd(book):
    text = printed(book.page(PAGE))
    rows = re.findall(r"^\s*(\d+)\s+(\d\.\d\de[+-]\d+)\s+(\d\.\d\de[+-]\d+)$", text, flags=re.MULTILINE)
    assert [int(k) for k, _, _ in rows] == list(TABLE_LAGS), f"the lag table has rows {rows}"
    rnn, lstm = _torch_medians("rnn"), _torch_medians("lstm", 1.0)
    for k, r, l in rows:
        k = int(k)
        assert float(r) == pytest.approx(rnn[k], rel=PRINTED), f"RNN at lag {k}: page {r}, autograd {rnn[k]:.3e}"
        assert float(l) == pytest.approx(lstm[k], rel=PRINTED), f"LSTM at lag {k}: page {l}, autograd {lstm[k]:.3e}"
    radius = np.max(np.abs(np.linalg.eigvals(_rnn_params()["W_hh"])))
    assert number(text, r"spectral radius of the RNN's W_hh: (\S+)") == pytest.approx(radius, abs=0.005)
    assert radius < 1, "the page says the RNN's spectral radius is well below one"


@pytest.mark.slow
def test_lstm_keeps_the_gradient_at_lag_50_orders_of_magnitude_above_the_rnn(book):
    ratio = number(printed(book.page(PAGE)), r"at lag 50 the LSTM's norm is (\S+) times the RNN's")
    truth = _torch_medians("lstm", 1.0)[50] / _torch_medians("rnn")[50]
    assert ratio == pytest.approx(truth, rel=PRINTED) and truth > 1e6, f"page {ratio}, autograd {truth:.2e}"
    # "there the two networks are of the same order": lag 0
    assert 0.1 < _torch_medians("lstm", 1.0)[0] / _torch_medians("rnn")[0] < 10


@pytest.mark.slow
def test_forget_bias_sweep_is_printed_and_ordered_as_the_page_says(book):
    text = printed(book.page(PAGE))
    lines = re.findall(r"b_f = (\d): mean f = (\S+), norm at lag 50 = (\S+), factor per step = (\S+)", text)
    assert [float(b) for b, *_ in lines] == list(FORGET_BIASES), lines
    mean_f = [float(f) for _, f, _, _ in lines]
    at_50 = [float(v) for _, _, v, _ in lines]
    per_step = [float(p) for *_, p in lines]
    for b_f, printed_f, printed_50, printed_step in zip(FORGET_BIASES, mean_f, at_50, per_step):
        assert printed_f == pytest.approx(_torch_mean_forget_gate(b_f), abs=0.0006)
        curve = _torch_medians("lstm", b_f)
        assert printed_50 == pytest.approx(curve[50], rel=PRINTED), f"b_f = {b_f}: page {printed_50}, autograd {curve[50]:.3e}"
        assert printed_step == pytest.approx((curve[80] / curve[20]) ** (1 / 60), abs=0.001)
    assert mean_f == sorted(mean_f) and at_50 == sorted(at_50) and per_step == sorted(per_step)
    # "the measured factor per step follows the mean forget gate and lies above it"
    assert all(p > f for p, f in zip(per_step, mean_f)), f"factor per step {per_step} vs mean f {mean_f}"
    # "with b_f = 0 the LSTM forgets almost as fast as the RNN"; "with b_f = 3 ... nearly flat"
    assert at_50[0] < 1e-6 * at_50[2] and per_step[2] > 0.98


@pytest.mark.slow
def test_large_recurrent_weights_make_the_lstm_gradient_explode(book):
    text = printed(book.page(PAGE))
    after = text.split("large recurrent weights, norm at\n")[1]
    shown = dict(re.findall(r"^  lag +(\d+): (\d\.\d\de[+-]\d+)$", after, flags=re.MULTILINE))
    assert sorted(int(k) for k in shown) == [0, 25, 50, 75, 99], shown
    curve = _torch_medians("lstm", 1.0, float(BIG_SCALE))
    for k, value in shown.items():
        assert float(value) == pytest.approx(curve[int(k)], rel=PRINTED), f"lag {k}: page {value}, autograd {curve[int(k)]:.2e}"
    assert curve[99] > 1e3 * curve[0], "the page says the gradient 99 steps back is over a thousand times the lag-0 one"
    assert np.all(np.diff(curve[[0, 25, 50, 75, 99]]) > 0), "the page says the norm grows with the lag"
