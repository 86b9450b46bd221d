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


def collect_records(nb: Any, mime: str) -> list[dict]:
    """Return the records of one custom MIME type in an executed notebook, in order."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if mime in data:
                rec = data[mime]
                if isinstance(rec, str):
                    with contextlib.suppress(ValueError):
                        rec = json.loads(rec)
                if isinstance(rec, Mapping):
                    out.append(dict(rec))
    return out


def collect_verdict(nb: Any) -> str | None:
    """Return the verdict text of an executed notebook (the first one), or None."""
    from analysis.report.display import VERDICT_MIME

    recs = collect_records(nb, VERDICT_MIME)
    return str(recs[0].get("text", "")) if recs else None


def collect_skipped(nb: Any) -> list[dict]:
    """Return the sections an executed notebook could not estimate: section and reason."""
    from analysis.report.display import SKIPPED_MIME

    seen, out = set(), []
    for r in collect_records(nb, SKIPPED_MIME):
        key = (r.get("section"), r.get("reason"))
        if key not in seen:
            seen.add(key)
            out.append({"section": str(r.get("section", "")), "reason": str(r.get("reason", ""))})
    return out


_PREV_SLOT = re.compile(r'<span class="tile-prev" data-tile="([^"]*)"></span>')


def fill_previous_run(
    body: str,
    previous: Sequence[Mapping[str, Any]] | None,
    previous_as_of: str | None,
    as_of: str | None = None,
) -> str:
    """Fill each tile's "previous report" line from the last good run's headlines.

    A tile shows what the previous published report said for the same figure
    when that report covered an earlier as-of date; otherwise the slot stays
    empty. Matching is by tile name.
    """
    import html as _html

    from analysis.report.page import tile_key

    prev = {tile_key(h.get("name", "")): h for h in (previous or []) if isinstance(h, Mapping)}
    newer = previous_as_of and as_of and str(previous_as_of) != str(as_of)

    def one(m: re.Match) -> str:
        h = prev.get(m.group(1))
        if not newer or h is None or not h.get("text"):
            return m.group(0)
        text = f"previous report (data as of {previous_as_of}): {h['text']}"
        return f'<span class="tile-prev" data-tile="{m.group(1)}">{_html.escape(text)}</span>'

    return _PREV_SLOT.sub(one, body)


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


def _render_copy(nb: Any, *, keep_title: bool = False) -> Any:
    """Return a copy of an executed notebook fit for stakeholders.

    Drops headline records, stderr, errors and cells tagged ``remove-cell``;
    drops code cells left without output; removes the title heading (shown in
    the page header instead).
    """
    from analysis.report.display import RECORD_MIMES

    nb = copy.deepcopy(nb)
    cells = []
    title_removed = keep_title
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
                if any(m in o.get("data", {}) for m in RECORD_MIMES):
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


def split_appendix(nb: Any) -> tuple[Any, Any | None, str]:
    """Split an executed notebook at its appendix marker (:func:`analysis.report.display.appendix`).

    Returns the cells before the marker, the cells after it (None without a
    marker) and the appendix title. Outputs of the marker's own cell that come
    after the marker belong to the appendix.
    """
    from analysis.report.display import APPENDIX_MIME

    for k, cell in enumerate(nb.cells):
        outs = cell.get("outputs", []) if cell.cell_type == "code" else []
        for j, o in enumerate(outs):
            data = o.get("data", {})
            if APPENDIX_MIME in data:
                rec = data[APPENDIX_MIME]
                if isinstance(rec, str):
                    with contextlib.suppress(ValueError):
                        rec = json.loads(rec)
                title = (
                    str(rec.get("title", "For analysts"))
                    if isinstance(rec, Mapping)
                    else "For analysts"
                )
                head, tail = copy.deepcopy(nb), copy.deepcopy(nb)
                first = copy.deepcopy(cell)
                first.outputs = outs[:j]
                rest = copy.deepcopy(cell)
                rest.outputs = outs[j + 1 :]
                head.cells = [*nb.cells[:k], first]
                tail.cells = [rest, *nb.cells[k + 1 :]]
                return head, tail, title
    return nb, None, ""


def _body(nb: Any, *, strip_title: bool = True) -> str:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="basic",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    copy_ = _render_copy(nb) if strip_title else _render_copy(nb, keep_title=True)
    body, _ = exporter.from_notebook_node(copy_)
    # nbconvert's default alt text reads as an error message to screen-reader users.
    return body.replace(f'alt="{_NBCONVERT_ALT}"', 'alt="Plot"')


def notebook_body_html(nb: Any) -> str:
    """Return the HTML body of an executed notebook: outputs and markdown, no code, images inline.

    Everything after the appendix marker goes into one closed ``<details>``
    block at the end ("For analysts"), which printing expands.
    """
    import html as _html

    head, tail, title = split_appendix(nb)
    body = _body(head)
    if tail is not None:
        inner = _body(tail, strip_title=False)
        body += (
            f'<details class="appendix"><summary>{_html.escape(title)}</summary>'
            f'<div class="appendix-body">{inner}</div></details>'
        )
    return body


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
