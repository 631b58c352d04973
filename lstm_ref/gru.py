"""The gated recurrent unit (GRU), forward and backward.

    z_t  = sigmoid(x_t W_xz + h_{t-1} W_hz + b_z)            update gate
    r_t  = sigmoid(x_t W_xr + h_{t-1} W_hr + b_r)            reset gate
    h~_t = tanh(x_t W_xh + r_t * (h_{t-1} W_hh) + b_h)       candidate
    h_t  = z_t * h_{t-1} + (1 - z_t) * h~_t

The reset gate multiplies the recurrent product h_{t-1} W_hh, not h_{t-1} itself. This is
the form PyTorch's nn.GRU and cuDNN compute, so weights move between the two exactly; the
original paper (Cho et al., 2014) writes (r_t * h_{t-1}) W_hh instead. z_t close to 1 keeps
the old state, the GRU's counterpart of an LSTM forget gate that is open.
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
    "GRU_GATES",
    "gru_param_shapes",
    "init_gru_params",
    "count_gru_params",
    "gru_step_forward",
    "gru_step_backward",
    "gru_forward",
    "gru_backward",
]

#: Gate letters in the order the sequence functions stack them: update, reset, candidate.
GRU_GATES = ("z", "r", "h")


def gru_param_shapes(D: int, H: int) -> dict[str, tuple[int, ...]]:
    """The GRU parameter names and shapes: W_x* (D, H), W_h* (H, H), b_* (H,) for * in z, r, h."""
    shapes: dict[str, tuple[int, ...]] = {}
    shapes.update({f"W_x{g}": (D, H) for g in GRU_GATES})
    shapes.update({f"W_h{g}": (H, H) for g in GRU_GATES})
    shapes.update({f"b_{g}": (H,) for g in GRU_GATES})
    return shapes


def init_gru_params(D: int, H: int, rng: np.random.Generator, dtype=np.float64) -> dict[str, np.ndarray]:
    """Random GRU parameters, uniform in (-1/sqrt(H), 1/sqrt(H)) as PyTorch initialises them.

    D: input size, H: hidden size, rng: a numpy Generator, dtype: float32 or float64.
    Returns W_xz, W_xr, W_xh (D, H); W_hz, W_hr, W_hh (H, H); b_z, b_r, b_h (H,).
    """
    check_sizes(D=D, H=H)
    check_rng(rng)
    bound = 1.0 / np.sqrt(H)
    return {k: rng.uniform(-bound, bound, size=s).astype(dtype) for k, s in gru_param_shapes(D, H).items()}


def count_gru_params(D: int, H: int, biases: int = 1) -> int:
    """Number of trainable parameters of one GRU layer: 3 H (H + D) weights + 3 H per bias vector.

    D: input size, H: hidden size, biases: 1 as in the equations above, 2 as in nn.GRU.
    """
    check_sizes(D=D, H=H)
    if isinstance(biases, bool) or biases not in (0, 1, 2):
        raise ValueError(f"biases must be 0, 1 or 2 (PyTorch); got {biases!r}.")
    return int(3 * H * (H + D) + 3 * H * biases)


def _check_step_inputs(x, h_prev, params) -> None:
    check_cell_inputs("GRU", x, {"h_prev": h_prev}, params, gru_param_shapes)


def gru_step_forward(x: np.ndarray, h_prev: np.ndarray, params: dict) -> tuple[np.ndarray, Cache]:
    """One step of the GRU.

    x: (N, D) inputs at this step; h_prev: (N, H) previous hidden state;
    params: the nine arrays of gru_param_shapes(D, H).
    Returns h: (N, H) and the cache for gru_step_backward.
    """
    _check_step_inputs(x, h_prev, params)
    p = params
    z = sigmoid(x @ p["W_xz"] + h_prev @ p["W_hz"] + p["b_z"])  # (N, H) update gate
    r = sigmoid(x @ p["W_xr"] + h_prev @ p["W_hr"] + p["b_r"])  # (N, H) reset gate
    hW = h_prev @ p["W_hh"]  # (N, H) kept: the reset gate's gradient is dr = da_h * hW
    h_tilde = np.tanh(x @ p["W_xh"] + r * hW + p["b_h"])  # (N, H) candidate
    h = z * h_prev + (1.0 - z) * h_tilde  # (N, H)
    return h, Cache("gru_step", x=x, h_prev=h_prev, z=z, r=r, hW=hW, h_tilde=h_tilde, params=p)


def gru_step_backward(dh: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, dict]:
    """Backward pass of one GRU step.

    dh: (N, H) gradient of the loss with respect to this step's h; cache: from gru_step_forward.
    Returns dx: (N, D), dh_prev: (N, H) and grads, a dict with the parameters' keys and shapes.
    """
    check_cache("cache", cache, "gru_step")
    check_like("dh", dh, cache.h_prev, "(N, H)")
    k, p = cache, cache.params
    # h = z * h_prev + (1 - z) * h~
    dz = dh * (k.h_prev - k.h_tilde)  # (N, H)
    dh_tilde = dh * (1.0 - k.z)  # (N, H)
    da_h = dh_tilde * (1.0 - k.h_tilde * k.h_tilde)  # (N, H) candidate pre-activation
    dr = da_h * k.hW  # (N, H)
    da_z = dz * k.z * (1.0 - k.z)  # (N, H)
    da_r = dr * k.r * (1.0 - k.r)  # (N, H)
    da_hh = da_h * k.r  # (N, H) what reaches h_prev W_hh through the reset gate
    dx = da_z @ p["W_xz"].T + da_r @ p["W_xr"].T + da_h @ p["W_xh"].T  # (N, D)
    dh_prev = dh * k.z + da_z @ p["W_hz"].T + da_r @ p["W_hr"].T + da_hh @ p["W_hh"].T  # (N, H)
    grads = {
        "W_xz": k.x.T @ da_z,  # (D, H)
        "W_xr": k.x.T @ da_r,
        "W_xh": k.x.T @ da_h,
        "W_hz": k.h_prev.T @ da_z,  # (H, H)
        "W_hr": k.h_prev.T @ da_r,
        "W_hh": k.h_prev.T @ da_hh,
        "b_z": da_z.sum(axis=0),  # (H,)
        "b_r": da_r.sum(axis=0),
        "b_h": da_h.sum(axis=0),
    }
    return dx, dh_prev, grads


def _stack(params: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack the per-gate parameters in GRU_GATES order: W_x (D, 3H), W_h (H, 3H), b (3H,)."""
    W_x = np.concatenate([params[f"W_x{g}"] for g in GRU_GATES], axis=1)  # (D, 3H)
    W_h = np.concatenate([params[f"W_h{g}"] for g in GRU_GATES], axis=1)  # (H, 3H)
    b = np.concatenate([params[f"b_{g}"] for g in GRU_GATES])  # (3H,)
    return W_x, W_h, b


