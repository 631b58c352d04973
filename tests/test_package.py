"""Package-level promises: no torch on import, documented public API, the contract's names."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import lstm_ref

ROOT = Path(__file__).resolve().parent.parent

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
    modules = ["activations", "rnn", "lstm", "gru", "families", "gradcheck", "gradients", "data", "torch_interop",
               "language_model", "grading.reference", "grading.calls", "grading.compare", "grading.checks",
               "grading.cells", "grading.language_model"]
    undocumented, shapeless = [], []
    for name in modules:
        module = __import__(f"lstm_ref.{name}", fromlist=["*"])
        public = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
        for fname in public:
            obj = getattr(module, fname)
            if not inspect.isfunction(obj) or obj.__module__ != module.__name__:
                continue
            doc = inspect.getdoc(obj) or ""
            if not doc or not doc.splitlines()[0].rstrip().endswith((".", ":")):
                undocumented.append(f"{name}.{fname}")
            if "(" not in doc:  # every public function states the shapes of what it takes or gives
                shapeless.append(f"{name}.{fname}")
    assert not undocumented, f"public functions without a one-sentence summary: {undocumented}"
    assert not shapeless, f"public functions whose docstring states no shapes: {shapeless}"


def test_lstm_ref_and_all_of_its_grading_helpers_need_neither_the_grader_nor_torch():
    # what a plain `pip install -e .` gives a student: numpy and matplotlib, nothing from the extras
    code = ("import sys, lstm_ref, lstm_ref.grading, lstm_ref.grading.guard; lstm_ref.grading.reference(); "
            "print(sorted(m for m in ('torch', 'nbgrader', 'jupyter_client', 'traitlets', 'course_grader') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"lstm_ref.grading pulled in {out.stdout.strip()}"


def _imports(path: Path, module: str, is_package: bool) -> set[str]:
    """The project modules a file imports, at any depth of its code (imports inside functions count)."""
    found = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names}
            found.update(submodules)
            if not any((ROOT / Path(*m.split("."))).with_suffix(".py").exists() for m in submodules):
                found.add(base)  # `from .x import name`: the module x; `from . import x`: x alone
    return found


def test_the_import_graph_of_the_packages_has_no_cycle():
    modules = {}
    for top in ("lstm_ref", "course_grader"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            is_package = rel.name == "__init__"
            name = ".".join(rel.parent.parts if is_package else rel.parts)
            modules[name] = (path, is_package)
    graph = {name: sorted(m for m in _imports(path, name, pkg) if m in modules and m != name)
             for name, (path, pkg) in modules.items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])
    assert graph["course_grader.cli"] and graph["lstm_ref.families"], "the import scan found no edges"
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
