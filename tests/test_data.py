"""Sources and contract validation: every rule, with table, column, count and examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis import config, data
from analysis.data import table_checks, validation
from analysis.errors import DataError

CUSTOMERS = """customer_id,signup_date,churn_date,churn_reason,segment,region
1,2022-06-15,,,consumer,north
2,2023-01-10,2023-03-20,price,business,south
3,2023-02-01,,,consumer,north
"""
TRANSACTIONS = """customer_id,date,amount
1,2023-01-05,10
1,2023-01-05,5
2,2023-01-12,20
2,2023-02-15,30
3,2023-02-02,7
3,2023-06-30,8
"""
EXPERIENCE = """customer_id,date,kind,csat,nps,sla_met
1,2023-02-01,survey,4,9,
3,2023-03-01,ticket,,,false
"""


# Settings that fit this three-customer, six-month world (the defaults ask for 24-month
# horizons, a value_tier column and groups of 10; validation would warn about each).
FITTING = """analysis:
  min_group_size: 1
survival:
  horizons_months: [3, 6]
  rmst_horizon_months: 6
  cox_covariates: [segment]
experience:
  cox_covariates: []
  km_landmark_months: 3
value:
  risk_horizon_months: 1
"""


def _world(
    tmp_path: Path, *, customers=CUSTOMERS, transactions=TRANSACTIONS, extra=None, params: str = ""
) -> Path:
    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    (d / "customers.csv").write_text(customers)
    if transactions is not None:
        (d / "transactions.csv").write_text(transactions)
    for name, text in (extra or {}).items():
        (d / f"{name}.csv").write_text(text)
    p = tmp_path / "p.yaml"
    p.write_text("data:\n  path: data\n  as_of: 2023-06-30\n" + params + FITTING)
    return p


def _check(p: Path):
    return data.check(config.load_params(p))


def _rules(problems):
    return {(x.table, x.column, x.rule, x.severity) for x in problems}


def test_clean_data_has_no_problems_and_loads(tmp_path):
    p = _world(tmp_path, extra={"experience": EXPERIENCE})
    assert _check(p) == []
    src = data.load(config.load_params(p))
    assert src.as_of.isoformat() == "2023-06-30"
    assert src.window_start.isoformat() == "2023-01-05"  # earliest event date
    assert src.attributes == ["region"]
    assert src.has("experience") and not src.has("loyalty")
    assert src.has_column("experience", "csat") and not src.has_column("experience", "ces")


def test_missing_required_table(tmp_path):
    p = _world(tmp_path, transactions=None)
    probs = _check(p)
    assert ("transactions", None, "missing_table", "error") in _rules(probs)
    assert "data.tables.transactions" in str(probs[0])


def test_missing_required_column_says_how_to_map_it(tmp_path):
    p = _world(tmp_path, transactions=TRANSACTIONS.replace("amount", "value"))
    probs = _check(p)
    assert ("transactions", "amount", "missing_column", "error") in _rules(probs)
    assert "data.columns.transactions" in str(probs[0])


def test_column_mapping_renames_user_columns(tmp_path):
    p = _world(
        tmp_path,
        transactions=TRANSACTIONS.replace("amount", "value"),
        params="  columns:\n    transactions: {amount: value}\n",
    )
    assert _check(p) == []


def test_wrong_type_counts_rows_and_shows_bad_values(tmp_path):
    tx = TRANSACTIONS.replace("2023-02-15,30", "2023-02-15,30 EUR").replace(
        "3,2023-02-02,7", "3,2023-02-02,seven"
    )
    probs = _check(_world(tmp_path, transactions=tx))
    (p,) = [x for x in probs if x.rule == "type"]
    assert (p.table, p.column, p.n_rows) == ("transactions", "amount", 2)
    assert set(p.examples) == {"30 EUR", "seven"}


def test_unparseable_dates(tmp_path):
    c = CUSTOMERS.replace("2023-02-01,,,consumer", "01/02/2023,,,consumer")
    probs = _check(_world(tmp_path, customers=c))
    p = [x for x in probs if x.rule == "type"][0]
    assert (p.table, p.column, p.n_rows, p.examples) == (
        "customers",
        "signup_date",
        1,
        ("01/02/2023",),
    )
    assert "unparseable dates" in str(p)


def test_duplicate_customer_ids(tmp_path):
    c = CUSTOMERS + "3,2023-02-01,,,consumer,north\n"
    probs = _check(_world(tmp_path, customers=c))
    p = [x for x in probs if x.rule == "duplicate"][0]
    assert (p.table, p.column, p.n_rows, p.examples) == ("customers", "customer_id", 1, ("3",))


def test_orphan_rows_are_an_error_by_default(tmp_path):
    tx = TRANSACTIONS + "99,2023-03-01,5\n98,2023-03-02,6\n"
    probs = _check(_world(tmp_path, transactions=tx))
    p = [x for x in probs if x.rule == "orphan"][0]
    assert (p.table, p.n_rows, p.severity) == ("transactions", 2, "error")
    assert set(p.examples) == {"99", "98"}
    assert "orphan_rows: drop" in p.fix


def test_orphan_rows_dropped_with_a_warning_when_params_say_so(tmp_path):
    tx = TRANSACTIONS + "99,2023-03-01,5\n"
    p = _world(tmp_path, transactions=tx, params="  orphan_rows: drop\n")
    probs = _check(p)
    assert [(x.rule, x.severity) for x in probs] == [("orphan", "warning")]
    src = data.load(config.load_params(p))
    assert src.tables["transactions"].count().execute() == 6
    assert src.problems[0].severity == "warning"


def test_dates_before_signup_and_after_as_of(tmp_path):
    tx = TRANSACTIONS + "3,2023-01-15,5\n1,2023-07-15,5\n"
    probs = _check(_world(tmp_path, transactions=tx))
    msgs = [str(x) for x in probs if x.rule == "out_of_window"]
    assert len(msgs) == 2
    assert any("before the customer's signup_date" in m and "(1 rows)" in m for m in msgs)
    assert any("after the as-of date 2023-06-30" in m for m in msgs)


def test_out_of_window_rows_can_be_dropped(tmp_path):
    tx = TRANSACTIONS + "3,2023-01-15,5\n"
    p = _world(tmp_path, transactions=tx, params="  out_of_window_rows: drop\n")
    src = data.load(config.load_params(p))
    assert src.tables["transactions"].count().execute() == 6


def test_churn_before_signup(tmp_path):
    c = CUSTOMERS.replace("2023-01-10,2023-03-20", "2023-01-10,2022-12-20")
    probs = _check(_world(tmp_path, customers=c))
    assert ("customers", "churn_date", "order", "error") in _rules(probs)


def test_negative_amounts_unless_refunds_allowed(tmp_path):
    tx = TRANSACTIONS + "3,2023-03-01,-8\n"
    probs = _check(_world(tmp_path, transactions=tx))
    assert ("transactions", "amount", "negative", "error") in _rules(probs)
    assert "refunds_allowed" in [str(x) for x in probs if x.rule == "negative"][0]
    assert _check(_world(tmp_path, transactions=tx, params="  refunds_allowed: true\n")) == []


def test_scores_out_of_range(tmp_path):
    exp = EXPERIENCE.replace("survey,4,9", "survey,6,11")
    probs = _check(_world(tmp_path, extra={"experience": exp}))
    cols = {x.column for x in probs if x.rule == "range"}
    assert cols == {"csat", "nps"}


def test_empty_table(tmp_path):
    probs = _check(_world(tmp_path, extra={"loyalty": "customer_id,enrolled_date\n"}))
    assert ("loyalty", None, "empty", "error") in _rules(probs)


def test_required_values_must_not_be_empty(tmp_path):
    c = CUSTOMERS.replace("3,2023-02-01", "3,")
    probs = _check(_world(tmp_path, customers=c))
    assert ("customers", "signup_date", "null", "error") in _rules(probs)


def test_load_raises_one_error_listing_every_problem(tmp_path):
    tx = TRANSACTIONS + "99,2023-03-01,-5\n"
    with pytest.raises(DataError) as info:
        data.load(config.load_params(_world(tmp_path, transactions=tx)))
    text = str(info.value)
    assert "no report was produced" in text
    assert "transactions.customer_id" in text and "transactions.amount" in text


def test_parquet_folder_per_table_and_duckdb_file(tmp_path):
    d = tmp_path / "pq"
    (d / "transactions").mkdir(parents=True)
    cust = pd.read_csv(pd.io.common.StringIO(CUSTOMERS), parse_dates=["signup_date", "churn_date"])
    tx = pd.read_csv(pd.io.common.StringIO(TRANSACTIONS), parse_dates=["date"])
    cust.to_parquet(d / "customers.parquet")
    tx.iloc[:3].to_parquet(d / "transactions" / "part-0.parquet")
    tx.iloc[3:].to_parquet(d / "transactions" / "part-1.parquet")
    p = tmp_path / "p.yaml"
    p.write_text(f"data:\n  path: {d}\n  format: parquet\n")
    src = data.load(config.load_params(p))
    assert src.tables["transactions"].count().execute() == 6

    import duckdb

    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table customers as select * from cust")
    con.execute("create table orders as select * from tx")
    con.close()
    p2 = tmp_path / "p2.yaml"
    p2.write_text(f"data:\n  source: duckdb\n  path: {db}\n  tables: {{transactions: orders}}\n")
    src2 = data.load(config.load_params(p2))
    assert src2.tables["transactions"].count().execute() == 6
    assert data.customer_ids(config.load_params(p2)) == {"1", "2", "3"}


def test_missing_folder_is_a_clear_error(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("data:\n  path: nowhere\n")
    probs = data.check(config.load_params(p))
    assert probs[0].rule == "missing_folder" and "make data" in probs[0].fix


def test_fingerprint_counts_rows_and_hashes_content(tmp_path):
    p = config.load_params(_world(tmp_path))
    fp = data.fingerprint(p)
    assert fp["rows"] == {"customers": 3, "transactions": 6}
    assert len(fp["content_hash"]) == 16


def test_validate_command_prints_problems_and_exits_2(tmp_path):
    # exit codes: 0 valid (warnings allowed), 2 refused (invalid data or params), as for run
    p = _world(tmp_path, transactions=TRANSACTIONS + "99,2023-03-01,5\n")
    r = subprocess.run(
        [sys.executable, "-m", "analysis", "validate", "--params", str(p)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "transactions.customer_id" in r.stderr and "orphan" not in r.stdout
    # it says what it read: tables, row counts, date ranges
    assert "transactions.csv" in r.stdout and "7 rows" in r.stdout
    assert "date 2023-01-05 .. 2023-06-30" in r.stdout
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "validate",
            "--params",
            str(_world(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path)),
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "data valid" in ok.stdout


def test_id_codes_are_consistent_integer_keys_in_every_table(tiny_world):
    study = data.load_study_data(tiny_world.params_file)
    cust = study.table("customers")
    coded = study.table("customers", id_codes=True)
    assert str(coded["customer_id"].dtype) == "int32"
    # customers numbered 0..n-1 in identifier order
    expected = {cid: i for i, cid in enumerate(sorted(cust["customer_id"].astype(str)))}
    assert sorted(coded["customer_id"]) == list(range(len(cust)))
    assert (
        cust.assign(code=cust["customer_id"].astype(str).map(expected))
        .sort_values("code")["signup_date"]
        .to_numpy()
        == coded.sort_values("customer_id")["signup_date"].to_numpy()
    ).all()
    for name in ("transactions", "loyalty", "experience"):
        raw = study.table(name, ["customer_id", "date" if name != "loyalty" else "enrolled_date"])
        got = study.table(name, list(raw.columns), id_codes=True)
        want = raw.assign(customer_id=raw["customer_id"].astype(str).map(expected).astype("int32"))
        key = list(raw.columns)
        pd.testing.assert_frame_equal(
            got.sort_values(key).reset_index(drop=True),
            want.sort_values(key).reset_index(drop=True),
        )


def _tables(src):
    return {
        n: t.to_pandas().sort_values(list(t.columns)).reset_index(drop=True)
        for n, t in src.tables.items()
    }


def test_validation_receipt_gives_the_same_source_without_checking_again(tmp_path, monkeypatch):
    # orphans and out-of-window rows dropped by policy: the receipt path must drop them too
    tx = TRANSACTIONS + "99,2023-03-01,5\n1,2022-01-01,4\n"
    p = _world(
        tmp_path,
        transactions=tx,
        extra={"experience": EXPERIENCE},
        params="  orphan_rows: drop\n  out_of_window_rows: drop\n",
    )
    params = config.load_params(p)
    receipt = tmp_path / "receipt.json"
    probs = data.check(params, receipt=receipt)
    assert receipt.is_file() and {x.rule for x in probs} >= {"orphan", "out_of_window"}
    full = data.load(params)
    monkeypatch.setenv(data.RECEIPT_ENV, str(receipt))
    calls = []
    for module in (validation, table_checks):
        monkeypatch.setattr(module, "_bad_rows", lambda *a, **k: calls.append(a) or (0, ()))
    monkeypatch.setattr(table_checks, "_count", lambda *a, **k: calls.append(a) or 0)
    fast = data.load(params)
    assert calls == []  # no check ran
    assert (fast.as_of, fast.window_start) == (full.as_of, full.window_start)
    assert [str(x) for x in fast.problems] == [str(x) for x in full.problems]
    a, b = _tables(full), _tables(fast)
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])


def test_a_stale_receipt_is_ignored(tmp_path, monkeypatch):
    p = _world(tmp_path)
    params = config.load_params(p)
    receipt = tmp_path / "receipt.json"
    assert not [x for x in data.check(params, receipt=receipt) if x.severity == "error"]
    monkeypatch.setenv(data.RECEIPT_ENV, str(receipt))
    # the data changes after the run validated it: a negative amount must still be caught
    (tmp_path / "data" / "transactions.csv").write_text(TRANSACTIONS + "3,2023-03-03,-5\n")
    with pytest.raises(DataError, match="contract"):
        data.load(params)
    # and a receipt is never written for invalid data
    bad = tmp_path / "bad.json"
    data.check(params, receipt=bad)
    assert not bad.exists()
