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
import json
import re

import numpy as np
import pytest
import torch

import lstm_ref
from book_build import ROOT
from chapter_pages import code_cells, graded_points, number, printed
from lstm_ref.gradcheck import numerical_gradient, rel_error
from lstm_ref.gradients import lag_gradient_norms
from lstm_ref.torch_interop import lstm_params_to_torch, rnn_params_to_torch

PAGE = "book/05_lstm_backward"
SOURCE = ROOT / f"{PAGE}.md"
NOTEBOOK = ROOT / "solutions" / "ex05_lstm_backward" / "ex05_lstm_backward.ipynb"

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

E3 = r"(\d\.\d\de[+-]\d+)"  # a number printed with %.2e


def _lag_table(text: str) -> dict[int, tuple[float, float]]:
    """The printed table of median norms: lag -> (RNN, LSTM with b_f = 1)."""
    rows = re.findall(rf"^\s*(\d+)\s+{E3}\s+{E3}$", text, flags=re.MULTILINE)
    return {int(k): (float(r), float(l)) for k, r, l in rows}


def _sweep(text: str) -> dict:
    """The printed forget-bias sweep: the RNN's line, one line per b_f, and the two gaps at lag 50."""
    rnn = re.search(r"^simple RNN: norm at lag 50 = (\S+), factor per step = (\S+)$", text, flags=re.MULTILINE)
    assert rnn, "the page does not print the RNN's line of the forget-bias sweep"
    lines = re.findall(r"^b_f = (\d): mean f = (\S+), norm at lag 50 = (\S+), factor per step = (\S+)$", text,
                       flags=re.MULTILINE)
    gaps = re.search(r"^orders of magnitude at lag 50: RNN to b_f = 0: (\S+), b_f = 0 to b_f = 1: (\S+)$", text,
                     flags=re.MULTILINE)
    assert gaps, "the page does not print the gaps at lag 50 in orders of magnitude"
    return {"rnn_50": float(rnn.group(1)), "rnn_step": float(rnn.group(2)),
            "b_f": [float(b) for b, *_ in lines], "mean_f": [float(f) for _, f, _, _ in lines],
            "at_50": [float(v) for _, _, v, _ in lines], "per_step": [float(p) for *_, p in lines],
            "gaps": (float(gaps.group(1)), float(gaps.group(2)))}


# ---------------------------------------------------------------------------------------------
# The page's source.


def test_visible_code_cells_are_short():
    for meta, code in code_cells(SOURCE.read_text()):
        if "hide-input" not in meta.get("tags", []):
            lines = [line for line in code.splitlines() if line.strip()]
            assert len(lines) <= 20, f"a visible code cell has {len(lines)} lines:\n{code[:300]}"


def test_rnn_step_equation_keeps_the_local_gradient_and_matches_autograd(rng):
    """ch5-rnn-step: dh_{t-1} = g_{t-1} + (dh_t * (1 - h_t^2)) W_hh^T, with dh the total gradient on h."""
    source = SOURCE.read_text()
    equation = re.search(r"^\$\$\n([^$]*)\n\$\$ \(ch5-rnn-step\)$", source, flags=re.MULTILINE)
    assert equation and re.match(r"dh_\{t-1\} = g_\{t-1\} \+", equation.group(1)), "ch5-rnn-step lacks g_{t-1}"
    T_, N_, D_, H_ = 5, 3, 4, 6
    p = lstm_ref.init_rnn_params(D_, H_, rng)
    xs_, h0, g = rng.standard_normal((T_, N_, D_)), rng.standard_normal((N_, H_)), rng.standard_normal((T_, N_, H_))
    W = {k: torch.from_numpy(v).requires_grad_() for k, v in p.items()}
    h, hs = torch.from_numpy(h0), []
    for t in range(T_):
        h = torch.tanh(torch.from_numpy(xs_[t]) @ W["W_xh"] + h @ W["W_hh"] + W["b_h"])
        h.retain_grad()
        hs.append(h)
    sum((hs[t] * torch.from_numpy(g[t])).sum() for t in range(T_)).backward()
    dh = [x.grad.numpy() for x in hs]  # the total gradient on every h_t, by autograd
    for t in range(1, T_):
        h_t = hs[t].detach().numpy()
        by_equation = g[t - 1] + (dh[t] * (1 - h_t * h_t)) @ p["W_hh"].T
        assert np.abs(by_equation - dh[t - 1]).max() < 1e-12, f"ch5-rnn-step is wrong at t = {t}"


