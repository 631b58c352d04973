"""The three cells written directly in torch, for autograd to differentiate.

These are the independent truth the numpy forward and backward passes are tested against:
the equations are typed out again here, in torch, and autograd derives the gradients.
Parameters are dicts of tensors with the same names as lstm_ref's.
"""

from __future__ import annotations

import numpy as np
import torch


def to_torch(arrays: dict, requires_grad: bool = True) -> dict:
    """Copy a dict of numpy arrays into float64 leaf tensors."""
    return {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=requires_grad) for k, v in arrays.items()}


def rnn_step(x, h, P):
    return torch.tanh(x @ P["W_xh"] + h @ P["W_hh"] + P["b_h"])


def lstm_step(x, h, c, P):
    i = torch.sigmoid(x @ P["W_xi"] + h @ P["W_hi"] + P["b_i"])
    f = torch.sigmoid(x @ P["W_xf"] + h @ P["W_hf"] + P["b_f"])
    o = torch.sigmoid(x @ P["W_xo"] + h @ P["W_ho"] + P["b_o"])
    g = torch.tanh(x @ P["W_xc"] + h @ P["W_hc"] + P["b_c"])
    c = f * c + i * g
    return o * torch.tanh(c), c


def gru_step(x, h, P):
    z = torch.sigmoid(x @ P["W_xz"] + h @ P["W_hz"] + P["b_z"])
    r = torch.sigmoid(x @ P["W_xr"] + h @ P["W_hr"] + P["b_r"])
    n = torch.tanh(x @ P["W_xh"] + r * (h @ P["W_hh"]) + P["b_h"])
    return z * h + (1 - z) * n


def rnn_seq(xs, h, P):
    hs = []
    for x in xs:
        h = rnn_step(x, h, P)
        hs.append(h)
    return torch.stack(hs)


def lstm_seq(xs, h, c, P):
    hs, cs = [], []
    for x in xs:
        h, c = lstm_step(x, h, c, P)
        hs.append(h)
        cs.append(c)
    return torch.stack(hs), torch.stack(cs)


def gru_seq(xs, h, P):
    hs = []
    for x in xs:
        h = gru_step(x, h, P)
        hs.append(h)
    return torch.stack(hs)
