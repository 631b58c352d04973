"""The toy tasks of lstm_ref.data against independent truth.

Truth is a brute-force Python loop written here from the task's definition (not a second call of
the same code), a closed form (the window count, the sine recurrence), or a statistical bound.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstm_ref.data import adding_problem, copy_task, delayed_recall, make_windows, sine_series

# ---------------------------------------------------------------------------------------------
# make_windows


def brute_force_windows(series, window, horizon, stride):
    """Windows built one by one from the definition: slide while the target is still inside."""
    X, y = [], []
    start = 0
    while start + window - 1 + horizon < len(series):
        X.append([float(series[start + k]) for k in range(window)])
        y.append(float(series[start + window - 1 + horizon]))
        start += stride
    return X, y


@pytest.mark.parametrize("L", [2, 3, 7, 20, 31])
@pytest.mark.parametrize("window", [1, 2, 5])
@pytest.mark.parametrize("horizon", [1, 3])
@pytest.mark.parametrize("stride", [1, 2, 4])
def test_make_windows_matches_brute_force_and_the_count_formula(L, window, horizon, stride, rng):
    series = rng.standard_normal(L)
    if L < window + horizon:
        with pytest.raises(ValueError, match=f"at least window \\+ horizon = .* = {window + horizon} values"):
            make_windows(series, window, horizon, stride)
        return
    X, y = make_windows(series, window, horizon=horizon, stride=stride)
    X_bf, y_bf = brute_force_windows(series, window, horizon, stride)
    M = (L - window - horizon) // stride + 1
    assert len(X_bf) == M, "the closed form for M disagrees with counting windows"
    assert X.shape == (M, window) and y.shape == (M,)
    np.testing.assert_array_equal(X, np.array(X_bf).reshape(M, window))
    np.testing.assert_array_equal(y, np.array(y_bf))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_make_windows_keeps_the_series_dtype(dtype, rng):
    series = rng.standard_normal(12).astype(dtype)
    X, y = make_windows(series, 4)
    assert X.dtype == dtype and y.dtype == dtype


def test_make_windows_returns_copies_that_do_not_alias_the_series(rng):
    series = rng.standard_normal(15)
    before = series.copy()
    X, y = make_windows(series, 5, horizon=2, stride=1)
    assert not np.shares_memory(X, series) and not np.shares_memory(y, series)
    X[:] = -99.0
    y[:] = -99.0
    np.testing.assert_array_equal(series, before)
    series[:] = 7.0  # and the other way round: editing the series leaves the dataset alone
    assert not np.any(X == 7.0) and not np.any(y == 7.0)


def test_make_windows_gives_exactly_one_window_at_the_minimum_length():
    series = np.arange(6.0)
    X, y = make_windows(series, 4, horizon=2)
    np.testing.assert_array_equal(X, [[0.0, 1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(y, [5.0])


# ---------------------------------------------------------------------------------------------
# sine_series


@pytest.mark.parametrize("period", [5.0, 12.0, 37.5])
def test_clean_sine_satisfies_the_two_term_recurrence(period, rng):
    # sin(a + w) + sin(a - w) = 2 cos(w) sin(a): true for any phase, so it needs no access to it.
    x = sine_series(200, rng, periods=(period,))
    w = 2 * np.pi / period
    np.testing.assert_allclose(x[2:] + x[:-2], 2 * np.cos(w) * x[1:-1], atol=1e-12)
    assert np.max(np.abs(x)) <= 1.0 + 1e-12


def test_clean_sum_of_sines_repeats_with_the_lcm_of_the_periods(rng):
    x = sine_series(100, rng, periods=(4, 6))
    np.testing.assert_allclose(x[12:], x[:-12], atol=1e-12)  # lcm(4, 6) = 12
    assert not np.allclose(x[6:], x[:-6], atol=1e-3), "the 4-step sine should break a 6-step period"
    assert np.max(np.abs(x)) <= 2.0 + 1e-12


def test_noise_is_added_on_top_of_the_same_clean_signal_with_the_requested_std():
    clean = sine_series(20_000, np.random.default_rng(3), periods=(20.0,))
    noisy = sine_series(20_000, np.random.default_rng(3), periods=(20.0,), noise=0.3)
    resid = noisy - clean
    # std of a sample std of 20000 normals is 0.3 / sqrt(40000) = 0.0015: 0.01 is over 6 sigma.
    assert abs(resid.std() - 0.3) < 0.01
    assert abs(resid.mean()) < 0.01


@pytest.mark.parametrize("length", [1, 2, 50])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sine_series_shape_and_dtype(length, dtype, rng):
    x = sine_series(length, rng, periods=(3.0, 7.0), noise=0.1, dtype=dtype)
    assert x.shape == (length,) and x.dtype == dtype


# ---------------------------------------------------------------------------------------------
# delayed_recall


@pytest.mark.parametrize(("n", "T", "lag"), [(1, 1, 0), (4, 5, 0), (3, 5, 4), (7, 10, 3), (2, 30, 17)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_delayed_recall_target_is_the_sign_lag_steps_before_the_end(n, T, lag, dtype, rng):
    xs, targets = delayed_recall(n, T, lag, rng, dtype=dtype)
    assert xs.shape == (T, n, 1) and xs.dtype == dtype
    assert targets.shape == (n,) and targets.dtype == np.int64
    assert set(np.unique(xs)) <= {-1.0, 1.0}
    for i in range(n):
        expected = 1 if xs[T - 1 - lag, i, 0] == 1.0 else 0
        assert targets[i] == expected, f"sample {i}: target {targets[i]}, input lag steps back {xs[T - 1 - lag, i, 0]}"


def best_lookup_table_accuracy(windows: np.ndarray, targets: np.ndarray) -> float:
    """The training accuracy of the best possible classifier of a window: majority vote per pattern.

    No function of the window can beat this on the same data, so it bounds what any MLP learns.
    """
    keys = [tuple(row) for row in windows]
    counts: dict[tuple, list[int]] = {}
    for key, t in zip(keys, targets):
        counts.setdefault(key, [0, 0])[t] += 1
    return sum(max(c) for c in counts.values()) / len(targets)


def test_a_window_covering_the_lag_solves_delayed_recall_and_a_shorter_one_is_chance():
    n, T, lag = 20_000, 8, 4
    xs, targets = delayed_recall(n, T, lag, np.random.default_rng(11))
    seq = xs[:, :, 0].T  # (N, T)
    for W in range(1, T + 1):
        windows = seq[:, T - W :]  # (N, W), the last W inputs, as a fixed-window MLP sees them
        best = best_lookup_table_accuracy(windows, targets)
        if W >= lag + 1:
            rule = (windows[:, W - 1 - lag] > 0).astype(np.int64)  # read the input lag steps back
            assert np.all(rule == targets)
            assert best == 1.0
        else:
            # With 2**W patterns of about n / 2**W samples each, majority voting over pure noise gains
            # about 2**W * sqrt(2 (n / 2**W) / pi) / (2 n) = 0.011 for W = 4; 0.03 is a wide margin.
            excess = 2**W * math.sqrt(2 * (n / 2**W) / math.pi) / (2 * n)
            assert best < 0.5 + 0.03, f"W = {W} <= lag = {lag} should be chance; got {best:.4f}"
            assert best < 0.5 + 3 * excess + 0.005


# ---------------------------------------------------------------------------------------------
# adding_problem


@pytest.mark.parametrize(("n", "T"), [(1, 2), (5, 3), (4, 10), (3, 11), (16, 50)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adding_problem_markers_and_target_by_brute_force(n, T, dtype, rng):
    xs, y = adding_problem(n, T, rng, dtype=dtype)
    assert xs.shape == (T, n, 2) and xs.dtype == dtype
    assert y.shape == (n,) and y.dtype == dtype
    values, markers = xs[:, :, 0], xs[:, :, 1]
    assert np.all((values >= 0) & (values < 1))
    assert set(np.unique(markers)) <= {0.0, 1.0}
    half = T // 2
    for i in range(n):
        marked = [t for t in range(T) if markers[t, i] == 1.0]
        assert len(marked) == 2, f"sample {i} has markers at {marked}; expected exactly two"
        assert marked[0] < half <= marked[1], f"sample {i}: markers at {marked}, halves split at {half}"
        total = 0.0
        for t in marked:
            total += float(values[t, i])
        assert abs(float(y[i]) - total) <= 4 * np.finfo(dtype).eps * max(1.0, total)


def test_adding_problem_markers_cover_every_position_of_their_half():
    T = 9  # odd: first half is steps 0..3, second half 4..8
    xs, _ = adding_problem(4000, T, np.random.default_rng(5))
    first = xs[: T // 2, :, 1].argmax(axis=0)
    second = T // 2 + xs[T // 2 :, :, 1].argmax(axis=0)
    assert set(first.tolist()) == {0, 1, 2, 3}
    assert set(second.tolist()) == {4, 5, 6, 7, 8}
    # uniform: each of 4 first-half steps gets 1000 +- 27 (one sigma); 150 is over 5 sigma
    assert np.all(np.abs(np.bincount(first, minlength=4) - 1000) < 150)


@pytest.mark.parametrize(("T", "lag"), [(2, 1), (10, 5), (10, 9), (11, 6), (11, 10)])
def test_adding_problem_lag_pins_the_first_marker(T, lag, rng):
    xs, y = adding_problem(6, T, rng, lag=lag)
    markers = xs[:, :, 1]
    for i in range(6):
        marked = [t for t in range(T) if markers[t, i] == 1.0]
        assert marked[0] == T - 1 - lag and marked[1] >= T // 2 and len(marked) == 2
        assert y[i] == xs[marked[0], i, 0] + xs[marked[1], i, 0]


# ---------------------------------------------------------------------------------------------
# copy_task


@pytest.mark.parametrize(("n", "lag", "n_symbols", "length"), [(1, 0, 1, 1), (3, 0, 8, 10), (4, 5, 3, 2), (2, 20, 5, 6)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_copy_task_layout_and_targets_by_brute_force(n, lag, n_symbols, length, dtype, rng):
    xs, targets, mask = copy_task(n, lag, rng, n_symbols=n_symbols, length=length, dtype=dtype)
    T, K, blank, go = 2 * length + lag + 1, n_symbols + 2, n_symbols, n_symbols + 1
    assert xs.shape == (T, n, K) and xs.dtype == dtype
    assert targets.shape == (T, n) and targets.dtype == np.int64
    assert mask.shape == (T, n) and mask.dtype == bool
    for i in range(n):
        presented = []
        for t in range(T):
            row = xs[t, i]
            hot = [k for k in range(K) if row[k] == 1.0]
            assert len(hot) == 1 and np.count_nonzero(row) == 1, f"step {t} of sample {i} is not one-hot: {row}"
            k = hot[0]
            if t < length:
                assert k < n_symbols, f"step {t} should present a symbol; got channel {k}"
                presented.append(k)
            elif t == length + lag:
                assert k == go
            else:
                assert k == blank, f"step {t} should be blank; got channel {k}"
        recalled = [int(targets[t, i]) for t in range(T) if mask[t, i]]
        assert recalled == presented
        assert [t for t in range(T) if mask[t, i]] == list(range(T - length, T))
        assert all(targets[t, i] == blank for t in range(T - length))


def test_copy_task_uses_every_symbol_uniformly():
    _, targets, mask = copy_task(2000, 3, np.random.default_rng(2), n_symbols=4, length=5)
    counts = np.bincount(targets[mask], minlength=4)  # 10000 draws, 2500 +- 43 each
    assert np.all(np.abs(counts - 2500) < 250)


# ---------------------------------------------------------------------------------------------
# determinism: the same seed gives the same arrays, another seed others

GENERATORS = {
    "sine_series": lambda rng: (sine_series(40, rng, periods=(7.0,), noise=0.2),),
    "delayed_recall": lambda rng: delayed_recall(8, 12, 3, rng),
    "adding_problem": lambda rng: adding_problem(8, 12, rng),
    "adding_problem with lag": lambda rng: adding_problem(8, 12, rng, lag=8),
    "copy_task": lambda rng: copy_task(8, 4, rng),
}


@pytest.mark.parametrize("name", GENERATORS)
def test_same_seed_same_arrays_other_seed_other_arrays(name):
    make = GENERATORS[name]
    a = make(np.random.default_rng(123))
    b = make(np.random.default_rng(123))
    c = make(np.random.default_rng(124))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert any(not np.array_equal(u, w) for u, w in zip(a, c)), f"{name} ignores its seed"


# ---------------------------------------------------------------------------------------------
# every ValueError path says what was expected

RNG = np.random.default_rng(0)
S = np.arange(10.0)

ERRORS = {
    "series of rank 2": (lambda: make_windows(S.reshape(2, 5), 2), r"series must have 1 dimensions \(L,\); got shape \(2, 5\)"),
    "integer series": (lambda: make_windows(np.arange(10), 2), r"series must have dtype float32 or float64; got int"),
    "list series": (lambda: make_windows([1.0, 2.0, 3.0], 1), r"series must be a numpy array"),
    "window 0": (lambda: make_windows(S, 0), r"window must be a positive integer; got 0"),
    "horizon 0": (lambda: make_windows(S, 2, horizon=0), r"horizon must be a positive integer; got 0"),
    "stride -1": (lambda: make_windows(S, 2, stride=-1), r"stride must be a positive integer; got -1"),
    "float window": (lambda: make_windows(S, 2.0), r"window must be a positive integer; got 2.0"),
    "series too short": (
        lambda: make_windows(S, 8, horizon=3),
        r"at least window \+ horizon = 8 \+ 3 = 11 values; got L = 10",
    ),
    "empty series": (lambda: make_windows(np.zeros(0), 1), r"at least window \+ horizon = 1 \+ 1 = 2 values; got L = 0"),
    "sine length 0": (lambda: sine_series(0, RNG), r"length must be a positive integer; got 0"),
    "sine no periods": (lambda: sine_series(5, RNG, periods=()), r"periods must be one or more positive numbers"),
    "sine negative period": (lambda: sine_series(5, RNG, periods=(4.0, -2.0)), r"periods must be .*positive.*got \[4.0, -2.0\]"),
    "sine negative noise": (lambda: sine_series(5, RNG, noise=-0.1), r"noise must be a standard deviation >= 0; got -0.1"),
    "sine seed instead of rng": (lambda: sine_series(5, 0), r"rng must be a numpy Generator.*got a int"),
    "sine integer dtype": (lambda: sine_series(5, RNG, dtype=np.int32), r"dtype must be float32 or float64; got"),
    "recall lag = T": (lambda: delayed_recall(2, 5, 5, RNG), r"lag must be < T = 5 .*got lag = 5"),
    "recall negative lag": (lambda: delayed_recall(2, 5, -1, RNG), r"lag must be an integer >= 0; got -1"),
    "recall T = 0": (lambda: delayed_recall(2, 0, 0, RNG), r"T must be a positive integer; got 0"),
    "recall n = 0": (lambda: delayed_recall(0, 5, 1, RNG), r"n must be a positive integer; got 0"),
    "recall legacy RandomState": (
        lambda: delayed_recall(2, 5, 1, np.random.RandomState(0)),
        r"rng must be a numpy Generator.*got a RandomState",
    ),
    "adding T = 1": (lambda: adding_problem(2, 1, RNG), r"T must be at least 2 to hold two markers; got T = 1"),
    "adding lag in the second half": (
        lambda: adding_problem(2, 10, RNG, lag=4),
        r"lag must lie in \[ceil\(T/2\), T - 1\] = \[5, 9\] .*got lag = 4",
    ),
    "adding lag beyond the start": (lambda: adding_problem(2, 11, RNG, lag=11), r"= \[6, 10\] .*got lag = 11"),
    "adding float16": (lambda: adding_problem(2, 4, RNG, dtype=np.float16), r"dtype must be float32 or float64; got"),
    "copy negative lag": (lambda: copy_task(2, -3, RNG), r"lag must be an integer >= 0; got -3"),
    "copy no symbols": (lambda: copy_task(2, 1, RNG, n_symbols=0), r"n_symbols must be a positive integer; got 0"),
    "copy length 0": (lambda: copy_task(2, 1, RNG, length=0), r"length must be a positive integer; got 0"),
    "copy bool lag": (lambda: copy_task(2, True, RNG), r"lag must be an integer >= 0; got True"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_bad_input_raises_a_value_error_naming_what_was_expected(case):
    call, pattern = ERRORS[case]
    with pytest.raises(ValueError, match=pattern):
        call()
