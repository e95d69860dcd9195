"""ci/bench_moe.py runs on a small grid and reports every implementation."""
import sys

from sparsity_core import paths


def test_the_benchmark_script_runs_on_a_small_grid(capsys):
    sys.path.insert(0, str(paths.repo_root() / "ci"))
    try:
        import bench_moe
    finally:
        sys.path.pop(0)
    assert bench_moe.main(["--tokens", "5", "40", "--experts", "1", "3", "--k", "1", "2", "--d-model", "8",
                           "--d-hidden", "12", "--repeat", "1", "--loop-max", "8"]) == 0
    out = capsys.readouterr().out
    assert "grouped/dense" in out and "padded/grouped" in out
    lines = [l for l in out.splitlines() if l.strip().startswith(("5 ", "40 "))]
    assert len(lines) == 2 * 2 * 3            # tokens x passes x (E=1,k=1), (E=3,k=1), (E=3,k=2)
    assert all("nan" in l for l in lines if l.strip().startswith("40 "))   # no loop above --loop-max
