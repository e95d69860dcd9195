"""Checks of Chapter 3's exercises (see :mod:`sparsity_core.exercises`).

``book/03_pruning_llm.ipynb``:

* ``wanda_24_by_hand(weights, norms)``: Wanda's 2:4 selection by hand, against
  :func:`sparsity_core.pruning.wanda_mask` with ``nm=(2, 4)``;
* ``obs_remove(w, H, q)``: the Optimal-Brain-Surgeon update that removes one weight, against
  the update :func:`sparsity_core.pruning.sparsegpt_prune` makes when it prunes that weight;
* ``error_split(dW, X)``: the mean and variance parts of the output error, against the output
  statistics of :class:`sparsity_core.calibration.CalibrationCollector`.

``book/03_pruning_tiny.ipynb``:

* ``perplexity_by_hand(model, ids, T)``: block perplexity of a causal LM, against
  :func:`sparsity_core.pretrained.perplexity`.

``book/03_essential_sparsity.ipynb``:

* ``global_densities(model, sparsity)``: per-layer densities under one global magnitude
  threshold, against :func:`sparsity_core.masks.global_topk_masks`;
* ``is_two_four(weight)``: whether a weight is 2:4 sparse, against
  :func:`sparsity_core.masks.nm_mask`.

Not checked: ``expected_row_error`` and ``scaled_budget`` (03_pruning_tiny: their solutions
check themselves against the chapter's own numbers), ``error_from_gram`` (the package computes the Gram-form error only in a private
helper of :mod:`sparsity_core.pruning.sequential`) and ``knee_by_hand`` (the knee is computed
by a function of the notebook, ``knee``, not by the package).
"""
from __future__ import annotations

import torch
from torch import nn

from .. import pretrained
from ..calibration import CalibrationCollector
from ..masks import global_topk_masks, nm_mask
from ..models import TinyGPT, TinyGPTConfig
from ..pruning import sparsegpt_prune, wanda_mask
from .check import Case, Exercise, run_check

__all__ = ["EXERCISES", "check_wanda_24_by_hand", "check_obs_remove", "check_error_split",
           "check_perplexity_by_hand", "check_global_densities", "check_is_two_four"]

LLM = "03_pruning_llm"
TINY = "03_pruning_tiny"
ESSENTIAL = "03_essential_sparsity"


# --------------------------------------------------------------------------- wanda_24_by_hand
def _wanda_24_reference(weights, norms):
    """The weights Wanda's 2:4 mask keeps (a one-row layer), pruned ones as 0, as a list."""
    w = torch.tensor([list(weights)], dtype=torch.float64)              # (1, D)
    mask = wanda_mask(w, torch.tensor(list(norms), dtype=torch.float64), nm=(2, 4))
    return torch.where(mask, w, 0.0)[0].tolist()


def _wanda_24_cases():
    g = torch.Generator().manual_seed(3)
    w12 = [round(v, 3) for v in torch.randn(12, generator=g).tolist()]
    n12 = [round(v, 3) for v in (0.1 + 3 * torch.rand(12, generator=g)).tolist()]
    return [
        Case("8 weights 1..8 with equal input norms (plain magnitude)",
             ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], [1.0] * 8)),
        Case("8 weights 1..8 with inputs 5-6 four times larger (the chapter's skewed case)",
             ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], [1.0, 1.0, 1.0, 1.0, 4.0, 4.0, 1.0, 1.0])),
        Case("12 random weights of both signs (|w| counts) with random input norms", (w12, n12)),
        Case("one group with one input that was always zero (norm 0)",
             ([-3.0, 0.5, 2.0, -1.0], [1.0, 2.0, 1.0, 0.0])),
        Case("one group of equal scores: ties go to the earlier positions, as in the package",
             ([2.0, -2.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0])),
    ]


WANDA_24_BY_HAND = Exercise(
    name="wanda_24_by_hand", chapter=LLM,
    task="Wanda's 2:4 selection by |w| * input norm",
    reference=_wanda_24_reference, cases=_wanda_24_cases)


