"""lstm_ref.grading.language_model: the checks of exercise 7, tested directly (no kernel, no nbgrader).

Correct answers written in other ways pass; each usual mistake fails with the message that names it.
"""

from __future__ import annotations

import numpy as np
import pytest

from lstm_ref import grading
from lstm_ref.grading import GradingError
from lstm_ref.grading import language_model as lm_checks

REF = grading.reference()


def loss_by_loops(logits, targets, mask=None):
    T, N, V = logits.shape
    loss, d = 0.0, np.zeros_like(logits)
    for t in range(T):
        for n in range(N):
            if mask is not None and not mask[t, n]:
                continue
            z = logits[t, n]
            lse = z.max() + np.log(np.sum(np.exp(z - z.max())))
            loss -= (z[targets[t, n]] - lse) / N
            p = np.exp(z - lse)
            p[targets[t, n]] -= 1
            d[t, n] = p / N
    return loss, d


def sample_by_choice(logits, rng, temperature=1.0):
    if temperature == 0:
        return logits.argmax(axis=1)
    p = np.exp((logits - logits.max(axis=1, keepdims=True)) / temperature)
    return np.array([rng.choice(p.shape[1], p=row / row.sum()) for row in p])


def sample_by_gumbel(logits, rng, temperature=1.0):
    if temperature == 0:
        return logits.argmax(axis=1)
    return np.argmax(logits / temperature - np.log(-np.log(rng.random(logits.shape))), axis=1)


LOSS_CASES = [lm_checks.loss_case(3, 4, 5, 0), lm_checks.loss_case(2, 3, 4, 1, masked=False),
              lm_checks.loss_case(2, 2, 3, 2, dtype=np.float32), lm_checks.loss_case(2, 3, 4, 3, scale=1e4)]


def test_a_correct_loss_written_with_loops_passes_the_value_and_gradient_checks():
    lm_checks.check_loss(loss_by_loops, LOSS_CASES)
    lm_checks.check_loss_gradient(loss_by_loops, lm_checks.loss_case(2, 3, 4, 4))


@pytest.mark.parametrize("mistake, message", [
    (lambda l, d, N, T, m: (l * N, d), "The loss is N times too large"),
    (lambda l, d, N, T, m: (l, d * N), "dlogits is N times too large"),
    (lambda l, d, N, T, m: (l / T, d / T), "The loss is T times too small"),
    (lambda l, d, N, T, m: (-l, d), "wrong sign"),
])
def test_loss_mistakes_are_named(mistake, message):
    def wrong(logits, targets, mask=None):
        loss, d = REF.language_model.temporal_softmax_loss(logits.copy(), targets.copy(), mask)
        return mistake(loss, d.copy(), logits.shape[1], logits.shape[0], mask)

    with pytest.raises(GradingError, match=message):
        lm_checks.check_loss(_untraced(wrong), [lm_checks.loss_case(3, 4, 5, 0)])


def test_an_ignored_mask_is_named_and_an_overflowing_loss_is_explained():
    with pytest.raises(GradingError, match="counts the masked-out steps"):
        lm_checks.check_loss(lambda z, y, m=None: loss_by_loops(z, y, None), [lm_checks.loss_case(3, 4, 5, 0)])

    def naive(logits, targets, mask=None):
        p = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
        picked = np.take_along_axis(p, targets[..., None], 2)[..., 0]
        return -np.sum(np.log(picked)) / logits.shape[1], p

    with pytest.raises(GradingError, match="exp overflowed"):
        lm_checks.check_loss(naive, [(np.array([[[1000.0, 0.0, -1000.0]]]), np.array([[1]]), None)])


def test_a_gradient_inconsistent_with_the_students_own_loss_fails_the_finite_difference_check():
    def half_gradient(logits, targets, mask=None):
        loss, d = loss_by_loops(logits, targets, mask)
        return loss, d / 2

    with pytest.raises(GradingError, match="fails the finite-difference check"):
        lm_checks.check_loss_gradient(half_gradient, lm_checks.loss_case(2, 3, 4, 4))


