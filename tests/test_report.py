"""Report pieces: escaping, and an HTML rendering that fetches nothing from the network."""

import re

import nbformat

from kit.report import html_table, render_html, text_block


def test_tables_and_text_escape_everything():
    table = html_table([{"<b>col</b>": "<script>alert(1)</script>"}])
    assert "<script>" not in table and "&lt;script&gt;" in table
    assert "&lt;b&gt;col&lt;/b&gt;" in table
    block = text_block('a < b & "c"')
    assert "a &lt; b &amp; &quot;c&quot;" in block


def test_rendered_report_hides_code_and_loads_nothing_remote(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    cell = nbformat.v4.new_code_cell("secret_code = 1")
    cell.outputs = [nbformat.v4.new_output("display_data", {"text/html": "<p>shown</p>"})]
    nb.cells = [nbformat.v4.new_markdown_cell("# Title $x^2$"), cell]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    html = render_html(path, tmp_path / "nb.html").read_text()
    assert "shown" in html and "secret_code" not in html
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=[\"']https?://", html)
    assert "@import url(http" not in html
