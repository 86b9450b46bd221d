"""The retention study and report on customer bases unlike the sample world (issues 14 and 15).

Each test builds a small base whose right answer is known: by construction (planted shares),
from an independent estimator (statsmodels' Kaplan-Meier), or by counting on paper. The
study must never crash, must count every customer in its totals, must report one-time buyers
apart under inactivity churn, and its sentences must follow the numbers they quote.
"""

from __future__ import annotations

import datetime as dt
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.survfunc import SurvfuncRight

from analysis.report import labels
from analysis.report import retention as rt
from analysis.report.lint import lint_page
from analysis.stats.cox import CoxResult
from analysis.studies import retention as study
from analysis.studies.sections import Skipped, is_skipped

matplotlib.use("Agg")

_BAD = re.compile(r"(?<![A-Za-z])(nan|NaN|inf|None|NaT)(?![A-Za-z])")
_HORIZONS = [3, 6, 12, 24]


def _contract_base(n, seed, *, churn_rate=0.04, **attrs):
    """A contractual base: exponential tenures (monthly churn rate), censored at 30 months."""
    rng = np.random.default_rng(seed)
    t = rng.exponential(1 / churn_rate, n)
    c = rng.uniform(6, 30, n)
    out = pd.DataFrame(
        {
            "duration_months": np.minimum(t, c),
            "event": (t <= c).astype(int),
            "entry_months": 0.0,
            "churn_reason": None,
        }
    )
    for k, v in attrs.items():
        out[k] = v
    return out


def _run(lt, **kw):
    args = dict(group="segment", horizons=_HORIZONS, rmst_horizon=24, covariates=["segment"])
    args.update(kw)
    return study.retention_study(lt, **args)


def _all_text(rep) -> str:
    """Every sentence the report writes from a result (verdict, findings, notes, skipped)."""
    parts = rt.verdict(rep) + rt.findings(rep) + rt.notes(rep) + [rt.frame_note(rep)]
    parts += list(rt.section_findings(rep).values())
    parts += [s.sentence() for s in rt.skipped_sections(rep)]
    return " ".join(parts)


def _no_bad_tokens(text: str) -> None:
    assert not _BAD.search(text), _BAD.search(text)
    assert not labels.snake_case_tokens(text), labels.snake_case_tokens(text)
    assert "[" not in text and "{" not in text


# ----------------------------------------------------------------------------
# Any data, no crash (issue 14: only the two required tables; one level; empty columns)
# ----------------------------------------------------------------------------


def test_only_required_tables_never_crash():
    # what lifetimes look like with only customers(customer_id, signup_date) and transactions:
    # the segment column exists but is empty, value_tier does not exist
    lt = _contract_base(400, 1, segment=None)
    rep = _run(lt, covariates=["segment", "value_tier"])
    assert rep.group is None and rep.group_note == "empty"
    assert is_skipped(rep.cox) and "no customer attribute" in rep.cox.reason
    assert rep.skipped_covariates == ["value_tier"] and ("segment", "empty") in rep.cox_unusable
    assert rep.logrank is None and not is_skipped(rep.median)
    assert rep.median["n"].iloc[0] == 400
    _no_bad_tokens(_all_text(rep))


def test_one_group_and_constant_covariates_are_skipped_in_words():
    lt = _contract_base(300, 2, segment="all the same", plan=1.0)
    rep = _run(lt, covariates=["segment", "plan"])
    assert rep.group is None and rep.group_note == "single"
    assert is_skipped(rep.logrank) and "Only one group" in rep.logrank.reason
    assert dict(rep.cox_unusable) == {"segment": "constant", "plan": "constant"}
    assert is_skipped(rep.cox)
    _no_bad_tokens(_all_text(rep))


def test_no_churn_events_keep_every_other_section():
    lt = _contract_base(200, 3, segment=np.repeat(["a", "b"], 100)).assign(event=0)
    rep = _run(lt)
    assert is_skipped(rep.cox) and "No customer left" in rep.cox.reason
    assert is_skipped(rep.logrank)
    assert not is_skipped(rep.median) and not is_skipped(rep.km_all)
    v = " ".join(rt.verdict(rep))
    assert v.startswith("More than half of customers are still active")
    assert {s.section for s in rt.skipped_sections(rep)} >= {study.S_COX, study.S_LOGRANK}
    _no_bad_tokens(_all_text(rep))


