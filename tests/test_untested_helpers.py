"""Small public helpers that had no test of their own: ``bench.time_call``,
``claims.format_number``, and the SAE data helpers ``geometric_median`` and ``shuffled_batches``."""
import math
import types

import pytest
import torch

from sparsity_core import bench
from sparsity_core.claims import format_number
from sparsity_core.sae import shuffled_batches
from sparsity_core.sae.model import geometric_median


# ----------------------------------------------------------------------------- time_call
class _FakeClock:
    """A ``time`` stand-in: ``perf_counter`` reads a clock that only the timed function moves."""

    def __init__(self):
        self.now = 0.0
        self.module = types.SimpleNamespace(perf_counter=lambda: self.now)


@pytest.fixture
def clock(monkeypatch):
    c = _FakeClock()
    monkeypatch.setattr(bench, "time", c.module)
    return c


def _fn(clock, durations):
    """A function that counts its calls and lasts durations[i] seconds (fake) on call i."""
    def fn():
        clock.now += durations[fn.calls]
        fn.calls += 1
    fn.calls = 0
    return fn


def test_time_call_calls_warmup_plus_repeat_times_and_reports_the_median(clock):
    # warmups (100 s each) are called but not timed; the repeats last 4, 1 and 16 s: median 4
    # (the mean would be 7, the minimum 1)
    fn = _fn(clock, [100.0, 100.0, 4.0, 1.0, 16.0])
    t = bench.time_call(fn, name="f", warmup=2, repeat=3)
    assert fn.calls == 5
    assert t.name == "f" and t.repeats == (4.0, 1.0, 16.0) and t.median == 4.0
    assert t.per_second == 0.25


def test_time_call_median_of_an_even_number_of_repeats_is_the_middle_mean(clock):
    fn = _fn(clock, [1.0, 4.0, 2.0, 8.0])
    t = bench.time_call(fn, warmup=0, repeat=4)
    assert fn.calls == 4 and t.repeats == (1.0, 4.0, 2.0, 8.0) and t.median == 3.0


def test_time_call_min_seconds_repeats_a_fast_function_and_records_the_mean_per_call(clock):
    # 0.25 s a call, at least 1 s a repeat: 4 calls per repeat, 0.25 s recorded per call
    fn = _fn(clock, [0.25] * 20)
    t = bench.time_call(fn, warmup=1, repeat=3, min_seconds=1.0)
    assert fn.calls == 1 + 3 * 4
    assert t.repeats == (0.25, 0.25, 0.25) and t.median == 0.25


def test_time_call_on_the_real_clock():
    calls = []
    t = bench.time_call(lambda: calls.append(1), repeat=3, warmup=1)
    assert len(calls) == 4 and len(t.repeats) == 3 and t.median >= 0
    assert t.median == sorted(t.repeats)[1]


@pytest.mark.parametrize("kwargs, match", [({"repeat": 0}, "repeat"), ({"warmup": -1}, "warmup")])
def test_time_call_rejects_bad_counts_before_calling(kwargs, match):
    calls = []
    with pytest.raises(ValueError, match=match):
        bench.time_call(lambda: calls.append(1), **kwargs)
    assert calls == []


# ----------------------------------------------------------------------------- format_number
@pytest.mark.parametrize("x, text", [
    (None, "—"), (0, "0"), (0.0, "0"),
    (3.14159, "3.142"), (1234.5678, "1235"), (-2.5, "-2.5"), (42, "42"),
    (0.001, "0.001"), (0.00123456, "0.001235"), (9999.4, "9999"), (12345.678, "12350"), (99999.0, "100000"), (-0.0, "0"),
])
def test_format_number_four_significant_digits_inside_the_range(x, text):
    assert format_number(x) == text


@pytest.mark.parametrize("x", [0.00099999, 1.5e-7, -3e-4, 1e5, 123456.0, -2.5e9])
def test_format_number_is_scientific_outside_the_range(x):
    text = format_number(x)
    assert "e" in text and math.isclose(float(text), x, rel_tol=1e-3)


@pytest.mark.parametrize("x, text", [(123456.0, "1.235e+05"), (0.000123456, "1.235e-04"), (1e5, "1.000e+05")])
def test_format_number_scientific_keeps_four_significant_digits(x, text):
    assert format_number(x) == text


@pytest.mark.parametrize("x", [12345.678, 10000.0, 50000.5])
def test_format_number_is_not_scientific_between_1e4_and_1e5(x):
    assert "e" not in format_number(x)


# ----------------------------------------------------------------------------- geometric_median
F64 = torch.float64


def _distance_sum(points, m):
    return float((points - m).norm(dim=1).sum())


