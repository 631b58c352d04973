"""Wrong solutions for the warm-up: each must lose the points of exactly the part it breaks."""

GOOD_DERIVATIVES = '''
def dsigmoid(z):
    s = sigmoid(z)
    return s * (1.0 - s)


def dtanh(z):
    t = np.tanh(z)
    return 1.0 - t * t
'''

WRONG = {
    "sigmoid_naive_overflows": {
        "cells": {"sigmoid": "def sigmoid(z):\n    return 1.0 / (1.0 + np.exp(-z))\n"},
        "loses": ["test_sigmoid_hidden"],
    },
    "sigmoid_hardcodes_the_visible_answer": {
        "cells": {
            "sigmoid": "def sigmoid(z):\n    return np.array([0.11920292202211755, 0.5, 0.8807970779778823])\n"
        },
        "loses": ["test_sigmoid_hidden"],
    },
    "sigmoid_calls_lstm_ref": {
        "cells": {"sigmoid": "import lstm_ref\n\n\ndef sigmoid(z):\n    return lstm_ref.sigmoid(z)\n"},
        "loses": ["test_sigmoid_visible", "test_sigmoid_hidden"],
    },
    "sigmoid_upcasts_float32": {
        "cells": {
            "sigmoid": (
                "def sigmoid(z):\n    z = z.astype(np.float64)\n    e = np.exp(-np.abs(z))\n"
                "    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))\n"
            )
        },
        "loses": ["test_sigmoid_hidden"],
    },
    "dsigmoid_off_by_a_factor_of_two": {
        "cells": {"derivatives": GOOD_DERIVATIVES.replace("return s * (1.0 - s)", "return 2 * s * (1.0 - s)")},
        "loses": ["test_derivatives_visible", "test_derivatives_hidden"],
    },
    "dtanh_forgets_the_square": {
        "cells": {"derivatives": GOOD_DERIVATIVES.replace("return 1.0 - t * t", "return 1.0 - t")},
        "loses": ["test_derivatives_visible", "test_derivatives_hidden"],
    },
    "dsigmoid_from_exp_overflows": {
        "cells": {
            "derivatives": GOOD_DERIVATIVES.replace(
                "s = sigmoid(z)\n    return s * (1.0 - s)", "return np.exp(-z) / (1.0 + np.exp(-z)) ** 2"
            )
        },
        "loses": ["test_derivatives_hidden"],
    },
    "numerical_gradient_one_sided": {
        "cells": {
            "numerical_gradient": (
                "def numerical_gradient(f, x, h=1e-5):\n    x = x.copy()\n    grad = np.zeros_like(x)\n"
                "    fx = f(x)\n    for k in np.ndindex(x.shape):\n        old = x[k]\n        x[k] = old + h\n"
                "        grad[k] = (f(x) - fx) / h\n        x[k] = old\n    return grad\n"
            )
        },
        "loses": ["test_numerical_gradient_visible", "test_numerical_gradient_hidden"],
    },
    "numerical_gradient_leaves_x_perturbed": {
        "cells": {
            "numerical_gradient": (
                "def numerical_gradient(f, x, h=1e-5):\n    grad = np.zeros_like(x)\n"
                "    for k in np.ndindex(x.shape):\n        x[k] += h\n        plus = f(x)\n"
                "        x[k] -= 2 * h\n        minus = f(x)\n        grad[k] = (plus - minus) / (2 * h)\n"
                "    return grad\n"
            )
        },
        "loses": ["test_numerical_gradient_visible", "test_numerical_gradient_hidden"],
    },
    "numerical_gradient_only_handles_vectors": {
        "cells": {
            "numerical_gradient": (
                "def numerical_gradient(f, x, h=1e-5):\n    x = x.copy()\n    grad = np.zeros(len(x))\n"
                "    for k in range(len(x)):\n        old = x[k]\n        x[k] = old + h\n        plus = f(x)\n"
                "        x[k] = old - h\n        minus = f(x)\n        x[k] = old\n"
                "        grad[k] = (plus - minus) / (2 * h)\n    return grad\n"
            )
        },
        "loses": ["test_numerical_gradient_hidden"],
    },
    "numerical_gradient_calls_lstm_ref": {
        "cells": {
            "numerical_gradient": (
                "from lstm_ref.gradcheck import numerical_gradient as _ng\n\n\n"
                "def numerical_gradient(f, x, h=1e-5):\n    return _ng(f, x, h=h)\n"
            )
        },
        "loses": ["test_numerical_gradient_visible", "test_numerical_gradient_hidden"],
    },
}