# ---------------------------------------------------------------------------------------------
# The derivation, written here as the page writes it, against autograd.

def _chapter_step_backward(dh, dc, x, h_prev, c_prev, p, bug=None):
    """Equations ch5-forward, ch5-do ... ch5-param-grads of the page, term by term, in numpy.

    bug: None, or one of the two mistakes the page says a gradient check would expose:
    "no_slope" drops tanh's slope from ch5-dc, "dx_candidate_only" keeps one gate's term of ch5-dx.
    """
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))
    a = {g: x @ p[f"W_x{g}"] + h_prev @ p[f"W_h{g}"] + p[f"b_{g}"] for g in "ifoc"}
    i, f, o, c_tilde = sig(a["i"]), sig(a["f"]), sig(a["o"]), np.tanh(a["c"])
    c = f * c_prev + i * c_tilde
    do = dh * np.tanh(c)  # ch5-do
    dc_t = dc + dh * o * (1 - np.tanh(c) ** 2) if bug != "no_slope" else dc + dh * o  # ch5-dc
    df, di, dct = dc_t * c_prev, dc_t * c_tilde, dc_t * i  # ch5-df, ch5-di, ch5-dctilde
    dc_prev = dc_t * f  # ch5-dcprev
    da = {"i": di * i * (1 - i), "f": df * f * (1 - f), "o": do * o * (1 - o), "c": dct * (1 - c_tilde**2)}  # ch5-da
    dx = sum(da[g] @ p[f"W_x{g}"].T for g in ("c" if bug == "dx_candidate_only" else "ifoc"))  # ch5-dx
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


def test_from_zero_states_the_cell_state_takes_dozens_of_steps_to_fill():
    """The page's reason for the lead-in: "from zero states, the cell state first has to fill up, which takes a
    few dozen steps when the forget gates are wide open (as with b_f = 3 below)". Mean |c_t| over the batch
    and units, against its level after 50 steps."""
    _, lead_in = _data()
    zeros = np.zeros((N, H))
    size = {}
    for b_f in (1.0, 3.0):
        _, cs, _ = lstm_ref.lstm_forward(lead_in, zeros, zeros, _lstm_params(b_f))
        size[b_f] = np.abs(cs).mean(axis=(1, 2))  # (100,)
    settled = size[3.0][50:].mean()
    assert size[3.0][:5].mean() < 0.25 * settled, f"b_f = 3: {size[3.0][:5].mean():.3f} early, {settled:.3f} settled"
    assert size[3.0][20:30].mean() < 0.8 * settled, "b_f = 3: the cell state has filled up within 20 steps"
    assert size[1.0][:5].mean() < 0.85 * size[1.0][50:].mean(), "b_f = 1: no filling up at all"


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
    printed_radius = number(text, r"spectral radius of the RNN's W_hh: (\S+)")
    assert printed_radius == pytest.approx(radius, abs=0.005)
    assert printed_radius < 0.75, "the page says the RNN's spectral radius is well below one"


@pytest.mark.slow
def test_lstm_keeps_the_gradient_at_lag_50_orders_of_magnitude_above_the_rnn(book):
    ratio = number(printed(book.page(PAGE)), r"at lag 50 the LSTM's norm is (\S+) times the RNN's")
    truth = _torch_medians("lstm", 1.0)[50] / _torch_medians("rnn")[50]
    assert ratio == pytest.approx(truth, rel=PRINTED) and truth > 1e6, f"page {ratio}, autograd {truth:.2e}"
    # "at lag 0 ... the two networks are of the same order"
    table = _lag_table(printed(book.page(PAGE)))
    assert 0.1 < table[0][1] / table[0][0] < 10, f"lag 0: RNN {table[0][0]}, LSTM {table[0][1]}"
    # "fifty steps back the RNN's gradient is at the level of rounding error" (relative to its lag-0 size)
    assert table[50][0] / table[0][0] < np.finfo(np.float64).eps, f"RNN: lag 0 {table[0][0]}, lag 50 {table[50][0]}"


