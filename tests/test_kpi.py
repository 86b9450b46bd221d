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


# --------------------------------------------------------------------------------------
# The report layer: words and tables from the control panel (analysis.report.kpi)
# --------------------------------------------------------------------------------------

import re  # noqa: E402

import numpy as np  # noqa: E402

from analysis.report import kpi as kpi_text  # noqa: E402
from analysis.report import page  # noqa: E402
from analysis.studies import kpi as kpi_study  # noqa: E402

BAD = re.compile(r"\b(nan|NaN|inf|None|NaT)\b")


def _months(n, start="2025-01-01", **values):
    periods = pd.date_range(start, periods=n, freq="MS")
    k = pd.DataFrame({"period": periods, "period_end": periods + pd.DateOffset(months=1)})
    for m in kpi.LEVEL_METRICS + kpi.RATE_METRICS:
        k[m] = np.nan
    for m, v in values.items():
        k[m] = [np.nan if x is None else x for x in v] if isinstance(v, list) else v
    if "complete" not in values:
        k["complete"] = True
    return k


def _all_text(k, panel, currency="EUR"):
    out = [
        kpi_text.verdict(panel, currency=currency, inactivity_days=90),
        *kpi_text.flag_sentences(panel, currency=currency),
        kpi_text.customers_finding(k, panel, inactivity_days=90),
        kpi_text.revenue_finding(panel, currency=currency),
        kpi_text.service_finding(panel),
        kpi_text.year_finding(panel, currency=currency),
        kpi_text.status_note(panel, inactivity_days=90),
    ]
    for spec in kpi_text.tile_specs(panel, currency=currency):
        t = page.tile(**spec)
        out += [t["text"], t["note"], t["change"], t["flag"], t["target"]]
    g = panel.granularity
    tables = [
        kpi_text.recent_table(
            k, metrics=["active", "churn_rate"], granularity=g, currency=currency
        ),
        kpi_text.service_table(panel),
        kpi_text.ranges_table(panel, currency=currency),
        kpi_text.year_on_year_table(k, granularity=g, currency=currency),
        *kpi_text.group_tables(k, granularity=g, periods=24, currency=currency).values(),
    ]
    for df in tables:
        out += [str(c) for c in df.columns] + [str(v) for v in df.to_numpy().ravel()]
    return out


def test_hidden_churn_reads_not_yet_observable_never_zero():
    # Churn of the last two months cannot be seen yet; a naive table showed 0.00% there.
    k = _months(
        6,
        active=[100.0] * 6,
        churned=[5, 4, 6, 5, None, None],
        churn_rate=[0.05, 0.04, 0.06, 0.05, None, None],
        retention_rate=[0.95, 0.96, 0.94, 0.95, None, None],
        not_observable=[""] * 4 + ["churned, churn_rate, retention_rate"] * 2,
        churn_observable=[True] * 4 + [False] * 2,
        end_count_final=[True] * 4 + [False] * 2,
    )
    table = kpi_text.recent_table(
        k, metrics=["active", "churned", "churn_rate"], granularity="month", currency="EUR"
    )
    assert table["Churn rate"].tolist()[-2:] == ["not yet observable"] * 2
    assert table["Active customers"].iloc[-1] == "100 (provisional)"
    assert not table.isin(["0.00%", "0"]).any().any()
    panel = kpi_study.control_panel(k, granularity="month")
    v = kpi_text.verdict(panel, currency="EUR", inactivity_days=90)
    assert "Churn since May 2025 is not yet observable" in v and "April 2025, had 5.00%" in v
    churn_tile = next(
        t for t in kpi_text.tile_specs(panel, currency="EUR") if t["name"] == "Churn rate"
    )
    assert churn_tile["value"] == 0.05 and "April 2025" in churn_tile["note"]
    assert "later months not yet observable" in churn_tile["note"]


def test_verdict_words_follow_the_signs():
    k = _months(
        13,
        active=[1000.0] * 11 + [1000.0, 980.0],
        churn_rate=[0.02] * 12 + [0.025],
        revenue=[5000.0] * 12 + [5000.0],
        nps=[20.0] * 12 + [19.6],  # shown as 20 after rounding: "stayed"
    )
    panel = kpi_study.control_panel(k, granularity="month")
    v = kpi_text.verdict(panel, currency="EUR")
    assert v.startswith("In January 2026, compared with December 2025, ")
    assert "active customers fell by 2.0% to 980" in v
    assert "churn rate rose by 0.5 points to 2.50%" in v
    assert "revenue stayed at €5,000" in v and "NPS stayed at 20" in v
    assert "by −" not in v and "by -" not in v and "by +" not in v
    # churn is outside its range 2.00-2.00%, active below it: both flagged
    assert "2 KPIs are outside their usual range" in v
    flags = kpi_text.flag_sentences(panel, currency="EUR")
    assert flags[0] == (
        "Active customers in January 2026 (980) are below their usual range "
        "(1,000 to 1,000 in the previous 12 months)."
    )
    assert flags[1].startswith("Churn rate in January 2026 (2.50%) is above its usual range")
    nps_tile = next(t for t in kpi_text.tile_specs(panel, currency="EUR") if t["name"] == "NPS")
    assert nps_tile["change"] == 0  # −0.4 shown with no decimals: no change, no "▼ 0"


