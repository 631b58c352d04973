"""Weights move between torch.nn.RNN/LSTM/GRU and our dicts, and the outputs agree.

The truth here is PyTorch's own modules (its fused kernels, its gate order, its two biases).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_ref import count_lstm_params, gru_forward, lstm_forward, rnn_forward
from lstm_ref import gru, lstm, rnn
from lstm_ref.torch_interop import (
    gru_params_from_torch,
    gru_params_to_torch,
    lstm_params_from_torch,
    lstm_params_to_torch,
    rnn_params_from_torch,
    rnn_params_to_torch,
)

T, N, D, H = 7, 3, 5, 4


def _inputs(rng, dtype=np.float64):
    xs = rng.standard_normal((T, N, D)).astype(dtype)
    h0 = rng.standard_normal((N, H)).astype(dtype)
    c0 = rng.standard_normal((N, H)).astype(dtype)
    return xs, h0, c0


def _randomise(module):
    """Non-default values everywhere, including both bias vectors, so nothing passes by luck."""
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.8, 0.8)
    return module


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(0)


def test_lstm_from_torch_reproduces_nn_lstm(rng):
    m = _randomise(torch.nn.LSTM(D, H).double())
    xs, h0, c0 = _inputs(rng)
    out, (h_n, c_n) = m(torch.from_numpy(xs), (torch.from_numpy(h0)[None], torch.from_numpy(c0)[None]))
    hs, cs, _ = lstm_forward(xs, h0, c0, lstm_params_from_torch(m))
    assert np.max(np.abs(hs - out.detach().numpy())) <= 1e-10
    assert np.max(np.abs(cs[-1] - c_n[0].detach().numpy())) <= 1e-10


def test_lstm_to_torch_makes_nn_lstm_compute_our_forward(rng):
    params = lstm.init_lstm_params(D, H, rng)
    m = lstm_params_to_torch(params, torch.nn.LSTM(D, H).double())
    xs, h0, c0 = _inputs(rng)
    out, _ = m(torch.from_numpy(xs), (torch.from_numpy(h0)[None], torch.from_numpy(c0)[None]))
    hs, _, _ = lstm_forward(xs, h0, c0, params)
    assert np.max(np.abs(hs - out.detach().numpy())) <= 1e-10
    assert torch.count_nonzero(m.bias_hh_l0) == 0


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
def test_round_trip_ours_torch_ours_is_exact(family, rng):
    init, cls, to_t, from_t = {
        "rnn": (rnn.init_rnn_params, torch.nn.RNN, rnn_params_to_torch, rnn_params_from_torch),
        "lstm": (lstm.init_lstm_params, torch.nn.LSTM, lstm_params_to_torch, lstm_params_from_torch),
        "gru": (gru.init_gru_params, torch.nn.GRU, gru_params_to_torch, gru_params_from_torch),
    }[family]
    params = init(D, H, rng)
    back = from_t(to_t(params, cls(D, H).double()))
    assert list(back) == list(params)
    for k in params:
        np.testing.assert_array_equal(back[k], params[k], err_msg=k)


def test_lstm_gate_blocks_land_in_torch_order(rng):
    """PyTorch stacks (i, f, g, o); a mix-up of f and g would still round-trip, so check the blocks."""
    params = lstm.init_lstm_params(D, H, rng)
    m = lstm_params_to_torch(params, torch.nn.LSTM(D, H).double())
    w = m.weight_ih_l0.detach().numpy()
    for n, gate in enumerate("ifco"):  # our name for torch's i, f, g, o
        np.testing.assert_array_equal(w[n * H : (n + 1) * H], params[f"W_x{gate}"].T, err_msg=gate)


def test_rnn_from_torch_reproduces_nn_rnn(rng):
    m = _randomise(torch.nn.RNN(D, H).double())
    xs, h0, _ = _inputs(rng)
    out, _ = m(torch.from_numpy(xs), torch.from_numpy(h0)[None])
    hs, _ = rnn_forward(xs, h0, rnn_params_from_torch(m))
    assert np.max(np.abs(hs - out.detach().numpy())) <= 1e-10


def test_gru_from_torch_reproduces_nn_gru_once_b_hn_is_zero(rng):
    m = _randomise(torch.nn.GRU(D, H).double())
    with pytest.raises(ValueError, match="b_hn"):
        gru_params_from_torch(m)
    with torch.no_grad():
        m.bias_hh_l0[2 * H :] = 0
    xs, h0, _ = _inputs(rng)
    out, _ = m(torch.from_numpy(xs), torch.from_numpy(h0)[None])
    hs, _ = gru_forward(xs, h0, gru_params_from_torch(m))
    assert np.max(np.abs(hs - out.detach().numpy())) <= 1e-10


def test_gru_to_torch_makes_nn_gru_compute_our_forward(rng):
    params = gru.init_gru_params(D, H, rng)
    m = gru_params_to_torch(params, torch.nn.GRU(D, H).double())
    xs, h0, _ = _inputs(rng)
    out, _ = m(torch.from_numpy(xs), torch.from_numpy(h0)[None])
    hs, _ = gru_forward(xs, h0, params)
    assert np.max(np.abs(hs - out.detach().numpy())) <= 1e-10


def test_stacked_bidirectional_layers_convert_one_at_a_time(rng):
    """Layer 1 reads layer 0's outputs (both directions concatenated): D for it is 2H."""
    m = _randomise(torch.nn.LSTM(D, H, num_layers=2, bidirectional=True).double())
    xs, _, _ = _inputs(rng)
    zeros = np.zeros((N, H))
    out, _ = m(torch.from_numpy(xs))
    fwd0, _, _ = lstm_forward(xs, zeros, zeros, lstm_params_from_torch(m, layer=0))
    bwd0, _, _ = lstm_forward(xs[::-1].copy(), zeros, zeros, lstm_params_from_torch(m, layer=0, reverse=True))
    layer0 = np.concatenate([fwd0, bwd0[::-1]], axis=2)  # (T, N, 2H)
    fwd1, _, _ = lstm_forward(layer0, zeros, zeros, lstm_params_from_torch(m, layer=1))
    bwd1, _, _ = lstm_forward(layer0[::-1].copy(), zeros, zeros, lstm_params_from_torch(m, layer=1, reverse=True))
    ours = np.concatenate([fwd1, bwd1[::-1]], axis=2)
    assert np.max(np.abs(ours - out.detach().numpy())) <= 1e-10


