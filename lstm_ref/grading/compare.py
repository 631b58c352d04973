"""Comparing a student's array with the reference, with ndarray methods only (a notebook cannot reassign them)."""

from __future__ import annotations

import numpy as np

from ._common import FLOAT32_ATOL, FLOAT32_RTOL, GradingError
from ._common import NDARRAY as _NDARRAY
from ._common import describe as _describe
from ._common import fmt as _fmt


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
    where = f" for {' '.join(inputs.split())}" if inputs else ""  # one line: a log shows only the first
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