def check_wanda_24_by_hand(student_fn):
    """Check ``wanda_24_by_hand(weights, norms)``: for a list of weights (one output row,
    length a multiple of 4) and the input norms ``||X_j||``, keep in each group of 4
    consecutive weights the 2 with the largest Wanda score ``|w_j| * ||X_j||`` (ties: the
    earlier position) and return the list with the other weights set to 0.

    Compared with :func:`sparsity_core.pruning.wanda_mask` ``(..., nm=(2, 4))`` (sun2024simple,
    Eq. 1 with the N:M comparison group). Taught in Chapter 3, "Pruning II" (Wanda and 2:4).
    """
    return run_check(WANDA_24_BY_HAND, student_fn)


# --------------------------------------------------------------------------- obs_remove
def _obs_remove_reference(w, H, q):
    """SparseGPT's update when it prunes weight ``q`` of a one-row layer (thin adapter).

    Column ``q`` is moved to the front, so that SparseGPT (which compensates a pruned column
    with the columns to its right) may use every other weight, as OBS does; ``percdamp=0``
    because ``H`` is already dampened; ``sparsity = 1/D`` prunes one weight, which the cases
    make the least salient one, ``w[q]``.
    """
    D = w.shape[0]
    order = torch.tensor([q] + [j for j in range(D) if j != q])
    res = sparsegpt_prune(w[order][None, :], H[order][:, order], sparsity=1 / D, percdamp=0.0)
    if res.mask[0, 0]:
        raise ValueError(f"bad check case: SparseGPT pruned another weight than w[{q}]")
    out = torch.empty_like(w)
    out[order] = res.weight[0]
    return out


def _obs_case(seed: int, D: int, q: int) -> tuple:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(64, D, generator=g, dtype=torch.float64) @ torch.randn(D, D, generator=g, dtype=torch.float64)
    H = 2 * X.T @ X / 64
    H.diagonal().add_(0.01 * H.diagonal().mean())                        # dampened, as SparseGPT does
    w = torch.randn(D, generator=g, dtype=torch.float64)
    w = torch.sign(w) * (1.0 + w.abs())                                  # |w| >= 1 ...
    w[q] = 0.05 * torch.sign(w[q])                                       # ... except the one to remove
    return w, H, q


def _obs_cases():
    return [
        Case("an 8-weight row with a correlated Hessian, removing w[0]", _obs_case(1, 8, 0)),
        Case("an 8-weight row, removing w[5] (weights on both sides move)", _obs_case(2, 8, 5)),
        Case("a 5-weight row, removing the last weight w[4]", _obs_case(3, 5, 4)),
        Case("a 2-weight row, removing w[1]", _obs_case(4, 2, 1)),
    ]


OBS_REMOVE = Exercise(
    name="obs_remove", chapter=LLM,
    task="the OBS update that removes one weight of a row",
    reference=_obs_remove_reference, cases=_obs_cases)


def check_obs_remove(student_fn):
    """Check ``obs_remove(w, H, q)``: the row ``w`` ``(D,)`` after removing weight ``q`` with the
    Optimal-Brain-Surgeon update ``w - (w_q / [H^-1]_qq) [H^-1]_{:,q}`` (so ``w[q]`` becomes 0
    and the other weights compensate), for a dampened Hessian ``H`` ``(D, D)``; float64 ``(D,)``.

    Compared with the update :func:`sparsity_core.pruning.sparsegpt_prune` makes when it prunes
    that weight (hassibi1993optimal; frantar2023sparsegpt, Sec. 3). Taught in Chapter 3,
    "Pruning II" (SparseGPT).
    """
    return run_check(OBS_REMOVE, student_fn)


# --------------------------------------------------------------------------- error_split
def _error_split_reference(dW, X):
    """Mean and variance parts of the mean squared output error, from the collector's
    per-column means and (biased) variances of the output change ``X dW^T``."""
    probe = nn.utils.skip_init(nn.Linear, dW.shape[0], 1, bias=False)  # a layer reading X dW^T (no RNG drawn)
    cal = CalibrationCollector(probe, {"out": probe}, gram=False)
    cal.add_batch("out", X @ dW.T)                                     # (N, D_out)
    return float(cal.column_means("out").square().sum()), float(cal.column_variances("out").sum())


def _error_split_cases():
    g = torch.Generator().manual_seed(5)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    X = randn(200, 6)
    return [
        Case("a 3 x 6 weight change on 200 zero-mean-ish inputs", (randn(3, 6), X)),
        Case("the same inputs shifted by means from -2 to 2 (a large mean part)",
             (randn(3, 6), X + torch.linspace(-2, 2, 6, dtype=torch.float64))),
        Case("a single output row (1 x 5) on 7 inputs with means around 1", (randn(1, 5), 1 + randn(7, 5))),
        Case("a 4 x 3 weight change on 10 copies of one input (no variance part)",
             (randn(4, 3), randn(1, 3).repeat(10, 1))),
    ]


