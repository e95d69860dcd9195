"""Build the Python-docs known-item retrieval benchmark (``data/retrieval/pydocs/``).

    python -m sparsity_core.assets build retrieval [--docs-dir DIR]

Documents are the object entries (``function``, ``method``, ``class``, ``exception``,
``attribute``, ``data`` and their variants ``classmethod``, ``staticmethod``,
``abstractmethod``, ``decorator``, ``coroutinefunction``, ...) of the Python 3.11 library
reference, read from the reStructuredText sources of Debian's ``python3.11-doc``; each
document is the entry's qualified signature followed by its description with the rST
markup stripped. Queries are the first paragraph of the same object's own docstring in
the stdlib of the Python that runs the build; each query has exactly one relevant
document (a known-item task). Only the build needs ``python3.11-doc``: the loader
:func:`sparsity_core.data.retrieval.load_pydocs` reads the frozen files.

Decisions (also written into the benchmark's README):

* A directive with several signatures (``.. data:: O_RDONLY`` / ``O_WRONLY`` ...) is one
  document with several names; its id is its first name. Entries marked ``:noindex:`` and
  entries whose every name was documented earlier (files in sorted order) are skipped.
* Objects without a docstring of their own are skipped: a constant's ``__doc__`` is its
  type's (``int``'s for ``os.O_RDONLY``), which would not describe it.
* Leading signature lines of C docstrings (``log(x, [base=math.e])``) are removed from the
  query; the query must keep >= ``MIN_QUERY_WORDS`` words.
* Ambiguous queries -- the same text for two different documents (aliases such as
  ``typing.Iterable`` / ``collections.abc.Iterable``) -- are dropped.
* Leakage: the documentation and the docstring are often written from the same text. A
  query whose word sequence occurs verbatim in its document is **kept** and flagged
  ``verbatim: true``; the loader drops them by default, so the benchmark asks for
  paraphrase-level matching, and a chapter can put them back to show the easy case.
* Split: train/dev/test = 60/20/20 by the sha256 of the query id, so a query's split never
  changes when other queries come and go.

Modules are imported only if the docs name them in a ``.. module::`` directive, minus
:data:`DENY_MODULES` (GUI toolkits, ``antigravity``/``this`` which act on import, the
regression-test package, ``readline`` which touches the terminal).
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import importlib
import inspect
import io
import json
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from . import manifest

COMMAND = "python -m sparsity_core.assets build retrieval"
DOCS_DIR = Path("/usr/share/doc/python3.11/html/_sources/library")  # Debian python3.11-doc
OUT_SUBDIR = Path("retrieval") / "pydocs"
MIN_QUERY_WORDS = 5  # a query shorter than this ("Abstract base class.") names no object
SPLIT_PERCENT = (("train", 60), ("dev", 20), ("test", 20))

# directive -> kind stored with the document (variants map to the six base kinds)
OBJECT_DIRECTIVES = {
    "function": "function", "coroutinefunction": "function", "awaitablefunction": "function",
    "decorator": "function",
    "method": "method", "classmethod": "method", "staticmethod": "method",
    "abstractmethod": "method", "coroutinemethod": "method", "awaitablemethod": "method",
    "decoratormethod": "method",
    "class": "class", "exception": "exception",
    "attribute": "attribute", "property": "attribute",
    "data": "data",
}
CLASS_KINDS = {"class", "exception"}
DENY_MODULES = {"antigravity", "this", "__main__", "idlelib", "tkinter", "turtle", "turtledemo",
                "readline", "test", "msilib", "winreg", "winsound", "msvcrt"}

# directives whose content is not shown as prose on the page (or is metadata)
_DROP_DIRECTIVES = {"index", "testsetup", "testcleanup", "sectionauthor", "moduleauthor",
                    "tabularcolumns", "highlight", "toctree", "include", "literalinclude",
                    "image", "figure", "raw", "contents", "only", "module", "currentmodule"}
# directives rendered as a lead-in sentence by Sphinx, followed by their content
_LEAD_INS = {"versionadded": "New in version {}.", "versionchanged": "Changed in version {}:",
             "deprecated": "Deprecated since version {}:", "availability": "Availability: {}",
             "deprecated-removed": "Deprecated since version {}:"}

_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+(?:py:)?([\w-]+)::\s*(.*)$")
_COMMENT = re.compile(r"^(\s*)\.\.(\s|$)")
_OPTION = re.compile(r"^:([\w-]+):\s*(.*)$")
_INLINE = re.compile(
    r"``(?P<lit>.+?)``"
    r"|:(?:[\w-]+:)*[\w-]+:`(?P<role>[^`]+)`"
    r"|`(?P<link>[^`]+?)`__?"
    r"|`(?P<default>[^`]+)`"
    r"|\*\*(?P<strong>[^*]+?)\*\*"
    r"|(?<![\w*])\*(?P<em>[^\s*][^*]*?)(?<!\s)\*(?![\w*])"
    r"|\|(?P<subst>[\w -]+)\|"
    r"|\s?\[(?:#\w*|\d+)\]_"
)
_TABLE_RULE = re.compile(r"^\s*[=+\-~^\"'`#*|: ]{3,}\s*$")
_SIGNATURE_LINE = re.compile(r"^[\w.]+\(.*\)\s*(->.*)?$")
_WORD = re.compile(r"\w+")


@dataclass
class Entry:
    """One object directive: its names, where it came from, and its stripped text."""
    kind: str
    names: list[str]        # qualified names, first one is the document id
    modules: list[str]      # the module each name lives in ("builtins" when none is set)
    paths: list[str]        # attribute path of each name inside its module
    signature: str          # first signature, qualified
    text: str = ""
    source: str = ""
    line: int = 0
    noindex: bool = False


# ---------------------------------------------------------------------------- rST -> text

def _inline(m: re.Match) -> str:
    g = m.lastgroup
    if g is None:
        return ""                                     # footnote reference
    s = m.group(g)
    if g == "role":
        title = re.match(r"^(.*?)\s*<([^<>]+)>$", s, re.S)
        if title and title.group(1):
            return title.group(1)
        s = s.lstrip("!")
        return s[1:].rsplit(".", 1)[-1] if s.startswith("~") else s
    if g == "link":
        title = re.match(r"^(.*?)\s*<([^<>]+)>$", s, re.S)
        return title.group(1) if title and title.group(1) else s
    return s


def strip_inline(text: str) -> str:
    """Inline rST to plain text: roles, literals, emphasis, links, substitutions."""
    text = _INLINE.sub(_inline, text)
    return text.replace("\\ ", "").replace("\\", "")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """First line at or after ``start`` that is non-blank and indented <= ``indent``."""
    j = start
    while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > indent):
        j += 1
    return j


def rst_to_text(lines: list[str]) -> str:
    """Plain text of a block of rST lines: paragraphs joined by blank lines."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        d = _DIRECTIVE.match(line)
        if d:
            name, arg = d.group(2), d.group(3).strip()
            end = _block_end(lines, i + 1, _indent(line))
            if name in _DROP_DIRECTIVES:
                i = end
                continue
            if name in _LEAD_INS:
                arg = _LEAD_INS[name].format(arg)
            elif name == "audit-event":
                parts = arg.split(None, 2) + ["", ""]    # name, arguments, [target]
                arg = f"Raises an auditing event {parts[0]} with arguments {parts[1]}."
            out.append(arg)
            i += 1
            while i < end and _OPTION.match(lines[i].strip()):   # directive options
                i += 1
            continue
        if _COMMENT.match(line):                      # comment, target, footnote
            foot = re.match(r"^\s*\.\.\s+\[[^\]]*\]\s*(.*)$", line)
            end = _block_end(lines, i + 1, _indent(line))
            if foot:
                out.append(foot.group(1))
                i += 1
            else:
                i = end
            continue
        if stripped == "::" or _TABLE_RULE.match(line):
            out.append("")
            i += 1
            continue
        if stripped.startswith(("| ", "+")) or (stripped[:1] == "|" and stripped[-1:] == "|"):
            stripped = stripped.strip("|").replace(" | ", "  ")
        stripped = re.sub(r"^(>>>|\.\.\.)(\s|$)", "", stripped)  # doctest prompts
        if stripped.endswith("::"):
            stripped = stripped[:-2].rstrip() + (":" if not stripped[:-2].endswith(" ") else "")
        out.append(stripped)
        i += 1
    paragraphs, cur = [], []
    for s in out + [""]:
        if s.strip():
            cur.append(s)
        elif cur:
            paragraphs.append(" ".join(" ".join(cur).split()))
            cur = []
    return "\n\n".join(strip_inline(p) for p in paragraphs if p)