def test_singular_design_costs_one_section():
    # two columns that always move together: the information matrix is singular
    seg = np.repeat(["a", "b"], 150)
    lt = _contract_base(300, 4, segment=seg, copy_of_segment=seg)
    rep = _run(lt, covariates=["segment", "copy_of_segment"])
    assert is_skipped(rep.cox)
    assert "never vary, or always move together" in rep.cox.reason
    assert rep.cox.detail  # the technical message is kept for the appendix
    assert not is_skipped(rep.logrank) and not is_skipped(rep.rmst)
    _no_bad_tokens(_all_text(rep))


def test_rmst_horizon_beyond_follow_up_is_a_skipped_section():
    lt = _contract_base(300, 5, segment=np.repeat(["a", "b"], 150))
    rep = _run(lt, rmst_horizon=60)  # follow-up ends at 30 months
    assert is_skipped(rep.rmst_all) and "60-month horizon" in rep.rmst_all.reason
    names = [t["name"] for t in rt.tiles(rep, display=_Tiles())]
    assert not any("Average months" in n for n in names)


class _Tiles:
    """Stand-in for analysis.report.display (tiles only), so no notebook is needed."""

    @staticmethod
    def tile(name, value, **kw):
        from analysis.report.display import tile

        return tile(name, value, **kw)


# ----------------------------------------------------------------------------
# Totals count everyone (issue 14: the B2B base whose small industries vanished)
# ----------------------------------------------------------------------------


def _b2b():
    # 296 accounts: 20 in one industry, 276 spread over 40 industries of fewer than 10 each
    industry = ["manufacturing"] * 20 + [f"industry {i % 40:02d}" for i in range(276)]
    return _contract_base(296, 6, churn_rate=0.03, segment=industry)


def test_totals_count_every_account():
    lt = _b2b()
    rep = _run(lt, min_group_size=10)
    med = rep.median.set_index("segment")
    assert med.loc[study.ALL_CUSTOMERS, "n"] == 296
    # the small industries are pooled, never dropped: the groups add up to everyone
    assert med.loc[study.OTHER_GROUPS, "n"] == 276
    assert med.drop(index=study.ALL_CUSTOMERS)["n"].sum() == 296
    assert len(rep.suppressed_groups) == 40
    # the headline comes from all 296 accounts: independent Kaplan-Meier (statsmodels)
    sf = SurvfuncRight(lt.duration_months.to_numpy(), lt.event.to_numpy())
    assert med.loc[study.ALL_CUSTOMERS, "median"] == pytest.approx(sf.quantile(0.5), abs=1e-9)
    sa = rep.survival_at[rep.survival_at.segment == study.ALL_CUSTOMERS].set_index("horizon")
    times = sf.surv_times
    for h in _HORIZONS:
        if h <= lt.duration_months.max():
            expected = sf.surv_prob[times <= h][-1] if (times <= h).any() else 1.0
            assert sa.loc[h, "survival"] == pytest.approx(expected, abs=1e-9)
    tiles = rt.tiles(rep, display=_Tiles())
    assert tiles[0]["name"] == "Median tenure"
    assert tiles[0]["value"] == pytest.approx(sf.quantile(0.5))
    # the Cox model keeps the small industries' accounts too (pooled level)
    assert rep.cox.n == 296
    # the notes say the small groups were pooled, not dropped
    assert any("pooled" in n and "count in every total" in n for n in rt.notes(rep))


def test_pool_small_groups_keeps_missing_and_leaves_a_tiny_pool_out():
    s = pd.Series(["a"] * 12 + ["b"] * 3 + [None] * 2)
    pooled, small = study.pool_small_groups(s, min_group_size=10)
    # "b" (3) and "not recorded" (2) together are still under 10: no group, kept in totals
    assert sorted(small, key=str) == sorted(["b", study.NOT_RECORDED])
    assert pooled.isna().sum() == 5 and (pooled == "a").sum() == 12
    pooled, _ = study.pool_small_groups(
        pd.Series(["a"] * 12 + ["b"] * 6 + ["c"] * 6), min_group_size=10
    )
    assert (pooled == study.OTHER_GROUPS).sum() == 12


