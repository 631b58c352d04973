"""The activations against closed forms and torch, including where naive formulas overflow."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from lstm_ref.activations import dsigmoid, dtanh, sigmoid, sigmoid_grad, tanh, tanh_grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_never_overflows_or_warns(dtype):
    z = np.array([-1e6, -1000.0, -745.0, -100.0, -89.0, 0.0, 89.0, 100.0, 1000.0, 1e6], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning would fail the test
        s = sigmoid(z)
    assert s.dtype == dtype
    assert np.all((s >= 0) & (s <= 1))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[5] == 0.5


def test_sigmoid_matches_the_closed_form_with_full_relative_precision():
    z = np.linspace(-700, 700, 2801)
    exact = np.array([1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v)) for v in z])
    s = sigmoid(z)
    # relative, not absolute: sigmoid(-700) is about 1e-304 and must not be rounded to 0
    assert np.max(np.abs(s - exact) / exact) < 1e-15
    assert sigmoid(np.array([-700.0]))[0] > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_and_derivatives_match_torch_autograd(dtype, rng):
    z = (rng.standard_normal(1000) * 6).astype(dtype)
    tz = torch.tensor(z, requires_grad=True)
    torch.sigmoid(tz).sum().backward()
    tol = 1e-6 if dtype == np.float32 else 1e-15
    assert np.max(np.abs(sigmoid(z) - torch.sigmoid(tz).detach().numpy())) <= tol
    assert np.max(np.abs(dsigmoid(z) - tz.grad.numpy())) <= tol
    tz.grad = None
    torch.tanh(tz).sum().backward()
    assert np.max(np.abs(tanh(z) - torch.tanh(tz).detach().numpy())) <= tol
    assert np.max(np.abs(dtanh(z) - tz.grad.numpy())) <= tol


def test_derivatives_through_outputs_match_the_closed_forms():
    z = np.linspace(-8, 8, 161)
    np.testing.assert_allclose(sigmoid_grad(sigmoid(z)), np.exp(-z) / (1 + np.exp(-z)) ** 2, rtol=1e-12)
    # 1 - t**2 loses relative precision as |t| -> 1, so this one is compared in absolute terms
    np.testing.assert_allclose(tanh_grad(np.tanh(z)), 1 / np.cosh(z) ** 2, rtol=0, atol=1e-15)
    assert sigmoid_grad(np.array([0.5]))[0] == 0.25  # the sigmoid's steepest slope
    assert tanh_grad(np.array([0.0]))[0] == 1.0  # tanh' <= 1, with equality only at 0
    assert np.all(dtanh(z) <= 1.0) and np.all(dsigmoid(z) <= 0.25)


@pytest.mark.parametrize("fn", [sigmoid, tanh, sigmoid_grad, tanh_grad, dsigmoid, dtanh])
def test_activations_reject_non_float_input(fn):
    with pytest.raises(ValueError, match="float32 or float64; got int64"):
        fn(np.arange(3))
    with pytest.raises(ValueError, match="must be a numpy array; got a list"):
        fn([0.0, 1.0])
