"""Gradient-flow tools against torch autograd and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torch_cells as tc
from lstm_ref import init_gru_params, init_lstm_params, init_rnn_params
from lstm_ref.gradients import (
    clip_grad_norm,
    clip_grad_value,
    lag_gradient_norms,
    rnn_jacobians,
    rnn_lag_jacobian_norms,
    scale_to_spectral_radius,
    spectral_radius,
)

T, N, D, H = 5, 4, 3, 6


def _case(rng, T=T, N=N):
    params = {k: v * 2 for k, v in init_rnn_params(D, H, rng).items()}
    return rng.standard_normal((T, N, D)), rng.standard_normal((N, H)), params


def _autograd_state_jacobian(xs, h0, params, start):
    """d h_{T-1} / d h_{start-1} per sample, by torch autograd through the unrolled RNN."""
    P = tc.to_torch(params, requires_grad=False)
    txs = torch.tensor(xs)
    # the state after step start-1, computed without gradient, then used as the variable
    h = torch.tensor(h0)
    for t in range(start):
        h = tc.rnn_step(txs[t], h, P)
    out = []
    for n in range(xs.shape[1]):
        def f(hn, n=n):
            hh = h.clone()
            hh[n] = hn
            for t in range(start, xs.shape[0]):
                hh = tc.rnn_step(txs[t], hh, P)
            return hh[n]
        out.append(torch.autograd.functional.jacobian(f, h[n].clone()).numpy())
    return np.stack(out)  # (N, H, H)


def test_step_jacobians_match_autograd(rng):
    xs, h0, params = _case(rng)
    J = rnn_jacobians(xs, h0, params)
    assert J.shape == (T, N, H, H)
    for t in range(T):
        want = _autograd_state_jacobian(xs[: t + 1], h0, params, start=t)
        assert np.max(np.abs(J[t] - want)) <= 1e-10


@pytest.mark.parametrize("ord", [2, "fro"])
@pytest.mark.parametrize("shape", [(5, 4), (1, 1), (7, 1)])
def test_lag_norms_of_the_jacobian_product_match_autograd(ord, shape, rng):
    xs, h0, params = _case(rng, *shape)
    norms = rnn_lag_jacobian_norms(xs, h0, params, ord=ord)
    steps = xs.shape[0]
    assert norms.shape == (steps, shape[1])
    for k in range(steps):
        full = _autograd_state_jacobian(xs, h0, params, start=steps - k)  # d h_{T-1} / d h_{T-1-k}
        want = np.linalg.norm(full, ord=ord, axis=(1, 2))
        assert np.max(np.abs(norms[k] - want)) <= 1e-10, f"lag {k}"


def test_scalar_closed_form_gives_0_9_and_1_1_to_the_power_k():
    """W_hh = w I with x = 0, b = 0, h0 = 0: states stay 0, tanh' = 1, and the lag-k norm is |w|^k."""
    for w in (0.9, 1.1):
        params = {"W_xh": np.zeros((2, 3)), "W_hh": w * np.eye(3), "b_h": np.zeros(3)}
        norms = rnn_lag_jacobian_norms(np.zeros((101, 1, 2)), np.zeros((1, 3)), params)[:, 0]
        np.testing.assert_allclose(norms, w ** np.arange(101), rtol=1e-12)
    assert f"{0.9 ** 100:.4g}" == "2.656e-05"
    assert f"{1.1 ** 100:.7g}" == "13780.61"


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
def test_lag_gradient_norms_match_autograd_input_jacobians(family, rng):
    init = {"rnn": init_rnn_params, "lstm": init_lstm_params, "gru": init_gru_params}[family]
    params = init(D, H, rng)
    xs = rng.standard_normal((T, N, D))
    states = tuple(rng.standard_normal((N, H)) for _ in range(2 if family == "lstm" else 1))
    norms = lag_gradient_norms(family, xs, states, params)
    P = tc.to_torch(params, requires_grad=False)
    seq = {"rnn": tc.rnn_seq, "lstm": tc.lstm_seq, "gru": tc.gru_seq}[family]

    def last(x):
        out = seq(x, *map(torch.tensor, states), P)
        return (out[0] if isinstance(out, tuple) else out)[-1]  # h_{T-1}: (N, H)

    J = torch.autograd.functional.jacobian(last, torch.tensor(xs)).numpy()  # (N, H, T, N, D)
    for n in range(N):
        per_t = np.sqrt(np.sum(J[n, :, :, n, :] ** 2, axis=(0, 2)))  # (T,)
        assert np.max(np.abs(norms[:, n] - per_t[::-1])) <= 1e-10