# ----------------------------------------------------------------------------
# Inactivity churn: one-time buyers apart, survival of the customers it describes
# ----------------------------------------------------------------------------

AS_OF = dt.date(2024, 12, 31)


def _inactivity_base(n_one_time, n_repeat, n_recent, seed=0):
    """New customers with purchase dates; planted: who bought once, who came back and when."""
    rng = np.random.default_rng(seed)
    rows, tx = [], []
    for i in range(n_one_time + n_repeat + n_recent):
        cid = f"c{i}"
        if i < n_one_time + n_repeat:
            first = pd.Timestamp("2023-01-01") + pd.Timedelta(days=int(rng.integers(0, 300)))
        else:  # first purchase inside the last 90 days: too recent to tell
            first = pd.Timestamp(AS_OF) - pd.Timedelta(days=int(rng.integers(1, 80)))
        dates = [first]
        if n_one_time <= i < n_one_time + n_repeat:
            gap = int(rng.integers(10, 200))
            dates += [first + pd.Timedelta(days=gap), first + pd.Timedelta(days=gap + 40)]
        last = max(dates)
        churned = (pd.Timestamp(AS_OF) - last).days > 90
        end = last if churned else pd.Timestamp(AS_OF)
        rows.append(
            {
                "customer_id": cid,
                "start_date": first,
                "first_purchase": first,
                "last_purchase": last,
                "end_date": end,
                "entry_days": 0,
                "entry_months": 0.0,
                "duration_months": (end - first).days / 30.4375,
                "event": int(churned),
                "segment": "x" if i % 2 else "y",
                "churn_reason": None,
            }
        )
        tx += [{"customer_id": cid, "date": d} for d in dates] + [
            {"customer_id": cid, "date": first}
        ]
    return pd.DataFrame(rows), pd.DataFrame(tx)


def test_one_time_buyers_are_their_own_figure():
    lt, tx = _inactivity_base(n_one_time=120, n_repeat=180, n_recent=40)
    rep = _run(
        lt, definition="inactivity", inactivity_days=90, as_of=AS_OF, transactions=tx, covariates=[]
    )
    o = rep.one_time
    # counted on paper: 300 customers are old enough to tell, 120 of them bought once
    assert (o.n_observable, o.n_one_time, o.n_too_recent) == (300, 120, 40)
    assert o.share == pytest.approx(0.4) and o.ci_lower < 0.4 < o.ci_upper
    # a same-day second row is not a second purchase; the 180 repeaters returned
    assert o.n_returned == 180
    gaps = []
    for _cid, d in tx.drop_duplicates().groupby("customer_id")["date"]:
        ds = sorted(set(d))
        if len(ds) > 1:
            gaps.append((ds[1] - ds[0]).days / 30.4375)
    assert o.return_median == pytest.approx(np.median(gaps))
    assert o.return_ci_lower <= o.return_median <= o.return_ci_upper
    # the tenure figures describe the 180 repeat buyers, not one-time buyers at tenure 0
    assert rep.population == "repeat customers" and rep.n_population == 180
    assert rep.median["median"].iloc[0] > 1
    # the all-customer figures are kept for the appendix: 120 of the 300 customers who can be
    # followed "leave" at tenure 0 (the 40 too recent to tell have no observable time)
    every = rep.everyone_survival_at.set_index("horizon")
    assert rep.everyone_median["n"].iloc[0] == 300
    assert every.loc[3.0, "survival"] <= 0.6 + 1e-9
    text = " ".join(rt.verdict(rep))
    assert "never bought again" in text and "0 months" not in text
    assert len(rt.verdict(rep)) <= 2
    _no_bad_tokens(_all_text(rep))


