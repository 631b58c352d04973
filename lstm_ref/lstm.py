"""The LSTM cell, gate by gate, forward and backward.

    i_t  = sigmoid(x_t W_xi + h_{t-1} W_hi + b_i)      input gate
    f_t  = sigmoid(x_t W_xf + h_{t-1} W_hf + b_f)      forget gate
    o_t  = sigmoid(x_t W_xo + h_{t-1} W_ho + b_o)      output gate
    c~_t = tanh(x_t W_xc + h_{t-1} W_hc + b_c)         candidate
    c_t  = f_t * c_{t-1} + i_t * c~_t                  cell state (the conveyor belt)
    h_t  = o_t * tanh(c_t)                             hidden state, what the next layer reads

The step functions are written one line per gate, to be read next to the equations. The
sequence functions compute the same thing for speed: the four gates are stacked into one
(D, 4H) and one (H, 4H) matrix, the input projection of all T steps is a single product,
and activations and gradients are computed in place in preallocated buffers.
"""

from __future__ import annotations

import numpy as np

from ._validate import (
    Cache,
    check_cell_inputs,
    check_cache,
    check_like,
    check_rng,
    check_sequence,
    check_sizes,
)
from .activations import sigmoid

__all__ = [
    "GATES",
    "init_lstm_params",
    "count_lstm_params",
    "lstm_param_shapes",
    "lstm_step_forward",
    "lstm_step_backward",
    "lstm_forward",
    "lstm_backward",
]

#: The gate letters, in the order of the parameter names and of the equations: input, forget, output,
#: candidate. (The sequence functions stack them in another order, _STACK below, for speed.)
GATES = ("i", "f", "o", "c")


def lstm_param_shapes(D: int, H: int) -> dict[str, tuple[int, ...]]:
    """The LSTM parameter names and shapes: W_x* (D, H), W_h* (H, H), b_* (H,) for * in i, f, o, c."""
    shapes: dict[str, tuple[int, ...]] = {}
    shapes.update({f"W_x{g}": (D, H) for g in GATES})
    shapes.update({f"W_h{g}": (H, H) for g in GATES})
    shapes.update({f"b_{g}": (H,) for g in GATES})
    return shapes


def init_lstm_params(
    D: int, H: int, rng: np.random.Generator, dtype=np.float64, forget_bias: float = 0.0
) -> dict[str, np.ndarray]:
    """Random LSTM parameters, uniform in (-1/sqrt(H), 1/sqrt(H)) as PyTorch initialises them.

    D: input size, H: hidden size, rng: a numpy Generator, dtype: float32 or float64,
    forget_bias: a constant added to b_f (1.0 is the common choice that keeps the
    cell state open at the start of training).
    Returns a dict with W_xi, W_xf, W_xo, W_xc (D, H); W_hi, W_hf, W_ho, W_hc (H, H);
    b_i, b_f, b_o, b_c (H,).
    """
    check_sizes(D=D, H=H)
    check_rng(rng)
    bound = 1.0 / np.sqrt(H)
    params = {k: rng.uniform(-bound, bound, size=s).astype(dtype) for k, s in lstm_param_shapes(D, H).items()}
    params["b_f"] += np.asarray(forget_bias, dtype=dtype)
    return params


def count_lstm_params(D: int, H: int, biases: int = 1) -> int:
    """Number of trainable parameters of one LSTM layer: 4 H (H + D) weights + 4 H per bias vector.

    D: input size, H: hidden size, biases: bias vectors per gate (1 as in Keras and in the
    equations, 2 as in PyTorch's nn.LSTM, which has b_ih and b_hh; 0 for none).
    Returns an int; count_lstm_params(512, 1024) == 6_295_552.
    """
    check_sizes(D=D, H=H)
    if isinstance(biases, bool) or biases not in (0, 1, 2):
        raise ValueError(f"biases must be 0, 1 (Keras) or 2 (PyTorch); got {biases!r}.")
    return int(4 * H * (H + D) + 4 * H * biases)


