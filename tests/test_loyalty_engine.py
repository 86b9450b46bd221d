"""The loyalty frames built on the engine (analysis.data.month_windows).

References: a hand-made world whose window sums are worked out by hand below, and the
frames built in pandas from the event rows (an independent implementation: bincounts
over a dense customer x month matrix). Postgres and Spark compare against these
numbers in their own modules (``loyalty_frame_numbers``).
"""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest

from analysis import data
from analysis.errors import DataError
from analysis.studies import loyalty
from analysis.studies.sections import is_skipped

DAYS = 30.4375
WIN = dict(window_start="2024-01-01", as_of="2024-12-31")  # 12 complete months


def _hand_world():
    customers = pd.DataFrame(
        {
            "customer_id": ["A", "B"],
            "signup_date": pd.to_datetime(["2023-11-10", "2024-01-20"]),
            "churn_date": pd.to_datetime([None, "2024-07-15"]),
            "segment": ["x", "y"],
        }
    )
    transactions = pd.DataFrame(
        {
            "customer_id": ["A"] * 7 + ["B"] * 2,
            "date": pd.to_datetime(
                [
                    "2023-12-05",  # before the window: month -1
                    "2024-02-10",
                    "2024-02-20",  # month 1: 25 in two purchases
                    "2024-03-15",  # month 2
                    "2024-05-02",  # month 4
                    "2024-06-01",  # month 5
                    "2025-01-05",  # after as_of: never counted
                    "2024-02-01",  # B, month 1
                    "2024-04-01",  # B, month 3
                ]
            ),
            "amount": [10.0, 20.0, 5.0, 30.0, 40.0, 50.0, 99.0, 12.0, 8.0],
        }
    )
    experience = pd.DataFrame(
        {
            "customer_id": ["A"] * 4,
            "date": pd.to_datetime(["2023-10-01", "2023-12-20", "2024-03-10", "2024-01-05"]),
            "kind": ["survey", "survey", "survey", "ticket"],
            "nps": [3.0, 9.0, 7.0, np.nan],  # latest before the window: 9 (promoter)
            "csat": [np.nan] * 4,
            "first_contact_resolution": [None, None, None, False],
            "sla_met": [None, None, None, False],
        }
    )
    loyalty_t = pd.DataFrame(
        {
            "customer_id": ["A"],
            "enrolled_date": pd.to_datetime(["2024-05-03"]),  # month 4
            "left_date": pd.to_datetime([None]),
        }
    )
    return customers, transactions, experience, loyalty_t


def _on_duckdb(tmp_path, **frames):
    con = ibis.duckdb.connect()
    out = {}
    for name, frame in frames.items():
        path = tmp_path / f"{name}.parquet"
        frame.to_parquet(path)
        out[name] = con.read_parquet(path, table_name=name)
    return con, out


@pytest.fixture
def hand(tmp_path):
    cust, tx, ex, lo = _hand_world()
    con, eng = _on_duckdb(tmp_path, transactions=tx, experience=ex)
    return cust, tx, ex, lo, eng