def test_flag_sentence_of_the_issue_example():
    hist = [0.021, 0.025, 0.032, 0.030, 0.028, 0.022, 0.024, 0.026, 0.029, 0.031, 0.027, 0.023]
    k = _months(13, start="2025-06-01", churn_rate=hist + [0.039])
    panel = kpi_study.control_panel(k, granularity="month")
    assert kpi_text.flag_sentences(panel, currency="EUR") == [
        "Churn rate in June 2026 (3.90%) is above its usual range "
        "(2.10% to 3.20% in the previous 12 months)."
    ]


def test_service_levels_against_targets_in_words():
    k = _months(4, fcr_rate=[0.7, 0.8, 0.78, 0.74], sla_compliance=[0.95, 0.85, 0.91, 0.92])
    panel = kpi_study.control_panel(
        k, granularity="month", targets={"first_contact_resolution": 0.75, "sla_met": 0.9}
    )
    text = kpi_text.service_finding(panel)
    assert text == (
        "In April 2025, 74.0% of tickets were resolved at first contact (target 75.0%: missed) "
        "and 92.0% of tickets met the SLA (target 90.0%: met)."
    )
    t = kpi_text.service_table(panel).set_index("KPI")
    assert t.loc["SLA compliance", "Recent periods on target"] == "3 of 4"
    assert t.loc["First-contact resolution", "Meets target?"] == "no"
    tiles = {s["name"]: s for s in kpi_text.tile_specs(panel, currency="EUR")}
    assert tiles["SLA compliance"]["target"] == 0.9


@pytest.mark.parametrize(
    "case",
    ["one period", "partial only", "nothing known", "all suppressed", "hidden churn only"],
)
def test_no_missing_value_words_on_edge_cases(case):
    if case == "one period":
        k = _months(1, active=[10.0], revenue=[3.0], churn_rate=[0.1], churned=[1.0])
    elif case == "partial only":
        k = _months(2, active=[10.0, 11.0], revenue=[3.0, 1.0], complete=[False, False])
        k["complete"] = False
    elif case == "nothing known":
        k = _months(3)
    elif case == "all suppressed":
        k = _months(3, suppressed=["active, revenue, churn_rate"] * 3)
    else:
        k = _months(
            3,
            active=[5.0] * 3,
            not_observable=["churn_rate"] * 3,
            churn_observable=[False] * 3,
            end_count_final=[False] * 3,
        )
    panel = kpi_study.control_panel(k, granularity="month")
    for text in _all_text(k, panel):
        assert not BAD.search(str(text)), (case, text)


def test_report_text_on_the_hand_made_world(study):  # noqa: F811
    for size in (10, 1):
        study.params.analysis.min_group_size = size
        for gran in ("day", "week", "month", "quarter"):
            k = kpi.kpi_table(study, granularity=gran)
            panel = kpi_study.study_panel(study, k, granularity=gran)
            for text in _all_text(k, panel):
                assert not BAD.search(str(text)), (size, gran, text)


@pytest.mark.parametrize("definition", ["contractual", "inactivity"])
def test_customer_and_member_counts_on_the_engine_equal_per_customer_counts(tiny_world, definition):
    """The KPI counts come from counts per day built on the engine (issue 16: KPIs entirely on
    the engine); they equal the counts over the per-customer lifetimes in pandas."""
    from analysis import data

    st = data.load_study_data(
        tiny_world.params_file, overrides={"analysis": {"churn_definition": definition}}
    )
    days = kpi_study.lifetime_day_counts(st)
    lt = st.lifetimes()
    for gran in ("day", "week", "month"):
        periods = _period_frame(st.window_start, st.as_of, gran)
        want = kpi.customer_counts(lt, periods)
        got = kpi_study.customer_counts_from_days(
            entry=days["entry"], start=days["start"], churn=days["churn"], periods=periods
        )
        pd.testing.assert_frame_equal(got, want)
        # members at each period end: memberships of customers in the lifetimes, ending at
        # the earlier of leaving the programme and churning (written out per membership)
        loy = st.table("loyalty")
        ends = lt.loc[lt["event"] == 1, ["customer_id", "end_date"]]
        m = loy[loy["customer_id"].isin(lt["customer_id"])].merge(
            ends, on="customer_id", how="left"
        )
        m["member_end"] = pd.concat(
            [pd.to_datetime(m["left_date"]), pd.to_datetime(m["end_date"])], axis=1
        ).min(axis=1)
        m = m[m["member_end"].isna() | (m["member_end"] > pd.to_datetime(m["enrolled_date"]))]
        pe = periods["period_end"].to_numpy()
        want_members = [
            int(((pd.to_datetime(m["enrolled_date"]) < e) & ~(m["member_end"] < e)).sum())
            for e in pe
        ]
        got_members = kpi_study.member_counts_from_days(
            days["enrolled"], days["member_end"], periods
        )
        assert got_members.tolist() == want_members
        once = lt[(lt["event"] == 1) & (lt["n_transactions"] <= 1)]["end_date"]
        once = pd.to_datetime(once)
        ps = periods["period"].to_numpy()
        want_once = [int(((once >= a) & (once < b)).sum()) for a, b in zip(ps, pe, strict=True)]
        assert (days["once"].before(pe) - days["once"].before(ps)).tolist() == want_once
    # the note on customers left out is made as by the per-customer path, once
    ov = {"analysis": {"churn_definition": definition}}
    st_e, st_p = (data.load_study_data(tiny_world.params_file, overrides=ov) for _ in "ep")
    kpi_study.lifetime_day_counts(st_e)
    st_p.lifetimes()
    assert st_e.notes == st_p.notes
