"""Hash routing (roller2021hash): deterministic, balanced on a skewed frequency table."""
import pytest
import torch

from sparsity_core.moe import HashRouter, balanced_hash_table, expert_counts, random_hash_table

pytestmark = pytest.mark.usefixtures("one_thread")


def _zipf(V, s=1.0):
    return 1.0 / torch.arange(1, V + 1, dtype=torch.float64) ** s


def _max_over_mean(table, freqs, E):
    load = torch.bincount(table, weights=freqs, minlength=E)
    return float(load.max() / load.mean())


def test_random_hash_is_deterministic_per_generator_and_even_in_ids():
    a = random_hash_table(50, 8, torch.Generator().manual_seed(0))
    b = random_hash_table(50, 8, torch.Generator().manual_seed(0))
    c = random_hash_table(50, 8, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    counts = torch.bincount(a, minlength=8)
    assert counts.min() == 6 and counts.max() == 7                 # 50 = 8 * 6 + 2


def test_hash_router_routes_by_the_table_with_weight_one():
    router = HashRouter.random(20, 4, torch.Generator().manual_seed(0))
    ids = torch.tensor([3, 7, 3, 19, 0])
    x = torch.randn(5, 6)
    out = router(x, token_ids=ids)
    assert out.experts[:, 0].tolist() == router.table[ids].tolist()
    assert out.experts[0] == out.experts[2]                        # same id, same expert
    assert (out.weights == 1).all() and out.logits is None
    assert torch.equal(router(x, token_ids=ids).experts, out.experts)   # no randomness at call
    assert expert_counts(out).sum() == 5


def test_balanced_hash_evens_out_a_skewed_frequency_table():
    V, E = 1000, 8
    freqs = _zipf(V)
    table = balanced_hash_table(freqs, E)
    balanced = _max_over_mean(table, freqs, E)
    random = _max_over_mean(random_hash_table(V, E, torch.Generator().manual_seed(0)), freqs, E)
    # greedy list scheduling: max load <= mean + largest frequency; the most frequent id alone
    # holds 13.4 % of the mass against a mean of 12.5 %, so max/mean >= 8 / H_1000 = 1.0687 for any table
    load = torch.bincount(table, weights=freqs, minlength=E)
    assert load.max() <= load.mean() + freqs.max() + 1e-12
    assert 1.0687 <= balanced < 1.1 and balanced < random


def test_balanced_hash_is_exact_on_a_hand_worked_table():
    # ids by frequency: 0 (5) -> e0, 2 (4) -> e1, 1 (3) -> e1 (4 < 5), 3 (1) -> e0 (5 < 7)
    table = balanced_hash_table(torch.tensor([5.0, 3.0, 4.0, 1.0]), 2)
    assert table.tolist() == [0, 1, 1, 0]
    # ids of zero frequency are spread over the experts, not piled on one
    assert torch.bincount(balanced_hash_table(torch.zeros(6), 3)).tolist() == [2, 2, 2]


def test_hash_router_rejects_bad_token_ids():
    router = HashRouter.balanced(torch.ones(10), 2)
    x = torch.randn(3, 4)
    with pytest.raises(TypeError, match="token_ids must be an integer"):
        router(x, token_ids=torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="token_ids must be an integer"):
        router(x, token_ids=torch.tensor([True, False, True]))
    with pytest.raises(TypeError, match="token_ids must be an integer"):
        router(x, token_ids=[0, 1, 2])
    with pytest.raises(ValueError, match="needs token_ids"):
        router(x)
    with pytest.raises(ValueError, match="shape"):
        router(x, token_ids=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        router(x, token_ids=torch.tensor([0, 1, 10]))


@pytest.mark.parametrize("freqs", [torch.tensor([1.0, -1.0]), torch.tensor([1.0, float("nan")]),
                                   torch.zeros(0), torch.ones(2, 2)])
def test_balanced_hash_rejects_bad_frequencies(freqs):
    with pytest.raises(ValueError, match="frequencies"):
        balanced_hash_table(freqs, 2)


def test_hash_router_rejects_a_bad_table():
    with pytest.raises(ValueError, match="table entries"):
        HashRouter(torch.tensor([0, 2]), 2)
    with pytest.raises(ValueError, match="integer"):
        HashRouter(torch.tensor([0.0, 1.0]), 2)