def test_embedding_alternatives_pass_and_a_view_or_a_wrong_cache_fails():
    cases = [lm_checks.embedding_case(3, 2, 5, 4, 0), lm_checks.embedding_case(2, 3, 4, 2, 1, np.float32)]
    lm_checks.check_embedding_forward(lambda ids, W: (np.eye(W.shape[0], dtype=W.dtype)[ids] @ W, (ids, W)), cases)
    lm_checks.check_embedding_forward(lambda ids, W: (np.take(W, ids, axis=0), (ids, W)), cases)
    single = [lm_checks.embedding_case(1, 1, 3, 2, 2)]
    with pytest.raises(GradingError, match="shares memory"):  # a basic slice is a view of W
        lm_checks.check_embedding_forward(lambda ids, W: (W[ids[0, 0]:ids[0, 0] + 1][None], (ids, W)), single)
    with pytest.raises(GradingError, match=r"cache .* should be the tuple \(ids, W\)"):
        lm_checks.check_embedding_forward(lambda ids, W: (W[ids], ids), cases)


def test_embedding_backward_overwriting_or_averaging_repeated_ids_is_named():
    ids = np.array([[2, 0], [2, 2]])
    W = np.zeros((4, 2))
    dout = np.arange(8.0).reshape(2, 2, 2)

    def overwrite(dout, cache):
        ids, W = cache
        dW = np.zeros_like(W)
        dW[ids] += dout
        return dW

    def loop(dout, cache):
        ids, W = cache
        dW = np.zeros_like(W)
        for (t, n), v in np.ndenumerate(ids):
            dW[v] += dout[t, n]
        return dW

    lm_checks.check_embedding_backward(loop, [(ids, W, dout)], gradcheck=True)
    with pytest.raises(GradingError, match="keeps only one occurrence of a repeated id"):
        lm_checks.check_embedding_backward(overwrite, [(ids, W, dout)])
    with pytest.raises(GradingError, match="averages over the occurrences"):
        lm_checks.check_embedding_backward(lambda d, c: loop(d, c) / np.maximum(np.bincount(c[0].ravel(), minlength=4), 1)[:, None],
                                           [(ids, W, dout)])


@pytest.mark.parametrize("sampler", [sample_by_choice, sample_by_gumbel])
def test_correct_samplers_with_different_random_streams_pass_every_property(sampler):
    z = np.array([[1.0, -0.5, 2.0, 0.0], [0.0, 0.0, 3.0, 0.0]])
    lm_checks.check_greedy(sampler, [z, np.array([[1e4, 0.0, -1e4]])])
    lm_checks.check_same_state(sampler, np.zeros((300, 4)), 1.0)
    for T, seed in [(0.5, 1), (2.0, 2)]:
        lm_checks.check_frequencies(sampler, z, T, draws=2000, seed=seed)


@pytest.mark.parametrize("wrong, message", [
    (lambda z, rng, T=1.0: sample_by_gumbel(z, rng, 1 / T if T else 0), r"softmax\(logits \* T\): divide"),
    (lambda z, rng, T=1.0: sample_by_gumbel(z, rng, 1.0 if T else 0), "as if the temperature were 1"),
    (lambda z, rng, T=1.0: z.argmax(axis=1), "frequency 1, but its probability"),
])
def test_sampler_mistakes_are_named_by_the_frequency_check(wrong, message):
    with pytest.raises(GradingError, match=message):
        lm_checks.check_frequencies(wrong, np.array([[2.0, 1.0, 0.0, -1.0]]), 0.5, draws=4000, seed=0)


def test_samplers_that_ignore_the_generator_are_caught():
    def global_state(z, rng, T=1.0):
        return sample_by_gumbel(z, np.random.default_rng(np.random.randint(1 << 30)), T)

    def own_seed(z, rng, T=1.0):
        return sample_by_gumbel(z, np.random.default_rng(0), T)

    with pytest.raises(GradingError, match="two Generators in the same state"):
        lm_checks.check_same_state(global_state, np.zeros((300, 4)), 1.0)
    with pytest.raises(GradingError, match="does not depend on the Generator's state"):
        lm_checks.check_same_state(own_seed, np.zeros((300, 4)), 1.0)
    with pytest.raises(GradingError, match="integer ids"):
        lm_checks.check_greedy(lambda z, rng, T=1.0: z.argmax(axis=1).astype(float), [np.eye(3)])


def _untraced(fn):
    """Let a test's wrong answer call the reference without being refused for it."""
    return grading.trusted(fn)
