"""Package-level promises: no torch on import, documented public API, the contract's names."""

from __future__ import annotations

import inspect
import subprocess
import sys

import lstm_ref

CONTRACT = [
    "rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward",
    "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward",
    "gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward",
    "init_rnn_params", "init_lstm_params", "init_gru_params", "count_lstm_params",
    "sigmoid", "rel_error", "numerical_gradient",
]


def test_import_lstm_ref_does_not_import_torch():
    code = "import sys, lstm_ref; import lstm_ref.data, lstm_ref.gradients; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "importing lstm_ref pulled in torch"


def test_contract_functions_are_exported():
    missing = [name for name in CONTRACT if not callable(getattr(lstm_ref, name, None))]
    assert not missing, f"lstm_ref does not export {missing}"


def test_every_public_function_opens_with_a_sentence_and_states_shapes():
    modules = ["activations", "rnn", "lstm", "gru", "gradcheck", "gradients", "data", "torch_interop"]
    undocumented, shapeless = [], []
    for name in modules:
        module = __import__(f"lstm_ref.{name}", fromlist=["*"])
        for fname in module.__all__:
            obj = getattr(module, fname)
            if not inspect.isfunction(obj):
                continue
            doc = inspect.getdoc(obj) or ""
            if not doc or not doc.splitlines()[0].rstrip().endswith((".", ":")):
                undocumented.append(f"{name}.{fname}")
            if "(" not in doc:  # every public function states the shapes of what it takes or gives
                shapeless.append(f"{name}.{fname}")
    assert not undocumented, f"public functions without a one-sentence summary: {undocumented}"
    assert not shapeless, f"public functions whose docstring states no shapes: {shapeless}"
