"""How gradients travel back through time: Jacobian products, per-lag norms, clipping.

Chapter 3 measures why a plain RNN forgets (the gradient that reaches k steps back is a
product of k Jacobians), chapter 5 compares the RNN with the LSTM on the same data, and both
use gradient clipping. Jacobians are written in the column-vector convention of the
equations: J[j, k] = d out_j / d in_k, even though the cells compute with row vectors (x @ W).
"""

from __future__ import annotations

import numpy as np

from ._validate import check_array, check_sequence
from .gru import gru_backward, gru_forward
from .lstm import lstm_backward, lstm_forward
from .rnn import rnn_backward, rnn_forward

__all__ = [
    "rnn_jacobians",
    "rnn_lag_jacobian_norms",
    "lag_gradient_norms",
    "clip_grad_norm",
    "clip_grad_value",
    "spectral_radius",
    "scale_to_spectral_radius",
]


def rnn_jacobians(xs: np.ndarray, h0: np.ndarray, params: dict) -> np.ndarray:
    """The Jacobian of every RNN step, J_t = d h_t / d h_{t-1} = diag(1 - h_t**2) W_hh^T.

    xs: (T, N, D), h0: (N, H), params: the RNN's W_xh (D, H), W_hh (H, H), b_h (H,).
    Returns J: (T, N, H, H) with J[t, n, j, k] = d h_t[n, j] / d h_{t-1}[n, k]. The transpose
    appears because the code computes h_{t-1} @ W_hh: entry k of h_{t-1} reaches entry j of
    h_t through W_hh[k, j].
    """
    hs, _ = rnn_forward(xs, h0, params)  # validates everything
    return (1.0 - hs * hs)[..., :, None] * params["W_hh"].T  # (T, N, H, H)


def _norm(matrices: np.ndarray, ord) -> np.ndarray:
    if ord == 2:
        return np.linalg.norm(matrices, ord=2, axis=(-2, -1))
    if ord == "fro":
        return np.linalg.norm(matrices, ord="fro", axis=(-2, -1))
    raise ValueError(f"ord must be 2 (spectral norm) or 'fro' (Frobenius); got {ord!r}.")


def rnn_lag_jacobian_norms(xs: np.ndarray, h0: np.ndarray, params: dict, ord=2) -> np.ndarray:
    """Norm of d h_{T-1} / d h_{T-1-k} for every lag k, from the product of the step Jacobians.

    xs: (T, N, D), h0: (N, H), params: the RNN's; ord: 2 (largest singular value) or "fro".
    Returns norms: (T, N); row k holds || J_{T-1} J_{T-2} ... J_{T-k} || per sample, so row 0
    is the identity (norm 1 for ord=2). The product is built from the last step backwards,
    the order in which backpropagation multiplies it.
    """
    if ord not in (2, "fro"):
        _norm(np.eye(1), ord)  # raises the error
    J = rnn_jacobians(xs, h0, params)  # (T, N, H, H)
    T, N, H = J.shape[0], J.shape[1], J.shape[2]
    product = np.broadcast_to(np.eye(H, dtype=J.dtype), (N, H, H)).copy()  # (N, H, H)
    norms = np.empty((T, N), dtype=J.dtype)
    norms[0] = _norm(product, ord)
    for k in range(1, T):
        product = product @ J[T - k]  # (N, H, H): now d h_{T-1} / d h_{T-1-k}
        norms[k] = _norm(product, ord)
    return norms


_FAMILIES = {"rnn": 1, "lstm": 2, "gru": 1}


