"""Every forward and backward of the RNN, LSTM and GRU, step and sequence, against truth.

Truth is (a) PyTorch autograd differentiating the same equations typed out in torch
(tests/torch_cells.py), in float64, over random shapes drawn by hypothesis, and (b) central
finite differences on small cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import torch_cells as tc
from lstm_ref.families import FAMILIES as CELL_FAMILIES
from lstm_ref.families import CellFamily
from lstm_ref.gradcheck import numerical_gradient, rel_error

FWD_TOL = 1e-10  # max abs difference, float64 forward
GRAD_TOL = 1e-9  # max abs difference, float64 gradients
FD_TOL = 1e-7  # relative error against finite differences


# Our functions come from the package's one table of cells; the torch truth is typed out beside them.
TORCH = {"rnn": (tc.rnn_step, tc.rnn_seq), "lstm": (tc.lstm_step, tc.lstm_seq), "gru": (tc.gru_step, tc.gru_seq)}


@dataclass(frozen=True)
class Family:
    cell: CellFamily
    torch_step: Callable
    torch_seq: Callable

    def __getattr__(self, name):  # name, n_states, init, step_forward, ... from the CellFamily
        return getattr(self.cell, "key" if name == "name" else name)


FAMILIES = {key: Family(cell, *TORCH[key]) for key, cell in CELL_FAMILIES.items()}


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def make_case(fam: Family, T: int, N: int, D: int, H: int, rng, dtype=np.float64):
    """Random inputs, states, parameters and upstream gradients for one family."""
    params = fam.init(D, H, rng, dtype=dtype)
    # Larger than init scale, so gates are not all near 0.5 and tanh is not near-linear.
    params = {k: (v * 3).astype(dtype) for k, v in params.items()}
    xs = rng.standard_normal((T, N, D)).astype(dtype)
    states = [rng.standard_normal((N, H)).astype(dtype) for _ in range(fam.n_states)]
    dhs = rng.standard_normal((T, N, H)).astype(dtype)
    dstates = [rng.standard_normal((N, H)).astype(dtype) for _ in range(fam.n_states)]
    return xs, states, params, dhs, dstates


def ours_step(fam, x, states, params, douts):
    """Our step forward and backward: (outputs, [dx, dstates...], grads)."""
    *outs, cache = fam.step_forward(x, *states, params)
    *dins, grads = fam.step_backward(*douts, cache)
    return outs, dins, grads


def torch_step(fam, x, states, params, douts):
    """Autograd's step forward and backward, same return layout as ours_step."""
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ts = [torch.tensor(s, dtype=torch.float64, requires_grad=True) for s in states]
    P = tc.to_torch(params)
    outs = _as_tuple(fam.torch_step(tx, *ts, P))
    loss = sum((o * torch.tensor(d, dtype=torch.float64)).sum() for o, d in zip(outs, douts))
    loss.backward()
    return [o.detach().numpy() for o in outs], [tx.grad.numpy()] + [s.grad.numpy() for s in ts], {
        k: v.grad.numpy() for k, v in P.items()
    }


def ours_seq(fam, xs, states, params, dhs):
    *outs, cache = fam.forward(xs, *states, params)
    *dins, grads = fam.backward(dhs, cache)
    return outs, dins, grads


def torch_seq(fam, xs, states, params, dhs):
    txs = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    ts = [torch.tensor(s, dtype=torch.float64, requires_grad=True) for s in states]
    P = tc.to_torch(params)
    outs = _as_tuple(fam.torch_seq(txs, *ts, P))
    (outs[0] * torch.tensor(dhs, dtype=torch.float64)).sum().backward()  # loss reads hs only
    return [o.detach().numpy() for o in outs], [txs.grad.numpy()] + [s.grad.numpy() for s in ts], {
        k: v.grad.numpy() for k, v in P.items()
    }


def assert_close(ours, ref, tol, what):
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape}, expected {ref.shape}"
    err = float(np.max(np.abs(ours.astype(np.float64) - ref))) if ours.size else 0.0
    assert err <= tol, f"{what}: max abs difference {err:.3e} > {tol:.1e}"


def compare(ours, ref, fwd_tol, grad_tol, label):
    (o_outs, o_dins, o_grads), (r_outs, r_dins, r_grads) = ours, ref
    for n, (a, b) in enumerate(zip(o_outs, r_outs)):
        assert_close(a, b, fwd_tol, f"{label} output {n}")
    assert len(o_dins) == len(r_dins)
    for n, (a, b) in enumerate(zip(o_dins, r_dins)):
        assert_close(a, b, grad_tol, f"{label} input gradient {n}")
    assert set(o_grads) == set(r_grads), f"{label}: gradient keys {sorted(o_grads)} != {sorted(r_grads)}"
    for k in r_grads:
        assert_close(o_grads[k], r_grads[k], grad_tol, f"{label} d{k}")


shapes = st.tuples(st.integers(1, 7), st.integers(1, 5), st.integers(1, 6), st.integers(1, 6))


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=25, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_step_forward_and_backward_match_torch_autograd(family, shape, seed):
    fam = FAMILIES[family]
    _, N, D, H = shape
    rng = np.random.default_rng(seed)
    xs, states, params, dhs, dstates = make_case(fam, 1, N, D, H, rng)
    douts = [dhs[0]] + dstates[1:]  # dh, and dc for the LSTM
    compare(ours_step(fam, xs[0], states, params, douts), torch_step(fam, xs[0], states, params, douts),
            FWD_TOL, GRAD_TOL, f"{family} step, seed {seed}, (N, D, H) = {(N, D, H)}")


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=25, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_sequence_forward_and_backward_match_torch_autograd(family, shape, seed):
    fam = FAMILIES[family]
    rng = np.random.default_rng(seed)
    xs, states, params, dhs, _ = make_case(fam, *shape, rng)
    compare(ours_seq(fam, xs, states, params, dhs), torch_seq(fam, xs, states, params, dhs),
            FWD_TOL, GRAD_TOL, f"{family} sequence, seed {seed}, (T, N, D, H) = {shape}")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (1, 4, 5, 6), (3, 1, 5, 6), (3, 4, 5, 6), (30, 2, 3, 4)])
