"""Move weights between PyTorch's nn.RNN / nn.LSTM / nn.GRU and lstm_ref's parameter dicts.

The only module of the package that imports torch, and only when it is imported itself:
``import lstm_ref`` never loads it.

PyTorch stores one layer's weights stacked and transposed relative to our ``x @ W``:
``weight_ih_l{k}`` is (G*H, D) and ``weight_hh_l{k}`` is (G*H, H), with the G gate blocks
in the order

    nn.LSTM: (i, f, g, o)   g is the candidate, our "c"
    nn.GRU:  (r, z, n)      n is the candidate, our "h"

and it keeps two bias vectors, ``bias_ih`` and ``bias_hh``. Inside a gate they are only ever
added, so our single bias is their sum. The one exception is the GRU candidate, where
PyTorch's b_hn sits inside the reset gate, r * (h W_hn + b_hn): our GRU has no such term,
so a module whose b_hn is not zero cannot be represented and is refused.
Going the other way, our bias is written into ``bias_ih`` and ``bias_hh`` is set to zero.
"""

from __future__ import annotations

import numpy as np
import torch

from ._validate import check_params
from .families import FAMILIES, CellFamily

__all__ = [
    "rnn_params_from_torch",
    "rnn_params_to_torch",
    "lstm_params_from_torch",
    "lstm_params_to_torch",
    "gru_params_from_torch",
    "gru_params_to_torch",
]

def _check_module(cell: CellFamily, module, layer: int, reverse: bool) -> str:
    if not isinstance(module, getattr(torch.nn, cell.label)):  # nn.RNN, nn.LSTM, nn.GRU
        raise ValueError(f"expected a torch.nn.{cell.label}; got a {type(module).__name__}.")
    if cell.key == "rnn" and module.nonlinearity != "tanh":
        raise ValueError(f"lstm_ref's RNN uses tanh; this nn.RNN uses nonlinearity={module.nonlinearity!r}.")
    if getattr(module, "proj_size", 0):
        raise ValueError(f"LSTMs with projections are not supported; got proj_size={module.proj_size}.")
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < module.num_layers:
        raise ValueError(f"layer must be an int in [0, {module.num_layers}); got {layer!r}.")
    if reverse and not module.bidirectional:
        raise ValueError("reverse=True needs a bidirectional module; this one is not.")
    return f"_l{layer}" + ("_reverse" if reverse else "")


def _from_torch(key: str, module, layer: int, reverse: bool) -> dict[str, np.ndarray]:
    cell = FAMILIES[key]
    suffix = _check_module(cell, module, layer, reverse)
    gates = cell.torch_gates
    H = module.hidden_size
    w_ih = getattr(module, "weight_ih" + suffix).detach().cpu().numpy()  # (G*H, D)
    w_hh = getattr(module, "weight_hh" + suffix).detach().cpu().numpy()  # (G*H, H)
    if module.bias:
        b_ih = getattr(module, "bias_ih" + suffix).detach().cpu().numpy()  # (G*H,)
        b_hh = getattr(module, "bias_hh" + suffix).detach().cpu().numpy()  # (G*H,)
    else:
        b_ih = b_hh = np.zeros(len(gates) * H, dtype=w_ih.dtype)
    if key == "gru" and np.any(b_hh[2 * H :] != 0):
        raise ValueError(
            "this nn.GRU has a non-zero b_hn (bias_hh's candidate block), which PyTorch applies "
            "inside the reset gate, r * (h W_hn + b_hn); lstm_ref's GRU has no such term. Zero it "
            f"first, e.g. module.bias_hh{suffix}.data[{2 * H}:] = 0, then convert."
        )
    params = {}
    for n, gate in enumerate(gates):
        rows = slice(n * H, (n + 1) * H)
        wx, wh, b = cell.param_names(gate)
        params[wx] = w_ih[rows].T.copy()  # (D, H)
        params[wh] = w_hh[rows].T.copy()  # (H, H)
        params[b] = (b_ih[rows] + b_hh[rows]).copy()  # (H,)
    return {k: params[k] for k in cell.param_shapes(1, 1)}  # our canonical key order


