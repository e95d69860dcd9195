"""The block-by-block one-shot pipeline on TinyGPT and on tiny random Hugging Face models."""
import pytest
import torch

from sparsity_core.calibration import CalibrationCollector
from sparsity_core.models import TinyGPT, TinyGPTConfig
from sparsity_core.pruning.sequential import prune_sequential
from sparsity_core.pruning.wanda import wanda_mask


def _tinygpt(seed=0):
    torch.manual_seed(seed)
    return TinyGPT(TinyGPTConfig(vocab_size=50, block_size=16, n_layer=3, n_head=2, n_embd=32)).eval()


def _batches(seed=0, n=3):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 50, (2, 16), generator=g) for _ in range(n)]


def _outside_blocks(model):
    return {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("blocks.")}


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
@pytest.mark.parametrize("pattern", [dict(sparsity=0.5), dict(sparsity=0.3), dict(nm=(2, 4))])
def test_exact_sparsity_per_layer_and_nothing_outside_the_blocks_moves(method, pattern):
    model = _tinygpt()
    outside = _outside_blocks(model)
    records = prune_sequential(model, _batches(), method=method, **pattern)
    assert len(records) == 3 * 4    # qkv, attention out, fc, proj per block
    for r in records:
        W = model.get_submodule(r.name).weight
        s = pattern.get("sparsity", 0.5)
        d_out, d_in = r.shape
        # Wanda keeps round((1 - s) D_in) in every row; the others round((1 - s) D_out D_in) per layer
        expected_zeros = d_out * (d_in - round((1 - s) * d_in)) if method == "wanda" else round(s * r.numel)
        assert r.numel - r.kept == expected_zeros
        assert int((W == 0).sum()) >= expected_zeros
        if "nm" in pattern:
            assert (W != 0).reshape(W.shape[0], -1, 4).sum(-1).le(2).all()
    after = _outside_blocks(model)
    assert all(torch.equal(outside[k], after[k]) for k in outside)   # embeddings, final norm, tied head


def test_later_blocks_calibrate_on_the_pruned_earlier_blocks():
    # redo Wanda by hand, one block at a time, with full forward passes of the partly pruned model
    model, reference = _tinygpt(), _tinygpt()
    batches = _batches()
    prune_sequential(model, batches, method="wanda", sparsity=0.5)
    for block in reference.blocks:
        layers = {n: m for n, m in block.named_modules() if isinstance(m, torch.nn.Linear)}
        with torch.no_grad(), CalibrationCollector(block, layers, gram=False) as cal:
            for b in batches:
                reference(b)
        with torch.no_grad():
            for n, m in layers.items():
                m.weight.mul_(wanda_mask(m.weight, cal.column_norms(n), sparsity=0.5))
    for (n, p), (_, q) in zip(model.named_parameters(), reference.named_parameters()):
        assert torch.allclose(p, q, atol=1e-6), n


def test_sparsegpt_reconstructs_better_than_magnitude_on_tinygpt():
    errors = {}
    for method in ("magnitude", "sparsegpt"):
        records = prune_sequential(_tinygpt(), _batches(), method=method, sparsity=0.5, measure_error=True)
        errors[method] = sum(r.rel_error for r in records) / len(records)
    assert errors["sparsegpt"] < errors["magnitude"]


def test_magnitude_needs_no_calibration_and_others_do():
    prune_sequential(_tinygpt(), None, method="magnitude", sparsity=0.5)
    with pytest.raises(ValueError, match="needs calibration"):
        prune_sequential(_tinygpt(), None, method="wanda", sparsity=0.5)
    with pytest.raises(ValueError, match="method must be one of"):
        prune_sequential(_tinygpt(), _batches(), method="obs", sparsity=0.5)
    with pytest.raises(ValueError, match="exactly one of sparsity and nm"):
        prune_sequential(_tinygpt(), _batches(), method="wanda")
    with pytest.raises(ValueError, match="calibration is empty"):
        prune_sequential(_tinygpt(), [], method="wanda", sparsity=0.5)


def test_hugging_face_llama_and_bert_blocks_take_their_extra_arguments():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=32)).eval()
    head, embed = llama.lm_head.weight.clone(), llama.model.embed_tokens.weight.clone()
    ids = [torch.randint(0, 64, (2, 12)) for _ in range(2)]
    records = prune_sequential(llama, ids, method="sparsegpt", nm=(2, 4))
    assert len(records) == 2 * 7 and all(r.kept * 2 == r.numel for r in records)
    assert torch.equal(llama.lm_head.weight, head) and torch.equal(llama.model.embed_tokens.weight, embed)
    bert = transformers.BertModel(transformers.BertConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)).eval()
    batch = [{"input_ids": torch.randint(0, 64, (2, 10)), "attention_mask": torch.ones(2, 10, dtype=torch.long)}]
    records = prune_sequential(bert, batch, method="wanda", sparsity=0.5)
    assert len(records) == 2 * 6 and all(r.kept * 2 == r.numel for r in records)
