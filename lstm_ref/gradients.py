"""How gradients travel back through time: Jacobian products, per-lag norms, clipping.

Chapter 3 follows one RNN's gradient back through time as a product of per-step Jacobians
and watches it vanish or explode; chapter 5 measures the same thing for the RNN, the LSTM
and the GRU through their own backward passes and plots them side by side.

Row-vector convention. The course writes h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h) with
the state a row (1, H) and W_hh an (in, out) = (H, H) matrix, so

    h_t[j] = tanh( sum_i h_{t-1}[i] W_hh[i, j] + ... ),

and the Jacobian with rows indexed by the output (numerator layout) is

    (dh_t / dh_{t-1})[j, i] = (1 - h_t[j]**2) W_hh[i, j],  i.e.  diag(1 - h_t**2) W_hh^T.

A gradient row vector g = dL/dh_t goes back as g @ J = g diag(1 - h_t**2) W_hh^T, which is the
line ``dh_prev = da @ W_hh.T`` of rnn_step_backward. Chain rule products are written in the
order of the math: dh_{T-1}/dh_{T-1-k} = J_{T-1} J_{T-2} ... J_{T-k}.

Time indices follow the arrays: hs[t] is the state after step t (t = 0 .. T-1) and h0 is the
state the sequence starts from, before hs[0].
"""

from __future__ import annotations


import numpy as np

from ._validate import check_array, check_grads, check_params, check_positive, check_same_dtype, check_sequence
from .families import family as cell_family
from .rnn import rnn_forward, rnn_param_shapes

__all__ = [
    "rnn_jacobians",
    "rnn_lag_jacobian_norms",
    "input_jacobians",
    "lag_gradient_norms",
    "clip_grad_norm",
    "clip_grad_value",
    "spectral_radius",
    "scale_to_spectral_radius",
]

def _check_rnn_inputs(xs, h0, params) -> None:
    check_sequence("xs", xs)
    T, N, D = xs.shape
    check_array("h0", h0, (N, None), "(N, H)", f"(N = {N} from xs)")
    H = h0.shape[1]
    check_params("RNN", params, rnn_param_shapes(D, H), f"D = {D} from xs, H = {H} from h0")
    check_same_dtype({"xs": xs, "h0": h0, "params['W_hh']": params["W_hh"]})


def _check_ord(ord) -> None:
    # numpy would accept many more (1, inf, 'nuc', ...); the chapters use these two only.
    if not (isinstance(ord, str) and ord == "fro") and not (
        isinstance(ord, (int, np.integer)) and not isinstance(ord, bool) and ord == 2
    ):
        raise ValueError(f"ord must be 2 (spectral norm) or 'fro' (Frobenius norm); got {ord!r}.")


def _matrix_norms(M: np.ndarray, ord) -> np.ndarray:
    """Norm of every matrix in a stack M (..., A, B): largest singular value or Frobenius."""
    if ord == "fro":
        return np.sqrt(np.sum(M * M, axis=(-2, -1)))
    return np.linalg.svd(M, compute_uv=False)[..., 0]


def rnn_jacobians(xs: np.ndarray, h0: np.ndarray, params: dict) -> np.ndarray:
    """The per-step Jacobians dh_t/dh_{t-1} of the RNN, for every step and every sample.

    xs: (T, N, D) inputs; h0: (N, H) initial state;
    params: {"W_xh": (D, H), "W_hh": (H, H), "b_h": (H,)}.
    Returns J: (T, N, H, H) with J[t, n, j, i] = d hs[t][n, j] / d h_prev[n, i]
    = (1 - hs[t][n, j]**2) * W_hh[i, j], where h_prev is hs[t-1] (h0 for t = 0): row j is the
    output unit, column i the input unit, so J[t, n] = diag(1 - h_t**2) W_hh^T.
    Samples do not interact, so the cross-sample blocks (all zero) are left out.
    """
    _check_rnn_inputs(xs, h0, params)
    hs, _ = rnn_forward(xs, h0, params)  # (T, N, H)
    # tanh'(a) = 1 - tanh(a)**2 scales row j; W_hh^T[j, i] = W_hh[i, j].
    return (1.0 - hs * hs)[..., :, None] * params["W_hh"].T  # (T, N, H, H)