@pytest.mark.parametrize("where", ["pandas", "engine"])
def test_trial_frame_window_sums_by_hand(hand, where):
    cust, tx, ex, lo, eng = hand
    if where == "engine":
        tx, ex = eng["transactions"], eng["experience"]
    f = loyalty.trial_frame(cust, tx, lo, ex, lookback_months=2, horizon_months=3, **WIN)
    # trials in months 2 .. 8; A (signed up in month -2) until it enrols in month 4,
    # B (signed up in month 0, churned in month 6) in months 2 .. 5
    got = f[["customer_id", "trial_month", "member", "retained"]].values.tolist()
    want = [["A", 2, 0, 1], ["A", 3, 0, 1], ["A", 4, 1, 1]]
    want += [["B", 2, 0, 1], ["B", 3, 0, 0], ["B", 4, 0, 0], ["B", 5, 0, 0]]
    assert got == want
    # prior months m-2 .. m-1, outcome months m+1 .. m+3
    assert f["prior_spend"].tolist() == [25.0, 55.0, 30.0, 12.0, 12.0, 8.0, 8.0]
    assert f["prior_purchases"].tolist() == [2, 3, 1, 1, 1, 1, 1]
    assert f["spend"].tolist() == [90.0, 90.0, 50.0, 8.0, 0.0, 0.0, 0.0]
    assert f["purchases"].tolist() == [2, 2, 1, 1, 0, 0, 0]
    # the ticket of month 0: in the prior window of month 2 only, in every history
    assert f["prior_tickets"].tolist() == [1, 0, 0, 0, 0, 0, 0]
    assert f["prior_unresolved"].tolist() == [1, 0, 0, 0, 0, 0, 0]
    assert f["prior_sla_breaches"].tolist() == [1, 0, 0, 0, 0, 0, 0]
    assert f["history_tickets"].tolist() == [1, 1, 1, 0, 0, 0, 0]
    # NPS before month 2: the two answers before the window (3, then 9); before 3 and 4
    # also the 7 of month 2
    assert f["history_nps_mean"].tolist()[:3] == pytest.approx([6.0, 19 / 3, 19 / 3], abs=1e-12)
    assert f["history_nps_answered"].tolist() == [1, 1, 1, 0, 0, 0, 0]
    cats = ["promoter", "passive", "passive", "none", "none", "none", "none"]
    assert f["prior_nps_category"].astype(str).tolist() == cats
    days = (pd.Timestamp("2024-03-01") - pd.Timestamp("2023-11-10")).days
    assert f["tenure_months"].iloc[0] == pytest.approx(days / DAYS, rel=1e-12)
    assert f["segment"].tolist() == ["x"] * 3 + ["y"] * 4


@pytest.mark.parametrize("where", ["pandas", "engine"])
def test_landmark_frame_window_sums_by_hand(hand, where):
    cust, tx, ex, lo, eng = hand
    if where == "engine":
        tx, ex = eng["transactions"], eng["experience"]
    f = loyalty.landmark_frame(
        cust, tx, lo, ex, landmark_months=6, lookback_months=2, horizon_months=3, **WIN
    )
    # landmark month: A month 4 (enrols on its 3rd day: not yet a member), B month 6
    assert f["customer_id"].tolist() == ["A", "B"] and f["member"].tolist() == [0, 0]
    assert f["prior_spend"].tolist() == [30.0, 0.0]  # months 2..3, 4..5
    assert f["spend"].tolist() == [90.0, 0.0]  # months 4..6, 6..8
    # complete months before the landmark: A months 0..3 (55 in 4), B months 1..5 (20 in 5)
    assert f["history_spend_per_month"].tolist() == [13.75, 4.0]
    assert f["history_tickets"].tolist() == [1, 0] and f["prior_tickets"].tolist() == [0, 0]
    assert f["history_nps_mean"].tolist() == pytest.approx([19 / 3, 0.0], abs=1e-12)
    assert f["prior_nps_category"].astype(str).tolist() == ["passive", "none"]
    assert f["retained"].tolist() == [1, 0]


@pytest.mark.parametrize("where", ["pandas", "engine"])
def test_event_study_panel_by_hand(hand, where):
    cust, tx, ex, lo, eng = hand
    if where == "engine":
        tx = eng["transactions"]
    p = loyalty.event_study_panel(cust, tx, lo, **WIN)
    a, b = p[p.customer_id == "A"], p[p.customer_id == "B"]
    assert a["period"].tolist() == list(range(12))  # complete months 0..11
    assert b["period"].tolist() == [1, 2, 3, 4, 5]  # after signup, before the churn month
    assert a["revenue"].tolist() == [0, 25, 30, 0, 40, 50] + [0] * 6
    assert a["purchases"].tolist() == [0, 2, 1, 0, 1, 1] + [0] * 6
    assert b["revenue"].tolist() == [12, 0, 8, 0, 0]
    assert a["cohort"].unique().tolist() == [4] and b["cohort"].isna().all()