def _check_step_inputs(x, h_prev, c_prev, params) -> None:
    check_cell_inputs("LSTM", x, {"h_prev": h_prev, "c_prev": c_prev}, params, lstm_param_shapes)


def lstm_step_forward(
    x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, params: dict
) -> tuple[np.ndarray, np.ndarray, Cache]:
    """One step of the LSTM cell.

    x: (N, D) inputs at this step; h_prev: (N, H) and c_prev: (N, H) the previous hidden
    and cell states; params: the twelve arrays of lstm_param_shapes(D, H).
    Returns h: (N, H), c: (N, H) and the cache for lstm_step_backward.
    """
    _check_step_inputs(x, h_prev, c_prev, params)
    p = params
    i = sigmoid(x @ p["W_xi"] + h_prev @ p["W_hi"] + p["b_i"])  # (N, H) input gate
    f = sigmoid(x @ p["W_xf"] + h_prev @ p["W_hf"] + p["b_f"])  # (N, H) forget gate
    o = sigmoid(x @ p["W_xo"] + h_prev @ p["W_ho"] + p["b_o"])  # (N, H) output gate
    c_tilde = np.tanh(x @ p["W_xc"] + h_prev @ p["W_hc"] + p["b_c"])  # (N, H) candidate
    c = f * c_prev + i * c_tilde  # (N, H) cell state
    tanh_c = np.tanh(c)  # (N, H) kept: the backward pass needs tanh'(c) = 1 - tanh(c)**2
    h = o * tanh_c  # (N, H)
    cache = Cache(
        "lstm_step", x=x, h_prev=h_prev, c_prev=c_prev, i=i, f=f, o=o, c_tilde=c_tilde, c=c, tanh_c=tanh_c, params=p
    )
    return h, c, cache