def test_inactivity_follow_up_ends_where_churn_stops_being_visible():
    lt, tx = _inactivity_base(n_one_time=10, n_repeat=60, n_recent=0, seed=1)
    rep = _run(lt, definition="inactivity", inactivity_days=90, as_of=AS_OF, covariates=[])
    # nobody can be seen to leave in the last 90 days: the longest follow-up stops there
    cutoff = (pd.Timestamp(AS_OF) - pd.Timedelta(days=90) - lt.start_date.min()).days / 30.4375
    assert rep.median["max_time"].iloc[0] <= cutoff + 1e-9
    assert rep.km_all["time"].max() <= cutoff + 1e-9
    assert rep.observable_until == AS_OF - dt.timedelta(days=90)


# ----------------------------------------------------------------------------
# Sentences that follow their tables (issue 15)
# ----------------------------------------------------------------------------


def _fake_cox(term_p, global_p, covariates=("segment", "value_tier")):
    names = [f"{c}[x]" for c in covariates]
    summary = pd.DataFrame(
        {
            "hazard_ratio": 1.2,
            "ci_lower": 1.1,
            "ci_upper": 1.3,
            "p_value": 0.01,
            "covariate": list(covariates),
            "level": "x",
        },
        index=pd.Index(names, name="term"),
    )
    ph = pd.DataFrame(
        {"chisq": 1.0, "df": 1, "p_value": list(term_p) + [global_p]},
        index=pd.Index(names + ["GLOBAL"], name="term"),
    )
    return CoxResult(
        summary=summary,
        ph_test=ph,
        concordance=0.6,
        reference_levels={c: "ref" for c in covariates},
        n=100,
        n_events=50,
        n_left_truncated=0,
        n_dropped_missing=0,
        loglik=-1.0,
        spec={"covariates": list(covariates)},
    )


@pytest.mark.parametrize(
    ("term_p", "global_p", "must", "must_not"),
    [
        # a term at p = 0.03 but 0.06 after Holm: the sentence quotes both, no "no evidence"
        ((0.03, 0.5), 0.2, ["p = 0.03", "p = 0.06", "adjust"], ["No clear evidence"]),
        # global p = 0.048 below ph_alpha 0.05: said so, never "no evidence"
        ((0.2, 0.3), 0.048, ["p = 0.048", "global test suggests"], ["No clear evidence"]),
        # a term that fails after adjustment
        ((0.001, 0.5), 0.004, ["changes with tenure", "p = 0.002"], ["No clear evidence"]),
        # nothing below 0.05 anywhere
        ((0.2, 0.5), 0.3, ["No clear evidence", "p = 0.30", "p = 0.20"], ["changes with tenure ("]),
    ],
)
def test_ph_sentence_follows_the_p_values_the_table_shows(term_p, global_p, must, must_not):
    fit = _fake_cox(term_p, global_p)
    s = rt.sentence_ph(fit, alpha=0.05)
    for m in must:
        assert m in s, (m, s)
    for m in must_not:
        assert m not in s, (m, s)


def test_labels_not_code_in_sentences_and_tables():
    seg = np.repeat(["business", "consumer"], 200)
    tier = np.tile(["low", "medium", "medium", "high"], 100)
    lt = _contract_base(400, 8, segment=seg, value_tier=tier)
    lt.loc[lt.value_tier == "low", "event"] = 1  # "low" leaves sooner
    rep = _run(lt, covariates=["segment", "value_tier"], reference={"value_tier": "medium"})
    fit = rep.cox  # the first fit (the shown one may have value tier as strata)
    s = rt.sentence_hazard_ratio(fit, "value_tier[low]")
    assert "Value tier: low" in s and "Value tier: medium" in s and "value_tier" not in s
    assert rt.reference_caption(fit) == "Segment: business; Value tier: medium"
    for table in (rt.cox_table(fit), rt.ph_table(rep), rt.group_table(rep), rt.rmst_table(rep)):
        shown = labels.relabel(table.drop(columns=["segment"], errors="ignore"))
        header = " ".join(map(str, shown.columns))
        assert not labels.snake_case_tokens(header), header
        cells = " ".join(shown.astype(str).to_numpy().ravel())
        assert not _BAD.search(cells) and "e-" not in cells  # p-values via fmt_p, no 2.3e-34
    assert all(t.startswith("p") for t in rt.cox_table(fit)["p_value"])
    assert list(rt.survival_table(rep).columns[1:]) == [
        "3 months",
        "6 months",
        "12 months",
        "24 months",
    ]