ERROR_SPLIT = Exercise(
    name="error_split", chapter=LLM,
    task="the mean and variance parts of the mean squared output error",
    reference=_error_split_reference, cases=_error_split_cases)


def check_error_split(student_fn):
    """Check ``error_split(dW, X)``: for a weight change ``dW`` ``(D_out, D_in)`` and inputs
    ``X`` ``(N, D_in)``, the two parts of the mean squared output error
    ``(1/N) ||X dW^T||_F^2 = ||dW mu||^2 + sum_r dW_r Sigma dW_r^T``, with ``mu`` the input mean
    and ``Sigma`` the biased (1/N) input covariance; a tuple of two floats (mean part,
    variance part).

    Compared with the per-column means and variances of the outputs ``X dW^T`` from
    :class:`sparsity_core.calibration.CalibrationCollector` (DSnoT's statistics,
    zhang2023dynamic). Taught in Chapter 3, "Pruning II" (DSnoT).
    """
    return run_check(ERROR_SPLIT, student_fn)


# --------------------------------------------------------------------------- global_densities
def _global_densities_reference(model, sparsity):
    """One top-|W| over every block Linear weight, then each layer's kept fraction."""
    scores = {f"{name}.weight": layer.weight.detach().abs()
              for name, layer in pretrained.linear_layers(model).items()}
    masks = global_topk_masks(scores, sparsity=sparsity)
    return {name: float(m.double().mean()) for name, m in masks.items()}


def _tiny_bert(seed: int) -> nn.Module:
    from transformers import BertConfig, BertModel  # the chapter's architecture (MiniLM is a BERT)

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=40, max_position_embeddings=32)
    with torch.random.fork_rng(devices=[]):        # BERT's init draws from the global RNG: keep the caller's
        torch.manual_seed(seed)
        return BertModel(config).eval()


def _tiny_gpt(seed: int, n_layer: int) -> TinyGPT:
    config = TinyGPTConfig(vocab_size=11, block_size=8, n_layer=n_layer, n_head=2, n_embd=12)
    with torch.random.fork_rng(devices=[]):    # the layers' default init draws from the global RNG first
        return TinyGPT(config, generator=torch.Generator().manual_seed(seed))


def _global_densities_cases():
    return [
        Case("a 2-block BERT encoder (width 16, FFN 40, random init) at 50 % sparsity", (_tiny_bert(0), 0.5)),
        Case("the same kind of encoder at 90 % sparsity", (_tiny_bert(1), 0.9)),
        Case("a 3-block TinyGPT (C = 12; smaller c_proj init) at 70 % sparsity", (_tiny_gpt(2, 3), 0.7)),
        Case("a 1-block TinyGPT at 0 % sparsity (every density 1)", (_tiny_gpt(3, 1), 0.0)),
    ]


GLOBAL_DENSITIES = Exercise(
    name="global_densities", chapter=ESSENTIAL,
    task="per-layer densities under one global magnitude threshold",
    reference=_global_densities_reference, cases=_global_densities_cases)


def check_global_densities(student_fn):
    """Check ``global_densities(model, sparsity)``: prune every block Linear weight of
    ``model`` (the layers :func:`sparsity_core.pretrained.linear_layers` lists) with one
    magnitude threshold shared by all layers, keeping ``round((1 - sparsity) * N)`` weights of
    the ``N`` in total, and return ``{"<layer name>.weight": fraction kept}`` (floats).

    Compared with :func:`sparsity_core.masks.global_topk_masks` on ``|W|`` (class-blind
    pruning, see2016compression). Taught in Chapter 3, "Essential sparsity" (layer-wise vs
    global magnitude pruning of the MiniLM encoder).
    """
    return run_check(GLOBAL_DENSITIES, student_fn)


# --------------------------------------------------------------------------- is_two_four
def _is_two_four_reference(weight):
    """2:4 iff every nonzero is among the 2 largest |w| of its group of 4 (``nm_mask``)."""
    kept = nm_mask(weight.abs(), 2, 4)
    return not bool(((weight != 0) & ~kept).any())


