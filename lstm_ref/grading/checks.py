"""Ready-made checks for the test cells: element-wise functions, fixed cases, finite-difference gradients."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ._common import NDARRAY as _NDARRAY
from ._common import GradingError
from ._common import describe as _describe
from ._common import fmt as _fmt
from .calls import call_student
from .compare import compare
from .reference import check_numpy_intact, reference


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

    student_fn, reference_fn: functions of one array z (any shape) returning an array of z's
    shape; inputs: arrays of any shape and float dtype; name: the function's name for messages;
    atol, rtol: the tolerance (see compare). Also checks that the input is not modified.
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
            " ".join(np.array2string(a, precision=4, threshold=6).split()) if isinstance(a, _NDARRAY) and a.size <= 6 else _describe(a)
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
