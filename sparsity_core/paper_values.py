"""Paper numbers that come as tables: the entries a claim checks beyond its headline number.

A claim's headline number lives in ``data/paper_claims.csv`` (``paper_value``, one per
claim). Some claims check a whole table of the paper's (or its authors' code's) numbers:
Tables 1B-1D of Ahmad and Hawkins's calculations (ahmad2016how), the values their union script
prints, the ERK densities the targets computed by hand from RigL's reference code
(evci2020rigging). Those entries live in ``data/paper_values.csv``, one row per entry, so that
no paper number is typed in a notebook:

========  =========================================================================
column    meaning
========  =========================================================================
claim     the claim's id in ``data/paper_claims.csv``
table     which table (or script output) of the source the entry belongs to
params    the entry's parameters as ``name=value`` pairs joined by ``;`` (``s=6;theta=6``)
value     the number as printed, as text (its printed digits matter to some checks)
source    where it was read, with the provenance tag of ``paper_claims.csv`` (``V-src``,
          ``V-paper``, ``C``)
========  =========================================================================

Like the claims file, this one is fixed before any run. Unlike it, it is not part of
:func:`sparsity_core.sweeps.source_hash`: after changing an entry, re-run the chapter and its
seed sweep by hand (the exact claims that read it are compared by ``make test`` either way).

Taught in: Chapter 1 (tables 1B-1D, the union script) and Chapter 2, part 3 (ERK densities).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .claims import load_paper_claims

__all__ = ["VALUES_COLUMNS", "PaperValue", "paper_values_csv", "parse_params", "load_paper_values"]

#: Columns of ``data/paper_values.csv``, in order.
VALUES_COLUMNS = ("claim", "table", "params", "value", "source")


def paper_values_csv() -> Path:
    """``data/paper_values.csv`` of this checkout."""
    return paths.data_dir() / "paper_values.csv"


@dataclass(frozen=True)
class PaperValue:
    """One entry of a paper's table.

    Attributes:
        claim, table, source: as in the file.
        params: the parsed ``params`` (ints and floats where the text is one, else strings).
        value: the number as a float.
        text: the number as printed (``value``'s text in the file).
    """

    claim: str
    table: str
    params: dict[str, int | float | str]
    value: float
    text: str
    source: str


def _scalar(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_params(text: str) -> dict[str, int | float | str]:
    """``"s=6;theta=6"`` -> ``{"s": 6, "theta": 6}``; the empty string -> ``{}``.

    Raises:
        ValueError: on a pair without ``=``, an empty name or a repeated name.
    """
    out: dict[str, int | float | str] = {}
    for pair in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"params must be name=value pairs joined by ';' (got {text!r})")
        if name in out:
            raise ValueError(f"parameter {name!r} given twice in {text!r}")
        out[name] = _scalar(value.strip())
    return out


def load_paper_values(claim: str | None = None, path: Path | None = None,
                      claims_path: Path | None = None) -> list[PaperValue]:
    """Read and validate ``data/paper_values.csv`` (optionally one claim's rows), in file order.

    Args:
        claim: keep only this claim's entries (it must have some).
        path: the values file (default: :func:`paper_values_csv`).
        claims_path: the claims file every ``claim`` must name a row of (default: the repo's).

    Raises:
        ValueError: wrong columns, a claim id not in the claims file, a value that is not a
            finite number, bad ``params``, two entries with the same claim, table and params,
            or no entries for ``claim``.
    """
    path = Path(path) if path is not None else paper_values_csv()
    known = load_paper_claims(path=claims_path)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != VALUES_COLUMNS:
            raise ValueError(f"{path} must have the columns {VALUES_COLUMNS} in that order "
                             f"(got {tuple(reader.fieldnames or ())})")
        out, seen = [], set()
        for line, row in enumerate(reader, start=2):
            if None in row or any(v is None for v in row.values()):
                raise ValueError(f"{path}:{line}: wrong number of fields")
            if row["claim"] not in known:
                raise ValueError(f"{path}:{line}: claim {row['claim']!r} is not in the claims file")
            try:
                value = float(row["value"])
            except ValueError:
                raise ValueError(f"{path}:{line}: value {row['value']!r} is not a number") from None
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(f"{path}:{line}: value must be finite (got {row['value']!r})")
            params = parse_params(row["params"])
            key = (row["claim"], row["table"], tuple(sorted(params.items())))
            if key in seen:
                raise ValueError(f"{path}:{line}: a second entry for {key}")
            seen.add(key)
            out.append(PaperValue(claim=row["claim"], table=row["table"], params=params, value=value,
                                  text=row["value"], source=row["source"]))
    if claim is not None:
        out = [v for v in out if v.claim == claim]
        if not out:
            raise ValueError(f"no entries for claim {claim!r} in {path}")
    return out
