"""Importing a light module must not drag in heavy ones, and loaders must not touch the
global random state the chapters seed."""
import subprocess
import sys

import torch


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_masks_does_not_import_pandas():
    assert "pandas" not in _modules_after("import sparsity_core.masks")


def test_load_tinygpt_leaves_the_global_rng_alone():
    from sparsity_core.pretrained import load_tinygpt

    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    load_tinygpt("small")
    torch.testing.assert_close(torch.rand(4), expected)
