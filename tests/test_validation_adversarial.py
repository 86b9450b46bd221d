"""Inputs that used to be accepted but analysed wrongly, and settings that cannot fit the data.

Each test builds a small generated world (300 customers, 2023-01-01 to 2025-12-31;
``analysis.synth``), corrupts one thing the way real extracts get corrupted, and
checks that validation names the table, the column, the count, examples and the fix,
without a traceback. Expected counts are the rows the test itself injects; expected
dates come from the generator's truth file or from Python's own date handling, never
from the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import config, data, synth
from analysis.data import dates, table_checks, validation
from analysis.errors import DataError, ParamsError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """The clean world as CSV files (written once per module)."""
    d = tmp_path_factory.mktemp("adv_base") / "data"
    synth.write(synth.generate(n_customers=300, seed=1), d, format="csv")
    return d


@pytest.fixture
def world(base, tmp_path):
    """Return a function (edit, params) -> params file of a copy of the clean world."""

    def make(edit=None, params: str = "", *, keep_truth: bool = False) -> Path:
        d = tmp_path / "data"
        if d.exists():
            shutil.rmtree(d)
        shutil.copytree(base, d)
        if not keep_truth:
            (d / "truth.json").unlink()
        if edit is not None:
            edit(d)
        p = tmp_path / "params.yaml"
        p.write_text("data:\n  path: data\n" + params)
        return p

    return make


def _append(name: str, *lines: str):
    def edit(d: Path) -> None:
        with open(d / name, "a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))

    return edit


def _check(p: Path):
    return data.check(config.load_params(p))


def _only(problems, rule):
    found = [x for x in problems if x.rule == rule]
    assert len(found) == 1, [str(x) for x in problems]
    return found[0]


def _truth_window(base: Path) -> dict:
    return json.loads((base / "truth.json").read_text())["window"]


def _validate_cli(p: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analysis", "validate", "--params", str(p)],
        capture_output=True,
        text=True,
    )


# --------------------------------------------------------------------------------------
# Future and implausible dates; the default as-of date
# --------------------------------------------------------------------------------------


def test_a_transaction_dated_2099_is_refused_not_taken_as_the_as_of_date(world):
    p = world(_append("transactions.csv", "C0000001,2099-01-01,10.0,1.0,online"))
    x = _only(_check(p), "after_run_date")
    assert (x.table, x.column, x.n_rows, x.severity) == ("transactions", "date", 1, "error")
    assert "2099-01-01" in x.examples[0] and "C0000001" in x.examples[0]
    assert "future_dates_allowed" in x.fix
    r = _validate_cli(p)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "transactions.date" in r.stderr


def test_allowed_future_dates_do_not_move_the_default_as_of_date(world, base):
    want = dt.date.fromisoformat(_truth_window(base)["as_of"])  # generator's last day
    p = world(
        _append("experience.csv", "C0000001,2031-05-01,survey,service,False,4,9,2,,,,"),
        "  future_dates_allowed: true\n",
    )
    x = _only(_check(p), "out_of_window")
    assert (x.table, x.column, x.n_rows, x.severity) == ("experience", "date", 1, "error")
    assert f"after the as-of date {want}" in x.message and "2031-05-01" in x.message
    # with the drop policy, the report runs as of the generator's last day without the row
    p = world(
        _append("experience.csv", "C0000001,2031-05-01,survey,service,False,4,9,2,,,,"),
        "  future_dates_allowed: true\n  out_of_window_rows: drop\n",
    )
    src = data.load(config.load_params(p))
    assert src.as_of == want
    clean = pd.read_csv(base / "experience.csv")
    assert src.tables["experience"].count().execute() == len(clean)


def test_the_default_as_of_date_is_the_latest_date_on_clean_data(world, base):
    p = world()
    src = data.load(config.load_params(p))
    latest = max(
        pd.to_datetime(pd.read_csv(base / f)[c]).max()
        for f, c in (
            ("transactions.csv", "date"),
            ("experience.csv", "date"),
            ("customers.csv", "signup_date"),
            ("customers.csv", "churn_date"),
        )
    )
    assert src.as_of == latest.date() == dt.date.fromisoformat(_truth_window(base)["as_of"])
    assert src.window_start == dt.date.fromisoformat(_truth_window(base)["start"])
    assert src.problems == []


def test_a_typo_decades_early_does_not_open_the_window(world, base):
    # customer C0000002 signed up in 2017; a 1999 purchase is before signup AND far before the
    # bulk of the data; with the drop policy the window must still start with the generator's
    p = world(
        _append("transactions.csv", "C0000002,1999-05-01,10.0,1.0,online"),
        "  out_of_window_rows: drop\n",
    )
    src = data.load(config.load_params(p))
    assert src.window_start == dt.date.fromisoformat(_truth_window(base)["start"])
    assert any(x.rule == "out_of_window" and "1999-05-01" in x.message for x in src.problems)


def test_dates_before_1900_and_an_as_of_after_today_are_errors(world):
    c = "C9999999,0024-03-01,,,consumer,medium,north,referral"
    x = _only(_check(world(_append("customers.csv", c))), "implausible_date")
    assert (x.table, x.column, x.n_rows) == ("customers", "signup_date", 1)
    today = dt.date.today()
    later = today + dt.timedelta(days=30)
    x = _only(_check(world(params=f"  as_of: {later}\n")), "after_run_date")
    assert (x.table, x.column) == ("data", "as_of") and str(today) in x.message


def test_run_date_is_todays_date(world, monkeypatch):
    # dates up to the run date pass; one day later they are refused
    monkeypatch.setattr(table_checks, "_today", lambda: dt.date(2025, 12, 30))
    got = [x for x in _check(world()) if x.rule == "after_run_date"]
    assert {x.table for x in got} == {"transactions", "experience"}
    assert all(x.n_rows > 0 and "2025-12-31" in x.examples[0] for x in got)


def test_left_date_after_the_as_of_date_is_flagged(world):
    p = world(
        _append("loyalty.csv", "C0000003,2024-03-11,silver,2026-06-01,10.0,0.0"),
        "  as_of: 2025-12-31\n",
    )
    x = [p for p in _check(p) if p.table == "loyalty" and p.column == "left_date"]
    assert [(p.rule, p.n_rows) for p in x] == [("future", 1)]


@pytest.mark.parametrize(
    ("days", "counts", "want"),
    [
        # one row 70 years after a dense bulk: cut (the bulk ends on day 1000)
        ([*range(900, 1001), 1000 + 70 * 365], [20] * 101 + [1], 1000),
        # two clusters beyond it (years apart): both cut, not only the farthest
        ([*range(900, 1001), 3000, 25000], [20] * 101 + [5, 5], 1000),
        # the bulk ends on a Friday, three rows on Sunday: a quiet weekend, never cut
        ([*range(900, 1001), 1002], [1000] * 101 + [3], 1002),
        # tiny data, the last row 3 months after the previous one: too sparse to call it odd
        ([0, 30, 60, 90, 180], [3, 3, 3, 2, 1], 180),
        # a trickle 1-59 days past the end (the generator's dirty world): cut at the end
        ([*range(900, 1001), 1005, 1030, 1058], [20] * 101 + [1, 1, 1], 1000),
    ],
)
def test_robust_end_cuts_only_a_handful_of_rows_far_beyond_a_dense_bulk(days, counts, want):
    # expected values worked out by hand from the rule in analysis.data.dates
    got = dates.robust_end(np.array(days), np.array(counts))
    assert got.date == dt.date(1970, 1, 1) + dt.timedelta(days=want)
    assert got.raw == dt.date(1970, 1, 1) + dt.timedelta(days=max(days))
    mirrored = dates.robust_start(-np.array(days), np.array(counts))
    assert mirrored.date == dt.date(1970, 1, 1) - dt.timedelta(days=want)


def test_fingerprint_reports_the_robust_as_of_date(world, base):
    p = world(
        _append("transactions.csv", "C0000001,2099-01-01,10.0,1.0,online"),
        "  future_dates_allowed: true\n",
    )
    fp = data.fingerprint(config.load_params(p))
    assert fp["as_of"] == _truth_window(base)["as_of"]


# --------------------------------------------------------------------------------------
# Non-finite and absurd numbers
# --------------------------------------------------------------------------------------


def test_inf_nan_and_overflowing_amounts_are_errors(world):
    p = world(
        _append(
            "transactions.csv",
            "C0000001,2024-01-01,inf,1.0,online",
            "C0000001,2024-01-02,-Infinity,1.0,online",
            "C0000002,2024-01-03,1e400,1.0,online",
            "C0000002,2024-01-04,NaN,1.0,online",
        )
    )
    x = _only(_check(p), "non_finite")
    assert (x.table, x.column, x.n_rows, x.severity) == ("transactions", "amount", 4, "error")
    assert set(x.examples) == {"inf", "-Infinity", "1e400", "NaN"}
    assert "empty" in x.fix


def test_nan_in_an_optional_score_is_an_error(world):
    p = world(_append("experience.csv", "C0000001,2023-02-27,survey,service,False,NaN,9,2,,,,"))
    x = _only(_check(p), "non_finite")
    assert (x.table, x.column, x.n_rows) == ("experience", "csat", 1)


def test_non_finite_values_in_parquet_columns(world):
    def edit(d: Path) -> None:
        tx = pd.read_csv(d / "transactions.csv")
        table = pa.Table.from_pandas(tx, preserve_index=False)
        amount = tx["amount"].to_numpy().copy()
        amount[:2] = [np.inf, np.nan]
        table = table.set_column(2, "amount", pa.array(amount, from_pandas=False))
        pq.write_table(table, d / "transactions.parquet")
        (d / "transactions.csv").unlink()
        ex = pd.read_csv(d / "experience.csv")
        contacts = ex["contacts_to_resolve"].astype(float).to_numpy().copy()
        i = int(np.flatnonzero(~np.isnan(contacts))[0])
        contacts[i] = np.inf  # a count column stored as float: inf cannot become an integer
        et = pa.Table.from_pandas(ex.drop(columns="contacts_to_resolve"), preserve_index=False)
        # NaN -> null (an empty cell), inf stays
        et = et.append_column("contacts_to_resolve", pa.array(contacts, from_pandas=True))
        pq.write_table(et, d / "experience.parquet")
        (d / "experience.csv").unlink()

    probs = _check(world(edit))
    x = _only(probs, "non_finite")
    assert (x.table, x.column, x.n_rows) == ("transactions", "amount", 2)
    y = _only(probs, "type")
    assert (y.table, y.column, y.n_rows) == ("experience", "contacts_to_resolve", 1)


def test_an_amount_of_1e18_is_a_warning_or_an_error_under_a_param(world, base):
    line = "C0000001,2024-01-01,1e18,1.0,online"
    x = _only(_check(world(_append("transactions.csv", line))), "extreme")
    assert (x.table, x.column, x.n_rows, x.severity) == ("transactions", "amount", 1, "warning")
    assert x.examples == ("1e+18 (customer C0000001)",)
    # the limit is 1,000 x the upper quartile of the magnitudes (numpy's exact quartile as the
    # reference; the engine's is approximate, so 5% tolerance)
    q3 = np.quantile(pd.read_csv(base / "transactions.csv")["amount"].abs(), 0.75)
    limit = float(re.search(r"beyond \+-([\d,.e+]+),", x.message).group(1).replace(",", ""))
    assert limit == pytest.approx(1000 * q3, rel=0.05)
    p = world(_append("transactions.csv", line), "  extreme_values: error\n")
    assert _only(_check(p), "extreme").severity == "error"
    with pytest.raises(DataError, match="transactions.amount"):
        data.load(config.load_params(p))


def test_clean_heavy_tailed_amounts_raise_no_extreme_value_warning(world):
    assert [x for x in _check(world()) if x.rule == "extreme"] == []


# --------------------------------------------------------------------------------------
# Encodings, headers, unreadable lines
# --------------------------------------------------------------------------------------


def _latin1_customers(d: Path) -> None:
    # the 40th customer onwards: region "north" becomes "Nörth", written in Latin-1
    text = (d / "customers.csv").read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    lines[40:] = [x.replace(",north,", ",Nörth,") for x in lines[40:]]
    (d / "customers.csv").write_bytes("".join(lines).encode("latin-1"))


def _first_line_with(path: Path, needle: bytes) -> int:
    """1-based number of the first line of ``path`` holding ``needle`` (the reference)."""
    for i, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_a_latin1_file_names_the_file_the_line_and_the_encoding(world):
    p = world(_latin1_customers)
    line = _first_line_with(p.parent / "data" / "customers.csv", "Nörth".encode("latin-1"))
    assert line > 41
    x = _only(_check(p), "encoding")
    assert (x.table, x.severity) == ("customers", "error")
    assert "customers.csv" in x.message and f"line {line}" in x.message
    assert "0xF6" in x.message  # ö in Latin-1
    assert "data.encoding" in x.fix and "cp1252" in x.fix
    assert "Nörth" in x.examples[0]
    r = _validate_cli(p)
    assert r.returncode == 2 and "Traceback" not in r.stderr and f"line {line}" in r.stderr


def test_data_encoding_reads_a_latin1_or_cp1252_file(world):
    src = data.load(config.load_params(world(_latin1_customers, "  encoding: latin-1\n")))
    assert "Nörth" in set(src.tables["customers"].region.execute())

    def cp1252(d: Path) -> None:
        text = (d / "customers.csv").read_text(encoding="utf-8").replace("west", "west €", 1)
        (d / "customers.csv").write_bytes(text.encode("cp1252"))

    src = data.load(config.load_params(world(cp1252, "  encoding: cp1252\n")))
    assert "west €" in set(src.tables["customers"].region.execute())


def test_a_utf16_file_is_read_by_its_byte_order_mark_and_without_one_it_is_named(world, base):
    def utf16(d: Path) -> None:  # Python's utf-16 codec writes a byte-order mark
        text = (d / "loyalty.csv").read_text(encoding="utf-8")
        (d / "loyalty.csv").write_bytes(text.encode("utf-16"))

    assert _check(world(utf16)) == []
    src = data.load(config.load_params(world(utf16)))
    assert src.tables["loyalty"].count().execute() == len(pd.read_csv(base / "loyalty.csv"))

    def utf16_no_bom(d: Path) -> None:
        text = (d / "loyalty.csv").read_text(encoding="utf-8")
        (d / "loyalty.csv").write_bytes(text.encode("utf-16-le"))

    x = _only(_check(world(utf16_no_bom)), "encoding")
    assert x.table == "loyalty" and "utf-16-le" in x.fix
    assert _check(world(utf16_no_bom, "  encoding: utf-16-le\n")) != []  # other files are UTF-8


@pytest.mark.parametrize("header", ["amount,amount", "Amount,amount"])
def test_a_duplicated_header_is_refused(world, header):
    def edit(d: Path) -> None:
        text = (d / "transactions.csv").read_text()
        (d / "transactions.csv").write_text(text.replace("amount,margin", header, 1))

    x = _only(_check(world(edit)), "duplicate_column")
    assert (x.table, x.severity) == ("transactions", "error")
    assert "transactions.csv" in x.message and "amount" in x.message.lower()


def test_a_duplicated_parquet_column_is_refused(world):
    def edit(d: Path) -> None:
        tx = pd.read_csv(d / "transactions.csv")
        t = pa.table(
            [pa.array(tx.customer_id), pa.array(tx.date), pa.array(tx.amount), pa.array(tx.margin)],
            names=["customer_id", "date", "amount", "amount"],
        )
        pq.write_table(t, d / "transactions.parquet")
        (d / "transactions.csv").unlink()

    x = _only(_check(world(edit)), "duplicate_column")
    assert x.table == "transactions" and "transactions.parquet" in x.message


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("C0000001,2024-01-01,5,1,online,extra", "Found: 6"),
        ('C0000001,2024-01-01,"5,1,online', "quote"),
    ],
)
def test_a_ragged_or_unquoted_line_names_the_table_and_line(world, line, reason):
    p = world(_append("transactions.csv", line))
    n_lines = sum(1 for _ in open(p.parent / "data" / "transactions.csv"))
    x = _only(_check(p), "unreadable")
    assert x.table == "transactions" and f"line {n_lines:,}" in x.message and reason in x.message
    assert x.examples == (line,)  # the raw line goes to the examples, never to the message


def test_a_semicolon_delimited_file_is_read(world):
    def edit(d: Path) -> None:
        text = (d / "transactions.csv").read_text()
        (d / "transactions.csv").write_text(text.replace(",", ";"))

    assert _check(world(edit)) == []


# --------------------------------------------------------------------------------------
# Time zones
# --------------------------------------------------------------------------------------


STAMPS = {
    "C0000001,2023-01-10,": "2023-01-10T23:30:00-05:00",  # offset: converted
    "C0000001,2023-01-26,": "2023-01-26 23:30:00",  # no offset: the date as written
    "C0000001,2023-02-": "2023-02-05T00:30:00+02:00",  # offset the other way
}


def _stamped(d: Path) -> None:
    text = (d / "transactions.csv").read_text()
    for prefix, stamp in STAMPS.items():
        i = text.index(prefix)
        j = text.index(",", i + len("C0000001,"))
        text = text[: i + len("C0000001,")] + stamp + text[j:]
    (d / "transactions.csv").write_text(text)


def _expected_dates(tz: str) -> list[dt.date]:
    """The reference: Python's own conversion of each stamp to ``tz``."""
    out = []
    for stamp in STAMPS.values():
        t = dt.datetime.fromisoformat(stamp)
        out.append(t.astimezone(ZoneInfo(tz)).date() if t.tzinfo else t.date())
    return sorted(out)


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Tokyo"])
def test_timestamps_with_an_offset_take_the_date_in_data_timezone(world, tz):
    p = world(_stamped, f"  timezone: {tz}\n")
    src = data.load(config.load_params(p))
    tx = src.tables["transactions"]
    got = tx.filter(tx.customer_id == "C0000001").date.execute()
    got = sorted(pd.to_datetime(got).dt.date)
    want = _expected_dates(tz)
    assert all(w in got for w in want), (want, got[:5])
    if tz == "UTC":
        assert dt.date(2023, 1, 11) in got  # 23:30 at -05:00 is the next day in UTC


