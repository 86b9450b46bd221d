"""Tests of the report runner (analysis.runner), end to end on tiny notebooks.

The notebooks under tests/data/notebooks are fixtures: 00_good (table, plot,
headlines, stderr noise), 01_flaky (fails when the params file lists it under
``fail``), 02_leaks_id (prints a customer id) and 03_slow (sleeps).

``analysis.config`` and ``analysis.data`` are replaced by small fakes driven by
the params YAML, so these tests exercise the runner alone; the fakes follow
the interfaces the runner relies on (see ``_install_fakes``). The expensive
end-to-end runs happen once per module (fixtures ``first_run`` and
``second_run``) and several tests inspect their results.
"""

from __future__ import annotations

import base64
import dataclasses
import fcntl
import importlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import nbformat
import numpy as np
import psutil
import pytest
import yaml

import analysis
from analysis import runner
from analysis.errors import ParamsError, Problem
from analysis.report import outputs as report_outputs
from analysis.report import runner as report_runner

NB_DIR = Path(__file__).parent / "data" / "notebooks"
IDS = {"C0000123", "C0000124", "C0000999", "42"}  # "42": short numeric, not searched


# --------------------------------------------------------------------------------------
# Fake foundation modules
# --------------------------------------------------------------------------------------


def _fake_load_params(path):
    """Mimic analysis.config.load_params on a tiny test YAML."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text()) or {}
    if raw.get("invalid"):
        raise ParamsError(
            f"params file {path} is invalid",
            [Problem("reports", "jobs", "type", "expected an integer, got 'many'", fix="use 2")],
        )
    reports = types.SimpleNamespace(
        output_dir=Path(raw.get("output_dir", path.parent / "reports")).resolve(),
        notebooks=list(raw.get("notebooks", [])),
        timeout_seconds=int(raw.get("timeout_seconds", 120)),
        jobs=int(raw.get("jobs", 2)),
        kernel_name="python3",
        title="Test reports",
    )
    return types.SimpleNamespace(
        reports=reports,
        source_file=path.resolve(),
        raw=raw,
        to_dict=lambda: {
            "reports": {"jobs": reports.jobs, "timeout_seconds": reports.timeout_seconds},
            "data": {"url": "postgresql://analyst:s3cret@db/retention"},
        },
    )


def _fake_check(params, *, receipt=None):
    if params.raw.get("bad_data"):
        return [
            Problem(
                "customers",
                "customer_id",
                "unique",
                "customer_id is not unique",
                n_rows=2,
                examples=("C0000123",),
                fix="remove the duplicate rows",
            )
        ]
    return [Problem("loyalty", None, "absent", "no loyalty table", severity="warning")]


def _fake_fingerprint(params):
    return {
        "rows": {"customers": 3, "transactions": 17},
        "content_hash": "feedc0ffee123456",
        "as_of": "2025-12-31",
        "window_start": "2023-01-01",
        "source": "folder",
    }


def _fake_modules() -> dict[str, types.ModuleType]:
    config = types.ModuleType("analysis.config")
    config.load_params = _fake_load_params
    data = types.ModuleType("analysis.data")
    data.check = _fake_check
    data.fingerprint = _fake_fingerprint
    data.customer_ids = lambda params: set(IDS)
    data.customer_id_array = lambda params: sorted(IDS)
    return {"config": config, "data": data}


def _install_fakes(mp: pytest.MonkeyPatch | None = None) -> None:
    """Install the fakes (with ``mp`` in pytest; directly in a subprocess driver)."""
    for name, mod in _fake_modules().items():
        if mp is None:
            sys.modules[f"analysis.{name}"] = mod
            setattr(analysis, name, mod)
        else:
            mp.setitem(sys.modules, f"analysis.{name}", mod)
            mp.setattr(analysis, name, mod, raising=False)


def _params(path: Path, **raw) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.html"))}


def _run_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "run-log.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------------------
# End-to-end runs shared by several tests
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fakes():
    with pytest.MonkeyPatch.context() as mp:
        _install_fakes(mp)
        yield


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A folder shared by pytest-xdist workers, so each expensive run happens once."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    path = root / "runner-shared"
    path.mkdir(exist_ok=True)
    return path


def _once(shared: Path, name: str, produce) -> types.SimpleNamespace:
    """Run ``produce(work_dir)`` once across workers; return a frozen copy of its output.

    The copy (``<name>/after``) holds the output folder right after the run, so
    later runs in other tests cannot change what a test inspects.
    """
    done = shared / name / "result.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            work = shared / name / "work"
            work.mkdir(parents=True)
            result = produce(work)
            shutil.copytree(result.output_dir, shared / name / "after")
            done.write_text(json.dumps(dataclasses.asdict(result), default=str))
    raw = json.loads(done.read_text())
    raw["reports"] = [runner.ReportResult(**r) for r in raw["reports"]]
    result = runner.RunResult(**raw)
    after = shared / name / "after"
    return types.SimpleNamespace(
        result=result, out=after, html=_snapshot(after), index=(after / "index.html").read_text()
    )


@pytest.fixture(scope="module")
def first_run(fakes, shared):
    """Run 00_good and 01_flaky successfully."""

    def produce(work):
        pf = _params(work / "first.yaml", notebooks=["00_good", "01_flaky"])
        return runner.run(pf, out=work / "reports", notebooks_dir=NB_DIR, jobs=2)

    return _once(shared, "first", produce)


@pytest.fixture(scope="module")
def second_run(first_run, shared):
    """Rerun 01_flaky (now failing) and 02_leaks_id (leaks an id) over the first run's output."""

    def produce(work):
        shutil.copytree(first_run.out, work / "reports")
        pf = _params(work / "second.yaml", notebooks=["00_good", "01_flaky"], fail=["01_flaky"])
        return runner.run(
            pf, out=work / "reports", notebooks_dir=NB_DIR, only=["01_flaky", "02_leaks_id"]
        )

    return _once(shared, "second", produce)


