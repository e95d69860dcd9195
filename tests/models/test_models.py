"""MLP, CNN1d, CNN2d and the shared helpers: shapes, gradients, explicit-generator init."""
import math

import pytest
import torch
from torch import nn

from sparsity_core.models import CNN1d, CNN2d, MLP, num_params, reset_parameters_


def _backward_reaches_all(model: nn.Module, out: torch.Tensor) -> None:
    out.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_mlp_flattens_and_names_layers():
    model = MLP([12, 7, 5, 3])
    out = model(torch.randn(4, 3, 4))  # (B, 3, 4) flattens to (B, 12)
    assert out.shape == (4, 3)
    assert [n for n, _ in model.named_children()] == ["flatten", "fc1", "act1", "fc2", "act2", "fc3"]
    assert isinstance(model.act1, nn.ReLU) and model.sizes == (12, 7, 5, 3)
    _backward_reaches_all(model, out)


def test_mlp_options():
    model = MLP([4, 6, 2], activation=nn.GELU, bias=False)
    assert isinstance(model.act1, nn.GELU)
    assert model.fc1.bias is None and model.fc2.bias is None
    assert MLP([4, 2])(torch.randn(3, 4)).shape == (3, 2)  # a single linear layer


@pytest.mark.parametrize("sizes", [[3], [], [3, 0, 2]])
def test_mlp_rejects_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes"):
        MLP(sizes)


@pytest.mark.parametrize("sizes", [[3, 2.0], [3, True]])
def test_mlp_rejects_sizes_that_are_not_ints_with_a_type_error(sizes):
    with pytest.raises(TypeError, match=r"sizes\[1\] must be an int"):
        MLP(sizes)


def test_mlp_rejects_bad_activation():
    with pytest.raises(TypeError, match="activation"):
        MLP([3, 3, 2], activation=nn.ReLU())  # a module instance, not a factory
    with pytest.raises(TypeError, match="activation"):
        MLP([3, 3, 2], activation=lambda: "relu")


def test_generator_init_is_a_function_of_the_seed():
    def build(seed):
        return MLP([5, 8, 3], generator=torch.Generator().manual_seed(seed)).state_dict()
    a, b, c = build(1), build(1), build(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["fc1.weight"], c["fc1.weight"])
    with pytest.raises(TypeError, match="generator"):
        MLP([5, 3], generator=1)


def test_reset_parameters_matches_pytorch_default_bounds():
    model = nn.Sequential(nn.Linear(50, 20), nn.Conv1d(3, 4, 5), nn.Conv2d(2, 3, 3))
    reset_parameters_(model, torch.Generator().manual_seed(0))
    for layer in model:
        bound = 1 / math.sqrt(layer.weight[0].numel())  # kaiming_uniform(a=sqrt 5) == 1/sqrt(fan_in)
        assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound
        assert layer.weight.abs().max() > 0.8 * bound  # really uniform over the range


@pytest.mark.parametrize("channels", [(32, 32, 32), (8,), (4, 4, 4, 4, 4, 4, 4)])
def test_cnn1d_shapes(channels):
    model = CNN1d(channels=channels, kernel_size=3, num_classes=7)
    x = torch.randn(5, 40)
    out = model(x)
    assert out.shape == (5, 7)
    torch.testing.assert_close(model(x.unsqueeze(1)), out)  # (B, L) == (B, 1, L)
    _backward_reaches_all(model, out)


def test_cnn1d_rejects_bad_input_and_config():
    model = CNN1d()
    with pytest.raises(ValueError, match="CNN1d expects"):
        model(torch.randn(2, 41))
    with pytest.raises(ValueError, match="CNN1d expects"):
        model(torch.randn(2, 2, 40))
    with pytest.raises(ValueError, match="odd"):
        CNN1d(kernel_size=4)
    with pytest.raises(ValueError, match="channels"):
        CNN1d(channels=())