def lag_gradient_norms(family: str, xs: np.ndarray, state0: tuple, params: dict) -> np.ndarray:
    """Frobenius norm of d h_{T-1} / d x_t for every t, for an RNN, LSTM or GRU.

    family: "rnn", "lstm" or "gru"; xs: (T, N, D); state0: (h0,) for the RNN and GRU,
    (h0, c0) for the LSTM, each (N, H); params: the family's parameter dict.
    Returns norms: (T, N); row k is || d h_{T-1} / d x_{T-1-k} || per sample. It is computed
    with the family's own backward pass, once per unit of h_{T-1} (H passes): the gradient
    that the last output sends back to an input k steps earlier, the quantity chapter 5
    compares between the RNN and the LSTM.
    """
    if family not in _FAMILIES:
        raise ValueError(f"family must be one of {sorted(_FAMILIES)}; got {family!r}.")
    if not isinstance(state0, tuple) or len(state0) != _FAMILIES[family]:
        want = "(h0, c0)" if family == "lstm" else "(h0,)"
        raise ValueError(f"state0 for the {family.upper()} must be a tuple {want}; got {type(state0).__name__} "
                         f"of length {len(state0) if isinstance(state0, tuple) else '-'}.")
    check_sequence("xs", xs)
    T, N, D = xs.shape
    if family == "lstm":
        hs, _, cache = lstm_forward(xs, *state0, params)
    elif family == "gru":
        hs, cache = gru_forward(xs, *state0, params)
    else:
        hs, cache = rnn_forward(xs, *state0, params)
    backward = {"rnn": rnn_backward, "lstm": lstm_backward, "gru": gru_backward}[family]
    H = hs.shape[2]
    squares = np.zeros((T, N), dtype=xs.dtype)
    dhs = np.zeros_like(hs)
    for j in range(H):
        dhs[-1, :, :] = 0.0
        dhs[-1, :, j] = 1.0  # row j of the Jacobian d h_{T-1} / d x_t, for every t at once
        dxs = backward(dhs, cache)[0]  # (T, N, D)
        squares += np.sum(dxs * dxs, axis=2)
    return np.sqrt(squares)[::-1].copy()  # reorder by lag: row k is t = T-1-k


def _check_grads(grads) -> None:
    if not isinstance(grads, dict) or not grads:
        raise ValueError(f"grads must be a non-empty dict of numpy arrays; got {type(grads).__name__}.")
    for key, value in grads.items():
        check_array(f"grads[{key!r}]", value, (None,) * np.ndim(value), "(any shape)")


def clip_grad_norm(grads: dict, max_norm: float) -> tuple[dict, float]:
    """Rescale a set of gradients so their global L2 norm is at most max_norm.

    grads: dict of arrays (any shapes); max_norm: a positive float.
    Returns (clipped, total_norm): new arrays with the same keys, shapes and dtypes, and the
    norm before clipping, sqrt(sum of every squared entry). As torch.nn.utils.clip_grad_norm_
    does, every array is multiplied by max_norm / (total_norm + 1e-6) when that factor is
    below 1, and left as it is otherwise; the direction of the update never changes.
    """
    _check_grads(grads)
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or not max_norm > 0:
        raise ValueError(f"max_norm must be a positive number; got {max_norm!r}.")
    total = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values())))
    factor = max_norm / (total + 1e-6)
    if factor >= 1.0:
        return {k: v.copy() for k, v in grads.items()}, total
    return {k: (v * v.dtype.type(factor)) for k, v in grads.items()}, total


def clip_grad_value(grads: dict, clip_value: float) -> dict:
    """Clip every gradient entry into [-clip_value, clip_value].

    grads: dict of arrays (any shapes); clip_value: a positive float. Returns new arrays with
    the same keys, shapes and dtypes. Unlike clipping by norm, this can change the direction.
    """
    _check_grads(grads)
    if isinstance(clip_value, bool) or not isinstance(clip_value, (int, float)) or not clip_value > 0:
        raise ValueError(f"clip_value must be a positive number; got {clip_value!r}.")
    return {k: np.clip(v, -clip_value, clip_value).astype(v.dtype, copy=False) for k, v in grads.items()}


def spectral_radius(W: np.ndarray) -> float:
    """Largest absolute eigenvalue of a square matrix W (H, H). Returns a float."""
    check_array("W", W, (None, None), "(H, H)")
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be square (H, H); got shape {W.shape}.")
    return float(np.max(np.abs(np.linalg.eigvals(W))))


def scale_to_spectral_radius(W: np.ndarray, rho: float) -> np.ndarray:
    """W (H, H) multiplied by a scalar so that its spectral radius is rho. Returns a new (H, H) array."""
    radius = spectral_radius(W)
    if radius == 0.0:
        raise ValueError("W has spectral radius 0 (it is nilpotent); no scaling can give it another.")
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or rho < 0:
        raise ValueError(f"rho must be a non-negative number; got {rho!r}.")
    return (W * (rho / radius)).astype(W.dtype)
