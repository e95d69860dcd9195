r"""DSnoT: training-free prune-and-grow on a one-shot mask (zhang2023dynamic).

Dynamic Sparse No Training starts from a pruned layer (Wanda's mask, by default) and swaps
pruned and kept weights, one pair per output row per cycle, to shrink the **expected
reconstruction error** of each output without changing its number of weights or training
anything. For row :math:`i` of a ``Linear`` with weight :math:`W` ``(D_out, D_in)``, mask
:math:`M` (1 = kept) and calibration inputs with per-feature mean :math:`\mu_j` and variance
:math:`\sigma_j^2`, write :math:`c_{ij} = W_{ij}\,\mu_j`. The expected difference between the
dense and the sparse output is

.. math::
    \varepsilon_i = \mathbb{E}\big[(W x)_i - ((M \odot W) x)_i\big]
                  = \textstyle\sum_{j:\,M_{ij}=0} c_{ij} .

Each cycle, for every row still updating (the paper's pruning and growing criteria, which
its abstract describes as "the anticipated reduction in reconstruction error for pruning and
growing, as well as the variance w.r.t. different input data for growing"; the exact rules
below follow the reference code ``zyxxmu/DSnoT`` ``lib/prune.py::prune_DSnoT``, as we could
not check them against the paper's equations):

* **grow** the pruned weight whose contribution has the sign of :math:`\varepsilon_i` and the
  largest :math:`|c_{ij}| / \sigma_j^{2p}` (``var_power`` :math:`p` = 1): reviving it moves
  :math:`\varepsilon_i` by :math:`-c_{ij}` while adding little variance;
* **prune** the kept weight with the smallest Wanda score :math:`|W_{ij}|\,\lVert X_j\rVert_2`
  among those whose contribution has the opposite sign: removing it moves
  :math:`\varepsilon_i` by :math:`+c_{ij}`, also toward zero;
* the swap is made while :math:`|\varepsilon_i| >` ``update_threshold``; a row that fails it
  (or runs out of candidates) stops for good. After ``max_cycles`` cycles every row stops.

Both candidate lists are ordered once, from the initial mask, and walked in order (the
reference's pointers), so a weight moves at most once.

Deviations from the reference code (read, not copied):
    * the reference's statistics are sums over each 2048-token calibration sequence
      averaged over sequences (``WrappedGPT.sum_metric_row``), so its :math:`\varepsilon`
      is 2048 times ours (we use per-token means); its ``--update_threshold 0.1``
      is therefore :data:`UPDATE_THRESHOLD` = 0.1 / 2048 here;
    * the variance is the variance of all calibration tokens, not the mean of the
      per-sequence variances;
    * the reference's command-line flag ``--without_same_sign`` is a ``type=bool`` argument
      with default True, so its runs never check that a swap keeps the sign of
      :math:`\varepsilon` (we follow that: ``same_sign=False``); ``same_sign=True`` adds the
      check, which makes every swap shrink :math:`|\varepsilon_i|`;
    * a row whose candidate list is exhausted stops (the reference would walk into kept
      weights, whose grow score it sets to 0);
    * unstructured masks only (the reference also swaps inside N:M groups).

The pipeline (:func:`sparsity_core.pruning.sequential.prune_sequential` with
``method="dsnot"``) starts from Wanda's per-row mask and, as the reference's default
``--skip_layer mlp``, refines only the attention projections.

Taught in: Chapter 3, "Pruning II".
"""
from __future__ import annotations

import torch

from .. import checks

__all__ = ["MAX_CYCLES", "UPDATE_THRESHOLD", "VAR_POWER", "dsnot_mask"]

#: The reference's defaults (``main.py``: ``--max_cycle_time 50``, ``--pow_of_var_regrowing 1``,
#: ``--update_threshold 0.1`` on sums over 2048-token sequences, here per token).
MAX_CYCLES, VAR_POWER, UPDATE_THRESHOLD = 50, 1.0, 0.1 / 2048


def _check(t: torch.Tensor, name: str, d_in: int) -> torch.Tensor:
    t = torch.as_tensor(t)
    if t.shape != (d_in,):
        raise ValueError(f"{name} must have shape ({d_in},) (got {tuple(t.shape)})")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite")
    return t.to(torch.float64)


