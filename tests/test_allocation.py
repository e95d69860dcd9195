"""allocation: uniform / ER / ERK budgets (exact budget, capping at 1, the targets file's
check values) and the list of prunable weights."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sparsity_core.allocation import (erdos_renyi_allocation, erdos_renyi_densities, layer_shapes,
                                      uniform_densities)
from sparsity_core.masks import apply_masks, random_mask
from sparsity_core.models import MLP, CNN1d, TinyGPT, TinyGPTConfig


def _mlp_shapes(*sizes):
    return {f"fc{i}.weight": (d_out, d_in) for i, (d_in, d_out) in enumerate(zip(sizes, sizes[1:]), start=1)}


def _budget(shapes, densities):
    return sum(densities[n] * math.prod(s) for n, s in shapes.items())


@pytest.mark.parametrize("sizes, s, expected, epsilon", [
    ((40, 256, 256, 10), 0.9, (0.2108, 0.0570, 0.7579), 7.294),
    ((40, 256, 256, 10), 0.8, (0.4689, 0.1267, 1.0), 16.22),
    ((64, 256, 256, 10), 0.9, (0.1503, 0.0601, 0.7995), None),
])
def test_erk_check_values_from_the_targets_file(sizes, s, expected, epsilon):
    shapes = _mlp_shapes(*sizes)
    result = erdos_renyi_allocation(shapes, sparsity=s)
    assert [round(d, 4) for d in result.densities.values()] == list(expected)
    if epsilon is not None:
        assert round(result.epsilon, 4 - len(str(int(epsilon)))) == epsilon
    assert math.isclose(_budget(shapes, result.densities), (1 - s) * sum(math.prod(v) for v in shapes.values()),
                        rel_tol=1e-9)
    if 1.0 in expected:
        assert result.dense == ("fc3.weight",) and result.densities["fc3.weight"] == 1.0


@settings(max_examples=40, deadline=None)
@given(shapes=st.lists(st.tuples(st.integers(1, 300), st.integers(1, 300), st.sampled_from([(), (3,), (3, 3)])),
                       min_size=1, max_size=6),
       s=st.floats(0.0, 0.99), kernel=st.booleans())
def test_erk_meets_its_budget_and_caps_at_one(shapes, s, kernel):
    shapes = {f"l{i}": (a, b, *k) for i, (a, b, k) in enumerate(shapes)}
    result = erdos_renyi_allocation(shapes, sparsity=s, kernel=kernel)
    total = sum(math.prod(v) for v in shapes.values())
    assert math.isclose(_budget(shapes, result.densities), (1 - s) * total, rel_tol=1e-9)
    assert all(0 < d <= 1 for d in result.densities.values())
    assert all(result.densities[n] == 1.0 for n in result.dense)
    # capped layers are exactly those whose uncapped ER density would exceed 1
    free = [n for n in shapes if n not in result.dense]
    assert all(result.densities[n] <= 1 + 1e-12 for n in free)


def test_er_ignores_the_kernel_and_erk_uses_it():
    shapes = {"conv": (16, 8, 3, 3), "fc": (10, 64)}
    er = erdos_renyi_allocation(shapes, sparsity=0.9, kernel=False)
    erk = erdos_renyi_allocation(shapes, sparsity=0.9)
    assert math.isclose(er.densities["conv"] / er.densities["fc"],
                        ((16 + 8) / (16 * 8)) / ((10 + 64) / (10 * 64)))
    assert math.isclose(erk.densities["conv"] / erk.densities["fc"],
                        ((16 + 8 + 3 + 3) / (16 * 8 * 9)) / ((10 + 64) / (10 * 64)))


def test_fixed_layers_are_left_out_of_the_budget_as_in_rigl():
    shapes = _mlp_shapes(40, 256, 256, 10)
    result = erdos_renyi_densities(shapes, sparsity=0.9, fixed={"fc1.weight": 1.0})
    assert result["fc1.weight"] == 1.0
    rest = {n: s for n, s in shapes.items() if n != "fc1.weight"}
    assert math.isclose(_budget(rest, result), 0.1 * sum(math.prod(s) for s in rest.values()), rel_tol=1e-9)


def test_density_one_is_all_dense_and_uniform_is_uniform():
    shapes = _mlp_shapes(40, 256, 10)
    assert set(erdos_renyi_densities(shapes, density=1.0).values()) == {1.0}
    assert uniform_densities(shapes, sparsity=0.75) == {"fc1.weight": 0.25, "fc2.weight": 0.25}


@pytest.mark.parametrize("call, argument", [
    (lambda: erdos_renyi_densities(_mlp_shapes(4, 8, 2), sparsity=1.0), "sparsity"),
    (lambda: uniform_densities(_mlp_shapes(4, 8, 2), sparsity=-0.5), "sparsity"),
    (lambda: erdos_renyi_densities({}, sparsity=0.5), "shapes"),
    (lambda: erdos_renyi_densities({"a": (0, 3)}, sparsity=0.5), "shapes"),
    (lambda: erdos_renyi_densities(_mlp_shapes(4, 8, 2), sparsity=0.5, power=0), "power"),
    (lambda: erdos_renyi_densities(_mlp_shapes(4, 8, 2), sparsity=0.5, fixed={"x": 1.0}), "fixed"),
    (lambda: erdos_renyi_densities(_mlp_shapes(4, 8, 2), sparsity=0.5, fixed={"fc1.weight": 1.5}),
     "fixed"),
    (lambda: erdos_renyi_densities({"b": (5,)}, sparsity=0.5, kernel=False), "kernel"),
])
def test_bad_input_raises(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


@pytest.mark.parametrize("call, argument", [
    (lambda: uniform_densities(_mlp_shapes(4, 8, 2), sparsity="0.5"), "sparsity"),
    (lambda: erdos_renyi_densities(_mlp_shapes(4, 8, 2), sparsity=0.5, power="1"), "power"),
])
def test_an_argument_of_the_wrong_type_raises_a_type_error(call, argument):
    with pytest.raises(TypeError, match=f"{argument} must be"):
        call()


def test_layer_shapes_lists_linear_and_conv_weights_only():
    mlp = MLP([6, 16, 3])
    assert layer_shapes(mlp) == {"fc1.weight": torch.Size([16, 6]), "fc2.weight": torch.Size([3, 16])}
    assert list(layer_shapes(mlp, exclude=["fc2.weight"])) == ["fc1.weight"]
    with pytest.raises(ValueError, match="exclude"):
        layer_shapes(mlp, exclude=["fc2.bias"])
    cnn = CNN1d()
    names = list(layer_shapes(cnn))
    assert names and all(n.endswith(".weight") for n in names) and any("conv" in n for n in names)
    norm = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Embedding(5, 4))
    assert list(layer_shapes(norm)) == ["0.weight"]


def test_layer_shapes_skips_a_tied_head_and_sees_through_masks():
    gpt = TinyGPT(TinyGPTConfig(vocab_size=32, block_size=8, n_layer=1, n_head=2, n_embd=16))
    names = list(layer_shapes(gpt))
    assert names and not any("lm_head" in n or "wte" in n for n in names)
    mlp = MLP([6, 16, 3])
    before = layer_shapes(mlp)
    apply_masks(mlp, {"fc1.weight": random_mask((16, 6), 0.5, generator=torch.Generator().manual_seed(0))})
    assert layer_shapes(mlp) == before
