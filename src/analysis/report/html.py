"""Stakeholder HTML of the report runner: report pages and the reports index.

An executed notebook becomes a page without code (:func:`notebook_body_html`):
outputs and markdown, images embedded as base64, headline records and stderr
stripped. Pages and the index are rendered from the Jinja templates in
``analysis/report/templates`` (inline CSS, no scripts, no external links).
Notebook facts the runner needs (title, headlines, declared parameters) and the
provenance of the code (:func:`git_commit`, :func:`package_version`) are read here.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analysis.report.outputs import ReportResult

INDEX_NAME = "index.html"

_TEMPLATES = Path(__file__).with_name("templates")
_NBCONVERT_ALT = "No description has been provided for this image"


def collect_headlines(nb: Any) -> list[dict]:
    """Return the headline records emitted by :func:`analysis.report.display.headline`, in order."""
    from analysis.report.display import HEADLINE_MIME

    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if HEADLINE_MIME in data:
                rec = data[HEADLINE_MIME]
                if isinstance(rec, str):
                    with contextlib.suppress(ValueError):
                        rec = json.loads(rec)
                if isinstance(rec, Mapping):
                    out.append(dict(rec))
    return out


def notebook_title(nb: Any, default: str) -> str:
    """Return the first level-1 heading of the notebook's first markdown cell, else ``default``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                m = re.match(r"^#\s+(.+?)\s*#*\s*$", line)
                if m:
                    return m.group(1)
            break
    return default


def declares_parameter(notebook: Path, name: str) -> bool:
    """Return True if the notebook's ``parameters`` cell assigns ``name``."""
    try:
        nb = json.loads(Path(notebook).read_text())
    except (OSError, ValueError):
        return False
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            src = "".join(cell.get("source", []))
            return re.search(rf"^\s*{re.escape(name)}\s*[:=]", src, re.M) is not None
    return False


def git_commit(where: Path | None = None) -> str:
    """Return the git commit of the code (marked if there are uncommitted changes) or "unknown"."""
    where = Path(where or Path(__file__).parent)
    try:
        sha = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "--no-optional-locks",
                "-C",
                str(where),
                "status",
                "--porcelain",
                "--untracked-files=no",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not sha:
        return "unknown"
    return f"{sha} (uncommitted changes)" if dirty else sha


def package_version() -> str:
    """Return the version of the analysis package (for the provenance footer)."""
    from analysis import __version__

    return __version__


def _render_copy(nb: Any) -> Any:
    """Return a copy of an executed notebook fit for stakeholders.

    Drops headline records, stderr, errors and cells tagged ``remove-cell``;
    drops code cells left without output; removes the title heading (shown in
    the page header instead).
    """
    from analysis.report.display import HEADLINE_MIME

    nb = copy.deepcopy(nb)
    cells = []
    title_removed = False
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if "remove-cell" in tags or "remove_cell" in tags:
            continue
        if cell.cell_type == "code":
            if "remove-output" in tags or "remove_output" in tags:
                continue
            outputs = []
            for o in cell.get("outputs", []):
                if o.get("output_type") == "error":
                    continue
                if o.get("output_type") == "stream" and o.get("name") == "stderr":
                    continue
                if HEADLINE_MIME in o.get("data", {}):
                    continue
                outputs.append(o)
            if not outputs:
                continue
            cell.outputs = outputs
        elif cell.cell_type == "markdown" and not title_removed:
            title_removed = True
            lines = cell.source.splitlines()
            for k, line in enumerate(lines):
                if re.match(r"^#\s+", line):
                    del lines[k]
                    break
            cell.source = "\n".join(lines).strip()
            if not cell.source:
                continue
        elif cell.cell_type == "raw":
            continue
        cells.append(cell)
    nb.cells = cells
    return nb


def notebook_body_html(nb: Any) -> str:
    """Return the HTML body of an executed notebook: outputs and markdown, no code, images inline."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="basic",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    body, _ = exporter.from_notebook_node(_render_copy(nb))
    # nbconvert's default alt text reads as an error message to screen-reader users.
    return body.replace(f'alt="{_NBCONVERT_ALT}"', 'alt="Plot"')


def pretty_time(iso: str | None) -> str:
    """Return an ISO 8601 UTC time as ``"2026-11-24 03:44 UTC"`` (``"–"`` when missing)."""
    if not iso:
        return "–"
    try:
        t = dt.datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return str(iso)
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M UTC")


def _jinja():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = pretty_time
    return env


def render_report_page(
    *,
    title: str,
    body_html: str,
    provenance_html: str,
    as_of: str | None,
    run_time: str,
    index_href: str = INDEX_NAME,
) -> str:
    """Return a complete, self-contained report page (inline CSS, no scripts, no external links)."""
    import jinja2

    tpl = _jinja().get_template("report.html.j2")
    return tpl.render(
        title=title,
        body=jinja2.utils.markupsafe.Markup(body_html),
        provenance=jinja2.utils.markupsafe.Markup(provenance_html),
        as_of=as_of or "unknown",
        run_time=run_time,
        index_href=index_href,
    )


def render_index_page(
    *, title: str, run: Mapping[str, Any], reports: Sequence[ReportResult]
) -> str:
    """Return the reports index page."""
    tpl = _jinja().get_template("index.html.j2")
    return tpl.render(title=title, run=run, reports=reports)