def rnn_lag_jacobian_norms(
    xs: np.ndarray, h0: np.ndarray, params: dict, ord=2, include_initial: bool = False
) -> np.ndarray:
    """Norm of dh_{T-1}/dh_{T-1-k} for every lag k, as a product of per-step Jacobians.

    xs: (T, N, D) inputs; h0: (N, H) initial state; params: the RNN's W_xh (D, H),
    W_hh (H, H), b_h (H,); ord: 2 for the spectral norm (largest singular value, the most
    a gradient can grow) or "fro" for the Frobenius norm; include_initial: also return the
    norm of dh_{T-1}/dh0 for the initial state, lag T.
    Returns norms: (T, N), or (T + 1, N) with include_initial, where row k holds, per sample,
    || d hs[T-1] / d hs[T-1-k] || = || J_{T-1} J_{T-2} ... J_{T-k} || (an empty product is
    the identity, so row 0 is 1 for ord=2 and sqrt(H) for "fro") and row T, if asked for,
    || d hs[T-1] / d h0 || = || J_{T-1} ... J_0 ||. J_t are the matrices of rnn_jacobians.
    """
    _check_ord(ord)
    if not isinstance(include_initial, bool):
        raise ValueError(f"include_initial must be True or False; got {include_initial!r}.")
    J = rnn_jacobians(xs, h0, params)  # (T, N, H, H)
    T, N, H, _ = J.shape
    P = np.broadcast_to(np.eye(H, dtype=J.dtype), (N, H, H))  # (N, H, H) lag 0: the identity
    lags = T + 1 if include_initial else T
    norms = np.empty((lags, N), dtype=J.dtype)
    for k in range(lags):
        if k > 0:
            # One more step back: right-multiply by the Jacobian of step T-k.
            P = P @ J[T - k]  # (N, H, H)
        norms[k] = _matrix_norms(P, ord)
    return norms


def _check_family_inputs(family, xs, state0, params) -> tuple:
    """Validate for lag_gradient_norms and friends; return (forward, backward, states)."""
    cell = cell_family(family)
    label, forward, backward, param_shapes, n_states = (cell.label, cell.forward, cell.backward, cell.param_shapes,
                                                        cell.n_states)
    check_sequence("xs", xs)
    T, N, D = xs.shape
    if n_states == 2:
        if not isinstance(state0, tuple) or len(state0) != 2:
            raise ValueError(
                f"state0 for the LSTM must be the pair (h0, c0) of (N, H) arrays; got {_what(state0)}."
            )
        names = ("h0", "c0")
    else:
        if isinstance(state0, tuple):
            raise ValueError(
                f"state0 for the {label} is h0 alone, one (N, H) array; got {_what(state0)} "
                "(only the LSTM takes a pair (h0, c0))."
            )
        state0 = (state0,)
        names = ("h0",)
    check_array("h0", state0[0], (N, None), "(N, H)", f"(N = {N} from xs)")
    H = state0[0].shape[1]
    for name, s in zip(names[1:], state0[1:]):
        check_array(name, s, (N, H), "(N, H)")
    check_params(label, params, param_shapes(D, H), f"D = {D} from xs, H = {H} from h0")
    first = next(iter(param_shapes(D, H)))
    check_same_dtype({"xs": xs, **dict(zip(names, state0)), f"params[{first!r}]": params[first]})
    return forward, backward, state0


def _what(value) -> str:
    if isinstance(value, tuple):
        return f"a tuple of length {len(value)}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"a {type(value).__name__}"


def input_jacobians(family: str, xs: np.ndarray, state0, params: dict) -> np.ndarray:
    """The Jacobian of the last hidden state with respect to every input, by backward passes.

    family: "rnn", "lstm" or "gru"; xs: (T, N, D) inputs; state0: h0 (N, H) for "rnn" and
    "gru", the pair (h0, c0) of (N, H) arrays for "lstm"; params: that family's dict.
    Returns J: (T, N, H, D), indexed by time (not lag), with
    J[t, n, j, d] = d hs[T-1][n, j] / d xs[t][n, d].

    Only the family's own sequence forward and backward are used: H backward passes, each
    with dhs zero except a one at unit j of the last step, so the returned dxs is row j of
    every J[t, n] at once (samples do not interact, so all N ride in the same pass).
    """
    forward, backward, states = _check_family_inputs(family, xs, state0, params)
    T, N, D = xs.shape
    out = forward(xs, *states, params)
    hs, cache = out[0], out[-1]  # (T, N, H); the LSTM also returns cs in between
    H = hs.shape[2]
    J = np.empty((T, N, H, D), dtype=xs.dtype)
    for j in range(H):
        dhs = np.zeros_like(hs)  # (T, N, H)
        dhs[T - 1, :, j] = 1.0
        J[:, :, j, :] = backward(dhs, cache)[0]  # dxs (T, N, D)
    return J


def lag_gradient_norms(family: str, xs: np.ndarray, state0, params: dict, ord="fro") -> np.ndarray:
    """Norm of d h_{T-1} / d x_{T-1-k} for every lag k, for the RNN, the LSTM or the GRU.

    family: "rnn", "lstm" or "gru"; xs: (T, N, D) inputs; state0: h0 (N, H) for "rnn" and
    "gru", the pair (h0, c0) for "lstm"; params: that family's dict; ord: "fro" (Frobenius)
    or 2 (spectral) for the (H, D) Jacobian of each sample.
    Returns norms: (T, N), row k = lag k = || d hs[T-1][n] / d xs[T-1-k][n] || per sample n:
    how much the last state still feels the input k steps back. Row 0 is the input's direct
    effect on the last state. The Jacobians come from input_jacobians, that is from the
    family's own backward pass, so any cell is measured with the code that trains it.
    """
    _check_ord(ord)
    J = input_jacobians(family, xs, state0, params)  # (T, N, H, D) by time
    return np.ascontiguousarray(_matrix_norms(J, ord)[::-1])  # (T, N) by lag