@pytest.mark.slow
def test_both_lag_curves_are_close_to_straight_lines_on_the_log_axis(book):
    """"Both curves are close to straight lines on the logarithmic axis": from lag 10 on, the average factor per
    step between consecutive lags of the printed table stays within 10 % for each network, and the RNN's is
    the smaller (the steeper line). Lag 0 to 10 is left out: there the LSTM's gates are still shaping the curve."""
    table = _lag_table(printed(book.page(PAGE)))
    lags = [k for k in TABLE_LAGS if k >= 10]
    for column, name in ((0, "RNN"), (1, "LSTM")):
        rates = [(table[b][column] / table[a][column]) ** (1 / (b - a)) for a, b in zip(lags, lags[1:])]
        assert max(rates) / min(rates) < 1.1, f"{name}: factors per step between the printed lags {rates}"
        if column == 0:
            rnn_rates = rates
    assert max(rnn_rates) < min((table[b][1] / table[a][1]) ** (1 / (b - a)) for a, b in zip(lags, lags[1:]))


@pytest.mark.slow
def test_forget_bias_sweep_is_printed_and_ordered_as_the_page_says(book):
    sweep = _sweep(printed(book.page(PAGE)))
    assert sweep["b_f"] == list(FORGET_BIASES), sweep["b_f"]
    mean_f, at_50, per_step = sweep["mean_f"], sweep["at_50"], sweep["per_step"]
    for b_f, printed_f, printed_50, printed_step in zip(FORGET_BIASES, mean_f, at_50, per_step):
        assert printed_f == pytest.approx(_torch_mean_forget_gate(b_f), abs=0.0006)
        curve = _torch_medians("lstm", b_f)
        assert printed_50 == pytest.approx(curve[50], rel=PRINTED), f"b_f = {b_f}: page {printed_50}, autograd {curve[50]:.3e}"
        assert printed_step == pytest.approx((curve[80] / curve[20]) ** (1 / 60), abs=0.001)
    rnn = _torch_medians("rnn")
    assert sweep["rnn_50"] == pytest.approx(rnn[50], rel=PRINTED)
    assert sweep["rnn_step"] == pytest.approx((rnn[80] / rnn[20]) ** (1 / 60), abs=0.001)
    # the gaps are the printed norms' ratios in powers of ten (printed with one decimal)
    assert sweep["gaps"][0] == pytest.approx(np.log10(at_50[0] / sweep["rnn_50"]), abs=0.06)
    assert sweep["gaps"][1] == pytest.approx(np.log10(at_50[1] / at_50[0]), abs=0.06)
    assert mean_f == sorted(mean_f) and at_50 == sorted(at_50) and per_step == sorted(per_step)
    # "the measured factor per step follows the mean forget gate and lies above it"
    assert all(p > f for p, f in zip(per_step, mean_f)), f"factor per step {per_step} vs mean f {mean_f}"
    # "with b_f = 3 ... the curve is nearly flat over a hundred steps": within a factor 10 over 99 steps
    assert per_step[2] ** 99 > 0.1, f"b_f = 3 loses {per_step[2]} per step"


@pytest.mark.slow
def test_with_forget_bias_0_the_lstm_lies_far_from_both_the_rnn_and_the_lstm_with_bias_1(book):
    """"the LSTM's gradient still decays fast, though more slowly than the RNN's ... many orders of magnitude
    above the RNN, and many orders of magnitude below the same LSTM with b_f = 1" (figure alt text and summary
    too). "Many" is at least three here; the page prints about six for both."""
    sweep = _sweep(printed(book.page(PAGE)))
    rnn_gap, bias_gap = sweep["gaps"]
    assert rnn_gap > 3 and bias_gap > 3, f"orders of magnitude at lag 50: RNN to b_f = 0 {rnn_gap}, to b_f = 1 {bias_gap}"
    b0_step = sweep["per_step"][0]
    assert b0_step ** 50 < 1e-4, f"b_f = 0 keeps {b0_step} per step: that is not decaying fast"
    assert b0_step > sweep["rnn_step"] + 0.05, f"factor per step: RNN {sweep['rnn_step']}, LSTM b_f = 0 {b0_step}"
    # the sweep's b_f = 1 is the table's LSTM: the two cells print the same curve
    assert _lag_table(printed(book.page(PAGE)))[50] == (sweep["rnn_50"], sweep["at_50"][1])


