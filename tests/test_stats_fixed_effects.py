"""The two-way fixed-effects engine (analysis.stats.fixed_effects) against independent references.

References: dummy-variable least squares (numpy ``lstsq`` and statsmodels OLS on
explicit dummy columns, with statsmodels' cluster-robust covariance), pyfixest's
alternating-projections kernel, and published Grunfeld results (Stata 13 as
stored in statsmodels' test suite; Gretl as reproduced in R package plm).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose

from analysis.errors import AnalysisError, DataError
from analysis.stats.fixed_effects import TwoWayFE, demean, fit_fe


def _dummies(*codes: np.ndarray) -> np.ndarray:
    """Dense dummy matrix of one or more integer code vectors (all levels, no reference)."""
    return np.column_stack([np.eye(int(c.max()) + 1)[c] for c in codes])


def _lstsq_fit(z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Fitted values of v on the columns of z (minimum-norm least squares)."""
    coef, *_ = np.linalg.lstsq(z, v, rcond=None)
    return z @ coef


def _unbalanced(n_unit=70, n_period=9, seed=0, keep=0.7):
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_unit), n_period)
    period = np.tile(np.arange(n_period), n_unit)
    m = rng.random(unit.size) < keep
    unit, period = unit[m], period[m]
    unit = pd.factorize(unit)[0]  # every level present, codes in order
    y = rng.normal(size=unit.size) + 0.3 * unit + np.sin(period)
    return unit, period, y, rng


# --------------------------------------------------------------------------------------
# TwoWayFE: the solver
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [False, True])
def test_two_way_fit_and_residuals_equal_dummy_variable_least_squares(shuffle):
    unit, period, y, rng = _unbalanced()
    if shuffle:  # rows not grouped by unit take the general (scatter) route
        order = rng.permutation(unit.size)
        unit, period, y = unit[order], period[order], y[order]
    fe = TwoWayFE(unit, period)
    a, b = fe.fit(y)
    z = _dummies(unit, period)
    fitted = _lstsq_fit(z, y)
    assert_allclose(a[unit] + b[period], fitted, atol=1e-9)
    x = rng.normal(size=unit.size)
    got = fe.residuals([y, x])
    assert_allclose(got[0], y - fitted, atol=1e-9)
    assert_allclose(got[1], x - _lstsq_fit(z, x), atol=1e-9)
    assert_allclose(fe.counts_first, np.bincount(unit))
    assert_allclose(fe.counts_second, np.bincount(period))


def test_two_way_residuals_equal_statsmodels_dummy_ols():
    unit, period, y, _ = _unbalanced(n_unit=40, n_period=6, seed=3)
    ref = sm.OLS(y, _dummies(unit, period)[:, :-1]).fit().resid  # full rank: one dummy less
    (got,) = TwoWayFE(unit, period).residuals([y])
    assert_allclose(got, ref, atol=1e-9)


def test_two_way_more_periods_than_units_and_empty_levels():
    # the effect with fewer levels is the one solved through the Schur complement, whichever
    # argument it is; declared levels without rows get effect 0
    rng = np.random.default_rng(2)
    unit = np.repeat(np.arange(5), 30)
    period = np.tile(np.arange(30), 5)
    m = rng.random(unit.size) < 0.8
    unit, period = unit[m], period[m]
    y = rng.normal(size=unit.size) + unit - 0.1 * period
    fe = TwoWayFE(unit, period, n_first=8, n_second=33)
    a, b = fe.fit(y)
    assert a.shape == (8,) and b.shape == (33,)
    assert_allclose(a[5:], 0.0) and assert_allclose(b[30:], 0.0)
    assert_allclose(a[unit] + b[period], _lstsq_fit(_dummies(unit, period), y), atol=1e-9)


def test_two_way_disconnected_panel():
    # two groups of units observed in disjoint periods: the design has two redundant
    # directions (pseudo-inverse); fitted values are still unique
    rng = np.random.default_rng(4)
    unit = np.r_[np.repeat(np.arange(10), 3), np.repeat(np.arange(10, 20), 3)]
    period = np.r_[np.tile([0, 1, 2], 10), np.tile([3, 4, 5], 10)]
    y = rng.normal(size=unit.size)
    a, b = TwoWayFE(unit, period).fit(y)
    assert_allclose(a[unit] + b[period], _lstsq_fit(_dummies(unit, period), y), atol=1e-9)


def test_two_way_solve_gives_normal_equation_solutions_for_several_right_hand_sides():
    unit, period, _, rng = _unbalanced(n_unit=50, n_period=7, seed=5)
    z = _dummies(unit, period)
    v = rng.normal(size=(unit.size, 3))
    fe = TwoWayFE(unit, period)
    ha, hb = fe.solve(
        np.column_stack([np.bincount(unit, weights=v[:, j]) for j in range(3)]),
        np.column_stack([np.bincount(period, weights=v[:, j]) for j in range(3)]),
    )
    assert ha.shape == (unit.max() + 1, 3) and hb.shape == (period.max() + 1, 3)
    # Z h solves the normal equations: Z'Z h = Z'v, i.e. Z h is the projection of v
    assert_allclose(ha[unit] + hb[period], _lstsq_fit(z, v), atol=1e-9)


