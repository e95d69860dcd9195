"""SPLADE pooling, regularisers, head and inference-free queries against slow, obvious twins."""
import pytest
import torch

from sparsity_core.retrieval.splade import (SpladeHead, expected_flops, flops_penalty, idf_query, l1_penalty, mean_l0,
                                            regulariser_weight, splade_pool)


def _slow_pool(logits, mask, pooling):
    B, L, V = logits.shape
    out = torch.zeros(B, V, dtype=logits.dtype)
    for b in range(B):
        for j in range(V):
            vals = [torch.log(1 + torch.clamp(logits[b, i, j], min=0)) for i in range(L) if mask[b, i]]
            if vals:
                out[b, j] = max(vals) if pooling == "max" else sum(vals)
    return out


@pytest.mark.parametrize("pooling", ["max", "sum"])
def test_pool_equals_a_loop_in_values_and_gradients(pooling):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 7, generator=g, dtype=torch.float64) * 2
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    fast, slow = splade_pool(a, mask, pooling), _slow_pool(b, mask, pooling)
    assert torch.allclose(fast, slow)
    w = torch.randn(3, 7, generator=g, dtype=torch.float64)
    (fast * w).sum().backward()
    (slow * w).sum().backward()
    assert torch.allclose(a.grad, b.grad)


def test_padding_never_leaks_into_the_pooled_vector():
    logits = torch.zeros(1, 3, 2)
    logits[0, 2] = 100.0                                                  # a padded token with huge logits
    for pooling in ("max", "sum"):
        out = splade_pool(logits, torch.tensor([[1, 1, 0]]), pooling)
        assert torch.equal(out, torch.zeros(1, 2))


def test_regularisers_by_hand():
    reps = torch.tensor([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]])
    # column means of |w|: 2, 0, 1
    assert flops_penalty(reps).item() == pytest.approx(4 + 0 + 1)
    assert l1_penalty(reps).item() == pytest.approx((3 + 3) / 2)
    assert mean_l0(reps).item() == pytest.approx(1.5)
    # FLOPS punishes a dimension shared by every row more than the same mass spread over rows
    shared = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    spread = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert l1_penalty(shared) == l1_penalty(spread) and flops_penalty(shared) > flops_penalty(spread)


def test_expected_flops_by_hand():
    q = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])                 # p_q = 1, 0, 0.5
    d = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])   # p_d = .5, .5, .25
    assert expected_flops(q, d) == pytest.approx(1 * 0.5 + 0 * 0.5 + 0.5 * 0.25)
    with pytest.raises(ValueError, match="differ in V"):
        expected_flops(q, d[:, :2])


def test_regulariser_weight_ramps_quadratically():
    assert regulariser_weight(0.8, 0, 100) == 0.0
    assert regulariser_weight(0.8, 50, 100) == pytest.approx(0.2)
    assert regulariser_weight(0.8, 100, 100) == pytest.approx(0.8)
    assert regulariser_weight(0.8, 500, 100) == pytest.approx(0.8)
    assert regulariser_weight(0.8, 3, 0) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        regulariser_weight(-1.0, 0, 10)


def test_head_is_tied_to_frozen_embeddings_and_has_the_right_shape():
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(11, 6, generator=g)
    head = SpladeHead(emb)
    states = torch.randn(2, 4, 6, generator=g)
    out = head(states)
    assert out.shape == (2, 4, 11)
    assert "embeddings" not in dict(head.named_parameters()) and not head.embeddings.requires_grad
    manual = head.norm(torch.nn.functional.gelu(head.transform(states))) @ emb.T + head.bias
    assert torch.allclose(out, manual, atol=1e-6)
    emb.add_(1.0)                                                         # the head holds a copy
    assert torch.allclose(head(states), out)
    with pytest.raises(ValueError, match="states"):
        head(torch.randn(2, 4, 5))


def test_idf_query_weights_each_present_token_once():
    idf = torch.tensor([0.5, -1.0, 2.0, 3.0, 1.0])
    ids = torch.tensor([[2, 2, 1, 0], [3, 4, 4, 4]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])                      # id 0 only in padding; 4 real and padded
    out = idf_query(ids, mask, idf, ignore=(3,))
    expected = torch.tensor([[0.0, 0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])
    assert torch.equal(out, expected)
    with pytest.raises(ValueError, match="lie in"):
        idf_query(torch.tensor([[5]]), torch.tensor([[1]]), idf)


def test_bad_input():
    with pytest.raises(ValueError, match="pooling"):
        splade_pool(torch.zeros(1, 2, 3), torch.ones(1, 2), "mean")
    with pytest.raises(ValueError, match="attention_mask"):
        splade_pool(torch.zeros(1, 2, 3), torch.ones(2, 2))
    with pytest.raises(ValueError, match="non-empty"):
        flops_penalty(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="embeddings"):
        SpladeHead(torch.zeros(0, 4))


def test_in_batch_loss_equals_the_formula():
    from sparsity_core.retrieval.splade import in_batch_loss
    g = torch.Generator().manual_seed(2)
    q, d = torch.rand(4, 6, generator=g, dtype=torch.float64), torch.rand(4, 6, generator=g, dtype=torch.float64)
    slow = torch.stack([-(q[b] @ d[b]) + torch.logsumexp(torch.stack([q[b] @ d[c] for c in range(4)]), 0)
                        for b in range(4)]).mean()
    assert torch.allclose(in_batch_loss(q, d), slow)
    with pytest.raises(ValueError, match="both be"):
        in_batch_loss(q, d[:3])