# ---------------------------------------------------------------------------- rST parsing

def _qualify(module: str | None, classname: str | None, sig: str) -> tuple[str, str, str]:
    """``(qualified name, module, attribute path)`` of a signature, as Sphinx's py domain."""
    name = re.match(r"^\s*(?:await\s+)?([\w.]+)", sig)
    if not name:
        raise ValueError(f"no object name in signature {sig!r}")
    path = name.group(1).rstrip(".")
    if classname and not (path == classname or path.startswith(classname + ".")):
        path = f"{classname}.{path}"
    mod = module or "builtins"
    qual = f"{module}.{path}" if module else path
    return qual, mod, path


def parse_file(text: str, source: str) -> list[Entry]:
    """Object entries of one rST file, in file order (nested methods included)."""
    lines = text.splitlines()
    entries: list[Entry] = []
    module: str | None = None
    classes: list[tuple[int, str]] = []           # (directive indent, class path)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip():
            while classes and _indent(line) <= classes[-1][0]:
                classes.pop()
        d = _DIRECTIVE.match(line)
        if not d:
            i += 1
            continue
        indent, name, arg = len(d.group(1)), d.group(2), d.group(3)
        if name in ("module", "currentmodule"):
            module = None if arg.strip() in ("", "None") else arg.strip()
            i += 1
            continue
        if name not in OBJECT_DIRECTIVES:
            i += 1
            continue
        # arguments run to the first blank or option line; "\" joins physical lines
        sigs, options, j = [arg.strip()], {}, i + 1
        while j < len(lines) and lines[j].strip() and _indent(lines[j]) > indent:
            s = lines[j].strip()
            opt = _OPTION.match(s)
            if opt:
                options[opt.group(1)] = opt.group(2)
            elif sigs[-1].endswith("\\"):
                sigs[-1] = sigs[-1][:-1].rstrip() + " " + s
            else:
                sigs.append(s)
            j += 1
        sigs = [s.rstrip("\\").strip() for s in sigs if s.strip()]
        end = _block_end(lines, j, indent)
        mod = options.get("module", module) or None
        classname = classes[-1][1] if classes else None
        names, modules, attr_paths = [], [], []
        for s in sigs:
            qual, m, p = _qualify(mod, classname, s)
            if qual not in names:
                names.append(qual)
                modules.append(m)
                attr_paths.append(p)
        body, k = [], j
        while k < end:                             # body minus nested object entries
            nested = _DIRECTIVE.match(lines[k])
            if nested and nested.group(2) in OBJECT_DIRECTIVES:
                k = _block_end(lines, k + 1, _indent(lines[k]))
                continue
            body.append(lines[k])
            k += 1
        first = sigs[0]
        qual_sig = names[0] + first[len(re.match(r"^\s*(?:await\s+)?[\w.]+", first).group(0)):]
        entries.append(Entry(
            kind=OBJECT_DIRECTIVES[name], names=names, modules=modules, paths=attr_paths,
            signature=qual_sig.strip(), text=rst_to_text(body), source=source, line=i + 1,
            noindex="noindex" in options or "no-index" in options))
        if OBJECT_DIRECTIVES[name] in CLASS_KINDS:
            classes.append((indent, attr_paths[0]))
        i = j                                       # scan the body for nested entries
    return entries


