"""Chapter 5, backpropagation through the LSTM: the equations the page derives, the numbers it
prints and the claims it makes about them, each against an independent truth.

The truth is PyTorch autograd throughout: the step backward equations, written here in numpy as the
page writes them, against autograd of a one-step nn.LSTM; the per-lag gradient norms of the page's
measurement against Jacobians of nn.RNN / nn.LSTM (weights loaded from the same seeds) computed by
autograd; the worked scalar example's printed intermediates against autograd and finite differences; the
figures' alt texts against what the diagrams draw (book/lstm_diagram.py) and what the page prints. The tests
that read the built page are marked slow; build this chapter alone with

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


# ---------------------------------------------------------------------------------------------
# The worked example: D = H = 1, T = 2, every intermediate printed, recomputed here by autograd.

WORKED = {"W_xi": 0.5, "W_hi": -0.3, "b_i": 0.1, "W_xf": 0.4, "W_hf": 0.2, "b_f": 1.0,
          "W_xo": -0.6, "W_ho": 0.3, "b_o": 0.2, "W_xc": 0.9, "W_hc": -0.4, "b_c": 0.0}
WORKED_X, WORKED_G, WORKED_H0, WORKED_C0 = (1.0, -0.5), (1.0, 1.0), 0.2, 0.5
FOUR_DECIMALS, SIX_DECIMALS = 5e-5 + 1e-12, 5e-7 + 1e-12  # half a unit in the last printed digit


def _worked_autograd(c0: float = WORKED_C0) -> tuple[list[dict], dict, list[dict]]:
    """The worked example by torch autograd: per step, every forward value and every gradient under the page's
    names; the total weight gradients; and per step, that step's term of each weight gradient.

    What one step receives or sends back is read off zero leaves added where the step uses a value: a zero
    added to h_0 where step 1 reads it has, as its gradient, exactly what step 1 sends back to h_0; a zero
    added to a weight where step t reads it, that step's term of the weight's gradient."""
    leaf = lambda v=0.0: torch.tensor(v, dtype=torch.float64, requires_grad=True)
    P = {k: leaf(v) for k, v in WORKED.items()}
    Z = [{k: leaf() for k in WORKED} for _ in WORKED_X]
    xs, h0, c0_t = [leaf(v) for v in WORKED_X], leaf(WORKED_H0), leaf(c0)
    zh, zc = [leaf() for _ in WORKED_X], [leaf() for _ in WORKED_X]
    h, c, steps = h0, c0_t, []
    for t in range(len(WORKED_X)):
        h_prev, c_prev = h + zh[t], c + zc[t]
        w = {k: P[k] + Z[t][k] for k in WORKED}
        a = {k: xs[t] * w[f"W_x{k}"] + h_prev * w[f"W_h{k}"] + w[f"b_{k}"] for k in "ifoc"}
        s = {"i": torch.sigmoid(a["i"]), "f": torch.sigmoid(a["f"]), "o": torch.sigmoid(a["o"]),
             "c_tilde": torch.tanh(a["c"])}
        s["c"] = c = s["f"] * c_prev + s["i"] * s["c_tilde"]
        s["tanh_c"] = torch.tanh(c)
        s["h"] = h = s["o"] * s["tanh_c"]
        s.update({f"a_{k}": v for k, v in a.items()})
        for v in s.values():
            v.retain_grad()
        steps.append(s)
    sum(g * s["h"] for g, s in zip(WORKED_G, steps)).backward()
    out = []
    for t, s in enumerate(steps):
        v = {k: s[k].detach().item() for k in ("i", "f", "o", "c_tilde", "c", "tanh_c", "h")}
        v.update(dh=float(s["h"].grad), do=float(s["o"].grad), dc=float(s["c"].grad), df=float(s["f"].grad),
                 di=float(s["i"].grad), dc_tilde=float(s["c_tilde"].grad), dx=float(xs[t].grad),
                 dh_prev=float(zh[t].grad), dc_prev=float(zc[t].grad))
        v.update({f"da_{k}": float(s[f"a_{k}"].grad) for k in "ifoc"})
        out.append(v)
    assert out[0]["dh_prev"] == float(h0.grad) and out[0]["dc_prev"] == float(c0_t.grad)
    return out, {k: float(p.grad) for k, p in P.items()}, [{k: float(z.grad) for k, z in zt.items()} for zt in Z]


def _worked_finite_differences(eps: float = 1e-6) -> dict:
    """Central differences of L = sum_t g_t h_t in each parameter, through lstm_ref.lstm_forward (numpy)."""
    xs = np.array(WORKED_X).reshape(2, 1, 1)  # (T, N, D)
    h0, c0 = np.full((1, 1), WORKED_H0), np.full((1, 1), WORKED_C0)  # (N, H)
    g = np.array(WORKED_G).reshape(2, 1, 1)  # (T, N, H)

    def loss(params):
        return float(np.sum(g * lstm_ref.lstm_forward(xs, h0, c0, params)[0]))

    arrays = {k: np.array(v).reshape(lstm_ref.lstm_param_shapes(1, 1)[k]) for k, v in WORKED.items()}
    fd = {}
    for k in arrays:
        up, down = ({**arrays, k: arrays[k] + e} for e in (eps, -eps))
        fd[k] = (loss(up) - loss(down)) / (2 * eps)
    return fd


def _worked_printed(text: str) -> tuple[list[dict], dict]:
    """The worked example's printed intermediates, [{name: value} for t = 0, 1], and its weight-gradient table
    {param: (term t = 0, term t = 1, sum, finite difference)} with the printed strings."""
    start = text.index("t = 0: i = ")
    end = text.index("largest |sum - finite difference|")
    block = text[start:end]
    steps, t = [{}, {}], None
    for line in block.splitlines():
        head = re.match(r"^t = (\d):", line)
        if head:
            t = int(head.group(1))
        for name, value in re.findall(r"(\w+) = ([+-]?\d+\.\d{4})(?!\d)", line):
            assert name not in steps[t], f"{name} is printed twice for t = {t}"
            steps[t][name] = value
    rows = re.findall(r"^(W_[xh][ifoc]|b_[ifoc])\s+([+-]\d\.\d{6})\s+([+-]\d\.\d{6})\s+([+-]\d\.\d{6})\s+([+-]\d\.\d{6})$",
                      block, flags=re.MULTILINE)
    return steps, {name: values for name, *values in rows}


FORWARD_NAMES = ("i", "f", "o", "c_tilde", "c", "tanh_c", "h")
BACKWARD_NAMES = ("dh", "do", "dc", "df", "di", "dc_tilde", "da_i", "da_f", "da_o", "da_c", "dc_prev", "dh_prev", "dx")


@pytest.mark.slow
def test_worked_example_prints_every_intermediate_as_torch_autograd_computes_it(book):
    steps, _ = _worked_printed(printed(book.page(PAGE)))
    truth, _, _ = _worked_autograd()
    for t in (0, 1):
        assert sorted(steps[t]) == sorted(FORWARD_NAMES + BACKWARD_NAMES), f"t = {t} prints {sorted(steps[t])}"
        for name in FORWARD_NAMES + BACKWARD_NAMES:
            assert abs(float(steps[t][name]) - truth[t][name]) <= FOUR_DECIMALS, (
                f"t = {t}: the page prints {name} = {steps[t][name]}, autograd gives {truth[t][name]:.6f}")


@pytest.mark.slow
def test_worked_example_weight_gradients_sum_their_step_terms_and_equal_finite_differences(book):
    text = printed(book.page(PAGE))
    _, table = _worked_printed(text)
    _, total, terms = _worked_autograd()
    fd = _worked_finite_differences()
    assert list(table) == list(WORKED), f"the table's rows are {list(table)}"
    for name, (t0, t1, summed, diff) in table.items():
        assert abs(float(t0) - terms[0][name]) <= SIX_DECIMALS and abs(float(t1) - terms[1][name]) <= SIX_DECIMALS, (
            f"{name}: the page prints the terms {t0}, {t1}; autograd {terms[0][name]:.7f}, {terms[1][name]:.7f}")
        assert abs(float(t0) + float(t1) - float(summed)) <= 3 * SIX_DECIMALS, f"{name}: {t0} + {t1} is not {summed}"
        assert abs(float(summed) - total[name]) <= SIX_DECIMALS, f"{name}: sum {summed}, autograd {total[name]:.7f}"
        assert abs(float(diff) - fd[name]) <= SIX_DECIMALS, f"{name}: finite difference {diff}, here {fd[name]:.7f}"
        # "Sum and finite difference agree to the last printed digit for all twelve parameters"
        assert summed == diff, f"{name}: the page prints the sum {summed} and the finite difference {diff}"
    worst = number(text, r"largest \|sum - finite difference\| = (\S+)")
    assert worst == pytest.approx(max(abs(total[k] - fd[k]) for k in WORKED), abs=1e-9) and worst < 1e-8


@pytest.mark.slow
def test_worked_example_step_0_receives_both_messages_of_step_1(book):
    """The prose: step 1 starts from dh_1 = g_1 and dc_1^next = 0; step 0's dh is g_0 plus step 1's dh_prev,
    its dc is step 1's dc_prev (= step 1's dc times f_1) plus the route through h_0."""
    steps, _ = _worked_printed(printed(book.page(PAGE)))
    v = [{k: float(x) for k, x in s.items()} for s in steps]
    assert v[1]["dh"] == WORKED_G[1]
    assert v[1]["dc"] == pytest.approx(v[1]["dh"] * v[1]["o"] * (1 - v[1]["tanh_c"] ** 2), abs=4 * FOUR_DECIMALS)
    assert v[0]["dh"] == pytest.approx(WORKED_G[0] + v[1]["dh_prev"], abs=2 * FOUR_DECIMALS)
    assert v[1]["dc_prev"] == pytest.approx(v[1]["dc"] * v[1]["f"], abs=3 * FOUR_DECIMALS)
    through_h0 = v[0]["dh"] * v[0]["o"] * (1 - v[0]["tanh_c"] ** 2)
    assert v[0]["dc"] == pytest.approx(v[1]["dc_prev"] + through_h0, abs=5 * FOUR_DECIMALS)
    assert abs(through_h0) > 0.05, "the route through h_0 should be visible in the printed digits"


@pytest.mark.slow
def test_worked_example_forget_gate_terms_of_step_0_exist_only_because_c_minus_1_is_not_zero(book):
    _, table = _worked_printed(printed(book.page(PAGE)))
    _, _, terms = _worked_autograd()
    _, _, from_zero = _worked_autograd(c0=0.0)
    for name in ("W_xf", "W_hf", "b_f"):
        assert abs(float(table[name][0])) > 1e-3 and abs(terms[0][name]) > 1e-3, f"{name}'s term at t = 0"
        assert from_zero[0][name] == 0.0, f"from c_(-1) = 0, {name}'s term at t = 0 is {from_zero[0][name]}"


# ---------------------------------------------------------------------------------------------
# The figures: every one has alt text, the diagrams' alt texts name what the drawing shows, and the plots'
# alt texts state the printed numbers and trends.

def _diagram_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("lstm_diagram", ROOT / "book" / "lstm_diagram.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _figures() -> dict[str, tuple[str, str]]:
    """{figure name: (alt text, code)} of every figure cell of the page."""
    figures = {}
    for meta, code in code_cells(SOURCE.read_text()):
        if "figure" in meta.get("mystnb", {}):
            figures[meta["mystnb"]["figure"]["name"]] = (meta["mystnb"].get("image", {}).get("alt", ""), code)
    return figures


# How each label of the diagram (lstm_diagram.BACKWARD) reads in an alt text, and the boxes and nodes.
SPOKEN = {r"$dh_t$": "d h sub t", r"$g_t$": "g sub t", r"$do_t$": "d o sub t", r"from $t+1$": "from the next time step",
          r"$dh_t \odot o_t$": "d h sub t times o sub t", r"$dc_t^{\mathrm{next}}$": "d c sub t next",
          r"$dc_t$": "d c sub t", r"$dc_{t-1}^{\mathrm{next}}$": "d c sub t minus 1 next", r"$df_t$": "d f sub t",
          r"$di_t$": "d i sub t", r"$d\tilde c_t$": "d c tilde sub t", r"$da_f$": "d a sub f", r"$da_i$": "d a sub i",
          r"$da_c$": "d a sub c", r"$da_o$": "d a sub o", r"$dh_{t-1}$": "d h sub t minus 1", r"$dx_t$": "d x sub t"}
SPOKEN_PARTS = {"o": "output", "f": "forget", "i": "input", "g": "candidate", "out_mul": "multiplication node",
                "out_tanh": "tanh box", "add": "addition node", "mul_f": "multiplication node on the cell-state line",
                "mul_i": "multiplication node below it"}


def test_every_figure_has_alt_text_and_each_backward_step_has_its_own_figure():
    figures = _figures()
    assert len(figures) == 7, sorted(figures)
    for name, (alt, _) in figures.items():
        assert len(alt.split()) >= 20, f"{name}: alt text of {len(alt.split())} words"
    steps = _diagram_module().BACKWARD
    for step in steps:
        assert f"fig-ch5-back-{step}" in figures, f"no figure for the backward step {step!r}"
        assert f'draw_lstm_cell(backward="{step}")' in figures[f"fig-ch5-back-{step}"][1]


@pytest.mark.parametrize("step", ["output", "cell", "forget", "input", "merge"])
def test_diagram_alt_text_names_every_gradient_and_part_the_drawing_shows(step):
    alt = _figures()[f"fig-ch5-back-{step}"][0]
    drawn = _diagram_module().BACKWARD[step]
    assert "dashed vermillion" in alt.lower(), f"{step}: the alt text should say how the gradients are drawn"
    for *_, label in drawn["labels"]:
        assert SPOKEN[label] in alt, f"{step}: the figure labels {label}, the alt text does not say {SPOKEN[label]!r}"
    for part in drawn["parts"]:
        assert SPOKEN_PARTS[part] in alt, f"{step}: the figure keeps {part} in colour; the alt text omits it"
    # the alt text names no gradient the figure does not draw
    named = {label for label, words in SPOKEN.items() if re.search(rf"{re.escape(words)}(?! minus| next| times)", alt)}
    drawn_labels = {label for *_, label in drawn["labels"]}
    assert named <= drawn_labels, f"{step}: the alt text names {named - drawn_labels}"


def test_gradients_are_drawn_dashed_in_a_colour_the_forward_picture_does_not_use():
    """Colour-blind safe: the gradients differ from the forward wires by line style, not by colour alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    module = _diagram_module()
    drawn = []
    original, plt.show = plt.show, lambda: drawn.append(plt.gcf())
    try:
        module.draw_lstm_cell()
        for step in module.BACKWARD:
            module.draw_lstm_cell(backward=step)
    finally:
        plt.show = original
    gradient = to_hex(module.GRADIENT)
    forward_colours = {to_hex(line.get_color()) for line in drawn[0].axes[0].lines}
    assert gradient not in forward_colours and all(line.get_linestyle() == "-" for line in drawn[0].axes[0].lines)
    for step, fig in zip(module.BACKWARD, drawn[1:]):
        lines = [line for line in fig.axes[0].lines if to_hex(line.get_color()) == gradient]
        assert len(lines) == len(module.BACKWARD[step]["paths"]) + 1, step  # the paths and the key
        assert all(line.get_linestyle() == "--" for line in lines), f"{step}: a gradient line is not dashed"
    plt.close("all")