def _to_torch(key: str, params: dict, module, layer: int, reverse: bool):
    cell = FAMILIES[key]
    suffix = _check_module(cell, module, layer, reverse)
    gates = cell.torch_gates
    H = module.hidden_size
    D = getattr(module, "weight_ih" + suffix).shape[1]
    dtype = check_params(cell.label, params, cell.param_shapes(D, H), f"D = {D}, H = {H} from the module")
    module_dtype = getattr(module, "weight_ih" + suffix).dtype
    if torch.from_numpy(np.zeros(0, dtype=dtype)).dtype != module_dtype:
        raise ValueError(
            f"params are {dtype} but the module is {module_dtype}; nothing is cast silently: "
            "convert one of them first (module.double() or arrays .astype(np.float32))."
        )
    names = [cell.param_names(g) for g in gates]  # (W_x, W_h, b) of each stacked block
    w_ih = np.concatenate([params[wx].T for wx, _, _ in names])  # (G*H, D)
    w_hh = np.concatenate([params[wh].T for _, wh, _ in names])  # (G*H, H)
    b = np.concatenate([params[bias] for _, _, bias in names])  # (G*H,)
    if not module.bias and np.any(b != 0):
        raise ValueError("the module was built with bias=False but params has non-zero biases.")
    with torch.no_grad():
        getattr(module, "weight_ih" + suffix).copy_(torch.from_numpy(w_ih))
        getattr(module, "weight_hh" + suffix).copy_(torch.from_numpy(w_hh))
        if module.bias:
            getattr(module, "bias_ih" + suffix).copy_(torch.from_numpy(b))
            getattr(module, "bias_hh" + suffix).zero_()
    return module


def rnn_params_from_torch(module: torch.nn.RNN, layer: int = 0, reverse: bool = False) -> dict[str, np.ndarray]:
    """Read one layer (and direction) of an nn.RNN (tanh) as {"W_xh": (D, H), "W_hh": (H, H), "b_h": (H,)}.

    b_h = bias_ih + bias_hh. Arrays keep the module's dtype (float32 unless .double() was called).
    """
    return _from_torch("rnn", module, layer, reverse)


def rnn_params_to_torch(params: dict, module: torch.nn.RNN, layer: int = 0, reverse: bool = False):
    """Write our RNN params into one layer (and direction) of an nn.RNN, in place; returns the module.

    params: {"W_xh": (D, H), "W_hh": (H, H), "b_h": (H,)} with the module's dtype.
    """
    return _to_torch("rnn", params, module, layer, reverse)


def lstm_params_from_torch(module: torch.nn.LSTM, layer: int = 0, reverse: bool = False) -> dict[str, np.ndarray]:
    """Read one layer (and direction) of an nn.LSTM as our twelve arrays (W_x* (D, H), W_h* (H, H), b_* (H,)).

    Unstacks PyTorch's (i, f, g, o) blocks into our i, f, c, o and sums its two biases.
    """
    return _from_torch("lstm", module, layer, reverse)


def lstm_params_to_torch(params: dict, module: torch.nn.LSTM, layer: int = 0, reverse: bool = False):
    """Write our LSTM params into one layer (and direction) of an nn.LSTM, in place; returns the module.

    params: the twelve arrays of lstm_param_shapes(D, H), with the module's dtype.
    """
    return _to_torch("lstm", params, module, layer, reverse)


def gru_params_from_torch(module: torch.nn.GRU, layer: int = 0, reverse: bool = False) -> dict[str, np.ndarray]:
    """Read one layer (and direction) of an nn.GRU as our nine arrays (W_x* (D, H), W_h* (H, H), b_* (H,)).

    Unstacks PyTorch's (r, z, n) blocks into our r, z, h. Raises ValueError if b_hn != 0 (see above).
    """
    return _from_torch("gru", module, layer, reverse)


def gru_params_to_torch(params: dict, module: torch.nn.GRU, layer: int = 0, reverse: bool = False):
    """Write our GRU params into one layer (and direction) of an nn.GRU, in place; returns the module.

    params: the nine arrays of gru_param_shapes(D, H), with the module's dtype; b_hn is set to 0.
    """
    return _to_torch("gru", params, module, layer, reverse)
