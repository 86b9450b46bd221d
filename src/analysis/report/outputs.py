"""What a run of the report runner leaves in the output folder, and how it writes it.

:class:`ReportResult` and :class:`RunResult` are the outcome of a run. The
output folder holds the report pages, ``index.html``, ``manifest.json`` (state
carried between runs: last good time, headlines), ``run-log.jsonl`` (one JSON
line per run), ``exports/`` (CRM exports of the notebooks) and ``executed/``
(executed notebooks and logs). Every file but the run log is written atomically
(:func:`write_atomic`, :func:`move_into_place`).

While a run holds the output folder, ``.run-in-progress.json`` (:class:`RunMarker`)
records it: pid, start time, the reports finished so far, and the files of the
report being published. A run that finds this marker when it takes the lock knows
the previous run ended without finishing (SIGKILL, out of memory, power loss);
:func:`recover_unfinished_run` completes the interrupted publication, records
what was published in the manifest and writes a run-log line for that run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from analysis.report.guard import redact_page
from analysis.report.html import INDEX_NAME, render_index_page

MANIFEST_NAME = "manifest.json"
RUN_LOG_NAME = "run-log.jsonl"
RUN_MARKER_NAME = ".run-in-progress.json"
LOCK_NAME = ".run.lock"
EXECUTED_DIR = "executed"
EXPORTS_DIR = "exports"
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
    verdict : str or None
        The report's verdict (its first sentences), shown on the index.
    skipped : list of dict
        Sections the data could not support (``section``, ``reason``); the
        report is still "ok" and the index lists them.
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
    verdict: str | None = None
    skipped: list[dict] = field(default_factory=list)

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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    For writers that want a file name (``DataFrame.to_csv``): readers see the old
    file or the complete new one, never a partial file. If the block raises, the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _file_mode(path))  # mkstemp creates 0600; readers need the usual mode
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


def move_into_place(src: Path, dst: Path) -> None:
    """Publish the complete file ``src`` as ``dst`` with one atomic rename.

    ``dst`` keeps its mode. Across file systems (an export folder on another disk)
    ``src`` is first copied to a temporary file beside ``dst``, which is then renamed.
    """
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(src, _file_mode(dst))
    try:
        os.replace(src, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode(dst))
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.unlink(src)


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
        rr.verdict, rr.skipped = None, []
    if not prev and (out_dir / f"{name}.html").is_file():
        rr.html = f"{name}.html"  # published before the manifest existed
    return rr


def _remove_leftovers(out_dir: Path) -> None:
    """Remove temp files of earlier runs that were killed (we hold the lock, so none is live).

    That is ``.*.tmp`` files in the output, ``executed/`` and ``exports/`` folders and
    the per-report work folders ``executed/.NAME.*/`` (spec, result, staged HTML and
    exports of a report that never finished).
    """
    executed = out_dir / EXECUTED_DIR
    for folder in (out_dir, executed, out_dir / EXPORTS_DIR):
        for p in folder.glob(".*.tmp"):
            if p.is_file():
                with contextlib.suppress(OSError):
                    p.unlink()
    for d in executed.glob(".*"):
        if d.is_dir():
            shutil.rmtree(d, ignore_errors=True)


class RunMarker:
    """The marker file of the run in progress in an output folder, and its publication journal.

    Written (atomically) when a run takes the output folder's lock, after each
    report, and before the files of a report are renamed into place; removed by
    :meth:`close` once the run has written its run-log line. A marker found by the
    next run means the run ended without finishing (:func:`recover_unfinished_run`).

    Parameters
    ----------
    out_dir : path
        The output folder (the caller holds its lock).
    started : str
        ISO 8601 UTC start time of the run.
    params_file : str
        The run's params file.
    """

    def __init__(self, out_dir: Path, *, started: str, params_file: str):
        self.path = Path(out_dir) / RUN_MARKER_NAME
        self.state: dict[str, Any] = {
            "pid": os.getpid(),
            "started": started,
            "params_file": params_file,
            "output_dir": str(out_dir),
            "names": [],
            "reports": {},
            "publishing": None,
        }
        self._write()

    def _write(self) -> None:
        write_atomic(self.path, json.dumps(self.state, default=str))

    def planned(self, names: Sequence[str]) -> None:
        """Record the reports this run will execute."""
        self.state["names"] = list(names)
        self._write()

    def publishing(self, report: ReportResult, moves: Sequence[tuple[Path, Path]]) -> None:
        """Record that ``report`` is being published by the renames ``moves`` (src, dst)."""
        self.state["publishing"] = {
            "report": asdict(report),
            "moves": [[str(a), str(b)] for a, b in moves],
        }
        self._write()

    def finished(self, report: ReportResult) -> None:
        """Record the outcome of one report (published or not)."""
        self.state["reports"][report.name] = asdict(report)
        self.state["publishing"] = None
        self._write()

    def close(self) -> None:
        """Remove the marker: the run is complete and has written its run-log line."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def recover_unfinished_run(out_dir: Path, detected: str) -> dict | None:
    """Deal with a run that ended without finishing, if its marker is in ``out_dir``.

    The caller holds the output folder's lock, so the run that left the marker is
    dead. A publication it had begun is completed (its files were complete before
    their renames were recorded); the reports it published are recorded in the
    manifest, so the next index links them with their own time and headlines; and
    one run-log line with status ``"unfinished"`` is appended. Temporary files are
    left to :func:`_remove_leftovers`.

    Parameters
    ----------
    out_dir : path
        The output folder.
    detected : str
        ISO 8601 UTC time of the detection (this run's start).

    Returns
    -------
    dict or None
        The run-log line written, or None when no run was left unfinished.
    """
    path = Path(out_dir) / RUN_MARKER_NAME
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        state = {}
    if not isinstance(state, dict):
        state = {}
    reports: dict[str, dict] = {
        k: v for k, v in (state.get("reports") or {}).items() if isinstance(v, dict)
    }
    publishing = state.get("publishing")
    if isinstance(publishing, dict) and isinstance(publishing.get("report"), dict):
        for src, dst in publishing.get("moves", []):
            if Path(src).is_file():
                move_into_place(Path(src), Path(dst))
        record = publishing["report"]
        reports[record.get("name", "?")] = record
    published = {k: v for k, v in reports.items() if v.get("status") == "ok"}
    if published:
        try:
            manifest = json.loads((out_dir / MANIFEST_NAME).read_text())
        except (OSError, ValueError):
            manifest = {}
        if not isinstance(manifest, dict) or not isinstance(manifest.get("reports"), dict):
            manifest = {"reports": {}}
        for name, rec in published.items():
            manifest["reports"][name] = {k: v for k, v in rec.items() if k != "name"}
        write_atomic(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2, default=str))
    lines = {
        name: {
            "status": rec.get("status"),
            "seconds": rec.get("seconds"),
            "error": rec.get("error"),
        }
        for name, rec in reports.items()
    }
    for name in state.get("names") or []:
        lines.setdefault(name, {"status": "unfinished", "seconds": None, "error": None})
    line = {
        "started": state.get("started"),
        "finished": None,
        "detected": detected,
        "params_file": state.get("params_file"),
        "output_dir": str(out_dir),
        "exit_code": None,
        "status": "unfinished",
        "pid": state.get("pid"),
        "reports": lines,
        "problems": [
            f"the run started {state.get('started') or 'at an unknown time'} (pid "
            f"{state.get('pid', '?')}) ended without finishing (killed by SIGKILL or the "
            "out-of-memory killer, crashed, or the machine stopped); found by the next run"
        ],
    }
    _append_run_log(out_dir, line)
    path.unlink()
    return line


