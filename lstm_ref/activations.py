"""The activation functions the cells use, and their derivatives.

Gates use the logistic sigmoid, candidates and outputs use tanh. Backward passes never
re-evaluate an activation: they use the derivative expressed through the forward output,
sigma' = s (1 - s) and tanh' = 1 - t**2, which is why caches keep activations, not
pre-activations.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_float_array

__all__ = ["sigmoid", "sigmoid_grad", "tanh", "tanh_grad", "dsigmoid", "dtanh"]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic sigmoid 1 / (1 + exp(-z)), element-wise, without overflow.

    z: array of any shape, float32 or float64. Returns an array of the same shape and dtype.

    The textbook formula evaluates exp(-z), which overflows for z below about -710 (float64)
    or -89 (float32) and warns. Here exp is only ever taken of -|z| <= 0, so it lies in (0, 1]:
    for z >= 0 the result is 1 / (1 + e), for z < 0 it is e / (1 + e) with e = exp(-|z|).
    The second form also keeps full relative precision for tiny outputs, where computing
    1 - 1/(1 + e) would cancel.
    """
    check_float_array("z", z)
    e = np.exp(-np.abs(z))
    s = 1.0 / (1.0 + e)
    return np.where(z >= 0, s, e * s).astype(z.dtype, copy=False)


def sigmoid_grad(s: np.ndarray) -> np.ndarray:
    """Derivative of the sigmoid written through its output: s (1 - s).

    s: sigmoid(z), any shape. Returns d sigmoid / dz at that z, same shape and dtype.
    """
    check_float_array("s", s)
    return s * (1.0 - s)


def dsigmoid(z: np.ndarray) -> np.ndarray:
    """Derivative of the sigmoid at z: sigmoid(z) (1 - sigmoid(z)). Same shape and dtype as z."""
    return sigmoid_grad(sigmoid(z))


def tanh(z: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent, element-wise (numpy's, which saturates to +-1 and never overflows).

    z: array of any shape, float32 or float64. Returns an array of the same shape and dtype.
    """
    check_float_array("z", z)
    return np.tanh(z)


def tanh_grad(t: np.ndarray) -> np.ndarray:
    """Derivative of tanh written through its output: 1 - t**2.

    t: tanh(z), any shape. Returns d tanh / dz at that z, same shape and dtype.
    """
    check_float_array("t", t)
    return 1.0 - t * t


def dtanh(z: np.ndarray) -> np.ndarray:
    """Derivative of tanh at z: 1 - tanh(z)**2. Same shape and dtype as z."""
    return tanh_grad(tanh(z))
