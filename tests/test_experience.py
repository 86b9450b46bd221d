"""Tests for analysis.studies.experience: NPS categories, counting process, Cox, FE revenue link.

Expected values are worked out by hand (counting process), taken from published
output (Grunfeld investment data, Gretl/Stata small-sample conventions), or
computed by an independent second implementation (dummy-variable OLS in
statsmodels; pyfixest where its conventions agree; Cox on unsplit data).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from analysis.errors import AnalysisError, DataError
from analysis.stats import cox as cox_engine
from analysis.stats.fixed_effects import TwoWayFE
from analysis.studies import experience as X
from analysis.studies.experience.frames import _add_lags, _count_at_or_before, _last_at_or_before
from analysis.studies.experience.tables import _PANEL_COLUMNS, _study_frames, _with_codes

# --------------------------------------------------------------------------------------
# nps_categories
# --------------------------------------------------------------------------------------


def test_nps_categories_standard_cutoffs():
    s = pd.Series([0, 6, 7, 8, 9, 10, np.nan], index=list("abcdefg"))
    got = X.nps_categories(s)
    assert list(got.index) == list("abcdefg")
    assert got.astype(object).tolist()[:6] == [
        "detractor",
        "detractor",
        "passive",
        "passive",
        "promoter",
        "promoter",
    ]
    assert pd.isna(got["g"])
    assert list(got.cat.categories) == ["promoter", "passive", "detractor"]


def test_nps_categories_rejects_out_of_range():
    with pytest.raises(DataError, match="0-10"):
        X.nps_categories([3, 11])


# --------------------------------------------------------------------------------------
# counting_process: hand-made cases
# --------------------------------------------------------------------------------------


@pytest.fixture
def lt_ex():
    # A: starts 2023-01-01, churns on day 100 (2023-04-11).
    # B: signed up 2022-06-01, enters the window on day 214 (2023-01-01), censored day 400.
    # C: no experience at all. D: no time at risk (duration == entry) -> dropped.
    lt = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "start_date": pd.to_datetime(["2023-01-01", "2022-06-01", "2023-03-01", "2023-01-01"]),
            "entry_days": [0, 214, 0, 10],
            "duration_days": [100, 400, 50, 10],
            "event": [1, 0, 0, 1],
            "segment": ["x", "y", "x", "y"],
        }
    )
    ex = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "A", "B", "B"],
            "date": pd.to_datetime(
                ["2023-01-11", "2023-02-10", "2023-04-11", "2023-05-01", "2022-12-01", "2023-02-01"]
            ),
            "kind": ["survey", "ticket", "survey", "ticket", "survey", "ticket"],
            "nps": [3, np.nan, 10, np.nan, 9, np.nan],
            "first_contact_resolution": [None, False, None, True, None, True],
            "sla_met": [None, True, None, False, None, False],
            "compensated": [None, False, None, False, None, True],
            "touchpoint": ["service", "billing", "service", "service", "sales", "billing"],
        }
    )
    return lt, ex


def test_counting_process_splits_at_events_and_window_expiry(lt_ex):
    lt, ex = lt_ex
    cp = X.counting_process(lt, ex, window_days=30, period=None)
    a = cp[cp.customer_id == "A"]
    # survey day 10; ticket day 40 enters (40, 70] and leaves after day 70; churn day 100
    assert_array_equal(a.start, [0, 10, 40, 70])
    assert_array_equal(a.stop, [10, 40, 70, 100])
    assert_array_equal(a.event, [0, 0, 0, 1])
    assert a.nps_category.astype(str).tolist() == ["none", "detractor", "detractor", "detractor"]
    assert_array_equal(a.unresolved_window, [0, 0, 1, 0])
    assert_array_equal(a.tickets_window, [0, 0, 1, 0])
    assert_array_equal(a.sla_breaches_window, [0, 0, 0, 0])
    assert_array_equal(a.uncompensated_failures_window, [0, 0, 1, 0])
    assert_array_equal(a.failures_billing_window, [0, 0, 1, 0])


def test_counting_process_no_look_ahead_and_nothing_after_end(lt_ex):
    lt, ex = lt_ex
    cp = X.counting_process(lt, ex, window_days=30, period=None)
    a = cp[cp.customer_id == "A"]
    # The promoter answer given on the churn day (day 100) must not explain that churn,
    # and the ticket after churn (day 120) never appears.
    assert a.nps_last.iloc[-1] == 3
    assert a.stop.max() == 100
    assert "failures_service_window" not in cp.columns or cp["failures_service_window"].sum() == 0


def test_counting_process_left_truncation_and_empty_customers(lt_ex):
    lt, ex = lt_ex
    cp = X.counting_process(lt, ex, window_days=30, period=None, keep=["segment"])
    b = cp[cp.customer_id == "B"]
    # rows start at entry (214); the answer of 2022-12-01 (day 183) is known at entry;
    # ticket 2023-02-01 = day 245 with a missed SLA, compensated.
    assert_array_equal(b.start, [214, 245, 275])
    assert_array_equal(b.stop, [245, 275, 400])
    assert b.nps_category.astype(str).tolist() == ["promoter"] * 3
    assert_array_equal(b.sla_breaches_window, [0, 1, 0])
    assert_array_equal(b.compensated_failures_window, [0, 1, 0])
    assert_array_equal(b.event, [0, 0, 0])
    c = cp[cp.customer_id == "C"]
    assert len(c) == 1 and c.start.iloc[0] == 0 and c.stop.iloc[0] == 50
    assert c.nps_category.astype(str).iloc[0] == "none"
    assert c.segment.iloc[0] == "x"
    assert "D" not in set(cp.customer_id)
    assert cp.attrs["customers_dropped_no_time_at_risk"] == 1


def test_counting_process_calendar_split(lt_ex):
    lt, ex = lt_ex
    cp = X.counting_process(lt, ex, window_days=30, period="month")
    a = cp[cp.customer_id == "A"]
    # Feb 1 = day 31, Mar 1 = day 59, Apr 1 = day 90: split the day before each
    assert_array_equal(a.start, [0, 10, 30, 40, 58, 70, 89])
    assert_array_equal(a.stop, [10, 30, 40, 58, 70, 89, 100])
    assert a.period.dt.month.tolist() == [1, 1, 2, 2, 3, 3, 4]
    assert_array_equal(a.unresolved_window, [0, 0, 0, 1, 1, 0, 0])
    # total time at risk is unchanged by splitting
    assert (cp.stop - cp.start).sum() == 100 + (400 - 214) + 50


def test_counting_process_without_experience(lt_ex):
    lt, _ = lt_ex
    cp = X.counting_process(lt, None, period=None)
    assert len(cp) == 3 and cp.tickets_window.sum() == 0
    assert set(cp.nps_category.astype(str)) == {"none"}


# --------------------------------------------------------------------------------------
# churn_hazards
# --------------------------------------------------------------------------------------


def _toy_survival(n=400, seed=1):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 2, n)
    t = np.ceil(rng.exponential(200 / np.exp(0.7 * g))).astype(int) + 1
    cens = rng.integers(50, 400, n)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "start_date": pd.Timestamp("2023-01-01"),
            "entry_days": 0,
            "duration_days": np.minimum(t, cens),
            "event": (t <= cens).astype(int),
            "grp": g,
        }
    )


def test_churn_hazards_split_rows_equal_unsplit_cox():
    """Splitting time into months leaves the Cox fit unchanged (independent PHReg fit)."""
    from statsmodels.duration.hazard_regression import PHReg

    lt = _toy_survival()
    cp = X.counting_process(lt, None, period="month", keep=["grp"])
    assert len(cp) > 2 * len(lt)
    hz = X.churn_hazards(cp, covariates=["grp"])
    ref = PHReg(
        lt.duration_days.to_numpy(float),
        lt[["grp"]].to_numpy(float),
        status=lt.event.to_numpy(float),
        ties="breslow",
    ).fit(groups=np.arange(len(lt)))
    assert_allclose(hz.summary.loc["grp", "coef"], ref.params[0], rtol=1e-6)
    assert_allclose(hz.summary.loc["grp", "se"], ref.bse[0], rtol=1e-4)
    assert hz.n_customers == len(lt) and hz.n_events == lt.event.sum()


def test_churn_hazards_categorical_reference(lt_ex):
    lt = _toy_survival(600, seed=2)
    lt["cat"] = np.where(lt.grp == 1, "detractor", "promoter")
    lt.loc[::5, "cat"] = "passive"
    cp = X.counting_process(lt, None, period=None, keep=["cat"])
    cp["cat"] = pd.Categorical(cp["cat"], categories=["promoter", "passive", "detractor"])
    hz = X.churn_hazards(cp, covariates=["cat"], reference={"cat": "promoter"})
    assert hz.terms == ["cat[passive]", "cat[detractor]"]
    hr, lo, hi = hz.hr("cat[detractor]")
    assert lo < hr < hi and lo > 1.2  # planted HR exp(0.7) ~ 2.0


# --------------------------------------------------------------------------------------
# revenue_link: published results (Grunfeld investment data)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grunfeld():
    from statsmodels.datasets import grunfeld as g

    d = g.load_pandas().data.iloc[:200].copy()  # the 10 firms of Stata's / plm's Grunfeld data
    d["year"] = d["year"].astype(int)
    return d


def test_fe_grunfeld_pooled_matches_stata(grunfeld):
    # Stata 13: `regress invest mvalue kstock, vce(cluster company)`, as stored in
    # statsmodels/regression/tests/results/results_grunfeld_ols_robust_cluster.py
    # (b, se, ll, ul); CRV1 with G/(G-1)*(N-1)/(N-K), t(G-1) intervals.
    r = X.revenue_link(
        grunfeld,
        outcome="invest",
        exposures=["value", "capital"],
        lags=(0,),
        fixed_effects=(),
        cluster="firm",
        customer="firm",
        period="year",
    )
    s = r.summary
    assert_allclose(s.coef, [0.11556215606596, 0.23067848754982], rtol=1e-7)
    assert_allclose(s.se, [0.01589433647768, 0.08496711097464], rtol=1e-7)
    assert_allclose(s.ci_lower, [0.07960666895505, 0.03846952885627], rtol=1e-7)
    assert_allclose(s.ci_upper, [0.15151764317688, 0.42288744624337], rtol=1e-7)


def test_fe_grunfeld_one_and_two_way_match_gretl(grunfeld):
    # Gretl output reproduced in R package plm, tests/test_pwaldtest.R ("Reference: Gretl
    # (2016b)"; github.com/ycroissant/plm): Grunfeld, 10 firms x 20 years, clustered
    # ("Robust (HAC)") SEs with Stata's small-sample factor.
    # Model 1: firm fixed effects.
    r1 = X.revenue_link(
        grunfeld,
        outcome="invest",
        exposures=["value", "capital"],
        lags=(0,),
        fixed_effects=("firm",),
        cluster="firm",
        customer="firm",
        period="year",
    )
    assert_allclose(r1.summary.coef, [0.110124, 0.310065], atol=5e-7)
    assert_allclose(r1.summary.se, [0.0151945, 0.0527518], atol=5e-8)
    # Model 6: firm fixed effects + year dummies (two-way), cluster by firm.
    r6 = X.revenue_link(
        grunfeld,
        outcome="invest",
        exposures=["value", "capital"],
        lags=(0,),
        fixed_effects=("firm", "year"),
        cluster="firm",
        customer="firm",
        period="year",
    )
    assert_allclose(r6.summary.coef, [0.117716, 0.357916], atol=5e-7)
    assert_allclose(r6.summary.se, [0.0108244, 0.0478484], atol=5e-8)
    assert r6.df_k == 2 + 20  # slopes + 19 year dummies + constant; firm effects nested


# --------------------------------------------------------------------------------------
# revenue_link: independent implementations
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_panel():
    rng = np.random.default_rng(7)
    n, t = 60, 8
    df = pd.DataFrame(
        {
            "customer_id": np.repeat([f"C{i:03d}" for i in range(n)], t),
            "period": np.tile(pd.date_range("2023-01-01", periods=t, freq="MS"), n),
        }
    )
    df = df.sample(frac=0.8, random_state=3).sort_index().reset_index(drop=True)  # unbalanced
    a = rng.normal(0, 3, n)[df.customer_id.str[1:].astype(int)]
    g = rng.normal(0, 1, t)[df.period.dt.month - 1]
    df["csat"] = np.clip(np.round(3 + 0.3 * a + rng.normal(0, 1, len(df))), 1, 5)
    df["tickets"] = rng.poisson(1, len(df)).astype(float)
    df["revenue"] = 50 + 5 * a + g + 2.0 * df.csat - 1.0 * df.tickets + rng.normal(0, 3, len(df))
    return df


def test_fe_two_way_equals_dummy_variable_ols(small_panel):
    import statsmodels.formula.api as smf

    df = small_panel
    dv = smf.ols("revenue ~ csat + tickets + C(customer_id) + C(period)", data=df).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(df.customer_id)[0]}
    )
    # statsmodels' cluster correction G/(G-1)*(N-1)/(N-K) counts every dummy in K:
    full = X.revenue_link(df, exposures=["csat", "tickets"], lags=(0,), k_fixef="full")
    assert_allclose(full.summary.coef, dv.params[["csat", "tickets"]], rtol=1e-8)
    assert_allclose(full.summary.se, dv.bse[["csat", "tickets"]], rtol=1e-8)
    # Stata/fixest convention: customer effects are nested in customer clusters and not
    # counted, so the variance differs exactly by (N - K_full) / (N - K_nested).
    nested = X.revenue_link(df, exposures=["csat", "tickets"], lags=(0,))
    n_obs, g, t = len(df), df.customer_id.nunique(), df.period.nunique()
    k_full, k_nested = 2 + g + t - 1, 2 + t
    assert nested.df_k == k_nested and full.df_k == k_full
    ratio = np.sqrt((n_obs - k_full) / (n_obs - k_nested))
    assert_allclose(nested.summary.se, dv.bse[["csat", "tickets"]] * ratio, rtol=1e-8)
    assert nested.summary.n_customers.iloc[0] == g


@pytest.mark.filterwarnings("ignore::Warning:pyfixest")
def test_fe_one_way_equals_pyfixest(small_panel):
    import pyfixest as pf

    df = small_panel
    ref = pf.feols("revenue ~ csat + tickets | customer_id", data=df, vcov={"CRV1": "customer_id"})
    got = X.revenue_link(
        df, exposures=["csat", "tickets"], lags=(0,), fixed_effects=("customer_id",)
    )
    assert_allclose(got.summary.coef, ref.coef().to_numpy(), rtol=1e-7)
    assert_allclose(got.summary.se, ref.se().to_numpy(), rtol=1e-6)


def test_fe_lags_use_the_previous_calendar_period_only():
    # revenue(t) = 10 * x(t-1) exactly; customer B misses March, so its April row has no
    # lag-1 exposure (the February value must NOT be used).
    per = pd.to_datetime(["2023-01-01", "2023-02-01", "2023-03-01", "2023-04-01"])
    x = {"A": [1, 3, 2, 5], "B": [2, 1, np.nan, 4], "C": [0, 2, 2, 1]}
    rows = []
    for c, xs in x.items():
        for i, p in enumerate(per):
            if c == "B" and i == 2:
                continue
            prev = xs[i - 1] if i > 0 else np.nan
            rows.append(
                {
                    "customer_id": c,
                    "period": p,
                    "x": xs[i],
                    "revenue": 10 * prev if not np.isnan(prev) else np.nan,
                }
            )
    df = pd.DataFrame(rows)
    df.loc[(df.customer_id == "B") & (df.period == per[3]), "revenue"] = 999.0  # would break fit
    lagged, names = _add_lags(
        df, customer="customer_id", period="period", exposures=["x"], lags=[1, 2], freq="month"
    )
    b_apr = lagged[(lagged.customer_id == "B") & (lagged.period == per[3])]
    assert np.isnan(b_apr["x_lag1"].iloc[0]) and b_apr["x_lag2"].iloc[0] == 1
    r = X.revenue_link(df, exposures=["x"], lags=(1,), fixed_effects=())
    assert_allclose(r.summary.loc["x_lag1", "coef"], 10.0, rtol=1e-9)


def test_fe_rejects_collinear_exposure(small_panel):
    df = small_panel.assign(const_per_customer=small_panel.customer_id.str[1:].astype(float))
    with pytest.raises(AnalysisError, match="collinear"):
        X.revenue_link(df, exposures=["const_per_customer"], lags=(0,))


# --------------------------------------------------------------------------------------
# revenue_at_stake
# --------------------------------------------------------------------------------------


def test_revenue_at_stake_detractor_shift_by_hand():
    # 4 churn rows: 2 detractors, 1 passive, 1 promoter. HR passive 1.5, detractor 3.0:
    # prevented = 2 * (1 - 1.5/3) = 1 churn over 2 customer-years at risk for 10 customers
    # -> 5 per year; money = 5 * 20 * 12 = 1200.
    cp = pd.DataFrame(
        {
            "customer_id": list("abcdefghij"),
            "start": 0.0,
            "stop": [73.05] * 10,  # 730.5 person-days = 2 years
            "event": [1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
            "nps_category": ["detractor", "detractor", "passive", "promoter"] + ["promoter"] * 6,
        }
    )
    terms = ["nps_category[passive]", "nps_category[detractor]"]
    beta = np.log([1.5, 3.0])
    hz = X.HazardResult(
        summary=pd.DataFrame({"coef": beta, "se": [0.1, 0.1]}, index=terms),
        cov=pd.DataFrame(np.diag([0.01, 0.01]), index=terms, columns=terms),
        terms=terms,
        design={"nps_category": ("categorical", "promoter")},
        n_rows=10,
        n_customers=10,
        n_events=4,
        person_days=730.5,
    )
    out = X.revenue_at_stake(
        hz,
        cp,
        scenario=X.scenario_detractors_as_passives(),
        monthly_revenue=(20.0, 0.0),
        customers_at_risk=10,
        horizon_months=12,
    )
    assert_allclose(out.churners_prevented_per_year.iloc[0], 5.0, rtol=1e-9)
    assert_allclose(out.revenue_at_stake.iloc[0], 1200.0, rtol=1e-9)
    assert out.revenue_ci_lower.iloc[0] < 1200 < out.revenue_ci_upper.iloc[0]


def test_scenario_fcr_up_share():
    s = X.scenario_fcr_up(10, fcr_rate=0.6)  # 40% unresolved -> 30%: a quarter fewer
    assert s.changes == (("scale", "unresolved_window", 0.75),)


def test_counting_process_period_update(lt_ex):
    lt, ex = lt_ex
    cp = X.counting_process(lt, ex, window_days=30, period="month", update="period")
    a = cp[cp.customer_id == "A"]
    # survey 11 Jan -> known from 1 Feb (split at day 30); unresolved ticket 10 Feb -> counts
    # in March only (30 days = one month): split at day 58 (1 Mar) and day 89 (1 Apr).
    assert_array_equal(a.start, [0, 30, 58, 89])
    assert_array_equal(a.stop, [30, 58, 89, 100])
    assert a.nps_category.astype(str).tolist() == ["none", "detractor", "detractor", "detractor"]
    assert_array_equal(a.unresolved_window, [0, 0, 1, 0])
    assert_array_equal(a.event, [0, 0, 0, 1])
    with pytest.raises(AnalysisError, match="period"):
        X.counting_process(lt, ex, period=None, update="period")


def test_cox_counting_matches_statsmodels_with_entry_and_clusters():
    """Time-varying covariate, late entry, two rows per cluster: compare with PHReg."""
    from statsmodels.duration.hazard_regression import PHReg

    rng = np.random.default_rng(5)
    n = 600
    t = np.ceil(rng.exponential(150, n)) + 2
    cens = rng.integers(20, 300, n)
    stop_all = np.minimum(t, cens)
    ev_all = (t <= cens).astype(float)
    entry = np.floor(rng.uniform(0, 0.4, n) * stop_all)
    split = np.floor(entry + (stop_all - entry) * rng.uniform(0.2, 0.8, n))
    z0, z1 = rng.integers(0, 2, n), rng.integers(0, 3, n)  # covariate before / after split
    ok = (split > entry) & (split < stop_all)
    rows = pd.DataFrame(
        {
            "customer_id": np.r_[np.arange(n)[ok], np.arange(n)[ok]],
            "start": np.r_[entry[ok], split[ok]],
            "stop": np.r_[split[ok], stop_all[ok]],
            "event": np.r_[np.zeros(ok.sum()), ev_all[ok]],
            "z": np.r_[z0[ok], z1[ok]].astype(float),
            "w": np.r_[rng.normal(size=ok.sum()), rng.normal(size=ok.sum())],
        }
    )
    hz = X.churn_hazards(rows, covariates=["z", "w"])
    # statsmodels counts a row at risk at t when entry <= t; ours when start < t (days are
    # integers), so entry + 0.5 states the same risk sets.
    ref = PHReg(
        rows.stop.to_numpy(),
        rows[["z", "w"]].to_numpy(),
        status=rows.event.to_numpy(),
        entry=rows.start.to_numpy() + 0.5,
        ties="breslow",
    ).fit()
    assert_allclose(hz.summary.coef, ref.params, rtol=1e-6)
    # (statsmodels 0.15 returns NaN robust SEs for multi-row subjects, so the clustered
    # variance is checked below on split rows of single-row subjects.)


def test_cox_robust_se_clusters_split_rows():
    """Score residuals of a customer's split rows add up to the unsplit ones (PHReg robust)."""
    from statsmodels.duration.hazard_regression import PHReg

    lt = _toy_survival(500, seed=4)
    lt["entry_days"] = (lt.duration_days * np.random.default_rng(1).uniform(0, 0.5, 500)).astype(
        int
    )
    cp = X.counting_process(lt, None, period="month", keep=["grp"])
    fit = cox_engine.fit_cox(
        cp.stop.to_numpy(float),
        cp.event.to_numpy(float),
        cp[["grp"]].to_numpy(float),
        start=cp.start.to_numpy(float),
        cluster=pd.factorize(cp.customer_id)[0],
        ties="breslow",
    )
    beta, cov, ok = fit.coef, fit.robust_cov, fit.converged
    ref = PHReg(
        lt.duration_days.to_numpy(float),
        lt[["grp"]].to_numpy(float),
        status=lt.event.to_numpy(float),
        entry=lt.entry_days.to_numpy(float) + 0.5,
        ties="breslow",
    ).fit(groups=np.arange(len(lt)))
    assert ok and len(cp) > 2 * len(lt)
    assert_allclose(beta, ref.params, rtol=1e-6)
    assert_allclose(np.sqrt(np.diag(cov)), ref.bse, rtol=1e-5)