def _is_two_four_cases():
    g = torch.Generator().manual_seed(7)
    w = torch.randn(8, 16, generator=g)
    two_four = w * nm_mask(torch.rand(8, 16, generator=g), 2, 4)
    one_more = two_four.clone()
    group = one_more[5, 8:12]                                           # a view: fills one_more
    group[group == 0] = 0.3
    sparse = torch.zeros(3, 12)
    sparse[0, [1, 3, 4, 11]] = torch.tensor([-1.5, 0.2, 2.0, -0.7])     # groups with 2, 1 and 1 nonzeros
    sparse[2, [8, 9]] = torch.tensor([1e-6, -3.0])
    three = sparse.clone()
    three[1, [4, 6, 7]] = torch.tensor([0.5, -0.5, 0.1])
    return [
        Case("an 8 x 16 weight pruned to 2:4 at random positions", (two_four,)),
        Case("that weight with one group (row 5, entries 8-11) filled back to 4 nonzeros", (one_more,)),
        Case("a dense 2 x 8 weight of ones", (torch.ones(2, 8),)),
        Case("a 3 x 12 weight with 0, 1 or 2 nonzeros (of both signs) per group", (sparse,)),
        Case("that 3 x 12 weight with 3 nonzeros in one group (row 1, entries 4-7)", (three,)),
        Case("a single all-zero row of 4", (torch.zeros(1, 4),)),
    ]


IS_TWO_FOUR = Exercise(
    name="is_two_four", chapter=ESSENTIAL,
    task="whether a weight is 2:4 sparse",
    reference=_is_two_four_reference, cases=_is_two_four_cases)


def check_is_two_four(student_fn):
    """Check ``is_two_four(weight)``: True when every group of 4 consecutive entries along the
    last dimension of a 2-D ``weight`` (``D_in`` a multiple of 4) has at most 2 nonzeros,
    else False (a Python bool).

    Compared with :func:`sparsity_core.masks.nm_mask` ``(|W|, 2, 4)``: a weight is 2:4 when
    that mask keeps every nonzero (N:M sparsity, zhou2021learning; 2:4 is NVIDIA's sparse
    tensor-core format). Taught in Chapter 3, "Essential sparsity" (the 2:4 encoder).
    """
    return run_check(IS_TWO_FOUR, student_fn)


# --------------------------------------------------------------------------- perplexity_by_hand
def _perplexity_reference(model, ids, T):
    """The package's block perplexity (non-overlapping blocks of ``T``, every next token inside)."""
    return pretrained.perplexity(model.eval(), ids, block_size=T, batch_size=4)


def _perplexity_cases():
    g = torch.Generator().manual_seed(11)
    ids = torch.randint(0, 11, (40,), generator=g)
    return [
        Case("a 2-block TinyGPT (vocabulary 11) on 40 random tokens in blocks of 8", (_tiny_gpt(4, 2), ids, 8)),
        Case("the same tokens in blocks of 5 (the model's context is 8)", (_tiny_gpt(4, 2), ids, 5)),
        Case("43 tokens: the last 3 make no block and are left out", (_tiny_gpt(5, 1), torch.cat([ids, ids[:3]]), 8)),
        Case("blocks of 2: one prediction per block", (_tiny_gpt(6, 1), ids[:10], 2)),
    ]


PERPLEXITY_BY_HAND = Exercise(
    name="perplexity_by_hand", chapter=TINY,
    task="the perplexity of a causal LM over non-overlapping blocks",
    reference=_perplexity_reference, cases=_perplexity_cases)


def check_perplexity_by_hand(student_fn):
    """Check ``perplexity_by_hand(model, ids, T)``: for a causal LM in eval mode, ``ids`` ``(N,)``
    and a block length ``T``, ``exp`` of the mean next-token cross-entropy over the
    ``N // T`` non-overlapping blocks of ``T`` tokens (``T - 1`` predictions each); a float.

    Compared with :func:`sparsity_core.pretrained.perplexity`. Taught in Chapter 3, "Pruning II",
    part 2 (every number of that part is a perplexity).
    """
    return run_check(PERPLEXITY_BY_HAND, student_fn)


#: The chapter's checked exercises.
EXERCISES: tuple[Exercise, ...] = (WANDA_24_BY_HAND, OBS_REMOVE, ERROR_SPLIT, PERPLEXITY_BY_HAND, GLOBAL_DENSITIES,
                                   IS_TWO_FOUR)
