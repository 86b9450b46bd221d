"""End to end: the real notebooks, the runner and the tiny sample world.

One session-scoped run of every report; then checks on the index, the HTML
(no code, no customer ids, provenance, escaped data text) and on refusal of
invalid data without touching the published reports.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis import runner

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="session")
def tiny_run(tiny_world, tmp_path_factory):
    base = tmp_path_factory.mktemp("pipeline")
    data_dir = base / "data"
    shutil.copytree(tiny_world.data_dir, data_dir)
    # A segment name that is also HTML must come out as text.
    cust = pd.read_parquet(data_dir / "customers.parquet")
    evil = "<img src=x onerror=alert(1)>"
    cust["segment"] = cust["segment"].where(cust.index % 7 != 0, evil)
    cust.to_parquet(data_dir / "customers.parquet")
    params = base / "params.yaml"
    params.write_text(
        "data:\n  path: data\nreports:\n  output_dir: reports\n  jobs: 2\n"
        "analysis:\n  min_group_size: 5\n"
    )
    result = runner.run(params, notebooks_dir=ROOT / "notebooks", kernel_name="python3")
    return base, params, result, set(cust["customer_id"].astype(str)), evil


def test_every_report_is_produced_and_indexed(tiny_run):
    base, _, result, _, _ = tiny_run
    assert result.exit_code == 0, [(r.name, r.error) for r in result.reports]
    index = (base / "reports" / "index.html").read_text()
    for name in NOTEBOOKS:
        assert (base / "reports" / f"{name}.html").is_file()
        assert f'href="{name}.html"' in index
    assert (base / "reports" / "run-log.jsonl").read_text().count("\n") == 1


def test_html_has_no_code_and_carries_provenance(tiny_run):
    base, _, _, _, _ = tiny_run
    page = (base / "reports" / "00_kpi_dashboard.html").read_text()
    assert "load_study_data" not in page and "import " not in page
    assert "data:image/png;base64" in page
    for needle in ("content hash", "commit", "params"):
        assert needle.lower() in page.lower()


def test_html_holds_no_customer_id(tiny_run):
    base, _, _, ids, _ = tiny_run
    pattern = re.compile("|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True)))
    for f in (base / "reports").glob("*.html"):
        hits = pattern.findall(f.read_text())
        assert hits == [], f"{f.name} contains customer ids {hits[:3]}"


def test_text_from_data_is_escaped(tiny_run):
    base, _, _, _, evil = tiny_run
    for f in (base / "reports").glob("*.html"):
        assert evil not in f.read_text(), f"{f.name} contains unescaped data text"


def test_invalid_data_is_refused_and_reports_are_kept(tiny_run):
    base, params, _, _, _ = tiny_run
    before = {
        f.name: f.read_bytes() for f in (base / "reports").glob("*.html") if f.name != "index.html"
    }
    tx = pd.read_parquet(base / "data" / "transactions.parquet")
    bad = pd.concat([tx, tx.head(3).assign(customer_id="NOBODY")])
    bad_dir = base / "data_bad"
    shutil.copytree(base / "data", bad_dir)
    bad.to_parquet(bad_dir / "transactions.parquet")
    params.write_text(params.read_text().replace("path: data\n", "path: data_bad\n"))
    try:
        result = runner.run(
            params,
            notebooks_dir=ROOT / "notebooks",
            kernel_name="python3",
            only=["00_kpi_dashboard"],
        )
    finally:
        params.write_text(params.read_text().replace("path: data_bad\n", "path: data\n"))
    assert result.exit_code == 2
    after = {
        f.name: f.read_bytes() for f in (base / "reports").glob("*.html") if f.name != "index.html"
    }
    assert after == before
    assert "customer_id" in (base / "reports" / "index.html").read_text()


def test_rerun_on_the_same_data_gives_identical_numbers(tiny_run, tmp_path):
    """Same data and params twice: identical headline numbers and identical CRM export."""
    base, params, first, _, _ = tiny_run
    out2 = tmp_path / "again"
    second = runner.run(params, notebooks_dir=ROOT / "notebooks", kernel_name="python3", out=out2)
    assert second.exit_code == 0
    h1 = {r.name: r.headlines for r in first.reports}
    h2 = {r.name: r.headlines for r in second.reports}
    assert h1 == h2 and any(h1.values())
    e1 = sorted((base / "reports" / "exports").glob("*.csv"))
    e2 = sorted((out2 / "exports").glob("*.csv"))
    assert [p.name for p in e1] == [p.name for p in e2] and e1
    for a, b in zip(e1, e2, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_percentage_headlines_are_percentages_of_a_whole(tiny_run):
    # a share passed as 100 x share with unit "%" was shown as "3,560.1%" on the index
    _, _, result, _, _ = tiny_run
    shares = [h for r in result.reports for h in r.headlines if h.get("unit") == "%"]
    assert shares, "no percentage headline to check"
    for h in shares:
        assert 0 <= h["value"] <= 1, h
        head = h["text"].split(" (")[0]  # "66% (60%–72%)": the estimate, then its interval
        assert float(head.rstrip("%").replace(",", "")) <= 100, h
