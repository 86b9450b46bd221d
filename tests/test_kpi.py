"""KPI computations on the hand-made world of test_derive (answers worked out by hand)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import kpi
from analysis.studies.kpi import _period_frame
from tests.test_derive import study  # noqa: F401  (fixture)


def test_customer_counts_by_month(study):  # noqa: F811
    periods = _period_frame(study.window_start, study.as_of, "month")
    c = kpi.customer_counts(study.lifetimes(), periods).set_index("period")
    jan, feb, mar = (c.loc[pd.Timestamp(f"2023-0{m}-01")] for m in (1, 2, 3))
    # January: A enters at the window start, B signs up -> 2 at risk, 2 active, 1 new.
    assert (jan.at_risk, jan.active, jan.new, jan.churned) == (2, 2, 1, 0)
    # February: C signs up -> 3 at risk, 3 active.
    assert (feb.at_risk, feb.active, feb.new, feb.churned) == (3, 3, 1, 0)
    # March: B churns on 2023-03-20.
    assert (mar.at_risk, mar.active, mar.new, mar.churned) == (3, 2, 0, 1)


def test_kpi_table_rates_and_suppression(study):  # noqa: F811
    k = kpi.kpi_table(study, granularity="month")
    # With 2-4 customers every customer KPI is below min_group_size (10) and suppressed.
    assert k["churn_rate"].isna().all() and k["active"].isna().all()
    assert k["suppressed"].str.contains("churn_rate").all()
    study.params.analysis.min_group_size = 1
    k = kpi.kpi_table(study, granularity="month").set_index("period")
    mar = k.loc[pd.Timestamp("2023-03-01")]
    assert mar.churn_rate == pytest.approx(1 / 3)
    assert mar.revenue == 0
    # NPS in March: answers 9 (promoter) and 5 (detractor) -> 0; CSAT mean 3.
    assert mar.nps == 0 and mar.csat_mean == 3
    assert mar.fcr_rate == 0 and mar.sla_compliance == 0
    feb = k.loc[pd.Timestamp("2023-02-01")]
    assert feb.revenue == 37 and feb.revenue_per_customer == pytest.approx(37 / 3)
    assert feb.fcr_rate == 1
    # Loyalty: C is a member at the ends of March and April (left 2023-05-10).
    assert k.loc[pd.Timestamp("2023-03-01"), "members"] == 1
    assert k.loc[pd.Timestamp("2023-05-01"), "members"] == 0
    # End of April: A and C are customers (B churned in March, D joins in May) -> 1 of 2.
    assert k.loc[pd.Timestamp("2023-04-01"), "member_share"] == pytest.approx(1 / 2)


def test_changes_versus_previous_period_and_year():
    periods = pd.date_range("2022-01-01", periods=14, freq="MS")
    k = pd.DataFrame({"period": periods})
    for m in kpi.LEVEL_METRICS + kpi.RATE_METRICS:
        k[m] = float("nan")
    k["active"] = [100.0 + i for i in range(14)]
    k["churn_rate"] = [0.02] * 13 + [0.03]
    out = kpi.with_changes(k, granularity="month").set_index("period")
    feb23 = out.loc[pd.Timestamp("2023-02-01")]
    assert feb23.active_vs_prev == pytest.approx(1 / 112)
    assert feb23.active_vs_year == pytest.approx((113 - 101) / 101)
    assert feb23.churn_rate_vs_prev == pytest.approx(0.01)
    assert pd.isna(out.loc[pd.Timestamp("2022-06-01")].active_vs_year)


def test_findings_are_generated_from_the_numbers(study):  # noqa: F811
    study.params.analysis.min_group_size = 1
    k = kpi.kpi_table(study, granularity="month")
    text = " ".join(kpi.findings(k, granularity="month", currency="EUR"))
    assert "June 2023" in text and "3 active customers" in text  # A, C and D


def test_validation_summary_has_no_example_keys():
    from analysis.errors import Problem

    p = Problem(
        "transactions",
        "customer_id",
        "orphan",
        "rows for unknown customers",
        3,
        ("C0000001", "C0000002"),
        severity="warning",
    )
    s = kpi.validation_summary([p], ["note"])
    assert "C0000001" not in s.to_string()
    assert s.rows.iloc[0] == 3
