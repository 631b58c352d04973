"""The helpers the exercise notebooks' test cells call.

A test cell hands a student's function to these helpers, which run it on inputs of their
choosing, compare what comes back with the reference implementation, and fail with an
``AssertionError`` (a :class:`GradingError`) whose message a student can act on: what was
expected, what came back, the shape and dtype, and the most likely cause.

Four promises keep the grades honest:

* The reference is a private copy of ``lstm_ref`` loaded from its source files, so a notebook
  that reassigns ``lstm_ref.sigmoid`` (or anything else in the package) changes nothing here.
* Comparisons use only ndarray arithmetic and methods, which a notebook cannot reassign, never
  ``np.allclose``, ``np.testing`` or ``math.isclose``; if the notebook has replaced one of the
  numpy functions the reference relies on, the check fails and says so.
* A student function that calls into ``lstm_ref`` while it runs earns nothing: every call is
  traced, and a call into the package is reported.
* nbgrader gives a cell zero if anything reaches stderr, so warnings raised by a student's
  code (numpy ``RuntimeWarning``, deprecations) are captured and reported as hints on stdout
  instead, unless the check itself is about them (a sigmoid that overflows).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "GradingError",
    "reference",
    "call_student",
    "compare",
    "check_elementwise",
    "check_cases",
    "substitute",
    "trusted",
    "check_gradient",
    "check_numpy_intact",
    "random_inputs",
]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_NDARRAY = np.ndarray  # the class itself: its methods cannot be reassigned from Python
FLOAT32_ATOL = 1e-6  # the least tolerance a float32 result is held to
FLOAT32_RTOL = 1e-5


class GradingError(AssertionError):
    """A test failed; the message is written for the student."""


# ---------------------------------------------------------------------------------------------
# The reference: a private copy of lstm_ref, immune to changes made to the public one.

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
            name, os.path.join(_PACKAGE_DIR, "__init__.py"), submodule_search_locations=[_PACKAGE_DIR]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        for file in sorted(os.listdir(_PACKAGE_DIR)):
            sub = file[:-3]
            # every module but this one and the torch interop (torch may be absent)
            if file.endswith(".py") and not sub.startswith("_") and sub not in ("grading", "torch_interop"):
                importlib.import_module(f"{name}.{sub}")
        _REFERENCE = module
    return _REFERENCE


# ---------------------------------------------------------------------------------------------
# numpy must be numpy: the reference computes with it.

_UFUNCS = ("exp", "tanh", "abs", "absolute", "maximum", "minimum", "add", "subtract", "multiply", "divide",
           "matmul", "sqrt", "log", "isnan", "isfinite", "negative", "where")
_FUNCTIONS = ("allclose", "isclose", "array_equal", "zeros", "zeros_like", "ones", "empty", "concatenate",
              "sum", "max", "mean", "asarray", "array", "linalg.norm", "testing.assert_allclose")


def check_numpy_intact() -> None:
    """Fail if the notebook has replaced a numpy function the checks or the reference use.

    Raises GradingError naming the replaced function; returns None if all is as numpy ships it.
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


# ---------------------------------------------------------------------------------------------
# Running a student's function.


@dataclass
class CallRecord:
    """What happened while a student's function ran."""

    warnings: list = field(default_factory=list)
    lstm_ref_calls: list = field(default_factory=list)
    stderr: str = ""


_THIS_FILE = os.path.abspath(__file__)


def _in_package(filename: str) -> bool:
    """True for lstm_ref's own modules (and their private reference copy), not this one."""
    path = os.path.abspath(filename)
    return path.startswith(_PACKAGE_DIR + os.sep) and path != _THIS_FILE


def trusted(fn: Callable) -> Callable:
    """Wrap a reference function so a student's code may call it without penalty.

    Used by :func:`substitute` to test one function in isolation: a student's ``lstm_forward``
    is tested with the reference step function in place of theirs, so a bug in their step
    costs the step's points only.
    """

    def _trusted_call(*args, **kwargs):
        return fn(*args, **kwargs)

    _trusted_call.__name__ = getattr(fn, "__name__", "trusted")
    _trusted_call.__doc__ = fn.__doc__
    return _trusted_call


