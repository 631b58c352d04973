"""The character language model (exercise 7): temporal softmax loss, embedding, sampling with temperature.

The loss and the embedding are compared with the reference on fixed and random cases; a wrong
answer is diagnosed by testing it against the usual mistakes (a missing 1/N, a mask ignored, a
mean over time as well as over the batch, the table not accumulated for repeated ids).

Sampling is judged by properties only, never by one random stream, so any correct sampler
(inverse CDF, ``rng.choice``, the Gumbel-max trick, ...) earns full marks:

* temperature 0 is greedy: the argmax of every row;
* the same Generator state gives the same ids, and other states give other ids (the function
  draws from the Generator it is given, not from numpy's global state or a fresh seed);
* over many draws, the frequency of every id is within ``sigmas`` binomial standard errors of
  softmax(logits / T), the distribution the exercise asks for.

Every student result must be a new array: one that shares memory with an input loses the part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ._common import NDARRAY as _NDARRAY
from ._common import GradingError
from ._common import describe as _describe
from ._common import fmt as _fmt
from .calls import call_student
from .checks import check_gradient
from .compare import compare
from .reference import check_numpy_intact, reference

__all__ = [
    "loss_case",
    "check_loss",
    "check_loss_gradient",
    "embedding_case",
    "check_embedding_forward",
    "check_embedding_backward",
    "check_greedy",
    "check_same_state",
    "check_frequencies",
]


# --- inputs ---------------------------------------------------------------------------------


def loss_case(T: int, N: int, V: int, seed: int, *, masked: bool = True, scale: float = 2.0, dtype=np.float64):
    """Seeded inputs for the loss: logits (T, N, V), targets (T, N) int64, mask (T, N) bool or None.

    The mask keeps about two thirds of the steps, and always the first step of every sequence.
    """
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((T, N, V)) * scale).astype(dtype)
    targets = rng.integers(0, V, size=(T, N))
    mask = None
    if masked:
        mask = rng.random((T, N)) < 0.67
        mask[0] = True
    return logits, targets, mask


def embedding_case(T: int, N: int, V: int, E: int, seed: int, dtype=np.float64):
    """Seeded inputs for the embedding: ids (T, N) int64 in [0, V) and a table W (V, E)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, size=(T, N)), rng.standard_normal((V, E)).astype(dtype)


def _describe_loss_inputs(logits, targets, mask) -> str:
    T, N, V = logits.shape
    counted = "no mask" if mask is None else f"mask counting {int(_NDARRAY.sum(mask))} of {T * N} steps"
    big = float(_NDARRAY.max(_NDARRAY.__abs__(logits), initial=0.0))
    return f"(T, N, V) = {(T, N, V)}, {logits.dtype}, {counted}, largest |logit| {big:.3g}"


def _as_float(value, what: str) -> float:
    if isinstance(value, _NDARRAY) and value.size == 1:
        return float(_NDARRAY.reshape(value, (1,))[0])
    try:
        return float(value)
    except (TypeError, ValueError):
        raise GradingError(f"The {what} should be a number; got {_describe(value)}.") from None


