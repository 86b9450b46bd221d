"""Notebooks: stored without outputs, thin (no def/class), and each runs end to end under nbval.

Each notebook is parameterised (papermill-style) to the tiny sample world and
executed by ``pytest --nbval-lax`` in a subprocess, as the design asks.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert [p.stem for p in NOTEBOOKS][:1] == ["00_kpi_dashboard"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs", []) == [], f"{path.name}: strip outputs (nbstripout)"
            assert cell.get("execution_count") is None, f"{path.name}: execution counts present"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_thin(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), (
        "first cell: a markdown title and the question"
    )
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert "params_file" in tagged[0].source
    # The parameters cell holds only annotated literal assignments.
    for node in ast.parse(tagged[0].source).body:
        assert isinstance(node, ast.AnnAssign | ast.Assign), ast.dump(node)
        assert isinstance(node.value, ast.Constant), "parameters must be literals"
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        tree = ast.parse(c.source)
        defs = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef | ast.Lambda)
        ]
        assert defs == [], f"{path.name}: logic belongs in the analysis package, not the notebook"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_under_nbval(path, tiny_world, tmp_path):
    import papermill as pm

    target = tmp_path / path.name
    pm.execute_notebook(
        str(path),
        str(target),
        parameters={"params_file": str(tiny_world.params_file)},
        prepare_only=True,
        kernel_name="python3",
        progress_bar=False,
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-o",
            "addopts=",
            "--rootdir",
            str(tmp_path),
            str(target),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
