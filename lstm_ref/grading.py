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
    "check_raises",
    "substitute",
    "trusted",
    "step_loop",
    "check_forward",
    "check_backward",
    "cell_case",
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


def _refuse_lstm_ref_calls(record: CallRecord, name: str) -> None:
    if record.lstm_ref_calls:
        called = list(dict.fromkeys(record.lstm_ref_calls))  # outermost call first
        raise GradingError(
            f"{name} calls into lstm_ref ({', '.join(called[:3])}) to produce its answer. The exercise is "
            "to write it yourself with numpy: such an answer earns no points."
        )


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
    if expected.ndim == 0:  # 0-d arithmetic gives numpy scalars, which the ndarray methods below reject
        got, expected = _NDARRAY.reshape(got, (1,)), _NDARRAY.reshape(expected, (1,))
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


# ---------------------------------------------------------------------------------------------
# Recurrent cells: forward and backward, step and sequence, with diagnoses.

_GATE_NAMES = {"i": "input gate", "f": "forget gate", "o": "output gate", "c": "candidate",
               "z": "update gate", "r": "reset gate", "h": "candidate"}


def _family(family: str):
    """(number of states, param_shapes, step_forward, forward, step_backward, backward) of the reference."""
    ref = reference()
    table = {
        "rnn": (1, ref.rnn.rnn_param_shapes, ref.rnn.rnn_step_forward, ref.rnn.rnn_forward,
                ref.rnn.rnn_step_backward, ref.rnn.rnn_backward),
        "lstm": (2, ref.lstm.lstm_param_shapes, ref.lstm.lstm_step_forward, ref.lstm.lstm_forward,
                 ref.lstm.lstm_step_backward, ref.lstm.lstm_backward),
        "gru": (1, ref.gru.gru_param_shapes, ref.gru.gru_step_forward, ref.gru.gru_forward,
                ref.gru.gru_step_backward, ref.gru.gru_backward),
    }
    if family not in table:
        raise ValueError(f"family must be one of {sorted(table)}; got {family!r}.")
    return table[family]


def cell_case(family: str, T: int, N: int, D: int, H: int, seed: int, dtype=np.float64, scale: float = 1.0):
    """Random inputs for a cell: (xs (T, N, D), states [(N, H), ...], params), seeded.

    Parameters are drawn at scale/sqrt(H) so gates are neither saturated nor all near 0.5.
    """
    n_states, shapes, *_ = _family(family)
    rng = np.random.default_rng(seed)
    params = {k: (rng.standard_normal(s) * scale / np.sqrt(H)).astype(dtype) for k, s in shapes(D, H).items()}
    xs = rng.standard_normal((T, N, D)).astype(dtype)
    states = [rng.standard_normal((N, H)).astype(dtype) for _ in range(n_states)]
    return xs, states, params


def _term(key: str, family: str) -> str:
    gate = key.split("_")[1][-1]
    where = _GATE_NAMES.get(gate, "") if family != "rnn" else ""
    if key.startswith("W_x"):
        return f"x @ {key}" + (f" ({where})" if where else "")
    if key.startswith("W_h"):
        return f"h_prev @ {key}" + (f" ({where})" if where else "")
    return f"+ {key}" + (f" ({where})" if where else "")


def _outputs(result, n_out: int, name: str, returns: str):
    if not isinstance(result, tuple) or len(result) != n_out + 1:
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else _describe(result)
        raise GradingError(f"{name} should return {returns}; got {got}.")
    return list(result[:n_out]), result[n_out]


def _forward_differs(student_fn, family, step, x, states, params, atol, name) -> bool:
    n_states, _, ref_step, ref_seq, *_ = _family(family)
    ref_fn = ref_step if step else ref_seq
    expected = ref_fn(x, *states, params)[:n_states]
    got, _ = call_student(student_fn, x, *states, params, name=name)
    if not isinstance(got, tuple) or len(got) < n_states:
        return True
    for g, e in zip(got[:n_states], expected):
        if not isinstance(g, _NDARRAY) or g.shape != e.shape:
            return True
        if float(_NDARRAY.max((_NDARRAY.astype(g, np.float64) - e).__abs__(), initial=0.0)) > atol:
            return True
    return False


def _probe(student_fn, family, step, x, states, params, atol, name) -> str:
    """Find the terms that are wrong: zero every parameter but one and compare again."""
    zero = {k: _NDARRAY.copy(v) * 0 for k, v in params.items()}
    wrong = []
    if _forward_differs(student_fn, family, step, x, states, zero, atol, name):
        wrong.append("with every parameter zero")
    for key in params:
        only = dict(zero, **{key: params[key]})
        if _forward_differs(student_fn, family, step, x, states, only, atol, name):
            wrong.append(_term(key, family))
    if not wrong:
        return ""
    if wrong[0] == "with every parameter zero":
        return (" Isolation probe: the output is already wrong with every parameter zero, so the way the "
                "gates and states are combined (not a weight) is at fault"
                + (f"; the terms {', '.join(wrong[1:])} differ too." if len(wrong) > 1 else "."))
    return (" Isolation probes (all parameters zero but one) find the error in: " + ", ".join(wrong)
            + ". Check the gate each of these feeds, and whether a matrix is transposed.")


