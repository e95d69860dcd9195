"""``train_classifier``: one paired run, equal to the same run written out by hand."""
from types import SimpleNamespace

import pytest
import torch

from sparsity_core.classifier_runs import BATCH_SEED_PRIME, batch_seed, train_classifier
from sparsity_core.masks import apply_masks, current_masks
from sparsity_core.models import MLP
from sparsity_core.training import accuracy, classification_loss, fit


def _data(n=90, m=30, d=7, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + m, d, generator=g)
    y = torch.randint(0, classes, (n + m,), generator=g)
    return SimpleNamespace(x_train=x[:n], y_train=y[:n], x_test=x[n:], y_test=y[n:])


def _model(seed=3):
    return MLP([7, 11, 5, 3], generator=torch.Generator().manual_seed(seed))


def _masks(model, seed=9):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(p.shape, generator=g) < 0.4 for n, p in model.named_parameters() if n.endswith("weight")}


def _by_hand(model, data, steps, seed, lr, batch_size, masks=None):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    if masks is not None:
        apply_masks(model, masks, optimizer=opt)
    gen = torch.Generator().manual_seed(BATCH_SEED_PRIME * (seed + 1))
    seen = []

    def batch(i):
        idx = torch.randint(0, len(data.y_train), (batch_size,), generator=gen)
        seen.append(idx)
        return data.x_train[idx], data.y_train[idx]

    fit(model, batch, steps=steps, optimizer=opt, loss_fn=classification_loss, progress=False)
    return accuracy(model, data.x_test, data.y_test), seen


def test_batch_seed_is_the_documented_formula():
    assert [batch_seed(s) for s in (0, 1, 41)] == [1_000_003, 2_000_006, 42_000_126]
    with pytest.raises(ValueError, match="seed"):
        batch_seed(-1)


@pytest.mark.parametrize("masked", [False, True])
def test_equals_the_run_written_out_by_hand(masked):
    data = _data()
    model, twin = _model(), _model()
    masks = _masks(model) if masked else None
    acc = train_classifier(model, data, steps=12, seed=5, batch_size=16, masks=masks,
                           optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))
    want, _ = _by_hand(twin, data, 12, 5, 1e-2, 16, masks=masks)
    assert acc == want
    for name, p in twin.state_dict().items():
        assert torch.equal(p, model.state_dict()[name]), name
    if masked:   # the masked weights stayed zero through training
        for name, mask in current_masks(model).items():
            assert torch.equal(mask, masks[name])
            assert not dict(model.named_parameters())[name.replace(".weight", ".parametrizations.weight.original")][~mask].any()


def test_same_seed_same_batches_other_seed_other_batches():
    data = _data()
    _, a = _by_hand(_model(), data, 4, 2, 1e-3, 8)
    _, b = _by_hand(_model(), data, 4, 3, 1e-3, 8)
    assert not all(torch.equal(u, v) for u, v in zip(a, b))
    accs = [train_classifier(_model(), data, steps=4, seed=2, batch_size=8,
                             optimizer=lambda p: torch.optim.SGD(p, lr=0.1)) for _ in range(2)]
    assert accs[0] == accs[1]


def test_callbacks_get_this_runs_optimizer_after_every_step():
    data, calls = _data(), []

    def factory(opt):
        assert isinstance(opt, torch.optim.SGD)
        return lambda i, m: calls.append((i, opt))

    train_classifier(_model(), data, steps=5, seed=0, batch_size=4, callbacks=[factory],
                     optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    assert [i for i, _ in calls] == [0, 1, 2, 3, 4] and len({id(o) for _, o in calls}) == 1


@pytest.mark.parametrize("kw, err, match", [
    (dict(steps=0), ValueError, "steps"), (dict(steps=2.0), TypeError, "steps"),
    (dict(batch_size=0), ValueError, "batch_size"), (dict(seed=-1), ValueError, "seed"),
])
def test_bad_arguments(kw, err, match):
    args = dict(steps=2, seed=0, batch_size=4, optimizer=lambda p: torch.optim.SGD(p, lr=0.1)) | kw
    with pytest.raises(err, match=match):
        train_classifier(_model(), _data(), **args)


def test_bad_data():
    opt = dict(steps=1, seed=0, batch_size=4, optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    empty = _data()
    empty.x_train, empty.y_train = empty.x_train[:0], empty.y_train[:0]
    with pytest.raises(ValueError, match="empty"):
        train_classifier(_model(), empty, **opt)
    short = _data()
    short.y_test = short.y_test[:-1]
    with pytest.raises(ValueError, match="y_test"):
        train_classifier(_model(), short, **opt)
