"""Build the book's two TinyGPT checkpoints: ``python -m sparsity_core.assets build tinygpt``.

Both sizes (:func:`~sparsity_core.models.tinygpt_small`, :func:`~sparsity_core.models.tinygpt_medium`)
are trained on the Shakespeare *train* split, tokenised with the committed BPE tokenizer,
by :func:`~sparsity_core.training.fit`, with one seed, on 2 threads, and saved in fp16
as safetensors (``data/models/tinygpt_<size>.safetensors``, config and training record in
its metadata) plus a JSON card with the validation loss.

Reproducibility: the same machine and thread count give bitwise the same file (the
builder is deterministic; a test checks that two short builds are identical). Another CPU
may round differently in the last bits during training, so there the check is the
validation loss of the committed weights, which the card records and a test recomputes
to 1e-4.

Recipe (nanoGPT's Shakespeare recipe, scaled to a 2-core CPU, :cite:`karpathy2022nanogpt`):
AdamW (beta2 0.99 for small batches, as nanoGPT's shakespeare config), linear warm-up then
cosine decay to a tenth of the peak rate, gradient clipping at 1, dropout 0.1.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass

import torch
from safetensors.torch import save_file

from ..artifacts import tinygpt_card_path, tinygpt_checkpoint_path
from ..data.text import encode_corpus, load_bpe_tokenizer, random_blocks, sequential_blocks, text_splits
from ..models.tinygpt import TINYGPT_PRESETS, TinyGPT
from ..pretrained.tinygpt import load_tinygpt
from ..seeding import seed_everything
from ..training import fit, lm_loss
from . import manifest

COMMAND = "python -m sparsity_core.assets build tinygpt"
WARMUP_FRACTION = 0.05   # of the steps: linear warm-up
MIN_LR_FRACTION = 0.1    # cosine decays to this fraction of the peak (nanoGPT: min_lr = lr / 10)
BETAS = (0.9, 0.99)      # nanoGPT's shakespeare config: beta2 = 0.99 for small batches
WEIGHT_DECAY = 0.1       # nanoGPT default
GRAD_CLIP = 1.0          # nanoGPT default
DROPOUT = 0.1


@dataclass(frozen=True)
class Recipe:
    """Training settings of one size.

    Steps are set by the build budget (both sizes in <= 15 min on 2 cores, measured
    ~7k tokens/s for small and ~2.2k for medium): small sees about 1.6M tokens (~1.1
    epochs of the 1.43M-token train split), medium about 1.35M (~0.95 epochs). Larger
    models learn more per token, so medium gets most of the budget.
    """

    size: str
    steps: int
    batch_size: int
    lr: float
    seed: int = 0


RECIPES = {
    "small": Recipe("small", steps=400, batch_size=32, lr=2e-3),
    "medium": Recipe("medium", steps=330, batch_size=16, lr=1.5e-3),
}


@torch.no_grad()
def validation_loss(model: TinyGPT, tokens: torch.Tensor, batch_size: int = 64) -> float:
    """Mean next-token cross-entropy over non-overlapping blocks of ``tokens`` (N,), float64 sum."""
    blocks = sequential_blocks(tokens, model.config.block_size)  # (num_blocks, T + 1)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for chunk in blocks.split(batch_size):
            out = model(chunk[:, :-1], chunk[:, 1:])
            n = chunk[:, 1:].numel()
            total += float(out.loss.double()) * n
            count += n
    finally:
        model.train(was_training)
    return total / count


def lr_schedule(step: int, recipe: Recipe) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then cosine to MIN_LR_FRACTION."""
    warmup = max(1, int(WARMUP_FRACTION * recipe.steps))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, recipe.steps - warmup)
    return MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress))


def train(recipe: Recipe, train_tokens: torch.Tensor, val_tokens: torch.Tensor, vocab_size: int,
          *, progress: bool = True) -> tuple[TinyGPT, dict]:
    """Train one TinyGPT by ``recipe``; return the model and its training record."""
    gen = seed_everything(recipe.seed)
    config = TINYGPT_PRESETS[recipe.size](vocab_size, dropout=DROPOUT)
    model = TinyGPT(config, generator=gen)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr, betas=BETAS)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_schedule(s, recipe))
    batch_gen = torch.Generator().manual_seed(recipe.seed + 1)
    hist = fit(model, lambda i: random_blocks(train_tokens, config.block_size, recipe.batch_size, batch_gen),
               steps=recipe.steps, optimizer=opt, loss_fn=lm_loss, scheduler=sched,
               grad_clip=GRAD_CLIP, progress=progress)
    model.eval()
    record = {
        "size": recipe.size, "recipe": asdict(recipe), "config": asdict(config),
        "params": sum(p.numel() for p in model.parameters()),
        "train_tokens_seen": recipe.steps * recipe.batch_size * config.block_size,
        "final_train_loss": sum(hist.train_loss[-50:]) / len(hist.train_loss[-50:]),
        "train_seconds": round(hist.seconds, 1),
        "tokens_per_second": round(recipe.steps * recipe.batch_size * config.block_size / hist.seconds),
        "threads": torch.get_num_threads(),
    }
    return model, record


def save(model: TinyGPT, record: dict, val_tokens: torch.Tensor) -> list:
    """Write the fp16 checkpoint and its card; the card's val loss is of the fp16 weights."""
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
             if k != "lm_head.weight"}  # tied to wte.weight
    ckpt, card = tinygpt_checkpoint_path(record["size"]), tinygpt_card_path(record["size"])
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(ckpt), metadata={"config": json.dumps(record["config"], sort_keys=True)})
    reloaded = load_tinygpt(record["size"], verify=False)  # the loader readers use
    record = {**record, "val_loss_fp16": round(validation_loss(reloaded, val_tokens), 6),
              "val_tokens": int(val_tokens.numel())}
    card.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return [ckpt, card]


def main(argv: list[str] | None = None) -> int:
    """Train, save and record the requested sizes (default: both); returns the exit status."""
    ap = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    args = ap.parse_args(argv)
    tok = load_bpe_tokenizer()
    splits = text_splits("shakespeare")
    train_tokens, val_tokens = encode_corpus(splits.train, tok), encode_corpus(splits.val, tok)
    for size in args.sizes:
        start = time.perf_counter()
        model, record = train(RECIPES[size], train_tokens, val_tokens, tok.vocab_size)
        files = save(model, record, val_tokens)
        manifest.record(files, COMMAND)
        card = json.loads(tinygpt_card_path(size).read_text())
        print(f"tinygpt {size}: {card['params']:,} params, val loss {card['val_loss_fp16']:.4f} "
              f"(ppl {math.exp(card['val_loss_fp16']):.1f}), {card['tokens_per_second']:,} tokens/s, "
              f"{time.perf_counter() - start:.0f} s")
    return 0