@pytest.mark.slow
def test_large_recurrent_weights_make_the_lstm_gradient_explode(book):
    text = printed(book.page(PAGE))
    after = text.split("large recurrent weights, norm at\n")[1]
    shown = dict(re.findall(r"^  lag +(\d+): (\d\.\d\de[+-]\d+)$", after, flags=re.MULTILINE))
    assert sorted(int(k) for k in shown) == [0, 25, 50, 75, 99], shown
    curve = _torch_medians("lstm", 1.0, float(BIG_SCALE))
    for k, value in shown.items():
        assert float(value) == pytest.approx(curve[int(k)], rel=PRINTED), f"lag {k}: page {value}, autograd {curve[int(k)]:.2e}"
    norms = [float(shown[k]) for k in ("0", "25", "50", "75", "99")]
    assert norms[4] > 1e3 * norms[0], "the page says the gradient 99 steps back is over a thousand times the lag-0 one"
    assert np.all(np.diff(norms) > 0), f"the page says the norm grows with the lag: {norms}"


@pytest.mark.slow
def test_a_missing_term_gives_errors_orders_of_magnitude_above_the_printed_ones(book):
    """"dropping the slope in ch5-dc or one gate in ch5-dx gives errors many orders of magnitude larger" than
    the printed finite-difference errors: the two mistakes, on the page's own step case (seed 0)."""
    worst_printed = max(float(v) for v in re.findall(r"rel_error\(d\w+\) = (\S+)", printed(book.page(PAGE))))
    rng = np.random.default_rng(0)
    n, d, h = 3, 4, 5
    params = lstm_ref.init_lstm_params(d, h, rng)
    x = rng.standard_normal((n, d))
    h_prev, c_prev, dh, dc = rng.standard_normal((4, n, h))

    def loss(x, c_prev):
        h_t, c_t, _ = lstm_ref.lstm_step_forward(x, h_prev, c_prev, params)
        return np.sum(dh * h_t) + np.sum(dc * c_t)

    numeric = {"dx": numerical_gradient(lambda v: loss(v, c_prev), x),
               "dc_prev": numerical_gradient(lambda v: loss(x, v), c_prev)}
    right = _chapter_step_backward(dh, dc, x, h_prev, c_prev, params)
    assert rel_error(right[0], numeric["dx"]) < 1e-8 and rel_error(right[2], numeric["dc_prev"]) < 1e-8
    for bug, index, name in (("no_slope", 2, "dc_prev"), ("dx_candidate_only", 0, "dx")):
        wrong = _chapter_step_backward(dh, dc, x, h_prev, c_prev, params, bug=bug)[index]
        err = rel_error(wrong, numeric[name])
        assert err > 1e4 * worst_printed, f"{bug}: rel_error({name}) = {err:.1e}, the page prints up to {worst_printed}"


def test_exercise_box_names_the_notebooks_functions_with_their_points():
    """The box and the notebook agree, and the exercise's function is not named like lstm_ref's
    lag_gradient_norms(family, ...), which the chapter uses with another signature."""
    box = SOURCE.read_text().split("## Exercise", 1)[1]
    points, solutions = graded_points(json.loads(NOTEBOOK.read_text()))
    solution_cells = set(solutions)
    for grade_id, code in solutions.items():
        assert re.search(rf"^def {grade_id}\(", code, flags=re.MULTILINE), (
            f"the solution cell {grade_id} does not define a function of that name")
    functions = [f for f in points if f != "written"]
    assert sorted(functions) == sorted(solution_cells) and len(functions) == 3, (points, solution_cells)
    for function in functions:
        assert re.search(rf"`{function}\([^`]*\)`:.*?\({points[function]} points\)", box, flags=re.DOTALL), (
            f"the exercise box should list {function} with {points[function]} points"
        )
    written = re.search(r"graded by hand[^()]*?(?:\([^()]*\)[^()]*?)*\((\d+) points\)", box)
    assert written and int(written.group(1)) == points["written"], f"the written answer should be {points['written']} points"
    total = re.search(r"^```\{admonition\} Exercise 5:.*\((\d+) points\)$", box, flags=re.MULTILINE)
    assert total and int(total.group(1)) == sum(points.values()), f"the box's total should be {sum(points.values())}"
    assert "lag_gradient_norms" not in functions
    assert not re.search(r"`lag_gradient_norms\(forward", SOURCE.read_text()), "the old name of the exercise's function"
