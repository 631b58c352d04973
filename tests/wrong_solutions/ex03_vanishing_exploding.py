"""Wrong solutions for the vanishing/exploding exercise: each must lose the points of exactly the part it breaks."""

JACOBIAN = '''
def rnn_step_jacobian(h, W_hh):
    return (1.0 - h * h)[:, :, None] * W_hh.T[None, :, :]
'''

LAG_NORMS = '''
def lag_norms(xs, h0, params):
    hs = rnn_states(xs, h0, params)
    T, N, H = hs.shape
    P = np.broadcast_to(np.eye(H, dtype=hs.dtype), (N, H, H))
    norms = np.empty((T, N), dtype=hs.dtype)
    for k in range(T):
        if k > 0:
            P = P @ rnn_step_jacobian(hs[T - k], params["W_hh"])
        norms[k] = np.linalg.norm(P, ord=2, axis=(1, 2))
    return norms
'''

CLIP = '''
def clip_by_global_norm(grads, max_norm):
    total_norm = float(np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads.values())))
    scale = max_norm / total_norm if total_norm > max_norm else 1.0
    clipped = {k: g * g.dtype.type(scale) for k, g in grads.items()}
    return clipped, total_norm
'''

REGIME = '''
def predict_regime(W_hh):
    rho = float(np.max(np.abs(np.linalg.eigvals(W_hh))))
    sigma = float(np.linalg.norm(W_hh, 2))
    if sigma < 1:
        regime = "vanish"
    elif rho > 1:
        regime = "explode"
    else:
        regime = "unclear"
    return rho, sigma, regime
'''


def replaced(source: str, old: str, new: str) -> str:
    """source with old replaced by new, failing loudly if old is not in it (so an entry cannot rot silently)."""
    assert old in source, f"{old!r} not found"
    return source.replace(old, new)


JAC_CELLS = ["test_rnn_step_jacobian_visible", "test_rnn_step_jacobian_hidden"]
LAG_CELLS = ["test_lag_norms_visible", "test_lag_norms_hidden"]
CLIP_CELLS = ["test_clip_by_global_norm_visible", "test_clip_by_global_norm_hidden"]
REGIME_CELLS = ["test_predict_regime_visible", "test_predict_regime_hidden"]

