"""The character language model of chapter 7: embedding, loss, perplexity, the whole model, sampling.

Truth comes from outside the module: torch.nn.Embedding, torch.nn.functional.cross_entropy,
nn.LSTM with autograd, finite differences, closed forms (the perplexity of a uniform guess),
and, for sampling, the binomial spread of empirical frequencies around softmax(z / T).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

import lstm_ref
from lstm_ref import language_model as lm
from lstm_ref import numerical_gradient, rel_error
from lstm_ref.torch_interop import lstm_params_to_torch

T, N, V, E, H = 3, 4, 7, 5, 6  # all different, so a wrong axis or transpose fails loudly


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(0)


def _loss_inputs(rng, dtype=np.float64, masked=False, scale=2.0):
    logits = (scale * rng.standard_normal((T, N, V))).astype(dtype)
    targets = rng.integers(0, V, size=(T, N))
    mask = rng.random((T, N)) < 0.6 if masked else None
    return logits, targets, mask


# --- text <-> ids ---------------------------------------------------------------------------


def test_char_vocabulary_is_sorted_unique_and_encode_decode_round_trip():
    text = "the cat sat on the mat.\n"
    vocab = lm.char_vocabulary(text)
    assert vocab == sorted(set(text)) and len(vocab) == len(set(vocab))
    ids = lm.encode(text, vocab)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert [vocab[i] for i in ids] == list(text)
    assert lm.decode(ids, vocab) == text


def test_encode_names_the_first_unknown_character_and_its_position():
    vocab = lm.char_vocabulary("abc")
    with pytest.raises(ValueError, match=r"'z' at position 2"):
        lm.encode("abzq", vocab)


# --- embedding ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_embedding_forward_matches_torch_embedding(rng, dtype):
    W = rng.standard_normal((V, E)).astype(dtype)
    ids = rng.integers(0, V, size=(T, N))
    out, _ = lm.embedding_forward(ids, W)
    emb = torch.nn.Embedding.from_pretrained(torch.from_numpy(W))
    assert out.shape == (T, N, E) and out.dtype == dtype
    np.testing.assert_array_equal(out, emb(torch.from_numpy(ids)).numpy())  # a lookup: exact


def test_embedding_forward_equals_one_hot_matmul_and_is_a_new_array(rng):
    W = rng.standard_normal((V, E))
    ids = rng.integers(0, V, size=(T, N))
    out, _ = lm.embedding_forward(ids, W)
    one_hot = np.eye(V)[ids]  # (T, N, V)
    np.testing.assert_allclose(out, one_hot @ W, rtol=0, atol=1e-15)
    W_before = W.copy()
    out[...] = 0.0
    np.testing.assert_array_equal(W, W_before)


def test_embedding_backward_accumulates_repeated_ids_like_torch_autograd(rng):
    W = rng.standard_normal((V, E))
    ids = np.array([[2, 2, 5, 2], [0, 5, 2, 2], [2, 0, 0, 2]])  # id 2 eight times, ids 1, 3, 4, 6 never
    dout = rng.standard_normal((T, N, E))
    _, cache = lm.embedding_forward(ids, W)
    dW = lm.embedding_backward(dout, cache)
    Wt = torch.from_numpy(W).requires_grad_()
    torch.nn.functional.embedding(torch.from_numpy(ids), Wt).backward(torch.from_numpy(dout))
    np.testing.assert_allclose(dW, Wt.grad.numpy(), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dW[2], dout[ids == 2].sum(axis=0), rtol=1e-13)
    assert not dW[[1, 3, 4, 6]].any()


def test_embedding_backward_matches_finite_differences(rng):
    W = rng.standard_normal((V, E))
    ids = rng.integers(0, V, size=(T, N))
    dout = rng.standard_normal((T, N, E))
    _, cache = lm.embedding_forward(ids, W)
    num = numerical_gradient(lambda w: lm.embedding_forward(ids, w)[0], W, dout)
    assert rel_error(lm.embedding_backward(dout, cache), num) < 1e-9


# --- softmax, loss, perplexity --------------------------------------------------------------


def test_softmax_rows_sum_to_one_and_survive_logits_of_1e4(rng):
    z = np.array([[1e4, 1e4 - 1.0, -1e4], [-1e4, -1e4, -1e4]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = lm.softmax(z)
    np.testing.assert_allclose(p[0], [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1)), 0.0], rtol=1e-12)
    np.testing.assert_allclose(p[1], np.full(3, 1 / 3), rtol=1e-15)
    q = lm.softmax(rng.standard_normal((T, N, V)), temperature=0.7)
    np.testing.assert_allclose(q.sum(axis=-1), 1.0, rtol=1e-14)


def test_softmax_temperature_divides_the_logits_and_zero_is_the_argmax_limit():
    z = np.array([[0.5, 2.0, -1.0, 2.0]])
    np.testing.assert_allclose(lm.softmax(z, 0.5), torch.softmax(torch.from_numpy(z / 0.5), -1).numpy(), rtol=1e-14)
    np.testing.assert_array_equal(lm.softmax(z, 0.0), [[0.0, 0.5, 0.0, 0.5]])  # ties share the limit


@pytest.mark.parametrize("masked", [False, True], ids=["no mask", "mask"])
def test_temporal_softmax_loss_and_gradient_match_torch_cross_entropy(rng, masked):
    logits, targets, mask = _loss_inputs(rng, masked=masked)
    loss, dlogits = lm.temporal_softmax_loss(logits, targets, mask)
    zt = torch.from_numpy(logits).requires_grad_()
    per_token = torch.nn.functional.cross_entropy(
        zt.reshape(T * N, V), torch.from_numpy(targets).reshape(-1), reduction="none"
    )
    weight = torch.ones(T * N, dtype=torch.float64) if mask is None else torch.from_numpy(mask.reshape(-1)).double()
    # cross_entropy(reduction='sum') over the counted tokens, divided by N
    ref = (per_token * weight).sum() / N
    ref.backward()
    assert abs(loss - ref.item()) <= 1e-13 * abs(ref.item())
    np.testing.assert_allclose(dlogits, zt.grad.numpy(), rtol=1e-12, atol=1e-15)
    if masked:
        sub = torch.nn.functional.cross_entropy(
            torch.from_numpy(logits[mask]), torch.from_numpy(targets[mask]), reduction="sum"
        ) / N
        assert abs(loss - sub.item()) <= 1e-13 * abs(sub.item())


def test_temporal_softmax_loss_gradient_matches_finite_differences(rng):
    logits, targets, mask = _loss_inputs(rng, masked=True)
    _, dlogits = lm.temporal_softmax_loss(logits, targets, mask)
    num = numerical_gradient(lambda z: lm.temporal_softmax_loss(z, targets, mask)[0], logits)
    assert rel_error(dlogits, num) < 1e-8


def test_temporal_softmax_loss_is_finite_and_exact_at_logits_of_plus_minus_1e4(rng):
    logits = np.where(rng.random((T, N, V)) < 0.5, 1e4, -1e4)
    logits[0, 0] = -1e4
    logits[0, 0, 3] = 1e4
    targets = np.zeros((T, N), dtype=np.int64)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dlogits = lm.temporal_softmax_loss(logits, targets, None)
    assert np.isfinite(loss) and np.isfinite(dlogits).all()
    # at step (0, 0) the target 0 scores 2e4 below the winner: its loss is 2e4 exactly
    one, _ = lm.temporal_softmax_loss(logits[:1, :1], targets[:1, :1])
    assert one == pytest.approx(2e4, rel=1e-12)
    ref = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits).reshape(-1, V), torch.from_numpy(targets).reshape(-1), reduction="sum"
    ).item() / N
    assert loss == pytest.approx(ref, rel=1e-12)


def test_masked_out_steps_add_nothing_to_loss_or_gradient(rng):
    logits, targets, _ = _loss_inputs(rng)
    mask = np.ones((T, N), dtype=bool)
    mask[:, 1] = False  # a whole sequence of the batch masked out
    mask[2, :] = False  # a whole time step masked out
    loss, dlogits = lm.temporal_softmax_loss(logits, targets, mask)
    assert not dlogits[:, 1].any() and not dlogits[2].any()
    logits2 = logits.copy()
    logits2[~mask] = rng.standard_normal((int((~mask).sum()), V)) * 50  # change only what is masked
    assert lm.temporal_softmax_loss(logits2, targets, mask)[0] == loss
    none, dnone = lm.temporal_softmax_loss(logits, targets, np.zeros((T, N), dtype=bool))
    assert none == 0.0 and not dnone.any()


def test_perplexity_of_uniform_logits_is_the_vocabulary_size(rng):
    _, targets, mask = _loss_inputs(rng, masked=True)
    for c in (0.0, 3.7, 1e4):
        assert lm.perplexity(np.full((T, N, V), c), targets, mask) == pytest.approx(V, rel=1e-12)


def test_perplexity_is_exp_of_torch_mean_cross_entropy_over_counted_tokens(rng):
    logits, targets, mask = _loss_inputs(rng, masked=True)
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(logits[mask]), torch.from_numpy(targets[mask]))
    assert lm.perplexity(logits, targets, mask) == pytest.approx(np.exp(ref.item()), rel=1e-12)
    # without a mask, perplexity and the loss describe the same sum: loss = N * T * log(ppl) / N
    loss, _ = lm.temporal_softmax_loss(logits, targets)
    assert np.log(lm.perplexity(logits, targets)) == pytest.approx(loss / T, rel=1e-12)


# --- the whole model ------------------------------------------------------------------------


class TorchLM(torch.nn.Module):
    """The same model in PyTorch: nn.Embedding, nn.LSTM, nn.Linear."""

    def __init__(self, params):
        super().__init__()
        self.embed = torch.nn.Embedding.from_pretrained(torch.from_numpy(params["W_embed"].copy()), freeze=False)
        self.lstm = lstm_params_to_torch({k: params[k] for k in lstm_ref.lstm_param_shapes(E, H)},
                                         torch.nn.LSTM(E, H).double())
        self.out = torch.nn.Linear(H, V).double()
        with torch.no_grad():
            self.out.weight.copy_(torch.from_numpy(params["W_hy"].T))
            self.out.bias.copy_(torch.from_numpy(params["b_y"]))

    def forward(self, ids, h0, c0):
        hs, (h, c) = self.lstm(self.embed(ids), (h0[None], c0[None]))
        return self.out(hs), h[0], c[0]


def _torch_grads(model):
    """The torch gradients under our names (our bias is the sum of torch's two, so its gradient is either's)."""
    from lstm_ref.torch_interop import lstm_params_from_torch

    lstm_grads = lstm_params_from_torch(_GradView(model.lstm))
    for g in "ifoc":  # lstm_params_from_torch summed bias_ih.grad + bias_hh.grad; each alone is the gradient
        lstm_grads[f"b_{g}"] = lstm_grads[f"b_{g}"] / 2
    return {"W_embed": model.embed.weight.grad.numpy(), **lstm_grads,
            "W_hy": model.out.weight.grad.numpy().T, "b_y": model.out.bias.grad.numpy()}


class _GradView(torch.nn.LSTM):
    """An nn.LSTM whose parameters are another LSTM's gradients, so the interop unstacks them."""

    def __init__(self, lstm):
        super().__init__(lstm.input_size, lstm.hidden_size)
        self.double()
        with torch.no_grad():
            for name, p in lstm.named_parameters():
                getattr(self, name).copy_(p.grad)


