"""Wrong solutions for the LSTM forward exercise: each must lose the points of exactly the part it breaks.

The step forward is graded alone and the sequence forward with the reference step in place of the
student's, so a bug in one of them costs that function's points only. The last entries are correct
alternatives written differently from the instructor's solution: they must keep full marks.
"""

STEP = '''
def lstm_step_forward(x, h_prev, c_prev, params):
    p = params
    i = sigmoid(x @ p["W_xi"] + h_prev @ p["W_hi"] + p["b_i"])
    f = sigmoid(x @ p["W_xf"] + h_prev @ p["W_hf"] + p["b_f"])
    o = sigmoid(x @ p["W_xo"] + h_prev @ p["W_ho"] + p["b_o"])
    c_tilde = np.tanh(x @ p["W_xc"] + h_prev @ p["W_hc"] + p["b_c"])
    c = f * c_prev + i * c_tilde
    h = o * np.tanh(c)
    return h, c, (x, h_prev, c_prev, i, f, o, c_tilde, c, params)
'''

FORWARD = '''
def lstm_forward(xs, h0, c0, params):
    h, c = h0, c0
    hs, cs, caches = [], [], []
    for x in xs:
        h, c, cache = lstm_step_forward(x, h, c, params)
        hs.append(h)
        cs.append(c)
        caches.append(cache)
    return np.stack(hs), np.stack(cs), caches
'''

COUNT = '''
def count_lstm_params(D, H, biases=1):
    return 4 * H * (H + D) + 4 * H * biases
'''

CONVERT = '''
def lstm_params_from_torch_state(state, layer=0):
    w_ih = state[f"weight_ih_l{layer}"]
    w_hh = state[f"weight_hh_l{layer}"]
    b = state[f"bias_ih_l{layer}"] + state[f"bias_hh_l{layer}"]
    H = w_hh.shape[1]
    params = {}
    for k, gate in enumerate(("i", "f", "c", "o")):
        rows = slice(k * H, (k + 1) * H)
        params[f"W_x{gate}"] = w_ih[rows].T
        params[f"W_h{gate}"] = w_hh[rows].T
        params[f"b_{gate}"] = b[rows]
    return params
'''

STEP_CELLS = ["test_lstm_step_forward_visible", "test_lstm_step_forward_hidden"]
FORWARD_CELLS = ["test_lstm_forward_visible", "test_lstm_forward_hidden"]
COUNT_CELLS = ["test_count_lstm_params_visible", "test_count_lstm_params_hidden"]
CONVERT_CELLS = ["test_lstm_params_from_torch_state_visible", "test_lstm_params_from_torch_state_hidden"]


def _replace(source: str, old: str, new: str) -> str:
    assert old in source, f"the catalogue's edit does not apply: {old!r}"
    return source.replace(old, new)


