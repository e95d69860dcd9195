"""Sphinx extension: the rendered book needs no network to show its equations.

Sphinx loads MathJax 3 from a public CDN by default; opened without internet (a classroom, a
train, a CI runner), every equation would stay raw ``\\( ... \\)`` LaTeX. This extension points
``mathjax_path`` at a copy of MathJax 2.7 taken from an installed, pinned pip package
(``jupyter-server-mathjax``, in the ``book`` extra) and copies that package's files into the
build's ``_static/mathjax`` when the HTML build finishes. MathJax 2 typesets Sphinx's
``\\( \\)`` / ``\\[ \\]`` math as it is.

``tests/ci/test_offline_render.py`` opens a rendered chapter in headless Chromium with the
network off and checks that its equations are typeset.
"""
from __future__ import annotations

import shutil
from pathlib import Path

#: The one MathJax configuration file the package ships (TeX in, HTML-CSS/MathML out).
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full"
#: Where the copy lands, under the build's ``_static``.
MATHJAX_DIR = "mathjax"


def mathjax_source() -> Path:
    """The folder of MathJax files inside the installed ``jupyter_server_mathjax`` package."""
    import jupyter_server_mathjax

    folder = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (folder / "MathJax.js").is_file():
        raise FileNotFoundError(f"no MathJax.js in {folder}: reinstall jupyter-server-mathjax")
    return folder


def _use_local_mathjax(app, config) -> None:
    config.mathjax_path = f"{MATHJAX_DIR}/MathJax.js?config={MATHJAX_CONFIG}"
    # MathJax 2 reads Hub.Config, not MathJax 3's options (which myst-parser would set)
    config.myst_update_mathjax = False
    config.mathjax3_config = None
    config.mathjax2_config = {"tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]],
                                          "processEscapes": True, "processEnvironments": True},
                              "messageStyle": "none"}


def _copy_mathjax(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        shutil.copytree(mathjax_source(), Path(app.outdir) / "_static" / MATHJAX_DIR, dirs_exist_ok=True)


def setup(app):
    app.connect("config-inited", _use_local_mathjax, priority=900)   # after the other extensions' defaults
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
