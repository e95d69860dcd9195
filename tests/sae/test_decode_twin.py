"""``SAE.decode_sparse`` (an ``embedding_bag`` gather of the k active decoder columns) against
its dense twin ``decode`` (``f @ W_dec.T + b_dec``): outputs *and* gradients, in float64."""
import pytest
import torch
from torch import nn

from sparsity_core import sae as S

pytestmark = pytest.mark.usefixtures("one_thread")

D, N, K, B = 6, 20, 4, 7


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _model(seed=0, *, raw_decoder_grad=False):
    m = S.TopKSAE(D, N, k=K, generator=_gen(seed)).double()
    with torch.no_grad():
        m.b_dec.copy_(torch.randn(D, generator=_gen(seed + 100), dtype=torch.float64))
        m.b_enc.copy_(torch.randn(N, generator=_gen(seed + 200), dtype=torch.float64) - 2.0)
    if raw_decoder_grad:
        # a fresh Parameter carries no unit-norm projection hook: the plain gradient of W_dec
        m.W_dec = nn.Parameter(m.W_dec.detach().clone())
    return m


def _scalar_loss(x_hat, seed=7):
    # not linear in x_hat, so the upstream gradient differs from row to row
    r = torch.randn(x_hat.shape, generator=_gen(seed), dtype=torch.float64)
    return (r * x_hat).sum() + 0.5 * x_hat.pow(2).sum()


def _grads(m, loss, extra=()):
    params = [m.W_enc, m.b_enc, m.W_dec, m.b_dec]
    return torch.autograd.grad(loss, params + list(extra), allow_unused=True)


@pytest.mark.parametrize("raw", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_sparse_and_dense_decode_have_the_same_gradients_through_the_topk_code(seed, raw):
    # end to end: x -> pre-activations -> ReLU(TopK) -> decode, sparse vs dense; the gradients of
    # the encoder and decoder parameters must match (raw: without the decoder's projection hook)
    x = torch.randn(B, D, generator=_gen(seed + 1), dtype=torch.float64)
    m = _model(seed, raw_decoder_grad=raw)
    pre = m.pre_acts(x)
    vals, idx = pre.topk(K, dim=1)
    vals = torch.relu(vals)
    assert (vals == 0).any() and (vals > 0).any()          # the ReLU cuts some of the top k
    sparse = m.decode_sparse(idx, vals)
    dense = m.decode(m.encode(x))
    torch.testing.assert_close(sparse, dense, rtol=1e-12, atol=1e-12)
    g_sparse = _grads(m, _scalar_loss(sparse))
    g_dense = _grads(m, _scalar_loss(dense))
    for name, a, b in zip(["W_enc", "b_enc", "W_dec", "b_dec"], g_sparse, g_dense):
        assert a is not None and b is not None, name
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12), name
        assert a.abs().sum() > 0, name


@pytest.mark.parametrize("raw", [False, True])
def test_gradients_with_respect_to_the_latent_values_and_duplicate_indices(raw):
    # any (idx, vals), indices repeated within a row: x_hat_b = sum_j v_bj d_{i_bj} + b_dec,
    # so the dense twin adds repeated indices up (scatter_add) and dL/dv_bj = <dL/dx_hat_b, d_{i_bj}>
    m = _model(3, raw_decoder_grad=raw)
    idx = torch.randint(N, (B, K), generator=_gen(4))
    idx[0, 1] = idx[0, 0]                                     # a repeated index for sure
    vals_s = torch.randn(B, K, generator=_gen(5), dtype=torch.float64).requires_grad_()
    vals_d = vals_s.detach().clone().requires_grad_()
    sparse = m.decode_sparse(idx, vals_s)
    f = torch.zeros(B, N, dtype=torch.float64).scatter_add(1, idx, vals_d)
    dense = m.decode(f)
    torch.testing.assert_close(sparse, dense, rtol=1e-12, atol=1e-12)
    ls, ld = _scalar_loss(sparse), _scalar_loss(dense)
    *_, gW_s, gb_s, gv_s = _grads(m, ls, [vals_s])
    *_, gW_d, gb_d, gv_d = _grads(m, ld, [vals_d])
    for name, a, b in [("W_dec", gW_s, gW_d), ("b_dec", gb_s, gb_d), ("vals", gv_s, gv_d)]:
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12), name
    # the latent-value gradient in closed form, from the plain formula
    upstream = torch.randn(sparse.shape, generator=_gen(7), dtype=torch.float64) + dense.detach()
    expected = torch.einsum("bd,dbk->bk", upstream, m.W_dec.detach()[:, idx])
    assert torch.allclose(gv_s, expected, rtol=1e-12, atol=1e-12)


def test_the_comparison_sees_a_wrong_gather():
    # guard: decoding with the wrong columns (indices shifted by one) is told apart
    m = _model(0)
    idx = torch.randint(N - 1, (B, K), generator=_gen(4))
    vals = torch.rand(B, K, generator=_gen(5), dtype=torch.float64)
    f = torch.zeros(B, N, dtype=torch.float64).scatter_add(1, idx + 1, vals)
    assert not torch.allclose(m.decode_sparse(idx, vals), m.decode(f), rtol=1e-6, atol=1e-6)