# --------------------------------------------------------------------------------------
# Known truth: the generated sample world
# --------------------------------------------------------------------------------------


def test_sample_world_truth_recovered(medium_world):
    from analysis import data

    truth = medium_world.truth["experience"]
    st = data.load_study_data(medium_world.params_file)
    lt, ex, pn = st.lifetimes(), st.table("experience"), st.panel()
    # The generator refreshes experience monthly and counts tickets of the 3 previous months.
    cp = X.counting_process(
        lt, ex, window_days=90, period="month", update="period", keep=["segment", "value_tier"]
    )
    cp = cp.merge(pn[["customer_id", "period", "member"]], on=["customer_id", "period"], how="left")
    cp["member"] = cp["member"].fillna(0)
    hz = X.churn_hazards(
        cp,
        covariates=[
            "nps_category",
            "unresolved_window",
            "sla_breaches_window",
            "compensated_failures_window",
            "member",
            "value_tier",
        ],
        strata="segment",
    )
    for term, key in [
        ("nps_category[detractor]", "detractor_hazard_ratio"),
        ("nps_category[passive]", "passive_hazard_ratio"),
        ("unresolved_window", "unresolved_ticket_hazard_ratio"),
        ("sla_breaches_window", "sla_breach_hazard_ratio"),
        ("compensated_failures_window", "compensation_hazard_ratio"),
    ]:
        _, lo, hi = hz.hr(term)
        assert lo <= truth[key] <= hi, (term, lo, truth[key], hi)
    # "No answer yet" is planted at HR 1; without look-ahead we find that ...
    _, lo, hi = hz.hr("nps_category[none]")
    assert lo <= truth["no_survey_hazard_ratio"] <= hi
    # ... while classifying customers by their last answer ever (look-ahead) does not: those
    # who never answered are mostly those who left early.
    last = ex.dropna(subset=["nps"]).sort_values("date").groupby("customer_id").tail(1)
    lt2 = lt.merge(last[["customer_id", "nps"]], on="customer_id", how="left")
    lt2["cat_ever"] = X.nps_categories(lt2["nps"]).astype(object).fillna("none")
    naive = X.churn_hazards(
        X.counting_process(lt2, None, period=None, keep=["segment", "value_tier", "cat_ever"]),
        covariates=["cat_ever", "value_tier"],
        strata="segment",
        reference={"cat_ever": "promoter"},
    )
    assert naive.hr("cat_ever[none]")[1] > 1.5
    # Leaving compensation out targets the mix of compensated and uncompensated failures.
    hz_nc = X.churn_hazards(
        cp,
        covariates=[
            "nps_category",
            "unresolved_window",
            "sla_breaches_window",
            "member",
            "value_tier",
        ],
        strata="segment",
    )
    _, lo, hi = hz_nc.hr("unresolved_window")
    assert lo <= truth["unresolved_ticket_hazard_ratio_ignoring_compensation"] <= hi
    assert hi < truth["unresolved_ticket_hazard_ratio"]
    # Next-month revenue per CSAT point, over months followed by a full month as a customer.
    fe = X.revenue_link(pn[pn.churned == 0], exposures=["csat_mean"], lags=(1,))
    r = fe.summary.loc["csat_mean_lag1"]
    assert r.ci_lower <= truth["revenue_effect_per_csat_point"] <= r.ci_upper
    assert r.ci_lower > 0


