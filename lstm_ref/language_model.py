"""A character-level language model: embedding, LSTM, read-out, loss, and sampling.

    x_t      = W_embed[id_t]                          embedding: row id_t of the table
    h_t, c_t = LSTM(x_t, h_{t-1}, c_{t-1})            the cell of chapter 4
    z_t      = h_t W_hy + b_y                         logits over the V characters
    p_t      = softmax(z_t)                           the model's guess for character t + 1
    loss     = -(1/N) sum_t sum_n log p_t[n, y_t[n]]  summed over time, averaged over the batch

Shapes are time-major as everywhere in the package: ids and targets are (T, N) integer arrays,
the embedding table is (V, E), logits are (T, N, V). Training feeds the true previous character
at every step (teacher forcing) and carries (h_T, c_T) from one batch into the next (truncated
BPTT); sampling feeds the model its own draws.
"""

from __future__ import annotations

import numpy as np

from ._validate import (
    Cache,
    check_array,
    check_cache,
    check_ids,
    check_mask,
    check_params,
    check_rng,
    check_sizes,
    check_temperature,
)
from .lstm import init_lstm_params, lstm_backward, lstm_forward, lstm_param_shapes

__all__ = [
    "char_vocabulary",
    "encode",
    "decode",
    "embedding_forward",
    "embedding_backward",
    "softmax",
    "temporal_softmax_loss",
    "perplexity",
    "sample_next",
    "lm_param_shapes",
    "init_lm_params",
    "lm_forward",
    "lm_backward",
    "sample",
]


# --- text <-> ids ---------------------------------------------------------------------------


def _check_text(text) -> None:
    if not isinstance(text, str):
        raise ValueError(f"text must be a str; got a {type(text).__name__}.")
    if not text:
        raise ValueError("text must hold at least one character; got the empty string.")


def _check_vocab(vocab) -> None:
    if not isinstance(vocab, (list, tuple)) or not vocab:
        raise ValueError(f"vocab must be a non-empty list of characters (from char_vocabulary); got {vocab!r:.60}.")
    bad = [v for v in vocab if not (isinstance(v, str) and len(v) == 1)]
    if bad:
        raise ValueError(f"vocab must hold single characters; got {bad[0]!r}.")
    if len(set(vocab)) != len(vocab):
        raise ValueError("vocab must not repeat a character; each character needs exactly one id.")


def char_vocabulary(text: str) -> list[str]:
    """The sorted unique characters of a text: the model's vocabulary.

    text: a non-empty str of length L. Returns a list of V single-character strings, sorted by
    code point, so the id of a character is its position in the list (V <= L).
    """
    _check_text(text)
    return sorted(set(text))


def encode(text: str, vocab: list[str]) -> np.ndarray:
    """Turn a text into the ids of its characters.

    text: a non-empty str of length L; vocab: the list of V characters (char_vocabulary).
    Returns an int64 array of shape (L,). Raises ValueError naming the first character
    that is not in the vocabulary, and where it is.
    """
    _check_text(text)
    _check_vocab(vocab)
    index = {ch: i for i, ch in enumerate(vocab)}
    for pos, ch in enumerate(text):
        if ch not in index:
            raise ValueError(
                f"text holds the character {ch!r} at position {pos}, which is not in the vocabulary "
                f"of {len(vocab)} characters; build the vocabulary from a text that contains it."
            )
    return np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))


def decode(ids: np.ndarray, vocab: list[str]) -> str:
    """Turn ids back into text: the inverse of encode.

    ids: an integer array of shape (L,) with values in [0, V); vocab: the list of V characters.
    Returns a str of length L.
    """
    _check_vocab(vocab)
    check_ids("ids", ids, (None,), "(L,)", len(vocab))
    return "".join(vocab[i] for i in ids.tolist())


# --- embedding ------------------------------------------------------------------------------


