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


# --- recurrent cells: step/sequence forward and backward checks, with their diagnoses ---------


def rnn_step(x, h_prev, p, transpose=False):
    W_hh = p["W_hh"].T if transpose else p["W_hh"]
    h = np.tanh(x @ p["W_xh"] + h_prev @ W_hh + p["b_h"])
    return h, (x, h_prev, h, p)


def rnn_step_back(dh, cache, tanh_grad=True):
    x, h_prev, h, p = cache
    da = dh * (1 - h * h) if tanh_grad else dh
    return da @ p["W_xh"].T, da @ p["W_hh"].T, {"W_xh": x.T @ da, "W_hh": h_prev.T @ da, "b_h": da.sum(0)}


def rnn_seq(xs, h0, p, feed=True):
    h, hs, caches = h0, [], []
    for x in xs:
        h_new, cache = rnn_step(x, h if feed else h0, p)
        h = h_new
        hs.append(h_new)
        caches.append(cache)
    return np.stack(hs), caches


def rnn_seq_back(dhs, caches, carry=True):
    dh, dxs, grads = np.zeros_like(dhs[0]), [], None
    for t in reversed(range(len(caches))):
        dx, dh_prev, g = rnn_step_back(dhs[t] + dh, caches[t])
        dh = dh_prev if carry else dh_prev * 0
        dxs.append(dx)
        grads = g if grads is None else {k: grads[k] + g[k] for k in g}
    return np.stack(dxs[::-1]), dh, grads


STEP_CASES = [(1, 3, 4, 5, 0), (1, 1, 2, 3, 1, np.float32)]
SEQ_CASES = [(4, 3, 2, 5, 2), (1, 2, 3, 4, 3)]


def test_correct_cells_pass_forward_and_backward_checks():
    grading.check_forward(rnn_step, "rnn", step=True, name="rnn_step_forward", cases=STEP_CASES)
    grading.check_forward(rnn_seq, "rnn", step=False, name="rnn_forward", cases=SEQ_CASES)
    grading.check_backward(rnn_step, rnn_step_back, "rnn", step=True, name="rnn_step_backward",
                           fwd_name="rnn_step_forward", cases=STEP_CASES[:1])
    grading.check_backward(rnn_seq, rnn_seq_back, "rnn", step=False, name="rnn_backward",
                           fwd_name="rnn_forward", cases=SEQ_CASES)


def test_isolation_probes_name_the_transposed_term():
    with pytest.raises(GradingError, match=r"find the error in: h_prev @ W_hh\. "):
        grading.check_forward(lambda x, h, p: rnn_step(x, h, p, transpose=True), "rnn", step=True,
                              name="rnn_step_forward", cases=STEP_CASES)


def test_isolation_probes_name_the_swapped_lstm_gates():
    sig = stable_sigmoid

    def swapped(x, h, c, p):
        a = {g: x @ p[f"W_x{g}"] + h @ p[f"W_h{g}"] + p[f"b_{g}"] for g in "ifoc"}
        f, i, o = sig(a["i"]), sig(a["f"]), sig(a["o"])  # input and forget gates swapped
        c_new = f * c + i * np.tanh(a["c"])
        return o * np.tanh(c_new), c_new, None

    with pytest.raises(GradingError) as err:
        grading.check_forward(swapped, "lstm", step=True, name="lstm_step_forward", cases=STEP_CASES[:1])
    message = str(err.value)
    assert "W_xi (input gate)" in message and "W_xf (forget gate)" in message
    assert "W_xo" not in message and "W_xc" not in message


def test_sequence_failures_say_whether_the_step_function_is_to_blame():
    seq = lambda xs, h0, p: rnn_seq(xs, h0, p, feed=False)  # noqa: E731
    with pytest.raises(GradingError, match="first wrong time step is t = 1.*rnn_step_forward is right"):
        grading.check_forward(seq, "rnn", step=False, name="rnn_forward", cases=SEQ_CASES,
                              student_step=rnn_step, step_name="rnn_step_forward")
    bad_step = lambda x, h, p: rnn_step(x, h, p, transpose=True)  # noqa: E731
    with pytest.raises(GradingError, match="rnn_step_forward is already wrong on the first step"):
        grading.check_forward(lambda xs, h0, p: (bad_step(xs[0], h0, p)[0][None].repeat(len(xs), 0), None), "rnn",
                              step=False, name="rnn_forward", cases=SEQ_CASES, student_step=bad_step,
                              step_name="rnn_step_forward")


def test_backward_checks_name_the_broken_gradient_and_where_in_time():
    with pytest.raises(GradingError, match=r"dx from rnn_step_backward fails the gradient check"):
        grading.check_backward(rnn_step, lambda dh, c: rnn_step_back(dh, c, tanh_grad=False), "rnn", step=True,
                               name="rnn_step_backward", fwd_name="rnn_step_forward", cases=STEP_CASES[:1])
    with pytest.raises(GradingError, match=r"wrong at t = \[0, 1, 2\] \(earlier steps only"):
        grading.check_backward(rnn_seq, lambda d, c: rnn_seq_back(d, c, carry=False), "rnn", step=False,
                               name="rnn_backward", fwd_name="rnn_forward", cases=SEQ_CASES[:1])