def _grads(rng, dtype=np.float64):
    return {"a": rng.standard_normal((3, 4)).astype(dtype), "b": rng.standard_normal(5).astype(dtype)}


@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch_and_never_mutates(max_norm, rng):
    grads = _grads(rng)
    before = {k: v.copy() for k, v in grads.items()}
    clipped, total = clip_grad_norm(grads, max_norm)
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads.values()]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.tensor(g)
    torch_total = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    assert abs(total - float(torch_total)) <= 1e-12
    for t, k in zip(tensors, grads):
        assert np.max(np.abs(clipped[k] - t.grad.numpy())) <= 1e-15
        np.testing.assert_array_equal(grads[k], before[k])
        assert clipped[k] is not grads[k]
    if max_norm > total:
        for k in grads:
            np.testing.assert_array_equal(clipped[k], grads[k])  # under the threshold: unchanged


def test_clip_grad_norm_keeps_float32(rng):
    clipped, _ = clip_grad_norm(_grads(rng, np.float32), 0.1)
    assert all(v.dtype == np.float32 for v in clipped.values())


def test_clip_grad_value_matches_torch(rng):
    grads = _grads(rng)
    clipped = clip_grad_value(grads, 0.3)
    for k, g in grads.items():
        t = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        t.grad = torch.tensor(g)
        torch.nn.utils.clip_grad_value_([t], 0.3)
        np.testing.assert_array_equal(clipped[k], t.grad.numpy())


def test_spectral_radius_closed_forms():
    assert spectral_radius(np.diag([0.5, -3.0, 2.0])) == 3.0
    theta = 0.3
    rotation = 1.7 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    assert abs(spectral_radius(rotation) - 1.7) <= 1e-14  # eigenvalues 1.7 e^{+-i theta}
    W = np.random.default_rng(0).standard_normal((6, 6))
    assert abs(spectral_radius(scale_to_spectral_radius(W, 0.9)) - 0.9) <= 1e-12


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: rnn_lag_jacobian_norms(np.zeros((2, 1, 1)), np.zeros((1, 1)), init_rnn_params(1, 1, np.random.default_rng(0)), ord=1),
         "ord must be 2"),
        (lambda: lag_gradient_norms("lstm", np.zeros((2, 1, 1)), (np.zeros((1, 1)),), init_lstm_params(1, 1, np.random.default_rng(0))),
         r"tuple \(h0, c0\)"),
        (lambda: lag_gradient_norms("transformer", np.zeros((2, 1, 1)), (np.zeros((1, 1)),), {}), "family must be one of"),
        (lambda: clip_grad_norm({"a": np.ones(2)}, 0.0), "max_norm must be a positive number"),
        (lambda: clip_grad_norm([np.ones(2)], 1.0), "grads must be a non-empty dict"),
        (lambda: clip_grad_value({"a": np.arange(3)}, 1.0), "float32 or float64; got int64"),
        (lambda: spectral_radius(np.ones((2, 3))), r"W must be square \(H, H\)"),
        (lambda: scale_to_spectral_radius(np.array([[0.0, 1.0], [0.0, 0.0]]), 1.0), "spectral radius 0"),
    ],
)
def test_gradient_tools_reject_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