# --------------------------------------------------------------------------------------
# Report helpers: hand-made checks
# --------------------------------------------------------------------------------------


def test_experience_metrics_by_hand():
    ex = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c", "c", "d"],
            "date": pd.to_datetime(
                ["2024-01-03", "2024-01-10", "2024-01-20", "2024-02-01", "2024-02-02", "2024-02-05"]
            ),
            "kind": ["survey", "ticket", "survey", "survey", "ticket", "ticket"],
            "nps": [10, np.nan, 3, 8, np.nan, np.nan],
            "csat": [5, np.nan, 2, 4, np.nan, np.nan],
            "first_contact_resolution": [None, True, None, None, False, False],
            "sla_met": [None, True, None, None, False, True],
            "contacts_to_resolve": [np.nan, 1, np.nan, np.nan, 3, 2],
            "compensated": [None, False, None, None, True, False],
        }
    )
    m = X.experience_metrics(ex).iloc[0]
    # 1 promoter, 1 passive, 1 detractor -> NPS 0; var = (1/3 + 1/3 - 0) / 3
    assert m.nps == 0 and m.nps_answers == 3
    assert_allclose(m.nps_ci_upper, 1.959964 * 100 * np.sqrt((2 / 3) / 3), rtol=1e-5)
    assert_allclose(
        [m.csat_mean, m.fcr_rate, m.sla_compliance, m.contacts_to_resolve],
        [11 / 3, 1 / 3, 2 / 3, 2.0],
    )
    assert m.compensated_share == 0.5  # two failed tickets (c, d), one compensated
    by_month = X.experience_metrics(ex, period="month")
    assert by_month.answers.tolist() == [2, 1] and by_month.tickets.tolist() == [1, 2]