def collect_documents(docs_dir: Path) -> tuple[list[Entry], dict[str, int]]:
    """All unique entries of the library reference, sorted by id, and skip counts."""
    if not docs_dir.is_dir():
        raise FileNotFoundError(
            f"{docs_dir} not found: install Debian's python3.11-doc "
            "(apt-get install -y python3.11-doc) or pass --docs-dir")
    seen: set[str] = set()
    kept: list[Entry] = []
    skipped = {"noindex": 0, "duplicate": 0}
    for f in sorted(docs_dir.glob("*.rst.txt")):
        source = f"library/{f.name[:-len('.txt')]}"
        for e in parse_file(f.read_text(encoding="utf-8"), source):
            if e.noindex:
                skipped["noindex"] += 1
                continue
            fresh = [n not in seen for n in e.names]
            if not any(fresh):
                skipped["duplicate"] += 1
                continue
            keep = [x for x, ok in zip(range(len(e.names)), fresh) if ok]
            e.names = [e.names[x] for x in keep]
            e.modules = [e.modules[x] for x in keep]
            e.paths = [e.paths[x] for x in keep]
            seen.update(e.names)
            kept.append(e)
    kept.sort(key=lambda e: e.names[0])
    return kept, skipped


# ---------------------------------------------------------------------------- docstrings

