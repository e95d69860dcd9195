"""sparsity_core.moe.bench: one timing case reports every implementation and its rows."""
import pytest

from sparsity_core.moe.bench import time_experts

pytestmark = pytest.mark.usefixtures("one_thread")


def test_time_experts_reports_every_implementation_and_the_rows_it_multiplies():
    rows = time_experts(10, 3, 2, d_model=8, d_hidden=12, capacity_factor=1.25, repeat=1, loop_max=16)
    got = {(r["impl"], r["pass"]) for r in rows}
    assert got == {(i, p) for i in ("loop", "grouped", "padded", "dense") for p in ("forward", "forward+backward")}
    by = {r["impl"]: r["rows"] for r in rows}
    assert by["grouped"] == by["loop"] == 20 and by["dense"] == 10
    assert by["padded"] == 3 * 9                     # E x ceil(1.25 * 10 * 2 / 3)
    assert all(r["us"] > 0 for r in rows)
    assert "loop" not in {r["impl"] for r in time_experts(20, 3, 1, d_model=8, d_hidden=8, repeat=1, loop_max=16)}


def test_time_experts_rejects_bad_sizes():
    with pytest.raises(ValueError):
        time_experts(0, 3, 1)
    with pytest.raises(ValueError):
        time_experts(8, 2, 3)