@pytest.mark.parametrize(
    "build", ["trial_frame", "landmark_frame", "event_study_panel", "programme_report"]
)
def test_engine_tables_missing_a_column_get_a_clear_error(hand, build):
    cust, tx, ex, lo, eng = hand
    cases = [
        ("transactions", eng["transactions"].drop("amount"), eng["experience"], "amount"),
        ("experience", eng["transactions"], eng["experience"].drop("date"), "date"),
    ]
    for table, t, e, column in cases:
        if build == "event_study_panel" and table == "experience":
            continue  # the event study reads no experience
        with pytest.raises(DataError) as err:
            if build == "trial_frame":
                loyalty.trial_frame(cust, t, lo, e, **WIN)
            elif build == "landmark_frame":
                loyalty.landmark_frame(cust, t, lo, e, landmark_months=6, **WIN)
            elif build == "event_study_panel":
                loyalty.event_study_panel(cust, t, lo, **WIN)
            else:
                tables = {"customers": cust, "loyalty": lo, "transactions": t, "experience": e}
                loyalty.programme_report(tables, **WIN)
        msg = str(err.value)
        assert table in msg and column in msg, msg
        assert err.value.problems[0].table == table and err.value.problems[0].column == column


# --------------------------------------------------------------------------- generated world


def loyalty_frame_numbers(study) -> dict[str, pd.DataFrame]:
    """The loyalty frames of a study built on its engine (as the report builds them)."""
    tables = loyalty.study_tables(study)
    cust, lo = tables["customers"], tables["loyalty"]
    tx, ex = tables["transactions"], tables["experience"]
    win = dict(window_start=study.window_start, as_of=study.as_of)
    return {
        "trials": loyalty.trial_frame(cust, tx, lo, ex, **win),
        "landmark": loyalty.landmark_frame(cust, tx, lo, ex, landmark_months=6, **win),
        "panel": loyalty.event_study_panel(cust, tx, lo, **win),
    }


def same_frames(got: dict, want: dict, rtol: float = 1e-9) -> None:
    for name in want:
        pd.testing.assert_frame_equal(
            got[name], want[name], check_exact=False, rtol=rtol, atol=1e-9, obj=name
        )


@pytest.fixture(scope="module")
def study(tiny_world):
    return data.load_study_data(tiny_world.params_file)


@pytest.fixture(scope="module")
def pandas_frames(study):
    """The frames built in pandas from the event rows (integer codes as on the engine)."""
    cust, lo = study.table("customers", id_codes=True), study.table("loyalty", id_codes=True)
    tx = study.table("transactions", id_codes=True)
    ex = study.table("experience", id_codes=True)
    win = dict(window_start=study.window_start, as_of=study.as_of)
    return {
        "trials": loyalty.trial_frame(cust, tx, lo, ex, **win),
        "landmark": loyalty.landmark_frame(cust, tx, lo, ex, landmark_months=6, **win),
        "panel": loyalty.event_study_panel(cust, tx, lo, **win),
    }


def test_engine_frames_equal_the_frames_from_event_rows(study, pandas_frames):
    f = pandas_frames
    assert f["trials"]["member"].sum() > 10 and (f["trials"]["prior_nps_category"] != "none").any()
    assert f["landmark"]["prior_tickets"].sum() > 0 and f["panel"]["revenue"].sum() > 0
    same_frames(loyalty_frame_numbers(study), f)


@pytest.mark.parametrize("lookback, horizon", [(1, 1), (2, 4), (5, 3)])
def test_engine_frames_from_raw_events_equal_pandas(study, lookback, horizon):
    # Ibis tables of the events themselves (not monthly): summarised on the engine first
    cust, lo = study.table("customers", id_codes=True), study.table("loyalty", id_codes=True)
    pdf = {n: study.table(n, id_codes=True) for n in ("transactions", "experience")}
    eng = {n: study.coded(study.source.table(n)) for n in ("transactions", "experience")}
    kw = dict(window_start=study.window_start, as_of=study.as_of)
    kw.update(lookback_months=lookback, horizon_months=horizon)
    for tables in (pdf, eng):
        tables["trials"] = loyalty.trial_frame(
            cust, tables["transactions"], lo, tables["experience"], max_customers=150, seed=4, **kw
        )
        tables["landmark"] = loyalty.landmark_frame(
            cust, tables["transactions"], lo, tables["experience"], landmark_months=9, **kw
        )
    assert len(pdf["trials"]) > 100 and len(pdf["landmark"]) > 50
    same_frames(eng, {k: pdf[k] for k in ("trials", "landmark")})


