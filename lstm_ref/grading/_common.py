"""What every grading module shares: the error a student reads, and describing values in it."""

from __future__ import annotations

import numpy as np

NDARRAY = np.ndarray  # the class itself: its methods cannot be reassigned from Python
FLOAT32_ATOL = 1e-6  # the least tolerance a float32 result is held to
FLOAT32_RTOL = 1e-5


class GradingError(AssertionError):
    """A test failed; the message is written for the student."""


def describe(value) -> str:
    """A short description of a value for a message: an array's shape and dtype, else its type."""
    if isinstance(value, NDARRAY):
        return f"array of shape {value.shape}, dtype {value.dtype}"
    return type(value).__name__


def fmt(v) -> str:
    """A number as a message shows it: eight significant digits."""
    return f"{float(v):.8g}"
