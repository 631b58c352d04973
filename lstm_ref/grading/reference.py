"""The reference the checks compare with: a private copy of lstm_ref, and numpy as numpy ships it."""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np

from ._common import GradingError

# lstm_ref's own folder: the reference is loaded from the same source files under another name.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_REFERENCE = None


def reference():
    """The reference package: lstm_ref loaded afresh from its files under a private name.

    Returns a module with the same contents as ``lstm_ref`` (``reference().sigmoid``,
    ``reference().lstm.lstm_forward``, ...). Assignments a notebook makes to ``lstm_ref`` or
    its modules do not reach it.
    """
    global _REFERENCE
    if _REFERENCE is None:
        name = "_lstm_ref_grading_reference"
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(PACKAGE_DIR, "__init__.py"), submodule_search_locations=[PACKAGE_DIR]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        for file in sorted(os.listdir(PACKAGE_DIR)):
            sub = file[:-3]
            # every module but the torch interop (torch may be absent); grading/ is a folder, not loaded
            if file.endswith(".py") and not sub.startswith("_") and sub != "torch_interop":
                importlib.import_module(f"{name}.{sub}")
        _REFERENCE = module
    return _REFERENCE


_UFUNCS = ("exp", "tanh", "abs", "absolute", "maximum", "minimum", "add", "subtract", "multiply", "divide",
           "matmul", "sqrt", "log", "isnan", "isfinite", "negative", "where")
_FUNCTIONS = ("allclose", "isclose", "array_equal", "zeros", "zeros_like", "ones", "empty", "concatenate",
              "sum", "max", "mean", "asarray", "array", "linalg.norm", "testing.assert_allclose")


def check_numpy_intact() -> None:
    """Fail if the notebook has replaced a numpy function the checks or the reference use.

    Takes nothing (it reads the numpy module the notebook shares); raises GradingError naming the
    replaced function; returns None if all is as numpy ships it.
    """
    replaced = []
    for name in _UFUNCS:
        f = getattr(np, name, None)
        if name == "where":
            ok = getattr(f, "__module__", "").startswith("numpy") or type(f).__name__ == "_ArrayFunctionDispatcher"
        else:
            ok = isinstance(f, np.ufunc) and f.__name__ == name or (name == "abs" and getattr(f, "__name__", "") == "absolute")
        if not ok:
            replaced.append(f"np.{name}")
    for dotted in _FUNCTIONS:
        obj = np
        for part in dotted.split("."):
            obj = getattr(obj, part, None)
        if not getattr(obj, "__module__", "").startswith("numpy") and type(obj).__name__ not in (
            "builtin_function_or_method",
            "_ArrayFunctionDispatcher",
        ):
            replaced.append(f"np.{dotted}")
    if replaced:
        raise GradingError(
            f"numpy has been modified by this notebook: {', '.join(replaced)} no longer is numpy's own. "
            "Do not reassign numpy functions; restart the kernel and run the notebook from the top."
        )