def _import(module: str, cache: dict[str, object]) -> object | None:
    if module in cache:
        return cache[module]
    mod = None
    if module.split(".")[0] not in DENY_MODULES:
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                mod = importlib.import_module(module)
        except (Exception, SystemExit):            # noqa: BLE001 - any failure skips it
            mod = None
    cache[module] = mod
    return mod


def own_docstring(obj: object) -> str | None:
    """``obj.__doc__`` if it describes ``obj`` itself, not its type (constants, instances)."""
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return None
    if not inspect.isclass(obj) and doc == getattr(type(obj), "__doc__", None):
        return None
    return doc


def first_paragraph(doc: str) -> str:
    """First paragraph of a docstring, leading signature lines removed, whitespace collapsed."""
    lines = inspect.cleandoc(doc).splitlines()
    while lines and (_SIGNATURE_LINE.match(lines[0].strip()) or not lines[0].strip()):
        lines.pop(0)
    para = []
    for line in lines:
        if not line.strip():
            break
        para.append(line.strip())
    return " ".join(" ".join(para).split())


def _resolve(module: str, path: str, cache: dict[str, object]) -> object | None:
    obj = _import(module, cache)
    if obj is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for part in path.split("."):
                obj = getattr(obj, part)
    except Exception:                              # noqa: BLE001 - not resolvable
        return None
    return obj


def _words(text: str) -> str:
    return " " + " ".join(_WORD.findall(text.lower())) + " "