def embedding_forward(ids: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Look up the embedding of every id: row ids[t, n] of the table W.

    ids: (T, N) integer ids in [0, V); W: (V, E) float table.
    Returns out: (T, N, E), a new array (changing it never changes W), and the cache for
    embedding_backward.

    This is one_hot(ids) @ W, with one_hot(ids) of shape (T, N, V), computed without building
    the one-hot tensor: multiplying a one-hot row by W selects one row of W, so indexing does
    the same work in O(T N E) instead of O(T N V E) time and without the (T, N, V) memory.
    """
    check_array("W", W, (None, None), "(V, E)")
    V = W.shape[0]
    if V == 0 or W.shape[1] == 0:
        raise ValueError(f"W must have at least one row and one column (V, E >= 1); got shape {W.shape}.")
    check_ids("ids", ids, (None, None), "(T, N)", V)
    out = W[ids]  # (T, N, E); fancy indexing copies
    return out, Cache("embedding", ids=ids.copy(), W_shape=W.shape, dtype=W.dtype)


def embedding_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Gradient of the loss with respect to the embedding table.

    dout: (T, N, E) gradient with respect to embedding_forward's output; cache: from it.
    Returns dW: (V, E). Row v is the sum of dout over every position whose id is v, so an id
    that occurs several times receives the sum of their gradients (np.add.at accumulates;
    dW[ids] += dout would keep only one of them). Rows of ids that never occur are zero.
    """
    check_cache("cache", cache, "embedding")
    T, N = cache.ids.shape
    V, E = cache.W_shape
    check_array("dout", dout, (T, N, E), "(T, N, E)")
    if dout.dtype != cache.dtype:
        raise ValueError(f"dout must have dtype {cache.dtype} like the table W; got {dout.dtype}.")
    dW = np.zeros((V, E), dtype=dout.dtype)
    np.add.at(dW, cache.ids.reshape(-1), dout.reshape(T * N, E))  # (V, E) += (T*N, E) by row id
    return dW


# --- softmax, loss, perplexity --------------------------------------------------------------


def _check_logits(name: str, logits, dims: str, ndim: int) -> np.ndarray:
    check_array(name, logits, (None,) * ndim, dims)
    if 0 in logits.shape:
        raise ValueError(f"{name} must not be empty; got shape {logits.shape}.")
    return logits


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Probabilities softmax(logits / temperature) along the last axis.

    logits: (..., V) float array; temperature: a number >= 0. Returns probabilities of the
    same shape and dtype, each row summing to 1.

    The row maximum is subtracted before exp: softmax is unchanged by a shift, and after it the
    largest exponent is exp(0) = 1, so logits of 1e4 cannot overflow. Temperature 0 returns the
    limit as T -> 0: the probability is shared equally by the entries equal to the row maximum
    (one-hot at the argmax when the maximum is unique).
    """
    check_array("logits", logits, (None,) * max(np.ndim(logits), 1), "(..., V)")
    if logits.ndim == 0 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have a non-empty last axis V; got shape {logits.shape}.")
    T = check_temperature(temperature)
    top = logits.max(axis=-1, keepdims=True)  # (..., 1)
    if T == 0.0:
        e = (logits == top).astype(logits.dtype)
    else:
        e = np.exp((logits - top) / T)  # every exponent <= 0
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax along the last axis by log-sum-exp: z - max - log(sum(exp(z - max)))."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _target_log_probs(logits: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log softmax of logits (T, N, V), the log-probability of each target (T, N))."""
    logp = _log_softmax(logits)  # (T, N, V)
    return logp, np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]  # (T, N)


def _check_loss_inputs(logits, targets, mask) -> np.ndarray:
    """Check logits (T, N, V), targets (T, N) in [0, V), mask (T, N) bool or None; return the mask as float."""
    _check_logits("logits", logits, "(T, N, V)", 3)
    T, N, V = logits.shape
    check_ids("targets", targets, (T, N), "(T, N)", V)
    if mask is None:
        return np.ones((T, N), dtype=logits.dtype)
    check_mask("mask", mask, (T, N), "(T, N)")
    return mask.astype(logits.dtype)


