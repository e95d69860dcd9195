"""sparsity_core: the tested methods and kernels behind *Sparsity, Reproduced*."""
__version__ = "0.1.0"
