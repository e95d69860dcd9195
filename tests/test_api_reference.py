"""book/api.md documents every public module of sparsity_core (autodoc, at render time)."""
import re

from sparsity_core import paths


def test_every_module_is_in_the_api_reference():
    root = paths.repo_root()
    modules = {".".join(p.relative_to(root).with_suffix("").parts)
               for p in (root / "sparsity_core").rglob("*.py") if not p.name.startswith("_")}
    listed = re.findall(r"^\.\. automodule:: (\S+)$", (root / "book" / "api.md").read_text(encoding="utf-8"), flags=re.M)
    assert sorted(set(listed)) == sorted(modules)
    assert len(listed) == len(set(listed))          # each once: a second listing duplicates its objects


def test_the_api_reference_is_in_the_table_of_contents():
    assert "file: book/api" in (paths.repo_root() / "_toc.yml").read_text(encoding="utf-8")
