"""environment.yml, pyproject.toml and requirements.lock must agree on packages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_specs() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(meta["dependencies"]) + list(meta["optional-dependencies"]["dev"])
    return {_name(s): s.replace(" ", "") for s in specs}


def _environment_specs() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for s in items:
            if s.startswith("-e") or _name(s) in ("python", "pip"):
                continue
            out[_name(s)] = s.replace(" ", "")
    return out


def test_environment_yml_lists_the_same_packages_as_pyproject():
    py, env = _pyproject_specs(), _environment_specs()
    assert sorted(set(py) - set(env)) == [], "in pyproject.toml but not environment.yml"
    assert sorted(set(env) - set(py)) == [], "in environment.yml but not pyproject.toml"
    differing = {k: (py[k], env[k]) for k in py if py[k] != env[k]}
    assert differing == {}, "version ranges differ"


def test_lock_file_pins_every_declared_package():
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_name(name)] = version
    missing = [n for n in _pyproject_specs() if n not in pins]
    assert missing == []
    assert all(v for v in pins.values()), "every lock line must be an exact == pin"


def test_lock_does_not_cap_pandas_below_3():
    pins = dict(
        line.split("==")
        for line in (ROOT / "requirements.lock").read_text().split()
        if "==" in line
    )
    assert int(pins["pandas"].split(".")[0]) >= 3