# --------------------------------------------------------------------------------------
# demean: the one absorption entry
# --------------------------------------------------------------------------------------


def test_demean_exact_route_equals_pyfixest_kernel():
    from pyfixest.core.demean import demean as pf_demean

    unit, period, y, rng = _unbalanced(n_unit=300, n_period=12, seed=6)
    x = rng.poisson(1, unit.size) + 0.1 * period
    fe = np.column_stack([unit, period]).astype(np.int64)
    ref, ok = pf_demean(
        np.ascontiguousarray(np.column_stack([y, x])),
        fe.astype(np.uint64),
        np.ones(unit.size),
        tol=1e-14,
    )
    got, converged = demean([y, x.astype(float)], fe)
    assert ok and converged
    assert_allclose(np.column_stack(got), ref, atol=1e-9)


def test_demean_three_effects_equals_dummy_variable_least_squares():
    rng = np.random.default_rng(8)
    n = 600
    fe = np.column_stack([rng.integers(0, 40, n), rng.integers(0, 6, n), rng.integers(0, 5, n)])
    fe = np.column_stack([pd.factorize(fe[:, j])[0] for j in range(3)])
    y = rng.normal(size=n) + fe[:, 0] * 0.2
    (got,), converged = demean([y.copy()], fe, tol=1e-13)
    assert converged
    assert_allclose(got, y - _lstsq_fit(_dummies(*fe.T), y), atol=1e-7)


# --------------------------------------------------------------------------------------
# fit_fe: regression with absorbed effects and clustered standard errors
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(7)
    n, t = 60, 8
    df = pd.DataFrame({"customer": np.repeat(np.arange(n), t), "period": np.tile(np.arange(t), n)})
    df = df.sample(frac=0.8, random_state=3).sort_index().reset_index(drop=True)  # unbalanced
    a = rng.normal(0, 3, n)[df.customer]
    g = rng.normal(0, 1, t)[df.period]
    df["x1"] = 0.3 * a + rng.normal(0, 1, len(df))
    df["x2"] = rng.poisson(1, len(df)).astype(float)
    df["y"] = 50 + 5 * a + g + 2.0 * df.x1 - 1.0 * df.x2 + rng.normal(0, 3, len(df))
    return df


def test_fit_fe_two_way_equals_statsmodels_dummy_variable_ols(panel):
    df = panel
    z = np.column_stack(
        [df[["x1", "x2"]].to_numpy(), _dummies(df.customer.to_numpy(), df.period.to_numpy())]
    )
    z = z[:, :-1]  # drop one period dummy: the customer dummies already span the constant
    dv = sm.OLS(df.y.to_numpy(), z).fit(
        cov_type="cluster", cov_kwds={"groups": df.customer.to_numpy()}
    )
    # statsmodels counts every dummy in K of (N-1)/(N-K): k_fixef="full"
    full = fit_fe(
        df,
        outcome="y",
        regressors=["x1", "x2"],
        fixed_effects=["customer", "period"],
        cluster="customer",
        k_fixef="full",
    )
    assert_allclose(full.summary.coef, dv.params[:2], rtol=1e-8)
    assert_allclose(full.summary.se, dv.bse[:2], rtol=1e-8)
    assert_allclose(full.vcov.to_numpy(), dv.cov_params()[:2, :2], rtol=1e-8)
    # Stata/fixest: customer effects nested in customer clusters are not counted in K
    nested = fit_fe(
        df,
        outcome="y",
        regressors=["x1", "x2"],
        fixed_effects=["customer", "period"],
        cluster="customer",
    )
    n_obs, g, t = len(df), df.customer.nunique(), df.period.nunique()
    k_full, k_nested = 2 + g + t - 1, 2 + t
    assert full.df_k == k_full and nested.df_k == k_nested
    assert_allclose(
        nested.summary.se, dv.bse[:2] * np.sqrt((n_obs - k_full) / (n_obs - k_nested)), rtol=1e-8
    )
    assert nested.n_obs == n_obs and nested.n_clusters == g and nested.converged


def test_fit_fe_rows_in_any_order_and_effects_in_any_order(panel):
    ref = fit_fe(
        panel,
        outcome="y",
        regressors=["x1", "x2"],
        fixed_effects=["customer", "period"],
        cluster="customer",
    )
    shuffled = panel.sample(frac=1, random_state=1)
    got = fit_fe(
        shuffled,
        outcome="y",
        regressors=["x1", "x2"],
        fixed_effects=["period", "customer"],
        cluster="customer",
    )
    assert_allclose(got.summary.to_numpy(float), ref.summary.to_numpy(float), rtol=1e-9)


