"""Pretrained models the book studies, loaded offline from wheels, and tools to read them.

- :func:`load_minilm`, :func:`encode`: all-MiniLM-L6-v2 sentence embeddings (:mod:`.minilm`).
- :func:`load_smollm2`: SmolLM2-135M-Instruct in float32, cached after one dequantization
  (:mod:`.smollm2`).
- :func:`collect`, :func:`linear_layers`, :func:`decoder_layers`: hidden states, attention,
  Q/K and FFN activations by forward hooks; the prunable layers (:mod:`.collect`).
- :func:`perplexity`, :func:`tokenize_for_lm`: block perplexity of any causal LM
  (:mod:`.perplexity`).
- :func:`offline_hub`: Hugging Face offline mode for one call (:mod:`.offline`).
- :func:`load_tinygpt`, :func:`tinygpt_card`: the book's own TinyGPT checkpoints
  (:mod:`.tinygpt`).

Importing this package imports neither ``transformers`` nor any model; loaders do, when called.
"""
from .collect import collect, decoder_layers, linear_layers
from .minilm import encode, load_minilm
from .offline import offline_hub, user_cache_dir
from .perplexity import perplexity, tokenize_for_lm
from .smollm2 import load_smollm2
from .tinygpt import load_tinygpt, tinygpt_card

__all__ = ["collect", "decoder_layers", "linear_layers", "encode", "load_minilm", "offline_hub",
           "user_cache_dir", "perplexity", "tokenize_for_lm", "load_smollm2", "load_tinygpt",
           "tinygpt_card"]
