"""Faults of the report runner: killed runs, interrupted runs, refused runs, exit codes.

Like tests/test_runner.py, these run the runner on the tiny notebooks under
tests/data/notebooks with ``analysis.config`` and ``analysis.data`` replaced by
the fakes of that module. Notebooks used here: 04_export (writes a CRM export
into its ``export_dir`` after ``sleep_seconds``, like the customer value report;
fails after the export when the params file lists it under ``fail``) and
05_sigint_probe (starts a helper in the kernel's process group that records any
SIGINT the kernel's process group receives).

Each test states the fault it reproduces; the expected behaviour is the one
documented in docs/scheduling.md ("Exit codes", "Faults").
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from analysis import cli, runner
from analysis.errors import Problem
from analysis.report import outputs as report_outputs
from analysis.report import runner as report_runner
from analysis.report import worker as report_worker
from analysis.report.value import write_export
from tests.test_runner import NB_DIR, _install_fakes, _params, _run_log

EXPORT = Path("exports") / "customers_to_protect.csv"


@pytest.fixture
def fakes():
    with pytest.MonkeyPatch.context() as mp:
        _install_fakes(mp)
        yield


def _driver(pf: Path, out: Path, *extra: str) -> str:
    """Python source that runs ``python -m analysis run`` on the fakes (for a subprocess)."""
    args = ["--params", str(pf), "--out", str(out), "--notebooks-dir", str(NB_DIR), *extra]
    return textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import test_runner
        test_runner._install_fakes()
        from analysis import runner
        sys.exit(runner.main({args!r}))
        """
    )


def _previous_outputs(out: Path) -> tuple[bytes, bytes]:
    """Write a previous run's page and export of 04_export; return their bytes."""
    page, export = b"<html>previous 04_export page</html>", b"segment,customers\nprevious,9\n"
    (out / "exports").mkdir(parents=True)
    (out / "04_export.html").write_bytes(page)
    (out / EXPORT).write_bytes(export)
    return page, export


def _is_kernel(p: psutil.Process) -> bool:
    try:
        return any("ipykernel" in part for part in p.cmdline())
    except psutil.Error:
        return False


# --------------------------------------------------------------------------------------
# SIGKILL: workers and kernels die with the runner; the next run notices
# --------------------------------------------------------------------------------------