@torch.no_grad()
def dsnot_mask(weight: torch.Tensor, mask: torch.Tensor, means: torch.Tensor, variances: torch.Tensor,
               column_norms: torch.Tensor, *, max_cycles: int = MAX_CYCLES,
               update_threshold: float = UPDATE_THRESHOLD, var_power: float = VAR_POWER,
               same_sign: bool = False) -> torch.Tensor:
    r"""Refine ``mask`` by DSnoT's per-row prune-and-grow swaps (zhang2023dynamic; the rules
    and their source are in the module docstring).

    Args:
        weight: ``(D_out, D_in)`` the dense weight.
        mask: ``(D_out, D_in)`` bool, True = kept: the initial mask (e.g. Wanda's).
        means: ``(D_in,)`` :math:`\mu_j`, the mean of input feature ``j`` over calibration tokens.
        variances: ``(D_in,)`` :math:`\sigma_j^2`, non-negative.
        column_norms: ``(D_in,)`` :math:`\lVert X_j \rVert_2`, for the pruning order (Wanda's score).
        max_cycles: swaps per row at most (>= 0).
        update_threshold: rows with :math:`|\varepsilon_i|` at or below it stop.
        var_power: :math:`p` in the grow score :math:`|c_{ij}| / \sigma_j^{2p}`.
        same_sign: also stop a row when a swap would flip the sign of :math:`\varepsilon_i`.

    Returns:
        ``(D_out, D_in)`` bool: the refined mask, with the same number of kept weights in
        every row as ``mask``.
    """
    if weight.dim() != 2:
        raise ValueError(f"weight must be (D_out, D_in) (got shape {tuple(weight.shape)})")
    if mask.shape != weight.shape or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor of shape {tuple(weight.shape)} "
                         f"(got {mask.dtype} {tuple(mask.shape)})")
    max_cycles = checks.integer(max_cycles, "max_cycles", lo=0)
    update_threshold = checks.nonnegative(update_threshold, "update_threshold")
    var_power = checks.nonnegative(var_power, "var_power")
    d_in = weight.shape[1]
    mu = _check(means, "means", d_in)
    var = _check(variances, "variances", d_in)
    norms = _check(column_norms, "column_norms", d_in)
    if (var < 0).any() or (norms < 0).any():
        raise ValueError("variances and column_norms must be non-negative")

    W = weight.detach().to(torch.float64)
    c = W * mu[None, :]                                           # (D_out, D_in) contributions
    kept = mask.clone()
    eps = torch.where(kept, 0.0, c).sum(dim=1)                    # (D_out,) expected error
    # grow score, signed; a constant input (variance 0) scores +-inf, as in the reference
    grow = c / var.pow(var_power)[None, :]
    wanda = W.abs() * norms[None, :]
    inf = torch.tensor(float("inf"), dtype=torch.float64)
    # Candidate lists, ordered once; each row walks them with one pointer per sign.
    #   grow_pos: pruned weights with c > 0, largest score first (used while eps > 0)
    #   grow_neg: pruned weights with c < 0, most negative first (eps < 0)
    #   prune_neg: kept weights with c < 0, smallest Wanda score first (eps > 0)
    #   prune_pos: kept weights with c > 0, smallest Wanda score first (eps < 0)
    # Non-candidates get +inf, which no candidate's key reaches (grow keys are < 0, or -inf
    # at zero variance, which ties constant inputs in index order; Wanda scores are finite),
    # so they sort after every candidate.
    members = {"grow_pos": ~kept & (c > 0), "grow_neg": ~kept & (c < 0),
               "prune_neg": kept & (c < 0), "prune_pos": kept & (c > 0)}
    keys = {"grow_pos": -grow, "grow_neg": grow, "prune_neg": wanda, "prune_pos": wanda}
    order = {k: torch.where(m, keys[k], inf).sort(dim=1, stable=True).indices for k, m in members.items()}
    count = {k: m.sum(dim=1) for k, m in members.items()}          # (D_out,) candidates per row
    rows = torch.arange(W.shape[0])
    ptr = {k: torch.zeros(W.shape[0], dtype=torch.long) for k in members}
    sign0 = torch.sign(eps)
    active = torch.ones(W.shape[0], dtype=torch.bool)
    for _ in range(max_cycles):
        positive = eps > 0
        pick = {k: order[k][rows, ptr[k].clamp_max(W.shape[1] - 1)] for k in members}
        left = {k: ptr[k] < count[k] for k in members}              # the list is not exhausted
        g_idx = torch.where(positive, pick["grow_pos"], pick["grow_neg"])
        p_idx = torch.where(positive, pick["prune_neg"], pick["prune_pos"])
        available = torch.where(positive, left["grow_pos"] & left["prune_neg"], left["grow_neg"] & left["prune_pos"])
        after = eps + c[rows, p_idx] - c[rows, g_idx]
        active &= (eps.abs() > update_threshold) & available
        if same_sign:
            active &= torch.sign(after) == sign0
        if not active.any():
            break
        r = rows[active]
        kept[r, g_idx[active]] = True
        kept[r, p_idx[active]] = False
        eps = torch.where(active, after, eps)
        for k, used in (("grow_pos", positive), ("prune_neg", positive),
                        ("grow_neg", ~positive), ("prune_pos", ~positive)):
            ptr[k] += (active & used).long()
    return kept
