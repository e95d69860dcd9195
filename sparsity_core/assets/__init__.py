"""Assets the project builds itself and commits small: tokenizers, the retrieval
benchmark, trained TinyGPT checkpoints. Each is rebuilt by one command,

    python -m sparsity_core.assets build <name>

and recorded in ``data/MANIFEST`` with its sha256 and that command (written by
:mod:`.manifest`; read and checked by :mod:`sparsity_core.artifacts`, which loaders use).
Builders live in one module per asset; nothing here runs at import. Builders may import
loaders; nothing else in the package imports a builder (a test checks it).
"""