@pytest.mark.parametrize("side", [8, 28])
@pytest.mark.parametrize("channels", [(16, 32), (4, 4, 4, 4)])
def test_cnn2d_digits_and_mnist_sizes(side, channels):
    model = CNN2d(channels=channels)
    out = model(torch.randn(3, 1, side, side))
    assert out.shape == (3, 10)
    _backward_reaches_all(model, out)


def test_cnn2d_same_head_for_both_sizes_and_errors():
    model = CNN2d(channels=(4, 6), pool=3, num_classes=5)
    assert model.head.in_features == 6 * 3 * 3
    assert model(torch.randn(2, 1, 8, 8)).shape == model(torch.randn(2, 1, 28, 28)).shape == (2, 5)
    with pytest.raises(ValueError, match="CNN2d expects"):
        model(torch.randn(2, 8, 8))
    with pytest.raises(ValueError, match="pool"):
        CNN2d(pool=0)


def test_cnn_generator_init():
    a = CNN2d(generator=torch.Generator().manual_seed(3)).state_dict()
    b = CNN2d(generator=torch.Generator().manual_seed(3)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_num_params_counts_tied_weights_once_and_skips_embeddings():
    mlp = MLP([4, 3, 2])
    assert num_params(mlp) == num_params(mlp, non_embedding=False) == 4 * 3 + 3 + 3 * 2 + 2

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.body = nn.Linear(4, 4)
            self.head = nn.Linear(4, 10, bias=False)
            self.head.weight = self.emb.weight

    assert num_params(Tied(), non_embedding=False) == 40 + 20
    assert num_params(Tied()) == 20


def test_cnn1d_known_answer_value_and_gradients():
    # one conv channel, kernel [1, 1, 1], stride 2, padding 1 on x = [1, 2, 3, 4]:
    # windows [0, 1, 2] and [2, 3, 4] -> [3, 9]; ReLU keeps them; head [1, -1] + 0.5 -> -5.5
    model = CNN1d(channels=(1,), kernel_size=3, num_classes=1, length=4).double()
    with torch.no_grad():
        model.features.conv1.weight.copy_(torch.ones(1, 1, 3))
        model.features.conv1.bias.zero_()
        model.head.weight.copy_(torch.tensor([[1.0, -1.0]]))
        model.head.bias.fill_(0.5)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    out = model(x)
    assert out.item() == -5.5
    out.sum().backward()
    torch.testing.assert_close(model.head.weight.grad, torch.tensor([[3.0, 9.0]], dtype=torch.float64))
    # d out / d kernel = 1 * [0, 1, 2] - 1 * [2, 3, 4]; the bias gradient cancels (1 - 1)
    torch.testing.assert_close(model.features.conv1.weight.grad, torch.full((1, 1, 3), -2.0, dtype=torch.float64))
    assert model.features.conv1.bias.grad.item() == 0.0
    # d out / d x: x_1 and x_2 feed only the first window, x_3 only the second, x_2 is shared
    torch.testing.assert_close(x.grad, torch.tensor([[1.0, 0.0, -1.0, -1.0]], dtype=torch.float64))


def test_cnn2d_known_answer_value_and_gradient():
    # an identity 3x3 kernel passes [[1, 2], [3, 4]] through; ReLU keeps it; the 2x2 max-pool
    # picks 4; the 1x1 average pool keeps 4; head 2 * 4 + 1 = 9; only the maximum gets gradient
    model = CNN2d(channels=(1,), num_classes=1, pool=1).double()
    with torch.no_grad():
        kernel = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
        kernel[0, 0, 1, 1] = 1.0
        model.features.conv1.weight.copy_(kernel)
        model.features.conv1.bias.zero_()
        model.head.weight.fill_(2.0)
        model.head.bias.fill_(1.0)
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64, requires_grad=True)
    out = model(x)
    assert out.item() == 9.0
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([[[[0.0, 0.0], [0.0, 2.0]]]], dtype=torch.float64))