WRONG = {
    "step_candidate_sigmoid_instead_of_tanh": {
        "cells": {"lstm_step_forward": _replace(STEP, 'c_tilde = np.tanh(x @ p["W_xc"]', 'c_tilde = sigmoid(x @ p["W_xc"]')},
        "loses": STEP_CELLS,
    },
    "step_forget_gate_applied_to_the_candidate": {
        # c = f * c~ + i * c_prev: the two gates swapped in the cell update
        "cells": {"lstm_step_forward": _replace(STEP, "c = f * c_prev + i * c_tilde", "c = f * c_tilde + i * c_prev")},
        "loses": STEP_CELLS,
    },
    "step_feeds_c_forward_as_h": {
        # h = o * c: the output reads the unbounded cell state instead of tanh(c)
        "cells": {"lstm_step_forward": _replace(STEP, "h = o * np.tanh(c)", "h = o * c")},
        "loses": STEP_CELLS,
    },
    "step_output_gate_reads_the_forget_weights": {
        "cells": {"lstm_step_forward": _replace(STEP, 'o = sigmoid(x @ p["W_xo"] + h_prev @ p["W_ho"]',
                                                'o = sigmoid(x @ p["W_xf"] + h_prev @ p["W_hf"]')},
        "loses": STEP_CELLS,
    },
    "step_calls_lstm_ref": {
        "cells": {"lstm_step_forward": (
            "import lstm_ref\n\n\ndef lstm_step_forward(x, h_prev, c_prev, params):\n"
            "    return lstm_ref.lstm_step_forward(x, h_prev, c_prev, params)\n")},
        "loses": STEP_CELLS,
    },
    "step_upcasts_float32": {
        "cells": {"lstm_step_forward": _replace(STEP, "    p = params\n",
                                                "    p = {k: v.astype(np.float64) for k, v in params.items()}\n"
                                                "    x, h_prev, c_prev = x.astype(float), h_prev.astype(float), c_prev.astype(float)\n")},
        "loses": ["test_lstm_step_forward_hidden"],
    },
    "forward_loop_never_feeds_the_state_back": {
        "cells": {"lstm_forward": _replace(FORWARD, "lstm_step_forward(x, h, c, params)", "lstm_step_forward(x, h0, c0, params)")},
        "loses": FORWARD_CELLS,
    },
    "forward_loop_passes_c_as_h": {
        "cells": {"lstm_forward": _replace(FORWARD, "lstm_step_forward(x, h, c, params)", "lstm_step_forward(x, c, c, params)")},
        "loses": FORWARD_CELLS,
    },
    "forward_calls_lstm_ref": {
        "cells": {"lstm_forward": (
            "import lstm_ref\n\n\ndef lstm_forward(xs, h0, c0, params):\n"
            "    return lstm_ref.lstm_forward(xs, h0, c0, params)\n")},
        "loses": FORWARD_CELLS,
    },
    "count_ignores_the_biases_argument": {
        # one bias vector counted where PyTorch has two
        "cells": {"count_lstm_params": _replace(COUNT, "4 * H * biases", "4 * H")},
        "loses": COUNT_CELLS,
    },
    "count_returns_a_float": {
        "cells": {"count_lstm_params": _replace(COUNT, "return 4 * H * (H + D) + 4 * H * biases",
                                                "return 4 * H * (H + D + biases) / 1")},
        "loses": COUNT_CELLS,
    },
    "convert_reads_torch_gate_order_as_i_f_o_g": {
        # PyTorch stacks (i, f, g, o); reading the blocks as (i, f, o, g) swaps the candidate and the output gate
        "cells": {"lstm_params_from_torch_state": _replace(CONVERT, '("i", "f", "c", "o")', '("i", "f", "o", "c")')},
        "loses": CONVERT_CELLS,
    },
    "convert_keeps_only_bias_ih": {
        "cells": {"lstm_params_from_torch_state": _replace(CONVERT, ' + state[f"bias_hh_l{layer}"]', "")},
        "loses": CONVERT_CELLS,
    },
    "convert_does_not_transpose_the_weights": {
        "cells": {"lstm_params_from_torch_state": _replace(_replace(CONVERT, "w_ih[rows].T", "w_ih[rows]"),
                                                           "w_hh[rows].T", "w_hh[rows]")},
        "loses": CONVERT_CELLS,
    },
    "convert_transposes_only_the_input_weights": {
        # the square (H, H) blocks keep the right shape without the transpose: only distinct entries catch it
        "cells": {"lstm_params_from_torch_state": _replace(CONVERT, "w_hh[rows].T", "w_hh[rows]")},
        "loses": CONVERT_CELLS,
    },
    "convert_ignores_the_layer_argument": {
        "cells": {"lstm_params_from_torch_state": CONVERT.replace("_l{layer}", "_l0")},
        "loses": ["test_lstm_params_from_torch_state_hidden"],
    },
    "correct_alternatives_stacked_gates_and_np_split": {
        # A stacked-gate step (one product for all four gates), a float64-safe loop with preallocated
        # outputs, a count through numpy integers, and a conversion with np.split: all correct.
        "cells": {
            "lstm_step_forward": (
                "def lstm_step_forward(x, h_prev, c_prev, params):\n"
                "    W_x = np.concatenate([params[f'W_x{g}'] for g in 'ifoc'], axis=1)\n"
                "    W_h = np.concatenate([params[f'W_h{g}'] for g in 'ifoc'], axis=1)\n"
                "    b = np.concatenate([params[f'b_{g}'] for g in 'ifoc'])\n"
                "    a = x @ W_x + h_prev @ W_h + b\n"
                "    i, f, o, g = np.split(a, 4, axis=1)\n"
                "    i, f, o, g = sigmoid(i), sigmoid(f), sigmoid(o), np.tanh(g)\n"
                "    c = f * c_prev + i * g\n"
                "    return o * np.tanh(c), c, (x, h_prev, c_prev, i, f, o, g, c)\n"),
            "lstm_forward": (
                "def lstm_forward(xs, h0, c0, params):\n"
                "    T, N, H = xs.shape[0], h0.shape[0], h0.shape[1]\n"
                "    hs = np.empty((T, N, H), dtype=xs.dtype)\n"
                "    cs = np.empty((T, N, H), dtype=xs.dtype)\n"
                "    caches = []\n"
                "    for t in range(T):\n"
                "        h_prev, c_prev = (h0, c0) if t == 0 else (hs[t - 1], cs[t - 1])\n"
                "        hs[t], cs[t], cache = lstm_step_forward(xs[t], h_prev, c_prev, params)\n"
                "        caches.append(cache)\n"
                "    return hs, cs, caches\n"),
            "count_lstm_params": (
                "def count_lstm_params(D, H, biases=1):\n"
                "    shapes = [(D, H)] * 4 + [(H, H)] * 4 + [(H,)] * (4 * biases)\n"
                "    return sum(np.prod(s) for s in shapes)\n"),
            "lstm_params_from_torch_state": (
                "def lstm_params_from_torch_state(state, layer=0):\n"
                "    parts = [np.split(state[f'{n}_l{layer}'], 4) for n in ('weight_ih', 'weight_hh', 'bias_ih', 'bias_hh')]\n"
                "    params = {}\n"
                "    for gate, w_x, w_h, b_ih, b_hh in zip('ifco', *parts):\n"
                "        params.update({f'W_x{gate}': w_x.T.copy(), f'W_h{gate}': w_h.T.copy(), f'b_{gate}': b_ih + b_hh})\n"
                "    return params\n"),
        },
        "loses": [],
    },
    "forward_caches_only_the_last_step": {
        # the values are right; the cache is the last step's, not the list the notebook asks for
        "cells": {"lstm_forward": _replace(FORWARD, "return np.stack(hs), np.stack(cs), caches",
                                           "return np.stack(hs), np.stack(cs), caches[-1]")},
        "loses": ["test_lstm_forward_visible", "test_lstm_forward_hidden"],
    },
}
