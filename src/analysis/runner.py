"""Run the report notebooks and publish stakeholder HTML with an index page.

``python -m analysis run --params FILE [--only NAME ...] [--out DIR] [--jobs N]``

For each report notebook (``notebooks/NN_name.ipynb``) the runner

1. executes it with papermill in its own worker process and kernel, injecting
   ``params_file`` (absolute path), at most ``--jobs`` at a time, each under a
   wall-clock limit of ``reports.timeout_seconds``;
2. keeps the executed notebook (``reports/executed/NAME.ipynb``; a failed
   attempt goes to ``NAME.failed.ipynb`` and its log to ``NAME.log``);
3. renders HTML without code (images embedded as base64, headline records and
   stderr stripped) inside a page with a header and a provenance footer;
4. refuses to publish HTML that contains a customer id (:func:`scan_for_identifiers`);
5. publishes atomically: a temporary file in the same folder, then
   :func:`os.replace`, so an interrupted or failed run never replaces the last
   good HTML.

Then it writes ``reports/index.html`` (status, run time, as-of date, headline
numbers, link, one-line error per report), ``reports/manifest.json`` (state
carried between runs: last good time, headlines) and appends one JSON line to
``reports/run-log.jsonl``.

Exit codes: 0 every report ok; 1 some report failed; 2 invalid params or data
(refused, nothing replaced); 75 another run holds the output folder's lock;
130 interrupted (SIGINT/SIGTERM; unfinished reports keep their previous HTML).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import fcntl
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from analysis.errors import AnalysisError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_LOCKED = 75  # sysexits EX_TEMPFAIL: try again later
EXIT_INTERRUPTED = 130

INDEX_NAME = "index.html"
MANIFEST_NAME = "manifest.json"
RUN_LOG_NAME = "run-log.jsonl"
LOCK_NAME = ".run.lock"
EXECUTED_DIR = "executed"
NOTEBOOK_PATTERN = re.compile(r"^\d\d_[A-Za-z0-9_\-]+$")
TERMINATE_GRACE_SECONDS = 8.0
POLL_SECONDS = 0.1
MAX_ERROR_CHARS = 240

_TEMPLATES = Path(__file__).with_name("templates")
_NBCONVERT_ALT = "No description has been provided for this image"


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
        Headline records of the published HTML (see :func:`analysis.reporting.headline`).
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


class _Refused(Exception):
    """The run is refused (exit 2): invalid params or data."""

    def __init__(self, summary: str, problems: Sequence[str] = ()):
        super().__init__(summary)
        self.summary = summary
        self.problems = list(problems)


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _say(message: str) -> None:
    """Print one progress line with the local wall-clock time."""
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


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
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
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


def _package_version() -> str:
    from analysis import __version__

    return __version__


_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def _redact_secrets(obj: Any) -> Any:
    """Mask passwords in URLs anywhere in a params dict."""
    if isinstance(obj, Mapping):
        return {k: _redact_secrets(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_redact_secrets(v) for v in obj]
    if isinstance(obj, str):
        return _URL_PASSWORD.sub(r"\1***@", obj)
    return obj


# --------------------------------------------------------------------------------------
# Privacy guard
# --------------------------------------------------------------------------------------

_WORD_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
_DATA_URI = re.compile(r"data:[A-Za-z0-9.+/-]+;base64,[A-Za-z0-9+/=\s]+")
_TAG = re.compile(r"<[^>]*>")


def identifiers_to_scan(ids: Iterable[Any], *, min_numeric_digits: int = 8) -> set[str]:
    """Return the ids worth searching for in a report.

    Purely numeric ids shorter than ``min_numeric_digits`` digits (CDNOW uses
    1..23570) are left out: they cannot be told apart from counts and amounts
    in a report, so searching for them would refuse every report. Ids with
    letters (the sample world's ``"C0000123"``) and long numbers are kept.
    """
    out = set()
    for i in ids:
        if i is None:
            continue
        s = str(i).strip()
        if not s:
            continue
        if s.isdigit() and len(s) < min_numeric_digits:
            continue
        if len(s) < 3:
            continue
        out.add(s)
    return out


def _id_tokens(text: str, alphabet: str) -> Iterator[str]:
    pattern = re.compile("[" + re.escape(alphabet) + "]+")
    for m in pattern.finditer(text):
        tok = m.group(0)
        yield tok
        stripped = tok.strip(".-_:/")
        if stripped != tok:
            yield stripped


def scan_for_identifiers(html_text: str, ids: Iterable[Any]) -> list[str]:
    """Return the customer ids that occur in an HTML page (empty list: none found).

    The page is searched as markup and as text (entities unescaped, tags
    removed), without embedded base64 images. An id counts as found when it
    appears as a whole token: ``C0000123`` is found in ``"top: C0000123."``
    but not in ``"C00001234"``. Short purely numeric ids are not searched
    (see :func:`identifiers_to_scan`).

    Parameters
    ----------
    html_text : str
        The rendered page.
    ids : iterable
        Customer ids of the data (``analysis.data.customer_ids(params)``).

    Returns
    -------
    list of str
        The ids found, sorted.
    """
    wanted = identifiers_to_scan(ids)
    if not wanted:
        return []
    page = _DATA_URI.sub(" ", html_text)
    text = html.unescape(_TAG.sub(" ", page))
    # Tokens are runs of letters, digits and the ids' own punctuation, so "xC0000123" is
    # one token (no match) while "(C0000123)." yields "C0000123".
    alphabet = _WORD_CHARS + "".join(sorted({ch for i in wanted for ch in i} - set(_WORD_CHARS)))
    found = set()
    for source in (page, html.unescape(page), text):
        for tok in _id_tokens(source, alphabet):
            if tok in wanted:
                found.add(tok)
    return sorted(found)


def redact_identifiers(text: str, ids: Iterable[Any]) -> str:
    """Return ``text`` with every customer id (as found by :func:`scan_for_identifiers`) masked."""
    for found in scan_for_identifiers(text, ids):
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(found)}(?![A-Za-z0-9])", "[customer id]", text)
    return text


# --------------------------------------------------------------------------------------
# Executed notebook -> headlines, title, stakeholder HTML
# --------------------------------------------------------------------------------------


def collect_headlines(nb: Any) -> list[dict]:
    """Return the headline records emitted by :func:`analysis.reporting.headline`, in order."""
    from analysis.reporting import HEADLINE_MIME

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


def _render_copy(nb: Any) -> Any:
    """Return a copy of an executed notebook fit for stakeholders.

    Drops headline records, stderr, errors and cells tagged ``remove-cell``;
    drops code cells left without output; removes the title heading (shown in
    the page header instead).
    """
    from analysis.reporting import HEADLINE_MIME

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


# --------------------------------------------------------------------------------------
# Worker: one notebook in one process
# --------------------------------------------------------------------------------------


def _worker(spec_path: str) -> int:
    """Execute one notebook as described by a JSON spec; write a JSON result. Return 0/1."""
    spec = json.loads(Path(spec_path).read_text())

    def _term(signum, frame):  # let papermill/nbclient shut the kernel down cleanly
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    # jsonschema (via nbformat) imports the optional rfc3987_syntax, which builds a Lark
    # grammar at import time: seconds of CPU per worker. Notebook schemas use no IRI
    # formats, so this worker process goes without it.
    sys.modules.setdefault("rfc3987_syntax", None)
    result: dict[str, Any] = {"status": "failed", "error": None}
    try:
        import papermill as pm

        pm.execute_notebook(
            spec["input"],
            spec["output"],
            parameters=spec["parameters"],
            kernel_name=spec["kernel_name"],
            execution_timeout=spec["timeout"],
            cwd=spec["cwd"],
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=False,
        )
        result = {"status": "ok", "error": None}
    except KeyboardInterrupt:
        result = {"status": "interrupted", "error": "interrupted"}
    except Exception as exc:  # noqa: BLE001 - every failure becomes a one-line error
        ename = getattr(exc, "ename", type(exc).__name__)
        evalue = getattr(exc, "evalue", str(exc))
        cell = getattr(exc, "exec_count", None)
        where = f" (cell [{cell}])" if cell is not None else ""
        result = {"status": "failed", "error": one_line(f"{ename}: {evalue}") + where}
    Path(spec["result"]).write_text(json.dumps(result))
    return 0 if result["status"] == "ok" else 1


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ANALYSIS_THREADS")


def thread_env(
    jobs: int, environ: Mapping[str, str] | None = None, *, engine_memory: str | None = None
) -> dict[str, str]:
    """Return the environment for a notebook worker when ``jobs`` notebooks run at once.

    Each worker gets ``max(1, cores // jobs)`` threads for BLAS/OpenMP (numpy, scipy,
    scikit-learn) and DuckDB (``ANALYSIS_THREADS``, read by :mod:`analysis.data`), and
    DuckDB a memory cap when ``engine_memory`` (``reports.engine_memory_limit``) is set.
    Without this, two notebooks on two cores each start multi-threaded linear algebra
    that spins against the other: a logistic fit measured 7-20 times slower. Variables
    the user has already set are left alone.
    """
    env = dict(os.environ if environ is None else environ)
    n = str(max(1, (os.cpu_count() or 1) // max(1, int(jobs))))
    for var in THREAD_VARS:
        env.setdefault(var, n)
    if engine_memory:  # params reports.engine_memory_limit
        env.setdefault("ANALYSIS_ENGINE_MEMORY", str(engine_memory))
    return env


@dataclass
class _Job:
    name: str
    notebook: Path
    proc: subprocess.Popen | None = None
    started: dt.datetime | None = None
    t0: float = 0.0
    spec: Path | None = None
    result_file: Path | None = None
    executed_tmp: Path | None = None
    log: Path | None = None
    timed_out: bool = False


# --------------------------------------------------------------------------------------
# Run
# --------------------------------------------------------------------------------------


def _declares_parameter(notebook: Path, name: str) -> bool:
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


def _load_params(params_file: Path):
    from analysis import config

    return config.load_params(params_file)


def _problem_line(p: Any) -> str:
    """Return a problem as one line WITHOUT example values (they may be customer ids)."""
    table = getattr(p, "table", None)
    if table is None:
        return one_line(str(p), 400)
    column = getattr(p, "column", None)
    where = table if column is None else f"{table}.{column}"
    line = f"[{getattr(p, 'severity', 'error')}] {where}: {getattr(p, 'message', '')}"
    n = getattr(p, "n_rows", 0)
    if n:
        line += f" ({n:,} rows)"
    fix = getattr(p, "fix", "")
    if fix:
        line += f" -> {fix}"
    return one_line(line, 400)


def _available_notebooks(notebooks_dir: Path) -> list[str]:
    return sorted(p.stem for p in notebooks_dir.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.stem))


def _select_notebooks(
    configured: Sequence[str] | None, only: Sequence[str] | None, notebooks_dir: Path
) -> list[str]:
    available = _available_notebooks(notebooks_dir)
    wanted = [Path(n).stem for n in (configured or [])] or available
    unknown = [n for n in wanted if not (notebooks_dir / f"{n}.ipynb").is_file()]
    if only:
        only_names = [Path(n).stem for n in only]
        unknown += [n for n in only_names if not (notebooks_dir / f"{n}.ipynb").is_file()]
        wanted = [n for n in only_names if n not in unknown]
    if unknown:
        raise _Refused(
            f"unknown report notebook(s) {sorted(set(unknown))} in {notebooks_dir}",
            [
                f"available notebooks: {', '.join(available) or '(none)'}; fix reports.notebooks "
                "in the params file or --only"
            ],
        )
    if not wanted:
        raise _Refused(f"no report notebooks (NN_name.ipynb) found in {notebooks_dir}")
    return list(dict.fromkeys(wanted))


def _default_notebooks_dir(params: Any) -> Path:
    configured = getattr(params.reports, "notebooks_dir", None)
    if configured:
        return Path(configured)
    cwd_dir = Path.cwd() / "notebooks"
    if cwd_dir.is_dir():
        return cwd_dir
    source = getattr(params, "source_file", None)
    if source is not None:
        return Path(source).resolve().parent.parent / "notebooks"
    return cwd_dir


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


class _Interrupted(Exception):
    pass


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while running (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def _ignore_signals() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM while writing the final state after an interrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _lock(out_dir: Path) -> Iterator[bool]:
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


class _Runner:
    """State of one run; see :func:`run`."""

    def __init__(
        self,
        *,
        params: Any,
        params_file: Path,
        out_dir: Path,
        names: list[str],
        notebooks_dir: Path,
        jobs: int,
        timeout: int,
        kernel_name: str,
        extra_parameters: Mapping[str, Any],
        fingerprint: dict,
        ids: set[str],
        started: dt.datetime,
        manifest: dict[str, dict],
        receipt: Path | None = None,
    ):
        self.params = params
        self.receipt = receipt
        self.params_file = params_file
        self.out_dir = out_dir
        self.names = names
        self.notebooks_dir = notebooks_dir
        self.jobs = jobs
        self.timeout = timeout
        self.kernel_name = kernel_name
        self.extra_parameters = dict(extra_parameters)
        self.fingerprint = fingerprint
        self.ids = ids
        self.started = started
        self.results: dict[str, ReportResult] = {n: _previous(manifest, n, out_dir) for n in names}
        self.commit = git_commit()
        self.version = _package_version()
        self.params_dict = _redact_secrets(_params_dict(params))

    # ---- execution ------------------------------------------------------------------

    def _worker_env(self) -> dict[str, str]:
        env = thread_env(
            self.jobs, engine_memory=getattr(self.params.reports, "engine_memory_limit", None)
        )
        if self.receipt is not None:
            env["ANALYSIS_VALIDATION_RECEIPT"] = str(self.receipt)
        return env

    def _start(self, job: _Job) -> None:
        executed = self.out_dir / EXECUTED_DIR
        executed.mkdir(parents=True, exist_ok=True)
        tmpdir = Path(tempfile.mkdtemp(prefix=f".{job.name}.", dir=executed))
        job.spec = tmpdir / "spec.json"
        job.result_file = tmpdir / "result.json"
        job.executed_tmp = tmpdir / f"{job.name}.ipynb"
        job.log = executed / f"{job.name}.log"
        parameters = {"params_file": str(self.params_file), **self.extra_parameters}
        if "export_dir" not in parameters and _declares_parameter(job.notebook, "export_dir"):
            # CRM exports go beside the reports of this run (honours --out).
            parameters["export_dir"] = str(self.out_dir / "exports")
        job.spec.write_text(
            json.dumps(
                {
                    "input": str(job.notebook),
                    "output": str(job.executed_tmp),
                    "parameters": parameters,
                    "kernel_name": self.kernel_name,
                    "timeout": self.timeout,
                    "cwd": str(job.notebook.parent),
                    "result": str(job.result_file),
                }
            )
        )
        job.started = _now()
        job.t0 = time.monotonic()
        with open(job.log, "wb") as log:
            job.proc = subprocess.Popen(
                [sys.executable, "-m", "analysis.runner", "--worker", str(job.spec)],
                env=self._worker_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # the runner, not the terminal, stops workers
            )
        rr = self.results[job.name]
        rr.started, rr.finished, rr.seconds, rr.error = _iso(job.started), None, None, None
        rr.status = "running"
        _say(f"start    {job.name}")
        with contextlib.suppress(Exception):  # the title of a report that fails early
            import nbformat

            rr.title = notebook_title(nbformat.read(job.notebook, as_version=4), job.name)

    def _stop(self, job: _Job) -> None:
        """Stop a worker: SIGTERM (it shuts its kernel down), then SIGKILL after a grace period."""
        if job.proc is None or job.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            job.proc.send_signal(signal.SIGTERM)
        try:
            job.proc.wait(TERMINATE_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.proc.pid, signal.SIGKILL)
            job.proc.wait()

    def _cleanup(self, job: _Job) -> None:
        if job.spec is not None:
            tmpdir = job.spec.parent
            for p in tmpdir.glob("*"):
                with contextlib.suppress(OSError):
                    p.unlink()
            with contextlib.suppress(OSError):
                tmpdir.rmdir()

    def execute_all(self) -> None:
        pending = [_Job(name=n, notebook=self.notebooks_dir / f"{n}.ipynb") for n in self.names]
        running: list[_Job] = []
        try:
            while pending or running:
                while pending and len(running) < self.jobs:
                    job = pending.pop(0)
                    running.append(job)  # first, so an interrupt during the start stops it
                    self._start(job)
                time.sleep(POLL_SECONDS)
                for job in list(running):
                    elapsed = time.monotonic() - job.t0
                    if job.proc.poll() is None and elapsed > self.timeout:
                        job.timed_out = True
                        self._stop(job)
                    if job.proc.poll() is not None:
                        running.remove(job)
                        try:
                            self._finish(job)
                        finally:
                            self._cleanup(job)
        except KeyboardInterrupt:
            with _ignore_signals():
                _say("interrupted: stopping running notebooks; published reports stay as they are")
                for job in running:
                    self._stop(job)
                    self._cleanup(job)
                    self._mark(job.name, "interrupted", "run interrupted (SIGINT/SIGTERM)", job)
                for job in pending:
                    self._mark(job.name, "interrupted", "not started: run interrupted", None)
            raise _Interrupted from None

    def _mark(self, name: str, status: str, error: str | None, job: _Job | None) -> None:
        rr = self.results[name]
        rr.status = status
        rr.error = None if error is None else redact_identifiers(error, self.ids)
        rr.finished = _iso(_now())
        if job is not None and job.started is not None:
            rr.seconds = round(time.monotonic() - job.t0, 1)

    def _finish(self, job: _Job) -> None:
        seconds = round(time.monotonic() - job.t0, 1)
        result: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            result = json.loads(job.result_file.read_text())
        error = result.get("error")
        ok = result.get("status") == "ok" and job.proc.returncode == 0 and not job.timed_out
        if job.timed_out:
            error = (
                f"timed out after {self.timeout} s (reports.timeout_seconds); "
                "raise the limit or make the notebook faster"
            )
        elif not ok and not error:
            tail = ""
            with contextlib.suppress(OSError):
                lines = [
                    ln for ln in job.log.read_text(errors="replace").splitlines() if ln.strip()
                ]
                tail = lines[-1] if lines else ""
            error = f"worker exited with code {job.proc.returncode}: {tail}"
        executed_dir = self.out_dir / EXECUTED_DIR
        if ok:
            try:
                error = self._publish(job, seconds)
            except Exception as exc:  # noqa: BLE001 - rendering failures fail this report only
                error = f"rendering failed: {type(exc).__name__}: {exc}"
            ok = error is None
        if not ok:
            if job.executed_tmp is not None and job.executed_tmp.is_file():
                os.replace(job.executed_tmp, executed_dir / f"{job.name}.failed.ipynb")
            self._mark(job.name, "failed", one_line(error or "failed"), job)
            rr = self.results[job.name]
            rr.seconds = seconds
            note = f"; keeping the report of {rr.last_good}" if rr.html else ""
            _say(f"FAILED   {job.name} ({seconds:.1f} s): {rr.error}{note}")
        else:
            with contextlib.suppress(OSError):
                (executed_dir / f"{job.name}.failed.ipynb").unlink()
            _say(f"ok       {job.name} ({seconds:.1f} s)")

    def _publish(self, job: _Job, seconds: float) -> str | None:
        """Render, guard and publish one executed notebook. Return an error or None."""
        import nbformat

        from analysis import reporting

        nb = nbformat.read(job.executed_tmp, as_version=4)
        title = notebook_title(nb, job.name)
        headlines = collect_headlines(nb)
        finished = _now()
        as_of = self.fingerprint.get("as_of")
        provenance = reporting.provenance_html(
            params=self.params_dict,
            fingerprint=self.fingerprint,
            package_version=self.version,
            git_commit=self.commit,
            run_started=job.started.strftime("%Y-%m-%d %H:%M:%S UTC"),
            run_seconds=seconds,
            notebook=job.name,
            params_file=str(self.params_file),
            kernel_name=self.kernel_name,
        )
        page = render_report_page(
            title=title,
            body_html=notebook_body_html(nb),
            provenance_html=provenance,
            as_of=as_of,
            run_time=finished.strftime("%Y-%m-%d %H:%M UTC"),
        )
        found = scan_for_identifiers(page, self.ids)
        if found:
            return (
                f"not published: the HTML contains {len(found)} customer id(s); reports may "
                "show aggregates only (check printed values and tables)"
            )
        if scan_for_identifiers(json.dumps(headlines), self.ids):
            return "not published: a headline number contains a customer id"
        write_atomic(self.out_dir / f"{job.name}.html", page)
        os.replace(job.executed_tmp, self.out_dir / EXECUTED_DIR / f"{job.name}.ipynb")
        rr = self.results[job.name]
        rr.status, rr.error, rr.title = "ok", None, title
        rr.finished = _iso(finished)
        rr.seconds = seconds
        rr.html = f"{job.name}.html"
        rr.last_good = _iso(finished)
        rr.as_of = None if as_of is None else str(as_of)
        rr.headlines = headlines
        return None


def _params_dict(params: Any) -> dict:
    to_dict = getattr(params, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    return {}


def _title(params: Any) -> str:
    reports = getattr(params, "reports", None) if params is not None else None
    return getattr(reports, "title", None) or "Customer retention reports"


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


def run(
    params_file: str | os.PathLike,
    *,
    only: Sequence[str] | None = None,
    out: str | os.PathLike | None = None,
    jobs: int | None = None,
    notebooks_dir: str | os.PathLike | None = None,
    kernel_name: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> RunResult:
    """Execute the report notebooks, publish their HTML and update the index.

    Parameters
    ----------
    params_file : path
        Params YAML; injected into every notebook as ``params_file`` (absolute).
    only : sequence of str, optional
        Run just these notebooks (names like ``"00_kpi_dashboard"``); the index
        keeps the other reports' earlier rows.
    out : path, optional
        Output folder; default ``params.reports.output_dir``.
    jobs : int, optional
        Notebooks executed in parallel (one worker process and kernel each);
        default ``params.reports.jobs``.
    notebooks_dir : path, optional
        Folder of ``NN_name.ipynb`` notebooks; default ``./notebooks``, else
        ``notebooks/`` next to the params file's folder.
    kernel_name : str, optional
        Jupyter kernel; default ``params.reports.kernel_name``.
    parameters : mapping, optional
        Further papermill parameters injected into every notebook.

    Returns
    -------
    RunResult
        ``exit_code`` 0 (all ok), 1 (some failed), 2 (refused: invalid params or
        data; nothing replaced), 75 (another run holds the lock), 130 (interrupted).
    """
    started = _now()
    params_path = Path(params_file).resolve()
    out_dir = Path(out).resolve() if out is not None else None
    with _terminate_as_interrupt():
        try:
            params = _load_params(params_path)
        except AnalysisError as exc:
            # Invalid params: refuse; the index says why if we know where it is
            # (--out, or an existing reports/ folder beside the params folder).
            fallback = params_path.parent.parent / "reports"
            target = out_dir if out_dir is not None else (fallback if fallback.is_dir() else None)
            problems = [_problem_line(p) for p in getattr(exc, "problems", [])]
            summary = f"invalid params: {one_line(getattr(exc, 'summary', str(exc)))}"
            return _refuse(target, started, params_path, summary, problems, None, take_lock=True)

        if out_dir is None:
            out_dir = Path(params.reports.output_dir).resolve()
        with _lock(out_dir) as locked:
            if not locked:
                _say(f"another run is writing to {out_dir}; try again later (exit {EXIT_LOCKED})")
                result = RunResult(EXIT_LOCKED, "locked", out_dir, _iso(started), _iso(_now()))
                _append_run_log(
                    out_dir,
                    {
                        "started": result.started,
                        "finished": result.finished,
                        "params_file": str(params_path),
                        "output_dir": str(out_dir),
                        "exit_code": EXIT_LOCKED,
                        "status": "locked",
                        "reports": {},
                        "problems": ["another run holds the lock of the output folder"],
                    },
                )
                return result
            _remove_leftovers(out_dir)
            return _run_locked(
                params=params,
                params_path=params_path,
                out_dir=out_dir,
                started=started,
                only=only,
                jobs=jobs,
                notebooks_dir=notebooks_dir,
                kernel_name=kernel_name,
                parameters=parameters or {},
            )


def _refuse(
    out_dir: Path | None,
    started: dt.datetime,
    params_path: Path,
    summary: str,
    problems: Sequence[str],
    params: Any,
    names: Sequence[str] = (),
    *,
    take_lock: bool = False,
    status: str = "refused",
    available: set[str] | None = None,
) -> RunResult:
    """Record a run that produced nothing: refused (exit 2) or interrupted before executing."""
    code = EXIT_REFUSED if status == "refused" else EXIT_INTERRUPTED
    _say(f"{status.upper():8s} {summary}")
    for p in problems:
        _say(f"         {p}")
    finished = _iso(_now())
    result = RunResult(
        code, status, out_dir, _iso(started), finished, problems=[summary, *problems]
    )
    if out_dir is None:
        return result
    with contextlib.ExitStack() as stack:
        if take_lock and not stack.enter_context(_lock(out_dir)):
            return result  # another run is writing; it will write its own index
        manifest = _read_manifest(out_dir)
        results = []
        for n in names:
            rr = _previous(manifest, n, out_dir)
            rr.status, rr.error = status, one_line(summary)
            rr.started, rr.finished, rr.seconds = _iso(started), finished, None
            results.append(rr)
        result.reports = results
        run_info = {
            "started": _iso(started),
            "finished": finished,
            "params_file": str(params_path),
            "exit_code": code,
            "status": status,
            "summary": summary,
            "problems": list(problems),
            "git_commit": git_commit(),
        }
        with _ignore_signals():
            _write_outputs(
                out_dir=out_dir,
                title=_title(params),
                run=run_info,
                results=results,
                manifest=manifest,
                available=available,
            )
    return result


def _run_locked(
    *,
    params: Any,
    params_path: Path,
    out_dir: Path,
    started: dt.datetime,
    only: Sequence[str] | None,
    jobs: int | None,
    notebooks_dir: Any,
    kernel_name: str | None,
    parameters: Mapping[str, Any],
) -> RunResult:
    reports_params = params.reports
    nb_dir = Path(notebooks_dir).resolve() if notebooks_dir else _default_notebooks_dir(params)
    try:
        names = _select_notebooks(getattr(reports_params, "notebooks", None), only, nb_dir)
    except _Refused as exc:
        return _refuse(out_dir, started, params_path, exc.summary, exc.problems, params)
    available = set(_available_notebooks(nb_dir))

    # Invalid data: refuse before executing anything. A clean validation leaves a receipt
    # that the notebooks reuse instead of validating again (analysis.data.check / load).
    receipt_dir = Path(tempfile.mkdtemp(prefix="analysis-run-"))
    try:
        return _run_checked(
            params=params,
            params_path=params_path,
            out_dir=out_dir,
            started=started,
            names=names,
            available=available,
            jobs=jobs,
            nb_dir=nb_dir,
            kernel_name=kernel_name,
            parameters=parameters,
            receipt=receipt_dir / "validation.json",
        )
    finally:
        shutil.rmtree(receipt_dir, ignore_errors=True)


def _run_checked(
    *,
    params: Any,
    params_path: Path,
    out_dir: Path,
    started: dt.datetime,
    names: list[str],
    available: set[str],
    jobs: int | None,
    nb_dir: Path,
    kernel_name: str | None,
    parameters: Mapping[str, Any],
    receipt: Path,
) -> RunResult:
    reports_params = params.reports
    warnings_: list[str] = []
    try:
        from analysis import data

        problems = list(data.check(params, receipt=receipt))
        errors = [p for p in problems if getattr(p, "severity", "error") == "error"]
        warnings_ = [_problem_line(p) for p in problems if p not in errors]
        if errors:
            for p in errors:  # the terminal may show examples; the index never does
                _say(f"         {p}")
            raise _Refused(
                f"invalid data: {len(errors)} contract error(s); no report was "
                "produced or replaced",
                [_problem_line(p) for p in errors],
            )
        fingerprint = dict(data.fingerprint(params))
        ids = identifiers_to_scan(data.customer_ids(params))
    except _Refused as exc:
        return _refuse(
            out_dir,
            started,
            params_path,
            exc.summary,
            exc.problems,
            params,
            names,
            available=available,
        )
    except KeyboardInterrupt:
        return _refuse(
            out_dir,
            started,
            params_path,
            "run interrupted while checking the data",
            [],
            params,
            names,
            status="interrupted",
            available=available,
        )
    except Exception as exc:  # noqa: BLE001 - unreadable data refuses the run
        summary = f"could not read the data: {type(exc).__name__}: {one_line(str(exc))}"
        return _refuse(
            out_dir,
            started,
            params_path,
            summary,
            [_problem_line(p) for p in getattr(exc, "problems", [])],
            params,
            names,
            available=available,
        )
    for w in warnings_:
        _say(f"warning  {w}")

    jobs = int(jobs or getattr(reports_params, "jobs", 1) or 1)
    jobs = max(1, min(jobs, len(names)))
    manifest = _read_manifest(out_dir)
    runner = _Runner(
        params=params,
        params_file=params_path,
        out_dir=out_dir,
        names=names,
        notebooks_dir=nb_dir,
        jobs=jobs,
        timeout=int(getattr(reports_params, "timeout_seconds", 1800)),
        kernel_name=kernel_name or getattr(reports_params, "kernel_name", "python3"),
        extra_parameters=parameters,
        fingerprint=fingerprint,
        ids=ids,
        started=started,
        manifest=manifest,
        receipt=receipt if receipt.is_file() else None,
    )
    _say(f"running {len(names)} report(s) with {jobs} job(s) -> {out_dir}")
    interrupted = False
    try:
        runner.execute_all()
    except (_Interrupted, KeyboardInterrupt):
        interrupted = True
    with _ignore_signals():
        for rr in runner.results.values():
            if rr.status == "running":  # interrupted between bookkeeping steps
                rr.status, rr.error = "interrupted", "run interrupted (SIGINT/SIGTERM)"
        results = [runner.results[n] for n in names]
        failed = [r for r in results if r.status != "ok"]
        if interrupted:
            code, status = EXIT_INTERRUPTED, "interrupted"
        elif failed:
            code, status = EXIT_FAILED, "failed"
        else:
            code, status = EXIT_OK, "ok"
        finished = _iso(_now())
        run_info = {
            "started": _iso(started),
            "finished": finished,
            "params_file": str(params_path),
            "exit_code": code,
            "status": status,
            "problems": warnings_,
            "git_commit": runner.commit,
            "as_of": fingerprint.get("as_of"),
            "summary": None,
        }
        _write_outputs(
            out_dir=out_dir,
            title=_title(params),
            run=run_info,
            results=results,
            manifest=manifest,
            available=available,
        )
    n_ok = len(results) - len(failed)
    _say(f"done: {n_ok} ok, {len(failed)} not ok -> {out_dir / INDEX_NAME} (exit {code})")
    return RunResult(code, status, out_dir, _iso(started), finished, results, warnings_)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m analysis run``."""
    ap = argparse.ArgumentParser(
        prog="python -m analysis run",
        description="Execute the report notebooks with papermill and publish HTML reports "
        "with an index page. Exit codes: 0 all ok, 1 some report failed, 2 invalid "
        "params or data (nothing replaced), 75 another run in progress, "
        "130 interrupted.",
    )
    ap.add_argument("--params", required=True, metavar="FILE", help="params YAML file")
    ap.add_argument(
        "--only",
        nargs="+",
        action="extend",
        metavar="NAME",
        help="run only these notebooks, e.g. 00_kpi_dashboard",
    )
    ap.add_argument("--out", metavar="DIR", help="output folder (default: reports.output_dir)")
    ap.add_argument(
        "--jobs", type=int, metavar="N", help="notebooks in parallel (default: reports.jobs)"
    )
    ap.add_argument(
        "--notebooks-dir",
        metavar="DIR",
        help="folder of NN_name.ipynb notebooks (default: ./notebooks)",
    )
    ap.add_argument(
        "--kernel", metavar="NAME", help="Jupyter kernel (default: reports.kernel_name)"
    )
    ap.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="further notebook parameter (VALUE read as YAML), e.g. -p as_of 2025-06-30",
    )
    return ap


