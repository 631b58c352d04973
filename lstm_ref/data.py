"""Seeded toy sequence tasks: windowed series, delayed recall, the adding problem, the copy task.

Every generator takes a numpy Generator ``rng`` (never global randomness), so the same seed gives
the same arrays. Sequences are time-major like everything else in the course: ``xs`` is
``(T, N, D)``, float64 unless ``dtype=np.float32`` is asked for. Targets that are classes are
int64 indices; targets that are numbers have the dtype of ``xs``.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_array, check_count, check_float_dtype, check_rng, check_sizes

__all__ = ["make_windows", "sine_series", "delayed_recall", "adding_problem", "copy_task"]


def make_windows(series: np.ndarray, window: int, horizon: int = 1, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Cut a series into fixed windows and the value ``horizon`` steps after each, for a feedforward net.

    series: (L,) float32 or float64; window: W, the number of past values the net sees;
    horizon: how many steps after a window's last value the target lies (1 = the next value);
    stride: the step between the starts of consecutive windows.
    Returns X: (M, W) with X[m] = series[m*stride : m*stride + W] and y: (M,) with
    y[m] = series[m*stride + W - 1 + horizon], where M = (L - W - horizon) // stride + 1 is the
    number of complete windows. Both are fresh arrays with the series' dtype, never views of it.
    """
    check_array("series", series, (None,), "(L,)")
    check_sizes(window=window, horizon=horizon, stride=stride)
    L = series.shape[0]
    need = window + horizon
    if L < need:
        raise ValueError(
            f"series is too short for one window: it must have at least window + horizon = "
            f"{window} + {horizon} = {need} values; got L = {L}."
        )
    M = (L - need) // stride + 1
    starts = np.arange(M) * stride  # (M,)
    # Fancy indexing copies, so a caller who edits X or y cannot corrupt the series (and back).
    X = series[starts[:, None] + np.arange(window)]  # (M, W)
    y = series[starts + window - 1 + horizon]  # (M,)
    return X, y


def sine_series(
    length: int, rng: np.random.Generator, *, periods=(20.0,), noise: float = 0.0, dtype=np.float64
) -> np.ndarray:
    """A sum of sines with random phases plus Gaussian noise: x_t = sum_k sin(2 pi t / P_k + phi_k) + noise * e_t.

    length: L, the number of steps; rng: a numpy Generator; periods: the periods P_k in steps
    (positive numbers; one sine per period); noise: the standard deviation of the added noise
    e_t ~ N(0, 1); dtype: float32 or float64. The phases phi_k are uniform in [0, 2 pi).
    Returns x: (L,).
    """
    check_sizes(length=length)
    check_rng(rng)
    dt = check_float_dtype(dtype)
    periods = np.asarray(periods, dtype=np.float64).reshape(-1)  # (K,)
    if periods.size == 0 or not np.all(np.isfinite(periods) & (periods > 0)):
        raise ValueError(f"periods must be one or more positive numbers of steps; got {periods.tolist()}.")
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.integer, np.floating)) or not (
        np.isfinite(noise) and noise >= 0
    ):
        raise ValueError(f"noise must be a standard deviation >= 0; got {noise!r}.")
    phases = rng.uniform(0.0, 2.0 * np.pi, size=periods.size)  # (K,)
    # The noise is drawn even when noise = 0, so one seed gives the same clean signal at every noise level.
    e = rng.standard_normal(length)  # (L,)
    t = np.arange(length)[:, None]  # (L, 1)
    clean = np.sin(2.0 * np.pi * t / periods + phases).sum(axis=1)  # (L,)
    return (clean + noise * e).astype(dt)


