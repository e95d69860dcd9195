"""Tests of sparsity_core.pretrained."""
from netguard import no_network  # noqa: F401  (re-exported for the loader tests)
