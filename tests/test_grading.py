"""lstm_ref.grading: what the exercise test cells rely on, tested directly."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

import lstm_ref
from lstm_ref import grading
from lstm_ref.grading import GradingError

REF = grading.reference()


def stable_sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def tanh_sigmoid(z):  # a different, equally correct formula
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def test_reference_is_a_private_copy_that_notebook_patches_cannot_reach(monkeypatch):
    monkeypatch.setattr(lstm_ref, "sigmoid", lambda z: z * 0)
    monkeypatch.setattr(lstm_ref.activations, "sigmoid", lambda z: z * 0)
    z = np.array([0.0])
    assert REF.sigmoid(z)[0] == 0.5
    assert REF.__name__ != "lstm_ref" and REF.sigmoid is not lstm_ref.sigmoid


@pytest.mark.parametrize("fn", [stable_sigmoid, tanh_sigmoid])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_correct_alternative_implementations_pass(fn, dtype):
    cases = grading.random_inputs(0, [(5,), (3, 4), (0,)], dtype=dtype)
    grading.check_elementwise(fn, REF.sigmoid, cases, name="sigmoid", atol=1e-12, rtol=1e-9)


def test_a_function_that_calls_lstm_ref_earns_nothing():
    with pytest.raises(GradingError, match="calls into lstm_ref"):
        grading.check_elementwise(lambda z: lstm_ref.sigmoid(z), REF.sigmoid, [np.zeros(3)], name="sigmoid", atol=1e-9)
    with pytest.raises(GradingError, match="calls into lstm_ref"):
        grading.check_elementwise(lambda z: REF.sigmoid(z), REF.sigmoid, [np.zeros(3)], name="sigmoid", atol=1e-9)


def test_substituted_reference_functions_may_be_called():
    namespace = {"sigmoid": lambda z: z * 0}

    def dsigmoid(z):
        s = namespace["sigmoid"](z)
        return s * (1 - s)

    with grading.substitute(namespace, sigmoid=REF.sigmoid):
        grading.check_elementwise(dsigmoid, REF.dsigmoid, [np.linspace(-3, 3, 7)], name="dsigmoid", atol=1e-12)
    assert namespace["sigmoid"](np.ones(1))[0] == 0  # restored
    # outside the substitution, the same call is caught
    with pytest.raises(GradingError, match="calls into lstm_ref"):
        grading.call_student(lambda z: REF.sigmoid(z), np.zeros(2), name="f")


def test_monkeypatched_numpy_comparisons_are_detected(monkeypatch):
    monkeypatch.setattr(np, "allclose", lambda *a, **k: True)
    with pytest.raises(GradingError, match=r"np\.allclose"):
        grading.check_elementwise(stable_sigmoid, REF.sigmoid, [np.zeros(2)], name="sigmoid", atol=1e-9)


def test_monkeypatched_ufunc_is_detected(monkeypatch):
    monkeypatch.setattr(np, "tanh", np.sin)
    with pytest.raises(GradingError, match=r"np\.tanh"):
        grading.check_numpy_intact()


def test_comparison_does_not_use_the_helpers_a_notebook_can_replace(monkeypatch):
    """Even with np.allclose and friends replaced, a wrong answer is still wrong."""
    for name in ("allclose", "isclose", "array_equal"):
        monkeypatch.setattr(np, name, lambda *a, **k: True)
    monkeypatch.setattr(np.testing, "assert_allclose", lambda *a, **k: None)
    with pytest.raises(GradingError, match="is wrong at index"):
        grading.compare(np.array([1.0, 2.0]), np.array([1.0, 3.0]), name="x", atol=1e-9)


def test_messages_say_what_was_expected_and_what_came():
    with pytest.raises(GradingError, match=r"has shape \(3,\); expected \(2,\)"):
        grading.compare(np.zeros(3), np.zeros(2), name="h", atol=1e-9)
    with pytest.raises(GradingError, match="has dtype float64; expected float32"):
        grading.compare(np.zeros(2), np.zeros(2, np.float32), name="h", atol=1e-9)
    with pytest.raises(GradingError, match="should be a numpy array of shape"):
        grading.compare([0.0, 0.0], np.zeros(2), name="h", atol=1e-9)
    with pytest.raises(GradingError, match=r"wrong at index \(1, 0\): expected 5, got 4.*Did you"):
        grading.compare(np.array([[1.0], [4.0]]), np.array([[1.0], [5.0]]), name="h", atol=1e-9, hint="Did you ...")
    with pytest.raises(GradingError, match="contains nan"):
        grading.compare(np.array([np.nan]), np.array([1.0]), name="h", atol=1e-9)
    with pytest.raises(GradingError, match="not implemented yet"):
        grading.call_student(lambda: (_ for _ in ()).throw(NotImplementedError()), name="f")
    with pytest.raises(GradingError, match=r"f\(array of shape \(2,\), dtype float64\) raised ZeroDivisionError"):
        grading.call_student(lambda z: 1 / 0, np.zeros(2), name="f")


def test_float32_results_are_held_to_float32_precision_only():
    expected = np.array([0.1125137], dtype=np.float32)
    grading.compare(expected + np.float32(1e-7), expected, name="s", atol=1e-12)
    with pytest.raises(GradingError):
        grading.compare(expected + np.float32(1e-3), expected, name="s", atol=1e-12)


def test_warnings_become_hints_on_stdout_never_stderr():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        grading.check_elementwise(lambda z: 1 / (1 + np.exp(-z)), REF.sigmoid, [np.array([-1000.0, 0.0])],
                                  name="sigmoid", atol=1e-12)
    assert err.getvalue() == ""
    assert "Hint: sigmoid emitted RuntimeWarning: overflow" in out.getvalue()
    with pytest.raises(GradingError, match="emitted a warning: RuntimeWarning"):
        grading.check_elementwise(lambda z: 1 / (1 + np.exp(-z)), REF.sigmoid, [np.array([-1000.0])],
                                  name="sigmoid", atol=1e-12, allow_warnings=False)


def test_inputs_changed_in_place_are_reported_and_never_reach_the_caller():
    def sloppy(z):
        z += 1
        return z

    z = np.zeros(3)
    with pytest.raises(GradingError, match="changed its input arrays in place"):
        grading.call_student(sloppy, z, name="f")
    assert not z.any()


def test_check_gradient_accepts_the_right_gradient_and_names_the_worst_entry():
    A = np.arange(6.0).reshape(2, 3)
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    loss = lambda v: float(np.sum(A * v ** 2))  # noqa: E731
    assert grading.check_gradient(loss, x, 2 * A * x, name="dx") < 1e-9
    wrong = 2 * A * x
    wrong[1, 2] += 0.5
    with pytest.raises(GradingError, match=r"dx fails the finite-difference check.*Worst entry \(1, 2\)"):
        grading.check_gradient(loss, x, wrong, name="dx")
