"""Notebooks in git: output-free, python3 kernel, parameters cell matching the kit's schema."""

import ast
import math
from pathlib import Path

import nbformat
import pytest

from kit.cli.notebooks import NOTEBOOKS as SCHEMAS
from kit.cli.notebooks import schema_for
from kit.core.params import defaults

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_every_runnable_notebook_exists():
    names = {path.stem for path in NOTEBOOKS}
    assert set(SCHEMAS) <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_output_free(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a code cell has stored outputs"
            assert cell.execution_count is None
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_matches_schema(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    if path.stem not in SCHEMAS:
        return
    values = {}
    for node in ast.parse(tagged[0].source).body:
        assert isinstance(node, ast.Assign), "the parameters cell holds only assignments"
        values[node.targets[0].id] = literal(node.value)
    assert values == defaults(schema_for(path.stem))


def literal(node: ast.expr):
    """A parameter's value: a Python literal, or float("inf") (papermill writes it so)."""
    if isinstance(node, ast.Call) and ast.unparse(node) == "float('inf')":
        return math.inf
    return ast.literal_eval(node)


def code_cells(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [
        c.source
        for c in nb.cells
        if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_show_things_only_through_kit_display(path):
    """One way to show a table, a text, an image: each output then has its Markdown view
    and alt text (kit.report.display), and report.md never shows an object's repr."""
    from kit.report import display

    for source in code_cells(path):
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "IPython.display", f"{path.name}: use kit.report.display"
                if node.module == "kit":
                    assert "report" not in {a.name for a in node.names}, f"{path.name}: kit.report"
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "display"
            ):
                assert hasattr(display, node.attr), f"{path.name}: no display.{node.attr}"
        last = tree.body[-1] if tree.body else None
        if isinstance(last, ast.Expr) and not isinstance(last.value, ast.Call):
            raise AssertionError(f"{path.name}: a cell ends in a bare expression (its repr)")


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem in SCHEMAS], ids=lambda p: p.stem)
def test_runnable_notebooks_end_by_finishing_the_run_and_showing_its_environment(path):
    last = code_cells(path)[-1].strip().splitlines()
    assert last[-2].startswith("run.finish(") and last[-2].endswith(")")
    assert last[-1] == "display.show_environment(run.environment)"
