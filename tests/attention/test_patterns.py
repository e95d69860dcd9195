"""Attention patterns: exact entry counts from their closed forms, reachability, block masks."""
import pytest
import torch

from sparsity_core.attention import (a_shape_count, a_shape_mask, bigbird_block_count, bigbird_block_mask,
                                     block_topk_mask, blocks_of, causal_mask, density, expand_blocks, fixed_count,
                                     fixed_heads, fixed_mask, local_mask, strided_count, strided_heads,
                                     strided_mask, two_hop_reachable, vertical_slash_mask)
from sparsity_core.attention.patterns import diameter, hop_distance


def _brute(n, keep):
    return torch.tensor([[bool(keep(i, j)) for j in range(n)] for i in range(n)])


# the targets' table (n, l, c): dense, strided, fixed entries, computed from the definitions
@pytest.mark.parametrize("n,l,c,dense,strided,fixed", [(1024, 32, 4, 524_800, 48_144, 80_384),
                                                        (4096, 64, 4, 8_390_656, 389_152, 649_216)])
def test_sparse_transformer_counts_match_the_targets_table(n, l, c, dense, strided, fixed):
    assert int(causal_mask(n).sum()) == dense == n * (n + 1) // 2
    assert int(strided_mask(n, l).sum()) == strided_count(n, l) == strided
    assert int(fixed_mask(n, l, c).sum()) == fixed_count(n, l, c) == fixed


def test_fixed_with_c_proportional_to_l_is_quadratic():
    # the targets' warning: c = 8 at n = 4096, l = 64 gives 1,165,312 entries
    assert fixed_count(4096, 64, 8) == 1_165_312 == int(fixed_mask(4096, 64, 8).sum())


