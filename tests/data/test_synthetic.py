import math

import pytest
import torch

from sparsity_core.data.synthetic import column_walk_entropy, column_walk_images, marked_lookup


def test_column_walk_rows_move_by_at_most_one_level():
    g = torch.Generator().manual_seed(0)
    x = column_walk_images(64, 6, 5, generator=g).view(64, 6, 6)
    assert x.dtype == torch.long and x.min() >= 0 and x.max() <= 4
    step = x[:, 1:] - x[:, :-1]
    assert step.abs().max() <= 1
    # all three moves and the clamp occur
    assert set(step.unique().tolist()) == {-1, 0, 1}


def test_column_walk_is_seeded():
    a = column_walk_images(3, 4, 8, generator=torch.Generator().manual_seed(1))
    b = column_walk_images(3, 4, 8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_column_walk_pixels_are_uniform():
    x = column_walk_images(4000, 8, 4, generator=torch.Generator().manual_seed(2))
    freq = torch.bincount(x.view(4000, 8, 8)[:, -1].flatten(), minlength=4).double() / (4000 * 8)
    assert torch.allclose(freq, torch.full((4,), 0.25, dtype=torch.float64), atol=0.01)


def test_column_walk_entropy_closed_form():
    # side 2, levels 2: targets 1 (row 0: log 2), 2 and 3 (edge levels only: H(1/3))
    h = -(1 / 3) * math.log(1 / 3) - (2 / 3) * math.log(2 / 3)
    assert column_walk_entropy(2, 2) == pytest.approx((math.log(2) + 2 * h) / 3, rel=1e-12)


def test_column_walk_entropy_matches_the_empirical_conditional_entropy():
    side, L = 4, 6
    x = column_walk_images(60000, side, L, generator=torch.Generator().manual_seed(3)).view(-1, side, side)
    above, below = x[:, :-1].flatten(), x[:, 1:].flatten()
    joint = torch.zeros(L, L, dtype=torch.float64)
    joint.index_put_((above, below), torch.ones_like(above, dtype=torch.float64), accumulate=True)
    p = joint / joint.sum()
    cond = p / p.sum(1, keepdim=True)
    h_below = float(-(p * torch.where(cond > 0, cond.log(), torch.zeros_like(cond))).sum())
    n = side * side
    empirical = ((side - 1) * math.log(L) + (n - side) * h_below) / (n - 1)
    assert column_walk_entropy(side, L) == pytest.approx(empirical, abs=0.01)


def test_marked_lookup_targets_the_marked_value():
    x, y, key = marked_lookup(50, 17, 5, generator=torch.Generator().manual_seed(4))
    assert x.shape == y.shape == (50, 17) and key.shape == (50,)
    marked = x >= 5
    assert torch.equal(marked.sum(1), torch.ones(50, dtype=torch.long))
    assert torch.equal(marked.float().argmax(1), key)
    assert torch.equal(x[torch.arange(50), key] - 5, y[:, 0])
    assert torch.equal(y, y[:, :1].expand(50, 17))
    assert x.max() < 10


@pytest.mark.parametrize("call, err", [
    (lambda: column_walk_images(0, 4, 4), ValueError),
    (lambda: column_walk_images(2, 1, 4), ValueError),
    (lambda: column_walk_images(2, 4, 1), ValueError),
    (lambda: column_walk_images(2, 4.0, 4), TypeError),
    (lambda: column_walk_entropy(4, 1), ValueError),
    (lambda: marked_lookup(2, 0, 4), ValueError),
    (lambda: marked_lookup(2, 8, 1), ValueError),
    (lambda: marked_lookup(2, 8, 4, generator=3), TypeError),
])
def test_bad_input(call, err):
    with pytest.raises(err):
        call()
