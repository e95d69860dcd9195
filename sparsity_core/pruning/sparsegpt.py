r"""SparseGPT: one-shot pruning with Optimal-Brain-Surgeon weight updates (frantar2023sparsegpt).

For one ``Linear`` with weight :math:`W` ``(D_out, D_in)`` and calibration inputs :math:`X`
``(N, D_in)``, SparseGPT looks for a pruned :math:`W'` minimising the layer's
reconstruction error :math:`\lVert W X^\top - W' X^\top \rVert_2^2`. All rows share the
Hessian of that error, :math:`H = 2 X^\top X / N` (paper Sec. 3; ``CalibrationCollector.hessian``).

The algorithm (paper Alg. 1; names as in the paper and in ``IST-DASLab/sparsegpt``):

1. **Dampening**: :math:`H \leftarrow H + \lambda I`, :math:`\lambda` = ``percdamp`` (1 %) of
   the mean diagonal; inputs that were always zero (``H_jj = 0``) get ``H_jj = 1`` and their
   weights are zeroed (they never contributed).
2. :math:`U` = the upper Cholesky factor of :math:`H^{-1}` (:math:`H^{-1} = U^\top U`). Row
   :math:`j` of :math:`U`, divided by :math:`U_{jj}`, is the OBS update that removes column
   :math:`j` while compensating with the columns :math:`> j` only; processing columns left to
   right therefore needs no re-inversion ("Hessian synchronization", Sec. 3.2).
3. Columns are processed in blocks of ``blocksize`` (128, "lazy batch updates"). At the start
   of each block the **mask is chosen adaptively** (Sec. 3.3): the entries of the block with
   the smallest OBS saliency :math:`w^2 / U_{jj}^2` are pruned. For N:M, the choice is made
   at the first column of each group of ``m``, per row, on the *already updated* weights.
4. For each column :math:`j` of the block: :math:`q` = the column with pruned entries set to
   0; error :math:`e = (w - q) / U_{jj}`; the not-yet-processed columns of the block move by
   :math:`-e\,U_{j, j:}`; after the block, the columns right of it by
   :math:`-E\,U_{\text{block}, \text{right}}`. The OBS loss of the column is
   :math:`\tfrac12 \sum_\text{rows} e^2`, and the losses add up to
   :math:`\tfrac12 (W - W') H_\text{damp} (W - W')^\top` summed over rows (tested).

Deviations from the reference code (``SparseGPT.fasterprune``), none of which changes the
method: we compute in float64 on the CPU; the unstructured mask prunes *exactly*
``numel - keep_count(numel, 1 - s)`` weights of the layer, the count magnitude pruning
removes (block ``b`` prunes the difference of the rounded cumulative counts; the reference's ``<= threshold`` prunes one extra weight per block and
all tied ones); ties break by position (:func:`sparsity_core.masks.topk_mask`'s rule); no quantizer; no ``torch.cuda.synchronize``.

Reference code read (not copied): ``IST-DASLab/sparsegpt`` ``sparsegpt.py``
(``add_batch``, ``fasterprune``); ``locuslab/wanda`` ``lib/sparsegpt.py`` (the same
algorithm in the Wanda repository). OBS: hassibi1993optimal.

Taught in: Chapter 3, "Pruning II".
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import checks
from ..masks import keep_count, resolve_density, topk_rows

__all__ = ["SparseGPTResult", "dampened_hessian", "sparsegpt_prune"]

#: SparseGPT's defaults (``fasterprune(blocksize=128, percdamp=.01)``, paper Sec. 4 "Setup").
BLOCKSIZE, PERCDAMP = 128, 0.01


@dataclass
class SparseGPTResult:
    """One pruned layer.

    Attributes:
        weight: ``(D_out, D_in)`` the pruned and updated weight, in the input's dtype.
        mask: ``(D_out, D_in)`` bool, True = kept.
        loss: the summed OBS losses, ``1/2 sum_rows (W - W') H_damp (W - W')^T``.
    """

    weight: torch.Tensor
    mask: torch.Tensor
    loss: float


def dampened_hessian(hessian: torch.Tensor, percdamp: float = PERCDAMP) -> torch.Tensor:
    """``H`` with dead inputs set to ``H_jj = 1`` and ``percdamp * mean(diag H)`` added to the
    diagonal (step 1 above). Returns a float64 copy ``(D_in, D_in)``."""
    checks.nonnegative(percdamp, "percdamp")
    H = hessian.detach().to(torch.float64).clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    H.diagonal().add_(percdamp * torch.diag(H).mean())
    return H


def _check(weight: torch.Tensor, hessian: torch.Tensor, sparsity, nm, blocksize: int):
    if weight.dim() != 2:
        raise ValueError(f"weight must be (D_out, D_in) (got shape {tuple(weight.shape)})")
    d_in = weight.shape[1]
    if hessian.shape != (d_in, d_in):
        raise ValueError(f"hessian must be ({d_in}, {d_in}) for weight {tuple(weight.shape)} "
                         f"(got {tuple(hessian.shape)})")
    if (sparsity is None) == (nm is None):
        raise ValueError(f"give exactly one of sparsity and nm (got sparsity={sparsity!r}, nm={nm!r})")
    blocksize = checks.positive_int(blocksize, "blocksize")
    if nm is not None:
        n, m = (checks.positive_int(v, k) for k, v in zip("nm", nm))
        if n > m:
            raise ValueError(f"n must be <= m (got n={n}, m={m})")
        if d_in % m:
            raise ValueError(f"D_in = {d_in} is not divisible by m={m}")
        if blocksize % m:
            raise ValueError(f"blocksize={blocksize} must be a multiple of m={m}")
        return None, (n, m), blocksize
    return 1.0 - resolve_density(None, sparsity), None, blocksize


@torch.no_grad()
def sparsegpt_prune(weight: torch.Tensor, hessian: torch.Tensor, *, sparsity: float | None = None,
                    nm: tuple[int, int] | None = None, blocksize: int = BLOCKSIZE,
                    percdamp: float = PERCDAMP) -> SparseGPTResult:
    """Prune one layer with SparseGPT (see the module docstring for the steps).

    Args:
        weight: ``(D_out, D_in)`` (not modified).
        hessian: ``(D_in, D_in)``, ``2 X^T X / N`` of the layer's calibration inputs.
        sparsity: unstructured fraction pruned, in [0, 1); or
        nm: ``(n, m)``: keep ``n`` of every ``m`` consecutive inputs of each row.
        blocksize: columns per lazy-update block (a multiple of ``m`` for N:M).
        percdamp: dampening, as a fraction of the mean diagonal of ``hessian``.

    Returns:
        :class:`SparseGPTResult`.

    Raises:
        ValueError: bad shapes, not exactly one of sparsity / nm, a sparsity outside
            [0, 1), ``n > m``, ``D_in`` or ``blocksize`` not divisible by ``m``, or
            ``percdamp < 0``.
    """
    s, nm, blocksize = _check(weight, hessian, sparsity, nm, blocksize)
    rows, cols = weight.shape
    H = dampened_hessian(hessian, percdamp)
    W = weight.detach().to(torch.float64).clone()
    W[:, torch.diag(hessian) == 0] = 0
    U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    mask = torch.ones(rows, cols, dtype=torch.bool)
    loss = torch.zeros((), dtype=torch.float64)
    pruned_so_far = 0
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1, U1 = W[:, i1:i2].clone(), U[i1:i2, i1:i2]
        d = torch.diag(U1)                                        # (block,)
        prune1 = torch.zeros_like(W1, dtype=torch.bool)           # True = pruned
        if s is not None:                                         # adaptive mask of the block
            seen = rows * i2                                      # entries in blocks 0..this one
            target = seen - keep_count(seen, 1.0 - s)             # pruned so far: the masks module's rounding
            k = target - pruned_so_far
            pruned_so_far = target
            if k > 0:
                saliency = (W1 ** 2 / d[None, :] ** 2).reshape(1, -1)
                prune1 = topk_rows(saliency, k, largest=False).reshape(W1.shape)
        # the column loop runs on the transposed block, so that each column is a contiguous row
        T1, P1 = W1.T.contiguous(), prune1.T.contiguous()         # (block, rows)
        E1 = torch.zeros_like(T1)
        for j in range(i2 - i1):
            if nm is not None and j % nm[1] == 0:
                n, m = nm
                saliency = (T1[j:j + m] ** 2 / d[j:j + m, None] ** 2).T    # (rows, m), updated weights
                P1[j:j + m] = topk_rows(saliency, m - n, largest=False).T
            err = torch.where(P1[j], T1[j], 0.0) / d[j]          # (w - q) / d, q = w with pruned entries 0
            T1[j:].addr_(U1[j, j:], err, alpha=-1)               # OBS update of this and later columns
            T1[j].masked_fill_(P1[j], 0.0)                       # q exactly
            E1[j] = err
        loss += 0.5 * E1.square().sum()
        W[:, i1:i2] = T1.T
        W[:, i2:] -= E1.T @ U[i1:i2, i2:]
        prune1 = P1.T
        mask[:, i1:i2] = ~prune1
    return SparseGPTResult(weight=W.to(weight.dtype), mask=mask, loss=float(loss))
