"""Gradient-flow tools (lstm_ref.gradients) against independent truth.

Truth is torch autograd differentiating the cells typed out again in torch (tests/torch_cells.py),
in float64; torch's own clipping utilities; and closed forms (W_hh = w I gives |w|^k exactly,
the spectral radius of diagonal and rotation matrices).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torch_cells as tc
from lstm_ref import init_gru_params, init_lstm_params, init_rnn_params
from lstm_ref.gradients import (
    clip_grad_norm,
    clip_grad_value,
    input_jacobians,
    lag_gradient_norms,
    rnn_jacobians,
    rnn_lag_jacobian_norms,
    scale_to_spectral_radius,
    spectral_radius,
)

TOL = 1e-10  # max abs difference against torch autograd, float64
SHAPES = [(3, 4, 5, 6), (1, 1, 2, 3), (1, 4, 5, 6), (6, 1, 3, 2), (4, 2, 1, 1)]  # (T, N, D, H)
INIT = {"rnn": init_rnn_params, "lstm": init_lstm_params, "gru": init_gru_params}
TORCH_SEQ = {"rnn": tc.rnn_seq, "lstm": tc.lstm_seq, "gru": tc.gru_seq}


def rnn_case(T, N, D, H, rng, dtype=np.float64):
    """Random RNN inputs; weights at twice the init scale so tanh is well away from linear."""
    params = {k: (2 * v).astype(dtype) for k, v in init_rnn_params(D, H, rng).items()}
    return rng.standard_normal((T, N, D)).astype(dtype), rng.standard_normal((N, H)).astype(dtype), params


def family_case(family, T, N, D, H, rng, dtype=np.float64):
    params = {k: (2 * v).astype(dtype) for k, v in INIT[family](D, H, rng).items()}
    xs = rng.standard_normal((T, N, D)).astype(dtype)
    h0 = rng.standard_normal((N, H)).astype(dtype)
    state0 = (h0, rng.standard_normal((N, H)).astype(dtype)) if family == "lstm" else h0
    return xs, state0, params


def per_sample_blocks(J):
    """(N, A, N, B) autograd Jacobian -> (N, A, B) diagonal blocks, after checking the rest is zero."""
    N = J.shape[0]
    blocks = np.stack([J[n, :, n, :] for n in range(N)])
    off = J.copy()
    for n in range(N):
        off[n, :, n, :] = 0.0
    assert not off.any(), "samples must not interact: a cross-sample Jacobian block is nonzero"
    return blocks


def torch_rnn_states(xs, h0, P):
    """h0 followed by every hidden state, as torch tensors without gradient: a list of T + 1."""
    states = [torch.tensor(h0)]
    with torch.no_grad():
        for x in torch.tensor(xs):
            states.append(tc.rnn_step(x, states[-1], P))
    return states


def torch_last_state_jacobian(xs, h0, params, start):
    """d hs[T-1] / d (state entering step `start`) per sample, by autograd through the unrolled torch RNN.

    start = 0 differentiates with respect to h0, start = t with respect to hs[t-1]. Returns (N, H, H).
    """
    P = tc.to_torch(params, requires_grad=False)
    txs = torch.tensor(xs)
    entering = torch_rnn_states(xs, h0, P)[start]

    def unrolled(h):
        for t in range(start, xs.shape[0]):
            h = tc.rnn_step(txs[t], h, P)
        return h

    return per_sample_blocks(torch.autograd.functional.jacobian(unrolled, entering).numpy())


def assert_close(ours, want, tol, what):
    assert ours.shape == want.shape, f"{what}: shape {ours.shape}, expected {want.shape}"
    err = float(np.max(np.abs(ours - want)))
    assert err <= tol, f"{what}: max abs difference {err:.3e} > {tol:.0e}"


# ---------------------------------------------------------------- RNN step Jacobians and their products


@pytest.mark.parametrize("shape", SHAPES)
def test_rnn_jacobians_match_torch_autograd(shape, rng):
    T, N, D, H = shape
    xs, h0, params = rnn_case(*shape, rng)
    J = rnn_jacobians(xs, h0, params)
    assert J.shape == (T, N, H, H) and J.dtype == np.float64
    P = tc.to_torch(params, requires_grad=False)
    states = torch_rnn_states(xs, h0, P)
    for t in range(T):
        step = torch.autograd.functional.jacobian(lambda h: tc.rnn_step(torch.tensor(xs[t]), h, P), states[t])
        assert_close(J[t], per_sample_blocks(step.numpy()), TOL, f"dh_{t}/dh_{t - 1}, shape {shape}")


def test_rnn_jacobian_is_diag_tanh_prime_times_W_hh_transposed(rng):
    """Row j is the output unit, column i the input unit: J[j, i] = (1 - h_j**2) W_hh[i, j]."""
    xs, h0, params = rnn_case(2, 3, 4, 5, rng)
    J = rnn_jacobians(xs, h0, params)
    hs = np.tanh(xs[0] @ params["W_xh"] + h0 @ params["W_hh"] + params["b_h"])  # (N, H) the first step
    for n in range(3):
        assert_close(J[0, n], np.diag(1 - hs[n] ** 2) @ params["W_hh"].T, 1e-15, f"sample {n}")


@pytest.mark.parametrize("ord", [2, "fro"])
@pytest.mark.parametrize("shape", SHAPES)
def test_rnn_lag_jacobian_norms_match_torch_autograd(ord, shape, rng):
    T, N, D, H = shape
    xs, h0, params = rnn_case(*shape, rng)
    norms = rnn_lag_jacobian_norms(xs, h0, params, ord=ord, include_initial=True)
    assert norms.shape == (T + 1, N) and norms.dtype == np.float64
    for k in range(T + 1):  # lag k: the state entering step T-k; lag T is h0
        want = np.linalg.norm(torch_last_state_jacobian(xs, h0, params, start=T - k), ord=ord, axis=(1, 2))
        assert_close(norms[k], want, TOL, f"lag {k}, ord={ord}, shape {shape}")
    np.testing.assert_array_equal(rnn_lag_jacobian_norms(xs, h0, params, ord=ord), norms[:T])


@pytest.mark.parametrize("ord, lag0", [(2, 1.0), ("fro", np.sqrt(4))])
def test_lag_zero_is_the_identity(ord, lag0, rng):
    xs, h0, params = rnn_case(3, 2, 3, 4, rng)
    np.testing.assert_allclose(rnn_lag_jacobian_norms(xs, h0, params, ord=ord)[0], lag0, rtol=1e-15)


@pytest.mark.parametrize("w", [0.9, 1.1, -0.9])
def test_scalar_recurrence_gives_w_to_the_power_k_exactly(w):
    """W_hh = w I with x = 0, b = 0, h0 = 0 keeps every state at 0, so tanh' = 1 and J_t = w I.

    The lag-k product is w^k I: spectral norm |w|^k, Frobenius norm sqrt(H) |w|^k.
    """
    T, N, D, H = 101, 2, 3, 4
    params = {"W_xh": np.zeros((D, H)), "W_hh": w * np.eye(H), "b_h": np.zeros(H)}
    xs, h0 = np.zeros((T, N, D)), np.zeros((N, H))
    powers = abs(w) ** np.arange(T)  # (T,)
    np.testing.assert_allclose(rnn_lag_jacobian_norms(xs, h0, params), np.tile(powers[:, None], (1, N)), rtol=1e-12)
    fro = rnn_lag_jacobian_norms(xs, h0, params, ord="fro")
    np.testing.assert_allclose(fro, np.sqrt(H) * np.tile(powers[:, None], (1, N)), rtol=1e-12)


def test_the_chapter_3_numbers_come_out_of_the_jacobian_product():
    params = {"W_xh": np.zeros((1, 1)), "W_hh": np.zeros((1, 1)), "b_h": np.zeros(1)}
    at_100 = {}
    for w in (0.9, 1.1):
        params["W_hh"] = np.full((1, 1), w)
        at_100[w] = rnn_lag_jacobian_norms(np.zeros((101, 1, 1)), np.zeros((1, 1)), params)[100, 0]
    assert f"{at_100[0.9]:.4g}" == "2.656e-05"  # not 0.000017, as one widely read article prints it
    assert f"{at_100[1.1]:.7g}" == "13780.61"


# ---------------------------------------------------------------- gradients reaching the inputs, any family


def torch_input_jacobians(family, xs, state0, params):
    """d hs[T-1] / d xs[t] per sample by torch autograd: (T, N, H, D), indexed by time."""
    P = tc.to_torch(params, requires_grad=False)
    states = [torch.tensor(s) for s in (state0 if isinstance(state0, tuple) else (state0,))]

    def last(txs):
        out = TORCH_SEQ[family](txs, *states, P)
        return (out[0] if isinstance(out, tuple) else out)[-1]  # (N, H)

    J = torch.autograd.functional.jacobian(last, torch.tensor(xs)).numpy()  # (N, H, T, N, D)
    return np.stack([per_sample_blocks(J[:, :, t, :, :]) for t in range(xs.shape[0])])  # (T, N, H, D)


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("shape", SHAPES)
def test_input_jacobians_and_lag_norms_match_torch_autograd(family, shape, rng):
    T, N, D, H = shape
    xs, state0, params = family_case(family, *shape, rng)
    want = torch_input_jacobians(family, xs, state0, params)
    J = input_jacobians(family, xs, state0, params)
    assert J.dtype == np.float64
    assert_close(J, want, TOL, f"{family} d h_T-1 / d x_t, shape {shape}")
    for ord in (2, "fro"):
        norms = lag_gradient_norms(family, xs, state0, params, ord=ord)
        by_lag = np.linalg.norm(want, ord=ord, axis=(2, 3))[::-1]  # (T, N), row k is t = T-1-k
        assert_close(norms, by_lag, TOL, f"{family} lag norms, ord={ord}, shape {shape}")


@pytest.mark.parametrize("shape", SHAPES)
def test_rnn_backward_route_equals_jacobian_product_route(shape, rng):
    """d h_{T-1}/d x_t = (J_{T-1} ... J_{t+1}) diag(1 - h_t**2) W_xh^T: the chain rule through h_t.

    h_t = tanh(x_t W_xh + ...) gives d h_t / d x_t = diag(1 - h_t**2) W_xh^T, (H, D) in the same
    row = output convention as the step Jacobians; the product carries it on to h_{T-1}.
    """
    T, N, D, H = shape
    xs, h0, params = rnn_case(*shape, rng)
    J = rnn_jacobians(xs, h0, params)  # (T, N, H, H)
    hs = np.empty((T, N, H))
    h = h0
    for t in range(T):
        hs[t] = h = np.tanh(xs[t] @ params["W_xh"] + h @ params["W_hh"] + params["b_h"])
    product = np.broadcast_to(np.eye(H), (N, H, H))  # (N, H, H) d h_{T-1} / d h_{T-1}
    want = np.empty((T, N, H, D))
    for t in range(T - 1, -1, -1):
        want[t] = product @ ((1 - hs[t] ** 2)[:, :, None] * params["W_xh"].T)  # (N, H, D)
        product = product @ J[t]  # now d h_{T-1} / d h_{t-1}
    assert_close(input_jacobians("rnn", xs, h0, params), want, 1e-12, f"shape {shape}")
    by_lag = np.sqrt(np.sum(want**2, axis=(2, 3)))[::-1]
    assert_close(lag_gradient_norms("rnn", xs, h0, params), by_lag, 1e-12, f"shape {shape}")


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
def test_float32_in_float32_out_and_inputs_untouched(family, rng):
    xs, state0, params = family_case(family, 4, 3, 2, 5, rng, dtype=np.float32)
    states = state0 if isinstance(state0, tuple) else (state0,)
    inputs = [xs, *states, *params.values()]
    before = [a.copy() for a in inputs]
    norms = lag_gradient_norms(family, xs, state0, params)
    assert norms.dtype == np.float32 and norms.shape == (4, 3)
    for a, b in zip(inputs, before):
        np.testing.assert_array_equal(a, b)
    xs64, states64 = xs.astype(np.float64), tuple(s.astype(np.float64) for s in states)
    params64 = {k: v.astype(np.float64) for k, v in params.items()}
    norms64 = lag_gradient_norms(family, xs64, states64 if family == "lstm" else states64[0], params64)
    np.testing.assert_allclose(norms, norms64, rtol=1e-4, atol=1e-6)
    if family == "rnn":
        assert rnn_lag_jacobian_norms(xs, state0, params).dtype == np.float32


# ---------------------------------------------------------------- clipping


def gradient_dict(rng, dtype=np.float64, scale=1.0):
    """Gradients shaped like an RNN's with D, H = 5, 6 (shapes all differ)."""
    return {
        "W_xh": (scale * rng.standard_normal((5, 6))).astype(dtype),
        "W_hh": (scale * rng.standard_normal((6, 6))).astype(dtype),
        "b_h": (scale * rng.standard_normal(6)).astype(dtype),
    }