@pytest.mark.parametrize("n,l,c", [(1, 1, 1), (7, 3, 2), (10, 4, 4), (33, 5, 1), (64, 8, 3)])
def test_heads_follow_their_definitions_and_counts_their_closed_forms(n, l, c):
    s1, s2 = strided_heads(n, l)
    assert torch.equal(s1, _brute(n, lambda i, j: max(0, i - l) <= j <= i))
    assert torch.equal(s2, _brute(n, lambda i, j: j <= i and (i - j) % l == 0))
    f1, f2 = fixed_heads(n, l, c)
    assert torch.equal(f1, _brute(n, lambda i, j: j <= i and j // l == i // l))
    assert torch.equal(f2, _brute(n, lambda i, j: j <= i and j % l in range(l - c, l)))
    assert int((s1 | s2).sum()) == strided_count(n, l)
    assert int((f1 | f2).sum()) == fixed_count(n, l, c)


@pytest.mark.parametrize("n,l,c", [(256, 16, 2), (1024, 32, 4)])
def test_both_patterns_connect_every_causal_pair_in_two_steps(n, l, c):
    causal = causal_mask(n)
    for a1, a2 in (strided_heads(n, l), fixed_heads(n, l, c)):
        reach = two_hop_reachable(a1, a2)
        assert torch.equal(reach & causal, causal) and not (reach & ~causal).any()
    # the 1-hop terms matter: A2 after A1 alone misses pairs inside a block of the fixed pattern
    f1, f2 = fixed_heads(n, l, c)
    assert not torch.equal(((f2.float() @ f1.float()) > 0) & causal, causal)


def test_strided_and_fixed_grow_as_n_to_the_1_5():
    # l = sqrt(n), c constant: count / n^1.5 settles near a constant (1.5 for strided, c/2 + 1/2 for fixed)
    ratios_s = [strided_count(n, int(n ** 0.5)) / n ** 1.5 for n in (256, 1024, 4096, 16384)]
    ratios_f = [fixed_count(n, int(n ** 0.5), 4) / n ** 1.5 for n in (256, 1024, 4096, 16384)]
    assert max(ratios_s) / min(ratios_s) < 1.1 and abs(ratios_s[-1] - 1.5) < 0.05
    assert max(ratios_f) / min(ratios_f) < 1.15 and abs(ratios_f[-1] - 2.5) < 0.1


def test_bigbird_block_mask_has_global_blocks_windows_and_random_blocks():
    g = torch.Generator().manual_seed(0)
    nb, r = 12, 3
    m = bigbird_block_mask(nb, r, generator=g)
    assert m[0].all() and m[-1].all() and m[:, 0].all() and m[:, -1].all()
    for q in range(1, nb - 1):
        assert m[q, q - 1:q + 2].all()
        randoms = [b for b in range(1, nb - 1) if abs(b - q) > 1 and m[q, b]]
        assert len(randoms) == r
    assert int(m.sum()) == bigbird_block_count(nb, r)
    assert torch.equal(m, bigbird_block_mask(nb, r, generator=torch.Generator().manual_seed(0)))
    # without random blocks, the diameter of the block graph is 2: every block reaches every block via block 0
    w = bigbird_block_mask(nb, 0)
    two = (w.float() @ w.float()) > 0
    assert two.all() and not w.all()
    # few middle blocks: every candidate is taken
    assert bigbird_block_mask(5, 10, generator=g).all()


def test_a_shape_and_vertical_slash_masks():
    n, s, w = 40, 3, 7
    m = a_shape_mask(n, s, w)
    assert torch.equal(m, _brute(n, lambda i, j: j <= i and (j < s or i - j < w)))
    assert int(m.sum()) == a_shape_count(n, s, w)
    assert int(a_shape_mask(n, 0, n).sum()) == n * (n + 1) // 2
    vs = vertical_slash_mask(n, [0, 5], [0, 3])
    assert torch.equal(vs, _brute(n, lambda i, j: j <= i and (j in (0, 5) or i - j in (0, 3))))
    assert torch.equal(local_mask(n, 3), vertical_slash_mask(n, [], [0, 1, 2]))
    with pytest.raises(ValueError):
        vertical_slash_mask(n, [n], [0])


def test_block_topk_and_block_conversions():
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.3, 0.0], [0.2, 0.8, 0.7]])
    top = block_topk_mask(scores, 2)
    assert top.tolist() == [[False, True, True], [True, True, False], [False, True, True]]
    causal = block_topk_mask(scores, 2, causal=True)
    assert causal.tolist() == [[True, False, False], [True, True, False], [False, True, True]]
    tokens = expand_blocks(causal, 4, n=10)
    assert tokens.shape == (10, 10) and tokens[0, :4].all() and not tokens[0, 4:].any()
    assert torch.equal(blocks_of(tokens, 4), causal)
    assert torch.equal(blocks_of(causal_mask(9), 4), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    assert density(causal_mask(9)) == 1.0 and density(local_mask(9, 1)) == pytest.approx(9 / 45)


def test_bad_input():
    with pytest.raises(ValueError):
        strided_mask(0, 2)
    with pytest.raises(ValueError):
        fixed_mask(8, 4, 5)                      # c > l
    with pytest.raises(ValueError):
        bigbird_block_mask(2)
    with pytest.raises(ValueError):
        bigbird_block_count(6, 3)                # needs n_blocks >= num_rand + 5
    with pytest.raises(ValueError):
        block_topk_mask(torch.zeros(2, 2), 3)
    with pytest.raises(ValueError):
        block_topk_mask(torch.zeros(2, 2, dtype=torch.long), 1)
    with pytest.raises(ValueError):
        expand_blocks(torch.ones(2, 2, dtype=torch.bool), 2, n=5)
    with pytest.raises(ValueError):
        two_hop_reachable(causal_mask(3), causal_mask(4))


def test_diameter_of_window_global_and_random_block_graphs():
    # zaheer2020big's graph argument on 64 blocks: a window of 3 blocks needs nb - 1 hops,
    # one global block makes any two blocks 2 hops apart
    nb = 64
    window = local_mask(nb, 2) | local_mask(nb, 2).T                 # blocks q-1, q, q+1
    assert diameter(window) == nb - 1
    glob = window.clone()
    glob[0, :] = glob[:, 0] = True
    assert diameter(glob) == 2
    full = torch.ones(nb, nb, dtype=torch.bool)
    assert diameter(full) == 1
    rnd = bigbird_block_mask(nb, 3, generator=torch.Generator().manual_seed(0))
    assert diameter(rnd) <= 2                                         # BigBird keeps its globals
    assert diameter(torch.eye(4, dtype=torch.bool)) == float("inf")


def test_diameter_causal_counts_only_forward_pairs():
    n = 10
    assert diameter(local_mask(n, 2), causal=True) == n - 1           # i-1 -> i, one step at a time
    assert diameter(causal_mask(n), causal=True) == 1
    with pytest.raises(ValueError):
        diameter(torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError):
        diameter(torch.ones(3, 3))


def _hops_by_matrix_powers(mask):
    # the slow twin: reach after L layers is the boolean L-th power of (I | mask)
    n = mask.shape[0]
    step = (mask | torch.eye(n, dtype=torch.bool)).double()
    dist = torch.full((n, n), float("inf"), dtype=torch.float64)
    reach = torch.eye(n, dtype=torch.float64)
    for hops in range(n):
        dist[(reach > 0) & torch.isinf(dist)] = hops
        reach = ((step @ reach) > 0).double()
    return dist


@pytest.mark.parametrize("mask", [
    local_mask(9, 3), strided_mask(12, 3), fixed_mask(12, 4, 1),
    expand_blocks(bigbird_block_mask(6, 1, generator=torch.Generator().manual_seed(1)), 2),
    torch.rand(11, 11, generator=torch.Generator().manual_seed(2)) < 0.15,
])
def test_hop_distance_equals_boolean_matrix_powers(mask):
    dist = hop_distance(mask)
    assert dist.shape == mask.shape
    assert torch.equal(dist, _hops_by_matrix_powers(mask))


def test_hop_distance_direction_follows_the_information():
    # query 1 attends key 0 only: key 0 reaches query 1 in one step, not the reverse
    mask = torch.eye(3, dtype=torch.bool)
    mask[1, 0] = mask[2, 1] = True
    dist = hop_distance(mask)
    assert dist[1, 0] == 1 and dist[2, 0] == 2 and dist[2, 1] == 1
    assert torch.isinf(dist[0, 1]) and torch.isinf(dist[0, 2])
    with pytest.raises(ValueError):
        hop_distance(torch.ones(2, 3, dtype=torch.bool))
