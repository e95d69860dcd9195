import importlib
import sys

import pytest
import torch

from sparsity_core import paths


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global seed (tests pass explicit generators too)."""
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: one intra-op thread is ~100x faster than two on a busy machine.

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def ci_script():
    """Import a script of ``ci/`` by module name: ``ci_script("bench_attention").main([...])``."""
    def load(name):
        sys.path.insert(0, str(paths.repo_root() / "ci"))
        try:
            return importlib.import_module(name)
        finally:
            sys.path.pop(0)
    return load