def temporal_softmax_loss(
    logits: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy at every time step, summed over time and averaged over the batch.

    logits: (T, N, V) scores; targets: (T, N) integer ids in [0, V) of the correct next
    characters; mask: (T, N) bool, True where a step counts (None counts every step).
    Returns loss, a float, -(1/N) sum_t sum_n mask[t, n] log softmax(logits[t, n])[targets[t, n]],
    and dlogits: (T, N, V), its gradient, mask * (softmax(logits) - one_hot(targets)) / N.

    The sum over time and the mean over the batch follow CS231n's rnn_layers. The log-probabilities
    come from log-sum-exp, never from log(softmax), so logits of 1e4 give a finite loss and
    a masked-out step adds exactly zero to both the loss and the gradient.
    """
    m = _check_loss_inputs(logits, targets, mask)
    T, N, V = logits.shape
    logp, picked = _target_log_probs(logits, targets)  # (T, N, V), (T, N)
    loss = -float(np.sum(m * picked)) / N
    dlogits = np.exp(logp)  # (T, N, V) softmax
    np.put_along_axis(dlogits, targets[..., None], np.take_along_axis(dlogits, targets[..., None], -1) - 1, -1)
    dlogits *= (m / N)[..., None]  # (T, N, 1) broadcast over V
    return loss, dlogits


def perplexity(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Perplexity: exp of the mean negative log-likelihood per counted token.

    logits: (T, N, V); targets: (T, N) integer ids in [0, V); mask: (T, N) bool or None.
    Returns a float >= 1. A model that gives every character probability 1/V has perplexity
    exactly V: it is as unsure as a uniform choice among V characters. The mean is taken in
    float64 over the counted tokens; a mask that counts none is an error.
    """
    m = _check_loss_inputs(logits, targets, mask)
    count = float(m.sum())
    if count == 0:
        raise ValueError("mask counts no token (it is all False); perplexity needs at least one.")
    _, picked = _target_log_probs(logits, targets)  # (T, N)
    return float(np.exp(-np.sum(m.astype(np.float64) * picked) / count))


# --- sampling -------------------------------------------------------------------------------


def sample_next(logits: np.ndarray, rng: np.random.Generator, temperature: float = 1.0) -> np.ndarray:
    """Draw one next id per row from softmax(logits / temperature).

    logits: (N, V) scores for the next character of each of N sequences; rng: a numpy
    Generator; temperature: >= 0. Returns ids: (N,) int64.

    Temperature 0 is greedy: the argmax of each row, and rng is not touched. Otherwise exactly
    one rng.random(N) call supplies one uniform u per row, and the id is the first k whose
    cumulative probability exceeds u (inverse-CDF sampling), so the same Generator state always
    gives the same ids. Temperatures below 1 sharpen the distribution, above 1 flatten it.
    """
    _check_logits("logits", logits, "(N, V)", 2)
    check_rng(rng)
    temperature = check_temperature(temperature)
    N, V = logits.shape
    if temperature == 0.0:
        return np.argmax(logits, axis=1).astype(np.int64)
    p = softmax(logits.astype(np.float64), temperature)  # (N, V)
    cdf = np.cumsum(p, axis=1)  # (N, V), cdf[:, -1] is 1 up to rounding
    u = rng.random(N) * cdf[:, -1]  # (N,) scaled so that rounding in the sum cannot leave u past the end
    ids = np.sum(cdf <= u[:, None], axis=1)  # (N,) number of bins entirely below u
    # u * cdf[-1] may round up to cdf[-1] itself; fall back to the last id with non-zero probability
    last = V - 1 - np.argmax(p[:, ::-1] > 0, axis=1)  # (N,)
    return np.minimum(ids, last).astype(np.int64)


# --- the whole model ------------------------------------------------------------------------


def lm_param_shapes(V: int, E: int, H: int) -> dict[str, tuple[int, ...]]:
    """The language model's parameter names and shapes: W_embed (V, E), the LSTM's (E, H) and (H, H) and (H,), W_hy (H, V), b_y (V,)."""
    return {"W_embed": (V, E), **lstm_param_shapes(E, H), "W_hy": (H, V), "b_y": (V,)}


def init_lm_params(V: int, E: int, H: int, rng: np.random.Generator, dtype=np.float64) -> dict[str, np.ndarray]:
    """Random parameters for the language model, initialised as PyTorch initialises its layers.

    V: vocabulary size, E: embedding size, H: hidden size, rng: a numpy Generator,
    dtype: float32 or float64. Returns a dict with W_embed (V, E), standard normal as in
    nn.Embedding; the twelve LSTM arrays of init_lstm_params(E, H, rng); W_hy (H, V) and
    b_y (V,), uniform in (-1/sqrt(H), 1/sqrt(H)) as in nn.Linear.
    """
    check_sizes(V=V, E=E, H=H)
    check_rng(rng)
    params = {"W_embed": rng.standard_normal((V, E)).astype(dtype)}
    params.update(init_lstm_params(E, H, rng, dtype=dtype))
    bound = 1.0 / np.sqrt(H)
    params["W_hy"] = rng.uniform(-bound, bound, size=(H, V)).astype(dtype)
    params["b_y"] = rng.uniform(-bound, bound, size=V).astype(dtype)
    return params


def lm_forward(
    ids: np.ndarray, h0: np.ndarray, c0: np.ndarray, params: dict
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], Cache]:
    """Run the language model over a batch of id sequences (teacher forcing).

    ids: (T, N) integer ids in [0, V), the input characters; h0, c0: (N, H) initial states
    (zeros, or the final states of the previous batch); params: the arrays of
    lm_param_shapes(V, E, H). Returns logits: (T, N, V), where logits[t] scores the character
    that follows ids[t]; (h_T, c_T): (N, H) each, the states after the last step, to carry into
    the next batch in truncated BPTT; and the cache for lm_backward.
    """
    W_embed = params.get("W_embed") if isinstance(params, dict) else None
    check_array("params['W_embed']", W_embed, (None, None), "(V, E)")
    check_array("h0", h0, (None, None), "(N, H)")
    V, E = W_embed.shape
    H = h0.shape[1]
    check_params("language model", params, lm_param_shapes(V, E, H), f"V, E = {V}, {E} from W_embed, H = {H} from h0")
    xs, emb_cache = embedding_forward(ids, W_embed)  # (T, N, E)
    lstm_params = {k: params[k] for k in lstm_param_shapes(E, H)}
    hs, cs, lstm_cache = lstm_forward(xs, h0, c0, lstm_params)  # (T, N, H) each
    T, N = ids.shape
    logits = (hs.reshape(T * N, H) @ params["W_hy"] + params["b_y"]).reshape(T, N, V)  # (T, N, V)
    cache = Cache("lm", emb=emb_cache, lstm=lstm_cache, hs=hs, W_hy=params["W_hy"], logits_shape=logits.shape,
                  dtype=logits.dtype, keys=list(params))
    return logits, (hs[-1].copy(), cs[-1].copy()), cache


