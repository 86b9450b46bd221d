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
4. refuses to publish HTML that contains a customer id
   (:func:`analysis.report.guard.scan_for_identifiers`);
5. publishes the HTML together with the notebook's exports (a notebook that
   declares an ``export_dir`` parameter writes them into a staging folder the
   runner gives it): every file is complete before it is renamed into place
   (:func:`os.replace`), and the renames are recorded first in the run's marker
   (:class:`analysis.report.outputs.RunMarker`), so a run killed halfway through
   them has them completed by the next run. A failed, timed-out, interrupted or
   killed notebook never replaces its last good HTML or exports.

Then it writes ``index.html`` (status, run time, as-of date, headline numbers,
link, one-line error per report), ``manifest.json`` (state carried between runs:
last good time, headlines) and appends one JSON line to ``run-log.jsonl``, all
in the output folder.

Workers die with the runner, whatever ends it (:func:`analysis.report.worker.die_with_runner`).
A run that finds the marker of an earlier run that never finished (SIGKILL, out
of memory) logs that run and removes its temporary files before starting.

Exit codes: 0 every report ok; 1 some report failed; 2 refused (invalid params
or data, unknown notebook, bad command line; nothing replaced); 75 another run
holds the output folder's lock; 130 interrupted (SIGINT/SIGTERM/SIGHUP; unfinished
reports keep their previous HTML and exports).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.errors import AnalysisError
from analysis.report.guard import (
    _redact_secrets,
    identifiers_to_scan,
    redact_identifiers,
    scan_for_identifiers,
)
from analysis.report.html import (
    INDEX_NAME,
    collect_headlines,
    collect_skipped,
    collect_verdict,
    declares_parameter,
    fill_previous_run,
    git_commit,
    notebook_body_html,
    notebook_title,
    package_version,
    render_report_page,
)
from analysis.report.outputs import (
    EXECUTED_DIR,
    EXPORTS_DIR,
    LOCK_NAME,  # noqa: F401 - part of the runner's API
    ReportResult,
    RunMarker,
    RunResult,
    _append_run_log,
    _lock,
    _previous,
    _read_manifest,
    _write_outputs,
    move_into_place,
    one_line,
    problem_line,
    take_over,
    write_atomic,
)
from analysis.report.signals import (
    _ignore_signals,
    _Interrupted,
    _signals_deferred,
    _terminate_as_interrupt,
)
from analysis.report.worker import RUNNER_PID_ENV, THREAD_VARS, _worker, thread_env  # noqa: F401

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_LOCKED = 75  # sysexits EX_TEMPFAIL: try again later
EXIT_INTERRUPTED = 130

NOTEBOOK_PATTERN = re.compile(r"^\d\d_[A-Za-z0-9_\-]+$")
TERMINATE_GRACE_SECONDS = 8.0
POLL_SECONDS = 0.1


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
    export_stage: Path | None = None  # where the notebook writes its exports
    export_dest: Path | None = None  # where they are published with the report


# --------------------------------------------------------------------------------------
# Run
# --------------------------------------------------------------------------------------


