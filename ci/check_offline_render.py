"""Check that the rendered book typesets its equations with the network off.

  python ci/check_offline_render.py _build/test-render/_build/html [01_sdr 08_retrieval ...]

Opens each chapter page in headless Chromium (Debian's ``chromium``) with every network request
sent to a closed local port, lets its scripts run, and reads the DOM it ends with: the page
passes when MathJax typeset its math (MathJax elements present) and no raw ``\\(`` or ``\\[``
is left in the visible text. As a control, the same page with its MathJax script removed must
fail the same test, so the check can tell a typeset page from an untypeset one.
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_PAGES = ("01_sdr", "08_retrieval_encodings")
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b[^>]*>.*?</\1>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_MATHJAX_SCRIPT = re.compile(r"<script[^>]*MathJax\.js[^>]*>\s*</script>", re.I)


def visible_text(dom: str) -> str:
    """The text a reader sees: tags, scripts and styles removed, entities decoded."""
    return html.unescape(_TAG.sub(" ", _SCRIPT_OR_STYLE.sub(" ", dom)))


def typeset_problems(dom: str) -> list[str]:
    """Why the page's math is not typeset (empty when it is)."""
    problems = []
    text = visible_text(dom)
    raw = text.count("\\(") + text.count("\\[")
    if raw:
        i = min(j for j in (text.find("\\("), text.find("\\[")) if j >= 0)
        problems.append(f"{raw} raw LaTeX delimiters in the visible text, e.g. {text[i:i + 60]!r}")
    if not re.search(r'class="(MathJax|MJX)', dom):
        problems.append("no MathJax output elements in the page")
    return problems


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise SystemExit("no Chromium: `apt-get install -y chromium` (Debian) for the offline check")


def dump_dom(page: Path, browser: str) -> str:
    """The DOM of ``page`` after its scripts ran, with the network unreachable."""
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
           "--virtual-time-budget=20000", "--dump-dom", page.resolve().as_uri()]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if run.returncode != 0 or not run.stdout.strip():
        raise RuntimeError(f"chromium failed on {page}: {run.stderr[-500:]}")
    return run.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("html", type=Path, help="the rendered book's html folder")
    ap.add_argument("pages", nargs="*", default=list(DEFAULT_PAGES), help="chapter stems")
    args = ap.parse_args(argv)
    browser = chromium()
    bad = 0
    for stem in args.pages:
        page = args.html / "book" / f"{stem}.html"
        problems = typeset_problems(dump_dom(page, browser))
        print(f"{stem}: " + ("equations typeset offline" if not problems else "; ".join(problems)))
        bad += bool(problems)
        # the control: without its MathJax script the same page must fail
        source = page.read_text(encoding="utf-8")
        if not _MATHJAX_SCRIPT.search(source):
            print(f"{stem}: no local MathJax script tag found in the page")
            bad += 1
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".html", dir=page.parent, delete=False, encoding="utf-8") as f:
            f.write(_MATHJAX_SCRIPT.sub("", source))
        try:
            control = typeset_problems(dump_dom(Path(f.name), browser))
        finally:
            Path(f.name).unlink()
        if not control:
            print(f"{stem}: the control without MathJax also passed: the check cannot tell them apart")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