def lm_backward(dlogits: np.ndarray, cache: Cache) -> dict[str, np.ndarray]:
    """Backpropagate through the read-out, the LSTM (BPTT over the T steps) and the embedding.

    dlogits: (T, N, V) gradient with respect to lm_forward's logits (e.g. from
    temporal_softmax_loss); cache: from lm_forward. Returns grads, a dict with the same keys
    and shapes as the parameters. The gradient with respect to h0 and c0 is dropped: in
    truncated BPTT the carried states are treated as constants.
    """
    check_cache("cache", cache, "lm")
    T, N, V = cache.logits_shape
    check_array("dlogits", dlogits, cache.logits_shape, "(T, N, V)")
    if dlogits.dtype != cache.dtype:
        raise ValueError(f"dlogits must have dtype {cache.dtype} like the logits it differentiates; got {dlogits.dtype}.")
    H = cache.hs.shape[2]
    dl = dlogits.reshape(T * N, V)  # (T*N, V)
    grads = {
        "W_hy": cache.hs.reshape(T * N, H).T @ dl,  # (H, V)
        "b_y": dl.sum(axis=0),  # (V,)
    }
    dhs = (dl @ cache.W_hy.T).reshape(T, N, H)  # (T, N, H)
    dxs, _, _, lstm_grads = lstm_backward(dhs, cache.lstm)
    grads.update(lstm_grads)
    grads["W_embed"] = embedding_backward(dxs, cache.emb)
    return {k: grads[k] for k in cache.keys}


def sample(
    params: dict, prefix_ids: np.ndarray, length: int, rng: np.random.Generator, temperature: float = 1.0
) -> np.ndarray:
    """Generate text: run the model over a prefix, then feed back each drawn character.

    params: the arrays of lm_param_shapes(V, E, H); prefix_ids: (P,) integer ids, P >= 1, the
    text to continue; length: how many ids to draw; rng: a numpy Generator; temperature: >= 0
    (0 is greedy). Returns ids: (length,) int64, the drawn continuation without the prefix.
    One sequence (N = 1) starting from zero states; each step's draw is sample_next on the
    last logits, so the same Generator state gives the same text.
    """
    W_embed = params.get("W_embed") if isinstance(params, dict) else None
    check_array("params['W_embed']", W_embed, (None, None), "(V, E)")
    check_ids("prefix_ids", prefix_ids, (None,), "(P,)", W_embed.shape[0])
    check_sizes(length=length)
    check_rng(rng)
    temperature = check_temperature(temperature)
    H = params["W_hi"].shape[0] if isinstance(params.get("W_hi"), np.ndarray) else 1
    h = np.zeros((1, H), dtype=W_embed.dtype)
    c = np.zeros((1, H), dtype=W_embed.dtype)
    logits, (h, c), _ = lm_forward(prefix_ids[:, None], h, c, params)  # (P, 1, V)
    out = np.empty(length, dtype=np.int64)
    for k in range(length):
        out[k] = sample_next(logits[-1], rng, temperature)[0]
        if k + 1 < length:
            logits, (h, c), _ = lm_forward(out[k : k + 1, None], h, c, params)  # (1, 1, V)
    return out