def test_sigkill_leaves_no_worker_or_kernel_and_the_next_run_recovers(fakes, tmp_path):
    """The issue: after SIGKILL of the runner its worker finished ~7 s later and overwrote
    the export while the HTML and index still showed the previous run."""
    out = tmp_path / "reports"
    page, export = _previous_outputs(out)
    pf = _params(tmp_path / "p.yaml", notebooks=["04_export"], timeout_seconds=300)
    proc = subprocess.Popen(
        [sys.executable, "-c", _driver(pf, out, "-p", "sleep_seconds", "4")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    descendants: list[psutil.Process] = []
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "start    04_export" in line:
                break
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the kernel is up: the notebook is executing
            descendants = psutil.Process(proc.pid).children(recursive=True)
            if any(_is_kernel(p) for p in descendants):
                break
            time.sleep(0.1)
        time.sleep(1.0)
        descendants = psutil.Process(proc.pid).children(recursive=True)
        assert any(_is_kernel(p) for p in descendants), "".join(lines)

        proc.kill()
        proc.wait(10)
        # Within a few seconds no process of the run is left (worker: PR_SET_PDEATHSIG;
        # kernel: ipykernel polls its parent every second).
        _, alive = psutil.wait_procs(descendants, timeout=5)
        assert not alive, f"still running after the runner was killed: {alive}"
    finally:
        for p in descendants:
            with contextlib.suppress(psutil.Error):
                p.kill()
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    # Nothing of the killed run can be published any more, and nothing was.
    assert (out / "04_export.html").read_bytes() == page
    assert (out / EXPORT).read_bytes() == export
    marker = json.loads((out / report_outputs.RUN_MARKER_NAME).read_text())
    assert marker["pid"] == proc.pid
    assert list((out / "executed").glob(".04_export.*")), "the killed run's work folder"

    result = runner.run(pf, out=out, notebooks_dir=NB_DIR)
    assert result.exit_code == 0, result
    log = _run_log(out)
    unfinished, this = log[-2], log[-1]
    assert unfinished["status"] == "unfinished" and unfinished["exit_code"] is None
    assert unfinished["started"] == marker["started"] and unfinished["pid"] == proc.pid
    assert unfinished["reports"] == {
        "04_export": {"status": "unfinished", "seconds": None, "error": None}
    }
    assert "ended without finishing" in unfinished["problems"][0]
    assert this["status"] == "ok" and this["started"] >= unfinished["started"]
    # Its leftovers are gone; this run's export and page are published together.
    assert not (out / report_outputs.RUN_MARKER_NAME).exists()
    assert not [p for p in (out / "executed").iterdir() if p.name.startswith(".")]
    assert not list(out.rglob("*.tmp"))
    assert (out / EXPORT).read_text() == "segment,customers\nnew,1\n"
    assert "Export report" in (out / "04_export.html").read_text()


def test_worker_exits_at_once_when_its_runner_is_already_gone(tmp_path):
    """A worker whose parent is not the runner that started it (the runner died before the
    worker could ask to die with it) does nothing; it does not even read its spec."""
    env = dict(os.environ, **{report_worker.RUNNER_PID_ENV: str(2**22 + 12345)})
    done = subprocess.run(
        [sys.executable, "-m", "analysis.report.worker", "--worker", str(tmp_path / "no.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == report_worker.EXIT_ORPHANED, done.stderr
    assert not list(tmp_path.iterdir())


def test_publication_cut_by_a_kill_is_completed_by_the_next_run(fakes, tmp_path):
    """A run killed between the renames of one report's files (page, export, executed
    notebook): the next run completes them from the journal in the run marker, records the
    report in the manifest and logs the unfinished run, even when it is itself refused."""
    out = tmp_path / "reports"
    _previous_outputs(out)
    work = out / "executed" / ".04_export.killed"
    (work / "exports").mkdir(parents=True)
    (work / "04_export.html").write_text("<html>new 04_export page</html>")
    (work / "exports" / "customers_to_protect.csv").write_text("segment,customers\nnew,1\n")
    (work / "04_export.ipynb").write_text("{}")
    moves = [
        (work / "exports" / "customers_to_protect.csv", out / EXPORT),
        (work / "04_export.html", out / "04_export.html"),
        (work / "04_export.ipynb", out / "executed" / "04_export.ipynb"),
    ]
    marker = report_outputs.RunMarker(
        out, started="2026-01-05T06:00:00Z", params_file=str(tmp_path / "p.yaml")
    )
    marker.planned(["00_good", "04_export"])
    published = report_outputs.ReportResult(
        "04_export",
        "ok",
        title="Export report",
        finished="2026-01-05T06:01:00Z",
        seconds=12.5,
        html="04_export.html",
        last_good="2026-01-05T06:01:00Z",
        as_of="2025-12-31",
        headlines=[{"name": "Exported rows", "text": "1"}],
    )
    marker.publishing(published, moves)
    report_outputs.move_into_place(*moves[0])  # killed after the first rename

    pf = _params(tmp_path / "invalid.yaml", invalid=True)
    assert runner.main(["--params", str(pf), "--out", str(out)]) == 2

    assert (out / EXPORT).read_text() == "segment,customers\nnew,1\n"
    assert (out / "04_export.html").read_text() == "<html>new 04_export page</html>"
    assert (out / "executed" / "04_export.ipynb").read_text() == "{}"
    assert not work.exists() and not (out / report_outputs.RUN_MARKER_NAME).exists()
    manifest = json.loads((out / "manifest.json").read_text())["reports"]
    assert manifest["04_export"]["last_good"] == "2026-01-05T06:01:00Z"
    index = (out / "index.html").read_text()
    assert 'href="04_export.html"' in index and "Exported rows: <strong>1</strong>" in index
    log = _run_log(out)
    assert [line["status"] for line in log] == ["unfinished", "refused"]
    assert log[0]["started"] == "2026-01-05T06:00:00Z"
    assert log[0]["reports"] == {
        "04_export": {"status": "ok", "seconds": 12.5, "error": None},
        "00_good": {"status": "unfinished", "seconds": None, "error": None},
    }


def test_export_of_a_failed_report_is_not_published(fakes, tmp_path):
    """Exports are published together with their report: a notebook that writes its export
    and then fails leaves the previous export (and page) in place."""
    out = tmp_path / "reports"
    page, export = _previous_outputs(out)
    pf = _params(tmp_path / "p.yaml", notebooks=["04_export"], fail=["04_export"])
    result = runner.run(pf, out=out, notebooks_dir=NB_DIR)
    assert result.exit_code == 1
    assert result.report("04_export").error.startswith("ValueError: deliberate failure")
    assert (out / EXPORT).read_bytes() == export
    assert (out / "04_export.html").read_bytes() == page
    assert not list(out.rglob("*.tmp")) and not list((out / "executed").glob(".*"))


def test_write_export_replaces_the_file_atomically(tmp_path, monkeypatch):
    target = tmp_path / "exports" / "customers_to_protect.csv"
    write_export(pd.DataFrame({"segment": ["old"], "customers": [2]}), target)
    before = target.read_bytes()

    def half_then_fail(self, path, **kwargs):
        Path(path).write_text("segment,customers\nhalf")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_export(pd.DataFrame({"segment": ["new"], "customers": [1]}), target)
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == [target.name]


# --------------------------------------------------------------------------------------
# Interrupted runs: reports never started show "not started"
# --------------------------------------------------------------------------------------


def _manifest_with_durations(out: Path, names: list[str], seconds: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    reports = {}
    for n in names:
        (out / f"{n}.html").write_text(f"<html>{n}</html>")
        reports[n] = {
            "status": "ok",
            "title": n,
            "started": "2026-01-01T06:00:00Z",
            "finished": "2026-01-01T06:00:36Z",
            "seconds": seconds,
            "html": f"{n}.html",
            "last_good": "2026-01-01T06:00:36Z",
            "headlines": [],
        }
    (out / "manifest.json").write_text(json.dumps({"reports": reports}))


def _row(index: str, name: str) -> str:
    start = index.index(f'<tr id="report-{name}">')
    return index[start : index.index("</tr>", start)]


def test_reports_an_interrupted_run_never_started_show_not_started(fakes, tmp_path, monkeypatch):
    """The issue: reports that never started in an interrupted run showed the previous
    run's duration ("took 35.6 s")."""
    out = tmp_path / "reports"
    names = ["00_good", "01_flaky"]
    _manifest_with_durations(out, names, 35.6)

    def interrupted(self, job):  # Ctrl-C as the first notebook is being started
        raise KeyboardInterrupt

    monkeypatch.setattr(report_runner._Runner, "_start", interrupted)
    pf = _params(tmp_path / "p.yaml", notebooks=names)
    result = runner.run(pf, out=out, notebooks_dir=NB_DIR, jobs=1)
    assert result.exit_code == 130 and result.status == "interrupted"
    index = (out / "index.html").read_text()
    for n in names:
        rr = result.report(n)
        assert (rr.status, rr.seconds, rr.started, rr.finished) == ("interrupted", None, None, None)
        assert "not started" in _row(index, n) and "35.6" not in _row(index, n)
        assert f'href="{n}.html"' in _row(index, n)  # the last good page stays linked
    assert _run_log(out)[-1]["reports"]["00_good"]["seconds"] is None


def test_run_interrupted_while_checking_the_data_shows_not_started(fakes, tmp_path, monkeypatch):
    out = tmp_path / "reports"
    _manifest_with_durations(out, ["00_good"], 35.6)

    def check(params, *, receipt=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(sys.modules["analysis.data"], "check", check)
    pf = _params(tmp_path / "p.yaml", notebooks=["00_good"])
    result = runner.run(pf, out=out, notebooks_dir=NB_DIR)
    assert result.exit_code == 130
    row = _row((out / "index.html").read_text(), "00_good")
    assert "not started" in row and "35.6" not in row


# --------------------------------------------------------------------------------------
# A successful run shuts its kernels down without interrupting them
# --------------------------------------------------------------------------------------


def test_successful_run_shuts_kernels_down_cleanly(fakes, tmp_path):
    """The issue: a successful run's executed-notebook log ended in
    ``ERROR | KeyboardInterrupt caught in kernel``: jupyter_client interrupts (SIGINT)
    every kernel before shutting it down. The probe notebook's helper process shares the
    kernel's process group, so it receives that SIGINT whenever it is sent."""
    out = tmp_path / "reports"
    pf = _params(tmp_path / "p.yaml", notebooks=["05_sigint_probe"])
    result = runner.run(pf, out=out, notebooks_dir=NB_DIR)
    assert result.exit_code == 0, result
    probe = tmp_path / "p.sigint"
    deadline = time.monotonic() + 10  # the helper exits once the kernel is gone
    while _helper_running(probe) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert probe.read_text() == "ready\n", "the kernel was interrupted on a clean shutdown"
    log = (out / "executed" / "05_sigint_probe.log").read_text()
    assert not [ln for ln in log.splitlines() if "ERROR" in ln], log


def _helper_running(probe: Path) -> bool:
    for p in psutil.process_iter(["cmdline"]):
        if str(probe) in " ".join(p.info["cmdline"] or []):
            return True
    return False


# --------------------------------------------------------------------------------------
# Refused runs: exit codes, and each problem printed once
# --------------------------------------------------------------------------------------


def test_refused_run_prints_each_problem_once(fakes, tmp_path, capsys):
    """The issue: a refused run printed its error twice."""
    pf = _params(tmp_path / "bad.yaml", notebooks=["00_good"], bad_data=True)
    argv = ["--params", str(pf), "--out", str(tmp_path / "r"), "--notebooks-dir", str(NB_DIR)]
    assert runner.main(argv) == 2
    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert text.count("customer_id is not unique") == 1, text
    assert text.count("invalid data: 1 contract error(s)") == 1, text
    assert "e.g. C0000123" in text  # examples on the terminal...
    assert "C0000123" not in (tmp_path / "r" / "index.html").read_text()  # ...never in the index


def test_problem_line_names_the_location_once():
    p = Problem("reports", "jobs", "type", "reports.jobs: expected a whole number, got 'many'")
    assert report_outputs.problem_line(p) == (
        "[error] reports.jobs: expected a whole number, got 'many'"
    )


def test_exit_codes_of_run(fakes, tmp_path, capsys):
    """0 ok; 1 a report failed; 2 refused (params, data, command line); 75 locked; 130
    interrupted. 0, 1, 75 and 130 are exercised in tests/test_runner.py and above."""
    out = str(tmp_path / "r")
    invalid = _params(tmp_path / "invalid.yaml", invalid=True)
    good = _params(tmp_path / "p.yaml", notebooks=["00_good"])
    unknown = _params(tmp_path / "unknown.yaml", notebooks=["99_nope"])
    nb = ["--notebooks-dir", str(NB_DIR)]
    assert cli.main(["run", "--params", str(invalid), "--out", out]) == 2
    assert cli.main(["run", "--params", str(unknown), "--out", out, *nb]) == 2
    assert cli.main(["run", "--params", str(good), "--out", out, "--only", "99_nope", *nb]) == 2
    assert cli.main(["run", "--params", str(good), "--jobs", "0"]) == 2
    assert cli.main(["run", "--params", str(good), "-p", "params_file", "x.yaml"]) == 2
    assert cli.main(["run", "--params", str(good), "-p", "1bad", "2"]) == 2
    for argv in (["run"], ["run", "--params", str(good), "--no-such-option"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
    assert cli.main(["no-such-command"]) == 2
    statuses = [line["status"] for line in _run_log(Path(out))]
    assert statuses == ["refused", "refused", "refused"]
    capsys.readouterr()


def test_sighup_interrupts_like_sigterm(tmp_path):
    """A closed terminal (SIGHUP) stops the run like SIGTERM: exit 130, index and run log
    written, no worker left (unless SIGHUP is ignored, as under nohup)."""
    out = tmp_path / "reports"
    pf = _params(tmp_path / "p.yaml", notebooks=["03_slow"], timeout_seconds=300)
    proc = subprocess.Popen(
        [sys.executable, "-c", _driver(pf, out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # as from a terminal, even when the tests run under nohup
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    children: list[psutil.Process] = []
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "start    03_slow" in line:
                break
        time.sleep(2.0)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGHUP)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 130, "".join(lines) + rest
        _, alive = psutil.wait_procs(children, timeout=15)
        assert not alive
    finally:
        for p in children:
            with contextlib.suppress(psutil.Error):
                p.kill()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert _run_log(out)[-1]["status"] == "interrupted"
    assert not (out / report_outputs.RUN_MARKER_NAME).exists()
