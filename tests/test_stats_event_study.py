"""The event study's post-enrolment averages (analysis.stats.event_study).

``post_att`` averages event times 1..window end, ``overall_post_att`` 0..window end.
Checked on panels whose answer is known on paper, against a planted effect, against
the per-event-time estimates they average, and against the imputation variance of
Borusyak, Jaravel & Spiess (2024, Theorem 3) written out with dense dummy matrices.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import loyalty


def _hand_panel(effect_by_rel):
    """Three customers x four months, y = a_i + g_t + effect(rel), no noise.

    A never enrols; B enrols in month 2 (rel -2, -1, 0, 1); C in month 3 (rel -3..0).
    With no anticipation window, the untreated months are A's, B's 0-1 and C's 0-2;
    the additive model fits them exactly, so every imputed outcome is exact and the
    effect at each event time is the planted one.
    """
    a = {"A": 10.0, "B": 20.0, "C": 30.0}
    g = [0.0, 1.0, 3.0, 6.0]
    cohort = {"A": np.nan, "B": 2, "C": 3}
    rows = []
    for c in "ABC":
        for t in range(4):
            rel = t - cohort[c]
            eff = effect_by_rel(rel) if not np.isnan(rel) and rel >= 0 else 0.0
            rows.append((c, t, a[c] + g[t] + eff, cohort[c], rel))
    return pd.DataFrame(rows, columns=["customer_id", "period", "revenue", "cohort", "rel"])


def test_constant_effect_without_noise_is_recovered_exactly():
    es = loyalty.event_study(
        _hand_panel(lambda rel: 10.0), window=(-1, 1), anticipation=0, twfe=False
    )
    for pa in (es.post_att, es.overall_post_att):
        assert pa["estimate"] == pytest.approx(10.0, abs=1e-9)
        assert pa["se"] < 1e-9
        assert pa["ci_lower"] == pytest.approx(10.0, abs=1e-8)
        assert pa["ci_upper"] == pytest.approx(10.0, abs=1e-8)
    assert es.post_att["months"] == "1..1" and es.overall_post_att["months"] == "0..1"


def test_dynamic_effect_without_noise_by_hand():
    # effect 4 in the enrolment month, 10 a month later. Months 0..1 hold B's month 2
    # (rel 0), C's month 3 (rel 0) and B's month 3 (rel 1): (4 + 4 + 10) / 3 = 6.
    # Months 1..1 hold B's month 3 only: 10.
    es = loyalty.event_study(
        _hand_panel(lambda rel: 4.0 if rel == 0 else 10.0),
        window=(-1, 1),
        anticipation=0,
        twfe=False,
    )
    assert es.overall_post_att["estimate"] == pytest.approx(6.0, abs=1e-9)
    assert es.post_att["estimate"] == pytest.approx(10.0, abs=1e-9)
    assert es.overall_post_att["se"] < 1e-9 and es.post_att["se"] < 1e-9
    # observed spend of those months: B2 = 20 + 3 + 4, C3 = 30 + 6 + 4, B3 = 20 + 6 + 10
    assert es.overall_post_att["observed_mean"] == pytest.approx((27 + 40 + 36) / 3)
    assert es.overall_post_att["untreated_mean"] == pytest.approx((23 + 36 + 26) / 3)


def _simulated(n=1500, T=24, effect=5.0, seed=4):
    """Staggered adoption with unit and month effects; constant effect from enrolment on."""
    rng = np.random.default_rng(seed)
    alpha = rng.normal(50, 10, n)
    gamma = rng.normal(0, 3, T)
    cohort = np.where(rng.random(n) < 0.5, rng.integers(6, 20, n), np.nan)
    p = pd.DataFrame(
        {"customer_id": np.repeat(np.arange(n), T), "period": np.tile(np.arange(T), n)}
    )
    p["cohort"] = np.repeat(cohort, T)
    p["rel"] = p.period - p.cohort
    p = p[rng.random(len(p)) < 0.85].reset_index(drop=True)  # unbalanced
    treated = (p.rel >= 0).to_numpy()
    p["revenue"] = (
        alpha[p.customer_id] + gamma[p.period] + effect * treated + rng.normal(0, 5, len(p))
    )
    return p


@pytest.fixture(scope="module")
def simulated():
    p = _simulated()
    return p, loyalty.event_study(p, window=(-6, 6), anticipation=3)


def test_overall_interval_covers_the_planted_effect(simulated):
    _, es = simulated
    o = es.overall_post_att
    assert o["ci_lower"] < 5.0 < o["ci_upper"]
    assert abs(o["estimate"] - 5.0) < 3 * o["se"]
    assert o["ci_upper"] - o["ci_lower"] == pytest.approx(2 * 1.959963984540054 * o["se"])
    assert o["se_method"] == "analytic" and o["months"] == "0..6"


def test_overall_is_the_count_weighted_mean_of_the_event_time_effects(simulated):
    p, es = simulated
    imp = es.coefficients.query("estimator == 'imputation' and 0 <= rel <= 6").set_index("rel")
    # every enrollee has untreated months (cohorts from month 6), so each event time's
    # estimate averages all its enrollee-months in the panel
    counts = p[(p.rel >= 0) & (p.rel <= 6)].groupby("rel").size()
    expected = np.average(imp.estimate.loc[counts.index.to_numpy()], weights=counts.to_numpy())
    assert es.overall_post_att["estimate"] == pytest.approx(expected, rel=1e-10)
    later = counts.loc[1:]
    expected_post = np.average(imp.estimate.loc[later.index.to_numpy()], weights=later.to_numpy())
    assert es.post_att["estimate"] == pytest.approx(expected_post, rel=1e-10)


def test_overall_standard_error_is_the_imputation_variance_by_dense_algebra():
    # Borusyak, Jaravel & Spiess (2024), Theorem 3 with explicit dummy matrices: the
    # estimate is sum v_it y_it, v = 1/N on the averaged enrollee-months and
    # -Z0 (Z0'Z0)^+ Z' w on untreated rows; the variance sums over customers
    # (sum_t v_it e_it)^2 with first-stage residuals for untreated rows and each
    # effect minus its event-time mean for treated rows.
    p = _simulated(n=120, T=10, seed=9)
    p["cohort"] = p.cohort.where(p.cohort < 8)
    p["rel"] = p.period - p.cohort
    anticipation, hi = 1, 3
    es = loyalty.event_study(p, window=(-2, hi), anticipation=anticipation, twfe=False)
    unit = pd.factorize(p.customer_id)[0]
    period = p.period.to_numpy()
    y = p.revenue.to_numpy()
    rel = p.rel.to_numpy()
    treated = ~np.isnan(rel)
    untreated = ~treated | (np.nan_to_num(rel, nan=-99) < -anticipation)
    nu, npd = unit.max() + 1, period.max() + 1
    z = np.column_stack([np.eye(nu)[unit], np.eye(npd)[period]])
    z0 = z[untreated]
    fitted = z @ (np.linalg.pinv(z0) @ y[untreated])
    tau = y - fitted
    seen = np.zeros(nu, bool)
    seen[unit[untreated]] = True
    usable = treated & ~untreated & seen[unit]
    tau_bar = np.zeros(len(y))
    for k in range(-anticipation, hi + 1):
        m = usable & (rel == k)
        tau_bar[m] = tau[m].mean()
    eps = np.where(untreated, tau, np.where(usable, tau - tau_bar, 0.0))
    for first, got in ((0, es.overall_post_att), (1, es.post_att)):
        m = usable & (rel >= first) & (rel <= hi)
        w = m / m.sum()
        v = w.copy()
        v[untreated] = -z0 @ np.linalg.pinv(z0.T @ z0) @ (z.T @ w)
        assert got["estimate"] == pytest.approx(v @ y, rel=1e-9)
        se = np.sqrt(np.sum(np.bincount(unit, weights=v * eps, minlength=nu) ** 2))
        assert got["se"] == pytest.approx(se, rel=1e-8)


def test_overall_bootstrap_agrees_with_the_analytic_standard_error(simulated):
    p, es = simulated
    boot = loyalty.event_study(
        p, window=(-6, 6), anticipation=3, se="bootstrap", n_boot=150, seed=2, twfe=False
    )
    assert boot.overall_post_att["se_method"] == "bootstrap"
    assert boot.overall_post_att["n_boot"] == 150
    assert boot.overall_post_att["estimate"] == pytest.approx(es.overall_post_att["estimate"])
    ratio = es.overall_post_att["se"] / boot.overall_post_att["se"]
    assert 0.75 < ratio < 1.33
