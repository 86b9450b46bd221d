"""Shared fixtures: generated sample worlds written once per test session.

``tiny_world`` (400 customers) is for pipeline and notebook tests;
``medium_world`` (20,000 customers) for known-truth recovery tests that need
precision. Both are written as Parquet with a params file beside them.

Several test sessions may run on one machine at once (other clones, CI jobs,
``make reports`` beside ``make test``), so nothing a test writes has a fixed
name: files go under pytest's per-session temporary folder (``tmp_path``,
``tmp_path_factory``), ports are picked free, database schemas are unique per
session (tests/test_postgres.py). ``_session_tool_state`` also keeps the state
that Jupyter kernels and git would otherwise share through the home folder
inside the session (see there).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class World:
    """A generated world on disk: data folder, params file and truth."""

    data_dir: Path
    params_file: Path
    reports_dir: Path
    truth: dict


def _make_world(base: Path, *, n: int, seed: int) -> World:
    from analysis import synth

    data_dir = base / "data"
    if not (data_dir / "truth.json").exists():
        world = synth.generate(n_customers=n, seed=seed)
        synth.write(world, data_dir, format="parquet")
    reports = base / "reports"
    params = base / "params.yaml"
    params.write_text(
        "data:\n  path: data\n"
        "reports:\n  output_dir: reports\n  jobs: 1\n  timeout_seconds: 600\n"
        "  title: Test reports\n"
    )
    return World(data_dir, params, reports, json.loads((data_dir / "truth.json").read_text()))


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> World:
    """Return a 400-customer sample world (seed 3) with a params file."""
    return _make_world(tmp_path_factory.mktemp("tiny_world"), n=400, seed=3)


@pytest.fixture(scope="session")
def medium_world(tmp_path_factory) -> World:
    """Return a 20,000-customer sample world (seed 11) with a params file."""
    return _make_world(tmp_path_factory.mktemp("medium_world"), n=20_000, seed=11)


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Return a started headless Chromium (tests/test_browser.py); FAIL, never skip, without it.

    One per test process: Playwright's sync API allows one running instance per thread,
    so the browser tests and the report lint share it.
    """
    from tests.test_browser import Browser

    try:
        b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    except RuntimeError as exc:
        pytest.fail(f"headless Chromium is required for the browser tests: {exc}", pytrace=False)
    yield b
    b.close()


@pytest.fixture(scope="session", autouse=True)
def _session_tool_state(tmp_path_factory):
    """Keep tool state that would be shared through the home folder inside this session.

    The variables reach every process the tests start (report runner workers,
    their kernels, nbval):

    - ``IPYTHONDIR``: nbval's kernels (papermill's keep theirs in memory) write
      their history to ``profile_default/history.sqlite``; with one file for
      every kernel of every session a busy writer can lock the others out, and
      IPython then moves the "corrupt" file aside, the user's own history included.
    - ``JUPYTER_RUNTIME_DIR``: kernel connection files (and their leftovers when a
      session is killed) stay in the session folder.
    - ``GIT_OPTIONAL_LOCKS=0``: the runner reads the commit with ``git status``,
      which otherwise takes ``.git/index.lock`` to refresh the index, so that a
      ``git commit`` run at that moment in the same checkout fails.
    """
    base = tmp_path_factory.mktemp("tool-state")
    for sub in ("ipython", "jupyter-runtime"):
        (base / sub).mkdir()  # IPython falls back to a temp folder when it is missing
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPYTHONDIR", str(base / "ipython"))
        mp.setenv("JUPYTER_RUNTIME_DIR", str(base / "jupyter-runtime"))
        mp.setenv("GIT_OPTIONAL_LOCKS", "0")
        yield base