def test_page_text_passes_the_report_lint():
    lt = _b2b()
    rep = _run(lt)
    html = "<main>" + "".join(f"<p>{t}</p>" for t in _all_text(rep).split(". ")) + "</main>"
    problems = [p for p in lint_page(html) if "verdict" not in p and "appendi" not in p]
    assert problems == []


# ----------------------------------------------------------------------------
# Plots: the number-at-risk row under the ticks
# ----------------------------------------------------------------------------


def test_number_at_risk_sits_under_the_axis_ticks():
    import matplotlib.pyplot as plt

    from analysis.report.plots import retention as plots

    lt = _contract_base(300, 9, segment=np.repeat(["a", "b"], 150))
    rep = _run(lt, max_months=30)
    fig = plots.plot_km(
        rep.km_group,
        group="segment",
        at_risk=rep.at_risk_group,
        overall=rep.km_all,
        overall_at_risk=rep.at_risk_all,
        max_time=rep.max_time,
    )
    ax, tab = fig.axes[0], fig.axes[1]
    ticks = list(ax.get_xticks())
    assert ticks == [float(c) for c in rep.at_risk_all.columns]
    xs = sorted({round(t.get_position()[0], 9) for t in tab.texts})
    assert xs == ticks  # every count at a tick, every tick with a count
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["All customers", "a", "b"]
    plt.close("all")


def test_skipped_sections_are_listed_once():
    lt = _contract_base(100, 10, segment=None).assign(event=0)
    rep = _run(lt, covariates=["segment"])
    sk = rt.skipped_sections(rep)
    assert all(isinstance(s, Skipped) for s in sk)
    assert len({id(s) for s in sk}) == len(sk) == len({s.section for s in sk})


def test_concordance_without_comparable_pairs_is_a_skipped_section():
    from analysis.stats.concordance import concordance_index

    # nobody churned: no pair can be compared, so Harrell's C is undefined (not 0.5)
    out = concordance_index([1.0, 2.0, 3.0], [0, 0, 0], [0.1, 0.2, 0.3])
    assert np.isnan(out["concordance"]) and out["comparable"] == 0
    fit = _fake_cox((0.2, 0.5), 0.3)
    fit.concordance = out["concordance"]
    with pytest.raises(study.NotEstimable, match="No pair of customers"):
        study._concordance(fit)


def test_many_groups_with_no_real_difference_name_no_pair():
    """15 groups drawn from one churn rate: the finding is the overall test, no cherry-picked pair."""
    n = 3000
    levels = [f"C{i:02d}" for i in range(15)]
    lt = _contract_base(n, 11, segment=np.random.default_rng(1).choice(levels, n))
    res = _run(lt)
    assert res.logrank.p_value > 0.05  # planted: no difference
    text = rt.section_findings(res)["groups"]
    assert text.startswith("No clear evidence that retention differs")
    assert "stay on average" not in text  # no pair singled out of 105


def test_a_real_difference_is_stated_after_the_overall_test():
    n = 3000
    seg = np.where(np.arange(n) % 2 == 0, "slow", "fast")
    rng = np.random.default_rng(5)
    t = np.where(seg == "slow", rng.exponential(1 / 0.02, n), rng.exponential(1 / 0.08, n))
    c = rng.uniform(6, 30, n)
    lt = pd.DataFrame(
        {
            "duration_months": np.minimum(t, c),
            "event": (t <= c).astype(int),
            "entry_months": 0.0,
            "churn_reason": None,
            "segment": seg,
        }
    )
    text = rt.section_findings(_run(lt))["groups"]
    assert text.startswith("Retention differs between segment groups")
    # fast vs slow: "shorter" carries the sign, so the interval is of the (positive) magnitude
    m = re.search(
        r"fast stay on average ([\d.]+) months shorter .*\(95% CI ([\d.]+)–([\d.]+)", text, re.I
    )
    assert m, text
    est, lo, hi = map(float, m.groups())
    assert 0 < lo <= est <= hi


