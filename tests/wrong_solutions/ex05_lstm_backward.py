"""Wrong solutions for the LSTM backward exercise: each must lose the points of exactly the part it breaks.

The forward pass is given (locked) in the notebook, so every entry breaks a backward function or the
per-lag measurement. lstm_backward is tested with the reference step backward standing in for the
student's, and lag_norms_from_backward with reference forward/backward pairs, so a bug in one part never
costs the points of another.
"""

STEP_BACKWARD = '''
def lstm_step_backward(dh, dc, cache):
    k, p = cache, cache["params"]
    do = dh * k["tanh_c"]
    dc_t = dc + dh * k["o"] * (1.0 - k["tanh_c"] * k["tanh_c"])
    df = dc_t * k["c_prev"]
    di = dc_t * k["c_tilde"]
    dc_tilde = dc_t * k["i"]
    dc_prev = dc_t * k["f"]
    da = {"i": di * k["i"] * (1.0 - k["i"]), "f": df * k["f"] * (1.0 - k["f"]),
          "o": do * k["o"] * (1.0 - k["o"]), "c": dc_tilde * (1.0 - k["c_tilde"] * k["c_tilde"])}
    dx = sum(da[g] @ p[f"W_x{g}"].T for g in "ifoc")
    dh_prev = sum(da[g] @ p[f"W_h{g}"].T for g in "ifoc")
    grads = {}
    for g in "ifoc":
        grads[f"W_x{g}"] = k["x"].T @ da[g]
        grads[f"W_h{g}"] = k["h_prev"].T @ da[g]
        grads[f"b_{g}"] = da[g].sum(axis=0)
    return dx, dh_prev, dc_prev, grads
'''

BACKWARD = '''
def lstm_backward(dhs, cache):
    dh_next = np.zeros_like(dhs[0])
    dc_next = np.zeros_like(dhs[0])
    dxs = [None] * len(cache)
    grads = None
    for t in reversed(range(len(cache))):
        dxs[t], dh_next, dc_next, g = lstm_step_backward(dhs[t] + dh_next, dc_next, cache[t])
        grads = g if grads is None else {k: grads[k] + g[k] for k in grads}
    return np.stack(dxs), dh_next, dc_next, grads
'''

LAG_NORMS = '''
def lag_norms_from_backward(forward, backward, xs, states, params):
    out = forward(xs, *states, params)
    hs, cache = out[0], out[-1]
    T, N, H = hs.shape
    J = np.zeros((T, N, H, xs.shape[2]), dtype=xs.dtype)
    for j in range(H):
        dhs = np.zeros_like(hs)
        dhs[T - 1, :, j] = 1.0
        J[:, :, j, :] = backward(dhs, cache)[0]
    norms = np.sqrt((J * J).sum(axis=(2, 3)))
    return norms[::-1].copy()
'''


def _replace(source: str, old: str, new: str) -> str:
    assert old in source, f"catalogue entry out of date: {old!r} is not in the solution"
    return source.replace(old, new)


STEP = ["test_lstm_step_backward_visible", "test_lstm_step_backward_hidden"]
SEQUENCE = ["test_lstm_backward_visible", "test_lstm_backward_hidden"]
LAGS = ["test_lag_norms_from_backward_visible", "test_lag_norms_from_backward_hidden"]

WRONG = {
    "step_backward_misses_tanh_slope_on_the_cell_path": {
        # dh reaches c_t through tanh(c_t): the factor 1 - tanh(c)**2 is forgotten
        "cells": {"lstm_step_backward": _replace(STEP_BACKWARD, 'dh * k["o"] * (1.0 - k["tanh_c"] * k["tanh_c"])',
                                                 'dh * k["o"]')},
        "loses": STEP,
    },
    "step_backward_does_not_scale_dc_by_the_forget_gate": {
        "cells": {"lstm_step_backward": _replace(STEP_BACKWARD, 'dc_prev = dc_t * k["f"]', "dc_prev = dc_t")},
        "loses": STEP,
    },
    "forget_gate_gradient_uses_the_new_cell_state": {
        "cells": {"lstm_step_backward": _replace(STEP_BACKWARD, 'df = dc_t * k["c_prev"]', 'df = dc_t * k["c"]')},
        "loses": STEP,
    },
    "dx_from_the_candidate_only": {
        # x feeds all four gates; only the candidate's term is kept
        "cells": {"lstm_step_backward": _replace(STEP_BACKWARD, 'dx = sum(da[g] @ p[f"W_x{g}"].T for g in "ifoc")',
                                                 'dx = da["c"] @ p["W_xc"].T')},
        "loses": STEP,
    },
    "step_backward_calls_lstm_ref": {
        # right numbers, obtained by rebuilding a reference cache and calling the reference backward
        "cells": {"lstm_step_backward": (
            "import lstm_ref\n\n\ndef lstm_step_backward(dh, dc, cache):\n"
            '    _, _, ref_cache = lstm_ref.lstm_step_forward(cache["x"], cache["h_prev"], cache["c_prev"], '
            'cache["params"])\n'
            "    return lstm_ref.lstm_step_backward(dh, dc, ref_cache)\n")},
        "loses": STEP,
    },
    "backward_parameter_gradients_from_the_last_step_only": {
        "cells": {"lstm_backward": _replace(BACKWARD, "grads = g if grads is None else {k: grads[k] + g[k] for k in grads}",
                                            "grads = g if grads is None else grads")},
        "loses": SEQUENCE,
    },
    "backward_does_not_carry_dc_between_steps": {
        # only dh is carried back; every step starts from dc = 0
        "cells": {"lstm_backward": _replace(BACKWARD, "dhs[t] + dh_next, dc_next, cache[t]",
                                            "dhs[t] + dh_next, np.zeros_like(dc_next), cache[t]")},
        "loses": SEQUENCE,
    },
    "backward_unpacks_the_step_caches_itself": {
        # reads the notebook's dict layout instead of calling lstm_step_backward, so it cannot
        # handle caches made by another forward (the instructions say so)
        "cells": {"lstm_backward": _replace(BACKWARD, "lstm_step_backward(dhs[t] + dh_next, dc_next, cache[t])",
                                            "lstm_step_backward(dhs[t] + dh_next, dc_next, dict(cache[t]))")},
        "loses": SEQUENCE,
    },
    "lag_norms_indexed_by_time_not_by_lag": {
        "cells": {"lag_norms_from_backward": _replace(LAG_NORMS, "return norms[::-1].copy()", "return norms")},
        "loses": LAGS,
    },
    "lag_norms_from_one_backward_pass_seeded_with_all_units": {
        # the norm of the gradient of sum(h_{T-1}), not of the Jacobian
        "cells": {"lag_norms_from_backward": _replace(LAG_NORMS, "dhs[T - 1, :, j] = 1.0", "dhs[T - 1] = 1.0")},
        "loses": LAGS,
    },
}