def test_sequence_matches_torch_on_fixed_shapes(family, shape, rng):
    fam = FAMILIES[family]
    xs, states, params, dhs, _ = make_case(fam, *shape, rng)
    compare(ours_seq(fam, xs, states, params, dhs), torch_seq(fam, xs, states, params, dhs),
            FWD_TOL, GRAD_TOL, f"{family} sequence {shape}")


@pytest.mark.parametrize("family", FAMILIES)
def test_sequence_equals_loop_of_steps(family, rng):
    """The fast stacked sequence code computes exactly what the readable step code does."""
    fam = FAMILIES[family]
    xs, states, params, dhs, _ = make_case(fam, 5, 3, 4, 6, rng)
    outs, (dxs, *dstate0), grads = ours_seq(fam, xs, states, params, dhs)
    cur, caches = states, []
    for t in range(xs.shape[0]):
        *cur, cache = fam.step_forward(xs[t], *cur, params)
        caches.append(cache)
        for n, s in enumerate(cur):
            assert_close(s, outs[n][t], 1e-13, f"state {n} at step {t}")
    carried = [np.zeros_like(s) for s in states]
    total = {k: np.zeros_like(v) for k, v in params.items()}
    for t in reversed(range(xs.shape[0])):
        upstream = [dhs[t] + carried[0]] + carried[1:]
        dx, *carried, g = fam.step_backward(*upstream, caches[t])
        assert_close(dx, dxs[t], 1e-13, f"dx at step {t}")
        for k in total:
            total[k] += g[k]
    for a, b in zip(carried, dstate0):
        assert_close(a, b, 1e-13, "initial-state gradient")
    for k in total:
        assert_close(grads[k], total[k], 1e-12, f"d{k}")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", ["step", "sequence"])
def test_float32_stays_float32_and_agrees_to_float32_precision(family, kind, rng):
    fam = FAMILIES[family]
    xs, states, params, dhs, dstates = make_case(fam, 6, 4, 5, 7, rng, dtype=np.float32)
    if kind == "step":
        douts = [dhs[0]] + dstates[1:]
        ours = ours_step(fam, xs[0], states, params, douts)
        ref = torch_step(fam, xs[0], states, params, douts)
    else:
        ours = ours_seq(fam, xs, states, params, dhs)
        ref = torch_seq(fam, xs, states, params, dhs)
    outs, dins, grads = ours
    for arr in [*outs, *dins, *grads.values()]:
        assert arr.dtype == np.float32, f"{family} {kind}: got {arr.dtype}, inputs were float32"
    # float32 has ~7 significant digits; summed parameter gradients carry T*N terms.
    compare(ours, ref, 1e-5, 1e-4, f"{family} {kind} float32")


def _fd_setup(fam, kind, rng):
    T, N, D, H = (1, 2, 3, 4) if kind == "step" else (4, 2, 3, 4)
    xs, states, params, dhs, dstates = make_case(fam, T, N, D, H, rng)
    if kind == "step":
        douts = [dhs[0]] + dstates[1:]

        def loss_outputs(x, st, p):
            *outs, _ = fam.step_forward(x, *st, p)
            return outs

        analytic = ours_step(fam, xs[0], states, params, douts)
        return xs[0], states, params, douts, loss_outputs, analytic
    douts = [dhs]

    def loss_outputs(x, st, p):
        *outs, _ = fam.forward(x, *st, p)
        return outs[:1]

    return xs, states, params, douts, loss_outputs, ours_seq(fam, xs, states, params, dhs)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", ["step", "sequence"])
def test_gradients_match_finite_differences(family, kind, rng):
    fam = FAMILIES[family]
    x, states, params, douts, outputs, (_, dins, grads) = _fd_setup(fam, kind, rng)

    def loss(x_, st_, p_):
        return sum(float(np.sum(o * d)) for o, d in zip(outputs(x_, st_, p_), douts))

    num_dx = numerical_gradient(lambda v: loss(v, states, params), x)
    assert rel_error(num_dx, dins[0]) <= FD_TOL, f"dx rel error {rel_error(num_dx, dins[0]):.2e}"
    for n in range(len(states)):
        def f_state(v, n=n):
            st_ = list(states)
            st_[n] = v
            return loss(x, st_, params)

        num = numerical_gradient(f_state, states[n])
        assert rel_error(num, dins[1 + n]) <= FD_TOL, f"state {n}: rel error {rel_error(num, dins[1 + n]):.2e}"
    for k in params:
        num = numerical_gradient(lambda v, k=k: loss(x, states, {**params, k: v}), params[k])
        assert rel_error(num, grads[k]) <= FD_TOL, f"d{k}: rel error {rel_error(num, grads[k]):.2e}"


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_and_backward_do_not_modify_their_inputs(family, rng):
    fam = FAMILIES[family]
    xs, states, params, dhs, _ = make_case(fam, 4, 3, 2, 5, rng)
    before = [a.copy() for a in [xs, *states, dhs, *params.values()]]
    ours_seq(fam, xs, states, params, dhs)
    for a, b in zip([xs, *states, dhs, *params.values()], before):
        np.testing.assert_array_equal(a, b)