def test_first_run_produces_index_and_html(first_run):
    r = first_run.result
    assert r.exit_code == 0 and r.status == "ok"
    assert [x.status for x in r.reports] == ["ok", "ok"]
    assert set(first_run.html) == {"00_good.html", "01_flaky.html", "index.html"}
    assert (first_run.out / "executed" / "00_good.ipynb").is_file()
    assert 'href="00_good.html"' in first_run.index
    assert 'href="01_flaky.html"' in first_run.index
    # No temporary files left behind.
    assert not list(first_run.out.rglob("*.tmp"))


def test_html_has_no_code_and_no_noise(first_run):
    page = first_run.html["00_good.html"].decode()
    assert "SECRET_CODE_CELL_MARKER" not in page  # a comment in a code cell
    assert "reporting.show_table" not in page
    assert "import matplotlib" not in page
    assert "noise for stderr" not in page  # stderr stripped
    assert "application/vnd.analysis.headline+json" not in page
    assert "Headline:" not in page  # headline records stripped
    assert "<script" not in page  # self-contained, nothing to execute
    assert "The end of the good report." in page  # markdown kept
    assert "<h1>Good report</h1>" in page and "Data as of 2025-12-31" in page


def test_html_embeds_images(first_run):
    page = first_run.html["00_good.html"].decode()
    m = re.search(r'<img[^>]+src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert m is not None
    png = base64.b64decode(m.group(1))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # setup_notebook: 7 x 4 inch figures at 100 dpi, trimmed by bbox_inches="tight".
    width, height = struct.unpack(">II", png[16:24])
    assert 500 <= width <= 700 and 250 <= height <= 400
    assert not re.search(r'<img[^>]+src="(?!data:)', page)  # no external image


def test_html_escapes_text_from_data_and_suppresses_small_groups(first_run):
    page = first_run.html["00_good.html"].decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img src=x" not in page
    assert "&lt;10" in page and "suppressed" in page  # the 3-customer group


def test_headlines_appear_in_index(first_run):
    assert "Customers: <strong>12,345</strong>" in first_run.index
    assert "Monthly churn: <strong>2.5%</strong>" in first_run.index
    assert "Flaky value: <strong>7</strong>" in first_run.index
    good = first_run.result.report("00_good")
    assert [h["name"] for h in good.headlines] == ["Customers", "Monthly churn"]


def test_provenance_in_every_report(first_run):
    for name in ("00_good.html", "01_flaky.html"):
        page = first_run.html[name].decode()
        assert "Provenance" in page
        assert "feedc0ffee123456" in page  # content hash
        assert "transactions" in page and ">17<" in page  # row counts
        assert f"analysis {analysis.__version__}" in page
        assert "timeout_seconds: 120" in page  # params as YAML
        assert "s3cret" not in page and "analyst:***@" in page  # password masked
        commit = re.search(r"<dt>Git commit</dt><dd>([^<]+)</dd>", page).group(1)
        assert commit == "unknown" or re.match(r"^[0-9a-f]{40}", commit)


def test_run_log_line_per_run(first_run):
    log = _run_log(first_run.out)
    first = log[0]
    assert first["exit_code"] == 0 and first["status"] == "ok"
    assert first["params_file"].endswith("first.yaml")
    assert first["reports"]["00_good"]["status"] == "ok"
    assert first["started"] <= first["finished"]


def test_failing_notebook_keeps_previous_html(first_run, second_run):
    r = second_run.result
    assert r.exit_code == 1 and r.status == "failed"
    flaky = r.report("01_flaky")
    assert flaky.status == "failed"
    # The last good HTML is byte-identical and still linked, marked stale.
    assert second_run.html["01_flaky.html"] == first_run.html["01_flaky.html"]
    assert flaky.html == "01_flaky.html"
    assert flaky.last_good == first_run.result.report("01_flaky").last_good
    stale = "stale: showing the last good report of " + runner.pretty_time(flaky.last_good)
    assert stale in second_run.index
    # The error is one line, in the index.
    assert flaky.error.startswith("ValueError: deliberate failure")
    assert "\n" not in flaky.error and "second line" not in flaky.error
    assert "ValueError: deliberate failure" in second_run.index
    # The failed attempt is kept for debugging; the good executed notebook stays.
    assert (second_run.out / "executed" / "01_flaky.failed.ipynb").is_file()
    assert (second_run.out / "executed" / "01_flaky.ipynb").is_file()


def test_reports_not_rerun_keep_their_row(second_run):
    assert 'href="00_good.html"' in second_run.index
    assert "Customers: <strong>12,345</strong>" in second_run.index
    assert len(_run_log(second_run.out)) >= 2
    assert _run_log(second_run.out)[1]["exit_code"] == 1
    assert set(_run_log(second_run.out)[1]["reports"]) == {"01_flaky", "02_leaks_id"}


def test_identifier_guard_refuses_to_publish(second_run):
    leak = second_run.result.report("02_leaks_id")
    assert leak.status == "failed"
    assert "customer id" in leak.error
    assert "02_leaks_id.html" not in second_run.html
    assert "C0000123" not in second_run.index  # the index does not repeat the id


def test_invalid_data_refuses_and_replaces_nothing(second_run, tmp_path):
    out = tmp_path / "reports"
    shutil.copytree(second_run.out, out)
    before = _snapshot(out)
    pf = _params(tmp_path / "bad.yaml", notebooks=["00_good", "01_flaky"], bad_data=True)
    result = runner.run(pf, out=out, notebooks_dir=NB_DIR)
    assert result.exit_code == 2 and result.status == "refused"
    after = _snapshot(out)
    assert {k: v for k, v in after.items() if k != "index.html"} == {
        k: v for k, v in before.items() if k != "index.html"
    }
    index = after["index.html"].decode()
    assert "refused" in index and "customer_id is not unique" in index
    assert "C0000123" not in index  # problem examples may be ids: not in the index
    assert 'href="00_good.html"' in index  # earlier reports still linked
    assert _run_log(out)[-1]["exit_code"] == 2


def test_invalid_params_exit_2(fakes, tmp_path):
    out = tmp_path / "reports"
    pf = _params(tmp_path / "invalid.yaml", invalid=True)
    assert runner.main(["--params", str(pf), "--out", str(out)]) == 2
    assert "expected an integer" in (out / "index.html").read_text()
    assert _run_log(out)[-1]["status"] == "refused"


def test_second_concurrent_run_exits_75(fakes, tmp_path):
    out = tmp_path / "reports"
    pf = _params(tmp_path / "p.yaml", notebooks=["00_good"])
    with report_runner._lock(out) as locked:
        assert locked
        result = runner.run(pf, out=out, notebooks_dir=NB_DIR)
    assert result.exit_code == 75
    assert _run_log(out)[-1]["status"] == "locked"
    assert not (out / "index.html").exists()


def test_unknown_notebook_refused(fakes, tmp_path):
    pf = _params(tmp_path / "p.yaml")
    result = runner.run(pf, out=tmp_path / "r", notebooks_dir=NB_DIR, only=["99_nope"])
    assert result.exit_code == 2
    assert "99_nope" in result.problems[0]


def test_timeout_fails_the_report(fakes, tmp_path):
    pf = _params(tmp_path / "p.yaml", notebooks=["03_slow"], timeout_seconds=2)
    result = runner.run(pf, out=tmp_path / "r", notebooks_dir=NB_DIR)
    assert result.exit_code == 1
    assert result.report("03_slow").error.startswith("timed out after 2 s")
    assert not (tmp_path / "r" / "03_slow.html").exists()


def test_sigterm_stops_run_and_keeps_previous_reports(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    previous = b"<html>previous good report</html>"
    (out / "03_slow.html").write_bytes(previous)
    pf = _params(tmp_path / "p.yaml", notebooks=["03_slow"], timeout_seconds=300)
    driver = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import test_runner
        test_runner._install_fakes()
        from analysis import runner
        sys.exit(runner.main(["--params", {str(pf)!r}, "--out", {str(out)!r},
                              "--notebooks-dir", {str(NB_DIR)!r}]))
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", driver], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    for line in proc.stdout:  # wait until the notebook has started
        lines.append(line)
        if "start    03_slow" in line:
            break
    time.sleep(3.0)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(lines) + rest
    assert (out / "03_slow.html").read_bytes() == previous
    index = (out / "index.html").read_text()
    assert "interrupted" in index
    assert _run_log(out)[-1]["status"] == "interrupted"
    assert not list(out.rglob("*.tmp"))
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"worker or kernel still running: {alive}"


def _tiny_world(folder: Path, *, duplicate: bool = False) -> None:
    """Write three customers and four purchases as CSV (contract tables)."""
    folder.mkdir()
    rows = [
        "customer_id,signup_date,churn_date,churn_reason,segment",
        "C0000001,2024-01-05,,,consumer",
        "C0000002,2024-02-10,2024-09-30,price,business",
        "C0000003,2024-03-15,,,consumer",
    ]
    if duplicate:
        rows.append(rows[1])
    (folder / "customers.csv").write_text("\n".join(rows) + "\n")
    (folder / "transactions.csv").write_text(
        "customer_id,date,amount\n"
        "C0000001,2024-01-20,10.5\n"
        "C0000002,2024-03-01,99.0\n"
        "C0000003,2024-04-01,5.25\n"
        "C0000001,2024-12-31,20.0\n"
    )


def test_with_real_config_and_data(tmp_path, monkeypatch):
    """The runner on the real analysis.config / analysis.data (not the fakes)."""
    for name in ("config", "data"):  # fresh real modules; the fakes come back afterwards
        monkeypatch.delattr(analysis, name, raising=False)
        monkeypatch.delitem(sys.modules, f"analysis.{name}", raising=False)
        importlib.import_module(f"analysis.{name}")
    _tiny_world(tmp_path / "data")
    _tiny_world(tmp_path / "broken", duplicate=True)
    for name, folder in (("good", "data"), ("broken", "broken")):
        (tmp_path / f"{name}.yaml").write_text(
            f"data: {{source: folder, path: {folder}, format: csv}}\n"
            "reports: {output_dir: reports, notebooks: [01_flaky], timeout_seconds: 300,"
            " jobs: 1, kernel_name: python3}\n"
        )
    out = tmp_path / "reports"

    result = runner.run(tmp_path / "good.yaml", notebooks_dir=NB_DIR)
    assert result.exit_code == 0, result
    assert result.output_dir == out
    page = (out / "01_flaky.html").read_text()
    assert "<dd>2024-12-31</dd>" in page  # as-of: the latest date in the data
    assert '>customers</td><td class="num">3<' in page  # row counts
    assert '>transactions</td><td class="num">4<' in page
    before = (out / "01_flaky.html").read_bytes()

    refused = runner.run(tmp_path / "broken.yaml", notebooks_dir=NB_DIR)
    assert refused.exit_code == 2
    assert (out / "01_flaky.html").read_bytes() == before
    index = (out / "index.html").read_text()
    assert "refused" in index and "C0000002" not in index


# --------------------------------------------------------------------------------------
# Units: privacy guard, atomic writes, notebook post-processing
# --------------------------------------------------------------------------------------


def test_scan_for_identifiers_finds_whole_tokens():
    ids = {"C0000123", "C0000124", "42", "12345"}
    page = (
        "<p>top: C0000123.</p><td>C00001245</td><td>xC0000124</td><td>42</td>"
        '<img src="data:image/png;base64,AAAC0000124AAAA">'
    )
    assert runner.scan_for_identifiers(page, ids) == ["C0000123"]
    # Escaped or tag-split text is still found.
    assert runner.scan_for_identifiers("<b>C0000124</b>&#x20;", ids) == ["C0000124"]
    assert runner.scan_for_identifiers("id&nbsp;C0000124&lt;", ids) == ["C0000124"]
    assert runner.scan_for_identifiers("nothing here", ids) == []
    assert runner.scan_for_identifiers("anything", []) == []


def test_identifiers_to_scan_skips_short_numbers():
    kept = runner.identifiers_to_scan(["C1", "C0000123", "23570", "123456789", None, 7])
    assert kept == {"C0000123", "123456789"}


def test_identifier_set_from_arrow_equals_the_plain_set_rules(monkeypatch):
    """The compact id set (Arrow ids ordered by hash) keeps exactly the ids the plain rules
    keep, finds them as whole tokens with their own punctuation and unicode, and confirms
    every hash hit against the id itself."""
    import pyarrow as pa

    from analysis.report import guard

    raw = ["C0000123", " C0000124 ", "ab", "1234567", "12345678", None, "acct-77/x", "Zoë-0042"]
    expected = {"C0000123", "C0000124", "12345678", "acct-77/x", "Zoë-0042"}
    for given in (raw, pa.array(raw), pa.chunked_array([raw[:3], raw[3:]])):
        kept = guard.identifiers_to_scan(given)
        assert kept == expected and len(kept) == 5 and set(kept) == expected
        assert "C0000123" in kept and "C000012" not in kept and 7 not in kept
    kept = guard.identifiers_to_scan(pa.array(raw))
    assert set(kept.alphabet) == {"-", "/", "ë"}
    page = "<td>acct-77/x</td> <td>Zoë-0042.</td> <td>acct-77/xy</td> 12345678"
    assert runner.scan_for_identifiers(page, kept) == ["12345678", "Zoë-0042", "acct-77/x"]
    # a hash hit that is not the id is no match: force every hash to collide
    forced = guard.IdentifierSet(["C0000123", "C0000124"])
    forced._hashes = np.zeros(2, dtype=np.uint64)
    monkeypatch.setattr(guard, "_hash_strings", lambda v: np.zeros(len(v), dtype=np.uint64))
    assert list(forced.contains_many(["C0000124", "C0000125"])) == [True, False]


def test_redact_identifiers():
    text = "DataError: duplicate customer_id C0000123 (and C0000124x)"
    assert runner.redact_identifiers(text, {"C0000123", "C0000124"}) == (
        "DataError: duplicate customer_id [customer id] (and C0000124x)"
    )


def test_pretty_time():
    assert runner.pretty_time("2026-11-24T03:44:04Z") == "2026-11-24 03:44 UTC"
    assert runner.pretty_time(None) == "–"


def test_one_line():
    assert runner.one_line("\x1b[31mValueError\x1b[0m: boom\n  more") == "ValueError: boom …"
    assert len(runner.one_line("x" * 1000)) == runner.MAX_ERROR_CHARS


def test_write_atomic_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    target.write_text("old")

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_outputs.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        runner.write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_write_atomic_replaces_and_keeps_mode(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")
    target.chmod(0o644)
    runner.write_atomic(target, "new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o644


def _executed_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# My title\n\nThe question."),
        nbformat.v4.new_code_cell("x = 1", outputs=[]),
        nbformat.v4.new_code_cell(
            "h()",
            outputs=[
                nbformat.v4.new_output(
                    "display_data",
                    data={
                        "application/vnd.analysis.headline+json": {"name": "A", "text": "1"},
                        "text/plain": "Headline: A: 1",
                    },
                ),
                nbformat.v4.new_output("stream", name="stderr", text="warning noise"),
                nbformat.v4.new_output("stream", name="stdout", text="kept output"),
            ],
        ),
    ]
    return nb


def test_collect_headlines_and_title():
    nb = _executed_notebook()
    assert runner.collect_headlines(nb) == [{"name": "A", "text": "1"}]
    assert runner.notebook_title(nb, "fallback") == "My title"
    assert runner.notebook_title(nbformat.v4.new_notebook(), "fallback") == "fallback"


def test_notebook_body_html_strips_code_headlines_stderr_and_title():
    nb = _executed_notebook()
    body = runner.notebook_body_html(nb)
    assert "kept output" in body and "The question." in body
    assert "warning noise" not in body and "Headline" not in body
    assert "x = 1" not in body and "h()" not in body
    assert "My title" not in body  # shown in the page header instead
    assert len(nb.cells[2].outputs) == 3  # the input notebook is not changed


def test_index_page_escapes_everything():
    reports = [
        runner.ReportResult(
            "00_a", "ok", title="A <b>", headlines=[{"name": "<i>", "text": "1 & 2"}]
        ),
        runner.ReportResult("01_b", "failed", error="E: <script>", html="01_b.html"),
    ]
    run = {
        "started": None,
        "finished": None,
        "status": "failed",
        "exit_code": 1,
        "params_file": "<p>.yaml",
        "problems": ["<u>warning</u>"],
    }
    page = runner.render_index_page(title="<T>", run=run, reports=reports)
    for raw in ("<b>", "<i>", "<script>", "<p>.yaml", "<u>", "<T>"):
        assert raw not in page
    assert "E: &lt;script&gt;" in page and "1 &amp; 2" in page
    assert "1 of 2 reports up to date" in page
    assert ">01_b</a>" in page  # no title: the name


def test_git_commit_unknown_outside_repo(tmp_path):
    assert runner.git_commit(tmp_path) == "unknown"


def test_parse_parameters():
    got = runner.parse_parameters([["as_of", "2025-06-30"], ["n", "3"], ["flag", "true"]])
    assert got == {"as_of": "2025-06-30", "n": 3, "flag": True}
    with pytest.raises(analysis.AnalysisError):
        runner.parse_parameters([["params_file", "x.yaml"]])


def test_main_rejects_zero_jobs(tmp_path):
    assert runner.main(["--params", str(tmp_path / "p.yaml"), "--jobs", "0"]) == 2


def test_parallel_workers_share_the_cores_instead_of_oversubscribing(monkeypatch):
    from analysis import runner as rn

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    env = rn.thread_env(2, {"PATH": "/bin"})
    assert {env[v] for v in rn.THREAD_VARS} == {"4"}
    assert env["PATH"] == "/bin"
    assert rn.thread_env(16, {})["OPENBLAS_NUM_THREADS"] == "1"
    # a limit the user set is kept
    assert rn.thread_env(2, {"OMP_NUM_THREADS": "3"})["OMP_NUM_THREADS"] == "3"
    assert "ANALYSIS_ENGINE_MEMORY" not in rn.thread_env(2, {})
    assert rn.thread_env(2, {}, engine_memory="2GB")["ANALYSIS_ENGINE_MEMORY"] == "2GB"


def test_duckdb_threads_follow_the_environment(monkeypatch, tmp_path):
    # the real modules (other tests here swap in stand-ins for analysis.*)
    config = importlib.import_module("analysis.config")
    data = importlib.import_module("analysis.data")
    if not hasattr(config, "params_from_dict") or not hasattr(data, "connect"):
        monkeypatch.delitem(sys.modules, "analysis.config", raising=False)
        monkeypatch.delitem(sys.modules, "analysis.data", raising=False)
        config = importlib.import_module("analysis.config")
        data = importlib.import_module("analysis.data")
    params = config.params_from_dict({"data": {"path": str(tmp_path)}})
    monkeypatch.setenv(data.THREADS_ENV, "1")
    monkeypatch.setenv(data.MEMORY_ENV, "1GB")
    con = data.connect(params)
    assert con.raw_sql("SELECT current_setting('threads')").fetchone()[0] == 1
    limit = con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit.replace(" ", "") in ("1GB", "953.6MiB")  # DuckDB reports 10^9 bytes in MiB