def test_no_one_time_buyer_figure_under_contracts():
    """With churn dates, a customer billed once so far is a customer, not a one-time buyer."""
    lt, tx = _inactivity_base(n_one_time=120, n_repeat=180, n_recent=40)
    rep = _run(
        lt,
        definition="contractual",
        inactivity_days=90,
        as_of=AS_OF,
        transactions=tx,
        covariates=[],
    )
    assert rep.one_time is None
    assert "never bought again" not in _all_text(rep)


def test_nobody_ever_bought_twice_is_a_figure_not_a_crash():
    """Every customer bought exactly once: 100% one-time buyers, time to return not estimable."""
    lt, tx = _inactivity_base(n_one_time=200, n_repeat=0, n_recent=30)
    rep = _run(
        lt, definition="inactivity", inactivity_days=90, as_of=AS_OF, transactions=tx, covariates=[]
    )
    assert rep.one_time.n_one_time == 200 and rep.one_time.share == 1.0
    assert rep.one_time.n_returned == 0
    text = _all_text(rep)
    _no_bad_tokens(text)
    assert "never bought again" in text


def test_model_counts_cannot_give_back_a_small_pool():
    """Customers of tiny groups are left out of the Cox model; the fit table must not count them."""
    n = 1200
    seg = np.where(np.arange(n) % 2 == 0, "online", "store").astype(object)
    seg[:3], seg[3:7] = "kiosk", "phone"  # two tiny groups: a pool of 7 < 10, so in no group
    lt = _contract_base(n, 3, segment=seg)
    rep = _run(lt, min_group_size=10)
    fit = rt.model_fit_table(rep).set_index("quantity")["value"]
    assert rep.cox_shown.n_dropped_missing == 7
    assert fit["Customers in the model"] == "all but fewer than 10"
    assert fit["Left out: in no group shown, or a factor not recorded"] == "fewer than 10"
    assert not any(str(n - 7) in v for v in fit.to_numpy())


def test_weekly_cohorts_are_named_by_their_week():
    idx = pd.to_datetime(["2025-06-02", "2025-06-09", "2025-06-16"])
    m = pd.DataFrame({6: [0.4, 0.7, 1.0]}, index=idx)
    text = rt.sentence_cohorts(m, period=6, unit="week")
    assert "(week of 2 Jun 2025)" in text and "(week of 16 Jun 2025)" in text
    assert "(Jun 2025)" in rt.sentence_cohorts(m, period=6, unit="month")


def test_repeat_buyers_too_recent_to_follow_are_counted_in_words():
    """Counts on one page reconcile: repeat buyers = those followed + those too recent to follow."""
    lt, tx = _inactivity_base(n_one_time=100, n_repeat=150, n_recent=0, seed=2)
    # 20 repeat buyers whose purchases all fall in the last 90 days: still active, no observable time
    recent = lt.iloc[:20].copy()
    recent["customer_id"] = [f"r{i}" for i in range(20)]
    first = pd.Timestamp(AS_OF) - pd.Timedelta(days=60)
    recent = recent.assign(
        start_date=first,
        first_purchase=first,
        last_purchase=first + pd.Timedelta(days=20),
        end_date=pd.Timestamp(AS_OF),
        event=0,
        duration_months=60 / 30.4375,
    )
    lt = pd.concat([lt, recent], ignore_index=True)
    rep = _run(lt, definition="inactivity", inactivity_days=90, as_of=AS_OF, covariates=[])
    first_all = pd.to_datetime(lt.first_purchase).dt.normalize()
    repeat = int((pd.to_datetime(lt.last_purchase).dt.normalize() > first_all).sum())
    assert rep.n_population_too_recent >= 20
    assert rep.n_population + rep.n_population_too_recent == repeat
    text = _all_text(rep)
    assert f"{rep.n_population_too_recent:,} more started too recently to follow" in text