def test_driver_view_matches_latest_prior_ticket():
    ex = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b"],
            "date": pd.to_datetime(
                ["2024-01-01", "2024-01-05", "2024-01-06", "2024-01-01", "2024-03-01"]
            ),
            "kind": ["ticket", "ticket", "survey", "ticket", "survey"],
            "first_contact_resolution": [True, False, None, False, None],
            "sla_met": [True, True, None, False, None],
            "contacts_to_resolve": [1, 2, np.nan, 3, np.nan],
            "compensated": [False, False, None, True, None],
            "csat": [np.nan, np.nan, 2.0, np.nan, 5.0],
            "nps": [np.nan, np.nan, 4.0, np.nan, 10.0],
        }
    )
    d = X.driver_view(ex, window_days=30).set_index(["driver", "outcome"])
    # a's answer follows a's unresolved ticket of 5 Jan (latest one); b's answer is 60 days
    # after b's ticket, so it has no driver ticket.
    assert d.loc[("first-contact resolution", "no"), "answers"] == 1
    assert d.loc[("first-contact resolution", "no"), "csat_mean"] == 2.0
    assert d.loc[("first-contact resolution", "yes"), "answers"] == 0
    assert d.loc[("ticket in the previous days", "none"), "csat_mean"] == 5.0
    assert d.loc[("contacts to resolve", "2"), "answers"] == 1