def lstm_step_backward(dh: np.ndarray, dc: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Backward pass of one LSTM step.

    dh: (N, H) gradient of the loss with respect to this step's h; dc: (N, H) gradient with
    respect to this step's c arriving from the next step (zeros at the last step);
    cache: from lstm_step_forward.
    Returns dx: (N, D), dh_prev: (N, H), dc_prev: (N, H) and grads, a dict with the same
    keys and shapes as the parameters.
    """
    check_cache("cache", cache, "lstm_step")
    check_like("dh", dh, cache.h_prev, "(N, H)")
    check_like("dc", dc, cache.c_prev, "(N, H)")
    k = cache
    # h = o * tanh(c): dh reaches o directly and c through tanh; c also gets dc from step t+1.
    do = dh * k.tanh_c  # (N, H)
    dc_total = dc + dh * k.o * (1.0 - k.tanh_c * k.tanh_c)  # (N, H)
    # c = f * c_prev + i * c~: each factor's gradient is dc times the other factor.
    df = dc_total * k.c_prev  # (N, H)
    di = dc_total * k.c_tilde  # (N, H)
    dc_tilde = dc_total * k.i  # (N, H)
    dc_prev = dc_total * k.f  # (N, H) the constant error carousel: scaled by f, not by a matrix
    # Through the nonlinearities to the pre-activations.
    da = {
        "i": di * k.i * (1.0 - k.i),  # (N, H)
        "f": df * k.f * (1.0 - k.f),  # (N, H)
        "o": do * k.o * (1.0 - k.o),  # (N, H)
        "c": dc_tilde * (1.0 - k.c_tilde * k.c_tilde),  # (N, H)
    }
    p = k.params
    dx = sum(da[g] @ p[f"W_x{g}"].T for g in GATES)  # (N, D) all four gates read x
    dh_prev = sum(da[g] @ p[f"W_h{g}"].T for g in GATES)  # (N, H) all four gates read h_prev
    grads = {}
    grads.update({f"W_x{g}": k.x.T @ da[g] for g in GATES})  # (D, H) each
    grads.update({f"W_h{g}": k.h_prev.T @ da[g] for g in GATES})  # (H, H) each
    grads.update({f"b_{g}": da[g].sum(axis=0) for g in GATES})  # (H,) each
    return dx, dh_prev, dc_prev, grads


# The sequence functions stack the gates in this order: the three sigmoid gates first, so one
# in-place pass covers them, then the candidate.
_STACK = ("o", "i", "f", "c")


def _stack(params: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack the per-gate parameters in _STACK order: W_x (D, 4H), W_h (H, 4H), b (4H,)."""
    W_x = np.concatenate([params[f"W_x{g}"] for g in _STACK], axis=1)  # (D, 4H)
    W_h = np.concatenate([params[f"W_h{g}"] for g in _STACK], axis=1)  # (H, 4H)
    b = np.concatenate([params[f"b_{g}"] for g in _STACK])  # (4H,)
    return W_x, W_h, b


def lstm_forward(
    xs: np.ndarray, h0: np.ndarray, c0: np.ndarray, params: dict
) -> tuple[np.ndarray, np.ndarray, Cache]:
    """Run the LSTM over a whole sequence.

    xs: (T, N, D) inputs; h0: (N, H) and c0: (N, H) initial states;
    params: the twelve arrays of lstm_param_shapes(D, H).
    Returns hs: (T, N, H) and cs: (T, N, H), the hidden and cell states after every step,
    and the cache for lstm_backward.
    """
    check_sequence("xs", xs)
    T, N, D = xs.shape
    _check_step_inputs(xs[0], h0, c0, params)
    H = h0.shape[1]
    W_x, W_h, b = _stack(params)
    # Activations go through exp, which numpy computes two to three times faster than tanh in
    # float64: sigmoid(z) = 1 / (1 + exp(-z)) and tanh(z) = 2 / (1 + exp(-2z)) - 1. The factors
    # -1 (gates) and -2 (candidate) are folded into scaled copies of the weights once, so each
    # step's pre-activation arrives ready for exp. Where exp overflows to inf the results are
    # the exact limits 0 and -1, so the overflow warning is silenced for this loop only.
    scale = np.concatenate([np.full(3 * H, -1.0), np.full(H, -2.0)]).astype(xs.dtype)  # (4H,)
    W_h_scaled = W_h * scale  # (H, 4H)
    # acts starts as the (scaled) input projection of every step, one product for the whole
    # sequence, and is turned into the gate activations in place, step by step.
    acts = (xs.reshape(T * N, D) @ (W_x * scale)).reshape(T, N, 4 * H)  # (T, N, 4H) in _STACK order
    acts += b * scale
    hs = np.empty((T, N, H), dtype=xs.dtype)
    cs = np.empty((T, N, H), dtype=xs.dtype)
    tanh_cs = np.empty((T, N, H), dtype=xs.dtype)
    rec = np.empty((N, 4 * H), dtype=xs.dtype)  # h_{t-1} W_h (scaled), reused every step
    ig = np.empty((N, H), dtype=xs.dtype)  # i * c~, reused every step
    exp_tanh = xs.dtype == np.float64  # in float32, numpy's own tanh is the faster one
    h, c = h0, c0
    with np.errstate(over="ignore"):
        for t in range(T):
            a = acts[t]  # (N, 4H) view
            np.matmul(h, W_h_scaled, out=rec)
            a += rec
            np.exp(a, out=a)
            a += 1.0
            np.reciprocal(a, out=a)  # o, i, f are now sigmoids; the candidate is (tanh + 1) / 2
            c_tilde = a[:, 3 * H :]
            c_tilde *= 2.0
            c_tilde -= 1.0
            o, i, f = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H]
            cn = cs[t]
            np.multiply(f, c, out=cn)
            np.multiply(i, c_tilde, out=ig)
            cn += ig
            tc = tanh_cs[t]
            if exp_tanh:
                np.multiply(cn, -2.0, out=tc)
                np.exp(tc, out=tc)
                tc += 1.0
                np.divide(2.0, tc, out=tc)
                tc -= 1.0
            else:
                np.tanh(cn, out=tc)
            np.multiply(o, tc, out=hs[t])
            h, c = hs[t], cn
    cache = Cache("lstm", xs=xs, h0=h0, c0=c0, hs=hs, cs=cs, tanh_cs=tanh_cs, acts=acts, W_x=W_x, W_h=W_h)
    return hs, cs, cache