def gru_forward(xs: np.ndarray, h0: np.ndarray, params: dict) -> tuple[np.ndarray, Cache]:
    """Run the GRU over a whole sequence.

    xs: (T, N, D) inputs; h0: (N, H) initial hidden state; params: gru_param_shapes(D, H).
    Returns hs: (T, N, H), the hidden state after every step, and the cache for gru_backward.
    """
    check_sequence("xs", xs)
    T, N, D = xs.shape
    _check_step_inputs(xs[0], h0, params)
    H = h0.shape[1]
    W_x, W_h, b = _stack(params)
    # Written for speed: one input product for all steps, one recurrent product per step.
    xw = (xs.reshape(T * N, D) @ W_x).reshape(T, N, 3 * H)  # (T, N, 3H), becomes z, r, h~
    xw += b
    hWs = np.empty((T, N, H), dtype=xs.dtype)  # h_{t-1} W_hh for every step
    hs = np.empty((T, N, H), dtype=xs.dtype)
    rec = np.empty((N, 3 * H), dtype=xs.dtype)
    h = h0
    for t in range(T):
        a = xw[t]  # (N, 3H)
        np.matmul(h, W_h, out=rec)
        zr = a[:, : 2 * H]
        zr += rec[:, : 2 * H]
        # sigmoid(v) = (1 + tanh(v / 2)) / 2: bounded for every v, and computable in place.
        zr *= 0.5
        np.tanh(zr, out=zr)
        zr += 1.0
        zr *= 0.5
        z, r, cand = a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
        hWs[t] = rec[:, 2 * H :]
        cand += r * hWs[t]
        np.tanh(cand, out=cand)
        # h = z * h_prev + (1 - z) * h~ = h~ + z * (h_prev - h~)
        np.subtract(h, cand, out=hs[t])
        hs[t] *= z
        hs[t] += cand
        h = hs[t]
    return hs, Cache("gru", xs=xs, h0=h0, hs=hs, acts=xw, hWs=hWs, W_x=W_x, W_h=W_h)