def test_nps_landmark_uses_only_answers_before_the_landmark():
    lt = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "start_date": pd.to_datetime(["2023-01-01", "2023-01-01", "2023-06-01"]),
            "entry_days": [0, 0, 0],
            "duration_days": [600, 200, 400],  # b churned before the landmark
            "event": [1, 1, 0],
        }
    )
    ex = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "date": pd.to_datetime(["2023-06-01", "2024-03-01", "2023-03-01"]),
            "kind": "survey",
            "nps": [2, 10, 9],
        }
    )
    lm = X.nps_landmark(lt, ex, landmark="2024-01-01").set_index("customer_id")
    assert list(lm.index) == ["a", "c"]
    assert lm.loc["a", "nps_category"] == "detractor"  # the later promoter answer is not used
    assert lm.loc["c", "nps_category"] == "none"
    # a: 2023-01-01 + 600 days = 2024-08-23, 235 days after the landmark
    assert_allclose(lm.loc["a", "months"], 235 / 30.4375)


def test_monthly_revenue_and_churn_rates():
    pn = pd.DataFrame({"customer_id": ["a", "a", "b", "b"], "revenue": [10.0, 30.0, 0.0, 0.0]})
    m, se = X.monthly_revenue(pn)
    # cluster sums of deviations: a: (10-10)+(30-10)=20, b: -20 -> sqrt(2/1 * 800)/4 = 10
    assert_allclose([m, se], [10.0, 10.0])
    cp = pd.DataFrame({"start": [0, 0], "stop": [30.4375 * 10, 30.4375 * 10], "event": [1, 0]})
    rate, lo, hi = X.monthly_churn(cp)
    assert_allclose(rate, 1 / 20)
    assert lo < rate < hi


