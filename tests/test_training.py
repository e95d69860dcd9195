"""fit(): determinism, callbacks, evaluation schedule, History; the shared losses and accuracy."""
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsity_core.models import MLP, BlockOutput, FeedForward, TinyGPT, TinyGPTConfig
from sparsity_core.seeding import seed_everything
from sparsity_core.training import History, accuracy, classification_loss, fit, lm_loss

N, D, K, BATCH = 64, 6, 3, 16


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, D, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()  # learnable labels in {0, 1, 2}
    return x, y


def _batches(x, y):
    def batch(step):
        start = (step * BATCH) % N
        return x[start:start + BATCH], y[start:start + BATCH]
    return batch


def _run(seed, steps=12, **kwargs):
    g = seed_everything(seed, threads=None)
    model = nn.Sequential(MLP([D, 16, K], generator=g), nn.Dropout(0.3))  # dropout: global RNG
    x, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    kwargs.setdefault("progress", False)
    history = fit(model, _batches(x, y), steps=steps, optimizer=opt, loss_fn=classification_loss, **kwargs)
    return model, history


def test_same_seed_gives_bitwise_identical_curves():
    _, a = _run(0)
    _, b = _run(0)
    _, c = _run(1)
    assert a.train_loss == b.train_loss  # exact float equality, every step
    assert a.train_loss != c.train_loss
    assert len(a.train_loss) == a.steps == 12


def test_training_reduces_the_loss():
    _, history = _run(0, steps=60)
    assert sum(history.train_loss[-8:]) < 0.7 * sum(history.train_loss[:8])


def test_callbacks_run_after_each_update_with_gradients():
    calls = []
    mask = torch.rand(16, D, generator=torch.Generator().manual_seed(0)) > 0.5

    def reapply_mask(step, model):
        fc1 = model[0].fc1
        assert fc1.weight.grad is not None  # this step's gradients are still there
        calls.append(step)
        with torch.no_grad():
            fc1.weight.mul_(mask)

    def second(step, model):
        assert calls[-1] == step  # callbacks run in order

    model, _ = _run(0, steps=5, callbacks=[reapply_mask, second])
    assert calls == [0, 1, 2, 3, 4]
    assert (model[0].fc1.weight[~mask] == 0).all()


def test_eval_every_and_modes():
    seen = []

    def eval_fn(model):
        assert not model.training and not torch.is_grad_enabled()
        seen.append(1)
        return {"score": torch.tensor(len(seen)), "train_loss": 0.0}

    model, history = _run(0, steps=10, eval_fn=eval_fn, eval_every=3)
    assert [i for i, _ in history.evals] == [2, 5, 8, 9]  # every 3rd step, and the last
    assert history.last_eval == {"score": 4.0, "train_loss": 0.0}
    assert model.training  # back in train mode after the last evaluation
    _, only_end = _run(0, steps=4, eval_fn=eval_fn)
    assert [i for i, _ in only_end.evals] == [3]


def test_fit_restores_the_model_mode():
    g = seed_everything(0, threads=None)
    model = MLP([D, K], generator=g).eval()
    x, y = _data()
    fit(model, _batches(x, y), steps=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        loss_fn=classification_loss, progress=False)
    assert not model.training


def test_history_to_frame():
    def loss_fn(model, batch):
        loss = classification_loss(model, batch)
        return loss, {"half": loss / 2}

    g = seed_everything(0, threads=None)
    model = MLP([D, 8, K], generator=g)
    x, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    history = fit(model, _batches(x, y), steps=6, optimizer=opt, loss_fn=loss_fn, progress=False,
                  eval_fn=lambda m: {"acc": accuracy(m, x, y), "half": 1.0}, eval_every=2,
                  scheduler=torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.1), grad_clip=1.0)
    assert isinstance(history, History)
    frame = history.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 6
    assert list(frame.columns) == ["step", "train_loss", "lr", "half", "grad_norm", "acc", "half_eval"]
    assert frame["train_loss"].tolist() == history.train_loss
    assert frame["half"].tolist() == pytest.approx([v / 2 for v in history.train_loss])
    assert frame["acc"].isna().tolist() == [True, False, True, False, True, False]
    assert history.lr == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01, 0.01])
    assert history.items == 6 * BATCH and history.items_per_second > 0
    assert history.seconds > 0 and history.eval_seconds > 0
    with pytest.raises(Exception):
        history.steps = 3  # frozen


def test_iterable_batches_restart_each_epoch_and_iterators_run_out():
    x, y = _data()
    epoch = [(x[:8], y[:8]), (x[8:16], y[8:16]), (x[16:24], y[16:24])]
    model = MLP([D, K])
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the loss repeats with the batch
    history = fit(model, epoch, steps=7, optimizer=opt, loss_fn=classification_loss, progress=False)
    assert history.train_loss[:3] == history.train_loss[3:6] and history.train_loss[6] == history.train_loss[0]
    with pytest.raises(ValueError, match="ran out after 3 steps"):
        fit(model, iter(epoch), steps=4, optimizer=opt, loss_fn=classification_loss, progress=False)


def test_fit_validation_and_nonfinite_loss():
    model = MLP([D, K])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = lambda i: _data()
    common = dict(optimizer=opt, loss_fn=classification_loss, progress=False)
    with pytest.raises(ValueError, match="steps"):
        fit(model, batch, steps=0, **common)
    with pytest.raises(ValueError, match="eval_fn"):
        fit(model, batch, steps=2, eval_every=1, **common)
    with pytest.raises(ValueError, match="grad_clip"):
        fit(model, batch, steps=2, grad_clip=0.0, **common)
    with pytest.raises(TypeError, match="scalar"):
        fit(model, batch, steps=1, optimizer=opt, loss_fn=lambda m, b: m(b[0]), progress=False)
    with pytest.raises(FloatingPointError, match="step 0"):
        fit(model, batch, steps=1, optimizer=opt, loss_fn=lambda m, b: m(b[0]).sum() * math.nan,
            progress=False)


def test_progress_bar_runs():
    _, history = _run(0, steps=3, progress=True)
    assert history.steps == 3


def test_classification_loss_and_accuracy_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0], [1.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 1, 1])
    model = nn.Identity()
    assert accuracy(model, logits, labels, batch_size=2) == 3 / 5  # uneven last batch
    torch.testing.assert_close(classification_loss(model, (logits, labels)), F.cross_entropy(logits, labels))
    with pytest.raises(ValueError, match="same number of rows"):
        accuracy(model, logits, labels[:3])


class AuxFFN(FeedForward):
    def forward(self, x):
        return BlockOutput(super().forward(x), {"balance": 0.5 * self.c_fc.weight.square().mean()})


def test_lm_loss_adds_aux_losses_and_trains_tinygpt():
    cfg = TinyGPTConfig(vocab_size=7, block_size=6, n_layer=2, n_head=2, n_embd=8)
    g = seed_everything(0, threads=None)
    model = TinyGPT(cfg, ffn=AuxFFN, generator=g)
    data = torch.randint(cfg.vocab_size, (4, cfg.block_size + 1), generator=g)
    batch = (data[:, :-1], data[:, 1:])
    loss, logs = lm_loss(model, batch)
    out = model(*batch)
    torch.testing.assert_close(loss, out.loss + out.aux["balance"])
    assert logs == pytest.approx({"lm_loss": out.loss.item(), "balance": out.aux["balance"].item()})
    history = fit(model, lambda i: batch, steps=3, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-2),
                  loss_fn=lm_loss, progress=False)
    assert history.to_frame()["balance"].notna().all() and history.items == 3 * 4
