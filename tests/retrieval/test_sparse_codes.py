"""CSR: the step loss is the SAE's loss plus gamma times the in-batch loss of the pairs' codes
(statistics counted once), training with gamma > 0 lowers the contrastive loss that gamma = 0
leaves alone, and the overlap cost by hand."""
import pytest
import torch

from sparsity_core.retrieval.sparse_codes import csr_step_loss, overlap_cost, train_csr
from sparsity_core.retrieval.splade import in_batch_loss
from sparsity_core.sae import TopKSAE


def _sae(seed=0, d=8, n=32, k=4):
    return TopKSAE.multi_topk(d, n, k=k, aux_k=8, generator=torch.Generator().manual_seed(seed))


def test_step_loss_is_sae_loss_plus_weighted_contrastive():
    g = torch.Generator().manual_seed(1)
    corpus, q, p = torch.randn(6, 8, generator=g), torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)
    a, b = _sae(), _sae()
    loss0, logs0 = csr_step_loss(a, (corpus, q, p), gamma=0.0)
    loss2, logs2 = csr_step_loss(b, (corpus, q, p), gamma=2.0)
    ref = _sae().loss(torch.cat([corpus, q, p]))
    f = _sae().encode_train(torch.cat([corpus, q, p]))[1]
    expect_contrastive = in_batch_loss(f[6:9], f[9:12])
    assert torch.allclose(loss0, ref.loss)
    assert torch.allclose(loss2, ref.loss + 2.0 * expect_contrastive)
    assert logs2["contrastive"] == pytest.approx(float(expect_contrastive.detach()))
    assert int(a.step) == int(b.step) == 1                           # statistics counted once per step
    assert int(a.tokens_since_fired.max()) <= 12


def test_gamma_trains_the_codes_to_rank_the_pairs():
    g = torch.Generator().manual_seed(2)
    base = torch.randn(200, 8, generator=g)
    queries = base[:100] + 0.8 * torch.randn(100, 8, generator=g)        # each query near its positive
    positives = base[:100]

    def final_contrastive(gamma):
        sae = _sae(seed=3)
        train_csr(sae, base, queries, positives, steps=150, batch_size=64, pair_batch=50, gamma=gamma, lr=3e-3,
                  generator=torch.Generator().manual_seed(4), progress=False)
        with torch.no_grad():
            return float(in_batch_loss(sae.encode(queries), sae.encode(positives)))

    assert final_contrastive(1.0) < final_contrastive(0.0) - 0.1


def test_overlap_cost_by_hand():
    fq = torch.tensor([[1.0, 0, 2, 0], [0, 0, 0, 3]])
    fd = torch.tensor([[0.5, 1, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1.0]])
    assert overlap_cost(fq, fd).tolist() == [[2, 0, 2], [0, 0, 1]]


def test_bad_input():
    sae = _sae()
    x = torch.randn(10, 8)
    with pytest.raises(ValueError, match="one shape"):
        train_csr(sae, x, x[:4], x[:5], steps=1, generator=torch.Generator())
    with pytest.raises(ValueError):
        train_csr(sae, x, x[:4], x[:4], steps=1, pair_batch=1, generator=torch.Generator())
    with pytest.raises(TypeError):
        train_csr(object(), x, x, x, steps=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="d_in"):
        train_csr(sae, torch.randn(10, 7), x, x, steps=1, generator=torch.Generator())
    with pytest.raises(ValueError):
        overlap_cost(torch.ones(2, 3), torch.ones(2, 4))