def test_lm_forward_and_backward_match_torch_autograd(rng):
    params = lm.init_lm_params(V, E, H, rng)
    ids = rng.integers(0, V, size=(T, N))
    targets = rng.integers(0, V, size=(T, N))
    h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    logits, (hT, cT), cache = lm.lm_forward(ids, h0, c0, params)
    loss, dlogits = lm.temporal_softmax_loss(logits, targets)
    grads = lm.lm_backward(dlogits, cache)

    model = TorchLM(params)
    z, h, c = model(torch.from_numpy(ids), torch.from_numpy(h0), torch.from_numpy(c0))
    ref = torch.nn.functional.cross_entropy(z.reshape(-1, V), torch.from_numpy(targets).reshape(-1), reduction="sum") / N
    ref.backward()
    np.testing.assert_allclose(logits, z.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(hT, h.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(cT, c.detach().numpy(), rtol=1e-12, atol=1e-13)
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    want = _torch_grads(model)
    assert list(grads) == list(params)
    for key in params:
        assert grads[key].shape == params[key].shape, key
        assert rel_error(grads[key], want[key]) < 1e-11, key


def test_lm_backward_matches_finite_differences_on_every_parameter(rng):
    params = lm.init_lm_params(5, 3, 4, rng)
    ids = rng.integers(0, 5, size=(3, 2))
    targets = rng.integers(0, 5, size=(3, 2))
    h0 = c0 = np.zeros((2, 4))
    logits, _, cache = lm.lm_forward(ids, h0, c0, params)
    _, dlogits = lm.temporal_softmax_loss(logits, targets)
    grads = lm.lm_backward(dlogits, cache)
    for key in params:
        def loss_of(value, key=key):
            return lm.temporal_softmax_loss(lm.lm_forward(ids, h0, c0, {**params, key: value})[0], targets)[0]

        assert rel_error(grads[key], numerical_gradient(loss_of, params[key])) < 1e-7, key


def test_lm_forward_with_carried_state_equals_one_pass_over_the_whole_sequence(rng):
    params = lm.init_lm_params(V, E, H, rng)
    ids = rng.integers(0, V, size=(2 * T, N))
    zeros = np.zeros((N, H))
    whole, (h_all, _), _ = lm.lm_forward(ids, zeros, zeros, params)
    first, (h, c), _ = lm.lm_forward(ids[:T], zeros, zeros, params)
    second, (h_end, _), _ = lm.lm_forward(ids[T:], h, c, params)
    np.testing.assert_allclose(np.concatenate([first, second]), whole, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(h_end, h_all, rtol=1e-13, atol=1e-14)


def test_init_lm_params_has_the_contract_keys_shapes_and_dtype(rng):
    params = lm.init_lm_params(V, E, H, rng, dtype=np.float32)
    assert list(params) == ["W_embed", *lstm_ref.lstm_param_shapes(E, H), "W_hy", "b_y"]
    assert {k: v.shape for k, v in params.items()} == lm.lm_param_shapes(V, E, H)
    assert all(v.dtype == np.float32 for v in params.values())


# --- sampling -------------------------------------------------------------------------------


def test_sample_next_greedy_is_the_argmax_and_leaves_the_generator_untouched(rng):
    logits = rng.standard_normal((N, V))
    state = rng.bit_generator.state
    np.testing.assert_array_equal(lm.sample_next(logits, rng, temperature=0.0), logits.argmax(axis=1))
    assert rng.bit_generator.state == state


def test_sample_next_draws_exactly_one_uniform_per_row_so_the_same_state_gives_the_same_ids(rng):
    logits = rng.standard_normal((50, V))
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    ids = lm.sample_next(logits, a, 1.3)
    np.testing.assert_array_equal(ids, lm.sample_next(logits, b, 1.3))
    c = np.random.default_rng(7)
    c.random(50)
    assert a.bit_generator.state == c.bit_generator.state  # one rng.random(N), nothing more
    # inverse CDF: the id is the first bin whose cumulative probability exceeds u
    u = np.random.default_rng(7).random(50)
    cdf = np.cumsum(lm.softmax(logits, 1.3), axis=1)
    np.testing.assert_array_equal(ids, np.argmax(cdf > u[:, None], axis=1))


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sample_next_frequencies_over_200000_draws_match_softmax_of_logits_over_temperature(rng, temperature):
    z = np.array([1.0, -0.5, 2.0, 0.0, -2.0, 0.7])
    draws = 200_000
    ids = lm.sample_next(np.tile(z, (draws, 1)), rng, temperature)
    freq = np.bincount(ids, minlength=z.size) / draws
    p = np.exp(z / temperature) / np.exp(z / temperature).sum()  # softmax(z / T), written out
    se = np.sqrt(p * (1 - p) / draws)  # binomial standard error of each frequency
    assert np.all(np.abs(freq - p) <= 5 * se), f"frequencies {freq} vs softmax(z / T) {p}, 5 s.e. = {5 * se}"


def test_sample_next_at_a_small_temperature_approaches_greedy(rng):
    logits = rng.standard_normal((2000, V))
    greedy = logits.argmax(axis=1)
    top2 = np.sort(logits, axis=1)[:, -2:]
    tiny = (top2[:, 1] - top2[:, 0]).min() / 50  # every runner-up then has probability < e^-50
    agree = {t: np.mean(lm.sample_next(logits, rng, t) == greedy) for t in (1.0, 0.3, 0.05, tiny)}
    assert agree[1.0] < agree[0.3] < agree[0.05] <= agree[tiny]
    assert agree[tiny] == 1.0


def test_sample_never_draws_an_id_of_probability_zero(rng):
    logits = np.array([[0.0, -np.inf, 0.0, -np.inf]] * 10_000)
    ids = lm.sample_next(logits, rng)
    assert set(np.unique(ids)) == {0, 2}


def test_sample_is_reproducible_and_greedy_sampling_follows_the_argmax_chain(rng):
    params = lm.init_lm_params(V, E, H, rng)
    prefix = np.array([1, 4, 2])
    a = lm.sample(params, prefix, 12, np.random.default_rng(3), temperature=0.8)
    b = lm.sample(params, prefix, 12, np.random.default_rng(3), temperature=0.8)
    assert a.shape == (12,) and a.dtype == np.int64 and (a >= 0).all() and (a < V).all()
    np.testing.assert_array_equal(a, b)
    greedy = lm.sample(params, prefix, 6, rng, temperature=0.0)
    seq = list(prefix)
    for _ in range(6):  # re-run the whole model over the growing text: the argmax of its last logits
        logits, _, _ = lm.lm_forward(np.array(seq)[:, None], np.zeros((1, H)), np.zeros((1, H)), params)
        seq.append(int(logits[-1, 0].argmax()))
    np.testing.assert_array_equal(greedy, seq[len(prefix):])


# --- validation -----------------------------------------------------------------------------

_RNG = np.random.default_rng(0)
_W = _RNG.standard_normal((V, E))
_IDS = _RNG.integers(0, V, size=(T, N))
_Z = _RNG.standard_normal((T, N, V))
_P = lm.init_lm_params(V, E, H, _RNG)
_S = np.zeros((N, H))

BAD = {
    "id out of range": (lambda: lm.embedding_forward(np.array([[0, V]]), _W), r"ids in \[0, V\) = \[0, 7\); got 7 at index \(0, 1\)"),
    "negative id": (lambda: lm.embedding_forward(np.array([[-1]]), _W), r"got -1 at index \(0, 0\)"),
    "float ids": (lambda: lm.embedding_forward(_IDS.astype(float), _W), r"ids must hold integer token ids.*float64"),
    "ids of rank 1": (lambda: lm.embedding_forward(_IDS[0], _W), r"ids must have 2 dimensions \(T, N\)"),
    "empty ids": (lambda: lm.embedding_forward(_IDS[:0], _W), r"ids must not be empty"),
    "integer table": (lambda: lm.embedding_forward(_IDS, _W.astype(int)), r"W must have dtype float32 or float64"),
    "dout of the wrong shape": (
        lambda: lm.embedding_backward(_Z, lm.embedding_forward(_IDS, _W)[1]), r"dout must have shape \(T, N, E\)"),
    "float targets": (lambda: lm.temporal_softmax_loss(_Z, _IDS.astype(np.float32)), r"targets must hold integer token ids"),
    "targets out of range": (lambda: lm.temporal_softmax_loss(_Z, _IDS + V), r"targets must hold ids in \[0, V\)"),
    "targets of another shape": (lambda: lm.temporal_softmax_loss(_Z, _IDS.T), r"targets must have shape \(T, N\) = \(3, 4\)"),
    "0/1 mask": (lambda: lm.temporal_softmax_loss(_Z, _IDS, np.ones((T, N))), r"mask must be a boolean"),
    "empty logits": (lambda: lm.temporal_softmax_loss(_Z[:0], _IDS[:0]), r"logits must not be empty"),
    "all-masked perplexity": (lambda: lm.perplexity(_Z, _IDS, np.zeros((T, N), bool)), r"counts no token"),
    "negative temperature": (lambda: lm.sample_next(_Z[0], _RNG, -0.5), r"temperature must be a finite number >= 0 .*; got -0.5"),
    "nan temperature": (lambda: lm.softmax(_Z, float("nan")), r"temperature must be a finite number"),
    "legacy RandomState": (lambda: lm.sample_next(_Z[0], np.random.RandomState(0)), r"rng must be a numpy Generator"),
    "integer seed as rng": (lambda: lm.sample(_P, np.array([1]), 5, 0), r"rng must be a numpy Generator"),
    "logits of rank 3 to sample_next": (lambda: lm.sample_next(_Z, _RNG), r"logits must have 2 dimensions \(N, V\)"),
    "empty prefix": (lambda: lm.sample(_P, np.array([], dtype=int), 5, _RNG), r"prefix_ids must not be empty"),
    "prefix out of range": (lambda: lm.sample(_P, np.array([V]), 5, _RNG), r"prefix_ids must hold ids in \[0, V\)"),
    "zero length": (lambda: lm.sample(_P, np.array([1]), 0, _RNG), r"length must be a positive integer"),
    "missing parameter": (
        lambda: lm.lm_forward(_IDS, _S, _S, {k: v for k, v in _P.items() if k != "b_y"}), r"missing \['b_y'\]"),
    "W_hy of the wrong shape": (
        lambda: lm.lm_forward(_IDS, _S, _S, {**_P, "W_hy": _P["W_hy"].T}), r"params\['W_hy'\] must have shape \(6, 7\)"),
    "dlogits of the wrong dtype": (
        lambda: lm.lm_backward(_Z.astype(np.float32), lm.lm_forward(_IDS, _S, _S, _P)[2]), r"dlogits must have dtype float64"),
    "unknown character": (lambda: lm.encode("ab", ["a"]), r"'b' at position 1"),
    "empty text": (lambda: lm.char_vocabulary(""), r"at least one character"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_a_value_error_saying_what_was_expected_and_what_came(case):
    call, message = BAD[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_every_public_function_opens_with_a_sentence_and_states_shapes():
    for name in lm.__all__:
        doc = inspect.getdoc(getattr(lm, name)) or ""
        assert doc.splitlines()[0].rstrip().endswith("."), name
        assert "(" in doc and any(s in doc for s in ("(T, N", "(V", "(L", "(N", "(...")), name
        assert getattr(lstm_ref, name) is getattr(lm, name), f"lstm_ref does not export {name}"


def test_lm_forward_in_float32_stays_float32_and_agrees_with_float64(rng):
    params = lm.init_lm_params(V, E, H, rng)
    ids = rng.integers(0, V, size=(T, N))
    zeros = np.zeros((N, H))
    logits64, _, _ = lm.lm_forward(ids, zeros, zeros, params)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    z32 = zeros.astype(np.float32)
    logits32, (h, c), cache = lm.lm_forward(ids, z32, z32, p32)
    assert logits32.dtype == h.dtype == c.dtype == np.float32
    np.testing.assert_allclose(logits32, logits64, rtol=1e-5, atol=1e-5)
    _, d = lm.temporal_softmax_loss(logits32, ids)
    assert all(g.dtype == np.float32 for g in lm.lm_backward(d, cache).values())
    assert lm.sample(p32, ids[:, 0], 4, rng).dtype == np.int64