def clip_grad_norm(grads: dict, max_norm: float) -> tuple[dict, float]:
    """Rescale all gradients together so that their global L2 norm is at most max_norm.

    grads: a dict of float arrays, any shapes (the dict a backward function returns);
    max_norm: a positive number (np.inf only measures the norm).
    Returns (clipped, total_norm): a new dict with the same keys holding new arrays, each
    with its input's shape and dtype, and total_norm, a float, the norm
    sqrt(sum over all arrays and entries of g**2) *before* clipping. When total_norm >
    max_norm every array is multiplied by max_norm / total_norm, which keeps the direction
    of the update and shortens it; otherwise the arrays are copies of the inputs, bit for bit.
    The inputs are never modified. torch.nn.utils.clip_grad_norm_ computes the same, except
    that it divides by total_norm + 1e-6 and clips in place.
    A nan or inf gradient raises ValueError: no rescaling can repair it.
    """
    check_grads(grads)
    check_positive("max_norm", max_norm)
    bad = [key for key, g in grads.items() if not np.all(np.isfinite(g))]
    if bad:
        raise ValueError(f"grads {bad} contain nan or inf; their norm is not finite and clipping cannot fix it.")
    # Summed in float64 whatever the dtype, and scaled by the largest entry first, so an
    # exploding float32 gradient (entries past 1e19 square to inf in float32) still gets a finite norm.
    largest = max(float(np.max(np.abs(g), initial=0.0)) for g in grads.values())
    if largest == 0.0:
        total_norm = 0.0
    else:
        total_norm = largest * float(
            np.sqrt(sum(np.sum(np.square(g.astype(np.float64) / largest)) for g in grads.values()))
        )
    if total_norm > max_norm:
        scale = max_norm / total_norm
        clipped = {key: g * g.dtype.type(scale) for key, g in grads.items()}
    else:
        clipped = {key: g.copy() for key, g in grads.items()}
    return clipped, total_norm


def clip_grad_value(grads: dict, clip_value: float) -> dict:
    """Clip every gradient entry to [-clip_value, clip_value], independently of the others.

    grads: a dict of float arrays, any shapes; clip_value: a positive number.
    Returns a new dict with the same keys holding new arrays of the same shapes and dtypes.
    Unlike norm clipping this changes the direction of the update. nan entries stay nan.
    The inputs are never modified (torch.nn.utils.clip_grad_value_ clips in place).
    """
    check_grads(grads)
    check_positive("clip_value", clip_value)
    return {key: np.clip(g, g.dtype.type(-clip_value), g.dtype.type(clip_value)) for key, g in grads.items()}


def _check_square(W) -> np.ndarray:
    check_array("W", W, (None, None), "(H, H)")
    if W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(f"W must be a non-empty square matrix (H, H); got shape {W.shape}.")
    return W


def spectral_radius(W: np.ndarray) -> float:
    """The spectral radius of a square matrix: the largest absolute value of its eigenvalues.

    W: (H, H), e.g. a recurrent matrix W_hh. Returns a float.
    It sets how a product W W ... W (k factors) grows or shrinks: like rho**k for large k.
    With tanh' <= 1 a radius below 1 means vanishing gradients in the RNN; above 1 they
    can explode (tanh' < 1 may still tame them). Not the spectral norm: a triangular
    [[0.5, 10], [0, 0.5]] has radius 0.5 and norm above 10.
    """
    _check_square(W)
    return float(np.max(np.abs(np.linalg.eigvals(W))))


def scale_to_spectral_radius(W: np.ndarray, rho: float) -> np.ndarray:
    """A copy of W multiplied by one number so that its spectral radius becomes rho.

    W: (H, H) with a nonzero spectral radius; rho: the target, a positive number.
    Returns a new (H, H) array with W's dtype; W itself is not modified. Scaling every
    eigenvalue by rho / spectral_radius(W) keeps the eigenvectors, so only the growth rate changes.
    """
    _check_square(W)
    check_positive("rho", rho)
    if not np.isfinite(rho):
        raise ValueError(f"rho must be finite; got {rho!r}.")
    radius = spectral_radius(W)
    if radius == 0.0:
        raise ValueError(
            "W has spectral radius 0 (all eigenvalues are zero, e.g. a zero or strictly triangular "
            "matrix), so no scaling can give it radius rho."
        )
    return W * W.dtype.type(rho / radius)