def parse_parameters(pairs: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    """Return ``-p NAME VALUE`` pairs as a dict, each value read as YAML (``"3"`` -> 3)."""
    import yaml

    out: dict[str, Any] = {}
    for name, value in pairs or []:
        if not name.isidentifier():
            raise AnalysisError(f"-p {name}: a notebook parameter must be a Python identifier")
        if name == "params_file":
            raise AnalysisError("-p params_file: use --params to choose the params file")
        parsed = yaml.safe_load(value)
        # Dates stay strings: notebooks take typed literals (str) in their parameters cell.
        out[name] = value if isinstance(parsed, dt.date) else parsed
    return out


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m analysis run`` with ``argv`` (without the ``run``); return the exit code."""
    args = build_parser().parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        print("--jobs must be at least 1", file=sys.stderr)
        return EXIT_REFUSED
    try:
        parameters = parse_parameters(args.parameter)
    except AnalysisError as exc:
        print(exc, file=sys.stderr)
        return EXIT_REFUSED
    try:
        result = run(
            args.params,
            only=args.only,
            out=args.out,
            jobs=args.jobs,
            notebooks_dir=args.notebooks_dir,
            kernel_name=args.kernel,
            parameters=parameters,
        )
    except KeyboardInterrupt:  # before the run installed its own handling
        return EXIT_INTERRUPTED
    return result.exit_code


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(_worker(sys.argv[2]))
    sys.exit(main(sys.argv[1:]))