@pytest.mark.notebook
def test_notebook_ends_cleanly_without_experience(tiny_world, tmp_path):
    import shutil

    import nbformat
    import papermill as pm

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for f in tiny_world.data_dir.iterdir():
        if not f.name.startswith("experience"):
            shutil.copy(f, data_dir / f.name)
    params = tmp_path / "params.yaml"
    params.write_text("data:\n  path: data\n")
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(root / "notebooks" / "03_experience_revenue.ipynb"),
        str(out),
        parameters={"params_file": str(params)},
        kernel_name="python3",
        progress_bar=False,
        cwd=str(root / "notebooks"),
    )
    nb = nbformat.read(out, as_version=4)
    shown = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            assert o.get("output_type") != "error"
            shown.append(str(o.get("data", {}).get("text/html", "")))
    text = " ".join(shown)
    assert "no experience table" in text and "ends here" in text
    assert "Findings" not in text and "hazard" not in text.lower()
    assert all(c.cell_type != "markdown" for c in nb.cells[1:]), (
        "section headings are printed only with data"
    )


def test_counting_process_with_partial_experience_columns(lt_ex):
    lt, ex = lt_ex
    no_answers = ex.assign(nps=np.nan).drop(columns=["touchpoint", "compensated"])
    cp = X.counting_process(lt, no_answers, window_days=30, period=None)
    assert set(cp.nps_category.astype(str)) == {"none"}
    assert cp.attrs["touchpoints"] == [] and cp.compensated_failures_window.sum() == 0
    # no answers, so no split at the survey day: (0, 40], (40, 70], (70, 100]
    assert cp.loc[cp.customer_id == "A", "unresolved_window"].tolist() == [0, 1, 0]


