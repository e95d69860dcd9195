import math

import numpy as np
import pytest
import torch

from sparsity_core.ngram import KneserNeyBigramLM, UnigramLM, scored_positions
from sparsity_core.pretrained import perplexity

# a b a c a b : bigrams ab ba ac ca ab -> c(ab)=2, c(ba)=1, c(ac)=1, c(ca)=1
A, B, C, UNSEEN = 0, 1, 2, 3
TOY = [A, B, A, C, A, B]


def test_unigram_is_add_one():
    lm = UnigramLM.fit(TOY, 4)
    assert lm.prob(np.array([A, B, C, UNSEEN])).tolist() == pytest.approx([4 / 10, 3 / 10, 2 / 10, 1 / 10], abs=1e-15)


def test_kneser_ney_by_hand():
    lm = KneserNeyBigramLM.fit(TOY, 4)
    # bigram types seen once: ba, ac, ca (n1 = 3); twice: ab (n2 = 1) -> D = 3 / 5
    D = 3 / 5
    assert lm.discount == pytest.approx(D, abs=1e-15)
    # continuation: distinct words before a: {b, c} = 2, before b: {a} = 1, before c: {a} = 1;
    # 4 bigram types, 3 distinct continuations, V = 4
    cont = {w: max(n - D, 0) / 4 + D * 3 / 4 / 4 for w, n in [(A, 2), (B, 1), (C, 1), (UNSEEN, 0)]}
    assert sum(cont.values()) == pytest.approx(1.0, abs=1e-15)
    # context a: c(a) = 3 (ab twice, ac once), 2 distinct followers
    for w, c_aw in [(A, 0), (B, 2), (C, 1), (UNSEEN, 0)]:
        want = max(c_aw - D, 0) / 3 + D * 2 / 3 * cont[w]
        assert lm.prob(np.array([A]), np.array([w]))[0] == pytest.approx(want, abs=1e-15)
    # context "unseen" never occurs as a context: the continuation distribution
    for w in (A, B, C, UNSEEN):
        assert lm.prob(np.array([UNSEEN]), np.array([w]))[0] == pytest.approx(cont[w], abs=1e-15)


@pytest.mark.parametrize("seed", range(3))
def test_every_conditional_sums_to_one(seed):
    rng = np.random.default_rng(seed)
    V = 50
    p = 1 / np.arange(1, V + 1)
    ids = rng.choice(V - 5, 400, p=p[:V - 5] / p[:V - 5].sum())     # 5 ids never seen
    lm = KneserNeyBigramLM.fit(ids, V)
    prev, words = np.repeat(np.arange(V), V), np.tile(np.arange(V), V)
    P = lm.prob(prev, words).reshape(V, V)
    assert (P > 0).all()
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert lm.continuation.sum() == pytest.approx(1.0, abs=1e-12)


def test_scored_positions_match_the_blockwise_perplexity():
    # the slow twin: the bigram as a "model" whose logits are log P(. | previous token), scored by
    # the book's blockwise perplexity, gives the same number over the same positions
    rng = np.random.default_rng(0)
    V, S = 30, 8
    train, held = rng.integers(0, V, 500), rng.integers(0, V, 61)     # 61 tokens: 7 full blocks of 8
    lm = KneserNeyBigramLM.fit(train, V)
    table = torch.tensor(np.log(lm.prob(np.repeat(np.arange(V), V), np.tile(np.arange(V), V)).reshape(V, V)))

    def model(x):                        # (B, S) ids -> (B, S, V): position t predicts t + 1
        return table[x]

    ref = perplexity(model, torch.tensor(held), block_size=S, batch_size=3, logits_fn=lambda m, x: m(x))
    assert lm.perplexity(held, block_size=S) == pytest.approx(ref, rel=1e-9)
    uni = UnigramLM.fit(train, V)
    t = scored_positions(61, S)
    assert t.size == 7 * (S - 1) and t.min() == 1 and (t % S != 0).all()
    assert uni.perplexity(held, block_size=S) == pytest.approx(math.exp(-np.log(uni.prob(held[t])).mean()))


def test_perplexity_of_a_deterministic_cycle_falls_below_the_unigram():
    ids = np.concatenate([np.tile(np.arange(10), 50), [0, 5, 0, 9]])    # a few bigrams seen once
    held = np.tile(np.arange(10), 5)
    assert KneserNeyBigramLM.fit(ids, 10).perplexity(held) < 1.5 < UnigramLM.fit(ids, 10).perplexity(held)


@pytest.mark.parametrize("bad, error", [
    (lambda: UnigramLM.fit([], 4), ValueError),
    (lambda: UnigramLM.fit([0, 4], 4), ValueError),
    (lambda: UnigramLM.fit([[0, 1]], 4), ValueError),
    (lambda: UnigramLM.fit([0.5, 1.0], 4), ValueError),
    (lambda: UnigramLM.fit([0, 1], 0), ValueError),
    (lambda: KneserNeyBigramLM.fit([0, 0, 0, 0, 0, 0], 2), ValueError),      # one bigram type, seen 5 times
    (lambda: KneserNeyBigramLM.fit(TOY, 4).perplexity([0]), ValueError),
    (lambda: KneserNeyBigramLM.fit(TOY, 4).perplexity(TOY, block_size=1), ValueError),
    (lambda: scored_positions(10, True), TypeError),
    (lambda: UnigramLM.fit(TOY, 4).prob(np.array([-1])), ValueError),           # would wrap around silently
    (lambda: UnigramLM.fit(TOY, 4).prob(np.array([4])), ValueError),
    (lambda: KneserNeyBigramLM.fit(TOY, 4).prob(np.array([-1]), np.array([0])), ValueError),
    (lambda: KneserNeyBigramLM.fit(TOY, 4).prob(np.array([0]), np.array([0.5])), ValueError),
    (lambda: KneserNeyBigramLM.fit(TOY, 4).prob(np.array([0, 1]), np.array([0])), ValueError),
])
def test_bad_input(bad, error):
    with pytest.raises(error):
        bad()