def _load_params(params_file: Path):
    from analysis import config

    return config.load_params(params_file)


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
        marker: RunMarker | None = None,
    ):
        self.params = params
        self.receipt = receipt
        self.marker = marker
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
        self.version = package_version()
        self.params_dict = _redact_secrets(_params_dict(params))

    # ---- execution ------------------------------------------------------------------

    def _worker_env(self) -> dict[str, str]:
        env = thread_env(
            self.jobs, engine_memory=getattr(self.params.reports, "engine_memory_limit", None)
        )
        if self.receipt is not None:
            env["ANALYSIS_VALIDATION_RECEIPT"] = str(self.receipt)
        env[RUNNER_PID_ENV] = str(os.getpid())  # the worker dies with this process
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
        if declares_parameter(job.notebook, "export_dir"):
            # CRM exports go beside the reports of this run (honours --out), or where
            # -p export_dir says (relative to the notebook's folder, its working
            # directory). The notebook writes them into a staging folder; they are
            # published together with the report, only if the report is.
            given = parameters.get("export_dir")
            dest = Path(given) if given else self.out_dir / EXPORTS_DIR
            job.export_dest = dest if dest.is_absolute() else job.notebook.parent / dest
            job.export_stage = tmpdir / EXPORTS_DIR
            job.export_stage.mkdir()
            parameters["export_dir"] = str(job.export_stage)
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
                [sys.executable, "-m", "analysis.report.worker", "--worker", str(job.spec)],
                env=self._worker_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # The runner, not the terminal, stops workers; they die with the runner
                # (analysis.report.worker.die_with_runner), even when it is SIGKILLed.
                start_new_session=True,
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
        """Remove the job's work folder (spec, result, unpublished HTML and exports)."""
        if job.spec is not None:
            shutil.rmtree(job.spec.parent, ignore_errors=True)

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
                    if job.started is None:  # interrupted while it was being started
                        self._not_started(job.name)
                    else:
                        self._mark(job.name, "interrupted", "run interrupted (SIGINT/SIGTERM)", job)
                for job in pending:
                    self._not_started(job.name)
            raise _Interrupted from None

    def _mark(self, name: str, status: str, error: str | None, job: _Job | None) -> None:
        rr = self.results[name]
        rr.status = status
        rr.error = None if error is None else redact_identifiers(error, self.ids)
        rr.finished = _iso(_now())
        if job is not None and job.started is not None:
            rr.seconds = round(time.monotonic() - job.t0, 1)

    def _not_started(self, name: str) -> None:
        """Mark a report the interrupted run never started (no time, no duration of its own)."""
        rr = self.results[name]
        rr.status, rr.error = "interrupted", "not started: run interrupted"
        rr.started = rr.finished = rr.seconds = None

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
        if self.marker is not None:
            with contextlib.suppress(OSError):  # bookkeeping only: never fail the run for it
                self.marker.finished(self.results[job.name])

    def _publish(self, job: _Job, seconds: float) -> str | None:
        """Render, guard and publish one executed notebook. Return an error or None."""
        import nbformat

        from analysis.report import display

        nb = nbformat.read(job.executed_tmp, as_version=4)
        title = notebook_title(nb, job.name)
        headlines = collect_headlines(nb)
        verdict = collect_verdict(nb)
        skipped = collect_skipped(nb)
        finished = _now()
        as_of = self.fingerprint.get("as_of")
        provenance = display.provenance_html(
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
        prev = self.results[job.name]
        body = fill_previous_run(
            notebook_body_html(nb),
            prev.headlines,
            prev.as_of,
            None if as_of is None else str(as_of),
        )
        page = render_report_page(
            title=title,
            body_html=body,
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
        if scan_for_identifiers(json.dumps([headlines, verdict, skipped]), self.ids):
            return "not published: a headline, the verdict or a skipped-section note contains a customer id"
        # Every file of the report is complete before anything is renamed into place:
        # the page, the exports (staged by the notebook) and the executed notebook.
        staged_page = job.spec.parent / f"{job.name}.html"
        write_atomic(staged_page, page)
        moves: list[tuple[Path, Path]] = []
        if job.export_stage is not None and job.export_dest is not None:
            for f in sorted(job.export_stage.rglob("*")):
                if f.is_file() and not f.name.startswith("."):  # not a writer's temp file
                    moves.append((f, job.export_dest / f.relative_to(job.export_stage)))
        moves.append((staged_page, self.out_dir / f"{job.name}.html"))
        moves.append((job.executed_tmp, self.out_dir / EXECUTED_DIR / f"{job.name}.ipynb"))
        rr = self.results[job.name]
        published = dataclasses.replace(
            rr,
            status="ok",
            error=None,
            title=title,
            finished=_iso(finished),
            seconds=seconds,
            html=f"{job.name}.html",
            last_good=_iso(finished),
            as_of=None if as_of is None else str(as_of),
            headlines=headlines,
            verdict=verdict,
            skipped=skipped,
        )
        with _signals_deferred():
            if self.marker is not None:  # a run killed during the renames: the next completes them
                self.marker.publishing(published, moves)
            for src, dst in moves:
                move_into_place(src, dst)
            for f in dataclasses.fields(published):
                setattr(rr, f.name, getattr(published, f.name))
        return None


def _params_dict(params: Any) -> dict:
    to_dict = getattr(params, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    return {}


def _title(params: Any) -> str:
    reports = getattr(params, "reports", None) if params is not None else None
    return getattr(reports, "title", None) or "Customer retention reports"


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
        data, unknown notebook; nothing replaced), 75 (another run holds the lock),
        130 (interrupted).
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
            problems = [problem_line(p) for p in getattr(exc, "problems", [])]
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
            take_over(out_dir, _iso(started), _say)
            # Until this run has written its run-log line, the marker says it is unfinished.
            marker = RunMarker(out_dir, started=_iso(started), params_file=str(params_path))
            result = _run_locked(
                params=params,
                params_path=params_path,
                out_dir=out_dir,
                started=started,
                only=only,
                jobs=jobs,
                notebooks_dir=notebooks_dir,
                kernel_name=kernel_name,
                parameters=parameters or {},
                marker=marker,
            )
            marker.close()
            return result


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
    terminal: Sequence[str] | None = None,
) -> RunResult:
    """Record a run that produced nothing: refused (exit 2) or interrupted before executing.

    ``terminal`` replaces ``problems`` on standard output (e.g. with example values,
    which the index never shows); each problem is printed once.
    """
    code = EXIT_REFUSED if status == "refused" else EXIT_INTERRUPTED
    _say(f"{status.upper():8s} {summary}")
    for p in problems if terminal is None else terminal:
        _say(f"         {p}")
    finished = _iso(_now())
    result = RunResult(
        code, status, out_dir, _iso(started), finished, problems=[summary, *problems]
    )
    if out_dir is None:
        return result
    with contextlib.ExitStack() as stack:
        if take_lock:
            if not stack.enter_context(_lock(out_dir)):
                return result  # another run is writing; it will write its own index
            take_over(out_dir, _iso(started), _say)
        manifest = _read_manifest(out_dir)
        results = []
        for n in names:
            rr = _previous(manifest, n, out_dir)
            rr.status, rr.error = status, one_line(summary)
            rr.seconds = None
            if status == "interrupted":  # never started: no time of its own
                rr.started = rr.finished = None
            else:
                rr.started, rr.finished = _iso(started), finished
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
    marker: RunMarker | None = None,
) -> RunResult:
    reports_params = params.reports
    nb_dir = Path(notebooks_dir).resolve() if notebooks_dir else _default_notebooks_dir(params)
    try:
        names = _select_notebooks(getattr(reports_params, "notebooks", None), only, nb_dir)
    except _Refused as exc:
        return _refuse(out_dir, started, params_path, exc.summary, exc.problems, params)
    available = set(_available_notebooks(nb_dir))
    if marker is not None:
        marker.planned(names)

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
            marker=marker,
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
    marker: RunMarker | None = None,
) -> RunResult:
    reports_params = params.reports
    warnings_: list[str] = []
    terminal: list[str] | None = None
    try:
        from analysis import data

        problems = list(data.check(params, receipt=receipt))
        errors = [p for p in problems if getattr(p, "severity", "error") == "error"]
        warnings_ = [problem_line(p) for p in problems if p not in errors]
        if errors:
            terminal = [str(p) for p in errors]  # with examples: terminal only, never the index
            raise _Refused(
                f"invalid data: {len(errors)} contract error(s); no report was "
                "produced or replaced",
                [problem_line(p) for p in errors],
            )
        fingerprint = dict(data.fingerprint(params))
        ids = identifiers_to_scan(data.customer_id_array(params))
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
            terminal=terminal,
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
            [problem_line(p) for p in getattr(exc, "problems", [])],
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
        kernel_name=kernel_name or getattr(reports_params, "kernel_name", "analysis"),
        extra_parameters=parameters,
        fingerprint=fingerprint,
        ids=ids,
        started=started,
        manifest=manifest,
        receipt=receipt if receipt.is_file() else None,
        marker=marker,
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
            ids=ids,
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
        "with an index page. Exit codes: 0 all ok, 1 some report failed, 2 refused: "
        "invalid params or data, unknown notebook or bad command line (nothing replaced), "
        "75 another run in progress, 130 interrupted. See docs/scheduling.md.",
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