# --------------------------------------------------------------------------------------
# Scale routes against the plain implementations they replace
# --------------------------------------------------------------------------------------


def test_two_way_direct_demeaning_equals_pyfixest_kernel():
    # Unbalanced customer x period panel; the direct FWL solve must reach the limit of
    # pyfixest's alternating projections (run to a tight tolerance).
    from pyfixest.core.demean import demean

    rng = np.random.default_rng(5)
    n_c, t = 300, 12
    c = np.repeat(np.arange(n_c), t)
    p = np.tile(np.arange(t), n_c)
    keep = rng.random(len(c)) < 0.7
    c, p = c[keep], p[keep]
    v = np.column_stack([rng.normal(size=len(c)) + c * 0.01, rng.poisson(1, len(c)) + p * 0.1])
    fe = np.column_stack([c, p]).astype(np.int64)
    fe = np.column_stack([pd.factorize(fe[:, j])[0] for j in range(2)])
    ref, ok = demean(np.ascontiguousarray(v), fe.astype(np.uint64), np.ones(len(c)), tol=1e-14)
    got = TwoWayFE(fe[:, 0], fe[:, 1]).residuals([v[:, 0], v[:, 1]])
    assert ok
    assert_allclose(np.column_stack(got), ref, atol=1e-9)
    # rows not grouped by customer take the general route: same result
    order = rng.permutation(len(c))
    got2 = TwoWayFE(fe[order, 0], fe[order, 1]).residuals([v[order, 0], v[order, 1]])
    assert_allclose(np.column_stack(got2), ref[order], atol=1e-9)


def test_lag_profile_shares_work_but_equals_separate_regressions(small_panel):
    df = small_panel.assign(sla=np.random.default_rng(2).poisson(0.5, len(small_panel)))
    prof = X.lag_profile(df, exposures=["csat", "tickets", "sla"], lags=[1, 2], outcome="revenue")
    for x in ["csat", "tickets", "sla"]:
        for lag in [1, 2]:
            one = X.revenue_link(df, exposures=[x], lags=(lag,)).summary.iloc[0]
            row = prof.loc[f"{x}_lag{lag}"]
            assert_allclose(
                row[["coef", "se", "p_value"]].astype(float),
                one[["coef", "se", "p_value"]].astype(float),
                rtol=1e-10,
            )
            assert row.n_obs == one.n_obs


