"""Bad input raises ValueError naming what was expected and what came; nothing is broadcast."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_ref import (
    count_lstm_params,
    gru_backward,
    gru_forward,
    gru_step_forward,
    init_gru_params,
    init_lstm_params,
    init_rnn_params,
    lstm_backward,
    lstm_forward,
    lstm_step_backward,
    lstm_step_forward,
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
)

N, D, H, T = 4, 3, 5, 6
RNG = np.random.default_rng(0)
RNN_P = init_rnn_params(D, H, RNG)
LSTM_P = init_lstm_params(D, H, RNG)
GRU_P = init_gru_params(D, H, RNG)
x = RNG.standard_normal((N, D))
xs = RNG.standard_normal((T, N, D))
h = RNG.standard_normal((N, H))
c = RNG.standard_normal((N, H))


def without(params, key):
    return {k: v for k, v in params.items() if k != key}


CASES = {
    # wrong rank
    "x of rank 1": (lambda: rnn_step_forward(x[0], h, RNN_P), r"x must have 2 dimensions \(N, D\); got shape \(3,\)"),
    "xs of rank 2": (lambda: lstm_forward(x, h, c, LSTM_P), r"xs must have 3 dimensions \(T, N, D\)"),
    "h_prev of rank 1": (lambda: gru_step_forward(x, h[0], GRU_P), r"h_prev must have 2 dimensions \(N, H\)"),
    # wrong shape, never broadcast
    "h_prev with a different N": (
        lambda: rnn_step_forward(x, h[:1], RNN_P),
        r"h_prev must have shape \(N, H\) = \(4, 5\); got \(1, 5\)",
    ),
    "c_prev with a different H": (
        lambda: lstm_step_forward(x, h, c[:, :2], LSTM_P),
        r"c_prev must have shape \(N, H\) = \(4, 5\); got \(4, 2\)",
    ),
    "x with the wrong D for the params": (
        lambda: lstm_forward(np.zeros((T, N, D + 1)), h, c, LSTM_P),
        r"params\['W_xi'\] must have shape \(4, 5\) \(D = 4 from x, H = 5 from h_prev\); got \(3, 5\)",
    ),
    "a bias of shape (1, H)": (
        lambda: rnn_step_forward(x, h, {**RNN_P, "b_h": RNN_P["b_h"][None]}),
        r"params\['b_h'\] must have 1 dimensions \(5,\)",
    ),
    # parameter dicts
    "missing key": (lambda: lstm_step_forward(x, h, c, without(LSTM_P, "b_f")), r"LSTM params are missing \['b_f'\]"),
    "unexpected key": (
        lambda: gru_forward(xs, h, {**GRU_P, "b_hn": GRU_P["b_h"]}),
        r"GRU params have unexpected keys \['b_hn'\]",
    ),
    "params not a dict": (lambda: rnn_forward(xs, h, [RNN_P]), "RNN params must be a dict"),
    # dtypes
    "float32 input, float64 params": (
        lambda: lstm_forward(xs.astype(np.float32), h.astype(np.float32), c.astype(np.float32), LSTM_P),
        "must share one dtype.*x: float32.*float64",
    ),
    "mixed-dtype params": (
        lambda: rnn_step_forward(x, h, {**RNN_P, "b_h": RNN_P["b_h"].astype(np.float32)}),
        "must share one dtype",
    ),
    "integer input": (lambda: rnn_forward(xs.astype(int), h, RNN_P), "must have dtype float32 or float64; got int64"),
    "a list, not an array": (lambda: rnn_step_forward(x.tolist(), h, RNN_P), "x must be a numpy array of shape"),
    # empty
    "T = 0": (lambda: lstm_forward(xs[:0], h, c, LSTM_P), "at least one time step; got T = 0"),
    "N = 0": (lambda: gru_forward(xs[:, :0], h[:0], GRU_P), "at least one sample; got N = 0"),
    # sizes and counts
    "D = 0": (lambda: init_lstm_params(0, H, RNG), "D must be a positive integer; got 0"),
    "H not an int": (lambda: init_rnn_params(D, 2.5, RNG), "H must be a positive integer; got 2.5"),
    "a seed where a Generator is expected": (lambda: init_gru_params(D, H, 0), "rng must be a numpy Generator"),
    "three biases": (lambda: count_lstm_params(D, H, biases=3), r"biases must be 0, 1 \(Keras\) or 2 \(PyTorch\)"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_forward_input_raises_a_clear_value_error(case):
    call, message = CASES[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_backward_rejects_upstream_gradients_of_the_wrong_shape_or_dtype():
    hs, cache = rnn_forward(xs, h, RNN_P)
    with pytest.raises(ValueError, match=r"dhs must have 3 dimensions \(T, N, H\); got shape \(4, 5\)"):
        rnn_backward(hs[-1], cache)
    with pytest.raises(ValueError, match="dhs must have dtype float64"):
        rnn_backward(hs.astype(np.float32), cache)
    _, _, lcache = lstm_forward(xs, h, c, LSTM_P)
    with pytest.raises(ValueError, match=r"dhs must have shape \(T, N, H\) = \(6, 4, 5\); got \(5, 4, 5\)"):
        lstm_backward(hs[1:], lcache)


def test_backward_rejects_a_cache_from_another_function():
    _, step_cache = rnn_step_forward(x, h, RNN_P)
    with pytest.raises(ValueError, match=r"cache returned by the matching forward function \(rnn\)"):
        rnn_backward(np.zeros((T, N, H)), step_cache)
    _, _, lstm_cache = lstm_step_forward(x, h, c, LSTM_P)
    with pytest.raises(ValueError, match=r"\(rnn_step\)"):
        rnn_step_backward(h, lstm_cache)
    with pytest.raises(ValueError, match=r"\(lstm_step\)"):
        lstm_step_backward(h, c, {"x": x})
    with pytest.raises(ValueError, match=r"\(gru\)"):
        gru_backward(np.zeros((T, N, H)), lstm_cache)


def test_lstm_step_backward_checks_dc_as_well_as_dh():
    _, _, cache = lstm_step_forward(x, h, c, LSTM_P)
    with pytest.raises(ValueError, match=r"dc must have shape \(N, H\) = \(4, 5\); got \(4, 1\)"):
        lstm_step_backward(h, c[:, :1], cache)