def delayed_recall(
    n: int, T: int, lag: int, rng: np.random.Generator, *, dtype=np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """A many-to-one memory task: after T random signs, report the sign seen ``lag`` steps before the end.

    n: N, the number of sequences; T: the sequence length; lag: 0 <= lag < T, how far back the
    answer lies (lag = 0 asks for the last input); rng: a numpy Generator; dtype: float32 or float64.
    Returns xs: (T, N, 1), independent fair signs +1/-1, and targets: (N,) int64, 1 where
    xs[T - 1 - lag, :, 0] is +1 and 0 where it is -1.

    Because the signs are independent, a model that sees only the last W inputs knows the answer
    exactly when W >= lag + 1 and can do no better than chance (1/2) when W <= lag.
    """
    check_sizes(n=n, T=T)
    check_count("lag", lag)
    check_rng(rng)
    dt = check_float_dtype(dtype)
    if lag >= T:
        raise ValueError(f"lag must be < T = {T} so the answer lies inside the sequence; got lag = {lag}.")
    bits = rng.integers(0, 2, size=(T, n))  # (T, N) in {0, 1}
    xs = (2 * bits - 1).astype(dt)[:, :, None]  # (T, N, 1) in {-1, +1}
    return xs, bits[T - 1 - lag].astype(np.int64)


def adding_problem(
    n: int, T: int, rng: np.random.Generator, *, lag: int | None = None, dtype=np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem: sum the two values of a random sequence that carry a marker.

    The variant of Hochreiter & Schmidhuber's (1997) task used by Le, Jaitly & Hinton (2015) and
    Arjovsky, Shah & Bengio (2016): channel 0 holds values uniform in [0, 1); channel 1 is 1 at
    exactly two steps and 0 elsewhere, the first uniform in the first half, steps [0, T // 2),
    the second uniform in the second half, steps [T // 2, T).

    n: N, the number of sequences; T: the length, at least 2; rng: a numpy Generator;
    lag: if given, the first marker sits exactly at step T - 1 - lag (lag steps before the end,
    so ceil(T / 2) <= lag <= T - 1 keeps it in the first half); dtype: float32 or float64.
    Returns xs: (T, N, 2) and y: (N,), the sum of the two marked values.
    """
    check_sizes(n=n, T=T)
    check_rng(rng)
    dt = check_float_dtype(dtype)
    if T < 2:
        raise ValueError(f"T must be at least 2 to hold two markers; got T = {T}.")
    half = T // 2
    if lag is not None:
        check_count("lag", lag)
        if not T - half <= lag <= T - 1:
            raise ValueError(
                f"lag must lie in [ceil(T/2), T - 1] = [{T - half}, {T - 1}] so the first marker "
                f"(at step T - 1 - lag) stays in the first half; got lag = {lag}."
            )
    values = rng.uniform(0.0, 1.0, size=(T, n))  # (T, N)
    first = rng.integers(0, half, size=n) if lag is None else np.full(n, T - 1 - lag)  # (N,)
    second = rng.integers(half, T, size=n)  # (N,)
    cols = np.arange(n)
    markers = np.zeros((T, n))  # (T, N)
    markers[first, cols] = 1.0
    markers[second, cols] = 1.0
    xs = np.stack([values, markers], axis=2).astype(dt)  # (T, N, 2)
    # Sum the values as stored (after any cast to float32), so y is exactly what the inputs show.
    y = xs[first, cols, 0] + xs[second, cols, 0]  # (N,)
    return xs, y


def copy_task(
    n: int, lag: int, rng: np.random.Generator, *, n_symbols: int = 8, length: int = 10, dtype=np.float64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The copy task: read ``length`` symbols, wait ``lag`` blank steps, then on a "go" signal write them back.

    Inputs are one-hot over K = n_symbols + 2 channels: 0..n_symbols-1 the symbols, n_symbols the
    blank, n_symbols + 1 the "go" delimiter. With S = length, a sequence has T = 2 S + lag + 1 steps:
      steps 0 .. S-1                 the S symbols, drawn uniformly and independently;
      steps S .. S+lag-1             blank;
      step  S+lag                    go;
      steps S+lag+1 .. T-1           blank, while the model writes the S symbols back in order.

    n: N, the number of sequences; lag: the number of blank steps, >= 0; rng: a numpy Generator;
    n_symbols: the alphabet size; length: S; dtype: float32 or float64.
    Returns xs: (T, N, K); targets: (T, N) int64 class indices, the blank index n_symbols at every
    step except the last S, which hold the presented symbols (targets[T-S+j] == symbol j);
    mask: (T, N) bool, True exactly on those last S steps, for a loss that scores only the recall
    (use targets at every step for the "predict blank, then copy" loss of Arjovsky et al., 2016).
    """
    check_sizes(n=n, n_symbols=n_symbols, length=length)
    check_count("lag", lag)
    check_rng(rng)
    dt = check_float_dtype(dtype)
    S, blank, go = length, n_symbols, n_symbols + 1
    T = 2 * S + lag + 1
    symbols = rng.integers(0, n_symbols, size=(S, n))  # (S, N)
    tokens = np.full((T, n), blank, dtype=np.int64)  # (T, N) the input class at each step
    tokens[:S] = symbols
    tokens[S + lag] = go
    xs = np.eye(n_symbols + 2, dtype=dt)[tokens]  # (T, N, K)
    targets = np.full((T, n), blank, dtype=np.int64)  # (T, N)
    targets[T - S :] = symbols
    mask = np.zeros((T, n), dtype=bool)  # (T, N)
    mask[T - S :] = True
    return xs, targets, mask