def test_fit_fe_clustered_by_period_equals_statsmodels(panel):
    # clusters by period: with k_fixef="full" every dummy counts in K (statsmodels); by
    # default the period effects, nested in the period clusters, do not
    df = panel
    z = np.column_stack(
        [df[["x1", "x2"]].to_numpy(), _dummies(df.customer.to_numpy(), df.period.to_numpy())]
    )[:, :-1]
    dv = sm.OLS(df.y.to_numpy(), z).fit(
        cov_type="cluster", cov_kwds={"groups": df.period.to_numpy()}
    )
    got = fit_fe(
        df,
        outcome="y",
        regressors=["x1", "x2"],
        fixed_effects=["customer", "period"],
        cluster="period",
        customer="customer",
        k_fixef="full",
    )
    assert_allclose(got.summary.coef, dv.params[:2], rtol=1e-8)
    assert_allclose(got.summary.se, dv.bse[:2], rtol=1e-8)
    g, t = df.customer.nunique(), df.period.nunique()
    assert got.n_clusters == t and got.n_customers == g and got.df_k == 2 + g + t - 1
    nested = fit_fe(
        df,
        outcome="y",
        regressors=["x1", "x2"],
        fixed_effects=["customer", "period"],
        cluster="period",
        customer="customer",
    )
    assert nested.df_k == 2 + g
    ratio = np.sqrt((len(df) - (2 + g + t - 1)) / (len(df) - (2 + g)))
    assert_allclose(nested.summary.se, dv.bse[:2] * ratio, rtol=1e-8)


@pytest.fixture(scope="module")
def grunfeld():
    from statsmodels.datasets import grunfeld as g

    d = g.load_pandas().data.iloc[:200].copy()  # the 10 firms of Stata's / plm's Grunfeld data
    d["year"] = d["year"].astype(int)
    return d


def test_fit_fe_grunfeld_pooled_matches_stata(grunfeld):
    # Stata 13: `regress invest mvalue kstock, vce(cluster company)`, as stored in
    # statsmodels/regression/tests/results/results_grunfeld_ols_robust_cluster.py
    r = fit_fe(grunfeld, outcome="invest", regressors=["value", "capital"], cluster="firm")
    assert_allclose(r.summary.coef, [0.11556215606596, 0.23067848754982], rtol=1e-7)
    assert_allclose(r.summary.se, [0.01589433647768, 0.08496711097464], rtol=1e-7)
    assert_allclose(r.summary.ci_lower, [0.07960666895505, 0.03846952885627], rtol=1e-7)
    assert_allclose(r.summary.ci_upper, [0.15151764317688, 0.42288744624337], rtol=1e-7)


def test_fit_fe_grunfeld_two_way_matches_gretl(grunfeld):
    # Gretl output reproduced in R package plm, tests/test_pwaldtest.R ("Reference: Gretl
    # (2016b)"; github.com/ycroissant/plm), model 6: firm fixed effects + year dummies,
    # clustered by firm with Stata's small-sample factor.
    r = fit_fe(
        grunfeld,
        outcome="invest",
        regressors=["value", "capital"],
        fixed_effects=["firm", "year"],
        cluster="firm",
    )
    assert_allclose(r.summary.coef, [0.117716, 0.357916], atol=5e-7)
    assert_allclose(r.summary.se, [0.0108244, 0.0478484], atol=5e-8)
    assert r.df_k == 2 + 20


def test_fit_fe_drops_singletons_and_missing_rows(panel):
    df = panel.copy()
    df.loc[df.index[:5], "x1"] = np.nan
    extra = pd.DataFrame({"customer": [999], "period": [0], "x1": [1.0], "x2": [1.0], "y": [3.0]})
    df = pd.concat([df, extra], ignore_index=True)
    got = fit_fe(
        df,
        outcome="y",
        regressors=["x1", "x2"],
        fixed_effects=["customer", "period"],
        cluster="customer",
    )
    assert got.singletons_dropped >= 1
    kept = df.dropna(subset=["x1"])
    kept = kept[kept.customer.map(kept.customer.value_counts()) > 1]
    ref = fit_fe(
        kept,
        outcome="y",
        regressors=["x1", "x2"],
        fixed_effects=["customer", "period"],
        cluster="customer",
    )
    assert got.n_obs == ref.n_obs == len(kept)
    assert_allclose(got.summary.coef, ref.summary.coef, rtol=1e-10)


def test_fit_fe_errors(panel):
    df = panel.assign(per_customer=panel.customer.astype(float))
    with pytest.raises(AnalysisError, match="collinear"):
        fit_fe(
            df,
            outcome="y",
            regressors=["per_customer"],
            fixed_effects=["customer", "period"],
            cluster="customer",
        )
    with pytest.raises(DataError, match="lacks columns"):
        fit_fe(df, outcome="y", regressors=["nope"], fixed_effects=["customer"], cluster="customer")
    with pytest.raises(AnalysisError, match="k_fixef"):
        fit_fe(df, outcome="y", regressors=["x1"], cluster="customer", k_fixef="some")
