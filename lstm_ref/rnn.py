"""The simple (Elman) recurrent network: h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h).

Forward and backward live side by side. Shapes follow the course notation: a sequence is
time-major ``(T, N, D)``, hidden states are ``(T, N, H)``, one step's input is ``(N, D)``.
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

__all__ = [
    "init_rnn_params",
    "rnn_step_forward",
    "rnn_step_backward",
    "rnn_forward",
    "rnn_backward",
    "rnn_param_shapes",
]


def rnn_param_shapes(D: int, H: int) -> dict[str, tuple[int, ...]]:
    """The parameter names of an RNN and their shapes: W_xh (D, H), W_hh (H, H), b_h (H,)."""
    return {"W_xh": (D, H), "W_hh": (H, H), "b_h": (H,)}


def init_rnn_params(D: int, H: int, rng: np.random.Generator, dtype=np.float64) -> dict[str, np.ndarray]:
    """Random RNN parameters, uniform in (-1/sqrt(H), 1/sqrt(H)) as PyTorch initialises them.

    D: input size, H: hidden size, rng: a numpy Generator, dtype: float32 or float64.
    Returns {"W_xh": (D, H), "W_hh": (H, H), "b_h": (H,)}.
    """
    check_sizes(D=D, H=H)
    check_rng(rng)
    bound = 1.0 / np.sqrt(H)
    return {k: rng.uniform(-bound, bound, size=s).astype(dtype) for k, s in rnn_param_shapes(D, H).items()}


def _check_step_inputs(x, h_prev, params) -> None:
    check_cell_inputs("RNN", x, {"h_prev": h_prev}, params, rnn_param_shapes)


def rnn_step_forward(x: np.ndarray, h_prev: np.ndarray, params: dict) -> tuple[np.ndarray, Cache]:
    """One step of the RNN: h = tanh(x W_xh + h_prev W_hh + b_h).

    x: (N, D) inputs at this step; h_prev: (N, H) previous hidden state;
    params: {"W_xh": (D, H), "W_hh": (H, H), "b_h": (H,)}.
    Returns h: (N, H) and the cache for rnn_step_backward.
    """
    _check_step_inputs(x, h_prev, params)
    a = x @ params["W_xh"] + h_prev @ params["W_hh"] + params["b_h"]  # (N, H) pre-activation
    h = np.tanh(a)  # (N, H)
    # The cache keeps h, not a: tanh'(a) = 1 - h**2 needs only the output.
    return h, Cache("rnn_step", x=x, h_prev=h_prev, h=h, params=params)


def rnn_step_backward(dh: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, dict]:
    """Backward pass of one RNN step.

    dh: (N, H) gradient of the loss with respect to this step's output h;
    cache: from rnn_step_forward.
    Returns dx: (N, D), dh_prev: (N, H) and grads {"W_xh": (D, H), "W_hh": (H, H), "b_h": (H,)}.
    """
    check_cache("cache", cache, "rnn_step")
    check_like("dh", dh, cache.h, "(N, H)")
    p = cache.params
    da = dh * (1.0 - cache.h * cache.h)  # (N, H) through tanh
    dx = da @ p["W_xh"].T  # (N, D)
    dh_prev = da @ p["W_hh"].T  # (N, H)
    grads = {
        "W_xh": cache.x.T @ da,  # (D, H)
        "W_hh": cache.h_prev.T @ da,  # (H, H)
        "b_h": da.sum(axis=0),  # (H,)
    }
    return dx, dh_prev, grads


def rnn_forward(xs: np.ndarray, h0: np.ndarray, params: dict) -> tuple[np.ndarray, Cache]:
    """Run the RNN over a whole sequence.

    xs: (T, N, D) inputs; h0: (N, H) initial hidden state;
    params: {"W_xh": (D, H), "W_hh": (H, H), "b_h": (H,)}.
    Returns hs: (T, N, H), the hidden state after every step, and the cache for rnn_backward.
    """
    check_sequence("xs", xs)
    T, N, D = xs.shape
    _check_step_inputs(xs[0], h0, params)
    W_hh = params["W_hh"]
    # Written for speed: the input projection of all T steps is one matrix product.
    hs = (xs.reshape(T * N, D) @ params["W_xh"]).reshape(T, N, -1)  # (T, N, H)
    hs += params["b_h"]
    h = h0
    for t in range(T):
        a = hs[t]  # (N, H), becomes h_t in place
        a += h @ W_hh
        np.tanh(a, out=a)
        h = a
    return hs, Cache("rnn", xs=xs, h0=h0, hs=hs, params=params)


def rnn_backward(dhs: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, dict]:
    """Backpropagation through time over a whole sequence.

    dhs: (T, N, H) gradient of the loss with respect to every hidden state (zeros where a
    step's output does not enter the loss); cache: from rnn_forward.
    Returns dxs: (T, N, D), dh0: (N, H) and grads {"W_xh": (D, H), "W_hh": (H, H), "b_h": (H,)},
    each parameter gradient summed over all T steps.
    """
    check_cache("cache", cache, "rnn")
    hs, xs, p = cache.hs, cache.xs, cache.params
    check_like("dhs", dhs, hs, "(T, N, H)")
    T, N, D = xs.shape
    H = hs.shape[2]
    W_hh_T = p["W_hh"].T
    das = np.empty_like(hs)  # (T, N, H) gradients of the pre-activations
    dh_next = np.zeros_like(cache.h0)  # (N, H) what flows back from step t+1
    for t in range(T - 1, -1, -1):
        da = das[t]
        np.add(dhs[t], dh_next, out=da)
        da *= 1.0 - hs[t] * hs[t]
        dh_next = da @ W_hh_T
    da_flat = das.reshape(T * N, H)  # (T*N, H)
    h_prev = np.concatenate([cache.h0[None], hs[:-1]], axis=0).reshape(T * N, H)  # (T*N, H)
    grads = {
        "W_xh": xs.reshape(T * N, D).T @ da_flat,  # (D, H)
        "W_hh": h_prev.T @ da_flat,  # (H, H)
        "b_h": da_flat.sum(axis=0),  # (H,)
    }
    dxs = (da_flat @ p["W_xh"].T).reshape(T, N, D)  # (T, N, D)
    return dxs, dh_next, grads
