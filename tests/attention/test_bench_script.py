"""ci/bench_attention.py runs on a small grid and reports every implementation."""
import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_benchmark_script_runs_on_a_small_grid(ci_script, capsys):
    assert ci_script("bench_attention").main(["--n", "64", "96", "--block", "16", "--heads", "1", "--head-dim", "8",
                           "--repeat", "1", "--no-compile"]) == 0
    out = capsys.readouterr().out
    lines = [l for l in out.splitlines() if l.strip().startswith(("64 ", "96 "))]
    assert len(lines) == 2 and all("x" in l for l in lines)


def test_the_benchmark_script_measures_memory_and_plots(ci_script, capsys, tmp_path):
    png = tmp_path / "bench.png"
    assert ci_script("bench_attention").main(["--n", "64", "96", "--block", "16", "--heads", "1", "--head-dim", "8", "--repeat", "1",
                           "--no-compile", "--memory", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "peak MiB per call" in out
    assert png.exists() and png.stat().st_size > 1000
