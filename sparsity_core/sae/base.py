r"""The sparse-autoencoder skeleton shared by every variant, and what one training step returns.

Every SAE here maps an activation :math:`x \in \mathbb{R}^d` to a code :math:`f \in
\mathbb{R}^n_{\ge 0}` and back:

.. math::
    \pi = W_{enc}(x - b_{dec}) + b_{enc}, \qquad f = \sigma(\pi), \qquad
    \hat x = W_{dec} f + b_{dec} = \sum_i f_i d_i + b_{dec},

with dictionary atoms :math:`d_i` (the columns of ``W_dec``, shape ``(d, n)``) kept at unit
norm: the gradient component along each column is removed before each optimizer step
(:meth:`SAE.project_decoder_grad_`, which :func:`~sparsity_core.sae.train.train_sae` calls
from an optimizer step pre-hook, as ``unit_norm_decoder_grad_adjustment_`` in
``openai/sparse_autoencoder``) and the columns are renormalised after every step
(:meth:`SAE.post_step`). Initialisation is *tied* by default (:math:`W_{enc} = W_{dec}^\top`,
gao2024scaling Sec. 2.4); ``tied_init=False`` draws the encoder independently
(Kaiming-uniform, PyTorch's ``Linear`` default), the "neither" condition of the dead-latent
experiment.

**No hidden state.** A training step has three parts, and only the middle one changes the
module:

1. :meth:`SAE.encode_train` -- pre-activations and the training-time code (pure);
2. :meth:`SAE.update_stats` -- the one place running statistics change: ``tokens_since_fired``
   (per latent, the training tokens since it last fired; a latent is *dead* once the count
   reaches ``dead_tokens``; gao2024scaling: 10M tokens), ``step``, and a variant's own
   statistics (:meth:`SAE._update_variant_stats`, e.g. BatchTopK's threshold). Training mode
   only;
3. :meth:`SAE.loss_terms` -- the loss and its terms as an :class:`SAEOutput` (pure: it reads
   the statistics, e.g. AuxK's dead set, but never writes them).

:meth:`SAE.training_step` runs the three in that order (the reference's order: the dead set
AuxK uses already counts this batch); :meth:`SAE.loss` runs 1 and 3 only, so evaluating a loss
never changes what a later step computes.

Reference code read (not copied): ``openai/sparse_autoencoder`` (``model.py``, ``train.py``),
``saprmarks/dictionary_learning`` (``trainers/{top_k,batch_top_k,jumprelu,gdm,
matryoshka_batch_top_k}.py``), SAELens ``sae_lens/saes/{topk,jumprelu,gated}_sae.py``.

Taught in: Chapter 7, "Sparse autoencoders".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .. import checks
from .activations import check_k, topk_relu

__all__ = ["SAE", "SAEOutput", "AUXK_COEF", "geometric_median", "squared_error"]

#: gao2024scaling, Sec. A.2: the AuxK loss weight alpha = 1/32 (also their code's default).
AUXK_COEF = 1 / 32


def squared_error(x: Tensor, x_hat: Tensor) -> Tensor:
    """Squared error summed over the last dimension, averaged over rows: a scalar.

    On activations normalised to unit mean squared norm (:func:`.data.normalise`) this is
    about the fraction of variance unexplained.

    Args:
        x, x_hat: ``(B, d)``.
    """
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


@dataclass
class SAEOutput:
    """What one loss evaluation computed, returned instead of stored on the module.

    Attributes:
        loss: the scalar the optimizer minimises.
        x_hat: ``(B, d)`` the reconstruction at the trained sparsity.
        f: ``(B, n)`` the code the loss used (the training-time rule: BatchTopK's batch budget,
            not its inference threshold).
        terms: named scalar parts of the loss (``mse`` always; ``l1``, ``aux``, ``l0_penalty``
            by variant), unweighted.
        dead: share of latents counted dead when the loss was computed.
    """

    loss: Tensor
    x_hat: Tensor
    f: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
    dead: float = 0.0

    @property
    def l0(self) -> float:
        """Mean active latents per row of :attr:`f`."""
        return float((self.f > 0).sum() / self.f.shape[0])

    def logs(self) -> dict[str, float]:
        """Numbers for the training history: ``mse``, ``l0``, ``dead``, then the other terms."""
        out = {"mse": float(self.terms["mse"].detach()), "l0": self.l0, "dead": self.dead}
        out.update({k: float(v.detach()) for k, v in self.terms.items() if k != "mse"})
        return out


class SAE(nn.Module):
    """The shared skeleton: parameters, encode / decode, decoder-norm upkeep, AuxK, statistics.

    Args:
        d_in: width ``d`` of the activations.
        n_latents: dictionary size ``n``.
        tied_init: start with ``W_enc = W_dec^T`` (gao2024scaling) instead of an independent
            Kaiming-uniform encoder.
        dead_tokens: tokens without firing after which a latent counts as dead.
        generator: draws the initial weights (a ``torch.Generator``; default: the global RNG).

    A variant sets :meth:`activate` (pre-activations ``(B, n)`` -> inference code ``(B, n)``)
    and :meth:`loss_terms`; it may override :meth:`encode_train` (a different training-time
    code) and :meth:`_update_variant_stats` (its own running statistics).
    """

    kind = "base"
    #: dead latents AuxK may use; 0 (the default) turns AuxK off (see :meth:`aux_loss`).
    aux_k = 0
    aux_coeff = AUXK_COEF

    def __init__(self, d_in: int, n_latents: int, *, tied_init: bool = True, dead_tokens: int = 10_000_000,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.d_in = checks.positive_int(d_in, "d_in")
        self.n_latents = checks.positive_int(n_latents, "n_latents")
        self.dead_tokens = checks.positive_int(dead_tokens, "dead_tokens")
        checks.generator(generator)
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
        self.register_buffer("step", torch.tensor(0, dtype=torch.long))

    def _init_auxk(self, aux_k: int, aux_coeff: float) -> None:
        """Turn AuxK on for a variant: ``aux_k`` dead latents (0: off), weight ``aux_coeff``."""
        self.aux_k = 0 if aux_k == 0 else check_k(aux_k, self.n_latents, "aux_k")
        self.aux_coeff = checks.nonnegative(aux_coeff, "aux_coeff")

    # -- dictionary upkeep ------------------------------------------------------------------
    @torch.no_grad()
    def project_decoder_grad_(self) -> None:
        r"""Remove from ``W_dec.grad`` the part parallel to each column: :math:`g_i - \langle d_i, g_i\rangle d_i`.

        Call between ``backward()`` and ``optimizer.step()`` (``train_sae`` does, from an
        optimizer step pre-hook). With unit columns, the step then moves each atom along its
        sphere to first order and :meth:`post_step` only corrects the second-order drift.
        """
        grad = self.W_dec.grad
        if grad is not None:
            W = self.W_dec.detach()
            grad.sub_((W * grad).sum(0, keepdim=True) * W)

    @torch.no_grad()
    def post_step(self) -> None:
        """After each optimizer step: unit-norm decoder columns (and variant upkeep)."""
        self.W_dec.div_(self.W_dec.norm(dim=0, keepdim=True).clamp_min(1e-12))

    @torch.no_grad()
    def init_b_dec(self, x: Tensor) -> None:
        """Set ``b_dec`` to the geometric median of a sample ``x (B, d)`` (gao2024scaling)."""
        self.check_input(x)
        self.b_dec.copy_(geometric_median(x.float()))

    # -- forward pieces -----------------------------------------------------------------------
    def check_input(self, x: object) -> None:
        """Raise unless ``x`` is a floating ``(B, d_in)`` tensor."""
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"x must be a floating tensor (B, d_in={self.d_in})")
        if x.dim() != 2 or x.shape[1] != self.d_in:
            raise ValueError(f"x must have shape (B, d_in={self.d_in}) (got {tuple(x.shape)})")

    def pre_acts(self, x: Tensor) -> Tensor:
        """:math:`\\pi = W_{enc}(x - b_{dec}) + b_{enc}` ``(B, n)``."""
        self.check_input(x)
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
        """``(x_hat (B, d), f (B, n))`` with the inference code."""
        f = self.encode(x)
        return self.decode(f), f

    # -- a training step --------------------------------------------------------------------
    def encode_train(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(pre (B, n), f (B, n))``: pre-activations and the code the loss trains (pure)."""
        pre = self.pre_acts(x)
        return pre, self.activate(pre)

    def loss_terms(self, x: Tensor, pre: Tensor, f: Tensor) -> SAEOutput:  # pragma: no cover - abstract
        """The variant's loss of ``x (B, d)`` given :meth:`encode_train`'s output (pure)."""
        raise NotImplementedError

    def loss(self, x: Tensor) -> SAEOutput:
        """The loss of ``x (B, d)`` with the statistics as they stand; changes nothing."""
        pre, f = self.encode_train(x)
        return self.loss_terms(x, pre, f)

    @torch.no_grad()
    def update_stats(self, f: Tensor) -> None:
        """Count one training batch with code ``f (B, n)``: the only method that changes statistics.

        ``tokens_since_fired`` grows by ``B`` and resets for latents active in the batch; the
        variant's own statistics follow (:meth:`_update_variant_stats`, seeing ``step`` before
        this batch); then ``step`` grows by one.

        Raises:
            RuntimeError: in eval mode (statistics count training tokens only).
        """
        if not self.training:
            raise RuntimeError("update_stats counts training batches: call it in training mode (sae.train())")
        self.tokens_since_fired += f.shape[0]
        self.tokens_since_fired[(f > 0).any(0)] = 0
        self._update_variant_stats(f)
        self.step += 1

    def _update_variant_stats(self, f: Tensor) -> None:
        """A variant's running statistics from a training code ``f (B, n)`` (none by default)."""

    def training_step(self, x: Tensor) -> SAEOutput:
        """One step's loss on a training batch ``x (B, d)``: encode, :meth:`update_stats`, loss."""
        pre, f = self.encode_train(x)
        self.update_stats(f)
        return self.loss_terms(x, pre, f)

    # -- shared loss pieces -----------------------------------------------------------------
    def dead_mask(self) -> Tensor:
        """``(n,)`` bool: latents silent for at least ``dead_tokens`` training tokens."""
        return self.tokens_since_fired >= self.dead_tokens

    def dead_share(self) -> float:
        """Share of latents :meth:`dead_mask` counts dead."""
        return float(self.dead_mask().float().mean())

    def weighted_l1(self, acts: Tensor) -> Tensor:
        r""":math:`\sum_i a_i \lVert d_i\rVert`, averaged over rows of ``acts (B, n)`` (the L1 penalty of E2/E3)."""
        return (acts * self.W_dec.norm(dim=0)).sum(1).mean()

    def aux_loss(self, pre: Tensor, residual: Tensor) -> Tensor:
        r"""AuxK (gao2024scaling, Sec. A.2): the normalised error of modelling ``residual (B, d)``
        with the top ``aux_k`` *dead* latents of ``pre (B, n)``,
        :math:`\hat e = W_{dec}\,\mathrm{ReLU}(\mathrm{TopK}_{k_{aux}}(\pi \odot \mathrm{dead}))`,
        divided by :math:`\lVert e - \bar e\rVert^2`. Exactly 0 when AuxK is off or no latent is dead.
        """
        dead = self.dead_mask()
        n_dead = int(dead.sum())
        if self.aux_k == 0 or n_dead == 0:
            return pre.new_zeros(())
        masked = torch.where(dead, pre, torch.full_like(pre, -torch.inf))
        z = topk_relu(masked, min(self.aux_k, n_dead)).nan_to_num(0.0)
        e_hat = z @ self.W_dec.T
        denom = (residual - residual.mean(0)).pow(2).sum(-1).mean()
        return (squared_error(residual, e_hat) / denom).nan_to_num(0.0)

    def _output(self, loss: Tensor, x_hat: Tensor, f: Tensor, **terms: Tensor) -> SAEOutput:
        return SAEOutput(loss=loss, x_hat=x_hat, f=f, terms=terms, dead=self.dead_share())

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, n_latents={self.n_latents}, tied_init={self.tied_init}"
