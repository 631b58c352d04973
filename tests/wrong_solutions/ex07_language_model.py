"""Wrong solutions for the language-model exercise: each must lose the points of exactly the part it breaks."""

LOSS = '''
def temporal_softmax_loss(logits, targets, mask=None):
    T, N, V = logits.shape
    m = np.ones((T, N), dtype=logits.dtype) if mask is None else mask.astype(logits.dtype)
    shifted = logits - logits.max(axis=2, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
    picked = np.take_along_axis(log_probs, targets[:, :, None], axis=2)[:, :, 0]
    loss = -float(np.sum(m * picked)) / N
    dlogits = np.exp(log_probs)
    t, n = np.indices((T, N))
    dlogits[t, n, targets] -= 1
    dlogits *= m[:, :, None] / N
    return loss, dlogits
'''

EMBED_FORWARD = '''
def embedding_forward(ids, W):
    out = W[ids]
    return out, (ids, W)
'''

EMBED_BACKWARD = '''
def embedding_backward(dout, cache):
    ids, W = cache
    dW = np.zeros(W.shape, dtype=dout.dtype)
    np.add.at(dW, ids.reshape(-1), dout.reshape(-1, W.shape[1]))
    return dW
'''

SAMPLE = '''
def sample_next(logits, rng, temperature=1.0):
    if temperature == 0:
        return np.argmax(logits, axis=1)
    z = logits / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    cdf = np.cumsum(p, axis=1)
    u = rng.random(len(logits)) * cdf[:, -1]
    return np.minimum((cdf <= u[:, None]).sum(axis=1), logits.shape[1] - 1)
'''


def replaced(source: str, old: str, new: str) -> str:
    """source with old replaced by new, failing loudly if old is not in it (so an entry cannot rot silently)."""
    assert old in source, f"{old!r} not found"
    return source.replace(old, new)


LOSS_CELLS = ["test_temporal_softmax_loss_visible", "test_temporal_softmax_loss_hidden"]
FORWARD_CELLS = ["test_embedding_forward_visible", "test_embedding_forward_hidden"]
BACKWARD_CELLS = ["test_embedding_backward_visible", "test_embedding_backward_hidden"]
SAMPLE_CELLS = ["test_sample_next_visible", "test_sample_next_hidden"]

