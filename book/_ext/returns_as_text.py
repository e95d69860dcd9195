"""Sphinx extension for the API reference: a Google-style ``Returns:`` section is text, not
``type: description``.

``sparsity_core`` docstrings describe what a function returns in a sentence (``(B, V)
non-negative weights; padding contributes nothing (for max too: ...)``), while napoleon reads
the first colon of that sentence as the end of a type name and splits the sentence there.
Before napoleon runs, this hook puts an empty type in front (``: (B, V) ...``), so the whole
sentence is the description; the return type comes from the annotation
(``autodoc_typehints = "description"``).
"""
from __future__ import annotations

import re

_SECTION = re.compile(r"^(\s*)(Returns|Yields):\s*$")


def _returns_as_text(app, what, name, obj, options, lines: list[str]) -> None:
    for i, line in enumerate(lines):
        if _SECTION.match(line):
            j = next((k for k in range(i + 1, len(lines)) if lines[k].strip()), None)
            if j is not None and ":" in lines[j] and not lines[j].lstrip().startswith(":"):
                indent = len(lines[j]) - len(lines[j].lstrip())
                lines[j] = lines[j][:indent] + ": " + lines[j][indent:]


def setup(app):
    # napoleon converts at the default priority (500); this must see the raw docstring first
    app.connect("autodoc-process-docstring", _returns_as_text, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