def _close(a: np.ndarray, b: np.ndarray, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    a = _NDARRAY.astype(np.asarray(a), np.float64)
    b = _NDARRAY.astype(np.asarray(b), np.float64)
    if a.shape != b.shape:
        return False
    return bool(_NDARRAY.all((a - b).__abs__() <= atol + rtol * b.__abs__()))


# --- the loss -------------------------------------------------------------------------------


def _loss_hint(got_loss, got_d, logits, targets, mask, want_loss, want_d) -> tuple[str, str]:
    """(hint for the loss, hint for dlogits): the usual mistakes, recognised by what they produce."""
    ref = reference().language_model
    T, N, _ = logits.shape
    unmasked_loss, unmasked_d = ref.temporal_softmax_loss(logits, targets, None)
    loss_hint = d_hint = ""
    checks_loss = [
        (want_loss * N, "The loss is N times too large: divide the sum by the batch size N."),
        (want_loss / T, "The loss is T times too small: sum over time, average over the batch only (divide by N, "
                        "not by T * N)."),
        (-want_loss, "The loss has the wrong sign: it is minus the log-probability of the targets."),
    ]
    checks_d = [
        (want_d * N, "dlogits is N times too large: the loss divides by N, so its gradient does too."),
        (want_d / T, "dlogits is T times too small: the loss is summed over time, not averaged."),
        (-want_d, "dlogits has the wrong sign: it is (softmax - one_hot) / N."),
    ]
    if mask is not None and not bool(_NDARRAY.all(mask)):
        checks_loss.append((unmasked_loss, "The loss counts the masked-out steps: multiply each step's term by "
                                           "mask before summing."))
        checks_d.append((unmasked_d, "dlogits is not zero at the masked-out steps: multiply it by mask[..., None]."))
    for value, hint in checks_loss:
        if got_loss is not None and _close(np.array([got_loss]), np.array([value])):
            loss_hint = hint
            break
    for value, hint in checks_d:
        if isinstance(got_d, _NDARRAY) and _close(got_d, value):
            d_hint = hint
            break
    if isinstance(got_d, _NDARRAY) and mask is not None and not d_hint and got_d.shape == want_d.shape:
        off = _NDARRAY.astype(got_d, np.float64)[~mask]
        if off.size and float(_NDARRAY.max(off.__abs__())) > 0:
            d_hint = "dlogits is not zero at some masked-out steps: multiply it by mask[..., None]."
    return loss_hint, d_hint


def check_loss(
    student_fn: Callable,
    cases: Iterable[tuple],
    *,
    name: str = "temporal_softmax_loss",
    atol: float = 1e-10,
    rtol: float = 1e-10,
    hint: str = "",
) -> None:
    """Check a temporal softmax loss: (logits, targets, mask) -> (loss, dlogits).

    cases: tuples (logits (T, N, V), targets (T, N), mask (T, N) bool or None), optionally followed
    by the expected (loss, dlogits); without them the reference provides them. The loss may be a
    float or a size-1 array; dlogits must be a new array with the shape and dtype of logits. A float32
    case holds the loss to a relative 1e-5. On a mismatch the message says which usual mistake the
    answer matches (a missing 1/N, a mean over time, the mask ignored), or else ``hint``.
    """
    check_numpy_intact()
    ref = reference().language_model
    for case in cases:
        logits, targets, mask, *expected = case
        want_loss, want_d = expected if expected else ref.temporal_softmax_loss(logits, targets, mask)
        where = _describe_loss_inputs(logits, targets, mask)
        result, _ = call_student(student_fn, logits, targets, mask, name=name, new_result=True)
        if not (isinstance(result, tuple) and len(result) == 2):
            got = f"a tuple of {len(result)}" if isinstance(result, tuple) else _describe(result)
            raise GradingError(f"{name} should return a tuple (loss, dlogits); got {got}.")
        got_loss, got_d = result
        loss_value = _as_float(got_loss, f"loss from {name}")
        loss_hint, d_hint = _loss_hint(loss_value, got_d, logits, targets, mask, want_loss, want_d)
        loss_rtol = max(rtol, 1e-5) if logits.dtype == np.float32 else rtol
        if not (loss_value - loss_value) == 0:  # inf or nan
            raise GradingError(
                f"The loss from {name} is {loss_value} for {where}; the expected loss is {_fmt(want_loss)}. "
                "A loss of inf or nan means exp overflowed: subtract each row's maximum before exp (log-sum-exp).")
        with np.errstate(invalid="ignore", over="ignore"):  # a nan in the answer is reported, not warned about
            compare(np.array([loss_value]), np.array([float(want_loss)]), name=f"the loss from {name}", atol=atol,
                    rtol=loss_rtol, inputs=where, check_dtype=False, hint=loss_hint or hint)
            compare(got_d, want_d, name=f"dlogits from {name}", atol=atol, rtol=rtol, inputs=where,
                    hint=d_hint or hint)


def check_loss_gradient(student_fn: Callable, case: tuple, *, name: str = "temporal_softmax_loss", tol: float = 1e-7):
    """Check a loss's dlogits against finite differences of the same function's loss.

    case: (logits (T, N, V) float64, targets (T, N), mask (T, N) or None); keep T N V small (two
    calls per entry). Judging dlogits against the student's own loss charges a wrong loss to the
    loss alone.
    """
    check_numpy_intact()
    logits, targets, mask = case
    result, _ = call_student(student_fn, logits, targets, mask, name=name, new_result=True)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise GradingError(f"{name} should return a tuple (loss, dlogits); got {_describe(result)}.")

    def loss(z):
        value, _ = call_student(student_fn, z, targets, mask, name=name)
        return _as_float(value[0], f"loss from {name}")

    check_gradient(loss, logits, result[1], name=f"dlogits from {name}", tol=tol)


# --- the embedding --------------------------------------------------------------------------


def _call_keeping(student_fn: Callable, args: tuple, name: str, returns: str, new_first: bool = True):
    """Call a function that returns (array, cache); only the array must be new (the cache may hold the inputs)."""
    box = {}

    def first_only(*inner):
        box["result"] = student_fn(*inner)
        result = box["result"]
        return result[0] if isinstance(result, tuple) and len(result) == 2 else None

    call_student(first_only, *args, name=name, new_result=new_first)
    result = box["result"]
    if not (isinstance(result, tuple) and len(result) == 2):
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else _describe(result)
        raise GradingError(f"{name} should return {returns}; got {got}.")
    return result


def check_embedding_forward(
    student_fn: Callable, cases: Iterable[tuple], *, name: str = "embedding_forward", hint: str = ""
) -> None:
    """Check an embedding lookup: (ids (T, N), W (V, E)) -> (out (T, N, E), cache = (ids, W)).

    cases: tuples (ids, W), optionally followed by the expected out. out must be a new array (a
    lookup copies: changing out must never change W) with W's dtype; the cache must hold ids and W,
    which the backward pass reads.
    """
    check_numpy_intact()
    ref = reference().language_model
    for case in cases:
        ids, W, *expected = case
        want = expected[0] if expected else ref.embedding_forward(ids, W)[0]
        T, N = ids.shape
        V, E = W.shape
        where = f"(T, N, V, E) = {(T, N, V, E)}, {W.dtype}" + (
            f", ids = {ids.tolist()}" if ids.size <= 8 else "")
        out, cache = _call_keeping(student_fn, (ids, W), name, "a tuple (out, cache)")
        if isinstance(out, _NDARRAY) and out.shape == (N, T, E) and (N, T) != (T, N):
            raise GradingError(
                f"out from {name} for {where} has shape {out.shape}; expected (T, N, E) = {(T, N, E)}. "
                "The time axis comes first: index W with ids as it is, without transposing it.")
        compare(out, want, name=f"out from {name}", atol=0.0, inputs=where,
                hint=hint or "Row (t, n) of the output is row ids[t, n] of W: W[ids] does it in one step.")
        if not (isinstance(cache, tuple) and len(cache) == 2 and isinstance(cache[0], _NDARRAY)
                and isinstance(cache[1], _NDARRAY) and cache[0].shape == ids.shape and cache[1].shape == W.shape
                and bool(_NDARRAY.all(cache[0] == ids)) and bool(_NDARRAY.all(cache[1] == W))):
            raise GradingError(
                f"The cache from {name} should be the tuple (ids, W), which embedding_backward reads; got "
                f"{_describe(cache) if not isinstance(cache, tuple) else f'a tuple of {len(cache)}'} "
                "with other contents.")


def check_embedding_backward(
    student_fn: Callable, cases: Iterable[tuple], *, name: str = "embedding_backward", hint: str = "",
    gradcheck: bool = False,
) -> None:
    """Check an embedding gradient: (dout (T, N, E), cache = (ids, W)) -> dW (V, E).

    cases: tuples (ids, W, dout), optionally followed by the expected dW. dW must be a new array
    with W's dtype; the cache is built here, so a wrong forward pass is not charged to the backward.
    With gradcheck, dW is also checked by finite differences of sum(dout * W[ids]) (float64 cases).
    """
    check_numpy_intact()
    ref = reference().language_model
    for case in cases:
        ids, W, dout, *expected = case
        want = expected[0] if expected else ref.embedding_backward(dout, ref.embedding_forward(ids, W)[1])
        T, N = ids.shape
        V, E = W.shape
        where = f"(T, N, V, E) = {(T, N, V, E)}, {W.dtype}" + (
            f", ids = {ids.tolist()}" if ids.size <= 8 else "")
        dW, _ = call_student(student_fn, dout, (ids, W), name=name, new_result=True)
        diagnosis = ""
        if isinstance(dW, _NDARRAY) and dW.shape == want.shape:
            overwritten = np.zeros((V, E))
            overwritten[ids.reshape(-1)] = _NDARRAY.reshape(_NDARRAY.astype(dout, np.float64), (T * N, E))
            counts = np.bincount(ids.reshape(-1), minlength=V)
            if int(_NDARRAY.max(counts)) > 1 and _close(dW, overwritten):
                diagnosis = ("dW keeps only one occurrence of a repeated id: dW[ids] += dout (or = dout) does not "
                             "add up repeated indices. Use np.add.at(dW, ids.ravel(), dout.reshape(-1, E)).")
            elif _close(dW, want / np.maximum(counts, 1)[:, None]):
                diagnosis = "dW averages over the occurrences of an id; the gradient is their sum."
        compare(dW, want, name=f"dW from {name}", atol=1e-12, rtol=1e-12, inputs=where, hint=diagnosis or hint or (
            "Row v of dW is the sum of dout[t, n] over every position with ids[t, n] == v; rows of unused ids are 0."))
        if gradcheck and W.dtype == np.float64:
            flat = _NDARRAY.reshape(ids, (-1,))

            def loss(table):
                return float(_NDARRAY.sum(table[flat] * _NDARRAY.reshape(dout, (T * N, E))))

            check_gradient(loss, W, dW, name=f"dW from {name}", tol=1e-8)


# --- sampling -------------------------------------------------------------------------------


def _sample(student_fn: Callable, logits, rng, temperature, name: str) -> np.ndarray:
    """Call the sampler; check it returns a new integer array (N,) of ids in [0, V)."""
    N, V = logits.shape
    ids, _ = call_student(student_fn, logits, rng, temperature, name=name, new_result=True)
    what = f"{name}(logits of shape {(N, V)}, rng, temperature={temperature:g})"
    if isinstance(ids, list):
        ids = np.array(ids)
    if not isinstance(ids, _NDARRAY) or ids.shape != (N,):
        raise GradingError(f"{what} should return an array of N = {N} ids, shape {(N,)}; got {_describe(ids)}. "
                           "Draw one id per row of logits.")
    if ids.dtype.kind not in "iu":
        raise GradingError(f"{what} should return integer ids; got dtype {ids.dtype}. Ids index the vocabulary: "
                           "use an integer dtype (np.argmax, rng.choice and np.searchsorted all give one).")
    if ids.size and (int(_NDARRAY.min(ids)) < 0 or int(_NDARRAY.max(ids)) >= V):
        raise GradingError(f"{what} returned ids outside [0, V) = [0, {V}): from {int(_NDARRAY.min(ids))} to "
                           f"{int(_NDARRAY.max(ids))}.")
    return ids


def check_greedy(student_fn: Callable, logits_cases: Iterable[np.ndarray], *, name: str = "sample_next") -> None:
    """Temperature 0 must be greedy: the argmax of every row, for each logits array (N, V) in logits_cases."""
    check_numpy_intact()
    for logits in logits_cases:
        ids = _sample(student_fn, logits, np.random.default_rng(0), 0.0, name)
        want = _NDARRAY.argmax(logits, axis=1)
        wrong = _NDARRAY.nonzero(ids != want)[0]
        if wrong.size:
            n = int(wrong[0])
            raise GradingError(
                f"{name} with temperature 0 should return the argmax of every row, but row {n} of {logits.shape[0]} "
                f"gave id {int(ids[n])} instead of {int(want[n])} (logits row {np.array2string(logits[n], precision=3, threshold=8)}). "
                "Treat temperature == 0 as its own case: no division by zero, no randomness.")


def check_same_state(
    student_fn: Callable, logits: np.ndarray, temperature: float, *, seeds: tuple = (0, 1), name: str = "sample_next"
) -> None:
    """The same Generator state must give the same ids, and another state other ids.

    logits: (N, V) with N large enough (a few hundred rows of a spread-out distribution) that two
    independent draws of all N ids cannot coincide by chance.
    """
    check_numpy_intact()
    a = _sample(student_fn, logits, np.random.default_rng(seeds[0]), temperature, name)
    b = _sample(student_fn, logits, np.random.default_rng(seeds[0]), temperature, name)
    if not bool(_NDARRAY.all(a == b)):
        raise GradingError(
            f"{name} gave different ids for two Generators in the same state (np.random.default_rng({seeds[0]}) "
            "twice). Draw every random number from the rng argument, never from np.random's global functions.")
    c = _sample(student_fn, logits, np.random.default_rng(seeds[1]), temperature, name)
    if bool(_NDARRAY.all(a == c)):
        raise GradingError(
            f"{name} gave the same {logits.shape[0]} ids for np.random.default_rng({seeds[0]}) and "
            f"np.random.default_rng({seeds[1]}), so its answer does not depend on the Generator's state. At "
            f"temperature {temperature:g} it must draw at random, from the rng argument: not from a Generator "
            "you seed yourself, and not by taking the argmax.")


def check_frequencies(
    student_fn: Callable,
    logits: np.ndarray,
    temperature: float,
    *,
    draws: int,
    seed: int,
    sigmas: float = 5.0,
    name: str = "sample_next",
) -> None:
    """Over many draws, the frequencies must follow softmax(logits / temperature), row by row.

    logits: (K, V), K distributions; each row is repeated ``draws`` times and sampled in one call
    with np.random.default_rng(seed). Every id's frequency must lie within ``sigmas`` binomial
    standard errors sqrt(p (1 - p) / draws) of its probability p (plus 1 / draws for ids of
    probability 0). Whichever stream a correct sampler uses, a check at 5 standard errors fails by
    chance with probability below 1e-6 per id.
    """
    check_numpy_intact()
    ref = reference().language_model
    K, V = logits.shape
    tiled = _NDARRAY.copy(np.tile(logits, (draws, 1)))  # (draws * K, V): row j is distribution j % K
    ids = _sample(student_fn, tiled, np.random.default_rng(seed), temperature, name)
    ids = _NDARRAY.reshape(ids, (draws, K))
    z = _NDARRAY.astype(logits, np.float64)
    alternatives = [
        (ref.softmax(z * temperature), "They match softmax(logits * T): divide the logits by the temperature, "
                                       "do not multiply."),
        (ref.softmax(z), "They match softmax(logits), as if the temperature were 1: divide the logits by T."),
        ((z - _NDARRAY.min(z, axis=1, keepdims=True)) / _NDARRAY.sum(z - _NDARRAY.min(z, axis=1, keepdims=True),
                                                                     axis=1, keepdims=True),
         "They match the logits rescaled to sum to 1: draw from the probabilities softmax(logits / T), not "
         "from the logits."),
    ]
    want = ref.softmax(z, temperature)  # (K, V)
    for k in range(K):
        freq = np.bincount(ids[:, k], minlength=V) / draws  # (V,)
        p = want[k]
        band = sigmas * np.sqrt(p * (1 - p) / draws) + 1.0 / draws
        bad = _NDARRAY.nonzero((freq - p).__abs__() > band)[0]
        if not bad.size:
            continue
        v = int(bad[0])
        hint = "Draw from softmax(logits / T) of each row; check that the temperature divides the logits."
        for q, why in alternatives:
            qk = q[k]
            if bool(_NDARRAY.all((freq - qk).__abs__() <= sigmas * np.sqrt(qk * (1 - qk) / draws) + 1.0 / draws)):
                hint = why
                break
        raise GradingError(
            f"The ids {name} draws do not follow softmax(logits / T) for T = {temperature:g}: over {draws} draws "
            f"from the logits row {np.array2string(z[k], precision=3)}, id {v} came with frequency "
            f"{_fmt(freq[v])}, but its probability is {_fmt(p[v])} (allowed: +-{band[v]:.2g}, {sigmas:g} standard "
            f"errors). {hint}")
