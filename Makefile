# Sparsity, Reproduced: the two commands are `make book` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# every chapter and test runs on 2 threads, as on the book's reference machine
export OMP_NUM_THREADS := 2
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book test student offline-check venv unit chapters-check smoke render-check report timings sweep clean assets-retrieval assets-models

venv: $(STAMP)

# torch==2.13.0 first (a CPU wheel on this machine's disk); then the package, whose
# torch range 2.13.0 satisfies, so nothing else is pulled. Re-runs reuse the venv.
$(STAMP): pyproject.toml requirements-nodeps.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[bench,book,sae,sweep,test]"
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $@

# Execute every chapter once at SCALE="default" (results to data/results, scorecard
# outputs refreshed in book/), rebuild the report page, render the executed book.
book: $(STAMP)
	rm -rf _build/executed _build/site _build/html
	$(PY) ci/execute_chapters.py --scale default --out _build/executed --refresh
	$(PY) ci/build_report.py
	$(PY) ci/stage_book.py --executed _build/executed --out _build/site
	$(VENV)/bin/jupyter-book build _build/site --path-output _build/render -W -n --keep-going
	rm -rf _build/html && cp -r _build/render/_build/html _build/html
	@echo "book: open _build/html/index.html"

test: $(STAMP) unit chapters-check smoke render-check offline-check

# The student edition: exercises left to write, solutions replaced by checks (_build/student/book)
student: $(STAMP)
	rm -rf _build/student
	$(PY) ci/student_edition.py --out _build/student

# two workers share the two cores; OpenMP's idle threads sleep instead of spinning on the
# core the other worker needs
unit: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest tests -n 2

# every chapter once under nbval (scorecard cell compared), then its fresh results JSON
# against the committed record
chapters-check: $(STAMP)
	rm -rf _build/fresh
	SPARSITY_RESULTS_DIR=$(CURDIR)/_build/fresh $(PY) -m pytest --nbval-lax -p no:cacheprovider book/[0-9][0-9]_*.ipynb
	$(PY) ci/compare_results.py _build/fresh
	$(PY) ci/strip_outputs.py --check

smoke: $(STAMP)
	rm -rf _build/smoke
	SPARSITY_RESULTS_DIR=$(CURDIR)/_build/smoke/results $(PY) ci/execute_chapters.py --scale smoke --out _build/smoke --jobs 2

render-check: $(STAMP)
	$(PY) ci/build_report.py --check
	rm -rf _build/test-render
	$(VENV)/bin/jupyter-book build . --path-output _build/test-render -W -n --keep-going

# The rendered book with the network off: equations typeset by the MathJax the build serves
# (book/_ext/offline_assets.py), read back from headless Chromium (Debian's package, installed
# here when missing)
offline-check: render-check
	command -v chromium >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
		|| (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)
	$(PY) ci/check_offline_render.py _build/test-render/_build/html

# Rebuild committed assets (each records its sha256 in data/MANIFEST). Only the retrieval
# benchmark needs a Debian package, and only here, at build time.
assets-retrieval: $(STAMP)
	apt-get install -y python3.11-doc
	$(PY) -m sparsity_core.assets build retrieval
	$(PY) -m sparsity_core.assets build retrieval-embeddings

assets-models: $(STAMP)
	$(PY) -m sparsity_core.assets build tokenizer
	$(PY) -m sparsity_core.assets build tinygpt

# Seed sweep: each chapter x seed as a task on Dask (a LocalCluster here; SCHEDULER=tcp://host:port
# for an existing cluster); sweep records to data/sweeps/, then the report page is rebuilt.
CHAPTERS ?=
SEEDS ?= 1 2 3
SCALE ?= default
SCHEDULER ?=
sweep: $(STAMP)
	$(PY) ci/sweep.py $(if $(strip $(CHAPTERS)),--chapters $(CHAPTERS),) --seeds $(SEEDS) --scale $(SCALE) \
		$(if $(strip $(SCHEDULER)),--scheduler $(SCHEDULER),)
	$(PY) ci/build_report.py

report: $(STAMP)
	$(PY) ci/build_report.py

timings: $(STAMP)
	$(PY) ci/time_chapters.py

clean:
	rm -rf _build
