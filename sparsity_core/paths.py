"""Where the project's files live, found from the package, never from the working directory.

Chapters run under Jupyter, papermill, nbval and Jupyter Book, each with its own working
directory; every path a chapter needs therefore comes from here.

Environment variables (all optional):

* ``SPARSITY_ROOT``: the repository root (default: the folder above this package).
* ``SPARSITY_RESULTS_DIR``: where scorecards write results JSON (default: ``data/results``).
  ``make test`` points it at a scratch folder so that a fresh run can be compared
  with the committed record instead of overwriting it.
"""
from __future__ import annotations

import os
from pathlib import Path

RESULTS_ENV = "SPARSITY_RESULTS_DIR"
ROOT_ENV = "SPARSITY_ROOT"


def repo_root() -> Path:
    """The repository root: ``$SPARSITY_ROOT`` or the folder that holds ``sparsity_core/``."""
    env = os.environ.get(ROOT_ENV)
    return Path(env).resolve() if env else Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """``<root>/data``: paper numbers, committed results, built assets."""
    return repo_root() / "data"


def paper_claims_csv() -> Path:
    """``data/paper_claims.csv``: one row per claim with the paper's own number."""
    return data_dir() / "paper_claims.csv"


def committed_results_dir() -> Path:
    """``data/results``: the committed record of each chapter's default run."""
    return data_dir() / "results"


def results_dir() -> Path:
    """Where this run's scorecards write (``$SPARSITY_RESULTS_DIR`` or ``data/results``)."""
    env = os.environ.get(RESULTS_ENV)
    return Path(env).resolve() if env else committed_results_dir()