def test_timezone_aware_parquet_timestamps_use_data_timezone(world):
    def edit(d: Path) -> None:
        tx = pd.read_csv(d / "transactions.csv")
        ts = pd.to_datetime(tx["date"]).dt.tz_localize("America/New_York") + pd.Timedelta(
            hours=23, minutes=30
        )
        tx["date"] = ts
        tx.to_parquet(d / "transactions.parquet", index=False)
        (d / "transactions.csv").unlink()

    # every purchase at 23:30 New York time: the next calendar day in UTC (the default)
    src = data.load(config.load_params(world(edit)))
    tx = src.tables["transactions"]
    got = sorted(pd.to_datetime(tx.filter(tx.customer_id == "C0000001").date.execute()).dt.date)
    assert got[0] == dt.date(2023, 1, 11)  # written 2023-01-10 (the generator's first purchase)
    src = data.load(config.load_params(world(edit, "  timezone: America/New_York\n")))
    tx = src.tables["transactions"]
    got = sorted(pd.to_datetime(tx.filter(tx.customer_id == "C0000001").date.execute()).dt.date)
    assert got[0] == dt.date(2023, 1, 10)


def test_an_unknown_timezone_or_encoding_is_a_params_error(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("data:\n  path: d\n  timezone: Europe/Berln\n  encoding: latin-9x\n")
    with pytest.raises(ParamsError) as info:
        config.load_params(p)
    text = str(info.value)
    assert "Europe/Berlin" in text and "data.timezone" in text
    assert "data.encoding" in text and "latin-1" in text


# --------------------------------------------------------------------------------------
# Params that must fit the data
# --------------------------------------------------------------------------------------


def test_calibration_weeks_longer_than_the_data_are_caught_by_validate(world):
    p = world(params="value:\n  calibration_weeks: 5000\n")
    x = _only(_check(p), "params_vs_data")
    assert (x.table, x.column, x.severity) == ("value", "calibration_weeks", "error")
    assert "156 weeks" in x.message  # 2023-01-01..2025-12-31 is 1,096 days = 156 weeks
    r = _validate_cli(p)
    assert r.returncode == 2 and "value.calibration_weeks" in r.stderr


def test_holdout_and_horizons_beyond_the_data(world):
    p = world(
        params="value:\n  calibration_weeks: 100\n  holdout_weeks: 100\n"
        "survival:\n  horizons_months: [3, 200]\n  rmst_horizon_months: 500\n"
        "loyalty:\n  landmarks_months: [300]\n  event_window: [-60, 6]\n"
        "experience:\n  lags: [1, 200]\n  km_landmark_months: 60\n"
    )
    got = {(x.table, x.column) for x in _check(p) if x.severity == "error"}
    assert got == {
        ("value", "holdout_weeks"),
        ("survival", "horizons_months"),
        ("survival", "rmst_horizon_months"),
        ("loyalty", "landmarks_months"),
        ("loyalty", "event_window"),
        ("experience", "lags"),
        ("experience", "km_landmark_months"),
    }


def test_every_column_naming_setting_must_name_an_existing_column(world):
    p = world(
        params="analysis:\n  group: regoin\n"
        "survival:\n  group: regoin\n  cox_covariates: [segment, tier]\n  cox_strata: [chanel]\n"
        "loyalty:\n  heterogeneity_by: valu_tier\n  covariates: [prior_spend, prior_spnd]\n"
        "experience:\n  cox_covariates: [value_tier, reigon]\n  cox_strata: segmnt\n"
        "value:\n  strategic_column: is_vip\n"
    )
    probs = [x for x in _check(p) if x.rule == "params_vs_data"]
    got = {(x.table, x.column, x.examples[0]) for x in probs}
    assert got == {
        ("analysis", "group", "regoin"),
        ("survival", "group", "regoin"),
        ("survival", "cox_covariates", "tier"),
        ("survival", "cox_strata", "chanel"),
        ("loyalty", "heterogeneity_by", "valu_tier"),
        ("loyalty", "covariates", "prior_spnd"),
        ("experience", "cox_covariates", "reigon"),
        ("experience", "cox_strata", "segmnt"),
        ("value", "strategic_column", "is_vip"),
    }
    assert all(x.severity == "error" for x in probs)
    by = {(x.table, x.column): x for x in probs}
    x = by[("survival", "group")]
    assert "did you mean 'region'" in x.fix and "region" in x.message and "segment" in x.message
    assert "did you mean 'value_tier'" in by[("survival", "cox_covariates")].fix


def test_levels_named_by_settings_must_occur_in_the_data(world):
    p = world(
        params="survival:\n  cox_covariates: [segment, value_tier]\n"
        "  reference_levels: {segment: consumr, region: north}\n"
        "value:\n  strategic_segments: [busines]\n  strategic_column: region\n"
    )
    probs = {(x.table, x.column, x.examples[0]): x for x in _check(p) if x.severity == "error"}
    assert "did you mean 'consumer'" in probs[("survival", "reference_levels", "consumr")].fix
    assert ("survival", "reference_levels", "region") in probs  # not a Cox covariate
    assert "did you mean 'business'" in probs[("value", "strategic_segments", "busines")].fix
    assert ("value", "strategic_column", "central") in probs  # not a true/false column


def test_auto_defaults_follow_the_columns_and_an_explicit_missing_column_is_an_error(world):
    def drop_value_tier(d: Path) -> None:
        c = pd.read_csv(d / "customers.csv", dtype=str, keep_default_na=False)
        c.drop(columns="value_tier").to_csv(d / "customers.csv", index=False)

    # the column-naming defaults are auto: a customers table without value_tier is fine
    assert [x for x in _check(world(drop_value_tier)) if x.rule == "params_vs_data"] == []
    # the same column written in the file is an error that lists the columns there
    p = world(drop_value_tier, "survival:\n  cox_covariates: [segment, value_tier]\n")
    x = [x for x in _check(p) if x.table == "survival"]
    assert [(x.column, x.severity) for x in x] == [("cox_covariates", "error")]
    assert "region" in x[0].message and "channel" in x[0].message and "auto" in x[0].fix


def test_a_default_that_does_not_fit_is_a_warning_not_an_error(world):
    # a 12-month window (2025): the default 12-month experience landmark does not fit,
    # and nobody chose it
    p = world(params="  window_start: 2025-01-01\n")
    probs = [x for x in _check(p) if x.rule == "params_vs_data"]
    assert {(x.table, x.column, x.severity) for x in probs} == {
        ("experience", "km_landmark_months", "warning"),
    }
    # the same setting written in the file is an error
    p = world(params="  window_start: 2025-01-01\nexperience:\n  km_landmark_months: 12\n")
    x = _only(_check(p), "params_vs_data")
    assert (x.table, x.column, x.severity) == ("experience", "km_landmark_months", "error")
    # a KPI normal range is checked when chosen: 12 months need more than the 12 of 2025
    p = world(params="  window_start: 2025-01-01\nkpi:\n  normal_range_periods: 12\n")
    x = [x for x in _check(p) if x.table == "kpi"]
    assert [(x.column, x.severity) for x in x] == [("normal_range_periods", "error")]
    assert "12 complete months" in x[0].message


def test_windows_the_data_cannot_hold_are_caught(world):
    p = world(params="kpi:\n  normal_range_periods: 40\nexperience:\n  window_days: 2000\n")
    got = {(x.table, x.column): x for x in _check(p) if x.rule == "params_vs_data"}
    assert set(got) == {("kpi", "normal_range_periods"), ("experience", "window_days")}
    # 2023-01-01..2025-12-31: 1,096 days, 36 months (30.4375 days each)
    assert "1096 days" in got[("experience", "window_days")].message
    assert "36 complete months" in got[("kpi", "normal_range_periods")].message


def test_a_group_column_with_too_many_or_only_tiny_groups_is_warned(world):
    def add(d: Path) -> None:
        c = pd.read_csv(d / "customers.csv", dtype=str, keep_default_na=False)
        c["postcode"] = [f"{10000 + i}" for i in range(len(c))]  # one value per customer
        c["vip"] = ["yes" if i < 5 else "no" for i in range(len(c))]  # 5 and 295 customers
        c.to_csv(d / "customers.csv", index=False)

    p = world(add, "analysis:\n  group: postcode\nsurvival:\n  group: vip\n")
    got = {(x.table, x.column): x for x in _check(p) if x.rule == "params_vs_data"}
    assert set(got) == {("analysis", "group"), ("survival", "group")}
    assert all(x.severity == "warning" for x in got.values())
    assert "300 distinct values" in got[("analysis", "group")].message
    assert "fewer than two values of customers.vip" in got[("survival", "group")].message


def test_a_column_mapping_to_a_missing_column_names_it_and_lists_the_file(world):
    def rename(d: Path) -> None:
        text = (d / "transactions.csv").read_text()
        (d / "transactions.csv").write_text(text.replace("amount,margin", "amount_eur,margin", 1))

    p = world(rename, "  columns: {transactions: {amount: amount_euro}}\n")
    x = _only(_check(p), "missing_mapped_column")
    assert (x.table, x.column) == ("transactions", "amount")
    assert "'amount_euro'" in x.message and "amount_eur, margin" in x.message
    assert "did you mean 'amount_eur'" in x.fix


def test_a_mapping_onto_an_existing_contract_column_is_refused(world):
    def rename(d: Path) -> None:
        text = (d / "transactions.csv").read_text()
        (d / "transactions.csv").write_text(text.replace("amount,margin", "amount,value", 1))

    x = _only(
        _check(world(rename, "  columns: {transactions: {amount: value}}\n")), "mapping_conflict"
    )
    assert (x.table, x.column) == ("transactions", "amount")


def test_a_missing_required_column_suggests_the_closest(world):
    def rename(d: Path) -> None:
        text = (d / "transactions.csv").read_text()
        (d / "transactions.csv").write_text(text.replace("amount,margin", "Amount,margin", 1))

    x = _only(_check(world(rename)), "missing_column")
    assert "Amount" in x.message and "{amount: Amount}" in x.fix


# --------------------------------------------------------------------------------------
# What validate found: tables, files that map to no table
# --------------------------------------------------------------------------------------


def _members_feedback(d: Path) -> None:
    (d / "loyalty.csv").rename(d / "members.csv")
    (d / "experience.csv").rename(d / "feedback.csv")


def test_unmapped_files_are_reported_with_the_mapping_to_use(world):
    probs = _check(world(_members_feedback))
    got = {x.table: x for x in probs if x.rule == "unmapped_file"}
    assert set(got) == {"loyalty", "experience"}
    assert "data.tables: {loyalty: members}" in got["loyalty"].fix
    assert "data.tables: {experience: feedback}" in got["experience"].fix
    assert all(x.severity == "warning" for x in got.values())
    mapped = world(_members_feedback, "  tables: {loyalty: members, experience: feedback}\n")
    assert _check(mapped) == []


def test_a_table_mapping_to_a_missing_file_is_an_error(world):
    x = _only(_check(world(_members_feedback, "  tables: {loyalty: member}\n")), "missing_file")
    assert x.table == "loyalty" and "did you mean 'members'" in x.fix


def test_a_missing_required_table_points_at_the_likely_file(world):
    p = world(lambda d: (d / "transactions.csv").rename(d / "orders.csv"))
    x = _only(_check(p), "missing_table")
    assert x.table == "transactions" and "data.tables: {transactions: orders}" in x.fix


def test_validate_prints_tables_rows_and_date_ranges(world, base):
    r = _validate_cli(world(keep_truth=True))
    assert r.returncode == 0, r.stderr
    rows = {
        name: sum(1 for _ in open(base / f"{name}.csv")) - 1
        for name in ("customers", "transactions", "loyalty", "experience")
    }
    for name, n in rows.items():
        assert f"{name}.csv" in r.stdout and f"{n:,} rows" in r.stdout
    tx = pd.read_csv(base / "transactions.csv")
    assert f"date {tx.date.min()} .. {tx.date.max()}" in r.stdout
    assert "truth.json" in r.stdout  # listed as not read
    assert f"as-of date {_truth_window(base)['as_of']}" in r.stdout


def test_the_runner_refuses_the_same_problems(world, tmp_path):
    p = world(_append("transactions.csv", "C0000001,2099-01-01,10.0,1.0,online"))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "run",
            "--params",
            str(p),
            "--notebooks-dir",
            str(ROOT / "notebooks"),
            "--out",
            str(tmp_path / "reports"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr
    assert "transactions.date" in r.stdout and "after today" in r.stdout
    assert "REFUSED" in r.stdout
    reports = tmp_path / "reports"
    assert [p.name for p in reports.glob("*.html") if p.name != "index.html"] == []


def test_diagnose_summarises_without_raising_on_an_unreadable_table(world):
    p = world(_append("transactions.csv", "C0000001,2024-01-01,5,1,online,extra"))
    found = validation.diagnose(config.load_params(p))
    assert [t.name for t in found.tables] == ["customers", "transactions", "loyalty", "experience"]
    assert found.errors and found.errors[0].rule == "unreadable"


# --------------------------------------------------------------------------------------
# Further shapes of the same classes
# --------------------------------------------------------------------------------------


def test_an_attribute_named_like_a_derived_column_is_refused(world):
    def edit(d: Path) -> None:
        text = (d / "customers.csv").read_text()
        (d / "customers.csv").write_text(text.replace(",region,", ",revenue,", 1))

    x = _only(_check(world(edit)), "reserved_column")
    assert (x.table, x.column) == ("customers", "revenue")


def test_kind_in_other_case_still_counts_as_survey(world, base):
    def edit(d: Path) -> None:
        text = (d / "experience.csv").read_text()
        (d / "experience.csv").write_text(text.replace(",survey,", ",Survey ,"))

    src = data.load(config.load_params(world(edit)))
    ex = src.tables["experience"]
    want = int((pd.read_csv(base / "experience.csv")["kind"] == "survey").sum())
    assert ex.filter(ex.kind == "survey").count().execute() == want


def test_integer_ids_stored_as_floats_match_integer_ids(world):
    def edit(d: Path) -> None:
        for name in ("customers", "transactions"):
            t = pd.read_csv(d / f"{name}.csv")
            ids = t["customer_id"].str[1:].astype(int)
            t["customer_id"] = ids.astype(float) if name == "transactions" else ids
            t.to_parquet(d / f"{name}.parquet", index=False)
            (d / f"{name}.csv").unlink()
        (d / "loyalty.csv").unlink()
        (d / "experience.csv").unlink()

    assert [x for x in _check(world(edit)) if x.rule == "orphan"] == []


def test_an_empty_file_and_an_unnamed_column(world):
    x = _only(_check(world(lambda d: (d / "loyalty.csv").write_text(""))), "empty_file")
    assert x.table == "loyalty" and "loyalty.csv" in x.message

    def trailing(d: Path) -> None:  # an Excel export with a trailing delimiter
        lines = (d / "loyalty.csv").read_text().splitlines()
        (d / "loyalty.csv").write_text("".join(line + ",\n" for line in lines))

    x = _only(_check(world(trailing)), "unnamed_column")
    assert (x.table, x.severity) == ("loyalty", "warning")
