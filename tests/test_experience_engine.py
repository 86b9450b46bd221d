"""The experience study's statistics built on the engine (analysis.data.experience_stats).

Each engine-built table, turned into what the study shows, is checked against the pandas
computation from the experience rows: the public ``experience_metrics``, ``driver_view``,
``nps_landmark``, ``counting_process`` and the touchpoint counts of ``moments_of_truth``.
The same engine expressions run on Spark and Postgres (``ENGINE_STATS_CASES`` in
tests/test_engine_stats.py). Hand cases pin the rules that make the result independent
of row order: the latest answer is the mean of the latest day's answers, and a day's
tickets count as one with the day's worst outcome.
"""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import data
from analysis.data import experience_stats as es
from analysis.data.sources import Source
from analysis.studies.experience import frames, hazards, metrics


@pytest.fixture(scope="module")
def study(tiny_world):
    return data.load_study_data(tiny_world.params_file)


@pytest.fixture(scope="module")
def ex(study):
    return study.table("experience")


@pytest.fixture(scope="module")
def lifetimes(study):
    from analysis.data import derive

    return derive.usable_lifetimes(study.lifetimes_expr()).to_pandas()


def _shuffled(df, seed=1):
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _same(got, want, rtol=1e-9):
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True),
        want.reset_index(drop=True),
        check_exact=False,
        rtol=rtol,
        check_dtype=False,
        check_categorical=False,
    )


@pytest.mark.parametrize("period", [None, "week", "month", "quarter"])
def test_metrics_from_engine_sums_equal_pandas(study, ex, period):
    got = metrics.metrics_from_sums(
        es.experience_sums(study.source, period=period).to_pandas(),
        ["period"] if period else [],
    )
    want = metrics.experience_metrics(ex, period=period)
    assert want["tickets"].sum() > 100 and want["answers"].sum() > 100
    _same(got, want)


def test_metrics_by_customer_group_equal_pandas(study, ex):
    cust = study.table("customers")
    got = metrics.metrics_from_sums(
        es.experience_sums(study.source, by="segment").to_pandas(), ["segment"]
    )
    want = metrics.experience_metrics(ex, by="segment", customers=cust)
    assert len(want) >= 2
    _same(got, want)


@pytest.mark.parametrize("window", [7, 30])
def test_driver_view_from_engine_sums_equals_pandas(study, ex, window):
    got = metrics.drivers_from_sums(
        es.driver_sums(study.source, window_days=window).to_pandas(),
        es.driver_group_names(),
        window_days=window,
    )
    want = metrics.driver_view(ex, window_days=window)
    assert (want.loc[want.outcome != "none", "answers"] > 0).sum() >= 4
    _same(got, want)
    _same(metrics.driver_view(_shuffled(ex), window_days=window), want, rtol=1e-12)


def test_nps_landmark_from_engine_equals_pandas(study, ex, lifetimes):
    lm = pd.Timestamp(study.window_start) + pd.DateOffset(months=6)
    want = metrics.nps_landmark(lifetimes, ex, landmark=lm)
    latest = es.latest_nps(study.source, before=lm.date()).to_pandas()
    got = metrics._landmark_categories(
        metrics.landmark_at_risk(lifetimes, landmark=lm),
        pd.Series(latest["nps"].to_numpy(), index=latest["customer_id"].to_numpy()),
    )
    assert (want.nps_category.astype(str) != "none").sum() > 20
    _same(got, want)
    _same(metrics.nps_landmark(lifetimes, _shuffled(ex), landmark=lm), want)


def test_touchpoint_counts_from_engine_equal_pandas(study, ex):
    got = es.touchpoint_sums(study.source).to_pandas()
    got = got.dropna(subset=["touchpoint"]).set_index("touchpoint").sort_index()
    want = hazards.touchpoint_counts(ex).sort_index()
    assert len(want) >= 2 and want["failed"].sum() > 0
    _same(got[["customers", "tickets", "failed"]], want)


@pytest.mark.parametrize(
    "update,period",
    [
        ("period", "month"),
        ("period", "week"),
        ("period", "quarter"),
        ("event", "month"),
        ("event", None),
    ],
)
def test_counting_process_from_engine_sums_equals_the_event_rows(
    study, ex, lifetimes, update, period
):
    key = period if update == "period" else "day"
    tps = es.failed_touchpoints(study.source)
    sums = es.customer_periods(study.source, key=key, touchpoints=tps).to_pandas()
    kw = dict(window_days=90, period=period, update=update, keep=["segment"])
    got = frames.counting_process_from_sums(lifetimes, sums, touchpoints=tps, **kw)
    want = frames.counting_process(lifetimes, ex, **kw)
    assert want["event"].sum() > 10 and want["unresolved_window"].max() > 0
    assert want.attrs["touchpoints"] and got.attrs == want.attrs
    _same(got, want, rtol=1e-12)
    # the event rows' order does not matter
    _same(frames.counting_process(lifetimes, _shuffled(ex), **kw), want, rtol=1e-12)
    if update == "period":  # and the per-(customer, period) sums are as short as promised
        assert len(sums) <= len(ex.drop_duplicates(["customer_id", "date"]))


# ---- hand cases: the rules that do not depend on row order -----------------------------


