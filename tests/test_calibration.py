"""CalibrationCollector: X^T X, squared column norms and row counts against direct sums."""
import pytest
import torch
from torch import nn

from sparsity_core.calibration import CalibrationCollector
from sparsity_core.models import TinyGPT, TinyGPTConfig, capture


def _net(dtype=torch.float64):
    return nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3)).to(dtype)


def _batches(dtype=torch.float64, shapes=((4, 5), (6, 5), (1, 5))):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(*s, generator=g).to(dtype) for s in shapes]


def _assert_stats(cal, name, X):
    """X: all inputs of the layer, (N, d_in), float64."""
    stats = cal.stats[name]
    torch.testing.assert_close(stats.xtx, X.T @ X, rtol=1e-10, atol=0)
    torch.testing.assert_close(stats.sq_norms, torch.diagonal(stats.xtx), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(stats.sq_norms, X.square().sum(0), rtol=1e-10, atol=0)
    assert stats.rows == cal.rows(name) == X.shape[0]
    torch.testing.assert_close(cal.hessian(name), 2 * X.T @ X / X.shape[0], rtol=1e-10, atol=0)
    torch.testing.assert_close(cal.column_norms(name), X.norm(dim=0), rtol=1e-10, atol=0)
    torch.testing.assert_close(cal.column_means(name), X.mean(dim=0), rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(cal.column_variances(name), X.var(dim=0, unbiased=False), rtol=1e-8, atol=1e-12)


def test_hand_worked_case():
    layer = nn.Linear(2, 1).double()
    with CalibrationCollector(layer, {"fc": layer}) as cal:
        layer(torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64))
    assert cal.stats["fc"].xtx.tolist() == [[10.0, 14.0], [14.0, 20.0]]
    assert cal.stats["fc"].sq_norms.tolist() == [10.0, 20.0]
    assert cal.hessian("fc").tolist() == [[10.0, 14.0], [14.0, 20.0]]  # 2 X^T X / 2
    assert cal.column_norms("fc").tolist() == pytest.approx([10 ** 0.5, 20 ** 0.5], rel=1e-15)
    assert cal.column_means("fc").tolist() == [2.0, 3.0]
    assert cal.column_variances("fc").tolist() == [1.0, 1.0]     # (1-2)^2, (3-2)^2 averaged


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_matches_direct_sums_over_all_batches(dtype):
    model = _net(dtype)
    batches = _batches(dtype)
    with CalibrationCollector(model) as cal:
        for x in batches:
            model(x)
    assert set(cal.stats) == {"0", "2"}
    X0 = torch.cat(batches).double()
    with torch.no_grad():
        X2 = torch.cat([torch.relu(model[0](x)) for x in batches]).double()
    _assert_stats(cal, "0", X0)
    _assert_stats(cal, "2", X2)


def test_three_dimensional_inputs_count_every_token():
    layer = nn.Linear(4, 2).double()
    x = torch.randn(3, 5, 4, dtype=torch.float64)  # (B, T, C)
    with CalibrationCollector(layer, {"fc": layer}) as cal:
        layer(x)
    _assert_stats(cal, "fc", x.reshape(-1, 4))
    assert cal.rows("fc") == 15


def test_tinygpt_layers_and_their_inputs():
    cfg = TinyGPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)
    model = TinyGPT(cfg).double()
    idx = torch.randint(11, (3, 8), generator=torch.Generator().manual_seed(0))
    with CalibrationCollector(model) as cal, capture(model, ["blocks.1.ln_2", "blocks.1.mlp.hook_mlp_act"]) as acts:
        model(idx)
    expected = {f"blocks.{i}.{m}" for i in range(2) for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}
    assert set(cal.stats) == expected | {"lm_head"}
    assert all(cal.rows(name) == 3 * 8 for name in cal.stats)
    _assert_stats(cal, "blocks.1.mlp.c_fc", acts["blocks.1.ln_2"].reshape(-1, 8))
    _assert_stats(cal, "blocks.1.mlp.c_proj", acts["blocks.1.mlp.hook_mlp_act"].reshape(-1, 32))


def test_hooks_are_removed_on_exit_and_on_error():
    model = _net()
    x = _batches()[0]
    with CalibrationCollector(model) as cal:
        model(x)
    assert all(not m._forward_pre_hooks for m in model.modules())
    model(x)  # outside the block: not counted
    assert cal.rows("0") == x.shape[0]
    with pytest.raises(RuntimeError, match="boom"):
        with CalibrationCollector(model):
            raise RuntimeError("boom")
    assert all(not m._forward_pre_hooks for m in model.modules())


def test_layer_subset_and_gram_false():
    model = _net()
    with CalibrationCollector(model, {"first": model[0]}, gram=False) as cal:
        model(_batches()[0])
    assert set(cal.stats) == {"first"} and cal.stats["first"].xtx is None
    assert cal.column_norms("first").shape == (5,)
    with pytest.raises(ValueError, match="gram=False"):
        cal.hessian("first")


def test_errors():
    model = _net()
    with pytest.raises(TypeError, match="nn.Linear"):
        CalibrationCollector(model, {"relu": model[1]})
    with pytest.raises(ValueError, match="no nn.Linear"):
        CalibrationCollector(nn.ReLU())
    cal = CalibrationCollector(model)
    with pytest.raises(ValueError, match="seen no inputs"):
        cal.hessian("0")
    with pytest.raises(KeyError, match="not a calibrated layer"):
        cal.column_norms("9")
    with pytest.raises(ValueError, match="d_in=5"):
        cal.add_batch("0", torch.randn(2, 4))
    with cal:
        with pytest.raises(RuntimeError, match="already active"):
            cal.__enter__()