def lstm_backward(dhs: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Backpropagation through time for the LSTM over a whole sequence.

    dhs: (T, N, H) gradient of the loss with respect to every hidden state (zeros where a
    step's output does not enter the loss); cache: from lstm_forward.
    Returns dxs: (T, N, D), dh0: (N, H), dc0: (N, H) and grads, a dict with the same keys
    and shapes as the parameters, each summed over all T steps.
    """
    check_cache("cache", cache, "lstm")
    k = cache
    check_like("dhs", dhs, k.hs, "(T, N, H)")
    T, N, D = k.xs.shape
    H = k.hs.shape[2]
    W_h_T = k.W_h.T  # (4H, H)
    das = np.empty_like(k.acts)  # (T, N, 4H) gradients of the stacked pre-activations
    dh = np.zeros((N, H), dtype=dhs.dtype)  # gradient on h_t: from the loss and from step t+1
    dc = np.zeros((N, H), dtype=dhs.dtype)  # gradient on c_t from step t+1
    # Two scratch buffers, reused at every step: the loop allocates nothing.
    u = np.empty((N, H), dtype=dhs.dtype)
    v = np.empty((N, H), dtype=dhs.dtype)
    for t in range(T - 1, -1, -1):
        a, da = k.acts[t], das[t]  # (N, 4H) each, in _STACK order o, i, f, c~
        o, i, f, c_tilde = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        da_o, da_i, da_f, da_c = da[:, :H], da[:, H : 2 * H], da[:, 2 * H : 3 * H], da[:, 3 * H :]
        tc = k.tanh_cs[t]
        c_prev = k.cs[t - 1] if t > 0 else k.c0
        dh += dhs[t]
        # output gate: da_o = dh * tanh(c) * o (1 - o)
        np.subtract(1.0, o, out=u)
        u *= o
        u *= tc
        np.multiply(dh, u, out=da_o)
        # cell: dc += dh * o * (1 - tanh(c)^2)
        np.multiply(tc, tc, out=u)
        np.subtract(1.0, u, out=u)
        u *= o
        u *= dh
        dc += u
        # input gate: da_i = dc * c~ * i (1 - i); candidate: da_c = dc * i * (1 - c~^2)
        np.subtract(1.0, i, out=u)
        u *= i
        u *= c_tilde
        np.multiply(dc, u, out=da_i)
        np.multiply(c_tilde, c_tilde, out=v)
        np.subtract(1.0, v, out=v)
        v *= i
        np.multiply(dc, v, out=da_c)
        # forget gate: da_f = dc * c_prev * f (1 - f)
        np.subtract(1.0, f, out=u)
        u *= f
        u *= c_prev
        np.multiply(dc, u, out=da_f)
        dc *= f  # the carousel: dc_{t-1} = dc_t * f_t
        np.matmul(da, W_h_T, out=dh)
    da_flat = das.reshape(T * N, 4 * H)  # (T*N, 4H)
    h_prev = np.concatenate([k.h0[None], k.hs[:-1]], axis=0).reshape(T * N, H)  # (T*N, H)
    dW_x = k.xs.reshape(T * N, D).T @ da_flat  # (D, 4H)
    dW_h = h_prev.T @ da_flat  # (H, 4H)
    db = da_flat.sum(axis=0)  # (4H,)
    dxs = (da_flat @ k.W_x.T).reshape(T, N, D)  # (T, N, D)
    grads = {}
    for n, gate in enumerate(_STACK):
        cols = slice(n * H, (n + 1) * H)
        grads[f"W_x{gate}"] = np.ascontiguousarray(dW_x[:, cols])
        grads[f"W_h{gate}"] = np.ascontiguousarray(dW_h[:, cols])
        grads[f"b_{gate}"] = db[cols].copy()
    return dxs, dh, dc, {key: grads[key] for key in lstm_param_shapes(D, H)}
