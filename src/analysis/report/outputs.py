"""What a run of the report runner leaves in the output folder, and how it writes it.

:class:`ReportResult` and :class:`RunResult` are the outcome of a run. The
output folder holds the report pages, ``index.html``, ``manifest.json`` (state
carried between runs: last good time, headlines), ``run-log.jsonl`` (one JSON
line per run) and ``executed/`` (executed notebooks and logs). Every file but
the run log is written atomically (:func:`write_atomic`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from analysis.report.html import INDEX_NAME, render_index_page

MANIFEST_NAME = "manifest.json"
RUN_LOG_NAME = "run-log.jsonl"
EXECUTED_DIR = "executed"
MAX_ERROR_CHARS = 240


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass
class ReportResult:
    """Outcome of one report in one run (and what the index shows for it).

    Attributes
    ----------
    name : str
        Notebook name without extension, e.g. ``"00_kpi_dashboard"``.
    status : str
        ``"ok"``, ``"failed"``, ``"refused"`` (run refused: invalid params or
        data), ``"interrupted"`` or ``"not run"`` (not selected this time).
    title : str
        Report title (first heading of the notebook).
    started, finished : str or None
        ISO 8601 UTC times of this attempt.
    seconds : float or None
        Wall-clock execution time of this attempt, seconds.
    error : str or None
        One-line error for a failed report.
    html : str or None
        File name of the published HTML (the last good one when this attempt failed).
    last_good : str or None
        When the published HTML was produced (ISO 8601 UTC).
    as_of : str or None
        Data as-of date of the published HTML.
    headlines : list of dict
        Headline records of the published HTML (see :func:`analysis.report.display.headline`).
    """

    name: str
    status: str
    title: str = ""
    started: str | None = None
    finished: str | None = None
    seconds: float | None = None
    error: str | None = None
    html: str | None = None
    last_good: str | None = None
    as_of: str | None = None
    headlines: list[dict] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        """True when the published HTML is older than this failed or refused attempt."""
        return self.status != "ok" and self.html is not None


@dataclass
class RunResult:
    """Outcome of one run of the report runner."""

    exit_code: int
    status: str  # ok | failed | refused | interrupted | locked
    output_dir: Path | None
    started: str
    finished: str
    reports: list[ReportResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why a run was refused; warnings

    @property
    def index(self) -> Path | None:
        """Path of the index page, if the output folder is known."""
        return None if self.output_dir is None else self.output_dir / INDEX_NAME

    def report(self, name: str) -> ReportResult:
        """Return the result of report ``name``."""
        for r in self.reports:
            if r.name == name:
                return r
        raise KeyError(name)


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, then os.replace.

    Readers see either the old file or the complete new one, never a partial
    file; if anything fails or the process is interrupted, the old file stays.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode(path))  # mkstemp creates 0600; readers need the usual mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _file_mode(path: Path) -> int:
    """Return the mode of the file being replaced, else 0666 minus the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Return the first non-empty line of ``text`` without ANSI codes, at most ``limit`` chars."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(text))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    line = lines[0] if lines else ""
    if len(lines) > 1:
        line += " …"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _read_manifest(out_dir: Path) -> dict[str, dict]:
    path = out_dir / MANIFEST_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.get("reports", {}).items() if isinstance(v, dict)}


def _previous(manifest: Mapping[str, dict], name: str, out_dir: Path) -> ReportResult:
    """Return the state carried from earlier runs for report ``name``."""
    prev = manifest.get(name, {})
    known = {f for f in ReportResult.__dataclass_fields__}
    fields = {k: v for k, v in prev.items() if k in known and k != "name"}
    fields.setdefault("status", "not run")
    rr = ReportResult(name=name, **fields)
    if rr.html and not (out_dir / rr.html).is_file():
        rr.html, rr.last_good, rr.headlines = None, None, []
    if not prev and (out_dir / f"{name}.html").is_file():
        rr.html = f"{name}.html"  # published before the manifest existed
    return rr


def _remove_leftovers(out_dir: Path) -> None:
    """Remove temp files of earlier runs that were killed (we hold the lock, so none is live)."""
    for p in list(out_dir.glob(".*.tmp")) + list((out_dir / EXECUTED_DIR).glob(".*.tmp")):
        with contextlib.suppress(OSError):
            p.unlink()
    for d in (out_dir / EXECUTED_DIR).glob(".*"):
        if d.is_dir():
            for p in d.glob("*"):
                with contextlib.suppress(OSError):
                    p.unlink()
            with contextlib.suppress(OSError):
                d.rmdir()


def _write_outputs(
    *,
    out_dir: Path,
    title: str,
    run: dict,
    results: Sequence[ReportResult],
    manifest: Mapping[str, dict],
    available: set[str] | None = None,
) -> None:
    """Write index.html and manifest.json atomically and append the run-log line.

    Reports not in this run keep their earlier row (if their notebook still
    exists, when ``available`` is given).
    """
    shown = {r.name: r for r in results}
    for name in manifest:
        if name not in shown and (available is None or name in available):
            shown[name] = _previous(manifest, name, out_dir)
    ordered = [shown[k] for k in sorted(shown)]
    for rr in ordered:
        if not rr.title:
            rr.title = rr.name
    write_atomic(out_dir / INDEX_NAME, render_index_page(title=title, run=run, reports=ordered))
    state = {
        "updated": run["finished"],
        "reports": {r.name: {k: v for k, v in asdict(r).items() if k != "name"} for r in ordered},
    }
    write_atomic(out_dir / MANIFEST_NAME, json.dumps(state, indent=2, default=str))
    line = {
        "started": run["started"],
        "finished": run["finished"],
        "params_file": run["params_file"],
        "output_dir": str(out_dir),
        "exit_code": run["exit_code"],
        "status": run["status"],
        "git_commit": run.get("git_commit"),
        "reports": {
            r.name: {"status": r.status, "seconds": r.seconds, "error": r.error} for r in results
        },
        "problems": [run["summary"], *run.get("problems", [])]
        if run.get("summary")
        else run.get("problems", []),
    }
    _append_run_log(out_dir, line)


def _append_run_log(out_dir: Path, line: Mapping[str, Any]) -> None:
    """Append one JSON line to the run log (one write call, so concurrent lines do not mix)."""
    with open(out_dir / RUN_LOG_NAME, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, default=str) + "\n")