_TRUSTED_CODE = trusted(len).__code__


@contextlib.contextmanager
def substitute(namespace: dict, **replacements: Callable):
    """Temporarily replace names in a notebook's namespace with trusted reference functions.

    namespace: the notebook's ``globals()``; replacements: name=reference_function.
    The original bindings are restored on exit, whatever happens.
    """
    missing = object()
    saved = {name: namespace.get(name, missing) for name in replacements}
    try:
        for name, fn in replacements.items():
            namespace[name] = trusted(fn)
        yield
    finally:
        for name, old in saved.items():
            if old is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = old


@contextlib.contextmanager
def _watch(record: CallRecord):
    """Trace calls into lstm_ref, capture warnings and stderr, while the body runs."""
    depth = [0]  # > 0 while a trusted reference function runs

    def profiler(frame, event, arg):
        if frame.f_code is _TRUSTED_CODE:
            depth[0] += 1 if event == "call" else -1 if event == "return" else 0
        elif event == "call" and depth[0] == 0 and _in_package(frame.f_code.co_filename):
            record.lstm_ref_calls.append(f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_name}")

    previous = sys.getprofile()
    err = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(err):
        warnings.simplefilter("always")
        sys.setprofile(profiler)
        try:
            yield record
        finally:
            tampered = sys.getprofile() is not profiler
            sys.setprofile(previous)
            record.warnings.extend(f"{w.category.__name__}: {w.message}" for w in caught)
            record.stderr = err.getvalue()
            if tampered:
                record.lstm_ref_calls.append("(the function replaced the grader's call tracer)")