NUMERAL = r"(?<![\w.])\d+(?:\.\d+)?(?:e[+-]\d+)?(?!\w|\.\d)"
NUMBER_WORDS = {"four": 4, "six": 6, "twelve": 12}


def _agrees(stated: str, value: float) -> bool:
    """A number as an alt text states it agrees with a value if it is that value at the stated precision."""
    if stated in NUMBER_WORDS:
        return round(value) == NUMBER_WORDS[stated]
    mantissa, _, exponent = stated.partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    unit = 10.0 ** (-decimals) * 10.0 ** int(exponent or 0)
    return abs(float(stated) - value) <= unit / 2 * (1 + 1e-9)


def _stated_numbers(alt: str) -> list[str]:
    alt = re.sub(r"chapter \d+|sub t minus 1", "", alt)  # a reference and a subscript, not numbers
    words = [w for w in re.findall(r"[a-z]+", alt) if w in NUMBER_WORDS]
    return re.findall(NUMERAL, alt) + words


@pytest.mark.slow
def test_every_number_a_figures_alt_text_states_is_the_printed_one(book):
    text = printed(book.page(PAGE))
    table, sweep = _lag_table(text), _sweep(text)
    lags = sorted(table)
    facts = {
        "fig-ch5-rnn-vs-lstm": {"0": lags[0], "99": lags[-1], "1.66": table[0][0], "0.422": table[0][1],
                                "50": 50 if 50 in table else None, "4.43e-17": table[50][0],
                                "6.54e-05": table[50][1], "twelve": np.log10(table[50][1] / table[50][0])},
        "fig-ch5-forget-bias": {"four": 1 + len(sweep["b_f"]), "0.466": sweep["rnn_step"], "0": sweep["b_f"][0],
                                "0.499": sweep["mean_f"][0], "0.635": sweep["per_step"][0],
                                "50": 50 if "norm at lag 50" in text else None, "six": sweep["gaps"][0],
                                "1": sweep["b_f"][1], "0.725": sweep["mean_f"][1], "0.850": sweep["per_step"][1],
                                "3": sweep["b_f"][2], "0.947": sweep["mean_f"][2], "0.994": sweep["per_step"][2]},
        "fig-ch5-back-merge": {"four": len([p for p in _diagram_module().BACKWARD["merge"]["labels"]
                                            if p[2].startswith("$da_")])},
    }
    # "about six orders of magnitude above the RNN and about six below the LSTM with forget bias 1"
    assert _agrees("six", sweep["gaps"][1])
    for name, (alt, _) in _figures().items():
        stated = _stated_numbers(alt)
        known = facts.get(name, {})
        assert set(stated) == set(known), f"{name}: the alt text states {sorted(set(stated))}, the test checks {sorted(known)}"
        for number_ in stated:
            assert known[number_] is not None and _agrees(number_, known[number_]), (
                f"{name}: the alt text states {number_}, the page prints {known[number_]}")


