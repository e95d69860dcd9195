r"""SAEs that fix the sparsity by selection: TopK (with AuxK and nested-k terms), BatchTopK,
and the Matryoshka SAE built on BatchTopK.

======================  ================================================  =====================================
class                   :math:`\sigma` and loss                           paper
======================  ================================================  =====================================
:class:`TopKSAE`        ReLU(TopK_k); + AuxK; nested-k (Multi-TopK,       gao2024scaling Sec. 2.3, A.2;
                        Matryoshka-k) terms                               zaigrajew2025interpreting (E1, E6 ii)
:class:`BatchTopKSAE`   top ``B k`` of the batch; threshold at inference  bussmann2024batchtopk (E5)
:class:`MatryoshkaSAE`  BatchTopK; every prefix reconstructs x            bussmann2025learning (E6 i)
======================  ================================================  =====================================

Reference code read (not copied): ``openai/sparse_autoencoder`` ``model.py``;
``saprmarks/dictionary_learning`` ``trainers/{top_k,batch_top_k,matryoshka_batch_top_k}.py``;
``WolodjaZ/MSAE`` ``sae.py``.

Taught in: Chapter 7, "Sparse autoencoders".
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from .. import checks
from .activations import batch_topk, check_k, topk_relu
from .base import AUXK_COEF, SAE, SAEOutput, squared_error

__all__ = ["TopKSAE", "BatchTopKSAE", "MatryoshkaSAE", "MULTI_TOPK_FACTOR", "MULTI_TOPK_WEIGHT"]

#: gao2024scaling, Sec. A.2 / Multi-TopK: L(k) + L(4k) / 8.
MULTI_TOPK_FACTOR, MULTI_TOPK_WEIGHT = 4, 1 / 8


class TopKSAE(SAE):
    r"""TopK SAE with AuxK (gao2024scaling; targets E1).

    :math:`f = \mathrm{ReLU}(\mathrm{TopK}_k(\pi))`. Loss: :math:`\sum_j w_j \lVert x -
    \hat x^{(k_j)}\rVert^2 + \alpha\,\mathrm{NMSE}(e, \hat e)`, where :math:`\hat x^{(k_j)}`
    decodes the top-:math:`k_j` code (``nested_k = {k_j: w_j}``; default ``{k: 1}``; Multi-TopK,
    Gao's Sec. 5.3, is ``{k: 1, 4k: 1/8}`` via :meth:`multi_topk`; the nested-k Matryoshka
    SAE of zaigrajew2025interpreting is ``{k_1: 1/M, ..., k_M: 1/M}``). AuxK
    (:meth:`~.base.SAE.aux_loss`) models the residual :math:`e = x - \hat x` (stop-gradient)
    with the top ``aux_k`` dead latents.

    Args:
        k: latents per token at inference, ``1 <= k <= n``.
        aux_k: dead latents AuxK may use (0 turns AuxK off; Gao's code: 256, the paper: 512,
            ``dictionary_learning``: ``d/2``).
        aux_coeff: :math:`\alpha` (Gao: 1/32).
        nested_k: ``{k_j: w_j}`` reconstruction terms (see above).
    """

    kind = "topk"

    def __init__(self, d_in: int, n_latents: int, *, k: int, aux_k: int = 0, aux_coeff: float = AUXK_COEF,
                 nested_k: Mapping[int, float] | None = None, **kw):
        super().__init__(d_in, n_latents, **kw)
        self.k = check_k(k, self.n_latents)
        self._init_auxk(aux_k, aux_coeff)
        nested = {self.k: 1.0} if nested_k is None else dict(nested_k)
        if not nested:
            raise ValueError("nested_k must name at least one k")
        self.nested_k = {check_k(kk, self.n_latents, "nested_k key"): checks.nonnegative(w, "nested_k weight")
                         for kk, w in sorted(nested.items())}

    @classmethod
    def multi_topk(cls, d_in: int, n_latents: int, *, k: int, **kw) -> "TopKSAE":
        """Multi-TopK (gao2024scaling): loss L(k) + L(4k)/8, so codes stay usable above ``k``."""
        big = min(MULTI_TOPK_FACTOR * k, n_latents)
        return cls(d_in, n_latents, k=k, nested_k={k: 1.0, big: MULTI_TOPK_WEIGHT}, **kw)

    def activate(self, pre: Tensor, k: int | None = None) -> Tensor:
        return topk_relu(pre, self.k if k is None else k)

    def encode(self, x: Tensor, k: int | None = None) -> Tensor:
        """The code with ``k`` latents (default: the trained ``k``; any ``k' <= n`` at test time)."""
        return self.activate(self.pre_acts(x), k)

    def loss_terms(self, x: Tensor, pre: Tensor, f: Tensor) -> SAEOutput:
        total = 0.0
        x_hat = self.decode(f)
        mse = squared_error(x, x_hat)
        for kk, w in self.nested_k.items():
            err = mse if kk == self.k else squared_error(x, self.decode(topk_relu(pre, kk)))
            total = total + w * err
        aux = self.aux_loss(pre, (x - x_hat).detach())
        return self._output(total + self.aux_coeff * aux, x_hat, f, mse=mse, aux=aux)


class BatchTopKSAE(SAE):
    r"""BatchTopK (bussmann2024batchtopk; targets E5): training keeps the ``B k`` largest
    :math:`\mathrm{ReLU}(\pi)` of the batch; inference uses :math:`f = \mathrm{ReLU}(\pi)\,
    1[\pi > \theta]` with :math:`\theta` an EMA of the smallest kept activation,
    :math:`\theta \leftarrow \beta\theta + (1-\beta)\min`, updated from ``threshold_start``
    on (the reference: :math:`\beta = 0.999`, step 1000). Until :math:`\theta` is set,
    inference falls back to the batch rule. Loss: squared error + AuxK as in :class:`TopKSAE`.

    Args:
        k: mean latents per token.
        aux_k, aux_coeff: as :class:`TopKSAE`.
        threshold_beta, threshold_start: the threshold's EMA factor and first step.
    """

    kind = "batchtopk"

    def __init__(self, d_in: int, n_latents: int, *, k: int, aux_k: int = 0, aux_coeff: float = AUXK_COEF,
                 threshold_beta: float = 0.999, threshold_start: int = 1000, **kw):
        super().__init__(d_in, n_latents, **kw)
        self.k = check_k(k, self.n_latents)
        self._init_auxk(aux_k, aux_coeff)
        self.threshold_beta = checks.fraction(threshold_beta, "threshold_beta", closed_high=False)
        self.threshold_start = checks.integer(threshold_start, "threshold_start", lo=0)
        self.register_buffer("threshold", torch.tensor(-1.0))

    def activate(self, pre: Tensor) -> Tensor:
        if self.training or self.threshold < 0:
            return batch_topk(pre, self.k)
        post = torch.relu(pre)
        return post * (post > self.threshold)

    def encode_train(self, x: Tensor) -> tuple[Tensor, Tensor]:
        pre = self.pre_acts(x)
        return pre, batch_topk(pre, self.k)

    def _update_variant_stats(self, f: Tensor) -> None:
        """The inference threshold: an EMA of the smallest kept activation, from ``threshold_start``."""
        if int(self.step) >= self.threshold_start:
            pos = f[f > 0]
            low = pos.min() if pos.numel() else f.new_zeros(())
            if self.threshold < 0:
                self.threshold.copy_(low)
            else:
                self.threshold.mul_(self.threshold_beta).add_((1 - self.threshold_beta) * low)

    def reconstruction(self, x: Tensor, f: Tensor) -> tuple[Tensor, Tensor]:
        """``(loss, x_hat (B, d))``: the reconstruction term of the loss and the full decode."""
        x_hat = self.decode(f)
        return squared_error(x, x_hat), x_hat

    def loss_terms(self, x: Tensor, pre: Tensor, f: Tensor) -> SAEOutput:
        rec, x_hat = self.reconstruction(x, f)
        aux = self.aux_loss(pre, (x - x_hat).detach())
        return self._output(rec + self.aux_coeff * aux, x_hat, f, mse=squared_error(x, x_hat), aux=aux)


class MatryoshkaSAE(BatchTopKSAE):
    r"""Matryoshka SAE with nested dictionary prefixes (bussmann2025learning; targets E6 i).

    .. math:: L = \sum_{g=1}^{G} w_g \Big\lVert x - \big(b_{dec} + \textstyle\sum_{i < m_g} f_i d_i\big)\Big\rVert^2

    with BatchTopK codes and prefix ends :math:`m_1 < \dots < m_G = n`; weights uniform
    (:math:`1/G`) by default, as the reference. Early latents must reconstruct on their own,
    which discourages a general (parent) feature from being absorbed into specific ones.

    Args:
        prefixes: sizes :math:`m_1 < \dots < m_{G-1} < n` of the nested prefixes (``n`` is added).
        prefix_weights: :math:`w_g` (``G`` numbers; default uniform).
    """

    kind = "matryoshka"

    def __init__(self, d_in: int, n_latents: int, *, k: int, prefixes: Sequence[int],
                 prefix_weights: Sequence[float] | None = None, **kw):
        super().__init__(d_in, n_latents, k=k, **kw)
        ends = [int(m) for m in prefixes] + [self.n_latents]
        if any(not a < b for a, b in zip([0] + ends, ends)):
            raise ValueError(f"prefixes must increase strictly within (0, n_latents={self.n_latents}) (got {list(prefixes)})")
        weights = [1.0 / len(ends)] * len(ends) if prefix_weights is None else [float(w) for w in prefix_weights]
        if len(weights) != len(ends) or any(w < 0 for w in weights):
            raise ValueError(f"prefix_weights must be {len(ends)} numbers >= 0 (got {prefix_weights!r})")
        self.prefix_ends, self.prefix_weights = ends, weights

    def reconstruction(self, x: Tensor, f: Tensor) -> tuple[Tensor, Tensor]:
        """``(sum_g w_g ||x - x_hat_g||^2, x_hat (B, d))`` over the nested prefixes."""
        x_hat, total, start = self.b_dec.expand_as(x), 0.0, 0
        for end, w in zip(self.prefix_ends, self.prefix_weights):
            x_hat = x_hat + f[:, start:end] @ self.W_dec[:, start:end].T
            total = total + w * squared_error(x, x_hat)
            start = end
        return total, x_hat