WRONG = {
    "loss_softmax_without_the_max_shift_overflows": {
        # exp(1000) is inf, and inf / inf is nan
        "cells": {"temporal_softmax_loss": replaced(LOSS, "shifted = logits - logits.max(axis=2, keepdims=True)",
                                                    "shifted = logits")},
        "loses": LOSS_CELLS,
    },
    "loss_gradient_missing_the_1_over_N": {
        "cells": {"temporal_softmax_loss": replaced(LOSS, "dlogits *= m[:, :, None] / N", "dlogits *= m[:, :, None]")},
        "loses": LOSS_CELLS,
    },
    "loss_ignores_the_mask": {
        "cells": {"temporal_softmax_loss": replaced(LOSS, "m = np.ones((T, N), dtype=logits.dtype) if mask is None "
                                                          "else mask.astype(logits.dtype)",
                                                    "m = np.ones((T, N), dtype=logits.dtype)")},
        "loses": LOSS_CELLS,
    },
    "loss_averages_over_time_as_well": {
        # the mean over every step: a loss and gradient T times too small
        "cells": {"temporal_softmax_loss": replaced(replaced(LOSS, "/ N\n    dlogits = np.exp", "/ (T * N)\n    dlogits = np.exp"),
                                                    "m[:, :, None] / N", "m[:, :, None] / (T * N)")},
        "loses": LOSS_CELLS,
    },
    "loss_shifts_the_logits_in_place": {
        # changes the caller's logits: in a training loop the model's scores would be corrupted
        "cells": {"temporal_softmax_loss": replaced(LOSS, "shifted = logits - logits.max(axis=2, keepdims=True)",
                                                    "logits -= logits.max(axis=2, keepdims=True)\n    shifted = logits")},
        "loses": LOSS_CELLS,
    },
    "loss_calls_lstm_ref": {
        "cells": {"temporal_softmax_loss": (
            "import lstm_ref\n\n\ndef temporal_softmax_loss(logits, targets, mask=None):\n"
            "    return lstm_ref.temporal_softmax_loss(logits, targets, mask)\n")},
        "loses": LOSS_CELLS,
    },
    "embedding_forward_transposes_the_ids": {
        "cells": {"embedding_forward": replaced(EMBED_FORWARD, "W[ids]", "W[ids.T]")},
        "loses": FORWARD_CELLS,
    },
    "embedding_forward_upcasts_float32": {
        # a one-hot matrix built with np.eye defaults to float64 and drags the product along
        "cells": {"embedding_forward": replaced(EMBED_FORWARD, "out = W[ids]", "out = np.eye(W.shape[0])[ids] @ W")},
        "loses": ["test_embedding_forward_hidden"],
    },
    "embedding_backward_overwrites_repeated_ids": {
        "cells": {"embedding_backward": replaced(EMBED_BACKWARD, "np.add.at(dW, ids.reshape(-1), dout.reshape(-1, W.shape[1]))",
                                                 "dW[ids] += dout")},
        "loses": BACKWARD_CELLS,
    },
    "embedding_backward_returns_the_cached_table": {
        # reuses W as the buffer for dW: the caller's table is zeroed and returned as the gradient
        "cells": {"embedding_backward": replaced(EMBED_BACKWARD, "dW = np.zeros(W.shape, dtype=dout.dtype)",
                                                 "dW = W\n    dW[...] = 0")},
        "loses": BACKWARD_CELLS,
    },
    "embedding_backward_averages_repeated_ids": {
        "cells": {"embedding_backward": replaced(EMBED_BACKWARD, "    return dW",
                                                 "    counts = np.bincount(ids.reshape(-1), minlength=W.shape[0])\n"
                                                 "    return dW / np.maximum(counts, 1)[:, None]")},
        "loses": BACKWARD_CELLS,
    },
    "sample_temperature_multiplies_the_logits": {
        "cells": {"sample_next": replaced(SAMPLE, "z = logits / temperature", "z = logits * temperature")},
        "loses": SAMPLE_CELLS,
    },
    "sample_ignores_the_temperature": {
        "cells": {"sample_next": replaced(SAMPLE, "z = logits / temperature", "z = logits")},
        "loses": SAMPLE_CELLS,
    },
    "sample_draws_from_the_logits_not_the_probabilities": {
        # the logits shifted to be non-negative and rescaled to sum to 1, instead of softmax
        "cells": {"sample_next": replaced(SAMPLE, "p = np.exp(z - z.max(axis=1, keepdims=True))",
                                          "p = z - z.min(axis=1, keepdims=True)")},
        "loses": SAMPLE_CELLS,
    },
    "sample_uses_numpy_global_random_state": {
        "cells": {"sample_next": replaced(SAMPLE, "rng.random(len(logits))", "np.random.random(len(logits))")},
        "loses": SAMPLE_CELLS,
    },
    "sample_without_a_greedy_case": {
        # temperature 0 divides by zero: inf and nan logits, then nan probabilities
        "cells": {"sample_next": replaced(SAMPLE, "    if temperature == 0:\n        return np.argmax(logits, axis=1)\n", "")},
        "loses": SAMPLE_CELLS,
    },
    "sample_takes_the_argmax_at_every_temperature": {
        "cells": {"sample_next": replaced(SAMPLE, "if temperature == 0:", "if True:")},
        "loses": SAMPLE_CELLS,
    },
}