def test_a_backward_is_judged_against_the_students_own_forward():
    """A transposed forward with its consistent backward loses the forward's points only."""
    fwd = lambda x, h, p: rnn_step(x, h, p, transpose=True)  # noqa: E731

    def back(dh, cache):
        x, h_prev, h, p = cache
        da = dh * (1 - h * h)
        return da @ p["W_xh"].T, da @ p["W_hh"], {"W_xh": x.T @ da, "W_hh": (h_prev.T @ da).T, "b_h": da.sum(0)}

    grading.check_backward(fwd, back, "rnn", step=True, name="rnn_step_backward", fwd_name="rnn_step_forward",
                           cases=STEP_CASES[:1])


def test_check_raises_accepts_the_right_refusal_and_reports_anything_else():
    def refuses(n):
        if n < 1:
            raise ValueError(f"n must be at least 1; got {n}")
        return np.zeros(n)

    grading.check_raises(refuses, 0, name="refuses", why="n < 1")
    with pytest.raises(GradingError, match=r"should raise ValueError here \(n < 1\); it returned array of shape \(3,\)"):
        grading.check_raises(refuses, 3, name="refuses", why="n < 1")
    with pytest.raises(GradingError, match=r"should raise ValueError .* raised TypeError: no"):
        grading.check_raises(lambda n: (_ for _ in ()).throw(TypeError("no")), 0, name="f", why="n < 1")
    with pytest.raises(GradingError, match="calls into lstm_ref"):
        grading.check_raises(lambda n: lstm_ref.data.make_windows(np.zeros(3), 5), 0, name="f", why="too long")


def test_compare_handles_zero_dimensional_arrays():
    grading.compare(np.array(2.0), np.array(2.0), name="norm", atol=1e-12)
    with pytest.raises(GradingError, match="expected 2, got 3"):
        grading.compare(np.array(3.0), np.array(2.0), name="norm", atol=1e-12)


def test_a_result_that_shares_memory_with_an_input_loses_where_new_arrays_are_asked_for():
    series = np.arange(10.0)
    strided = lambda s: np.lib.stride_tricks.as_strided(s, shape=(8, 3), strides=(s.strides[0],) * 2)  # noqa: E731
    copied = lambda s: strided(s).copy()  # noqa: E731
    grading.call_student(strided, series, name="make_windows")  # values only: the default allows a view
    with pytest.raises(GradingError, match=r"^make_windows returns part of its input.*shares memory with argument 1"):
        grading.call_student(strided, series, name="make_windows", new_result=True)
    grading.call_student(copied, series, name="make_windows", new_result=True)


def test_the_callers_own_dict_or_its_arrays_returned_lose_where_a_new_dict_is_asked_for():
    grads = {"W": np.ones((2, 2)), "b": np.zeros(2)}
    with pytest.raises(GradingError, match=r"the result\[0\] is the very dict passed as argument 1"):
        grading.call_student(lambda g, c: (g, 1.0), grads, 5.0, name="clip_by_global_norm", new_result=True)
    with pytest.raises(GradingError, match=r"the result\[0\]\['W'\] shares memory with argument 1\['W'\]"):
        grading.call_student(lambda g, c: (dict(g), 1.0), grads, 5.0, name="clip_by_global_norm", new_result=True)
    fresh, _ = grading.call_student(lambda g, c: ({k: v.copy() for k, v in g.items()}, 1.0), grads, 5.0,
                                    name="clip_by_global_norm", new_result=True)
    assert fresh[0]["W"] is not grads["W"]


def test_a_sequence_forward_whose_cache_is_not_the_list_of_step_caches_fails():
    loop = grading.step_loop("rnn")  # trusted: the right values, and the list of step caches

    def last_cache_only(xs, h0, params):
        hs, caches = loop(xs, h0, params)
        return hs, caches[-1]

    def as_tuple(xs, h0, params):
        hs, caches = loop(xs, h0, params)
        return hs, tuple(caches)

    for wrong in (last_cache_only, as_tuple):
        with pytest.raises(GradingError, match=r"^The cache that rnn_forward returns should be the list of its "
                                               r"T = 4 step caches, in time order; got (Cache|tuple)\."):
            grading.check_forward(wrong, "rnn", step=False, name="rnn_forward", cases=[(4, 2, 3, 5, 0)])
    grading.check_forward(loop, "rnn", step=False, name="rnn_forward", cases=[(4, 2, 3, 5, 0)])


def test_the_first_line_of_a_message_about_a_2d_input_is_a_whole_sentence():
    X = np.zeros((3, 2))
    with pytest.raises(GradingError) as err:
        grading.check_cases(lambda X: X.sum(axis=0), [((X,), np.ones(2))], name="fit_linear", atol=1e-9)
    first = str(err.value).splitlines()[0]
    assert first.endswith(".") and "[[0. 0.] [0. 0.] [0. 0.]]" in first and "expected 1" in first, first