@pytest.mark.slow
def test_the_trends_the_plots_alt_texts_describe_hold_in_the_printed_numbers(book):
    figures = _figures()
    text = printed(book.page(PAGE))
    table, sweep = _lag_table(text), _sweep(text)
    alt = figures["fig-ch5-rnn-vs-lstm"][0]
    assert "start at the same order" in alt and 0.1 < table[0][1] / table[0][0] < 10
    assert "RNN's line is much steeper" in alt and sweep["rnn_step"] + 0.2 < sweep["per_step"][1]
    assert "the gap keeps widening up to lag 99" in alt
    gaps = [table[k][1] / table[k][0] for k in sorted(table)]
    assert all(b > a for a, b in zip(gaps, gaps[1:])), f"LSTM / RNN at the printed lags: {gaps}"
    alt = figures["fig-ch5-forget-bias"][0]
    rnn_step, per_step = sweep["rnn_step"], sweep["per_step"]
    assert "RNN, dashed grey, falls fastest" in alt and rnn_step < min(per_step)
    assert "forget bias 0" in alt and "falls more slowly" in alt and per_step[0] > rnn_step + 0.05
    assert "which falls much more slowly still" in alt and per_step[1] > per_step[0] + 0.1
    assert "stays nearly flat across all lags" in alt and per_step[2] ** 99 > 0.1


@pytest.mark.slow
def test_every_figure_is_rendered_with_the_alt_text_of_its_source(book):
    import html as html_

    page = book.page(PAGE)
    for name, (alt, _) in _figures().items():
        figure = re.search(rf'<figure[^>]*id="{name}".*?</figure>', page, flags=re.DOTALL)
        assert figure, f"the built page has no figure {name}"
        shown = re.search(r'<img[^>]*alt="([^"]*)"', figure.group(0))
        assert shown and html_.unescape(shown.group(1)) == alt, f"{name} is rendered with another alt text"
