"""ci/execute_chapters.py: the parallel smoke runner (every chapter runs, the worst exit status
wins, the children share the cores without spinning) and its refusals."""
import subprocess
import sys
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import pytest

from sparsity_core import paths

sys.path.insert(0, str(paths.repo_root() / "ci"))
import execute_chapters  # noqa: E402

SCRIPT = paths.repo_root() / "ci" / "execute_chapters.py"


@pytest.mark.parametrize("extra", [["--jobs", "2"], ["--jobs", "2", "--scale", "default"],
                                   ["--jobs", "2", "--scale", "smoke", "--refresh"], ["--jobs", "0"]])
def test_parallel_runs_are_refused_outside_smoke_scale(extra, tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "01_sdr", "--out", str(tmp_path), *extra],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--jobs" in run.stderr


def test_every_chapter_runs_and_the_worst_exit_status_wins(monkeypatch, capsys, tmp_path):
    stems = ["01_sdr", "02_pruning", "03_pruning_llm"]
    calls = []

    def fake_run(cmd, env, capture_output, text):
        calls.append((cmd, env))
        stem = cmd[2]
        code = 3 if stem == "02_pruning" else 0
        return SimpleNamespace(returncode=code, stdout=f"{stem}: executed at scale smoke in 1.0 s -> x\n",
                               stderr="boom" if code else "")

    monkeypatch.setattr(execute_chapters.nbtools, "chapters", lambda names: [Path(f"book/{s}.ipynb") for s in stems])
    monkeypatch.setattr(execute_chapters.subprocess, "run", fake_run)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    args = Namespace(chapters=[], scale="smoke", seed=None, out=tmp_path, jobs=2)
    assert execute_chapters.run_parallel(args) == 3
    assert sorted(cmd[2] for cmd, _ in calls) == stems
    assert all(env["OMP_NUM_THREADS"] == "1" and env["OMP_WAIT_POLICY"] == "PASSIVE" for _, env in calls)
    out = capsys.readouterr()
    assert "02_pruning: FAILED (exit 3)" in out.out and "boom" in out.err
    assert "01_sdr: executed at scale smoke" in out.out and "03_pruning_llm: executed" in out.out