def _copy(value):
    if isinstance(value, _NDARRAY):
        return _NDARRAY.copy(value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    return value


def _changed(a, b) -> bool:
    if isinstance(a, _NDARRAY):
        return not isinstance(b, _NDARRAY) or a.shape != b.shape or bool(_NDARRAY.any((a != b) & ((a == a) | (b == b))))
    if isinstance(a, dict):
        return any(_changed(a[k], b.get(k)) for k in a)
    if isinstance(a, (list, tuple)):
        return any(_changed(x, y) for x, y in zip(a, b))
    return False


def call_student(fn: Callable, *args, name: str, allow_warnings: bool = True, allow_mutation: bool = False, **kwargs):
    """Call a student's function on copies of the arguments and return (result, record).

    fn: the student's function; args/kwargs: its arguments (arrays are copied first, so
    whatever the function does to them cannot reach the caller's arrays); name: how to call
    it in messages. Raises GradingError if it is not callable, raises an exception, calls into
    lstm_ref, changes its input arrays (unless allow_mutation), or (allow_warnings=False) emits
    a warning. Warnings otherwise become hints printed on stdout, never stderr.
    """
    if not callable(fn):
        raise GradingError(f"{name} should be a function; got a {type(fn).__name__}. Did you run its cell?")
    record = CallRecord()
    args_copy, kwargs_copy = _copy(args), _copy(kwargs)
    try:
        with _watch(record):
            result = fn(*args_copy, **kwargs_copy)
    except NotImplementedError:
        raise GradingError(f"{name} is not implemented yet: replace `raise NotImplementedError()` with your code.") from None
    except GradingError:
        raise
    except Exception as exc:  # the student's bug, reported in their terms
        shapes = ", ".join(_describe(a) for a in args)
        raise GradingError(f"{name}({shapes}) raised {type(exc).__name__}: {exc}") from None
    if record.lstm_ref_calls:
        called = list(dict.fromkeys(record.lstm_ref_calls))  # outermost call first
        raise GradingError(
            f"{name} calls into lstm_ref ({', '.join(called[:3])}) to produce its answer. The exercise is "
            "to write it yourself with numpy: such an answer earns no points."
        )
    if not allow_mutation and (_changed(args, args_copy) or _changed(kwargs, kwargs_copy)):
        raise GradingError(
            f"{name} changed its input arrays in place. Work on a copy (x.copy()), or put back "
            "every entry you perturb, so the caller's data is untouched."
        )
    if record.warnings and not allow_warnings:
        raise GradingError(f"{name} emitted a warning: {record.warnings[0]}")
    if record.warnings:
        print(f"Hint: {name} emitted {record.warnings[0]} (it still passed; worth a look).")
    if record.stderr:
        print(f"Note: {name} wrote to stderr: {record.stderr.strip()[:200]}")
    return result, record


# ---------------------------------------------------------------------------------------------
# Comparing arrays, with ndarray methods only.


def _describe(value) -> str:
    if isinstance(value, _NDARRAY):
        return f"array of shape {value.shape}, dtype {value.dtype}"
    return type(value).__name__


def _fmt(v) -> str:
    return f"{float(v):.8g}"


def compare(
    got,
    expected: np.ndarray,
    *,
    name: str,
    atol: float,
    rtol: float = 0.0,
    inputs: str = "",
    check_dtype: bool = True,
    hint: str = "",
) -> None:
    """Fail with a readable message unless ``got`` matches ``expected`` within tolerance.

    got: what the student's code returned; expected: the reference array; name: what the
    value is ("sigmoid(z)", "dW_hh"); atol, rtol: |got - expected| <= atol + rtol |expected|
    element-wise; inputs: a description of the inputs for the message; check_dtype: require
    the same dtype (float32 in must give float32 out); hint: the likely cause, added to the
    message on a value mismatch. The tolerances are for float64; a float32 result is held to
    float32's precision instead (at least atol 1e-6, rtol 1e-5), since it carries only ~7 digits.
    """
    where = f" for {inputs}" if inputs else ""
    if not isinstance(got, _NDARRAY):
        raise GradingError(
            f"{name}{where} should be a numpy array of shape {expected.shape}; got {_describe(got)}."
        )
    if got.shape != expected.shape:
        raise GradingError(
            f"{name}{where} has shape {got.shape}; expected {expected.shape}. "
            "Check which axis you reduced, stacked or transposed."
        )
    if check_dtype and got.dtype != expected.dtype:
        raise GradingError(
            f"{name}{where} has dtype {got.dtype}; expected {expected.dtype}. "
            "Keep the input's dtype (float32 in, float32 out): avoid np.float64(...) constants and .astype."
        )
    if expected.dtype == np.float32:
        atol, rtol = max(atol, FLOAT32_ATOL), max(rtol, FLOAT32_RTOL)
    g = _NDARRAY.astype(got, np.float64)
    e = _NDARRAY.astype(expected, np.float64)
    finite_e = (e - e) == 0  # False for inf and nan
    finite_g = (g - g) == 0
    if _NDARRAY.any(finite_e & ~finite_g):
        idx = tuple(int(i[0]) for i in _NDARRAY.nonzero(finite_e & ~finite_g))
        raise GradingError(
            f"{name}{where} contains {g[idx]} at index {idx} where {_fmt(e[idx])} was expected. "
            "inf or nan usually means an overflow: look for exp of a large number."
        )
    diff = (g - e).__abs__()
    limit = atol + rtol * e.__abs__()
    over = finite_e & (diff > limit)
    if _NDARRAY.any(over):
        idx = tuple(int(i[0]) for i in _NDARRAY.nonzero(over))
        worst = float(_NDARRAY.max(diff, where=finite_e, initial=0.0))
        message = (
            f"{name}{where} is wrong at index {idx}: expected {_fmt(e[idx])}, got {_fmt(g[idx])}. "
            f"{int(_NDARRAY.sum(over))} of {e.size} entries differ by more than the tolerance "
            f"(atol {atol:g}, rtol {rtol:g}); the largest difference is {worst:.3g}."
        )
        raise GradingError(message + (f" {hint}" if hint else ""))


# ---------------------------------------------------------------------------------------------
# Ready-made checks.


def random_inputs(seed: int, shapes: Iterable[tuple], scale: float = 3.0, dtype=np.float64) -> list[np.ndarray]:
    """Seeded random arrays, one per shape, standard normal times ``scale``, in ``dtype``.

    seed: int; shapes: e.g. [(4,), (2, 3)]. Returns a list of arrays.
    """
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * scale).astype(dtype) for s in shapes]


