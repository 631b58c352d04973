"""Wrong solutions for the RNN exercise: each must lose the points of exactly the part it breaks."""

STEP_FORWARD = '''
def rnn_step_forward(x, h_prev, params):
    h = np.tanh(x @ params["W_xh"] + h_prev @ params["W_hh"] + params["b_h"])
    return h, (x, h_prev, h, params)
'''

STEP_BACKWARD = '''
def rnn_step_backward(dh, cache):
    x, h_prev, h, params = cache
    da = dh * (1.0 - h * h)
    grads = {"W_xh": x.T @ da, "W_hh": h_prev.T @ da, "b_h": da.sum(axis=0)}
    return da @ params["W_xh"].T, da @ params["W_hh"].T, grads
'''

BACKWARD = '''
def rnn_backward(dhs, cache):
    dh_next = np.zeros_like(dhs[0])
    dxs = [None] * len(cache)
    grads = None
    for t in reversed(range(len(cache))):
        dxs[t], dh_next, g = rnn_step_backward(dhs[t] + dh_next, cache[t])
        grads = g if grads is None else {k: grads[k] + g[k] for k in grads}
    return np.stack(dxs), dh_next, grads
'''

WRONG = {
    "step_backward_missing_tanh_derivative": {
        "cells": {"rnn_step_backward": STEP_BACKWARD.replace("da = dh * (1.0 - h * h)", "da = dh")},
        "loses": ["test_rnn_step_backward_visible", "test_rnn_step_backward_hidden"],
    },
    "backward_does_not_carry_dh_to_the_previous_step": {
        "cells": {"rnn_backward": BACKWARD.replace("dhs[t] + dh_next", "dhs[t]")},
        "loses": ["test_rnn_backward_visible", "test_rnn_backward_hidden"],
    },
    "backward_parameter_gradients_from_the_last_step_only": {
        "cells": {"rnn_backward": BACKWARD.replace("grads = g if grads is None else {k: grads[k] + g[k] for k in grads}",
                                                   "grads = g if grads is None else grads")},
        "loses": ["test_rnn_backward_visible", "test_rnn_backward_hidden"],
    },
    "backward_stores_dx_in_the_wrong_step": {
        "cells": {"rnn_backward": BACKWARD.replace("dxs[t], dh_next, g =", "dxs[len(cache) - 1 - t], dh_next, g =")},
        "loses": ["test_rnn_backward_visible", "test_rnn_backward_hidden"],
    },
    "forward_and_backward_consistently_transpose_W_hh": {
        # A consistent mistake: the backward is the true derivative of this (wrong) forward.
        "cells": {
            "rnn_step_forward": STEP_FORWARD.replace('h_prev @ params["W_hh"]', 'h_prev @ params["W_hh"].T'),
            "rnn_step_backward": STEP_BACKWARD.replace('"W_hh": h_prev.T @ da', '"W_hh": (h_prev.T @ da).T').replace(
                'da @ params["W_hh"].T, grads', 'da @ params["W_hh"], grads'),
        },
        "loses": ["test_rnn_step_forward_visible", "test_rnn_step_forward_hidden"],
    },
    "forward_loop_never_feeds_h_back": {
        "cells": {"rnn_forward": (
            "def rnn_forward(xs, h0, params):\n    hs, caches = [], []\n    for x in xs:\n"
            "        h, cache = rnn_step_forward(x, h0, params)\n        hs.append(h)\n        caches.append(cache)\n"
            "    return np.stack(hs), caches\n")},
        "loses": ["test_rnn_forward_visible", "test_rnn_forward_hidden"],
    },
    "step_forward_hard_codes_the_visible_answer": {
        "cells": {"rnn_step_forward": (
            "def rnn_step_forward(x, h_prev, params):\n    h = np.tanh(np.array([[0.95, 0.85]]))\n"
            "    return h, (x, h_prev, h, params)\n")},
        # the step backward is judged as the derivative of the step forward it is paired with,
        # and a constant forward has none
        "loses": ["test_rnn_step_forward_visible", "test_rnn_step_forward_hidden",
                  "test_rnn_step_backward_visible", "test_rnn_step_backward_hidden"],
    },
    "step_forward_calls_lstm_ref": {
        "cells": {"rnn_step_forward": (
            "import lstm_ref\n\n\ndef rnn_step_forward(x, h_prev, params):\n"
            "    return lstm_ref.rnn_step_forward(x, h_prev, params)\n")},
        # the reference cache then reaches this student's own correct backward, which cannot read it
        "loses": ["test_rnn_step_forward_visible", "test_rnn_step_forward_hidden",
                  "test_rnn_step_backward_visible", "test_rnn_step_backward_hidden"],
    },
    "step_forward_upcasts_float32": {
        "cells": {"rnn_step_forward": STEP_FORWARD.replace("h = np.tanh(", "h = np.tanh(np.float64(0.0) + ").replace(
            "np.float64(0.0) + x @", "x.astype(np.float64) @")},
        "loses": ["test_rnn_step_forward_hidden"],
    },
    "forward_caches_only_the_last_step": {
        # the right hidden states, but the cache is the last step's instead of the list of all of them
        "cells": {"rnn_forward": (
            "def rnn_forward(xs, h0, params):\n    h, hs = h0, []\n    for x in xs:\n"
            "        h, cache = rnn_step_forward(x, h, params)\n        hs.append(h)\n"
            "    return np.stack(hs), cache\n")},
        "loses": ["test_rnn_forward_visible", "test_rnn_forward_hidden"],
    },
}
