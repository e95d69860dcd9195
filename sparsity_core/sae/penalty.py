r"""SAEs that buy sparsity with a penalty in the loss: ReLU + L1, JumpReLU + L0, Gated.

====================  ================================================  =======================================
class                 :math:`\sigma` and loss                           paper
====================  ================================================  =======================================
:class:`ReLUSAE`      ReLU; :math:`+\lambda\sum_i f_i\lVert d_i\rVert`  bricken2023monosemanticity (targets E2)
:class:`JumpReLUSAE`  :math:`\pi H(\pi-\theta)`; :math:`+\lambda L_0`   rajamanoharan2024jumping (E4)
:class:`GatedSAE`     gate x magnitude; + L1 of the gate + aux loss     rajamanoharan2024improving (E3)
====================  ================================================  =======================================

Reference code read (not copied): ``saprmarks/dictionary_learning`` ``trainers/{standard,
jumprelu,gdm}.py``; SAELens ``sae_lens/saes/{jumprelu,gated}_sae.py``.

Taught in: Chapter 7, "Sparse autoencoders".
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import checks
from .activations import heaviside_step, jumprelu
from .base import SAE, SAEOutput, squared_error

__all__ = ["ReLUSAE", "JumpReLUSAE", "GatedSAE"]


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
        self.l1_coeff = checks.nonnegative(l1_coeff, "l1_coeff")

    def activate(self, pre: Tensor) -> Tensor:
        return torch.relu(pre)

    def loss_terms(self, x: Tensor, pre: Tensor, f: Tensor) -> SAEOutput:
        x_hat = self.decode(f)
        mse = squared_error(x, x_hat)
        l1 = self.weighted_l1(f)
        return self._output(mse + self.l1_coeff * l1, x_hat, f, mse=mse, l1=l1)


class JumpReLUSAE(SAE):
    r"""JumpReLU SAE (rajamanoharan2024jumping; targets E4).

    :math:`f = \pi\,H(\pi - \theta)` with a learned threshold per latent,
    :math:`L = \lVert x - \hat x\rVert^2 + \lambda\,s(t) \sum_i H(\pi_i - \theta_i)`, trained
    through the straight-through estimators of :mod:`.activations`. :math:`s(t) = \min(1,
    t / T_w)` ramps the penalty linearly over ``l0_warmup`` steps (Gemma Scope warms it up over
    10k), with :math:`t` the steps counted so far (the current one included during training).
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
        self.l0_coeff = checks.nonnegative(l0_coeff, "l0_coeff")
        self.bandwidth = checks.real(bandwidth, "bandwidth", lo=0.0, closed_low=False)
        init_threshold = checks.real(init_threshold, "init_threshold", lo=0.0, closed_low=False)
        self.min_threshold = checks.nonnegative(min_threshold, "min_threshold")
        self.l0_warmup = checks.integer(l0_warmup, "l0_warmup", lo=0)
        self.threshold = nn.Parameter(torch.full((self.n_latents,), init_threshold))

    def activate(self, pre: Tensor) -> Tensor:
        return jumprelu(pre, self.threshold, self.bandwidth)

    @torch.no_grad()
    def post_step(self) -> None:
        super().post_step()
        self.threshold.clamp_(min=self.min_threshold)

    def penalty_ramp(self) -> float:
        """:math:`s(t) = \\min(1, t / T_w)` at the current ``step`` (1 without warm-up)."""
        return 1.0 if self.l0_warmup == 0 else min(1.0, int(self.step) / self.l0_warmup)

    def loss_terms(self, x: Tensor, pre: Tensor, f: Tensor) -> SAEOutput:
        x_hat = self.decode(f)
        l0 = heaviside_step(pre, self.threshold, self.bandwidth).sum(1).mean()
        mse = squared_error(x, x_hat)
        return self._output(mse + self.l0_coeff * self.penalty_ramp() * l0, x_hat, f, mse=mse, l0_penalty=l0)


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
        self.l1_coeff = checks.nonnegative(l1_coeff, "l1_coeff")
        self.r_mag = nn.Parameter(torch.zeros(self.n_latents))
        self.b_mag = nn.Parameter(torch.zeros(self.n_latents))

    def gate_and_magnitude(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(pi_gate (B, n), magnitude (B, n))`` of ``x (B, d)``."""
        self.check_input(x)
        proj = (x - self.b_dec) @ self.W_enc.T                          # (B, n)
        return proj + self.b_enc, torch.relu(proj * self.r_mag.exp() + self.b_mag)

    def activate(self, pre: Tensor) -> Tensor:  # pragma: no cover - encode is overridden
        raise TypeError("GatedSAE encodes from x: call encode(x)")

    def encode_train(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(pi_gate (B, n), f (B, n))``: the gate pre-activations stand in for ``pre``."""
        gate, mag = self.gate_and_magnitude(x)
        return gate, (gate > 0).to(mag.dtype) * mag

    def encode(self, x: Tensor) -> Tensor:
        return self.encode_train(x)[1]

    def loss_terms(self, x: Tensor, pre: Tensor, f: Tensor) -> SAEOutput:
        x_hat = self.decode(f)
        gate_act = torch.relu(pre)
        l1 = self.weighted_l1(gate_act)
        aux = squared_error(x, gate_act @ self.W_dec.detach().T + self.b_dec.detach())
        mse = squared_error(x, x_hat)
        return self._output(mse + self.l1_coeff * l1 + aux, x_hat, f, mse=mse, l1=l1, aux=aux)
