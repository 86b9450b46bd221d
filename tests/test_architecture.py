"""The package layout keeps its layers (docs: the layer rule of the restructure).

    stats   -> analysis.errors and other analysis.stats modules only
    data    -> analysis.errors, analysis.config, analysis.data.*
    studies -> analysis.errors, analysis.config, analysis.data, analysis.stats, analysis.studies
    report  -> anything in the package

Nothing below the report layer imports ``analysis.report`` or one of the
top-level compatibility modules; those modules only re-export; no module is
over 1,000 lines; notebooks import only ``analysis.data``, ``analysis.studies.*``
and ``analysis.report.*``; every public function of the stats layer has a
numpydoc docstring with Parameters and Returns sections. Imports are read from
the source (``ast``), including imports inside functions and under
``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "analysis"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_LINES = 1000

LAYERS = {
    "stats": ("analysis.errors", "analysis.stats"),
    "data": ("analysis.errors", "analysis.config", "analysis.data"),
    "studies": (
        "analysis.errors",
        "analysis.config",
        "analysis.data",
        "analysis.stats",
        "analysis.studies",
    ),
    "report": ("analysis",),
}
LOWER_LAYERS = ("stats", "data", "studies")

#: Top-level modules kept for backward compatibility: thin re-exports of the layers.
SHIMS = (
    "survival",
    "causal",
    "value",
    "experience",
    "loyalty",
    "kpi",
    "reporting",
    "runner",
    "derive",
    "synth",
    "contract",
    "cdnow",
    "survival_plots",
)
NOTEBOOK_IMPORTS = ("analysis.data", "analysis.studies", "analysis.report")


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(tree: ast.AST, module: str | None = None, is_package: bool = False) -> list:
    """Return (line, dotted name) for every import of ``analysis``, anywhere in ``tree``.

    ``from analysis.x import y`` gives ``analysis.x.y`` (``y`` may be a module or a
    name in ``analysis.x``; either way it lies inside ``analysis.x``). Relative
    imports are resolved against ``module``.
    """
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = (module or "").split(".")
                if not is_package:
                    package = package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in out if name.split(".")[0] == "analysis"]


def _layer_modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imports_of(path: Path) -> list:
    return _imported(_parse(path), _module_name(path), path.name == "__init__.py")


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


@pytest.mark.parametrize("layer", list(LAYERS))
def test_layers_import_only_the_layers_below(layer):
    allowed = LAYERS[layer]
    bad = [
        f"{_where(path, line)} imports {name}"
        for path in _layer_modules(layer)
        for line, name in _imports_of(path)
        if not _within(name, allowed)
    ]
    assert not bad, f"{layer} may import only {', '.join(allowed)}:\n" + "\n".join(bad)


@pytest.mark.parametrize("layer", LOWER_LAYERS)
def test_lower_layers_import_neither_report_nor_compatibility_modules(layer):
    forbidden = ("analysis.report",) + tuple(f"analysis.{s}" for s in SHIMS)
    bad = [
        f"{_where(path, line)} imports {name}"
        for path in _layer_modules(layer)
        for line, name in _imports_of(path)
        if _within(name, forbidden)
    ]
    assert not bad, "\n".join(bad)


def _shim_path(name: str) -> Path | None:
    for path in (PACKAGE / f"{name}.py", PACKAGE / name / "__init__.py"):
        if path.is_file():
            return path
    return None


def _main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (keeps ``python -m analysis.<old module>`` working)."""
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and not node.orelse
    )


@pytest.mark.parametrize("name", SHIMS)
def test_compatibility_modules_only_re_export(name):
    path = _shim_path(name)
    assert path is not None, f"analysis.{name} must stay importable (a re-export module)"
    tree = _parse(path)
    defs = [
        f"{_where(path, n.lineno)} defines {n.name}"
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    assert not defs, "move the code into its layer and re-export it:\n" + "\n".join(defs)
    other = []
    for i, node in enumerate(tree.body):
        docstring = i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        dunder_all = isinstance(node, ast.Assign | ast.AnnAssign) and all(
            isinstance(t, ast.Name) and t.id == "__all__"
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
        if not (
            docstring
            or dunder_all
            or isinstance(node, ast.Import | ast.ImportFrom)
            or _main_guard(node)
        ):
            other.append(f"{_where(path, node.lineno)}: {ast.dump(node)[:80]}")
    assert not other, "a compatibility module holds imports, a docstring and __all__ only:\n" + (
        "\n".join(other)
    )


def test_no_module_is_over_a_thousand_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted(PACKAGE.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split modules over {MAX_LINES} lines: {long}"


#: A numpydoc section heading: the name on its own line, underlined with dashes.
_SECTION = re.compile(r"^[ \t]*(\w+)[ \t]*\n[ \t]*-{3,}[ \t]*$", re.MULTILINE)


def _docstring_problems(path: Path) -> list[str]:
    """Public module-level functions without Parameters/Returns; public classes without a docstring."""
    out = []
    for node in _parse(path).body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if node.name.startswith("_"):
            continue
        doc = ast.get_docstring(node)
        if isinstance(node, ast.ClassDef):
            if not doc:
                out.append(f"{_where(path, node.lineno)} class {node.name}: no docstring")
        else:
            sections = set(_SECTION.findall(doc or ""))
            missing = [s for s in ("Parameters", "Returns") if s not in sections]
            if missing:
                out.append(f"{_where(path, node.lineno)} {node.name}: no {', '.join(missing)}")
    return out


def test_public_stats_functions_have_numpydoc_parameters_and_returns():
    bad = [problem for path in _layer_modules("stats") for problem in _docstring_problems(path)]
    assert not bad, (
        "public estimators need a numpydoc docstring with Parameters and Returns sections "
        "(public classes a docstring):\n" + "\n".join(bad)
    )


def _notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        src = cell["source"]
        src = "".join(src) if isinstance(src, list) else src
        # IPython magics and shell escapes are not Python
        lines += [
            "# " + ln if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines()
        ]
        lines.append("")
    return "\n".join(lines)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_import_only_data_studies_and_report(path):
    tree = ast.parse(_notebook_code(path), filename=str(path))
    bad = [
        f"{path.name}: imports {name}"
        for _, name in _imported(tree)
        if not _within(name, NOTEBOOK_IMPORTS)
    ]
    assert not bad, (
        "notebooks import analysis.data, analysis.studies.* and analysis.report.* only:\n"
        + "\n".join(bad)
    )
