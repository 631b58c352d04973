"""Running a student's function: on copies of its inputs, with its warnings, output and calls into
lstm_ref watched, and its result checked for what every exercise asks (new arrays, inputs untouched)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ._common import NDARRAY as _NDARRAY
from ._common import GradingError
from ._common import describe as _describe
from .reference import PACKAGE_DIR, check_numpy_intact

_MAY_SHARE_MEMORY = np.may_share_memory  # bound before any notebook runs: a reassignment cannot reach it
_GRADING_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass
class CallRecord:
    """What happened while a student's function ran."""

    warnings: list = field(default_factory=list)
    lstm_ref_calls: list = field(default_factory=list)
    stderr: str = ""



def _in_package(filename: str) -> bool:
    """True for lstm_ref's own modules (and their private reference copy), not for the grading helpers."""
    path = os.path.abspath(filename)
    return path.startswith(PACKAGE_DIR + os.sep) and not path.startswith(_GRADING_DIR + os.sep)


def trusted(fn: Callable) -> Callable:
    """Wrap a reference function so a student's code may call it without penalty.

    fn: the reference function (any arguments, e.g. (x (N, D), h_prev (N, H), params)); returns a
    function with the same signature and result that the call tracer does not charge.

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


def _refuse_lstm_ref_calls(record: CallRecord, name: str) -> None:
    if record.lstm_ref_calls:
        called = list(dict.fromkeys(record.lstm_ref_calls))  # outermost call first
        raise GradingError(
            f"{name} calls into lstm_ref ({', '.join(called[:3])}) to produce its answer. The exercise is "
            "to write it yourself with numpy: such an answer earns no points."
        )


def _aliased(result, inputs: list) -> str:
    """Where result reuses an input: 'its argument 2' / 'entry 'W' of ...', or '' when all of it is new."""
    arrays = [(i, a) for i, a in inputs if isinstance(a, _NDARRAY)]
    containers = {id(v): i for i, v in inputs if isinstance(v, (dict, list))}

    def walk(value, path):
        if isinstance(value, (dict, list)) and id(value) in containers:
            return f"{path} is the very {type(value).__name__} passed as {containers[id(value)]}"
        if isinstance(value, _NDARRAY):
            for label, a in arrays:
                if _MAY_SHARE_MEMORY(value, a):
                    return f"{path} shares memory with {label} (a view of it, not a new array)"
            return ""
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
        for key, item in items:
            found = walk(item, f"{path}[{key!r}]")
            if found:
                return found
        return ""

    return walk(result, "the result")


def _labelled(args, kwargs) -> list:
    """(label, value) for every array, dict and list among the arguments, nested ones included."""
    out = []

    def add(label, value):
        if isinstance(value, (_NDARRAY, dict, list)):
            out.append((label, value))
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
        for key, item in items:
            add(f"{label}[{key!r}]", item)

    for i, a in enumerate(args):
        add(f"argument {i + 1}", a)
    for k, v in kwargs.items():
        add(f"argument {k}", v)
    return out


def call_student(fn: Callable, *args, name: str, allow_warnings: bool = True, allow_mutation: bool = False,
                 new_result: bool = False, **kwargs):
    """Call a student's function on copies of the arguments and return (result, record).

    fn: the student's function; args/kwargs: its arguments (arrays are copied first, so
    whatever the function does to them cannot reach the caller's arrays); name: how to call
    it in messages. Raises GradingError if it is not callable, raises an exception, calls into
    lstm_ref, changes its input arrays (unless allow_mutation), or (allow_warnings=False) emits
    a warning. With new_result=True (for a notebook that asks for new arrays or a new dict) it
    also fails when any array in the result shares memory with an argument, or a dict or list in
    it is one of the arguments. Warnings otherwise become hints printed on stdout, never stderr.
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
        _refuse_lstm_ref_calls(record, name)  # an exception raised inside lstm_ref is not the student's
        shapes = ", ".join(_describe(a) for a in args)
        error = GradingError(f"{name}({shapes}) raised {type(exc).__name__}: {exc}")
        error.raised = exc  # for check_raises, which expects some inputs to be refused
        raise error from None
    _refuse_lstm_ref_calls(record, name)
    if not allow_mutation and (_changed(args, args_copy) or _changed(kwargs, kwargs_copy)):
        raise GradingError(
            f"{name} changed its input arrays in place. Work on a copy (x.copy()), or put back "
            "every entry you perturb, so the caller's data is untouched."
        )
    if new_result:
        reused = _aliased(result, _labelled(args_copy, kwargs_copy))
        if reused:
            raise GradingError(
                f"{name} returns part of its input instead of something new: {reused}. The exercise asks for "
                "new arrays (and a new dict), so that changing one never changes the other: copy what you return "
                "(x.copy(), np.array(x), {key: value.copy() ...})."
            )
    if record.warnings and not allow_warnings:
        raise GradingError(f"{name} emitted a warning: {record.warnings[0]}")
    if record.warnings:
        print(f"Hint: {name} emitted {record.warnings[0]} (it still passed; worth a look).")
    if record.stderr:
        print(f"Note: {name} wrote to stderr: {record.stderr.strip()[:200]}")
    return result, record


def check_raises(student_fn: Callable, *args, exc: type = ValueError, name: str, why: str) -> None:
    """Fail unless the student's function refuses these arguments by raising ``exc``.

    student_fn: the function; args: the arguments it should refuse; exc: the exception class
    expected (subclasses count); name: the function's name for messages; why: what is wrong with
    the arguments, for the message ("the window is longer than the series"). Warnings and output
    are contained as in call_student; calling into lstm_ref fails as it does there.
    """
    check_numpy_intact()
    try:
        result, _ = call_student(student_fn, *args, name=name)
    except GradingError as err:
        if isinstance(getattr(err, "raised", None), exc):
            return
        raise GradingError(f"{name} should raise {exc.__name__} here ({why}); instead: {err}") from None
    raise GradingError(f"{name} should raise {exc.__name__} here ({why}); it returned {_describe(result)}.")
