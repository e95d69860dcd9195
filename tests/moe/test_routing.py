"""Routing record, capacity arithmetic and slot numbering, on hand-worked cases."""
import pytest
import torch

from sparsity_core.moe import (Routing, apply_capacity, dropped_fraction, expert_capacity, expert_counts,
                               slot_positions, unrouted_fraction)

pytestmark = pytest.mark.usefixtures("one_thread")


def _routing(experts, kept=None, dropped=None, E=3, **kw):
    experts = torch.tensor(experts)
    kept = torch.ones_like(experts, dtype=torch.bool) if kept is None else torch.tensor(kept)
    dropped = torch.zeros_like(kept) if dropped is None else torch.tensor(dropped)
    return Routing(experts=experts, weights=torch.ones(experts.shape), kept=kept, dropped=dropped,
                   num_experts=E, **kw)


@pytest.mark.parametrize("N, E, cf, k, expected", [
    (8, 4, 1.0, 1, 2), (8, 4, 1.25, 1, 3), (10, 11, 1.1, 1, 1), (3, 4, 0.1, 1, 1),
    (8, 4, 1.0, 2, 4), (7, 2, 2.0, 1, 7), (100, 8, 1.25, 1, 16),
])
def test_expert_capacity_is_the_ceiling_of_cf_tokens_over_experts(N, E, cf, k, expected):
    assert expert_capacity(N, E, cf, k) == expected


@pytest.mark.parametrize("cf", [0, 0.0, -1.0])
def test_expert_capacity_rejects_a_nonpositive_factor(cf):
    with pytest.raises(ValueError, match="capacity_factor"):
        expert_capacity(8, 4, cf)


def test_slot_positions_count_earlier_kept_slots_first_choices_first():
    # tokens 0..3, k = 2; first choices: 0, 0, 1, 0; second choices: 1, 2, 0, 1
    experts = torch.tensor([[0, 1], [0, 2], [1, 0], [0, 1]])
    kept = torch.tensor([[True, True], [True, True], [True, False], [True, True]])
    pos = slot_positions(experts, kept, 3)
    # expert 0: tokens 0, 1, 3 (first choices) -> 0, 1, 2; token 2's second choice is not kept
    # expert 1: token 2 (first choice) -> 0, then tokens 0, 3 (second choices) -> 1, 2
    assert pos.tolist() == [[0, 1], [1, 0], [0, -1], [2, 2]]


def test_apply_capacity_drops_the_overflow_in_token_order():
    experts = torch.tensor([[1], [1], [0], [1], [1]])
    kept, dropped = apply_capacity(experts, torch.ones(5, 1, dtype=torch.bool), 2, capacity=2)
    assert kept[:, 0].tolist() == [True, True, True, False, False]
    assert dropped[:, 0].tolist() == [False, False, False, True, True]


def test_counts_and_fractions():
    r = _routing([[0], [0], [2], [0]], kept=[[True], [True], [True], [False]],
                 dropped=[[False], [False], [False], [True]])
    assert expert_counts(r).tolist() == [2, 0, 1]
    assert dropped_fraction(r) == 0.25 and unrouted_fraction(r) == 0.25
    g = r.gates()
    assert g.tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0]]


def test_routing_validates_its_fields():
    with pytest.raises(ValueError, match="experts must lie"):
        _routing([[0], [3]])
    with pytest.raises(ValueError, match="experts must be"):
        Routing(experts=torch.zeros(3, dtype=torch.long), weights=torch.ones(3), kept=torch.ones(3, dtype=torch.bool),
                dropped=torch.zeros(3, dtype=torch.bool), num_experts=2)
    with pytest.raises(ValueError, match="both kept and dropped"):
        _routing([[0]], kept=[[True]], dropped=[[True]])
    with pytest.raises(ValueError, match="logits"):
        _routing([[0], [1]], logits=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="no router logits"):
        _routing([[0]]).probs()
    with pytest.raises(TypeError, match="num_experts"):
        _routing([[0]], E=2.0)
