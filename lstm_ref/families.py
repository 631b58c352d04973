"""The three recurrent cells as one table: what every tool that works on "any cell" needs.

Gradient-flow measurements (:mod:`lstm_ref.gradients`), the exercise checks
(:mod:`lstm_ref.grading`), the PyTorch weight conversion (:mod:`lstm_ref.torch_interop`) and
the tests all read a cell's facts from here, so a fourth cell would be added in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import gru, lstm, rnn

__all__ = ["CellFamily", "FAMILIES", "family"]


@dataclass(frozen=True)
class CellFamily:
    """One recurrent cell: its states, parameters, functions and PyTorch layout.

    key: "rnn", "lstm" or "gru"; label: the name in messages, also the ``torch.nn`` class;
    n_states: 1 (h) or 2 (h and c); param_shapes(D, H) -> {name: shape}; init(D, H, rng);
    step_forward / forward / step_backward / backward: the cell's functions (see COURSE_DESIGN's
    API table); torch_gates: our gate letter for each of PyTorch's stacked blocks, in PyTorch's
    order; gate_names: what each gate letter is called in the chapters.
    """

    key: str
    label: str
    n_states: int
    param_shapes: Callable
    init: Callable
    step_forward: Callable
    forward: Callable
    step_backward: Callable
    backward: Callable
    torch_gates: tuple[str, ...]
    gate_names: Mapping[str, str]

    def param_names(self, gate: str) -> tuple[str, str, str]:
        """Our names for one gate's input weight, recurrent weight and bias (the RNN has one "gate", h)."""
        return f"W_x{gate}", f"W_h{gate}", f"b_{gate}"


FAMILIES: dict[str, CellFamily] = {
    "rnn": CellFamily("rnn", "RNN", 1, rnn.rnn_param_shapes, rnn.init_rnn_params, rnn.rnn_step_forward,
                      rnn.rnn_forward, rnn.rnn_step_backward, rnn.rnn_backward, ("h",), {}),
    # nn.LSTM stacks (i, f, g, o); its g is our candidate c~, whose parameters end in "c"
    "lstm": CellFamily("lstm", "LSTM", 2, lstm.lstm_param_shapes, lstm.init_lstm_params, lstm.lstm_step_forward,
                       lstm.lstm_forward, lstm.lstm_step_backward, lstm.lstm_backward, ("i", "f", "c", "o"),
                       {"i": "input gate", "f": "forget gate", "o": "output gate", "c": "candidate"}),
    # nn.GRU stacks (r, z, n); its n is our candidate h~, whose parameters end in "h"
    "gru": CellFamily("gru", "GRU", 1, gru.gru_param_shapes, gru.init_gru_params, gru.gru_step_forward,
                      gru.gru_forward, gru.gru_step_backward, gru.gru_backward, ("r", "z", "h"),
                      {"z": "update gate", "r": "reset gate", "h": "candidate"}),
}


def family(key: str) -> CellFamily:
    """The CellFamily of "rnn", "lstm" or "gru"; ValueError naming the choices for anything else.

    key: str; returns a CellFamily (its shapes: param_shapes(D, H) -> {name: (rows, cols) or (H,)}).
    """
    if not isinstance(key, str) or key not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}; got {key!r}.")
    return FAMILIES[key]