def check_elementwise(
    student_fn: Callable,
    reference_fn: Callable,
    inputs: Iterable[np.ndarray],
    *,
    name: str,
    atol: float,
    rtol: float = 0.0,
    allow_warnings: bool = True,
    hint: str = "",
) -> None:
    """Check an element-wise function against the reference on every input array.

    student_fn, reference_fn: functions of one array; inputs: arrays of any shape and float
    dtype; name: the function's name for messages. Also checks that the input is not modified.
    """
    check_numpy_intact()
    for z in inputs:
        expected = reference_fn(_NDARRAY.copy(z))
        got, _ = call_student(student_fn, z, name=name, allow_warnings=allow_warnings)
        desc = f"z of shape {z.shape}, dtype {z.dtype}" + (
            f", z = {np.array2string(z, precision=4, threshold=6)}" if z.size <= 6 else ""
        )
        compare(got, expected, name=f"{name}(z)", atol=atol, rtol=rtol, inputs=desc, hint=hint)


def check_cases(
    student_fn: Callable,
    cases: Iterable[tuple[tuple, np.ndarray]],
    *,
    name: str,
    atol: float,
    rtol: float = 0.0,
    hint: str = "",
    check_dtype: bool = True,
) -> None:
    """Check a student's function on fixed cases: each case is (arguments, expected array).

    For the visible tests, whose expected values come from closed forms in the test cell.
    """
    check_numpy_intact()
    for args, expected in cases:
        got, _ = call_student(student_fn, *args, name=name)
        desc = ", ".join(
            np.array2string(a, precision=4, threshold=6) if isinstance(a, _NDARRAY) and a.size <= 6 else _describe(a)
            for a in args
            if not callable(a)
        )
        compare(got, expected, name=f"{name}(...)", atol=atol, rtol=rtol, inputs=desc, hint=hint, check_dtype=check_dtype)


def check_gradient(
    loss: Callable[[np.ndarray], float],
    x: np.ndarray,
    analytic: np.ndarray,
    *,
    name: str,
    tol: float = 1e-7,
    h: float = 1e-5,
) -> float:
    """Check an analytic gradient against central finite differences of a scalar loss.

    loss: function of x returning a float; x: float64 array (not modified); analytic: the
    gradient to check, x's shape; name: what it is ("dW_hh"); tol: bound on the norm-wise
    relative error ||a - n|| / (||a|| + ||n||). Returns the relative error; raises GradingError
    with the worst entry when it exceeds tol.
    """
    check_numpy_intact()
    ref = reference()
    if not isinstance(analytic, _NDARRAY) or analytic.shape != x.shape:
        raise GradingError(f"{name} should be an array of shape {x.shape}; got {_describe(analytic)}.")
    numeric = ref.gradcheck.numerical_gradient(lambda v: loss(v), _NDARRAY.copy(x), h=h)
    err = ref.gradcheck.rel_error(analytic, numeric)
    if not err <= tol:  # also catches nan
        diff = (_NDARRAY.astype(analytic, np.float64) - numeric).__abs__()
        idx = tuple(int(i) for i in np.unravel_index(int(_NDARRAY.argmax(diff)), diff.shape))
        raise GradingError(
            f"{name} fails the finite-difference check: relative error {err:.2e} > {tol:.0e}. "
            f"Worst entry {idx}: yours {_fmt(analytic[idx])}, finite differences {_fmt(numeric[idx])}."
        )
    return err
