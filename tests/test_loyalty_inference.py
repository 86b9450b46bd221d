"""Analytic intervals of the loyalty study: IP-weighted survival and the event study.

Each fast analytic computation is checked against an independent one: the
Greenwood variance of statsmodels, the IPW influence function of
``causal.estimate_effect``, dense dummy-variable algebra, ``pyfixest``, and the
bootstrap the analytic formulas replaced.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis import causal, loyalty
from analysis.stats.event_study import _imputation
from analysis.stats.fixed_effects import TwoWayFE
from analysis.stats.weighted_survival import _weighted_km_if


def _survival_frame(n=3000, seed=1, censor=True):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.binomial(1, 0.4, n)
    e = 1 / (1 + np.exp(-(-1 + 0.8 * x1 + 0.5 * x2)))
    t = rng.binomial(1, e)
    time = np.round(rng.exponential(10 / np.exp(0.3 * x1 - 0.4 * t + 0.2 * x2)) * 4) / 4
    cens = np.where(rng.random(n) < 0.1, rng.uniform(0, 8, n), 99.0) if censor else np.full(n, 99.0)
    return pd.DataFrame(
        {
            "member": t,
            "x1": x1,
            "x2": x2,
            "time_months": np.minimum(time, cens),
            "event": (time <= cens).astype(int),
        }
    )


def test_unweighted_km_influence_gives_greenwood_variance():
    f = _survival_frame(n=400, seed=5)
    grid = np.array([1.0, 2.5, 4.0, 6.0])
    s, infl = _weighted_km_if(f.time_months.to_numpy(), f.event.to_numpy(), np.ones(len(f)), grid)
    ref = sm.SurvfuncRight(f.time_months, f.event)
    pos = np.searchsorted(ref.surv_times, grid, side="right") - 1
    np.testing.assert_allclose(s, ref.surv_prob[pos], rtol=1e-12)
    # Greenwood: S^2 sum d / (n (n - d)); statsmodels reports its square root
    np.testing.assert_allclose(np.sqrt((infl**2).sum(axis=0)), ref.surv_prob_se[pos], rtol=1e-9)


@pytest.mark.parametrize("estimand", ["ATE", "ATT"])
def test_weighted_survival_without_censoring_matches_ipw_influence_function(estimand):
    # with no censoring before the horizon, the weighted KM at the horizon is the Hajek
    # mean of "still a customer", so its interval must equal estimate_effect's IPW one
    # (an independent implementation of the same sandwich, propensity step included)
    f = _survival_frame(censor=False).assign(event=1)
    h = 6.0
    got = loyalty.weighted_survival(f, covariates=["x1", "x2"], horizon=h, estimand=estimand)
    row = got.summary.set_index("quantity").loc["survival_difference"]
    eff = causal.estimate_effect(
        f.assign(alive=(f.time_months > h).astype(float)),
        treatment="member",
        outcome="alive",
        covariates=["x1", "x2"],
        method="ipw",
        estimand=estimand,
    )
    assert row.estimate == pytest.approx(eff.estimate, abs=1e-12)
    assert row.ci_lower == pytest.approx(eff.ci_lower, abs=1e-9)
    assert row.ci_upper == pytest.approx(eff.ci_upper, abs=1e-9)
    assert got.n_boot == 0


def test_weighted_survival_analytic_intervals_agree_with_the_bootstrap():
    f = _survival_frame()
    a = loyalty.weighted_survival(f, covariates=["x1", "x2"], horizon=6)
    b = loyalty.weighted_survival(f, covariates=["x1", "x2"], horizon=6, se="bootstrap", n_boot=300)
    sa, sb = a.summary.set_index("quantity"), b.summary.set_index("quantity")
    np.testing.assert_allclose(sa.estimate, sb.estimate, rtol=1e-12)
    ratio = (sa.ci_upper - sa.ci_lower) / (sb.ci_upper - sb.ci_lower)
    # 300 replicates: the bootstrap's own interval width is uncertain by about +-8%
    assert ratio.between(0.8, 1.25).all(), ratio
    curves = a.curves
    assert (curves.ci_lower <= curves.survival + 1e-12).all()
    assert (curves.ci_upper >= curves.survival - 1e-12).all()
    assert curves.ci_lower.between(0, 1).all() and curves.ci_upper.between(0, 1).all()


def _panel(n_unit=600, n_period=14, seed=2, effect=5.0):
    """Staggered-adoption panel with unit and period effects and a known effect."""
    rng = np.random.default_rng(seed)
    rows = []
    alpha = rng.normal(50, 10, n_unit)
    beta = np.cumsum(rng.normal(0, 2, n_period))
    cohort = np.where(rng.random(n_unit) < 0.4, rng.integers(4, n_period, n_unit), -1)
    for i in range(n_unit):
        first = int(rng.integers(0, 4))
        last = int(rng.integers(first + 1, n_period))  # unbalanced; some single-row units
        for t in range(first, last + 1):
            treated = cohort[i] >= 0 and t >= cohort[i]
            y = alpha[i] + beta[t] + effect * treated * (1 + 0.1 * (t - cohort[i]))
            rows.append((i, t, y + rng.normal(0, 5), cohort[i]))
    p = pd.DataFrame(rows, columns=["customer_id", "period", "revenue", "cohort"])
    p["cohort"] = p["cohort"].where(p["cohort"] >= 0)
    p["rel"] = p["period"] - p["cohort"]
    return p


def test_two_way_fe_matches_dummy_variable_least_squares():
    p = _panel(n_unit=80, n_period=9)
    unit, _ = pd.factorize(p.customer_id)
    period = p.period.to_numpy()
    y = p.revenue.to_numpy()
    fe = TwoWayFE(unit, period, unit.max() + 1, period.max() + 1)
    a, b = fe.fit(y)
    seen = fe.counts_first > 0
    z = np.column_stack([np.eye(unit.max() + 1)[unit], np.eye(period.max() + 1)[period]])
    coef, *_ = np.linalg.lstsq(z, y, rcond=None)
    np.testing.assert_allclose(a[unit] + b[period], z @ coef, atol=1e-8)
    assert seen.all()


def test_imputation_variance_matches_dense_linear_algebra():
    # Borusyak, Jaravel & Spiess (2024), Theorem 3, written out with explicit dummy matrices
    p = _panel(n_unit=70, n_period=8, seed=4)
    unit, _ = pd.factorize(p.customer_id)
    period = p.period.to_numpy()
    y = p.revenue.to_numpy()
    rel = p.rel.to_numpy()
    treated = ~np.isnan(rel)
    rel_i = np.where(treated, rel, -10_000).astype(int)
    untreated = ~treated | (rel_i < 0)
    ks = np.arange(0, 4)
    nu, npd = unit.max() + 1, period.max() + 1
    est, att, _, _, ses = _imputation(
        y, unit, period, rel_i, treated, untreated, ks, nu, npd, variance=True
    )
    z = np.column_stack([np.eye(nu)[unit], np.eye(npd)[period]])
    z0 = z[untreated]
    fitted = z @ (np.linalg.pinv(z0) @ y[untreated])
    tau = y - fitted
    seen = np.zeros(nu, bool)
    seen[unit[untreated]] = True
    usable = treated & ~untreated & seen[unit]
    masks = [usable & (rel_i == k) for k in ks] + [usable & (rel_i >= 1) & (rel_i <= ks[-1])]
    tau_bar = np.zeros(len(y))
    for m in masks[:-1]:
        tau_bar[m] = tau[m].mean()
    for j, m in enumerate(masks):
        w1 = m / m.sum()
        v0 = -z0 @ np.linalg.pinv(z0.T @ z0) @ (z.T @ w1)  # weights of untreated outcomes
        v = w1.copy()
        v[untreated] = v0
        assert v @ y == pytest.approx(est[j] if j < len(ks) else att[0], abs=1e-8)
        eps = np.where(untreated, y - fitted, np.where(usable, tau - tau_bar, 0.0))
        per_unit = np.bincount(unit, weights=v * eps, minlength=nu)
        assert ses[j] == pytest.approx(np.sqrt(np.sum(per_unit**2)), rel=1e-8)


def test_event_study_twfe_matches_pyfixest_and_imputation_recovers_the_effect():
    import pyfixest as pf

    p = _panel()
    es = loyalty.event_study(p, window=(-4, 4), anticipation=1)
    unit, _ = pd.factorize(p.customer_id)
    rel = p.rel.to_numpy()
    tr = ~np.isnan(rel)
    d = pd.DataFrame({"y": p.revenue, "cid": unit, "period": p.period})
    d["et"] = np.where(tr, np.clip(np.nan_to_num(rel), -4, 4), -2).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.feols("y ~ i(et, ref=-2) | cid + period", data=d, vcov={"CRV1": "cid"})
    ours = es.coefficients.query("estimator == 'twfe' and rel != -2").set_index("rel")
    np.testing.assert_allclose(ours.estimate.to_numpy(), fit.coef().to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(ours.se.to_numpy(), fit.se().to_numpy(), rtol=1e-6)
    # planted effect at event time k: 5 * (1 + 0.1 k)
    imp = es.coefficients.query("estimator == 'imputation' and rel >= 0").set_index("rel")
    truth = 5 * (1 + 0.1 * imp.index.to_numpy())
    assert np.all(np.abs(imp.estimate - truth) < 3 * imp.se)
    boot = loyalty.event_study(
        p, window=(-4, 4), anticipation=1, se="bootstrap", n_boot=300, twfe=False
    )
    ratio = es.post_att["se"] / boot.post_att["se"]
    assert 0.8 < ratio < 1.25
    assert es.post_att["se_method"] == "analytic" and boot.post_att["n_boot"] == 300
