"""models.block_list: where the transformer blocks of a model live."""
import pytest
from torch import nn

from sparsity_core.models import MLP, TinyGPT, TinyGPTConfig, block_list
from sparsity_core.models.blocks import BLOCK_PATHS
from sparsity_core.pretrained.collect import block_list as collect_block_list


def test_tinygpt_blocks_are_found():
    model = TinyGPT(TinyGPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16))
    path, blocks = block_list(model)
    assert path == "blocks" and blocks is model.blocks


def test_paths_are_tried_in_order_and_empty_lists_skipped():
    class Wrapped(nn.Module):  # a Llama-style causal LM: model.layers, plus an empty "blocks"
        def __init__(self):
            super().__init__()
            self.model = nn.Module()
            self.model.layers = nn.ModuleList([nn.Linear(2, 2)])
            self.blocks = nn.ModuleList()

    model = Wrapped()
    assert block_list(model) == ("model.layers", model.model.layers)
    del model.model.layers
    with pytest.raises(TypeError, match="no transformer block list"):
        block_list(model)           # the empty "blocks" does not count
    assert BLOCK_PATHS[0] == "model.layers"


def test_a_model_without_blocks_is_refused():
    with pytest.raises(TypeError, match="MLP"):
        block_list(MLP([4, 3, 2]))


def test_collect_keeps_the_name():
    assert collect_block_list is block_list
