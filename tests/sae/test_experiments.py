"""``train_and_evaluate``: one sweep point, equal to its three steps done by hand."""
import pytest
import torch

from sparsity_core import sae as S
from sparsity_core.sae.experiments import train_and_evaluate


def _data(n=600, d=12, seed=0):
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    return x[:500], x[500:]


@pytest.mark.parametrize("kind, kw", [("topk", dict(k=3)), ("relu", dict(l1_coeff=0.1))])
def test_equals_make_train_evaluate_by_hand(kind, kw):
    x_train, x_test = _data()
    model, hist, row = train_and_evaluate(kind, x_train, x_test, 24, 15, batch_size=64, lr=1e-2, seed=4, **kw)
    twin = S.make_sae(kind, 12, 24, generator=torch.Generator().manual_seed(5), **kw)
    S.train_sae(twin, x_train, steps=15, batch_size=64, lr=1e-2, generator=torch.Generator().manual_seed(6),
                progress=False)
    for name, p in twin.state_dict().items():
        assert torch.equal(p, model.state_dict()[name]), name
    want = S.evaluate_sae(twin, x_test)
    assert {k: row[k] for k in want} == want
    assert row["kind"] == kind and all(row[k] == v for k, v in kw.items())
    assert row["tokens/s"] == hist.items_per_second and len(hist.logs) == 15
    assert "mmcs" not in row


def test_features_add_mmcs_and_other_keywords_stay_out_of_the_row():
    x_train, x_test = _data()
    feats = torch.randn(5, 12, generator=torch.Generator().manual_seed(1))
    model, _, row = train_and_evaluate("topk", x_train, x_test, 16, 5, batch_size=1000, lr=1e-3, seed=0,
                                       features=feats, k=2, aux_k=4, dead_tokens=100)
    assert row["mmcs"] == S.mmcs(feats, model.W_dec.detach())
    assert "aux_k" not in row and "dead_tokens" not in row and model.aux_k == 4


@pytest.mark.parametrize("bad, match", [
    (dict(width=0), "width"), (dict(steps=0), "steps"), (dict(batch_size=0), "batch_size"),
    (dict(x_test=torch.zeros(4, 3)), "same width"),
    (dict(features=torch.zeros(2, 5)), "features"),
])
def test_bad_input(bad, match):
    x_train, x_test = _data()
    args = dict(kind="topk", x_train=x_train, x_test=x_test, width=8, steps=2, batch_size=32, lr=1e-3, seed=0, k=2)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        train_and_evaluate(**args)
