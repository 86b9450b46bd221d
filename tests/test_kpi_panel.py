"""The KPI control panel: what the data can show yet, comparisons, usual ranges, flags, targets.

Expected values are worked out by hand beside each test, or computed independently from
the raw transactions with plain pandas (the inactivity world and CDNOW).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import data
from analysis.studies import kpi


def _frame(values: dict[str, list[float]], *, start="2022-01-01", **cols) -> pd.DataFrame:
    n = len(next(iter(values.values())))
    periods = pd.date_range(start, periods=n, freq="MS")
    k = pd.DataFrame({"period": periods, "period_end": periods + pd.DateOffset(months=1)})
    for m in kpi.LEVEL_METRICS + kpi.RATE_METRICS:
        k[m] = np.nan
    for m, v in values.items():
        k[m] = [np.nan if x is None else float(x) for x in v]
    k["complete"] = cols.pop("complete", [True] * n)
    for c, v in cols.items():
        k[c] = v
    return k


# --------------------------------------------------------------------------------------
# What the data can show yet
# --------------------------------------------------------------------------------------


def test_churn_is_observable_until_inactivity_days_before_as_of():
    # as_of 2023-06-30, 90 days: a last purchase on 2023-03-31 is 91 days old (churned),
    # one on 2023-04-01 is 90 days old (not yet): churn is visible before 2023-04-01.
    until = kpi.churn_observable_until(
        pd.Timestamp("2023-06-30").date(), definition="inactivity", inactivity_days=90
    )
    assert until == pd.Timestamp("2023-04-01")
    assert (
        kpi.churn_observable_until(
            pd.Timestamp("2023-06-30").date(), definition="contractual", inactivity_days=90
        )
        is None
    )
    k = _frame({"churned": [5, 4, 3, 2, 0, 0], "churn_rate": [0.05, 0.04, 0.03, 0.02, 0, 0]})
    k["retention_rate"] = 1 - k["churn_rate"]
    k["active"] = 100.0
    k["at_risk"] = 100.0
    k["revenue_per_customer"] = 3.0
    k["period"] = pd.date_range("2023-01-01", periods=6, freq="MS")
    k["period_end"] = k["period"] + pd.DateOffset(months=1)
    out = kpi.mark_observability(k, until)
    # January-March end on or before 2023-04-01: observable; April-June not.
    assert out["churn_observable"].tolist() == [True] * 3 + [False] * 3
    assert out["churn_rate"].iloc[:3].tolist() == [0.05, 0.04, 0.03]
    assert out["churn_rate"].iloc[3:].isna().all() and out["churned"].iloc[3:].isna().all()
    assert out["not_observable"].iloc[4] == "churned, churn_rate, retention_rate"
    # Counts at a period's start are final up to April (its start is 2023-04-01).
    assert out["start_count_final"].tolist() == [True] * 4 + [False] * 2
    status = kpi.kpi_status(out)
    assert status["churn_rate"].tolist() == ["ok"] * 3 + ["not_observable"] * 3
    assert status["active"].tolist() == ["ok"] * 3 + ["provisional"] * 3
    assert status["revenue_per_customer"].tolist() == ["ok"] * 4 + ["provisional"] * 2
    # nothing blanked the input
    assert k["churn_rate"].iloc[5] == 0


def test_status_precedence():
    k = _frame(
        {"revenue": [10, None, 30, 40], "nps": [None, 5, 6, 7]},
        complete=[True, True, True, False],
        suppressed=["", "revenue", "", ""],
        not_observable=["", "", "", ""],
    )
    s = kpi.kpi_status(k, ["revenue", "nps"])
    assert s["revenue"].tolist() == ["ok", "suppressed", "ok", "partial"]
    assert s["nps"].tolist() == ["missing", "ok", "ok", "partial"]
    # a partial period's value is shown but never judged
    v = kpi.judged_values(k, s)
    assert v["revenue"].iloc[3] != v["revenue"].iloc[3] and v["nps"].iloc[2] == 6


# --------------------------------------------------------------------------------------
# Comparisons, usual ranges, flags, service levels
# --------------------------------------------------------------------------------------


def test_comparisons_use_the_latest_final_value():
    # 14 months Jan 2022 - Feb 2023; Feb 2023 is partial, so Jan 2023 is "this month".
    active = [100 + 10 * i for i in range(14)]  # Jan 2023 = 220, Dec 2022 = 210, Jan 2022 = 100
    churn = [0.02] * 12 + [0.05, 0.09]
    k = _frame({"active": active, "churn_rate": churn}, complete=[True] * 13 + [False])
    c = kpi.comparisons(k, granularity="month").set_index("metric")
    a = c.loc["active"]
    assert a.period == pd.Timestamp("2023-01-01") and a.value == 220
    assert a.change_prev == 10 and a.rel_change_prev == pytest.approx(10 / 210)
    assert a.year_period == pd.Timestamp("2022-01-01")
    assert a.change_year == 120 and a.rel_change_year == pytest.approx(1.2)
    r = c.loc["churn_rate"]
    # rates: differences of shares, never relative changes
    assert r.change_prev == pytest.approx(0.03) and np.isnan(r.rel_change_prev)
    assert r.change_year == pytest.approx(0.03)
    # a KPI with no value anywhere has no comparison and no period
    assert pd.isna(c.loc["nps"].period) and np.isnan(c.loc["nps"].change_prev)


def test_comparisons_skip_unfinal_neighbours():
    # December's churn is not observable: January has no "previous" comparison.
    k = _frame(
        {"churn_rate": [0.1, 0.2, None, 0.3]},
        not_observable=["", "", "churn_rate", ""],
    )
    c = kpi.comparisons(k, granularity="month", metrics=["churn_rate"]).iloc[0]
    assert c.value == 0.3 and np.isnan(c.change_prev) and pd.isna(c.prev_period)


def test_weekly_year_earlier_is_52_weeks():
    assert kpi.year_earlier(pd.Timestamp("2024-01-08"), "week") == pd.Timestamp("2023-01-09")
    assert kpi.year_earlier(pd.Timestamp("2024-03-01"), "month") == pd.Timestamp("2023-03-01")


def test_normal_range_and_flags_by_hand():
    # churn: 12 months of 2.1%-3.2%, then 3.9% -> above its usual range (2.1-3.2%).
    hist = [0.021, 0.025, 0.032, 0.030, 0.028, 0.022, 0.024, 0.026, 0.029, 0.031, 0.027, 0.023]
    revenue = [100, 120, 110, 90, 95, 105, 115, 100, 101, 99, 98, 97, 80]
    nps = [None] * 9 + [10, 12, 11, 11]  # 3 answers before the latest: below min_history 6
    k = _frame({"churn_rate": hist + [0.039], "revenue": revenue, "nps": nps})
    r = kpi.normal_ranges(k, periods=12).set_index("metric")
    c = r.loc["churn_rate"]
    assert (c.low, c.high, c.value, c.n_history, c.flag) == (0.021, 0.032, 0.039, 12, "high")
    assert c.window_start == pd.Timestamp("2022-01-01")
    assert r.loc["revenue"].flag == "low" and r.loc["revenue"].low == 90
    assert r.loc["nps"].n_history == 3 and r.loc["nps"].flag == ""
    assert np.isnan(r.loc["nps"].low)
    # a shorter window: the last 4 months before Jan 2023 are Sep-Dec 2022
    r4 = kpi.normal_ranges(k, periods=4, metrics=["revenue"]).iloc[0]
    assert (r4.low, r4.high, r4.n_history) == (97, 101, 4)
    assert r4.window_start == pd.Timestamp("2022-09-01")
    # inside the range: no flag; equal to the edge: no flag
    k2 = _frame({"revenue": [1, 5, 3, 2, 5]})
    assert kpi.normal_ranges(k2, periods=4, min_history=3).iloc[0].flag == ""
    with pytest.raises(ValueError):
        kpi.normal_ranges(k2, periods=0)


def test_unfinal_periods_neither_flag_nor_enter_the_range():
    # The last two months' churn is not observable: the flag judges July, and the 0s
    # of the hidden months (as a naive table would show them) are not in the range.
    k = _frame(
        {"churn_rate": [0.03, 0.031, 0.029, 0.030, 0.032, 0.028, 0.05, None, None]},
        not_observable=[""] * 7 + ["churn_rate"] * 2,
    )
    c = kpi.normal_ranges(k, periods=6, metrics=["churn_rate"]).iloc[0]
    assert c.period == pd.Timestamp("2022-07-01") and c.flag == "high" and c.low == 0.028


def test_service_levels_against_targets():
    k = _frame(
        {
            "sla_compliance": [0.95, 0.85, 0.91, 0.88],
            "fcr_rate": [0.7, 0.72, 0.69, 0.74],
            "churn_rate": [0.03, 0.02, 0.025, 0.04],
        }
    )
    targets = {"sla_met": 0.9, "churn_rate": 0.03, "bogus": 1.0}
    s = kpi.service_levels(k, targets=targets, periods=3).set_index("metric")
    sla = s.loc["sla_compliance"]
    assert sla.value == 0.88 and sla.target == 0.9 and sla.met is False
    assert sla.gap == pytest.approx(-0.02)
    # last 3 months 0.85, 0.91, 0.88: one met
    assert (sla.periods_met, sla.periods_judged) == (1, 3)
    # FCR has no target: shown, never judged
    assert np.isnan(s.loc["fcr_rate"].target) and pd.isna(s.loc["fcr_rate"].met)
    # churn: lower is better; 4% misses a 3% target; 2% and 2.5% met it
    ch = s.loc["churn_rate"]
    assert ch.met is False and (ch.periods_met, ch.periods_judged) == (2, 3)
    assert kpi.resolve_targets(targets) == (
        {"sla_compliance": 0.9, "churn_rate": 0.03},
        ["bogus"],
    )
    assert kpi.meets_target("churn_rate", 0.03, 0.03) and kpi.meets_target("nps", 20, 20)


def test_service_levels_without_service_data():
    k = _frame({"revenue": [1, 2, 3]})
    assert kpi.service_levels(k, targets={}).empty


def test_sparklines_hold_final_values_only():
    k = _frame(
        {"revenue": [1, 2, 3, 4, 5, 6]},
        complete=[True] * 5 + [False],
        suppressed=["", "revenue", "", "", "", ""],
    )
    assert kpi.sparklines(k, periods=3, metrics=["revenue"]) == {"revenue": [3.0, 4.0, 5.0]}
    assert kpi.sparklines(k, periods=12, metrics=["revenue"]) == {"revenue": [1.0, 3.0, 4.0, 5.0]}


def test_control_panel_collects_everything():
    k = _frame(
        {"churn_rate": [0.02] * 13 + [0.05, None], "active": [100.0] * 15},
        complete=[True] * 14 + [False],
        churn_observable=[True] * 14 + [False],
        end_count_final=[True] * 14 + [False],
        not_observable=[""] * 14 + ["churn_rate"],
    )
    p = kpi.control_panel(k, granularity="month", normal_range_periods=12, targets={"x": 1})
    assert p.latest == pd.Timestamp("2023-02-01") and p.partial == pd.Timestamp("2023-03-01")
    assert p.churn_hidden_from == pd.Timestamp("2023-03-01")
    assert p.flags["metric"].tolist() == ["churn_rate"] and p.unknown_targets == ["x"]
    assert len(p.sparks["churn_rate"]) == 12


# --------------------------------------------------------------------------------------
# A generated inactivity world with planted churn, and CDNOW
# --------------------------------------------------------------------------------------

AS_OF = pd.Timestamp("2023-12-31")


def _inactivity_world(tmp_path, *, n=3000, seed=5, months=24):
    """Customers buy every 30 days from signup until a planted last purchase (or as_of).

    Each month 4% of buying customers make their last purchase. Gaps (30 days) are shorter
    than inactivity_days (90), so inactivity churn dates each planted stop at its last
    purchase once 90 days have passed. Only the required columns exist.
    """
    rng = np.random.default_rng(seed)
    start = AS_OF - pd.DateOffset(months=months) + pd.Timedelta(days=1)
    signup = start + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    life = rng.geometric(0.04, n)  # purchases made, the last one planted
    rows, last = [], []
    for i in range(n):
        dates = signup[i] + pd.to_timedelta(30 * np.arange(life[i]), unit="D")
        dates = dates[dates <= AS_OF]
        last.append(dates[-1])
        rows.append(pd.DataFrame({"customer_id": f"K{i:05d}", "date": dates, "amount": 10.0}))
    tx = pd.concat(rows, ignore_index=True)
    cust = pd.DataFrame({"customer_id": [f"K{i:05d}" for i in range(n)], "signup_date": signup})
    d = tmp_path / "data"
    d.mkdir()
    cust.to_csv(d / "customers.csv", index=False, date_format="%Y-%m-%d")
    tx.to_csv(d / "transactions.csv", index=False, date_format="%Y-%m-%d")
    p = tmp_path / "p.yaml"
    p.write_text(
        f"data:\n  path: data\n  as_of: {AS_OF.date()}\n  window_start: {start.date()}\n"
        "analysis:\n  churn_definition: inactivity\n  inactivity_days: 90\n"
    )
    return p, cust, tx


def _reference_churn(cust, tx, as_of, days):
    """Churn per month from the raw tables: last purchase in the month, over `days` ago."""
    last = tx.groupby("customer_id")["date"].max()
    churned = last[(as_of - last).dt.days > days]
    by_month = churned.dt.to_period("M").value_counts()
    first = pd.to_datetime(cust.set_index("customer_id")["signup_date"])
    return by_month, first, last


def test_inactivity_world_churn_is_not_yet_observable_at_the_end(tmp_path):
    params, cust, tx = _inactivity_world(tmp_path)
    study = data.load_study_data(params)
    k = kpi.kpi_table(study, granularity="month").set_index("period")
    by_month, first, last = _reference_churn(cust, tx, AS_OF, 90)
    # as_of 2023-12-31 - 90 days = 2023-10-02: October's churn is not all visible yet.
    hidden = k.index >= pd.Timestamp("2023-10-01")
    assert (~k["churn_observable"].to_numpy() == hidden).all()
    assert k.loc[hidden, "churn_rate"].isna().all() and k.loc[hidden, "churned"].isna().all()
    # where it is observable, churn matches the raw-table reference and the planted 4%
    seen = k[~hidden & (k.index >= pd.Timestamp("2022-06-01"))]
    for p, r in seen.iterrows():
        assert r.churned == by_month.get(p.to_period("M"), 0)
        # at risk: signed up before the month's end and not churned before its start
        gone = ((AS_OF - last).dt.days > 90) & (last < p)
        assert r.at_risk == int((first < r.period_end).sum() - gone.sum())
    assert seen["churn_rate"].mean() == pytest.approx(0.04 * 30 / 30.4, abs=0.01)
    # the naive table would have said 0% in those months, though customers did stop then
    planted = last[(last >= pd.Timestamp("2023-11-01")) & (last < pd.Timestamp("2023-12-01"))]
    assert len(planted) > 20
    panel = kpi.study_panel(study, k.reset_index(), granularity="month")
    assert panel.churn_hidden_from == pd.Timestamp("2023-10-01")
    churn = panel.comparisons.set_index("metric").loc["churn_rate"]
    assert churn.period == pd.Timestamp("2023-09-01") and churn.value > 0.02
    status = panel.status.set_index("period")
    assert (status.loc[hidden, "churn_rate"] == kpi.NOT_OBSERVABLE).all()
    assert (status.loc[hidden, "active"] == kpi.PROVISIONAL).all()


@pytest.fixture(scope="module")
def cdnow_study(tmp_path_factory):
    from analysis.data import cdnow

    base = tmp_path_factory.mktemp("cdnow")
    cdnow.write(cdnow.load(), base / "data")
    p = base / "p.yaml"
    p.write_text(
        "data:\n  path: data\n  format: parquet\n  as_of: 1998-06-30\n"
        "  window_start: 1997-01-01\n  currency: USD\n"
        "analysis:\n  churn_definition: inactivity\n  inactivity_days: 180\n"
        "  group: segment\n"
    )
    return data.load_study_data(p)


def test_cdnow_last_six_months_are_not_yet_observable(cdnow_study):
    k = kpi.kpi_table(cdnow_study, granularity="month")
    # 1998-06-30 - 180 days = 1998-01-01: January to June 1998 cannot show churn yet
    hidden = k["period"] >= pd.Timestamp("1998-01-01")
    assert hidden.sum() == 6
    assert k.loc[hidden, "churn_rate"].isna().all()
    assert not (k["churn_rate"] == 0).any()
    # December 1997 from the raw transactions: last purchase in December, 180+ days ago
    tx = cdnow_study.source.table("transactions").to_pandas()
    last = pd.to_datetime(tx.groupby("customer_id")["date"].max())
    gone = (pd.Timestamp("1998-06-30") - last).dt.days > 180
    dec = k.set_index("period").loc[pd.Timestamp("1997-12-01")]
    in_dec = gone & (last >= "1997-12-01") & (last < "1998-01-01")
    before = gone & (last < "1997-12-01")
    assert dec.churned == in_dec.sum()
    assert dec.at_risk == len(last) - before.sum()  # every customer signed up by March 1997
    assert dec.churn_rate == pytest.approx(in_dec.sum() / (len(last) - before.sum()))
    panel = kpi.study_panel(cdnow_study, k)
    c = panel.comparisons.set_index("metric").loc["churn_rate"]
    assert c.period == pd.Timestamp("1997-12-01") and c.value == pytest.approx(dec.churn_rate)
    # the month headline (June 1998) is the latest complete period; revenue is final there
    assert panel.latest == pd.Timestamp("1998-06-01")
    assert panel.comparisons.set_index("metric").loc["revenue"].period == panel.latest
    st = panel.status.set_index("period")
    assert (st.loc[pd.Timestamp("1998-01-01") :, "churn_rate"] == kpi.NOT_OBSERVABLE).all()


def test_cdnow_dashboard_words_never_say_zero_churn(cdnow_study):
    from analysis.report import kpi as kpi_text

    k = kpi.kpi_table(cdnow_study, granularity="month")
    panel = kpi.study_panel(cdnow_study, k)
    verdict = kpi_text.verdict(panel, currency="USD", inactivity_days=180)
    assert "Churn since January 1998 is not yet observable" in verdict
    assert "December 1997, had 10.34%" in verdict  # 620 / 5,994, as computed above
    assert "0.00%" not in verdict
    tables = kpi_text.group_tables(k, granularity="month", periods=18, currency="USD")
    churn = tables["Churn and retention"].set_index("Period")
    assert (churn.loc["January 1998":"June 1998", "Churn rate"] == "not yet observable").all()
    assert not churn["Churn rate"].str.startswith("0.00%").any()
    # one-time buyers: of the 4,192 who "left" in January 1997, those who bought only then
    tx = cdnow_study.source.table("transactions").to_pandas()
    per = tx.groupby("customer_id")["date"].agg(["min", "max", "count"])
    once_jan = ((per["count"] == 1) & (pd.to_datetime(per["min"]) < "1997-02-01")).sum()
    cust = tables["Customers"].set_index("Period")
    assert cust.loc["January 1997", "Of them: bought once or never"] == f"{once_jan:,}"


def test_every_kpi_with_a_value_is_in_the_full_tables():
    """Nothing the dashboard showed is lost: every KPI column is in one of the split tables."""
    from analysis.report import kpi as kpi_text

    n = 14
    values = {m: [float(i + 1) for i in range(n)] for m in kpi_text.METRIC_LABELS}
    for m in ("churn_rate", "retention_rate", "member_share", "fcr_rate", "sla_compliance"):
        values[m] = [0.01 * (i + 1) for i in range(n)]
    k = _frame(values)
    wide = kpi_text.display_table(k, granularity="month", periods=12, currency="EUR")
    split = kpi_text.group_tables(k, granularity="month", periods=12, currency="EUR")
    cols = [c for t in split.values() for c in t.columns if c != "Period"]
    assert sorted(cols) == sorted(c for c in wide.columns if c != "Period")
    for t in split.values():
        assert len(t.columns) <= 6
        for c in t.columns:
            assert t[c].tolist() == wide[c].tolist()


def test_member_share_is_a_share_when_members_join_after_their_last_purchase(tmp_path):
    """Under inactivity churn, a membership that starts after the customer was lost never counts.

    Reference: members at a month's end counted straight from the raw tables (enrolled by
    then, and still active: last purchase within the inactivity window or not yet lapsed).
    """
    params, cust, tx = _inactivity_world(tmp_path)
    last = tx.groupby("customer_id")["date"].max()
    lost = last[(AS_OF - last).dt.days > 90]
    # half of the lost customers "join" 120 days after their last purchase; some actives join too
    late = lost.iloc[::2]
    active_ids = last.index.difference(lost.index)[:40]
    mem = pd.DataFrame(
        {
            "customer_id": [*late.index, *active_ids],
            "enrolled_date": [
                *(late + pd.Timedelta(days=120)).clip(upper=AS_OF),
                *[pd.Timestamp("2023-06-15")] * len(active_ids),
            ],
        }
    )
    mem.to_csv(params.parent / "data" / "loyalty.csv", index=False, date_format="%Y-%m-%d")
    study = data.load_study_data(params)
    k = kpi.kpi_table(study, granularity="month").set_index("period")
    share = k["member_share"].dropna()
    assert len(share) and (share >= 0).all() and (share <= 1).all()
    # at the end of June 2023: only the active customers who enrolled on 15 June are members
    june = k.loc[pd.Timestamp("2023-06-01")]
    end = june.period_end
    enrolled = mem[pd.to_datetime(mem.enrolled_date) <= end].customer_id
    gone_by_end = set(
        last[(last + pd.Timedelta(days=90) <= end) & last.index.isin(lost.index)].index
    )
    want = sum(1 for c in enrolled if c not in gone_by_end and c not in set(late.index))
    assert june.members == want