def check_forward(
    student_fn: Callable,
    family: str,
    *,
    step: bool,
    name: str,
    cases: Iterable[tuple],
    atol: float = 1e-10,
    student_step: Callable | None = None,
    step_name: str = "",
) -> None:
    """Check a student's step or sequence forward against the reference on several cases.

    student_fn: (x, *states, params) -> (h, cache) for the RNN/GRU, (h, c, cache) for the LSTM
    (sequences: (hs, cache) / (hs, cs, cache)); family: "rnn", "lstm" or "gru"; step: True for
    a step function (x (N, D)), False for a sequence (xs (T, N, D)); cases: tuples
    (T, N, D, H, seed) or (T, N, D, H, seed, dtype). On a mismatch the message names the first
    wrong entry and, from isolation probes, the term at fault; for a sequence it also says
    whether the student's step function (student_step) is already wrong, or at which time step
    the sequence first goes wrong. Inside ``substitute(globals(), lstm_step_forward=...)`` the
    name ``lstm_step_forward`` is the stand-in, so save the student's step under another name
    before entering the block and pass that as student_step.
    """
    check_numpy_intact()
    n_states, _, ref_step, ref_seq, *_ = _family(family)
    outs = ["h", "c"][:n_states] if step else ["hs", "cs"][:n_states]
    returns = "(" + ", ".join(outs + ["cache"]) + ")"
    for case in cases:
        T, N, D, H, seed, *rest = case
        dtype = rest[0] if rest else np.float64
        xs, states, params = cell_case(family, 1 if step else T, N, D, H, seed, dtype)
        x = xs[0] if step else xs
        expected = (ref_step if step else ref_seq)(x, *states, params)[:n_states]
        result, _ = call_student(student_fn, x, *states, params, name=name)
        got, _ = _outputs(result, n_states, name, returns)
        shape_desc = f"(N, D, H) = {(N, D, H)}" if step else f"(T, N, D, H) = {(T, N, D, H)}"
        inputs = f"{shape_desc}, {np.dtype(dtype).name}, seed {seed}"
        for label, g, e in zip(outs, got, expected):
            try:
                compare(g, e, name=f"{label} from {name}", atol=atol, inputs=inputs)
            except GradingError as err:
                message = str(err)
                if not step and isinstance(g, _NDARRAY) and g.shape == e.shape:
                    message += _first_bad_step(g, e, atol)
                    if student_step is not None:
                        message += _step_verdict(student_step, family, xs, states, params, atol, step_name)
                if isinstance(g, _NDARRAY) and g.shape == e.shape and g.dtype == e.dtype:
                    message += _probe(student_fn, family, step, x, states, params, atol, name)
                raise GradingError(message) from None


def step_loop(family: str) -> Callable:
    """A trusted sequence forward that loops the reference step and caches the list of step caches.

    The exercises fix the cache of a sequence forward as the list of its steps' caches, in time
    order; a student's sequence backward is then tested on the caches this function makes, so
    a bug in the student's own sequence forward is not charged to the backward as well.
    Returns f(xs, *states, params) -> (hs[, cs], [cache_0, ..., cache_{T-1}]).
    """
    n_states, _, ref_step, *_ = _family(family)

    def loop(xs, *args):
        *states, params = args
        outs, caches = [[] for _ in range(n_states)], []
        for x in xs:
            *states, cache = ref_step(x, *states, params)
            for n in range(n_states):
                outs[n].append(states[n])
            caches.append(cache)
        return (*(np.stack(o) for o in outs), caches)

    return trusted(loop)


def _first_bad_step(got, expected, atol) -> str:
    bad = (_NDARRAY.astype(got, np.float64) - expected).__abs__() > atol
    per_step = [bool(_NDARRAY.any(bad[t])) for t in range(bad.shape[0])]
    first = per_step.index(True)
    return f" The first wrong time step is t = {first} of T = {bad.shape[0]}."


def _step_verdict(student_step, family, xs, states, params, atol, step_name) -> str:
    try:
        wrong = _forward_differs(student_step, family, True, xs[0], states, params, atol, step_name)
    except GradingError:
        wrong = True
    if wrong:
        return f" Your {step_name} is already wrong on the first step: fix it first."
    return (f" Your {step_name} is right on the first step, so the loop is at fault: is each step fed the "
            "state the previous step returned, and is every step's output stored?")


def _scalar_loss(student_fwd, family, step, x, states, params, upstream, name):
    """The scalar sum(upstream * outputs) as a function of one input, for finite differences."""
    n_states = _family(family)[0]
    n_up = len(upstream)

    def loss(args):
        result, _ = call_student(student_fwd, *args, name=name)
        outs, _ = _outputs(result, n_states, name, "its outputs and a cache")
        total = 0.0
        for o, u in zip(outs[:n_up], upstream):
            total += float(_NDARRAY.sum(_NDARRAY.astype(o, np.float64) * u))
        return total

    return loss


