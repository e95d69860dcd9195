"""ci/check_offline_render.py's reading of a page (the browser run itself is `make offline-check`)
and the staged book's widget-free outputs."""
import sys

import nbformat

from sparsity_core import paths

sys.path.insert(0, str(paths.repo_root() / "ci"))
import check_offline_render as check  # noqa: E402
import stage_book  # noqa: E402

TYPESET = ('<html><body><p>The mean <span class="math notranslate nohighlight"><span class="MathJax" id="MathJax-Element-1-Frame">'
           '<span class="math">x</span></span><script type="math/tex">\\bar x</script></span> of n values.</p></body></html>')
RAW = '<html><body><p>The mean <span class="math notranslate nohighlight">\\(\\bar x\\)</span> of n values.</p></body></html>'


def test_a_typeset_page_passes():
    assert check.typeset_problems(TYPESET) == []


def test_raw_latex_or_missing_mathjax_output_fails():
    problems = check.typeset_problems(RAW)
    assert any("1 raw LaTeX delimiters" in p for p in problems)
    assert any("no MathJax output" in p for p in problems)
    assert check.typeset_problems(RAW.replace("\\(", "\\[").replace("\\)", "\\]"))


def test_visible_text_ignores_scripts_and_styles():
    assert "\\(" not in check.visible_text('<script>var s = "\\\\(";</script><style>p{}</style><p>ok</p>')


def test_the_control_removes_the_local_mathjax_script():
    page = '<head><script async="async" src="../_static/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"></script></head>'
    assert check._MATHJAX_SCRIPT.sub("", page) == "<head></head>"


def test_staged_notebooks_keep_only_the_text_of_widgets():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("for i in tqdm(range(3)): pass")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        stage_book.WIDGET_MIME: {"model_id": "abc", "version_major": 2, "version_minor": 0},
        "text/plain": "100%|##########| 3/3"})]
    nb.cells.append(cell)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    out = stage_book.without_widgets(nb)
    assert out.cells[0].outputs[0]["data"] == {"text/plain": "100%|##########| 3/3"}
    assert "widgets" not in out.metadata