def split_of(query_id: str) -> str:
    """Deterministic split from the sha256 of the id: 60 % train, 20 % dev, 20 % test."""
    bucket = int(hashlib.sha256(query_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    for name, share in SPLIT_PERCENT:
        if bucket < share:
            return name
        bucket -= share
    raise AssertionError("split shares must sum to 100")


def collect_queries(entries: list[Entry]) -> tuple[list[dict], dict[str, int]]:
    """One query per documented name with an own docstring of >= MIN_QUERY_WORDS words."""
    cache: dict[str, object] = {}
    counts = {"unresolved": 0, "no_docstring": 0, "short": 0, "ambiguous": 0}
    candidates: list[dict] = []
    for e in entries:
        texts_here: set[str] = set()
        for name, mod, path in zip(e.names, e.modules, e.paths):
            obj = _resolve(mod, path, cache)
            if obj is None:
                counts["unresolved"] += 1
                continue
            doc = own_docstring(obj)
            if doc is None:
                counts["no_docstring"] += 1
                continue
            text = first_paragraph(doc)
            if len(text.split()) < MIN_QUERY_WORDS:
                counts["short"] += 1
                continue
            if text in texts_here:                 # same text for two names of one entry
                continue
            texts_here.add(text)
            candidates.append({"id": name, "doc": e.names[0], "text": text,
                               "verbatim": _words(text) in _words(e.text)})
    docs_of_text: dict[str, set[str]] = {}
    for q in candidates:
        docs_of_text.setdefault(q["text"], set()).add(q["doc"])
    queries = []
    for q in candidates:
        if len(docs_of_text[q["text"]]) > 1:
            counts["ambiguous"] += 1
            continue
        q["split"] = split_of(q["id"])
        queries.append(q)
    queries.sort(key=lambda q: q["id"])
    return queries, counts


# ---------------------------------------------------------------------------- writing

def write_jsonl_gz(path: Path, rows: list[dict]) -> None:
    """Byte-deterministic gzip'd JSON lines: sorted keys, no mtime, no file name."""
    payload = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                  compresslevel=9, mtime=0) as gz:
        gz.write(payload.encode("utf-8"))


_LICENSE = """\
Python-docs known-item benchmark: licence of the contents
=========================================================

documents.jsonl.gz is derived from the reStructuredText sources of the Python 3.11
library reference (Debian package python3.11-doc, {docs_version}); queries.jsonl.gz holds
the first paragraph of docstrings of the CPython {py_version} standard library.

Both are Copyright (c) 2001-2023 Python Software Foundation; All Rights Reserved, and
are used under the PSF License Agreement for Python (the documentation is distributed
under the same licence as Python, see https://docs.python.org/3/license.html and
/usr/share/doc/python3.11/copyright). The text was changed: rST markup was stripped,
entries were split per object, and docstrings were cut to their first paragraph.
"""

_README = """\
# Python-docs known-item retrieval benchmark

Each query is the first paragraph of a Python object's own docstring; the one relevant
document is that object's entry in the Python 3.11 library reference (rST markup
stripped, qualified signature first). Built offline from Debian's `python3.11-doc`
({docs_version}) and the stdlib of CPython {py_version}.

Rebuild (needs `apt-get install -y python3.11-doc`; the loader does not):

    {command}

Load: `sparsity_core.data.retrieval.load_pydocs()` (checks data/MANIFEST first).

## Files

- `documents.jsonl.gz`: `id` (qualified name), `names` (all names of the entry), `kind`,
  `source` (rST file), `text`. Sorted by `id`.
- `queries.jsonl.gz`: `id` (qualified name of the object), `doc` (id of the relevant
  document), `text`, `split` (60/20/20 train/dev/test by sha256 of `id`), `verbatim`
  (the query's words occur contiguously in its document). Sorted by `id`.

## Counts

- documents: {n_docs} ({kinds})
- queries: {n_queries} ({splits}); verbatim: {n_verbatim} ({verbatim_splits})
- entries skipped: {skipped}
- names without a query: {query_counts}

## Choices

- Objects whose `__doc__` is their type's (constants, instances) have no query.
- Leading signature lines of C docstrings are removed; queries need >= {min_words} words.
- Queries whose text belongs to two different documents (aliases) are dropped.
- Verbatim queries are kept and flagged; `load_pydocs()` drops them by default.
"""


def _fmt(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def main(argv: list[str] | None = None) -> int:
    """Build the Python-docs benchmark under data/retrieval/pydocs and record it; returns the exit status."""
    ap = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs-dir", type=Path, default=DOCS_DIR,
                    help="rST sources of the library reference (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=None,
                    help="output folder (default: data/retrieval/pydocs, recorded in "
                         "data/MANIFEST; another folder is not recorded)")
    args = ap.parse_args(argv)
    entries, skipped = collect_documents(args.docs_dir)
    queries, query_counts = collect_queries(entries)
    out = args.out or paths.data_dir() / OUT_SUBDIR
    out.mkdir(parents=True, exist_ok=True)
    docs = [{"id": e.names[0], "names": e.names, "kind": e.kind, "source": e.source,
             "text": f"{e.signature}\n\n{e.text}".strip()} for e in entries]
    write_jsonl_gz(out / "documents.jsonl.gz", docs)
    write_jsonl_gz(out / "queries.jsonl.gz", queries)

    def by(key: str, rows: list[dict], order: list[str]) -> str:
        return ", ".join(f"{k} {sum(r[key] == k for r in rows)}" for k in order)

    split_names = [s for s, _ in SPLIT_PERCENT]
    verbatim = [q for q in queries if q["verbatim"]]
    info = {
        "docs_version": _docs_version(args.docs_dir),
        "py_version": ".".join(map(str, sys.version_info[:3])), "command": COMMAND,
        "n_docs": len(docs), "kinds": by("kind", docs, sorted({d["kind"] for d in docs})),
        "n_queries": len(queries), "splits": by("split", queries, split_names),
        "n_verbatim": len(verbatim), "verbatim_splits": by("split", verbatim, split_names),
        "skipped": _fmt(skipped), "query_counts": _fmt(query_counts),
        "min_words": MIN_QUERY_WORDS,
    }
    (out / "LICENSE").write_text(_LICENSE.format(**info), encoding="utf-8")
    (out / "README.md").write_text(_README.format(**info), encoding="utf-8")
    files = [out / n for n in ("documents.jsonl.gz", "queries.jsonl.gz", "LICENSE", "README.md")]
    if args.out is None:
        manifest.record(files, COMMAND)
    print(f"{len(docs)} documents, {len(queries)} queries ({info['splits']}) -> {out}")
    return 0


def _docs_version(docs_dir: Path) -> str:
    """Version of the Debian package that ships ``docs_dir`` (from its changelog), or 'unknown'."""
    changelog = Path("/usr/share/doc/python3.11/changelog.Debian.gz")
    if docs_dir.resolve() != DOCS_DIR or not changelog.exists():
        return "version unknown"
    with gzip.open(changelog, "rt", encoding="utf-8") as f:
        first = f.readline()
    m = re.search(r"\(([^)]+)\)", first)
    return f"version {m.group(1)}" if m else "version unknown"


if __name__ == "__main__":
    sys.exit(main())