def problem_line(p: Any) -> str:
    """Return a problem as one line WITHOUT example values (they may be customer ids)."""
    table = getattr(p, "table", None)
    if table is None:
        return one_line(str(p), 400)
    column = getattr(p, "column", None)
    where = table if column is None else f"{table}.{column}"
    message = str(getattr(p, "message", ""))
    if message.startswith(f"{where}: "):  # the location once, not twice
        message = message[len(where) + 2 :]
    line = f"[{getattr(p, 'severity', 'error')}] {where}: {message}"
    n = getattr(p, "n_rows", 0)
    if n:
        line += f" ({n:,} rows)"
    fix = getattr(p, "fix", "")
    if fix:
        line += f" -> {fix}"
    return one_line(line, 400)


@contextlib.contextmanager
def _lock(out_dir: Path) -> Iterator[bool]:
    """Hold the output folder's lock (``.run.lock``, ``flock``) if free; yield whether it is held.

    The kernel releases the lock when the holder dies, however it dies.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    fh = open(out_dir / LOCK_NAME, "a+")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


def take_over(out_dir: Path, detected: str, say: Callable[[str], None] = print) -> None:
    """Prepare an output folder whose lock the caller holds.

    Deal with an unfinished earlier run (:func:`recover_unfinished_run`) and remove
    temporary files (:func:`_remove_leftovers`); ``say`` prints progress lines.
    """
    try:
        line = recover_unfinished_run(out_dir, detected)
    except OSError as exc:  # never let the remains of an earlier run stop this one
        say(f"warning  could not recover the unfinished earlier run: {one_line(str(exc))}")
        line = None
    if line is not None:
        say(
            f"unfinished earlier run (started {line['started']}, pid {line['pid']}) logged in "
            f"{out_dir / RUN_LOG_NAME}; its temporary files are removed"
        )
    _remove_leftovers(out_dir)


def _write_outputs(
    *,
    out_dir: Path,
    title: str,
    run: dict,
    results: Sequence[ReportResult],
    manifest: Mapping[str, dict],
    available: set[str] | None = None,
    ids: Iterable[str] = (),
) -> None:
    """Write index.html and manifest.json atomically and append the run-log line.

    Reports not in this run keep their earlier row (if their notebook still
    exists, when ``available`` is given). The index is stakeholder HTML too: any
    customer id in ``ids`` that reaches it (through an error line or a headline)
    is masked by the privacy guard before it is written.
    """
    shown = {r.name: r for r in results}
    for name in manifest:
        if name not in shown and (available is None or name in available):
            shown[name] = _previous(manifest, name, out_dir)
    ordered = [shown[k] for k in sorted(shown)]
    for rr in ordered:
        if not rr.title:
            rr.title = rr.name
    page = render_index_page(title=title, run=run, reports=ordered)
    if ids:
        page = redact_page(page, ids)
    write_atomic(out_dir / INDEX_NAME, page)
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