def test_cox_pattern_route_equals_row_route(monkeypatch):
    rng = np.random.default_rng(4)
    n = 3000
    start = rng.integers(0, 50, n).astype(float)
    stop = start + rng.integers(1, 60, n)
    event = (rng.random(n) < 0.3).astype(float)
    x = np.column_stack([rng.integers(0, 3, n), rng.random(n) < 0.4]).astype(float)
    strata = rng.integers(0, 2, n)
    cluster = rng.integers(0, 800, n)

    def fit():
        f = cox_engine.fit_cox(
            stop, event, x, start=start, strata=strata, cluster=cluster, ties="breslow"
        )
        return f.coef, f.robust_cov, f.converged

    b1, v1, ok1 = fit()
    monkeypatch.setattr(cox_engine, "_MAX_PATTERN_CELLS", 0)  # force the weighted-row route
    b2, v2, ok2 = fit()
    assert ok1 and ok2
    assert_allclose(b1, b2, rtol=1e-9)
    assert_allclose(v1, v2, rtol=1e-8)


def test_key_side_counts_equal_searchsorted():
    rng = np.random.default_rng(6)
    at = np.sort(rng.integers(0, 1000, 5000))
    keys = np.sort(rng.integers(-10, 1010, 700))
    assert_array_equal(_count_at_or_before(keys, at), np.searchsorted(keys, at, side="right"))
    assert_array_equal(_last_at_or_before(keys, at), np.searchsorted(keys, at, side="right") - 1)


def test_study_panel_equals_derived_panel(tiny_world):
    # The study's compact panel must be derive.panel's, row for row and value for value.
    import pyarrow.compute as pc

    from analysis import data

    st = data.load_study_data(tiny_world.params_file)
    lt, ex, pn, _ = _study_frames(
        st, lifetime_columns=["start_date", "entry_days", "duration_days", "event"], group=None
    )
    ids = st.source.table("customers").select("customer_id").to_pyarrow().column(0)
    ids = ids.take(pc.sort_indices(ids)).combine_chunks()
    ref = _with_codes(st.panel()[["customer_id", *_PANEL_COLUMNS]], ids)
    ref = ref.sort_values(["customer_id", "period"]).reset_index(drop=True)
    assert len(pn) == len(ref) > 0
    for c in ref.columns:
        if c == "period":
            assert_array_equal(
                pn[c].to_numpy().astype("datetime64[D]"), ref[c].to_numpy().astype("datetime64[D]")
            )
        else:
            assert_allclose(pn[c].to_numpy(dtype=float), ref[c].to_numpy(dtype=float), rtol=1e-12)


def test_fcr_scenario_is_left_out_without_first_contact_resolution_data():
    # a surveys-only experience table (the contract allows it) crashed the report with
    # "fcr_rate must lie in [0, 1), not nan"
    from types import SimpleNamespace

    from analysis.report.experience import notes
    from analysis.studies.experience.hazards import scenarios_from_params
    from analysis.studies.experience.metrics import fcr_rate

    p = SimpleNamespace(fcr_improvement_points=10, sla_breach_reduction=0.5)
    surveys = pd.DataFrame({"customer_id": ["a", "b"], "kind": ["survey", "survey"]})
    assert np.isnan(fcr_rate(surveys))
    names = [sc.name for sc in scenarios_from_params(p, surveys)]
    assert "fcr_up" not in names and len(names) == 2
    all_resolved = pd.DataFrame({"kind": ["ticket"] * 3, "first_contact_resolution": [True] * 3})
    assert "fcr_up" not in [sc.name for sc in scenarios_from_params(p, all_resolved)]
    some = pd.DataFrame({"kind": ["ticket"] * 4, "first_contact_resolution": [1, 0, 1, 1]})
    assert "fcr_up" in [sc.name for sc in scenarios_from_params(p, some)]
    res = SimpleNamespace(caveats=[{"kind": "fcr_scenario_no_data", "fcr_rate": float("nan")}])
    (text,) = notes(res)
    assert "no first-contact resolution" in text and "nan" not in text


def test_claims_table_never_prints_nan():
    # the experience report printed "nan% of tickets resolved within two contacts (95% CI nan%-nan%)"
    from analysis.report.experience import claims_table
    from analysis.studies.experience.metrics import ClaimNumbers

    nan3 = (float("nan"),) * 3
    table = claims_table(
        ClaimNumbers(
            revenue_pct_per_csat=None,
            retained_12m=nan3,
            within_two_contacts=nan3,
            first_contact=nan3,
        )
    )
    text = " ".join(table.astype(str).to_numpy().ravel())
    assert "nan" not in text.lower().replace("financ", "")
    assert "Not measurable" in text