def check_backward(
    student_fwd: Callable,
    student_bwd: Callable,
    family: str,
    *,
    step: bool,
    name: str,
    fwd_name: str,
    cases: Iterable[tuple],
    tol: float = 1e-6,
    student_step_bwd: Callable | None = None,
) -> None:
    """Check a student's backward pass by finite differences of the student's own forward.

    Judging the backward against the derivative of the student's forward (not the reference's)
    charges a wrong forward to the forward only. student_fwd/student_bwd: the pair to check;
    step: True for a step backward, (dh[, dc], cache) -> (dx, dh_prev[, dc_prev], grads);
    False for a sequence backward, (dhs, cache) -> (dxs, dh0[, dc0], grads); cases: tuples
    (T, N, D, H, seed); tol: bound on the norm-wise relative error of each gradient. Every
    input gradient and every parameter gradient is checked, and the message names the first
    that fails, its worst entry and, for a sequence, whether the error enters at the last step.
    """
    check_numpy_intact()
    n_states, shapes, *_ = _family(family)
    ref = reference()
    for case in cases:
        T, N, D, H, seed = case[:5]
        xs, states, params = cell_case(family, 1 if step else T, N, D, H, seed)
        x = xs[0] if step else xs
        rng = np.random.default_rng(seed + 1)
        out_shape = (N, H) if step else (T, N, H)
        upstream = [rng.standard_normal(out_shape)]
        if step and n_states == 2:
            upstream.append(rng.standard_normal((N, H)))
        result, _ = call_student(student_fwd, x, *states, params, name=fwd_name)
        _, cache = _outputs(result, n_states, fwd_name, "its outputs and a cache")
        back, _ = call_student(student_bwd, *upstream, cache, name=name, allow_mutation=True)
        in_names = (["dx"] if step else ["dxs"]) + (["dh_prev", "dc_prev"] if step else ["dh0", "dc0"])[:n_states]
        returns = "(" + ", ".join(in_names + ["grads"]) + ")"
        if not isinstance(back, tuple) or len(back) != n_states + 2:
            raise GradingError(f"{name} should return {returns}; got {_describe(back) if not isinstance(back, tuple) else f'a tuple of {len(back)}'}.")
        *dins, grads = back
        if not isinstance(grads, dict) or set(grads) != set(params):
            got = sorted(grads) if isinstance(grads, dict) else _describe(grads)
            raise GradingError(f"{name}'s grads should be a dict with the keys {sorted(params)}; got {got}.")
        loss = _scalar_loss(student_fwd, family, step, x, states, params, upstream, fwd_name)
        shape_desc = f"(N, D, H) = {(N, D, H)}" if step else f"(T, N, D, H) = {(T, N, D, H)}"
        checks = [(in_names[0], dins[0], lambda v: loss([v, *states, params]), x)]
        for n in range(n_states):
            def f_state(v, n=n):
                st = list(states)
                st[n] = v
                return loss([x, *st, params])
            checks.append((in_names[1 + n], dins[1 + n], f_state, states[n]))
        for key in shapes(D, H):
            checks.append((f"grads[{key!r}]", grads[key], lambda v, key=key: loss([x, *states, dict(params, **{key: v})]), params[key]))
        for label, analytic, f, at in checks:
            if not isinstance(analytic, _NDARRAY) or analytic.shape != at.shape:
                raise GradingError(f"{label} from {name} should have shape {at.shape}; got {_describe(analytic)} ({shape_desc}).")
            numeric = ref.gradcheck.numerical_gradient(f, _NDARRAY.copy(at))
            err = ref.gradcheck.rel_error(analytic, numeric)
            if not err <= tol:
                diff = (_NDARRAY.astype(analytic, np.float64) - numeric).__abs__()
                idx = tuple(int(i) for i in np.unravel_index(int(_NDARRAY.argmax(diff)), diff.shape))
                message = (
                    f"{label} from {name} fails the gradient check ({shape_desc}, seed {seed}): relative "
                    f"error {err:.1e} > {tol:.0e} against finite differences of your {fwd_name}. Worst "
                    f"entry {idx}: yours {_fmt(analytic[idx])}, finite differences {_fmt(numeric[idx])}."
                )
                if not step and analytic.ndim == 3:
                    scale = 1.0 + float(_NDARRAY.max(numeric.__abs__()))
                    bad = [bool(_NDARRAY.any(diff[t] > 1e-6 * scale)) for t in range(T)]
                    if any(bad):
                        carried = "h and c" if n_states == 2 else "h"
                        message += f" Per time step it is wrong at t = {[t for t, b in enumerate(bad) if b]}"
                        message += (f" (earlier steps only: is the gradient carried back through {carried}?)"
                                    if not bad[-1] else " (including the last step: check the step backward itself)")
                raise GradingError(message)
