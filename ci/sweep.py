"""Seed sweeps on Dask: run chapters x seeds as tasks, record how often each claim holds.

  python ci/sweep.py --chapters 01_sdr --seeds 1 2 3
      a LocalCluster sized to this machine (one worker per --threads cores); executed
      notebooks and per-seed results records go to _build/sweep/, the sweep records to
      data/sweeps/<chapter>.json (see sparsity_core.sweeps). data/results/ is never touched.
  python ci/sweep.py --chapters 02 07 --seeds 1 2 3 --scheduler tcp://host:8786 --repo /path/on/workers
      the same tasks on an existing Dask cluster; every worker needs this repository (same
      commit) at --repo and its virtual environment's Python at --python.

Each task executes one chapter at one seed in its own process group (papermill through
ci/execute_chapters.py), with a wall-clock limit (--timeout) and a memory limit (--memory-mb,
the resident memory of the task's processes, polled); a task that errors, runs out of time
or memory, or whose worker dies is reported as failed with its reason, and its claims are
counted as missing in the sweep record, never dropped. The exit status is 1 if any task failed.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Variables a Dask nanny sets in its workers (``distributed.nanny.pre-spawn-environ``) that a
#: chapter must not inherit: ``MALLOC_TRIM_THRESHOLD_=65536`` makes glibc hand freed memory back
#: at once, so every fresh tensor page-faults again (measured: a LeNet-300-100 training run of
#: Chapter 4 takes 1.6-1.8x as long with it), and the one-thread BLAS pins would override
#: ``--threads``. A task runs in the environment a shell would give it.
UNSET_WORKER_ENV = {"MALLOC_TRIM_THRESHOLD_": None, "MKL_NUM_THREADS": None, "OPENBLAS_NUM_THREADS": None}
#: Seconds between two polls of a task's time and memory.
POLL_SECONDS = 0.25
#: Per-task wall-clock limits by scale (seconds): 3x the book's 180 s budget at default.
DEFAULT_TIMEOUT = {"smoke": 300, "default": 900, "full": 0}


def run_command(cmd: list[str], *, env: dict | None = None, cwd: str | None = None, timeout_s: float = 0,
                memory_mb: float = 0) -> dict:
    """Run ``cmd`` in a new process group; kill the group past ``timeout_s`` seconds or when its
    processes together hold more than ``memory_mb`` MB resident (0: no limit).

    ``env`` is added to this process's environment; a ``None`` value removes that variable.

    Returns ``{"ok", "returncode", "seconds", "peak_mb", "error", "output"}``; ``error`` says
    why a run failed (exit status, signal, time-out, memory) and ``output`` is the tail of its
    combined stdout and stderr.
    """
    import psutil

    start = time.perf_counter()
    merged = {**os.environ, **(env or {})}
    merged = {k: v for k, v in merged.items() if v is not None}      # None in env: unset it
    log = subprocess.Popen(cmd, cwd=cwd, env=merged, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, start_new_session=True)
    root = psutil.Process(log.pid)
    peak, reason = 0.0, ""
    chunks: list[bytes] = []
    os.set_blocking(log.stdout.fileno(), False)
    while log.poll() is None:
        try:
            procs = [root] + root.children(recursive=True)
            rss = sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20
        except psutil.Error:
            rss = 0.0
        peak = max(peak, rss)
        elapsed = time.perf_counter() - start
        if timeout_s and elapsed > timeout_s:
            reason = f"timed out after {timeout_s:g} s"
        elif memory_mb and rss > memory_mb:
            reason = f"killed: resident memory {rss:.0f} MB over the {memory_mb:g} MB limit"
        if reason:
            try:
                os.killpg(log.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            log.wait()
            break
        data = log.stdout.read()
        if data:
            chunks.append(data)
        time.sleep(POLL_SECONDS)
    rest = log.stdout.read()
    if rest:
        chunks.append(rest)
    code = log.returncode
    if not reason and code != 0:
        reason = (f"killed by signal {-code} ({signal.Signals(-code).name})" if code < 0
                  else f"exited with status {code}")
    output = b"".join(chunks).decode("utf-8", "replace")[-4000:]
    return {"ok": not reason, "returncode": code, "seconds": round(time.perf_counter() - start, 1),
            "peak_mb": round(peak, 1), "error": reason, "output": output}


def _records(folder: Path, chapter: str) -> list[Path]:
    """``<chapter>.json`` and ``<chapter>.<scale/seed>.json`` in ``folder`` (not another chapter's)."""
    return sorted(p for p in folder.glob(f"{chapter}*.json") if p.name.split(".")[0] == chapter)


def run_chapter(*, repo: str, python: str, chapter: str, seed: int, scale: str, out: str, threads: int,
                timeout_s: float, memory_mb: float) -> dict:
    """One task: execute ``chapter`` at ``seed`` and ``scale``; return the run and its results record."""
    results_dir = Path(out) / "results" / f"seed{seed}"
    results_dir.mkdir(parents=True, exist_ok=True)
    for old in _records(results_dir, chapter):
        old.unlink()
    cmd = [python, str(Path(repo) / "ci" / "execute_chapters.py"), chapter, "--scale", scale,
           "--seed", str(seed), "--out", str(Path(out) / "executed" / f"seed{seed}")]
    env = {"SPARSITY_RESULTS_DIR": str(results_dir), "OMP_NUM_THREADS": str(threads),
           "PYDEVD_DISABLE_FILE_VALIDATION": "1", **UNSET_WORKER_ENV}
    run = run_command(cmd, env=env, cwd=repo, timeout_s=timeout_s, memory_mb=memory_mb)
    found = _records(results_dir, chapter)
    record = json.loads(found[0].read_text(encoding="utf-8")) if len(found) == 1 else None
    if record is not None and run["returncode"] not in (0, None) and not run["error"].startswith(("timed", "killed")):
        # the scorecard is the last cell: it wrote the record, then raised because claims failed
        # at this seed. That is what a sweep measures, not a failed task.
        run.update(ok=True, error="")
    elif record is None and run["ok"]:
        run.update(ok=False, error=f"the run wrote {len(found)} results records, expected 1")
    elif not run["ok"]:
        record = None
    return {"chapter": chapter, "seed": seed, **run, "record": record}


def run_tasks(client, tasks: list[dict], *, progress: bool = True) -> list[dict]:
    """Submit ``run_chapter(**task)`` for every task and collect every outcome, failures included.

    A task whose worker dies, or that raises, comes back as ``ok: False`` with the exception.
    """
    import cloudpickle
    from dask.distributed import as_completed
    from tqdm.auto import tqdm

    module = sys.modules[run_chapter.__module__]
    if module.__name__ != "__main__":          # imported (tests): ship the code, workers need not import it
        cloudpickle.register_pickle_by_value(module)
    futures = {client.submit(run_chapter, **t, key=f"{t['chapter']}-seed{t['seed']}-{time.time_ns()}",
                             pure=False, retries=0): t for t in tasks}
    out = []
    bar = tqdm(total=len(futures), desc="sweep", disable=not progress)
    for fut in as_completed(futures):
        t = futures[fut]
        try:
            res = fut.result()
        except Exception as e:                 # a dead worker (KilledWorker), a lost task, ...
            res = {"chapter": t["chapter"], "seed": t["seed"], "ok": False, "returncode": None,
                   "seconds": None, "peak_mb": None, "error": f"{type(e).__name__}: {e}", "output": "",
                   "record": None}
        out.append(res)
        bar.set_postfix_str(f"{res['chapter']} seed {res['seed']}: {'ok' if res['ok'] else 'FAILED'}")
        bar.update()
    bar.close()
    return sorted(out, key=lambda r: (r["chapter"], r["seed"]))


def make_client(scheduler: str | None, workers: int):
    """A client of ``scheduler``, or of a LocalCluster with ``workers`` one-thread workers."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=0,
                           dashboard_address=":0")
    return Client(cluster)


def write_sweeps(results: list[dict], *, scale: str, seeds: list[int], hashes: dict[str, str], date: str,
                 records_dir: Path) -> list[Path]:
    """Aggregate each chapter's task results into ``records_dir/<chapter>.json``."""
    from sparsity_core.sweeps import aggregate, validate_sweep

    records_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for chapter, digest in hashes.items():
        mine = {r["seed"]: r for r in results if r["chapter"] == chapter}
        sweep = aggregate(chapter, scale, seeds, digest, {s: mine[s]["record"] for s in mine},
                          {s: mine[s] for s in mine}, date)
        validate_sweep(sweep)
        path = records_dir / f"{chapter}.json"
        path.write_text(json.dumps(sweep, indent=1) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chapters", nargs="+", default=None, help="chapter stems (01_sdr or 01); default: the TOC's")
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--scale", choices=("smoke", "default", "full"), default="default")
    ap.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (tcp://host:port)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")),
                    help="threads per task (OMP_NUM_THREADS); the book's runs use 2")
    ap.add_argument("--workers", type=int, default=None,
                    help="LocalCluster workers (default: cores // threads, at least 1)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per task (0: none; default by scale)")
    ap.add_argument("--memory-mb", type=float, default=12000, help="resident MB per task (0: none)")
    ap.add_argument("--out", type=Path, default=ROOT / "_build" / "sweep")
    ap.add_argument("--records-dir", type=Path, default=None, help="where sweep records go (default: data/sweeps)")
    ap.add_argument("--repo", default=str(ROOT), help="the repository's path on the workers")
    ap.add_argument("--python", default=sys.executable, help="the Python on the workers")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "ci"))
    import nbtools
    from sparsity_core import paths
    from sparsity_core.sweeps import source_hash

    if len(set(args.seeds)) != len(args.seeds):
        ap.error(f"--seeds must be distinct (got {args.seeds})")
    toc = nbtools.toc_chapters()
    stems = [p.stem for p in nbtools.chapters(args.chapters)] if args.chapters else toc
    stems = [s for s in stems if s in toc]
    if not stems:
        ap.error(f"none of {args.chapters} is a chapter in _toc.yml")
    timeout = DEFAULT_TIMEOUT[args.scale] if args.timeout is None else args.timeout
    workers = args.workers or max(1, (os.cpu_count() or 1) // max(1, args.threads))
    hashes = {s: source_hash(s) for s in stems}                  # the sources the tasks will run
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    tasks = [dict(repo=args.repo, python=args.python, chapter=s, seed=seed, scale=args.scale,
                  out=str(args.out.resolve()), threads=args.threads, timeout_s=timeout, memory_mb=args.memory_mb)
             for s in stems for seed in args.seeds]
    print(f"sweep: {len(stems)} chapter(s) x seeds {args.seeds} at scale {args.scale}: {len(tasks)} tasks on "
          f"{args.scheduler or f'a LocalCluster of {workers} worker(s)'}, {timeout:g} s and "
          f"{args.memory_mb:g} MB per task", flush=True)
    with make_client(args.scheduler, workers) as client:
        results = run_tasks(client, tasks, progress=not args.no_progress)
    for r in results:
        line = (f"  {r['chapter']:<24} seed {r['seed']:<4} {'ok' if r['ok'] else 'FAILED':<7}"
                f"{r['seconds'] if r['seconds'] is not None else '-':>8} s {r['peak_mb'] or 0:>8.0f} MB")
        print(line + (f"  {r['error']}" if r["error"] else ""))
        if not r["ok"] and r["output"]:
            print("    " + r["output"].strip().splitlines()[-1][:300])
    records_dir = args.records_dir or paths.data_dir() / "sweeps"
    for path in write_sweeps(results, scale=args.scale, seeds=args.seeds, hashes=hashes, date=date,
                             records_dir=records_dir):
        print(f"wrote {path}")
    failed = [r for r in results if not r["ok"]]
    if failed:
        print(f"{len(failed)} of {len(results)} task(s) failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
