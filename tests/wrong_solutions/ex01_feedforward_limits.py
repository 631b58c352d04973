"""Wrong solutions for the feedforward-limits exercise: each must lose the points of exactly the part it breaks."""

WINDOWS = '''
def make_windows(series, window, horizon=1, stride=1):
    if window < 1 or horizon < 1 or stride < 1:
        raise ValueError("window, horizon and stride must be at least 1")
    L = series.shape[0]
    if L < window + horizon:
        raise ValueError("series too short")
    M = (L - window - horizon) // stride + 1
    starts = np.arange(M) * stride
    X = series[starts[:, None] + np.arange(window)]
    y = series[starts + window - 1 + horizon]
    return X, y
'''

FIT = '''
def fit_linear(X, y):
    A = np.concatenate([X, np.ones((X.shape[0], 1))], axis=1)
    return np.linalg.solve(A.T @ A, A.T @ y)
'''

RECALL = '''
def recall_accuracy(xs_train, y_train, xs_test, y_test, window):
    X_train = xs_train[-window:, :, 0].T
    X_test = xs_test[-window:, :, 0].T
    w = fit_linear(X_train, 2.0 * y_train - 1.0)
    scores = X_test @ w[:-1] + w[-1]
    return float(np.mean((scores > 0) == (y_test == 1)))
'''

WRONG = {
    "windows_target_inside_the_window": {
        # off by one: the target is the window's own last value when horizon = 1
        "cells": {"make_windows": WINDOWS.replace("starts + window - 1 + horizon", "starts + window - 2 + horizon")},
        "loses": ["test_make_windows_visible", "test_make_windows_hidden"],
    },
    "windows_ignore_the_horizon": {
        "cells": {"make_windows": WINDOWS.replace("starts + window - 1 + horizon", "starts + window")},
        "loses": ["test_make_windows_visible", "test_make_windows_hidden"],
    },
    "windows_ignore_the_stride": {
        # the right number of windows, but consecutive instead of `stride` apart
        "cells": {"make_windows": WINDOWS.replace("starts = np.arange(M) * stride", "starts = np.arange(M)")},
        "loses": ["test_make_windows_visible", "test_make_windows_hidden"],
    },
    "windows_upcast_float32": {
        "cells": {"make_windows": WINDOWS.replace("L = series.shape[0]", "series = series.astype(np.float64)\n    L = series.shape[0]")},
        "loses": ["test_make_windows_hidden"],
    },
    "windows_never_refuse_a_request": {
        # without the checks, a window longer than the series gives empty arrays instead of an error
        "cells": {"make_windows": WINDOWS.replace(
            '    if window < 1 or horizon < 1 or stride < 1:\n        raise ValueError("window, horizon and stride must be at least 1")\n', "").replace(
            '    if L < window + horizon:\n        raise ValueError("series too short")\n', "")},
        "loses": ["test_make_windows_hidden"],
    },
    "windows_hard_code_the_visible_answer": {
        "cells": {"make_windows": (
            "def make_windows(series, window, horizon=1, stride=1):\n"
            "    if len(series) == 6:\n"
            "        return np.array([[0.0, 1, 2], [1, 2, 3], [2, 3, 4]]), np.array([3.0, 4, 5])\n"
            "    return np.array([[0.0, 1, 2], [3, 4, 5]]), np.array([4.0, 7.0])\n")},
        "loses": ["test_make_windows_hidden"],
    },
    "windows_call_lstm_ref": {
        "cells": {"make_windows": (
            "import lstm_ref\n\n\ndef make_windows(series, window, horizon=1, stride=1):\n"
            "    return lstm_ref.data.make_windows(series, window, horizon, stride)\n")},
        "loses": ["test_make_windows_visible", "test_make_windows_hidden"],
    },
    "fit_without_a_bias": {
        "cells": {"fit_linear": "def fit_linear(X, y):\n    return np.linalg.lstsq(X, y, rcond=None)[0]\n"},
        "loses": ["test_fit_linear_visible", "test_fit_linear_hidden"],
    },
    "fit_puts_the_bias_first": {
        "cells": {"fit_linear": FIT.replace("[X, np.ones((X.shape[0], 1))]", "[np.ones((X.shape[0], 1)), X]")},
        "loses": ["test_fit_linear_visible", "test_fit_linear_hidden"],
    },
    "fit_adds_ridge_regularisation": {
        # a small ridge penalty: close, but not the least-squares solution the exercise asks for
        "cells": {"fit_linear": FIT.replace("A.T @ A,", "A.T @ A + 1e-3 * np.eye(A.shape[1]),")},
        "loses": ["test_fit_linear_visible", "test_fit_linear_hidden"],
    },
    "recall_accuracy_on_the_training_data": {
        "cells": {"recall_accuracy": RECALL.replace("scores = X_test @ w[:-1] + w[-1]", "scores = X_train @ w[:-1] + w[-1]").replace(
            "(y_test == 1)", "(y_train == 1)")},
        "loses": ["test_recall_accuracy_visible", "test_recall_accuracy_hidden"],
    },
    "recall_window_one_step_too_long": {
        "cells": {"recall_accuracy": RECALL.replace("[-window:, :, 0]", "[-(window + 1):, :, 0]")},
        "loses": ["test_recall_accuracy_visible", "test_recall_accuracy_hidden"],
    },
    "recall_window_shifted_one_step_back": {
        # the right length, but ending one step before the end: the last input is left out
        "cells": {"recall_accuracy": RECALL.replace("[-window:, :, 0]", "[-window - 1:-1, :, 0]")},
        "loses": ["test_recall_accuracy_visible", "test_recall_accuracy_hidden"],
    },
    "recall_window_from_the_oldest_steps": {
        "cells": {"recall_accuracy": RECALL.replace("[-window:, :, 0]", "[:window, :, 0]")},
        "loses": ["test_recall_accuracy_visible", "test_recall_accuracy_hidden"],
    },
    "recall_accuracy_calls_lstm_ref": {
        # lstm_ref has no classifier, but building the features with its make_windows is still a call into it
        "cells": {"recall_accuracy": RECALL.replace(
            "    X_train = xs_train[-window:, :, 0].T\n    X_test = xs_test[-window:, :, 0].T\n",
            "    X_train = np.stack([lstm_ref.data.make_windows(np.append(s, 0.0), window)[0][-1] for s in xs_train[:, :, 0].T])\n"
            "    X_test = xs_test[-window:, :, 0].T\n").replace("def recall_accuracy", "import lstm_ref\n\n\ndef recall_accuracy")},
        "loses": ["test_recall_accuracy_visible", "test_recall_accuracy_hidden"],
    },
    "windows_return_views_of_the_series": {
        # right values, but X is an as_strided view and y a slice: both share the caller's memory
        "cells": {"make_windows": WINDOWS.replace(
            "X = series[starts[:, None] + np.arange(window)]\n    y = series[starts + window - 1 + horizon]",
            "step = series.strides[0]\n"
            "    X = np.lib.stride_tricks.as_strided(series, shape=(M, window), strides=(stride * step, step))\n"
            "    y = series[window - 1 + horizon::stride][:M]")},
        "loses": ["test_make_windows_visible", "test_make_windows_hidden"],
    },
}