def torch_clip(grads, clip, **kwargs):
    """Run a torch.nn.utils clipping function on .grad tensors holding copies of grads."""
    tensors = [torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True) for g in grads.values()]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.tensor(g)  # a copy, in g's dtype
    result = clip(tensors, **kwargs)
    return {k: t.grad.numpy() for k, t in zip(grads, tensors)}, result


@pytest.mark.parametrize("max_norm", [0.5, 3.0])
def test_clip_grad_norm_matches_torch_when_it_clips(max_norm, rng):
    grads = gradient_dict(rng)  # total norm about sqrt(72) = 8.5
    clipped, total = clip_grad_norm(grads, max_norm)
    ref, ref_total = torch_clip(grads, torch.nn.utils.clip_grad_norm_, max_norm=max_norm)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, float(ref_total), rtol=1e-14)
    # torch divides by total + 1e-6, we by total: the results differ by exactly that factor.
    for k in grads:
        np.testing.assert_allclose(clipped[k], ref[k] * ((total + 1e-6) / total), rtol=1e-13, err_msg=k)
    new_total = np.sqrt(sum(np.sum(g**2) for g in clipped.values()))
    np.testing.assert_allclose(new_total, max_norm, rtol=1e-14)


@pytest.mark.parametrize("max_norm", [100.0, np.inf])
def test_clip_grad_norm_under_the_threshold_returns_bit_identical_copies(max_norm, rng):
    grads = gradient_dict(rng)
    clipped, total = clip_grad_norm(grads, max_norm)
    ref, ref_total = torch_clip(grads, torch.nn.utils.clip_grad_norm_, max_norm=max_norm)
    np.testing.assert_allclose(total, float(ref_total), rtol=1e-14)
    assert clipped.keys() == grads.keys()
    for k in grads:
        assert clipped[k] is not grads[k] and not np.shares_memory(clipped[k], grads[k])
        np.testing.assert_array_equal(clipped[k], grads[k])
        np.testing.assert_array_equal(clipped[k], ref[k])


