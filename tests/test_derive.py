"""Derived tables on hand-made frames: every edge case worked out on paper.

World used by most tests (as_of 2023-06-30, window starts 2023-01-01):

- customer A signed up 2022-06-15 (before the window: left-truncated), no churn,
  bought 2023-01-05 twice (same day) and never again.
- customer B signed up 2023-01-10, churned 2023-03-20 (reason price), bought
  2023-01-12 and 2023-02-15.
- customer C signed up 2023-02-01, active, bought 2023-02-02 and 2023-06-30.
- customer D signed up 2023-05-01, active, never bought.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from analysis import config, data, derive

CUSTOMERS = """customer_id,signup_date,churn_date,churn_reason,segment,region
A,2022-06-15,,,consumer,north
B,2023-01-10,2023-03-20,price,business,south
C,2023-02-01,,,consumer,north
D,2023-05-01,,,consumer,east
"""
TRANSACTIONS = """customer_id,date,amount,margin
A,2023-01-05,10,2
A,2023-01-05,5,1
B,2023-01-12,20,4
B,2023-02-15,30,6
C,2023-02-02,7,1
C,2023-06-30,8,2
"""
LOYALTY = """customer_id,enrolled_date,left_date
C,2023-03-15,2023-05-10
"""
EXPERIENCE = """customer_id,date,kind,csat,nps,first_contact_resolution,sla_met
C,2023-03-03,survey,4,9,,
C,2023-03-20,survey,2,5,,
C,2023-03-25,ticket,,,false,false
B,2023-02-01,ticket,,,true,true
"""


@pytest.fixture
def study(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    for name, text in (
        ("customers", CUSTOMERS),
        ("transactions", TRANSACTIONS),
        ("loyalty", LOYALTY),
        ("experience", EXPERIENCE),
    ):
        (d / f"{name}.csv").write_text(text)
    p = tmp_path / "p.yaml"
    p.write_text("data:\n  path: data\n  as_of: 2023-06-30\n  window_start: 2023-01-01\n")
    return data.load_study_data(p)


def _by_id(df):
    return df.set_index("customer_id")


def test_contractual_lifetimes(study):
    lt = _by_id(study.lifetimes("contractual"))
    assert list(lt.index) == ["A", "B", "C", "D"]
    # A: left-truncated, enters at the window start, censored at as_of.
    a = lt.loc["A"]
    assert a.left_truncated and a.event == 0
    assert a.entry_days == (dt.date(2023, 1, 1) - dt.date(2022, 6, 15)).days == 200
    assert a.duration_days == (dt.date(2023, 6, 30) - dt.date(2022, 6, 15)).days == 380
    assert a.duration_months == pytest.approx(380 / 30.4375)
    # B: churned on its churn date with its reason.
    b = lt.loc["B"]
    assert (b.event, b.duration_days, b.churn_reason) == (1, 69, "price")
    assert b.entry_days == 0 and not b.left_truncated
    # same-day purchases count as two transactions but one purchase day.
    assert lt.loc["A"].n_transactions == 2 and lt.loc["A"].revenue == 15
    # D never bought: no purchase dates, zero revenue, still a customer.
    d = lt.loc["D"]
    assert pd.isna(d.first_purchase) and d.n_transactions == 0 and d.revenue == 0 and d.event == 0


def test_inactivity_lifetimes_at_the_window_edge(tmp_path, study):
    lt = _by_id(study.lifetimes("inactivity", usable_only=False))
    # 90-day rule, as_of 2023-06-30: cut-off is a last purchase before 2023-04-01.
    # B: last purchase 2023-02-15 -> churned then (its contract churn date is ignored).
    assert lt.loc["B"].event == 1
    assert lt.loc["B"].end_date == pd.Timestamp("2023-02-15")
    assert pd.isna(lt.loc["B"].churn_reason)
    # C: last purchase on the as-of date -> censored at as_of.
    assert lt.loc["C"].event == 0 and lt.loc["C"].end_date == pd.Timestamp("2023-06-30")
    # D: no purchase, signed up 60 days before as_of (< 90) -> censored, not churned.
    assert lt.loc["D"].event == 0
    # A: left-truncated, last purchase 2023-01-05 -> churned at that date.
    assert lt.loc["A"].event == 1 and lt.loc["A"].duration_days == 204


def test_inactivity_exactly_at_the_threshold_is_not_churn(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "customers.csv").write_text("customer_id,signup_date\nX,2023-01-01\nY,2023-01-01\n")
    # X's last purchase is exactly 90 days before as_of; Y's is 91 days before.
    (d / "transactions.csv").write_text("customer_id,date,amount\nX,2023-04-01,1\nY,2023-03-31,1\n")
    p = tmp_path / "p.yaml"
    p.write_text(
        "data:\n  path: data\n  as_of: 2023-06-30\n  window_start: 2023-01-01\n"
        "analysis:\n  inactivity_days: 90\n"
    )
    lt = _by_id(data.load_study_data(p).lifetimes("inactivity"))
    assert lt.loc["X"].event == 0 and lt.loc["Y"].event == 1


def test_left_truncated_customer_without_activity_in_window_is_excluded_with_a_note(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "customers.csv").write_text("customer_id,signup_date\nOLD,2022-01-01\nNEW,2023-01-01\n")
    (d / "transactions.csv").write_text(
        "customer_id,date,amount\nNEW,2023-01-02,1\nNEW,2023-06-01,1\n"
    )
    p = tmp_path / "p.yaml"
    p.write_text("data:\n  path: data\n  as_of: 2023-06-30\n  window_start: 2023-01-01\n")
    s = data.load_study_data(p)
    lt = s.lifetimes("inactivity")
    assert list(lt.customer_id) == ["NEW"]
    assert "1 left-truncated customers" in s.notes[0]


def test_panel_rows_span_entry_to_end(study):
    pn = study.panel("month")
    rows = pn.groupby("customer_id").period.agg(["min", "max", "count"])
    # A: Jan..Jun (6 months, entered at window start); B: Jan..Mar (churn month included);
    # C: Feb..Jun; D: May..Jun.
    assert rows.loc["A"].tolist() == [pd.Timestamp("2023-01-01"), pd.Timestamp("2023-06-01"), 6]
    assert rows.loc["B"].tolist() == [pd.Timestamp("2023-01-01"), pd.Timestamp("2023-03-01"), 3]
    assert rows.loc["C", "count"] == 5 and rows.loc["D", "count"] == 2
    b = pn[pn.customer_id == "B"].set_index("period")
    assert b.churned.tolist() == [0, 0, 1]
    assert b.revenue.tolist() == [20, 30, 0] and b.active.tolist() == [1, 1, 0]


def test_panel_same_day_purchases_and_empty_periods(study):
    pn = study.panel("month").set_index(["customer_id", "period"])
    a_jan = pn.loc[("A", pd.Timestamp("2023-01-01"))]
    assert (a_jan.revenue, a_jan.transactions, a_jan.margin) == (15, 2, 3)
    a_feb = pn.loc[("A", pd.Timestamp("2023-02-01"))]
    assert (a_feb.revenue, a_feb.transactions, a_feb.active) == (0, 0, 0)


def test_panel_member_flag_and_experience_aggregates(study):
    c = study.panel("month").set_index(["customer_id", "period"]).loc["C"]
    # enrolled 2023-03-15, left 2023-05-10: member in March, April and May.
    assert c.member.tolist() == [0, 1, 1, 1, 0]
    mar = c.loc[pd.Timestamp("2023-03-01")]
    assert mar.csat_mean == 3.0 and mar.nps_last == 5  # last answer in the month
    assert (mar.surveys, mar.tickets, mar.unresolved_tickets, mar.sla_breaches) == (2, 1, 1, 1)
    assert pd.isna(c.loc[pd.Timestamp("2023-04-01")].csat_mean)


def test_weekly_and_quarterly_panels(study):
    q = study.panel("quarter")
    assert sorted(q[q.customer_id == "A"].period) == [
        pd.Timestamp("2023-01-01"),
        pd.Timestamp("2023-04-01"),
    ]
    w = study.panel("week")
    a = w[w.customer_id == "A"]
    assert a.period.min() == pd.Timestamp("2022-12-26")  # Monday of the week holding 2023-01-01
    assert (a.period.dt.day_of_week == 0).all()


def test_cohorts(study):
    co = study.cohorts("month").set_index(["cohort", "periods_since"])
    # A signed up before the window: no cohort. B: Jan cohort; C: Feb; D: May.
    assert sorted({c for c, _ in co.index}) == [
        pd.Timestamp("2023-01-01"),
        pd.Timestamp("2023-02-01"),
        pd.Timestamp("2023-05-01"),
    ]
    jan = co.loc[pd.Timestamp("2023-01-01")]
    # B churns in March (periods_since 2): active at the end of Jan and Feb, not Mar.
    assert jan.customers_active.tolist() == [1, 1, 0]
    assert jan.retention_rate.tolist() == [1.0, 1.0, 0.0]
    assert jan.revenue_retention.tolist() == [1.0, 1.5, 0.0]


def test_derived_tables_are_ibis_expressions(study):
    import ibis.expr.types as ir

    lt = derive.lifetimes(study.source)
    assert isinstance(lt, ir.Table)
    assert isinstance(derive.panel(study.source, lifetimes_expr=lt), ir.Table)


def test_period_starts_cover_the_window():
    s = derive.period_starts(dt.date(2023, 1, 15), dt.date(2023, 4, 2), "month")
    assert [x.strftime("%Y-%m-%d") for x in s] == [
        "2023-01-01",
        "2023-02-01",
        "2023-03-01",
        "2023-04-01",
    ]


def test_config_overrides_reach_the_study(tmp_path, study):
    p = config.load_params(study.params.source_file, overrides={"analysis": {"period": "week"}})
    assert p.analysis.period == "week"


@pytest.mark.parametrize("definition", ["contractual", "inactivity"])
def test_cohort_table_from_counts_equals_the_panel_cohorts(tiny_world, definition):
    """derive.cohort_table (counts per cohort summed on the engine; what StudyData.cohorts
    uses) gives the table of derive.cohorts (a customer-period panel), period by period."""
    from analysis.data import derive

    st = data.load_study_data(
        tiny_world.params_file, overrides={"analysis": {"churn_definition": definition}}
    )
    for period in ("week", "month", "quarter"):
        lt = st.lifetimes_expr()
        want = derive.cohorts(st.source, period=period, lifetimes_expr=lt).to_pandas()
        got = derive.cohort_table(st.source, period=period, lifetimes_expr=lt)
        want["cohort"] = pd.to_datetime(want["cohort"]).astype("datetime64[s]")
        pd.testing.assert_frame_equal(got, want.reset_index(drop=True), rtol=1e-12)
