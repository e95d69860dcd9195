import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global seed (tests pass explicit generators too)."""
    torch.manual_seed(0)
    yield