def gru_backward(dhs: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, dict]:
    """Backpropagation through time for the GRU over a whole sequence.

    dhs: (T, N, H) gradient of the loss with respect to every hidden state; cache: from
    gru_forward. Returns dxs: (T, N, D), dh0: (N, H) and grads, a dict with the parameters'
    keys and shapes, each summed over all T steps.
    """
    check_cache("cache", cache, "gru")
    k = cache
    check_like("dhs", dhs, k.hs, "(T, N, H)")
    T, N, D = k.xs.shape
    H = k.hs.shape[2]
    W_h_T = k.W_h.T  # (3H, H)
    das = np.empty_like(k.acts)  # (T, N, 3H) pre-activation gradients; the h-part is da_h
    dhh = np.empty((T, N, H), dtype=dhs.dtype)  # da_h * r: the gradient reaching h_{t-1} W_hh
    dh_rec = np.empty((N, 3 * H), dtype=dhs.dtype)  # recurrent-side gradients [da_z, da_r, da_h * r]
    dh = np.zeros((N, H), dtype=dhs.dtype)
    for t in range(T - 1, -1, -1):
        a = k.acts[t]
        z, r, cand = a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
        h_prev = k.hs[t - 1] if t > 0 else k.h0
        dh += dhs[t]
        da = das[t]
        da_z, da_r, da_h = da[:, :H], da[:, H : 2 * H], da[:, 2 * H :]
        np.multiply(dh, h_prev - cand, out=da_z)
        da_z *= z * (1.0 - z)
        np.multiply(dh, 1.0 - z, out=da_h)
        da_h *= 1.0 - cand * cand
        np.multiply(da_h, k.hWs[t], out=da_r)
        da_r *= r * (1.0 - r)
        np.multiply(da_h, r, out=dhh[t])
        dh_rec[:, : 2 * H] = da[:, : 2 * H]
        dh_rec[:, 2 * H :] = dhh[t]
        dh *= z
        dh += dh_rec @ W_h_T
    da_flat = das.reshape(T * N, 3 * H)  # (T*N, 3H)
    h_prev = np.concatenate([k.h0[None], k.hs[:-1]], axis=0).reshape(T * N, H)  # (T*N, H)
    rec_flat = np.concatenate([da_flat[:, : 2 * H], dhh.reshape(T * N, H)], axis=1)  # (T*N, 3H)
    dW_x = k.xs.reshape(T * N, D).T @ da_flat  # (D, 3H)
    dW_h = h_prev.T @ rec_flat  # (H, 3H)
    db = da_flat.sum(axis=0)  # (3H,)
    dxs = (da_flat @ k.W_x.T).reshape(T, N, D)  # (T, N, D)
    grads = {}
    for n, gate in enumerate(GRU_GATES):
        cols = slice(n * H, (n + 1) * H)
        grads[f"W_x{gate}"] = dW_x[:, cols].copy()
        grads[f"W_h{gate}"] = dW_h[:, cols].copy()
        grads[f"b_{gate}"] = db[cols].copy()
    return dxs, dh, grads
