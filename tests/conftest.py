"""Shared fixtures: generated sample worlds written once per test session.

``tiny_world`` (400 customers) is for pipeline and notebook tests;
``medium_world`` (20,000 customers) for known-truth recovery tests that need
precision. Both are written as Parquet with a params file beside them.
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