@pytest.mark.parametrize("max_norm", [0.1, 1e3])
def test_clipping_never_mutates_its_inputs(max_norm, rng):
    grads = gradient_dict(rng)
    before = {k: v.copy() for k, v in grads.items()}
    clip_grad_norm(grads, max_norm)
    clip_grad_value(grads, max_norm)
    for k in grads:
        np.testing.assert_array_equal(grads[k], before[k])


def test_clip_grad_norm_keeps_float32_and_survives_an_exploding_float32_gradient(rng):
    grads = gradient_dict(rng, np.float32, scale=1e25)  # squares overflow float32 (max 3.4e38)
    clipped, total = clip_grad_norm(grads, 1.0)
    exact = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads.values()))
    np.testing.assert_allclose(total, exact, rtol=1e-12)
    assert all(v.dtype == np.float32 for v in clipped.values())
    np.testing.assert_allclose(np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in clipped.values())), 1.0, rtol=1e-6)


def test_clip_grad_norm_of_zero_gradients_is_zero():
    clipped, total = clip_grad_norm({"b_h": np.zeros(3)}, 1.0)
    assert total == 0.0
    np.testing.assert_array_equal(clipped["b_h"], np.zeros(3))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_value_matches_torch(dtype, rng):
    grads = gradient_dict(rng, dtype)
    clipped = clip_grad_value(grads, 0.3)
    ref, _ = torch_clip(grads, torch.nn.utils.clip_grad_value_, clip_value=0.3)
    for k, g in grads.items():
        assert clipped[k].dtype == dtype and clipped[k] is not g
        np.testing.assert_array_equal(clipped[k], ref[k])
        assert np.max(np.abs(clipped[k])) <= dtype(0.3)