def test_engine_frames_without_experience(study):
    cust, lo = study.table("customers", id_codes=True), study.table("loyalty", id_codes=True)
    tx = study.table("transactions", id_codes=True)
    etx = study.coded(study.source.table("transactions"))
    kw = dict(window_start=study.window_start, as_of=study.as_of)
    a = loyalty.trial_frame(cust, tx, lo, None, **kw)
    b = loyalty.trial_frame(cust, etx, lo, None, **kw)
    assert (a["prior_nps_category"] == "none").all() and (a["prior_tickets"] == 0).all()
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)


def test_programme_report_on_engine_tables_equals_pandas(medium_world):
    # a world large enough for the enrolment models to converge: on a few hundred customers
    # they separate, and their intervals then move with the last bits of the sums, which
    # engines add in their own order
    study = data.load_study_data(medium_world.params_file)
    tables = loyalty.study_tables(study)
    con = tables["transactions"].get_backend()
    pdf = dict(tables)
    pdf["transactions"] = study.table("transactions", id_codes=True)
    pdf["experience"] = study.table("experience", id_codes=True)
    kw = dict(window_start=study.window_start, as_of=study.as_of, landmarks=[6], seed=2)
    kw["trial_max_customers"] = 4000
    got = loyalty.programme_report(tables, **kw)
    want = loyalty.programme_report(pdf, **kw)
    # the monthly activity it kept in temporary tables is dropped
    assert not [t for t in con.list_tables() if t.startswith("_analysis_")]
    assert not is_skipped(want.sequential) and not is_skipped(want.event_study)
    pd.testing.assert_frame_equal(got.sequential.frame, want.sequential.frame, rtol=1e-9)
    cols = ["estimate", "ci_lower", "ci_upper"]
    pd.testing.assert_frame_equal(
        got.sequential.effects[cols], want.sequential.effects[cols], rtol=1e-6
    )
    pd.testing.assert_frame_equal(
        got.landmarks[6].effects[cols], want.landmarks[6].effects[cols], rtol=1e-6
    )
    g, w = got.event_study.coefficients, want.event_study.coefficients
    np.testing.assert_allclose(g["estimate"], w["estimate"], rtol=1e-6)


def test_the_report_does_not_depend_on_the_order_of_the_customers(study):
    # Engines return the customers in their own order (Spark by partition, DuckDB by
    # thread): the trial sample, the frames and the estimates must not follow it. Pandas
    # activity tables here, whose sums come out bit for bit the same on every run (an
    # engine adds in its own order, and on 400 customers the enrolment model separates,
    # so its estimates move with the last bits).
    tables = loyalty.study_tables(study)
    tables["transactions"] = study.table("transactions", id_codes=True)
    tables["experience"] = study.table("experience", id_codes=True)
    shuffled = dict(tables)
    shuffled["customers"] = tables["customers"].sample(frac=1, random_state=5)
    shuffled["loyalty"] = tables["loyalty"].sample(frac=1, random_state=6)
    kw = dict(window_start=study.window_start, as_of=study.as_of, landmarks=[6], seed=2)
    kw["trial_max_customers"] = 250  # of 400: the sample is drawn
    a = loyalty.programme_report(tables, **kw)
    b = loyalty.programme_report(shuffled, **kw)
    pd.testing.assert_frame_equal(a.sequential.frame, b.sequential.frame, check_exact=True)
    pd.testing.assert_frame_equal(a.sequential.effects, b.sequential.effects)
    if is_skipped(a.landmarks[6]):  # too few members at 6 months in 400 customers
        assert str(a.landmarks[6]) == str(b.landmarks[6])
    else:
        pd.testing.assert_frame_equal(a.landmarks[6].effects, b.landmarks[6].effects)
    pd.testing.assert_frame_equal(a.event_study.coefficients, b.event_study.coefficients)
    assert a.sequential.sampled_customers == 250
