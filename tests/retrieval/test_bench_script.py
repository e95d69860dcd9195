"""ci/bench_retrieval.py runs on a small index and reports every scorer."""
import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_benchmark_script_runs_on_a_small_index(ci_script, capsys, tmp_path):
    png = tmp_path / "bench.png"
    assert ci_script("bench_retrieval").main(["--distractors", "0", "500", "--queries", "20", "--repeat", "1", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    lines = [l for l in out.splitlines() if l.strip().startswith(("8205 ", "8705 "))]
    assert len(lines) == 2 and all("%" in l for l in lines)
    assert png.exists() and png.stat().st_size > 1000