# ---------------------------------------------------------------- spectral radius


def test_spectral_radius_of_diagonal_matrices_is_the_largest_absolute_entry():
    assert spectral_radius(np.diag([0.5, -3.0, 2.0])) == 3.0
    assert spectral_radius(np.diag([0.9])) == 0.9


@pytest.mark.parametrize("r, theta", [(1.7, 0.3), (0.9, 2.0), (1.1, np.pi / 2)])
def test_spectral_radius_of_a_scaled_rotation_is_the_scale(r, theta):
    """r R(theta) has eigenvalues r e^{+-i theta}: complex, both of modulus r."""
    W = r * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    assert np.iscomplexobj(np.linalg.eigvals(W))
    np.testing.assert_allclose(spectral_radius(W), r, rtol=1e-14)


def test_spectral_radius_is_not_the_spectral_norm():
    W = np.array([[0.5, 10.0], [0.0, 0.5]])
    assert spectral_radius(W) == 0.5
    assert np.linalg.norm(W, 2) > 10


@pytest.mark.parametrize("rho", [0.9, 1.1, 3.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scale_to_spectral_radius(rho, dtype, rng):
    W = rng.standard_normal((6, 6)).astype(dtype)
    before = W.copy()
    scaled = scale_to_spectral_radius(W, rho)
    assert scaled.dtype == dtype and scaled is not W
    np.testing.assert_allclose(spectral_radius(scaled), rho, rtol=1e-12 if dtype == np.float64 else 1e-5)
    np.testing.assert_array_equal(W, before)
    c = scaled[0, 0] / W[0, 0]  # one scalar for the whole matrix: eigenvectors unchanged
    np.testing.assert_allclose(scaled, c * W, rtol=1e-12 if dtype == np.float64 else 1e-6)


# ---------------------------------------------------------------- bad input


_P = init_rnn_params(2, 3, np.random.default_rng(0))
_L = init_lstm_params(2, 3, np.random.default_rng(0))
_XS, _H0 = np.zeros((4, 1, 2)), np.zeros((1, 3))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: rnn_lag_jacobian_norms(_XS, _H0, _P, ord=1), r"ord must be 2 \(spectral norm\) or 'fro'.*got 1"),
        (lambda: rnn_lag_jacobian_norms(_XS, _H0, _P, ord="nuc"), "ord must be 2.*got 'nuc'"),
        (lambda: lag_gradient_norms("rnn", _XS, _H0, _P, ord=True), "ord must be 2.*got True"),
        (lambda: rnn_lag_jacobian_norms(_XS, _H0, _P, include_initial=1), "include_initial must be True or False"),
        (lambda: rnn_jacobians(_XS, np.zeros((2, 3)), _P), r"h0 must have shape \(N, H\) = \(1, 3\) \(N = 1 from xs\)"),
        (lambda: rnn_jacobians(_XS[0], _H0, _P), r"xs must have 3 dimensions \(T, N, D\)"),
        (lambda: rnn_jacobians(_XS, _H0, {**_P, "W_hh": _P["W_hh"][:2]}),
         r"params\['W_hh'\] must have shape \(3, 3\) \(D = 2 from xs, H = 3 from h0\); got \(2, 3\)"),
        (lambda: rnn_jacobians(_XS.astype(np.float32), _H0.astype(np.float32), _P), "must share one dtype"),
        (lambda: lag_gradient_norms("transformer", _XS, _H0, _P), r"family must be one of \['rnn', 'lstm', 'gru'\]"),
        (lambda: lag_gradient_norms("lstm", _XS, _H0, _L), r"state0 for the LSTM must be the pair \(h0, c0\).*array"),
        (lambda: lag_gradient_norms("lstm", _XS, (_H0,), _L), r"pair \(h0, c0\).*tuple of length 1"),
        (lambda: lag_gradient_norms("rnn", _XS, (_H0,), _P), r"state0 for the RNN is h0 alone"),
        (lambda: lag_gradient_norms("lstm", _XS, (_H0, np.zeros((1, 2))), _L), r"c0 must have shape \(N, H\) = \(1, 3\)"),
        (lambda: lag_gradient_norms("gru", _XS, _H0, _P), r"GRU params are missing"),
        (lambda: clip_grad_norm({"a": np.ones(2)}, 0.0), "max_norm must be a positive number; got 0.0"),
        (lambda: clip_grad_norm({"a": np.ones(2)}, -1), "max_norm must be a positive number; got -1"),
        (lambda: clip_grad_norm({"a": np.ones(2)}, np.nan), "max_norm must be a positive number; got nan"),
        (lambda: clip_grad_norm({"a": np.ones(2)}, True), "max_norm must be a positive number; got True"),
        (lambda: clip_grad_norm({"a": np.ones(2)}, "1"), "max_norm must be a positive number; got '1'"),
        (lambda: clip_grad_norm([np.ones(2)], 1.0), "grads must be a dict of numpy arrays; got a list"),
        (lambda: clip_grad_norm({}, 1.0), "grads must hold at least one array; got an empty dict"),
        (lambda: clip_grad_norm({"W": np.arange(3)}, 1.0), r"grads\['W'\] must have dtype float32 or float64; got int64"),
        (lambda: clip_grad_norm({"W": [0.5]}, 1.0), r"grads\['W'\] must be a numpy array"),
        (lambda: clip_grad_norm({"W": np.array([1.0, np.inf]), "b": np.ones(1)}, 1.0), r"grads \['W'\] contain nan or inf"),
        (lambda: clip_grad_value({"a": np.ones(2)}, 0), "clip_value must be a positive number; got 0"),
        (lambda: clip_grad_value({"a": np.arange(2)}, 1.0), "float32 or float64; got int64"),
        (lambda: spectral_radius(np.ones((2, 3))), r"W must be a non-empty square matrix \(H, H\); got shape \(2, 3\)"),
        (lambda: spectral_radius(np.ones(3)), r"W must have 2 dimensions \(H, H\)"),
        (lambda: spectral_radius(np.eye(2, dtype=int)), "float32 or float64; got int64"),
        (lambda: scale_to_spectral_radius(np.array([[0.0, 1.0], [0.0, 0.0]]), 1.0), "spectral radius 0"),
        (lambda: scale_to_spectral_radius(np.eye(2), 0.0), "rho must be a positive number; got 0.0"),
        (lambda: scale_to_spectral_radius(np.eye(2), np.inf), "rho must be finite; got inf"),
    ],
)
def test_bad_input_raises_a_value_error_that_says_what_came(call, message):
    with pytest.raises(ValueError, match=message):
        call()