def _one_customer(events):
    lt = pd.DataFrame(
        {
            "customer_id": ["A"],
            "start_date": [pd.Timestamp("2024-01-01")],
            "entry_days": [0],
            "duration_days": [200],
            "event": [1],
        }
    )
    ex = pd.DataFrame(events)
    ex["date"] = pd.to_datetime(ex["date"])
    return lt, ex


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0]])
def test_latest_answer_is_the_latest_day_and_same_day_answers_count_equally(order):
    # Answers on Jan 10 (nps 2) and twice on Jan 20 (10 and 6): whatever the row order, the
    # latest answer of January is the mean of Jan 20's, 8 (a passive), from February on.
    rows = [
        {"customer_id": "A", "date": "2024-01-10", "kind": "survey", "nps": 2.0},
        {"customer_id": "A", "date": "2024-01-20", "kind": "survey", "nps": 10.0},
        {"customer_id": "A", "date": "2024-01-20", "kind": "survey", "nps": 6.0},
    ]
    lt, ex = _one_customer([rows[i] for i in order])
    cp = frames.counting_process(lt, ex, period="month", update="period")
    feb = cp[cp.start >= 30]
    assert (feb.nps_last == 8.0).all() and (feb.nps_category == "passive").all()
    ev = frames.counting_process(lt, ex, period=None, update="event")
    assert ev.loc[ev.start == 19, "nps_last"].item() == 8.0  # from Jan 20 on (day 19)
    assert ev.loc[ev.start == 9, "nps_last"].item() == 2.0
    lm = metrics.nps_landmark(lt, ex, landmark="2024-03-01")
    assert lm.nps_category.astype(str).tolist() == ["passive"]


def test_same_day_tickets_drive_an_answer_with_the_days_worst_outcome():
    lt, ex = _one_customer(
        [
            {
                "customer_id": "A",
                "date": "2024-01-05",
                "kind": "ticket",
                "first_contact_resolution": True,
                "sla_met": True,
                "contacts_to_resolve": 1,
            },
            {
                "customer_id": "A",
                "date": "2024-01-05",
                "kind": "ticket",
                "first_contact_resolution": False,
                "sla_met": True,
                "contacts_to_resolve": 3,
            },
            {"customer_id": "A", "date": "2024-01-08", "kind": "survey", "csat": 2.0},
        ]
    )
    for table in (ex, ex.iloc[::-1]):
        dv = metrics.driver_view(table, window_days=30).set_index(["driver", "outcome"])
        assert dv.loc[("first-contact resolution", "no"), "answers"] == 1
        assert dv.loc[("first-contact resolution", "yes"), "answers"] == 0
        assert dv.loc[("contacts to resolve", "3 or more"), "answers"] == 1
        assert dv.loc[("SLA", "met"), "answers"] == 1


def test_engine_rules_on_a_hand_table():
    # The same hand rows through the engine: one customer, two same-day answers, a
    # ticket day with a failure; what the engine says equals the counts written out here.
    import ibis
    import pyarrow as pa

    d = pd.to_datetime(["2024-01-05", "2024-01-05", "2024-01-20", "2024-01-20", "2024-02-03"])
    ex = pa.table(
        {
            "customer_id": ["A", "A", "A", "A", "B"],
            "date": pa.array(d.date, pa.date32()),
            "kind": ["ticket", "ticket", "survey", "survey", "survey"],
            "nps": pa.array([None, None, 10, 6, 9], pa.int64()),
            "csat": pa.array([None, None, 5.0, 3.0, None], pa.float64()),
            "ces": pa.array([None] * 5, pa.float64()),
            "first_contact_resolution": pa.array([True, False, None, None, None], pa.bool_()),
            "sla_met": pa.array([True, None, None, None, None], pa.bool_()),
            "compensated": pa.array([None, True, None, None, None], pa.bool_()),
            "touchpoint": pa.array(["app", "phone", None, None, None], pa.string()),
            "contacts_to_resolve": pa.array([1, 3, None, None, None], pa.int64()),
        }
    )
    cust = pa.table({"customer_id": ["A", "B"]})
    src = Source(
        con=None, tables={"customers": ibis.memtable(cust), "experience": ibis.memtable(ex)}
    )
    per = es.customer_periods(src, key="month", touchpoints=["phone"]).to_pandas()
    a = per[per.customer_id == "A"].iloc[0]
    assert (a.tickets, a.unresolved, a.failures, a.compensated_failures, a.tp0) == (2, 1, 1, 1, 1)
    assert a.nps_last == 8.0 and a.csat_last == 4.0 and a.csat_all_n == 2
    tot = es.experience_sums(src).to_pandas().iloc[0]
    assert (tot.customers, tot.answers, tot.tickets, tot.promoters, tot.detractors) == (
        2,
        3,
        2,
        2,
        1,
    )
    assert (tot.fcr_n, tot.fcr_yes, tot.comp_n, tot.comp_yes, tot.contacts_le2) == (2, 1, 1, 1, 1)
    dv = metrics.drivers_from_sums(
        es.driver_sums(src, window_days=30).to_pandas(), es.driver_group_names(), window_days=30
    ).set_index(["driver", "outcome"])
    assert dv.loc[("first-contact resolution", "no"), "answers"] == 2  # both Jan 20 answers
    assert dv.loc[("ticket in the previous days", "none"), "answers"] == 1  # B's
    assert dv.loc[("failed ticket compensated", "yes"), "csat_mean"] == 4.0
    last = es.latest_nps(src, before="2024-03-01").to_pandas().set_index("customer_id")
    assert last.loc["A", "nps"] == 8.0 and last.loc["B", "nps"] == 9.0