def test_geometric_median_of_a_triangle_is_its_fermat_point():
    # all angles < 120 degrees: the point seeing every side under 120 degrees; for A(-1, 0),
    # B(1, 0), C(0, 3) it is (0, 1/sqrt(3)), while the mean is (0, 1)
    P = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 3.0]], dtype=F64)
    m = geometric_median(P)
    assert torch.allclose(m, torch.tensor([0.0, 1 / math.sqrt(3)], dtype=F64), atol=1e-5)
    assert _distance_sum(P, m) < _distance_sum(P, P.mean(0))


def test_geometric_median_of_collinear_points_is_the_middle_one():
    # points at t = 0, 1, 2, 3, 10 on a line in R^3: the median of t, t = 2, not the mean 3.2
    u = torch.tensor([1.0, 2.0, 2.0], dtype=F64) / 3
    P = torch.tensor([0.0, 1.0, 2.0, 3.0, 10.0], dtype=F64)[:, None] * u + torch.tensor([1.0, -1.0, 0.5], dtype=F64)
    assert torch.allclose(geometric_median(P), P[2], atol=1e-5)


def test_geometric_median_ignores_an_outlier_and_is_exact_on_symmetric_sets():
    P = torch.cat([torch.zeros(9, 2, dtype=F64), torch.tensor([[1000.0, 0.0]], dtype=F64)])
    assert geometric_median(P).norm() < 1e-5                  # the mean is at (100, 0)
    g = torch.Generator().manual_seed(0)
    half = torch.randn(6, 4, generator=g, dtype=F64)
    c = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=F64)
    sym = torch.cat([c + half, c - half])                     # symmetric about c
    assert torch.allclose(geometric_median(sym), c, atol=1e-12)
    assert torch.equal(geometric_median(torch.tensor([[2.0, 3.0]])), torch.tensor([2.0, 3.0]))


def test_geometric_median_minimises_the_sum_of_distances():
    g = torch.Generator().manual_seed(1)
    P = torch.randn(40, 3, generator=g, dtype=F64) ** 3       # skewed: median != mean
    m = geometric_median(P)
    best = _distance_sum(P, m)
    assert best < _distance_sum(P, P.mean(0))
    for step in torch.randn(20, 3, generator=g, dtype=F64) * 1e-2:
        assert best <= _distance_sum(P, m + step) + 1e-9


@pytest.mark.parametrize("bad", [torch.zeros(3), torch.zeros(0, 2), [[1.0, 2.0]]])
def test_geometric_median_rejects_bad_points(bad):
    with pytest.raises(ValueError, match="points"):
        geometric_median(bad)


# ----------------------------------------------------------------------------- shuffled_batches
def _rows(n, d=2):
    # row i holds i in every column, so a batch tells which rows it holds
    return torch.arange(n, dtype=torch.float32)[:, None].repeat(1, d)


def _ids(batch):
    return batch[:, 0].long().tolist()


def test_shuffled_batches_cover_every_row_once_per_epoch():
    x, bs = _rows(12), 4
    get = shuffled_batches(x, bs, torch.Generator().manual_seed(0))
    epochs = [[i for s in range(e * 3, e * 3 + 3) for i in _ids(get(s))] for e in range(3)]
    for rows in epochs:
        assert sorted(rows) == list(range(12))
    assert epochs[0] != epochs[1]                              # a fresh permutation each epoch
    assert get(0).shape == (bs, 2)


def test_shuffled_batches_are_the_generators_permutations_and_deterministic_per_seed():
    x, bs = _rows(10), 3                                       # 3 batches an epoch, one row left out
    get = shuffled_batches(x, bs, torch.Generator().manual_seed(5))
    seen = [_ids(get(s)) for s in range(6)]
    g = torch.Generator().manual_seed(5)
    for epoch in range(2):
        perm = torch.randperm(10, generator=g).tolist()
        assert seen[3 * epoch:3 * epoch + 3] == [perm[0:3], perm[3:6], perm[6:9]]
        flat = [i for b in seen[3 * epoch:3 * epoch + 3] for i in b]
        assert len(set(flat)) == 9                             # no row twice within an epoch
    again = shuffled_batches(x, bs, torch.Generator().manual_seed(5))
    assert [_ids(again(s)) for s in range(6)] == seen
    other = shuffled_batches(x, bs, torch.Generator().manual_seed(6))
    assert [_ids(other(s)) for s in range(6)] != seen


def test_shuffled_batches_with_the_whole_set_as_a_batch():
    get = shuffled_batches(_rows(5), 5, torch.Generator().manual_seed(0))
    for s in range(3):
        assert sorted(_ids(get(s))) == list(range(5))


@pytest.mark.parametrize("bs, error", [(0, ValueError), (11, ValueError), (-1, ValueError),
                                       (True, TypeError), (2.0, TypeError)])
def test_shuffled_batches_rejects_bad_batch_sizes(bs, error):
    with pytest.raises(error, match="batch_size"):
        shuffled_batches(_rows(10), bs, torch.Generator().manual_seed(0))
