"""ci/bench_multivector.py runs on a small collection and reports every stage."""
import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_multivector_benchmark_runs_on_a_small_collection(ci_script, capsys):
    assert ci_script("bench_multivector").main(["--docs", "60", "120", "--queries", "5", "--repeat", "1"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip().startswith(("60 ", "120 "))]
    assert [r[0] for r in rows] == ["60", "120"] and all(len(r) == 6 for r in rows)
    assert all(float(v.replace(",", "")) > 0 for r in rows for v in r[1:])
