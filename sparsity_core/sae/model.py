r"""Sparse autoencoders: one skeleton, the activation as the variant.

Every SAE here maps an activation :math:`x \in \mathbb{R}^d` to a code :math:`f \in
\mathbb{R}^n_{\ge 0}` and back:

.. math::
    \pi = W_{enc}(x - b_{dec}) + b_{enc}, \qquad f = \sigma(\pi), \qquad
    \hat x = W_{dec} f + b_{dec} = \sum_i f_i d_i + b_{dec},

with dictionary atoms :math:`d_i` (the columns of ``W_dec``, shape ``(d, n)``) kept at unit
norm: the gradient component along each column is removed during backward (a hook on the
parameter, as ``unit_norm_decoder_grad_adjustment_`` in ``openai/sparse_autoencoder``) and
the columns are renormalised after every optimizer step (:meth:`SAE.post_step`).
Initialisation is *tied* by default (:math:`W_{enc} = W_{dec}^\top`, gao2024scaling Sec. 2.4);
``tied_init=False`` draws the encoder independently (Kaiming-uniform, PyTorch's ``Linear``
default), the "neither" condition of the dead-latent experiment.

The variants, each with the loss its paper trains with (reconstruction error is the squared
error summed over the ``d`` coordinates, averaged over the batch; on activations normalised
to unit mean squared norm, see :func:`sparsity_core.sae.data.normalise`, it is about the FVU):

=========================  ===============================================  =====================================
class                      :math:`\sigma` and loss                           paper
=========================  ===============================================  =====================================
:class:`ReLUSAE`           ReLU; :math:`+\lambda\sum_i f_i\lVert d_i\rVert`   bricken2023monosemanticity (targets E2)
:class:`TopKSAE`           ReLU(TopK_k); + AuxK; nested-k (Multi-TopK,       gao2024scaling Sec. 2.3, A.2;
                           Matryoshka-k) terms                               zaigrajew2025interpreting (E1, E6 ii)
:class:`BatchTopKSAE`      top ``B k`` of the batch; threshold at inference  bussmann2024batchtopk (E5)
:class:`MatryoshkaSAE`     BatchTopK; every prefix reconstructs x            bussmann2025learning (E6 i)
:class:`JumpReLUSAE`       :math:`\pi H(\pi-\theta)`; :math:`+\lambda L_0`   rajamanoharan2024jumping (E4)
:class:`GatedSAE`          gate x magnitude; + L1 of the gate + aux loss     rajamanoharan2024improving (E3)
=========================  ===============================================  =====================================

Training state: ``tokens_since_fired`` (``(n,)``, long) counts, for each latent, the training
tokens seen since it last fired; a latent is *dead* when the count reaches ``dead_tokens``
(gao2024scaling: 10M tokens; here a parameter, as our runs are far shorter).

Reference code read (not copied): ``openai/sparse_autoencoder`` (``model.py``, ``train.py``),
``saprmarks/dictionary_learning`` (``trainers/{top_k,batch_top_k,jumprelu,gdm,
matryoshka_batch_top_k}.py``), SAELens ``sae_lens/saes/{topk,jumprelu,gated}_sae.py``,
``WolodjaZ/MSAE`` ``sae.py``.

Taught in: Chapter 7, "Sparse autoencoders".
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .activations import batch_topk, check_k, heaviside_step, jumprelu, topk_relu

__all__ = ["SAE", "ReLUSAE", "TopKSAE", "BatchTopKSAE", "MatryoshkaSAE", "JumpReLUSAE", "GatedSAE",
           "make_sae", "SAE_KINDS", "geometric_median"]

#: gao2024scaling, Sec. A.2: the AuxK loss weight alpha = 1/32 (also their code's default).
AUXK_COEF = 1 / 32
#: gao2024scaling, Sec. A.2 / Multi-TopK: L(k) + L(4k) / 8.
MULTI_TOPK_FACTOR, MULTI_TOPK_WEIGHT = 4, 1 / 8


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int (got {name}={value!r})")
    return int(value)


def _nonnegative(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or math.isinf(value):
        raise ValueError(f"{name} must be a finite number >= 0 (got {name}={value!r})")
    return float(value)


def _sq_error(x: Tensor, x_hat: Tensor) -> Tensor:
    """Squared error summed over coordinates, averaged over rows (a scalar)."""
    return (x - x_hat).pow(2).sum(-1).mean()


def geometric_median(points: Tensor, iters: int = 100, tol: float = 1e-6) -> Tensor:
    r"""Weiszfeld's iteration for :math:`\arg\min_m \sum_b \lVert x_b - m\rVert` ``(d,)``.

    gao2024scaling initialise ``b_pre`` (our ``b_dec``) at the geometric median of a data
    sample (Sec. 2.4); ``dictionary_learning`` does the same on the first batch.

    Args:
        points: ``(B, d)``.
    """
    if not isinstance(points, Tensor) or points.dim() != 2 or points.shape[0] < 1:
        raise ValueError("points must be a non-empty (B, d) tensor")
    m = points.mean(0)
    for _ in range(iters):
        w = 1.0 / (points - m).norm(dim=1).clamp_min(1e-12)
        new = (w[:, None] * points).sum(0) / w.sum()
        if (new - m).norm() <= tol * (1 + m.norm()):
            return new
        m = new
    return m


class SAE(nn.Module):
    """The shared skeleton: parameters, encode / decode, decoder-norm upkeep, dead-latent counts.

    Args:
        d_in: width ``d`` of the activations.
        n_latents: dictionary size ``n``.
        tied_init: start with ``W_enc = W_dec^T`` (gao2024scaling) instead of an independent
            Kaiming-uniform encoder.
        dead_tokens: tokens without firing after which a latent counts as dead.
        generator: draws the initial weights (a ``torch.Generator``; default: the global RNG).

    Subclasses set :meth:`activate` (pre-activations ``(B, n)`` -> code ``(B, n)``) and
    :meth:`loss` (``x (B, d)`` -> ``(scalar loss, logs)``).
    """

    kind = "base"

    def __init__(self, d_in: int, n_latents: int, *, tied_init: bool = True, dead_tokens: int = 10_000_000,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.d_in = _positive_int(d_in, "d_in")
        self.n_latents = _positive_int(n_latents, "n_latents")
        self.dead_tokens = _positive_int(dead_tokens, "dead_tokens")
        self.tied_init = bool(tied_init)
        bound = 1.0 / math.sqrt(self.d_in)                      # nn.Linear's Kaiming-uniform bound
        dec = (torch.rand(self.d_in, self.n_latents, generator=generator) * 2 - 1) * bound
        dec = dec / dec.norm(dim=0, keepdim=True)
        if self.tied_init:
            enc = dec.T.clone()
        else:
            enc = (torch.rand(self.n_latents, self.d_in, generator=generator) * 2 - 1) * bound
        self.W_enc = nn.Parameter(enc)                               # (n, d)
        self.b_enc = nn.Parameter(torch.zeros(self.n_latents))      # (n,)
        self.W_dec = nn.Parameter(dec)                               # (d, n), unit columns
        self.b_dec = nn.Parameter(torch.zeros(self.d_in))           # (d,)
        self.register_buffer("tokens_since_fired", torch.zeros(self.n_latents, dtype=torch.long))
        self.W_dec.register_hook(self._project_decoder_grad)

    # -- dictionary upkeep ------------------------------------------------------------------
    def _project_decoder_grad(self, grad: Tensor) -> Tensor:
        """Remove the part of each column's gradient parallel to the column: g - <d, g> d."""
        W = self.W_dec.detach()
        return grad - (W * grad).sum(0, keepdim=True) * W

    @torch.no_grad()
    def post_step(self) -> None:
        """After each optimizer step: unit-norm decoder columns (and variant upkeep)."""
        self.W_dec.div_(self.W_dec.norm(dim=0, keepdim=True).clamp_min(1e-12))

    @torch.no_grad()
    def init_b_dec(self, x: Tensor) -> None:
        """Set ``b_dec`` to the geometric median of a sample ``x (B, d)`` (gao2024scaling)."""
        self._check_x(x)
        self.b_dec.copy_(geometric_median(x.float()))

    # -- forward pieces -----------------------------------------------------------------------
    def _check_x(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"x must be a floating tensor (B, d_in={self.d_in})")
        if x.dim() != 2 or x.shape[1] != self.d_in:
            raise ValueError(f"x must have shape (B, d_in={self.d_in}) (got {tuple(x.shape)})")

    def pre_acts(self, x: Tensor) -> Tensor:
        """:math:`\\pi = W_{enc}(x - b_{dec}) + b_{enc}` ``(B, n)``."""
        self._check_x(x)
        return (x - self.b_dec) @ self.W_enc.T + self.b_enc

    def activate(self, pre: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, x: Tensor) -> Tensor:
        """The code ``f (B, n)`` the SAE uses at inference."""
        return self.activate(self.pre_acts(x))

    def decode(self, f: Tensor) -> Tensor:
        """:math:`\\hat x = W_{dec} f + b_{dec}` ``(B, d)`` from ``f (B, n)``."""
        return f @ self.W_dec.T + self.b_dec

    def decode_sparse(self, idx: Tensor, vals: Tensor) -> Tensor:
        r""":math:`\hat x_b = \sum_j v_{bj} d_{i_{bj}} + b_{dec}` from the ``k`` active latents of each row.

        A gather of ``k`` decoder columns per row (``F.embedding_bag`` with per-sample
        weights), the CPU analogue of ``openai/sparse_autoencoder``'s sparse decoder kernel:
        ``O(B k d)`` instead of the dense ``O(B n d)``.

        Args:
            idx: ``(B, k)`` long latent indices.
            vals: ``(B, k)`` their activations (e.g. ``pre.topk(k)`` after ReLU).
        """
        if idx.shape != vals.shape or idx.dim() != 2:
            raise ValueError(f"idx and vals must both be (B, k) (got {tuple(idx.shape)} and {tuple(vals.shape)})")
        return F.embedding_bag(idx, self.W_dec.T, per_sample_weights=vals, mode="sum") + self.b_dec

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(x_hat (B, d), f (B, n))``."""
        f = self.encode(x)
        return self.decode(f), f

    @torch.no_grad()
    def _count_firing(self, f: Tensor) -> None:
        """Update ``tokens_since_fired`` with a training batch's codes ``f (B, n)``; remember its L0."""
        active = f > 0
        self._last_l0 = active.sum() / f.shape[0]
        self.tokens_since_fired += f.shape[0]
        self.tokens_since_fired[active.any(0)] = 0

    def dead_mask(self) -> Tensor:
        """``(n,)`` bool: latents silent for at least ``dead_tokens`` training tokens."""
        return self.tokens_since_fired >= self.dead_tokens

    def _weighted_l1(self, acts: Tensor) -> Tensor:
        r""":math:`\sum_i a_i \lVert d_i\rVert`, averaged over rows of ``acts (B, n)`` (the L1 penalty of E2/E3)."""
        return (acts * self.W_dec.norm(dim=0)).sum(1).mean()

    def _logs(self, mse: Tensor, **extra: Tensor | float) -> dict[str, float]:
        """Per-step numbers for the training history (after :meth:`_count_firing`)."""
        logs = {"mse": float(mse.detach()), "l0": float(self._last_l0), "dead": float(self.dead_mask().float().mean())}
        logs.update({k: float(v.detach() if isinstance(v, Tensor) else v) for k, v in extra.items()})
        return logs

    def loss(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, n_latents={self.n_latents}, tied_init={self.tied_init}"


class ReLUSAE(SAE):
    r"""ReLU + L1 ("Towards Monosemanticity", targets E2): :math:`L = \lVert x-\hat x\rVert^2 +
    \lambda \sum_i f_i \lVert d_i\rVert` (the norm factor is 1 with unit columns; it is kept so
    the penalty cannot be dodged by shrinking the decoder).

    Args:
        l1_coeff: :math:`\lambda \ge 0`.
    """

    kind = "relu"

    def __init__(self, d_in: int, n_latents: int, *, l1_coeff: float, **kw):
        super().__init__(d_in, n_latents, **kw)
        self.l1_coeff = _nonnegative(l1_coeff, "l1_coeff")

    def activate(self, pre: Tensor) -> Tensor:
        return torch.relu(pre)

    def loss(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        f = self.encode(x)
        x_hat = self.decode(f)
        self._count_firing(f)
        mse = _sq_error(x, x_hat)
        l1 = self._weighted_l1(f)
        return mse + self.l1_coeff * l1, self._logs(mse, l1=l1)


class TopKSAE(SAE):
    r"""TopK SAE with AuxK (gao2024scaling; targets E1).

    :math:`f = \mathrm{ReLU}(\mathrm{TopK}_k(\pi))`. Loss: :math:`\sum_j w_j \lVert x -
    \hat x^{(k_j)}\rVert^2 + \alpha\,\mathrm{NMSE}(e, \hat e)`, where :math:`\hat x^{(k_j)}`
    decodes the top-:math:`k_j` code (``nested_k = {k_j: w_j}``; default ``{k: 1}``; Multi-TopK,
    Gao's Sec. 5.3, is ``{k: 1, 4k: 1/8}`` via :meth:`multi_topk`; the nested-k Matryoshka
    SAE of zaigrajew2025interpreting is ``{k_1: 1/M, ..., k_M: 1/M}``). AuxK models the
    residual :math:`e = x - \hat x` (stop-gradient) with the top ``aux_k`` *dead* latents,
    :math:`\hat e = W_{dec}\,\mathrm{ReLU}(\mathrm{TopK}_{k_{aux}}(\pi \odot \mathrm{dead}))`,
    normalised by :math:`\lVert e - \bar e\rVert^2`; it is exactly 0 when no latent is dead.

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
        self.aux_k = 0 if aux_k == 0 else check_k(aux_k, self.n_latents, "aux_k")
        self.aux_coeff = _nonnegative(aux_coeff, "aux_coeff")
        nested = {self.k: 1.0} if nested_k is None else dict(nested_k)
        if not nested:
            raise ValueError("nested_k must name at least one k")
        self.nested_k = {check_k(kk, self.n_latents, "nested_k key"): _nonnegative(w, "nested_k weight")
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

    def aux_loss(self, pre: Tensor, residual: Tensor) -> Tensor:
        """AuxK's normalised error of modelling ``residual (B, d)`` with the top dead latents."""
        dead = self.dead_mask()
        n_dead = int(dead.sum())
        if self.aux_k == 0 or n_dead == 0:
            return pre.new_zeros(())
        masked = torch.where(dead, pre, torch.full_like(pre, -torch.inf))
        z = topk_relu(masked, min(self.aux_k, n_dead)).nan_to_num(0.0)
        e_hat = z @ self.W_dec.T
        denom = (residual - residual.mean(0)).pow(2).sum(-1).mean()
        return (_sq_error(residual, e_hat) / denom).nan_to_num(0.0)

    def loss(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        pre = self.pre_acts(x)
        total, x_hat, f = 0.0, None, None
        mse = None
        for kk, w in self.nested_k.items():
            fk = topk_relu(pre, kk)
            xk = self.decode(fk)
            err = _sq_error(x, xk)
            total = total + w * err
            if kk == self.k:
                x_hat, f, mse = xk, fk, err
        if mse is None:
            with torch.no_grad():
                f = topk_relu(pre, self.k)
                x_hat = self.decode(f)
                mse = _sq_error(x, x_hat)
        self._count_firing(f)
        aux = self.aux_loss(pre, (x - x_hat).detach())
        return total + self.aux_coeff * aux, self._logs(mse, aux=aux)


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
        self.aux_k = 0 if aux_k == 0 else check_k(aux_k, self.n_latents, "aux_k")
        self.aux_coeff = _nonnegative(aux_coeff, "aux_coeff")
        if not 0 <= threshold_beta < 1:
            raise ValueError(f"threshold_beta must be in [0, 1) (got {threshold_beta!r})")
        self.threshold_beta = float(threshold_beta)
        self.threshold_start = int(_nonnegative(threshold_start, "threshold_start"))
        self.register_buffer("threshold", torch.tensor(-1.0))
        self.register_buffer("step", torch.tensor(0, dtype=torch.long))

    aux_loss = TopKSAE.aux_loss

    def activate(self, pre: Tensor) -> Tensor:
        if self.training or self.threshold < 0:
            return batch_topk(pre, self.k)
        post = torch.relu(pre)
        return post * (post > self.threshold)

    @torch.no_grad()
    def _update_threshold(self, f: Tensor) -> None:
        if int(self.step) >= self.threshold_start:
            pos = f[f > 0]
            low = pos.min() if pos.numel() else f.new_zeros(())
            if self.threshold < 0:
                self.threshold.copy_(low)
            else:
                self.threshold.mul_(self.threshold_beta).add_((1 - self.threshold_beta) * low)
        self.step += 1

    def _reconstruction(self, x: Tensor, f: Tensor) -> tuple[Tensor, Tensor]:
        x_hat = self.decode(f)
        return _sq_error(x, x_hat), x_hat

    def loss(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        pre = self.pre_acts(x)
        f = batch_topk(pre, self.k)
        self._update_threshold(f)
        self._count_firing(f)
        rec, x_hat = self._reconstruction(x, f)
        aux = self.aux_loss(pre, (x - x_hat).detach())
        return rec + self.aux_coeff * aux, self._logs(_sq_error(x, x_hat), aux=aux)


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

    def _reconstruction(self, x: Tensor, f: Tensor) -> tuple[Tensor, Tensor]:
        x_hat, total, start = self.b_dec.expand_as(x), 0.0, 0
        for end, w in zip(self.prefix_ends, self.prefix_weights):
            x_hat = x_hat + f[:, start:end] @ self.W_dec[:, start:end].T
            total = total + w * _sq_error(x, x_hat)
            start = end
        return total, x_hat


class JumpReLUSAE(SAE):
    r"""JumpReLU SAE (rajamanoharan2024jumping; targets E4).

    :math:`f = \pi\,H(\pi - \theta)` with a learned threshold per latent,
    :math:`L = \lVert x - \hat x\rVert^2 + \lambda\,s(t) \sum_i H(\pi_i - \theta_i)`, trained
    through the straight-through estimators of :mod:`.activations`. :math:`s(t)` ramps the
    penalty linearly from 0 to 1 over ``l0_warmup`` steps (Gemma Scope warms it up over 10k).
    Thresholds are stored directly (as ``dictionary_learning``, not SAELens's log-threshold)
    and clamped to stay >= ``min_threshold`` after each step.

    Args:
        l0_coeff: :math:`\lambda \ge 0`.
        bandwidth: :math:`\varepsilon` (Gemma Scope: 0.001 on unit mean-square inputs).
        init_threshold: :math:`\theta_0` (Gemma Scope: 0.001).
        l0_warmup: steps of the penalty's linear ramp (0: none).
    """

    kind = "jumprelu"

    def __init__(self, d_in: int, n_latents: int, *, l0_coeff: float, bandwidth: float = 1e-3,
                 init_threshold: float = 1e-3, l0_warmup: int = 0, min_threshold: float = 1e-6, **kw):
        super().__init__(d_in, n_latents, **kw)
        self.l0_coeff = _nonnegative(l0_coeff, "l0_coeff")
        if not _nonnegative(bandwidth, "bandwidth") > 0 or not _nonnegative(init_threshold, "init_threshold") > 0:
            raise ValueError("bandwidth and init_threshold must be > 0")
        self.bandwidth, self.min_threshold = float(bandwidth), float(min_threshold)
        self.l0_warmup = int(_nonnegative(l0_warmup, "l0_warmup"))
        self.threshold = nn.Parameter(torch.full((self.n_latents,), float(init_threshold)))
        self.register_buffer("step", torch.tensor(0, dtype=torch.long))

    def activate(self, pre: Tensor) -> Tensor:
        return jumprelu(pre, self.threshold, self.bandwidth)

    @torch.no_grad()
    def post_step(self) -> None:
        super().post_step()
        self.threshold.clamp_(min=self.min_threshold)

    def loss(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        pre = self.pre_acts(x)
        f = self.activate(pre)
        x_hat = self.decode(f)
        self._count_firing(f)
        l0 = heaviside_step(pre, self.threshold, self.bandwidth).sum(1).mean()
        ramp = 1.0 if self.l0_warmup == 0 else min(1.0, (int(self.step) + 1) / self.l0_warmup)
        self.step += 1
        mse = _sq_error(x, x_hat)
        return mse + self.l0_coeff * ramp * l0, self._logs(mse, l0_penalty=l0)


class GatedSAE(SAE):
    r"""Gated SAE (rajamanoharan2024improving; targets E3).

    .. math::
        \pi_{gate} = W_{gate}(x - b_{dec}) + b_{gate}, \quad
        f = 1[\pi_{gate} > 0] \odot \mathrm{ReLU}\big(e^{r_{mag}} \odot W_{gate}(x - b_{dec}) + b_{mag}\big)

    (``W_enc``/``b_enc`` are :math:`W_{gate}`/:math:`b_{gate}`). Loss:
    :math:`\lVert x-\hat x\rVert^2 + \lambda\sum_i \mathrm{ReLU}(\pi_{gate})_i\lVert d_i\rVert +
    \lVert x - (\bar W_{dec}\mathrm{ReLU}(\pi_{gate}) + \bar b_{dec})\rVert^2`, the bars a
    stop-gradient: the paper freezes the decoder in the auxiliary task (SAELens does not).

    Args:
        l1_coeff: :math:`\lambda \ge 0`.
    """

    kind = "gated"

    def __init__(self, d_in: int, n_latents: int, *, l1_coeff: float, **kw):
        super().__init__(d_in, n_latents, **kw)
        self.l1_coeff = _nonnegative(l1_coeff, "l1_coeff")
        self.r_mag = nn.Parameter(torch.zeros(self.n_latents))
        self.b_mag = nn.Parameter(torch.zeros(self.n_latents))

    def _gate_and_mag(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self._check_x(x)
        proj = (x - self.b_dec) @ self.W_enc.T                          # (B, n)
        return proj + self.b_enc, torch.relu(proj * self.r_mag.exp() + self.b_mag)

    def activate(self, pre: Tensor) -> Tensor:  # pragma: no cover - encode is overridden
        raise TypeError("GatedSAE encodes from x: call encode(x)")

    def encode(self, x: Tensor) -> Tensor:
        gate, mag = self._gate_and_mag(x)
        return (gate > 0).to(mag.dtype) * mag

    def loss(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        gate, mag = self._gate_and_mag(x)
        f = (gate > 0).to(mag.dtype) * mag
        x_hat = self.decode(f)
        self._count_firing(f)
        gate_act = torch.relu(gate)
        l1 = self._weighted_l1(gate_act)
        aux = _sq_error(x, gate_act @ self.W_dec.detach().T + self.b_dec.detach())
        mse = _sq_error(x, x_hat)
        return mse + self.l1_coeff * l1 + aux, self._logs(mse, l1=l1, aux=aux)


SAE_KINDS: dict[str, type[SAE]] = {c.kind: c for c in (ReLUSAE, TopKSAE, BatchTopKSAE, MatryoshkaSAE,
                                                        JumpReLUSAE, GatedSAE)}


def make_sae(kind: str, d_in: int, n_latents: int, **kw) -> SAE:
    """An SAE by name: one of ``SAE_KINDS`` (``relu``, ``topk``, ``batchtopk``, ``matryoshka``,
    ``jumprelu``, ``gated``), or ``multi_topk``; ``kw`` go to the class."""
    if kind == "multi_topk":
        return TopKSAE.multi_topk(d_in, n_latents, **kw)
    if kind not in SAE_KINDS:
        raise ValueError(f"kind must be one of {sorted(SAE_KINDS) + ['multi_topk']} (got {kind!r})")
    return SAE_KINDS[kind](d_in, n_latents, **kw)