def test_float32_module_gives_float32_params_that_match(rng):
    m = _randomise(torch.nn.LSTM(D, H))
    params = lstm_params_from_torch(m)
    assert all(v.dtype == np.float32 for v in params.values())
    xs, h0, c0 = _inputs(rng, np.float32)
    out, _ = m(torch.from_numpy(xs), (torch.from_numpy(h0)[None], torch.from_numpy(c0)[None]))
    hs, _, _ = lstm_forward(xs, h0, c0, params)
    assert hs.dtype == np.float32
    assert np.max(np.abs(hs - out.detach().numpy())) <= 1e-5


def test_count_lstm_params_matches_keras_and_torch():
    assert count_lstm_params(512, 1024) == 6_295_552  # Keras LSTM(1024) on 512 inputs: one bias
    torch_count = sum(p.numel() for p in torch.nn.LSTM(512, 1024).parameters())
    assert count_lstm_params(512, 1024, biases=2) == torch_count
    assert count_lstm_params(3, 5) == sum(v.size for v in lstm.init_lstm_params(3, 5, np.random.default_rng(0)).values())


def test_count_gru_params_matches_torch():
    torch_count = sum(p.numel() for p in torch.nn.GRU(7, 11).parameters())
    assert gru.count_gru_params(7, 11, biases=2) == torch_count


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: lstm_params_from_torch(torch.nn.GRU(D, H)), "expected a torch.nn.LSTM"),
        (lambda: lstm_params_from_torch(torch.nn.LSTM(D, H), layer=1), r"layer must be an int in \[0, 1\)"),
        (lambda: lstm_params_from_torch(torch.nn.LSTM(D, H), reverse=True), "bidirectional"),
        (lambda: lstm_params_from_torch(torch.nn.LSTM(D, H, proj_size=2)), "proj_size"),
        (lambda: rnn_params_from_torch(torch.nn.RNN(D, H, nonlinearity="relu")), "tanh"),
        (
            lambda: lstm_params_to_torch(lstm.init_lstm_params(D, H, np.random.default_rng(0)), torch.nn.LSTM(D, H)),
            "float64 but the module is torch.float32",
        ),
        (
            lambda: lstm_params_to_torch(lstm.init_lstm_params(D + 1, H, np.random.default_rng(0)), torch.nn.LSTM(D, H).double()),
            r"params\['W_xi'\] must have shape \(5, 4\)",
        ),
    ],
)
def test_interop_rejects_what_it_cannot_convert(call, message):
    with pytest.raises(ValueError, match=message):
        call()