# Not wrong: correct alternatives for every part, which must keep full marks everywhere.
WRONG["correct_alternative_with_loops_one_hot_products_and_rng_choice"] = {
    # loops over steps, the lookup as a one-hot product, the gradient as one_hot.T @ dout, and rng.choice per row
    "cells": {
        "temporal_softmax_loss": (
            "def temporal_softmax_loss(logits, targets, mask=None):\n"
            "    T, N, V = logits.shape\n"
            "    loss = 0.0\n"
            "    dlogits = np.zeros_like(logits)\n"
            "    for t in range(T):\n"
            "        for n in range(N):\n"
            "            if mask is not None and not mask[t, n]:\n"
            "                continue\n"
            "            z = logits[t, n]\n"
            "            top = z.max()\n"
            "            lse = top + np.log(np.sum(np.exp(z - top)))\n"
            "            loss -= (z[targets[t, n]] - lse) / N\n"
            "            p = np.exp(z - lse)\n"
            "            p[targets[t, n]] -= 1\n"
            "            dlogits[t, n] = p / N\n"
            "    return loss, dlogits\n"),
        "embedding_forward": (
            "def embedding_forward(ids, W):\n"
            "    one_hot = np.eye(W.shape[0], dtype=W.dtype)[ids]  # (T, N, V)\n"
            "    return one_hot @ W, (ids, W)\n"),
        "embedding_backward": (
            "def embedding_backward(dout, cache):\n"
            "    ids, W = cache\n"
            "    T, N, E = dout.shape\n"
            "    one_hot = np.eye(W.shape[0], dtype=dout.dtype)[ids.reshape(-1)]  # (T*N, V)\n"
            "    return one_hot.T @ dout.reshape(T * N, E)\n"),
        "sample_next": (
            "def sample_next(logits, rng, temperature=1.0):\n"
            "    N, V = logits.shape\n"
            "    if temperature == 0:\n"
            "        return logits.argmax(axis=1)\n"
            "    ids = np.empty(N, dtype=int)\n"
            "    for n in range(N):\n"
            "        z = logits[n].astype(np.float64) / temperature\n"
            "        p = np.exp(z - z.max())\n"
            "        ids[n] = rng.choice(V, p=p / p.sum())\n"
            "    return ids\n"),
    },
    "loses": [],
}
WRONG["correct_alternative_with_gumbel_max_sampling_and_float64_inside"] = {
    # log-softmax in float64 cast back, np.take for the lookup, a loop with np.add for the table, and the Gumbel-max
    # trick: argmax(z / T + Gumbel noise) is an exact draw from softmax(z / T), with a different random stream
    "cells": {
        "temporal_softmax_loss": (
            "def temporal_softmax_loss(logits, targets, mask=None):\n"
            "    T, N, V = logits.shape\n"
            "    z = logits.astype(np.float64)\n"
            "    keep = np.ones((T, N)) if mask is None else np.where(mask, 1.0, 0.0)\n"
            "    top = np.max(z, axis=-1, keepdims=True)\n"
            "    logp = z - top - np.log(np.sum(np.exp(z - top), axis=-1, keepdims=True))\n"
            "    one_hot = (np.arange(V) == targets[..., None]).astype(np.float64)\n"
            "    loss = -np.sum(keep[..., None] * one_hot * logp) / N\n"
            "    dlogits = keep[..., None] * (np.exp(logp) - one_hot) / N\n"
            "    return np.float64(loss), dlogits.astype(logits.dtype)\n"),
        "embedding_forward": (
            "def embedding_forward(ids, W):\n"
            "    return np.take(W, ids, axis=0), (ids, W)\n"),
        "embedding_backward": (
            "def embedding_backward(dout, cache):\n"
            "    ids, W = cache\n"
            "    dW = np.zeros_like(W, dtype=dout.dtype)\n"
            "    T, N = ids.shape\n"
            "    for t in range(T):\n"
            "        for n in range(N):\n"
            "            dW[ids[t, n]] += dout[t, n]\n"
            "    return dW\n"),
        "sample_next": (
            "def sample_next(logits, rng, temperature=1.0):\n"
            "    if temperature == 0:\n"
            "        return np.argmax(logits, axis=-1)\n"
            "    gumbel = -np.log(-np.log(rng.random(logits.shape)))\n"
            "    return np.argmax(logits / temperature + gumbel, axis=-1)\n"),
    },
    "loses": [],
}
