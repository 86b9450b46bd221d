"""Tests for analysis.data.fe_engine and analysis.stats.fixed_effects_sums: two-way fixed
effects solved on the engine from sums.

References: dummy-variable OLS in statsmodels (an independent implementation of the
same least squares and CRV1 errors), pyfixest ``feols`` (R fixest's conventions), and
the package's in-memory engine :func:`analysis.stats.fixed_effects.fit_fe`; the
revenue link of the experience study against its pandas implementation on the same
world.
"""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from analysis.data import derive
from analysis.data.fe_engine import materialized, period_ordinal
from analysis.errors import AnalysisError, DataError
from analysis.stats.fixed_effects import fit_fe
from analysis.stats.fixed_effects_sums import pattern_cross
from analysis.studies.experience.revenue import _lag_fits, dose_response
from analysis.studies.experience.revenue_engine import (
    _round_half_even,
    engine_dose_response,
    engine_lag_fits,
)
from analysis.studies.fixed_effects_engine import two_way_fit

TERMS = ["coef", "se", "ci_lower", "ci_upper", "p_value"]


def _panel(seed: int, customers: int, periods: int, keep: float = 0.7) -> pd.DataFrame:
    """An unbalanced panel: each customer present in a random stretch of periods, with
    holes, some customers in one period only (singletons) and missing regressors."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(customers):
        a, b = np.sort(rng.integers(0, periods, 2))
        rows += [(c, t) for t in range(a, b + 1) if rng.random() < keep]
    df = pd.DataFrame(rows, columns=["customer_id", "period"])
    n = len(df)
    effect = rng.normal(0, 3, customers)[df.customer_id]
    df["x1"] = rng.normal(size=n) + 0.3 * effect + 0.02 * df.period
    df["x2"] = rng.poisson(1.0, size=n).astype(float)
    df.loc[rng.random(n) < 0.1, "x2"] = np.nan
    df["revenue"] = (
        2.0 * df.x1
        - 0.5 * df.x2.fillna(0)
        + effect
        + np.sin(df.period)
        + rng.normal(0, 1 + 0.5 * (df.customer_id % 3), n)
    )
    return df


@pytest.fixture(scope="module")
def con():
    return ibis.duckdb.connect()


@pytest.mark.parametrize(
    ("customers", "periods", "regressors"),
    [(600, 12, ["x1"]), (1500, 70, ["x1", "x2"]), (400, 150, ["x2"])],
)
def test_engine_two_way_fit_equals_the_in_memory_engine(con, customers, periods, regressors):
    # 70 and 150 periods: patterns of two and three 62-bit words
    df = _panel(customers + periods, customers, periods)
    want = fit_fe(
        df,
        outcome="revenue",
        regressors=regressors,
        fixed_effects=["customer_id", "period"],
        cluster="customer_id",
    )
    got = two_way_fit(
        con,
        ibis.memtable(df),
        outcome="revenue",
        regressors=regressors,
        customer="customer_id",
        period="period",
    )
    assert want.singletons_dropped > 0
    assert (got.n_obs, got.n_customers, got.df_k, got.singletons_dropped) == (
        want.n_obs,
        want.n_customers,
        want.df_k,
        want.singletons_dropped,
    )
    assert_allclose(got.summary[TERMS], want.summary[TERMS], rtol=1e-9, atol=1e-300)
    assert_allclose(got.vcov, want.vcov, rtol=1e-9)
    assert got.r2_within == pytest.approx(want.r2_within, rel=1e-9)
    assert got.outcome_mean == pytest.approx(want.outcome_mean, rel=1e-12)
    assert got.ssc == pytest.approx(want.ssc, rel=1e-14)


def test_engine_two_way_fit_equals_dummy_variable_ols(con):
    # statsmodels: the dummies written out, CRV1 with every dummy counted in K
    import statsmodels.formula.api as smf

    df = _panel(5, 80, 9, keep=0.85).dropna()
    while True:  # no singletons: the engine drops them, dummy-variable OLS keeps them
        kept = df[
            (df.groupby("customer_id").customer_id.transform("size") > 1)
            & (df.groupby("period").period.transform("size") > 1)
        ]
        if len(kept) == len(df):
            break
        df = kept
    dv = smf.ols("revenue ~ x1 + x2 + C(customer_id) + C(period)", data=df).fit(
        cov_type="cluster", cov_kwds={"groups": df.customer_id.to_numpy()}
    )
    got = two_way_fit(
        con,
        ibis.memtable(df),
        outcome="revenue",
        regressors=["x1", "x2"],
        customer="customer_id",
        period="period",
        k_fixef="full",
    )
    assert_allclose(got.summary.coef, dv.params[["x1", "x2"]], rtol=1e-8)
    assert_allclose(got.summary.se, dv.bse[["x1", "x2"]], rtol=1e-8)


@pytest.mark.filterwarnings("ignore::Warning:pyfixest")
def test_engine_two_way_fit_equals_pyfixest(con):
    import pyfixest as pf

    df = _panel(9, 500, 20).dropna()
    # periods as calendar dates, as a report's panel has them
    df["period"] = (pd.Timestamp("2023-01-01") + pd.to_timedelta(df.period * 7, "D")).dt.date
    ref = pf.feols(
        "revenue ~ x1 + x2 | customer_id + period", data=df, vcov={"CRV1": "customer_id"}
    )
    got = two_way_fit(
        con,
        ibis.memtable(df),
        outcome="revenue",
        regressors=["x1", "x2"],
        customer="customer_id",
        period="period",
    )
    assert_allclose(got.summary.coef, ref.coef().to_numpy(), rtol=1e-7)
    assert_allclose(got.summary.se, ref.se().to_numpy(), rtol=1e-6)
    assert got.n_obs == ref._N


def test_pattern_cross_equals_the_count_matrix():
    rng = np.random.default_rng(2)
    n_t, n_c = 130, 300
    present = rng.random((n_c, n_t)) < 0.2
    present[present.sum(axis=1) == 0, 0] = True
    want = present.T.astype(float) @ (present / present.sum(axis=1, keepdims=True))
    words = np.zeros((n_c, 3), dtype=np.int64)
    for t in range(n_t):
        words[present[:, t], t // 62] |= np.int64(1) << np.int64(t % 62)
    # one row per customer, and the same customers counted per distinct pattern
    got = pattern_cross(words, present.sum(axis=1), np.ones(n_c), n_t, step=37)
    assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    u, inv = np.unique(words, axis=0, return_inverse=True)
    counts = np.bincount(inv.ravel())
    rows = present.sum(axis=1)[np.unique(inv.ravel(), return_index=True)[1]]
    assert_allclose(pattern_cross(u, rows, counts, n_t), want, rtol=1e-12, atol=1e-12)


def test_a_regressor_the_effects_absorb_is_refused(con):
    df = _panel(3, 200, 10).dropna()
    df["fixed"] = df.customer_id % 5 * 1.5  # constant within each customer
    with pytest.raises(AnalysisError, match="collinear"):
        two_way_fit(
            con,
            ibis.memtable(df),
            outcome="revenue",
            regressors=["x1", "fixed"],
            customer="customer_id",
            period="period",
        )
    with pytest.raises(AnalysisError, match="too few"):
        two_way_fit(
            con,
            ibis.memtable(df.head(3)),
            outcome="revenue",
            regressors=["x1"],
            customer="customer_id",
            period="period",
        )


def test_temporary_tables_are_dropped(con):
    df = _panel(4, 300, 8)
    before = set(con.list_tables())
    two_way_fit(
        con,
        ibis.memtable(df),
        outcome="revenue",
        regressors=["x1"],
        customer="customer_id",
        period="period",
    )
    with pytest.raises(RuntimeError):
        with materialized(con, ibis.memtable(df)):
            raise RuntimeError("a failing section")
    assert not [t for t in set(con.list_tables()) - before if t.startswith("_analysis_")]


def test_half_even_rounding_matches_numpy(con):
    x = np.array([0.5, 1.5, 2.5, 3.5, 4.5, 1.49, 2.51, 3.0, 4.999, 1.0 + 1e-12])
    got = con.to_pyarrow(_round_half_even(ibis.memtable({"x": x}).x)).to_numpy()
    assert got.tolist() == np.round(x).astype(int).tolist()


def test_period_numbers_match_the_pandas_lags(con):
    from analysis.studies.experience.frames import _period_ordinal

    days = pd.Series(pd.date_range("2019-12-30", "2024-03-04", freq="7D"))
    days = pd.concat([days, pd.Series(pd.date_range("2020-01-01", periods=30, freq="MS"))])
    t = ibis.memtable(pd.DataFrame({"d": days.dt.date}))
    for freq in ("month", "quarter", "week", "day"):
        got = con.to_pyarrow(period_ordinal(t.d, freq)).to_numpy()
        assert got.tolist() == _period_ordinal(days, freq).tolist(), freq


# --------------------------------------------------------------------------------------
# The experience study's revenue link: engine and pandas on the same world
# --------------------------------------------------------------------------------------


def _both(study, period: str):
    pe = derive.panel(study.source, period=period, lifetimes_expr=study.lifetimes_expr())
    pn = study.panel(period=period)
    full = pn.loc[
        pn["churned"].to_numpy() == 0,
        ["customer_id", "period", "revenue", "csat_mean", "unresolved_tickets", "sla_breaches"],
    ]
    return pe, full


@pytest.mark.parametrize("period", ["month", "week"])
def test_engine_revenue_link_equals_the_pandas_one(tiny_world, period):
    from analysis import data

    st = data.load_study_data(tiny_world.params_file)
    pe, full = _both(st, period)
    exposures = ["csat_mean", "unresolved_tickets", "sla_breaches"]
    want = _lag_fits(full, exposures=exposures, lags=[1, 2, 3], freq=period)
    got = engine_lag_fits(st.source.con, pe, exposures=exposures, lags=[1, 2, 3], freq=period)
    assert len(want) >= 6 and sorted(got) == sorted(want)
    for key, w in want.items():
        g = got[key]
        assert list(g.summary.index) == list(w.summary.index)
        assert (g.n_obs, g.n_customers, g.df_k) == (w.n_obs, w.n_customers, w.df_k), key
        assert_allclose(g.summary[TERMS], w.summary[TERMS], rtol=1e-8, err_msg=str(key))

    d_want = dose_response(full, freq=period)
    d_got = engine_dose_response(st.source.con, pe, freq=period)
    assert len(d_want) >= 3
    pd.testing.assert_frame_equal(d_got, d_want, check_dtype=False, rtol=1e-8)


def test_duplicated_customer_periods_are_refused(con):
    df = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2],
            "period": pd.to_datetime(
                ["2024-01-01", "2024-01-01", "2024-02-01"] * 1 + ["2024-01-01", "2024-02-01"]
            ).date,
            "revenue": [1.0, 2.0, 3.0, 4.0, 5.0],
            "csat_mean": [3.0, 4.0, 5.0, 2.0, 1.0],
            "churned": [0, 0, 0, 0, 0],
        }
    )
    with pytest.raises(DataError, match="more than one row per customer and period"):
        engine_lag_fits(con, ibis.memtable(df), exposures=["csat_mean"], lags=[1])


def revenue_link_numbers(study, period: str = "month") -> pd.DataFrame:
    """Every number of the engine revenue link and dose table of ``study`` (for the
    Postgres and Spark comparisons with DuckDB)."""
    pe = derive.panel(study.source, period=period)
    con = study.source.con
    fits = engine_lag_fits(
        con, pe, exposures=["csat_mean", "unresolved_tickets", "sla_breaches"], lags=[1, 2]
    )
    rows = [f.summary[TERMS + ["n_obs", "n_customers"]] for _, f in sorted(fits.items())]
    dose = engine_dose_response(con, pe).set_index("level").add_prefix("dose_")
    return pd.concat([*rows, dose.rename(index=str)], axis=0)


def test_revenue_link_numbers_have_every_part(tiny_world):
    from analysis import data

    got = revenue_link_numbers(data.load_study_data(tiny_world.params_file))
    assert got.index.str.endswith("_lag1").sum() == 3 and got["dose_customers"].notna().sum() >= 3


def test_engine_mean_revenue_equals_the_pandas_one(tiny_world):
    from analysis import data
    from analysis.studies.experience.metrics import monthly_revenue
    from analysis.studies.experience.revenue_engine import engine_mean_revenue

    st = data.load_study_data(tiny_world.params_file)
    want = monthly_revenue(st.panel(period="month"))
    got = engine_mean_revenue(derive.panel(st.source, period="month"))
    assert want[0] > 0 and want[1] > 0
    assert got == pytest.approx(want, rel=1e-10)


def test_the_revenue_side_is_monthly_whatever_the_period(tiny_world):
    # The report speaks of months (revenue a month, next month's revenue, lags in months):
    # a weekly or quarterly analysis.period must not change those numbers. (A weekly run
    # once lost the revenue sections to a month key on weekly rows, and counted a week's
    # revenue as a month's.)
    from analysis import data
    from analysis.studies import experience

    month = experience.run_study(data.load_study_data(tiny_world.params_file))
    for period in ("week", "quarter"):
        st = data.load_study_data(tiny_world.params_file, {"analysis": {"period": period}})
        other = experience.run_study(st)
        assert other.revenue_per_month == pytest.approx(month.revenue_per_month, rel=1e-12)
        pd.testing.assert_frame_equal(other.revenue.summary, month.revenue.summary, rtol=1e-10)
        pd.testing.assert_frame_equal(other.lags, month.lags, rtol=1e-10)


def test_a_failed_engine_revenue_side_says_why_not_that_csat_is_missing(tiny_world, monkeypatch):
    # If the engine cannot build the outcome months (here: two rows for a customer and month),
    # the revenue sections give that reason, never "the data has no CSAT answers".
    from contextlib import contextmanager

    from analysis import data
    from analysis.errors import Problem
    from analysis.studies import experience
    from analysis.studies.experience import study as exp_study
    from analysis.studies.sections import is_skipped

    @contextmanager
    def broken(*args, **kwargs):
        raise DataError(
            "The panel has more than one row per customer and period.",
            [Problem("panel", "period", "duplicate_key", "duplicated customer-period rows")],
        )
        yield  # pragma: no cover

    monkeypatch.setattr(exp_study, "outcome_table", broken)
    res = experience.run_study(data.load_study_data(tiny_world.params_file))
    for section in (res.revenue, res.lags, res.dose):
        assert is_skipped(section)
        assert "CSAT" not in section.reason and "recorded often enough" not in section.reason
    assert res.revenue_per_month[0] > 0  # the rest of the report stands
    assert not is_skipped(res.hazards)
