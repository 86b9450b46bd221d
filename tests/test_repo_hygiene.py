"""Make targets, kernel names and the users' params folder behave as the README says.

Each test checks a promise a new user relies on: `make lab` works in a container (root),
`make validate PARAMS=...` does not generate the sample world for someone else's data,
`make clean` removes every generated report folder, a users' params file cannot be
committed by accident, and the notebooks, params and runner name one Jupyter kernel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")

needs_make = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def _dry_run(target: str, *args: str, cwd: Path = ROOT) -> str:
    """Return what ``make -n target`` would run (setup stamp assumed present)."""
    out = subprocess.run(
        [MAKE, "-n", "-o", ".venv/.installed", target, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


@needs_make
def test_make_lab_allows_root_and_takes_extra_arguments():
    text = _dry_run("lab", "-o", "data/sample/truth.json", "LAB_ARGS=--no-browser --port=8899")
    line = next(ln for ln in text.splitlines() if "jupyter lab" in ln)
    assert "--no-browser --port=8899" in line
    assert ("--allow-root" in line) == (os.geteuid() == 0)


@needs_make
def test_make_validate_on_users_params_does_not_generate_the_sample(tmp_path):
    # a copy of the Makefile in an empty folder: no sample world there
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    text = _dry_run("validate", "PARAMS=params/local/mine.yaml", cwd=tmp_path)
    assert "analysis synth" not in text
    assert "analysis validate --params params/local/mine.yaml" in text


@needs_make
def test_make_reports_on_the_default_params_generates_the_sample_when_missing(tmp_path):
    # a copy of the Makefile in an empty folder: data/sample/truth.json is missing there
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    text = _dry_run("reports", cwd=tmp_path)
    assert "analysis synth" in text


@needs_make
def test_make_clean_removes_every_report_folder(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    reports = tmp_path / "reports"
    for sub in ("cdnow", "weekly", "executed", "exports", "screenshots"):
        (reports / sub).mkdir(parents=True)
        (reports / sub / "x.html").write_text("x")
    (reports / "index.html").write_text("x")
    (reports / ".gitkeep").write_text("")
    (tmp_path / "data" / "sample").mkdir(parents=True)
    (tmp_path / "data" / "external").mkdir(parents=True)
    subprocess.run([MAKE, "clean"], cwd=tmp_path, check=True, capture_output=True)
    assert sorted(p.name for p in reports.iterdir()) == [".gitkeep"]
    assert not (tmp_path / "data" / "sample").exists()
    assert (tmp_path / "data" / "external").exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_users_params_folder_is_ignored_but_documented():
    def ignored(path: str) -> bool:
        return (
            subprocess.run(
                ["git", "check-ignore", "-q", path], cwd=ROOT, capture_output=True
            ).returncode
            == 0
        )

    assert ignored("params/local/mine.yaml")
    assert not ignored("params/local/README.md")
    assert (ROOT / "params" / "local" / "README.md").exists()


def test_notebooks_params_and_runner_name_one_kernel():
    from analysis.config import ReportsParams

    default = ReportsParams().kernel_name
    names = {
        json.loads(p.read_text())["metadata"]["kernelspec"]["name"]
        for p in (ROOT / "notebooks").glob("*.ipynb")
    }
    assert names == {default} == {"analysis"}
    for f in ("default.yaml", "cdnow.yaml"):
        raw = yaml.safe_load((ROOT / "params" / f).read_text())
        assert raw["reports"]["kernel_name"] == default
    makefile = (ROOT / "Makefile").read_text()
    assert f"--name {default}" in makefile and '"Python (analysis)"' in makefile
