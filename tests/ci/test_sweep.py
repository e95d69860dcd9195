"""ci/sweep.py: the task runner's limits (time, memory, signals) and a real two-seed smoke
sweep of one chapter through a Dask LocalCluster, with a killed task reported as failed."""
import json
import sys

import pytest

from sparsity_core import paths, sweeps

sys.path.insert(0, str(paths.repo_root() / "ci"))
import sweep  # noqa: E402

PY = sys.executable


def test_a_finished_command_is_ok_with_its_output():
    res = sweep.run_command([PY, "-c", "print('hello')"])
    assert res["ok"] and res["returncode"] == 0 and res["error"] == "" and "hello" in res["output"]


def test_a_failing_command_reports_its_exit_status():
    res = sweep.run_command([PY, "-c", "import sys; print('bad input'); sys.exit(3)"])
    assert not res["ok"] and res["error"] == "exited with status 3" and "bad input" in res["output"]


def test_a_killed_command_is_reported_with_its_signal():
    res = sweep.run_command([PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    assert not res["ok"] and res["error"] == "killed by signal 9 (SIGKILL)"


def test_a_command_past_its_time_limit_is_killed_with_its_children():
    res = sweep.run_command(["bash", "-c", "sleep 30 & sleep 30"], timeout_s=1)
    assert not res["ok"] and res["error"] == "timed out after 1 s" and res["seconds"] < 10


def test_a_command_over_its_memory_limit_is_killed():
    grab = "import time; x = bytearray(400 * 2**20); x[::4096] = b'1' * len(x[::4096]); time.sleep(30)"
    res = sweep.run_command([PY, "-c", grab], memory_mb=200)
    assert not res["ok"] and res["error"].startswith("killed: resident memory") and res["peak_mb"] > 200
    assert res["seconds"] < 20


def _fake_repo(tmp_path, body):
    """A repository whose ci/execute_chapters.py is ``body`` (gets the results dir in its env)."""
    (tmp_path / "repo" / "ci").mkdir(parents=True)
    (tmp_path / "repo" / "ci" / "execute_chapters.py").write_text(
        "import json, os, sys\nfrom pathlib import Path\nout = Path(os.environ['SPARSITY_RESULTS_DIR'])\n" + body)
    return str(tmp_path / "repo")


def _task(repo, tmp_path, **kw):
    return dict(repo=repo, python=PY, chapter="99_toy", seed=1, scale="default", out=str(tmp_path / "out"),
                threads=1, timeout_s=60, memory_mb=0, **kw)


def test_a_run_whose_scorecard_raised_after_writing_its_record_is_a_measurement(tmp_path):
    repo = _fake_repo(tmp_path, "(out / '99_toy.seed1.json').write_text(json.dumps({'chapter': '99_toy', "
                                "'claims': [{'id': 'a', 'status': 'fail'}]}))\nsys.exit(1)\n")
    res = sweep.run_chapter(**_task(repo, tmp_path))
    assert res["ok"] and res["error"] == "" and res["record"]["claims"][0]["status"] == "fail"


def test_a_run_without_a_record_is_a_failed_task(tmp_path):
    res = sweep.run_chapter(**_task(_fake_repo(tmp_path, "print('nothing written')\n"), tmp_path))
    assert not res["ok"] and res["error"] == "the run wrote 0 results records, expected 1" and res["record"] is None
    crashed = sweep.run_chapter(**_task(_fake_repo(tmp_path / "b", "raise RuntimeError('cell 3 failed')\n"), tmp_path))
    assert not crashed["ok"] and crashed["error"] == "exited with status 1" and "cell 3 failed" in crashed["output"]


def test_two_seed_smoke_sweep_on_a_local_cluster_with_a_killed_task(tmp_path):
    out, records_dir = tmp_path / "sweep", tmp_path / "sweeps"
    code = sweep.main(["--chapters", "01_sdr", "--seeds", "1", "2", "--scale", "smoke", "--threads", "2",
                       "--workers", "1", "--out", str(out), "--records-dir", str(records_dir), "--no-progress"])
    assert code == 0
    record = sweeps.load_sweep("01_sdr", records_dir)
    assert record["seeds"] == [1, 2] and record["scale"] == "smoke"
    assert record["source_hash"] == sweeps.source_hash("01_sdr")
    assert all(t["ok"] for t in record["tasks"].values())
    per_seed = {s: json.loads((out / "results" / f"seed{s}" / f"01_sdr.smoke.seed{s}.json").read_text())
                for s in (1, 2)}
    assert [per_seed[s]["stamp"]["seed"] for s in (1, 2)] == [1, 2]
    for cid, c in record["claims"].items():
        assert c["statuses"] == {str(s): next(x["status"] for x in per_seed[s]["claims"] if x["id"] == cid)
                                 for s in (1, 2)}
    assert not (paths.committed_results_dir() / "01_sdr.smoke.seed1.json").exists()   # data/results untouched

    # a task that is killed mid-run is reported failed, and its claims count as missing
    from dask.distributed import Client, LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, memory_limit=0,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        results = sweep.run_tasks(client, [dict(repo=str(paths.repo_root()), python=PY, chapter="01_sdr", seed=3,
                                                scale="smoke", out=str(out), threads=2, timeout_s=2, memory_mb=0)],
                                  progress=False)
    (bad,) = results
    assert not bad["ok"] and bad["error"] == "timed out after 2 s" and bad["record"] is None
    ok = {s: {"ok": True, "seconds": 1.0, "peak_mb": 1.0, "error": ""} for s in (1, 2)}
    mixed = sweeps.aggregate("01_sdr", "smoke", [1, 2, 3], "h", {1: per_seed[1], 2: per_seed[2], 3: bad["record"]},
                             {**ok, 3: bad}, "t")
    sweeps.validate_sweep(mixed)
    assert mixed["tasks"]["3"] == {"ok": False, "seconds": bad["seconds"], "peak_mb": bad["peak_mb"],
                                   "error": "timed out after 2 s"}
    assert mixed["claims"] and all(c["statuses"]["3"] == sweeps.MISSING and c["runs"] == 2
                                   for c in mixed["claims"].values())
    assert "(1 missing)" in sweeps.holds_text(mixed, next(iter(mixed["claims"])), "h")


def test_run_command_sets_and_unsets_environment_variables(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    show = "import os; print(os.environ.get('MALLOC_TRIM_THRESHOLD_', 'unset'), os.environ.get('SWEEP_X'))"
    assert sweep.run_command([PY, "-c", show], env={"SWEEP_X": "1"})["output"].split() == ["65536", "1"]
    res = sweep.run_command([PY, "-c", show], env={"SWEEP_X": "2", **sweep.UNSET_WORKER_ENV})
    assert res["output"].split() == ["unset", "2"]
