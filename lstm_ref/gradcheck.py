"""Finite-difference gradient checks and the relative error used to judge them.

One small module used by the tests, the chapters and the exercises alike. Nothing here
mutates the arrays it is given: perturbations are made on a private copy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._validate import check_array, check_rng

__all__ = ["rel_error", "numerical_gradient", "directional_check"]


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """Relative error of two arrays: ||a - b|| / (||a|| + ||b||), with 2-norms over all entries.

    a, b: arrays of the same shape (any floating dtype). Returns a float in [0, 1]; two
    float64 gradients that agree give about 1e-9 or less, a wrong one 1e-2 or more.
    The error is measured against the size of the whole array rather than entry by entry:
    a finite difference carries an absolute error of about 1e-10 on every entry, which is
    no evidence of a bug even where an entry is itself 1e-5. Both zero gives 0.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"rel_error needs two arrays of the same shape; got {a.shape} and {b.shape}.")
    a64 = a.astype(np.float64).ravel()
    b64 = b.astype(np.float64).ravel()
    scale = np.linalg.norm(a64) + np.linalg.norm(b64)
    if scale == 0.0:
        return 0.0
    return float(np.linalg.norm(a64 - b64) / scale)


def numerical_gradient(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray | None = None, h: float = 1e-5
) -> np.ndarray:
    """Central-difference gradient of the scalar sum(df * f(x)) with respect to x.

    f: a function of one array x returning an array (any shape) of outputs;
    x: the point, float64 for a meaningful check (float32 differences are mostly rounding);
    df: upstream gradient with f(x)'s shape (None means f returns a scalar or all-ones);
    h: the step. Returns an array with x's shape and dtype.

    x is copied; the caller's array is never modified, even temporarily.
    """
    check_array("x", x, (None,) * np.ndim(x), "(any shape)")
    xp = x.copy()
    grad = np.zeros_like(x)
    flat, gflat = xp.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + h
        plus = np.asarray(f(xp))
        flat[k] = old - h
        minus = np.asarray(f(xp))
        flat[k] = old
        diff = plus - minus
        gflat[k] = np.sum(diff if df is None else diff * df) / (2.0 * h)
    return grad


def directional_check(
    f: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    df: np.ndarray,
    dx: np.ndarray,
    rng: np.random.Generator,
    h: float = 1e-5,
) -> tuple[float, float]:
    """Compare an analytic gradient with finite differences along one random direction.

    For L(x) = sum(df * f(x)), the analytic gradient dx must satisfy <dx, v> = dL/dx . v for
    every direction v; the right side is (L(x + h v) - L(x - h v)) / 2h. One check costs two
    forward passes whatever the size of x, so it suits long sequences where element-wise
    differences would be slow (the check HIPS/autograd's check_grads makes).
    f: function of x; x: the point; df: upstream gradient (f(x)'s shape); dx: the analytic
    gradient (x's shape); rng: a numpy Generator for v. Returns (analytic, numeric).
    """
    check_rng(rng)
    check_array("x", x, (None,) * np.ndim(x), "(any shape)")
    check_array("dx", dx, x.shape, str(x.shape))
    v = rng.standard_normal(x.shape)
    v /= np.linalg.norm(v)
    plus = np.sum(np.asarray(f(x + h * v)) * df)
    minus = np.sum(np.asarray(f(x - h * v)) * df)
    return float(np.sum(dx * v)), float((plus - minus) / (2.0 * h))