WRONG = {
    "jacobian_missing_tanh_derivative": {
        "cells": {"rnn_step_jacobian": replaced(JACOBIAN, "(1.0 - h * h)[:, :, None]", "np.ones_like(h)[:, :, None]")},
        "loses": JAC_CELLS,
    },
    "jacobian_W_hh_not_transposed": {
        "cells": {"rnn_step_jacobian": replaced(JACOBIAN, "W_hh.T[None, :, :]", "W_hh[None, :, :]")},
        "loses": JAC_CELLS,
    },
    "jacobian_scales_columns_instead_of_rows": {
        # W_hh^T diag(1 - h**2): the slope of the input unit instead of the output unit
        "cells": {"rnn_step_jacobian": replaced(JACOBIAN, "(1.0 - h * h)[:, :, None]", "(1.0 - h * h)[:, None, :]")},
        "loses": JAC_CELLS,
    },
    "lag_norms_in_reverse_order": {
        "cells": {"lag_norms": replaced(LAG_NORMS, "return norms", "return norms[::-1]")},
        "loses": LAG_CELLS,
    },
    "lag_norms_frobenius_instead_of_spectral": {
        "cells": {"lag_norms": replaced(LAG_NORMS, "ord=2", 'ord="fro"')},
        "loses": LAG_CELLS,
    },
    "lag_norms_multiplies_the_factors_in_the_wrong_order": {
        # J_{T-k} ... J_{T-1} instead of J_{T-1} ... J_{T-k}: same factors, a different matrix
        "cells": {"lag_norms": replaced(LAG_NORMS, 'P = P @ rnn_step_jacobian(hs[T - k], params["W_hh"])',
                                        'P = rnn_step_jacobian(hs[T - k], params["W_hh"]) @ P')},
        "loses": LAG_CELLS,
    },
    "lag_norms_takes_the_jacobian_of_the_wrong_step": {
        # off by one: the Jacobian at hs[T-1-k] is that of step T-1-k, one step too far back
        "cells": {"lag_norms": replaced(LAG_NORMS, "hs[T - k]", "hs[T - k - 1]")},
        "loses": LAG_CELLS,
    },
    "lag_norms_calls_lstm_ref": {
        "cells": {"lag_norms": (
            "import lstm_ref\n\n\ndef lag_norms(xs, h0, params):\n"
            "    return lstm_ref.gradients.rnn_lag_jacobian_norms(xs, h0, params)\n")},
        "loses": LAG_CELLS,
    },
    "lag_norms_upcasts_float32": {
        # np.eye defaults to float64, and a float64 identity turns every product into float64
        "cells": {"lag_norms": replaced(replaced(LAG_NORMS, "np.eye(H, dtype=hs.dtype)", "np.eye(H)"),
                                        "np.empty((T, N), dtype=hs.dtype)", "np.empty((T, N))")},
        "loses": ["test_lag_norms_hidden"],
    },
    "clip_rescales_even_under_the_threshold": {
        "cells": {"clip_by_global_norm": replaced(CLIP, "max_norm / total_norm if total_norm > max_norm else 1.0",
                                                  "max_norm / total_norm")},
        "loses": CLIP_CELLS,
    },
    "clip_each_tensor_by_its_own_norm": {
        "cells": {"clip_by_global_norm": (
            "def clip_by_global_norm(grads, max_norm):\n"
            "    total_norm = float(np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads.values())))\n"
            "    clipped = {}\n"
            "    for k, g in grads.items():\n"
            "        norm = float(np.sqrt(np.sum(g.astype(np.float64) ** 2)))\n"
            "        clipped[k] = g * g.dtype.type(max_norm / norm) if norm > max_norm else g.copy()\n"
            "    return clipped, total_norm\n")},
        "loses": CLIP_CELLS,
    },
    "clip_modifies_the_input_in_place": {
        "cells": {"clip_by_global_norm": (
            "def clip_by_global_norm(grads, max_norm):\n"
            "    total_norm = float(np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads.values())))\n"
            "    if total_norm > max_norm:\n"
            "        for g in grads.values():\n"
            "            g *= max_norm / total_norm\n"
            "    return grads, total_norm\n")},
        "loses": CLIP_CELLS,
    },
    "clip_returns_the_norm_after_clipping": {
        "cells": {"clip_by_global_norm": replaced(CLIP, "return clipped, total_norm",
                                                  "return clipped, min(total_norm, max_norm)")},
        "loses": CLIP_CELLS,
    },
    "regime_uses_the_spectral_norm_as_the_radius": {
        "cells": {"predict_regime": replaced(REGIME, "rho = float(np.max(np.abs(np.linalg.eigvals(W_hh))))",
                                             "rho = float(np.linalg.norm(W_hh, 2))")},
        "loses": REGIME_CELLS,
    },
    "regime_uses_the_spectral_radius_as_the_norm": {
        "cells": {"predict_regime": replaced(REGIME, "sigma = float(np.linalg.norm(W_hh, 2))",
                                             "sigma = float(np.max(np.abs(np.linalg.eigvals(W_hh))))")},
        "loses": REGIME_CELLS,
    },
    "regime_takes_the_largest_eigenvalue_not_the_largest_modulus": {
        "cells": {"predict_regime": replaced(REGIME, "np.max(np.abs(np.linalg.eigvals(W_hh)))",
                                             "np.max(np.linalg.eigvals(W_hh).real)")},
        "loses": REGIME_CELLS,
    },
    "regime_decides_vanish_by_the_radius": {
        # rho < 1 does not bound the Jacobian products; only sigma < 1 does
        "cells": {"predict_regime": replaced(REGIME, "if sigma < 1:", "if rho < 1:")},
        "loses": REGIME_CELLS,
    },
    "clip_returns_the_callers_own_dict_under_the_threshold": {
        # right values everywhere, but under the threshold the caller gets its own dict back
        "cells": {"clip_by_global_norm": replaced(CLIP, "    return clipped, total_norm",
                                                  "    return (grads if scale == 1.0 else clipped), total_norm")},
        "loses": CLIP_CELLS,
    },
}

# Not wrong: a correct alternative for every part (loops per sample, singular values from np.linalg.svd, the
# global norm in the arrays' own dtype, min(1, c / norm)), which must keep full marks everywhere.
WRONG["correct_alternative_with_loops_svd_and_norms_in_float32"] = {
    "cells": {
        "rnn_step_jacobian": (
            "def rnn_step_jacobian(h, W_hh):\n"
            "    N, H = h.shape\n"
            "    J = np.zeros((N, H, H), dtype=h.dtype)\n"
            "    for n in range(N):\n"
            "        J[n] = np.diag(1 - h[n] ** 2) @ W_hh.T\n"
            "    return J\n"),
        "lag_norms": (
            "def lag_norms(xs, h0, params):\n"
            "    hs = rnn_states(xs, h0, params)\n"
            "    T, N, H = hs.shape\n"
            "    out = np.zeros((T, N), dtype=xs.dtype)\n"
            "    for n in range(N):\n"
            "        P = np.eye(H, dtype=xs.dtype)\n"
            "        for k in range(T):\n"
            "            out[k, n] = np.linalg.svd(P, compute_uv=False)[0]\n"
            "            if k < T - 1:\n"
            "                P = P @ rnn_step_jacobian(hs[T - 1 - k][n:n + 1], params['W_hh'])[0]\n"
            "    return out\n"),
        "clip_by_global_norm": (
            "def clip_by_global_norm(grads, max_norm):\n"
            "    total = np.linalg.norm(np.concatenate([g.ravel() for g in grads.values()]))\n"
            "    factor = min(1.0, max_norm / total) if total > 0 else 1.0\n"
            "    return {k: (g * factor).astype(g.dtype) for k, g in grads.items()}, total\n"),
        "predict_regime": (
            "def predict_regime(W_hh):\n"
            "    rho = max(abs(complex(value)) for value in np.linalg.eigvals(W_hh))\n"
            "    sigma = np.linalg.svd(W_hh, compute_uv=False).max()\n"
            "    regime = 'vanish' if sigma < 1 else ('explode' if rho > 1 else 'unclear')\n"
            "    return rho, sigma, regime\n"),
    },
    "loses": [],
}
