"""dst.condensed: CondensedLinear against its slow twin, the dense masked layer
``x @ (mask * W)^T + b``, in values and gradients, on awkward shapes and both forward paths."""
import sys

import pytest
import torch

from sparsity_core import paths
from sparsity_core.dst import CondensedLinear, constant_fan_in_mask
from sparsity_core.dst import condensed as condensed_module
from sparsity_core.dst.condensed import EMBEDDING_BAG_MIN_ROWS
from sparsity_core.dst.condensed_kernel import available, condensed_matvec

pytestmark = pytest.mark.usefixtures("one_thread")


def _case(d_out, d_in, k, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    mask = constant_fan_in_mask((d_out, d_in), k / d_in, generator=g)
    b = torch.randn(d_out, generator=g, dtype=torch.float64) if bias else None
    return weight, mask, b


def _reference(x, weight, mask, bias):
    y = x @ torch.where(mask, weight, 0).T
    return y if bias is None else y + bias


@pytest.mark.parametrize("d_out, d_in, k, lead, bias", [
    (5, 7, 1, (3,), True),          # k = 1
    (5, 7, 7, (3,), True),          # k = D_in: dense
    (1, 9, 4, (3,), True),          # one output
    (6, 8, 3, (1,), True),          # one row: the gather path
    (6, 8, 3, (2, 4), False),       # leading dimensions, no bias
    (6, 8, 3, (0,), True),          # empty batch
    (4, 16, 5, (EMBEDDING_BAG_MIN_ROWS,), True),
])
def test_values_and_gradients_equal_the_dense_masked_layer(d_out, d_in, k, lead, bias):
    weight, mask, b = _case(d_out, d_in, k, bias)
    layer = CondensedLinear.from_masked(weight, mask, b)
    assert (layer.out_features, layer.fan_in, layer.in_features) == (d_out, k, d_in)
    x = torch.randn(*lead, d_in, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    w_ref = weight.clone().requires_grad_(True)
    b_ref = None if b is None else b.clone().requires_grad_(True)
    y, y_ref = layer(x), _reference(x_ref, w_ref, mask, b_ref)
    assert y.shape == (*lead, d_out)
    torch.testing.assert_close(y, y_ref)
    upstream = torch.randn_like(y)
    (y * upstream).sum().backward()
    (y_ref * upstream).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(layer.to_dense().detach(), torch.where(mask, weight, 0))
    dense_values_grad = layer.values.new_zeros(d_out, d_in).scatter(1, layer.indices.long(), layer.values.grad)
    torch.testing.assert_close(dense_values_grad, torch.where(mask, w_ref.grad, 0))
    if b is not None:
        torch.testing.assert_close(layer.bias.grad, b_ref.grad)


@pytest.mark.parametrize("rows", [1, 5])
def test_non_contiguous_inputs(rows):
    weight, mask, b = _case(6, 10, 4)
    layer = CondensedLinear.from_masked(weight, mask, b)
    wide = torch.randn(rows, 20, dtype=torch.float64)
    for x in (wide[:, ::2], torch.randn(10, rows, dtype=torch.float64).T):
        assert not x.is_contiguous() or rows == 1
        torch.testing.assert_close(layer(x), _reference(x, weight, mask, b))


def test_indices_are_each_rows_inputs_in_order():
    weight = torch.arange(12.0).reshape(3, 4)
    mask = torch.tensor([[1, 0, 1, 0], [0, 1, 1, 0], [1, 0, 0, 1]])
    layer = CondensedLinear.from_masked(weight, mask)
    assert layer.indices.tolist() == [[0, 2], [1, 2], [0, 3]]
    assert layer.values.tolist() == [[0.0, 2.0], [5.0, 6.0], [8.0, 11.0]]
    assert "fan_in=2" in repr(layer)


@pytest.mark.parametrize("d_out, d_in, k, lead, bias", [
    (5, 7, 1, (), True),            # k = 1, a 1-D input
    (5, 7, 7, (1,), True),          # k = D_in
    (1, 9, 4, (1,), False),         # one output, no bias
    (37, 101, 13, (1, 1), True),    # odd sizes, leading dimensions of one row
    (300, 784, 78, (1,), True),     # LeNet-300-100's first layer at 90 %
])
def test_the_compiled_kernel_equals_the_eager_path_and_the_dense_layer(d_out, d_in, k, lead, bias):
    assert available(), "numba is a dependency of the package: the compiled kernel must be available"
    weight, mask, b = _case(d_out, d_in, k, bias, seed=k)
    weight, b = weight.float(), None if b is None else b.float()
    fast = CondensedLinear.from_masked(weight, mask, b)
    slow = CondensedLinear.from_masked(weight, mask, b, use_kernel=False)
    x = torch.randn(*lead, d_in)
    with torch.no_grad():
        assert fast._kernel_applies(x.reshape(-1, d_in)) and not slow._kernel_applies(x.reshape(-1, d_in))
        y_fast, y_slow = fast(x), slow(x)
    assert y_fast.shape == y_slow.shape == (*lead, d_out)
    torch.testing.assert_close(y_fast, y_slow, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y_fast, _reference(x.double(), weight.double(), mask, None if b is None else b.double()).float(),
                               rtol=1e-5, atol=1e-5)


def test_the_kernel_is_not_used_where_gradients_are_recorded_or_it_is_missing(monkeypatch):
    weight, mask, b = _case(6, 8, 3)
    weight, b = weight.float(), b.float()
    layer = CondensedLinear.from_masked(weight, mask, b)
    x = torch.randn(1, 8)
    assert not layer._kernel_applies(x)                  # values require grad, grad mode on
    y = layer(x)
    assert y.grad_fn is not None
    y.sum().backward()
    assert layer.values.grad is not None
    assert not layer._kernel_applies(x.double())         # float32 only
    assert not layer._kernel_applies(torch.randn(2, 8))  # one row only
    monkeypatch.setattr(condensed_module, "kernel_available", lambda: False)
    with torch.no_grad():
        assert not layer._kernel_applies(x)
        torch.testing.assert_close(layer(x), _reference(x, weight, mask, b))


def test_the_kernel_rejects_bad_input():
    values, indices, x = torch.randn(3, 2), torch.zeros(3, 2, dtype=torch.int32), torch.randn(4)
    with pytest.raises(ValueError, match=r"\(D_out, k\)"):
        condensed_matvec(x, values, indices[:, :1])
    with pytest.raises(ValueError, match=r"\(D_in,\)"):
        condensed_matvec(x[None], values, indices)
    with pytest.raises(TypeError, match="int32"):
        condensed_matvec(x, values, indices.long())
    with pytest.raises(ValueError, match="bias"):
        condensed_matvec(x, values, indices, torch.zeros(2))
    torch.testing.assert_close(condensed_matvec(x, values, indices), values.sum(1) * x[0])
    with pytest.raises(TypeError, match="use_kernel"):
        CondensedLinear(values, indices, 4, use_kernel=1)


def test_bad_input_raises_clear_errors():
    weight = torch.randn(3, 4)
    uneven = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1]])
    with pytest.raises(ValueError, match="constant fan-in"):
        CondensedLinear.from_masked(weight, uneven)
    with pytest.raises(ValueError, match="shape"):
        CondensedLinear.from_masked(weight, torch.ones(4, 3))
    with pytest.raises(ValueError, match="2-D"):
        CondensedLinear.from_masked(torch.randn(4), torch.ones(4))
    with pytest.raises(ValueError, match="no inputs"):
        CondensedLinear.from_masked(weight, torch.zeros(3, 4))
    with pytest.raises(ValueError, match="bias"):
        CondensedLinear.from_masked(weight, torch.ones(3, 4), torch.zeros(4))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        CondensedLinear(torch.ones(3, 1), torch.full((3, 1), 4), 4)
    layer = CondensedLinear.from_masked(weight, torch.ones(3, 4))
    with pytest.raises(ValueError, match=r"\(\*, 4\)"):
        layer(torch.randn(2, 5))


def test_the_benchmark_script_runs_on_a_small_layer(capsys):
    sys.path.insert(0, str(paths.repo_root() / "ci"))
    try:
        import bench_condensed
    finally:
        sys.path.pop(0)
    assert bench_condensed.main(["--size", "32", "--sparsity", "0.9", "--batch", "1", "3", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "embedding_bag" in out and "csr/condensed" in out
