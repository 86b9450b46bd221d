"""Tests of the Cox engine, analysis.stats.cox.fit_cox, and its thin callers.

References: R's own regression tests of weighted Cox fits (survival package,
tests/doweight.R with its printed output tests/doweight.Rout.save), statsmodels'
PHReg (an independent implementation: strata, late entry, Breslow/Efron ties and
clustered robust variance for Breslow; it has no case weights), and identities a
correct fit must satisfy (integer case weights = replicated rows; counting-process
splits leave the fit unchanged).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from statsmodels.duration.hazard_regression import PHReg

from analysis import loyalty
from analysis.stats import cox as engine
from analysis.stats.cox import fit_cox

# ---------------------------------------------------------------------------
# R survival, tests/doweight.R (data) and tests/doweight.Rout.save (printed output,
# survival 3.x, R 2020-02-28): weighted Cox fits of a 9-subject data set, and of the
# same data as 14 counting-process rows (testw3) collapsed by id.
# ---------------------------------------------------------------------------

TESTW1 = pd.DataFrame(
    {
        "time": [1, 1, 2, 2, 2, 2, 3, 4, 5],
        "status": [1, 0, 1, 1, 1, 0, 0, 1, 0],
        "x": [2, 0, 1, 1, 0, 1, 0, 1, 0],
        "wt": [1, 2, 3, 4, 3, 2, 1, 2, 1],
    }
)
TESTW3 = pd.DataFrame(
    {
        "id": [1, 1, 2, 3, 3, 3, 4, 5, 5, 6, 7, 8, 8, 9],
        "begin": [0, 5, 0, 0, 10, 15, 0, 0, 14, 0, 0, 0, 23, 0],
        "time": [5, 10, 10, 10, 15, 20, 20, 14, 20, 20, 30, 23, 40, 50],
        "status": [0, 1, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 0],
        "x": [2, 2, 0, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0],
        "wt": [1, 1, 2, 3, 3, 3, 4, 3, 3, 2, 1, 2, 2, 1],
    }
)
# coxph(Surv(time, status) ~ x, testw1, weights = wt, ties = ...): coef, se(coef), and
# resid(fit, type = "score") (unweighted score residuals; weighted = wt x these).
R_DOWEIGHT = {
    "breslow": (
        0.8596,
        0.7131,
        [0.88681615, 0.02497653, 0.03608964, 0.03608964, -0.54297652]
        + [-0.12528780, 0.29564605, -0.09476911, 0.58400064],
    ),
    "efron": (
        0.8726,
        0.7126,
        [0.88116056, 0.02477248, 0.06057806, 0.06057806, -0.59724033]
        + [-0.16737066, 0.38040295, -0.13750290, 0.66631324],
    ),
}
# iter = 0 (Breslow, beta = 0): se(coef) 0.5858 and the score residuals
R_DOWEIGHT_ITER0 = (
    0.5858,
    [1.24653740, 0.03601108, 0.10056700, 0.10056700, -0.22180142]
    + [-0.21193300, 0.46569858, -0.10082189, 0.91014302],
)


def _r_robust_var(fit, resid, wt):
    """Sandwich variance from R's score residuals: sum (wt * resid)^2 / I^2 (one covariate)."""
    return float(np.sum((np.asarray(wt) * np.asarray(resid)) ** 2) * fit.cov[0, 0] ** 2)


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_weighted_fit_and_score_residuals_match_r_doweight(ties):
    coef, se, resid = R_DOWEIGHT[ties]
    d = TESTW1
    fit = fit_cox(d.time, d.status, d[["x"]], weights=d.wt, robust=True, ties=ties)
    assert fit.converged
    assert fit.coef[0] == pytest.approx(coef, abs=5e-5)
    assert np.sqrt(fit.cov[0, 0]) == pytest.approx(se, abs=5e-5)
    # the robust variance is built from the score residuals: R's, weighted, summed
    assert fit.robust_cov[0, 0] == pytest.approx(_r_robust_var(fit, resid, d.wt), rel=1e-6)


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_counting_process_rows_with_weights_and_clusters_match_r_doweight(ties):
    # testw3 holds the same subjects as (begin, time] rows; R: "Same solution", and
    # resid(fit, "score", collapse = id) equals testw1's residuals.
    coef, se, resid = R_DOWEIGHT[ties]
    d = TESTW3
    fit = fit_cox(d.time, d.status, d[["x"]], start=d.begin, weights=d.wt, cluster=d.id, ties=ties)
    assert fit.coef[0] == pytest.approx(coef, abs=5e-5)
    assert np.sqrt(fit.cov[0, 0]) == pytest.approx(se, abs=5e-5)
    assert fit.robust_cov[0, 0] == pytest.approx(_r_robust_var(fit, resid, TESTW1.wt), rel=1e-6)
    one_row = fit_cox(TESTW1.time, TESTW1.status, TESTW1[["x"]], weights=TESTW1.wt, ties=ties)
    assert_allclose(fit.coef, one_row.coef, rtol=1e-10)
    assert fit.loglik == pytest.approx(one_row.loglik, rel=1e-12)


def test_information_and_residuals_at_zero_match_r_iter0():
    se, resid = R_DOWEIGHT_ITER0
    for d, kw in [
        (TESTW1, {}),
        (TESTW3, {"start": TESTW3.begin, "cluster": TESTW3.id}),
    ]:
        fit = fit_cox(
            d.time, d.status, d[["x"]], weights=d.wt, robust=True, ties="breslow", max_iter=0, **kw
        )
        assert fit.coef[0] == 0.0
        assert np.sqrt(fit.cov[0, 0]) == pytest.approx(se, abs=5e-5)
        assert fit.robust_cov[0, 0] == pytest.approx(_r_robust_var(fit, resid, TESTW1.wt), rel=1e-6)


def test_weighted_cox_matches_r_doweight():
    # analysis.loyalty.weighted_cox is a thin caller of the engine (Breslow, robust).
    coef, se, resid = R_DOWEIGHT["breslow"]
    d = TESTW1.rename(columns={"x": "member", "time": "time_months", "status": "event"})
    r = loyalty.weighted_cox(d, weights="wt")
    assert r.log_hr == pytest.approx(coef, abs=5e-5)
    assert r.se_model == pytest.approx(se, abs=5e-5)
    robust = np.sqrt(np.sum((TESTW1.wt * np.asarray(resid)) ** 2)) * r.se_model**2
    assert r.se == pytest.approx(robust, rel=1e-6)
    assert r.hazard_ratio == pytest.approx(np.exp(r.log_hr))
    assert (r.n, r.events) == (9, 5)


# ---------------------------------------------------------------------------
# statsmodels PHReg: strata, late entry, ties, clustered robust variance
# ---------------------------------------------------------------------------


def _counting_rows(n=700, seed=5):
    """Subjects split into two (start, stop] rows with a time-varying covariate and late entry."""
    rng = np.random.default_rng(seed)
    t = np.ceil(rng.exponential(60, n)) + 2
    cens = rng.integers(10, 150, n)
    stop_all = np.minimum(t, cens)
    ev_all = (t <= cens).astype(float)
    entry = np.floor(rng.uniform(0, 0.4, n) * stop_all)
    split = np.floor(entry + (stop_all - entry) * rng.uniform(0.2, 0.8, n))
    ok = (split > entry) & (split < stop_all)
    ids = np.arange(n)[ok]
    z0, z1 = rng.integers(0, 2, n)[ok], rng.integers(0, 3, n)[ok]
    u = rng.normal(size=n)[ok]
    return pd.DataFrame(
        {
            "id": np.r_[ids, ids],
            "start": np.r_[entry[ok], split[ok]],
            "stop": np.r_[split[ok], stop_all[ok]],
            "event": np.r_[np.zeros(ok.sum()), ev_all[ok]],
            "z": np.r_[z0, z1].astype(float),
            "u": np.r_[u, u],
            "region": np.r_[ids % 3, ids % 3],
        }
    )


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_counting_process_strata_entry_match_statsmodels(ties):
    rows = _counting_rows()
    x = rows[["z", "u"]].to_numpy()
    fit = fit_cox(rows.stop, rows.event, x, start=rows.start, strata=rows.region, ties=ties)
    # statsmodels counts a row at risk at t when entry <= t; the engine when start < t
    # (times are integers here), so start + 0.5 states the same risk sets.
    ref = PHReg(
        rows.stop.to_numpy(),
        x,
        status=rows.event.to_numpy(),
        entry=rows.start.to_numpy() + 0.5,
        strata=rows.region.to_numpy(),
        ties=ties,
    ).fit()
    assert_allclose(fit.coef, ref.params, rtol=1e-7)
    assert_allclose(np.sqrt(np.diag(fit.cov)), ref.bse, rtol=1e-7)
    assert fit.loglik == pytest.approx(ref.llf, rel=1e-10)


def test_clustered_robust_variance_matches_statsmodels_breslow():
    # Clusters of several subjects, strata; statsmodels' robust variance (Breslow).
    rng = np.random.default_rng(3)
    n = 500
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n)])
    t = np.ceil(rng.exponential(10 * np.exp(-0.5 * x[:, 0])))
    c = np.ceil(rng.uniform(2, 25, n))
    e = (t <= c).astype(float)
    t = np.minimum(t, c)
    strata, groups = rng.integers(0, 2, n), rng.integers(0, 120, n)
    fit = fit_cox(t, e, x, strata=strata, cluster=groups, ties="breslow")
    ref = PHReg(t, x, status=e, strata=strata, ties="breslow").fit(groups=groups)
    assert_allclose(fit.coef, ref.params, rtol=1e-8)
    assert_allclose(np.sqrt(np.diag(fit.robust_cov)), ref.bse, rtol=1e-8)


# ---------------------------------------------------------------------------
# Identities
# ---------------------------------------------------------------------------


def test_integer_weights_equal_replicated_rows():
    # With Breslow ties a case weight of k is k identical rows: same coefficients,
    # information and (copies in one cluster) robust variance, with strata and late entry.
    # (Not with Efron: replicated events are extra tied events, which Efron's
    # approximation treats differently from one weighted event -- R's doweight.R compares
    # weights with replication for Breslow only.)
    ties = "breslow"
    rows = _counting_rows(300, seed=9)
    w = np.random.default_rng(2).integers(1, 4, len(rows))
    x = rows[["z", "u"]].to_numpy()
    kw = {"start": rows.start, "strata": rows.region, "ties": ties}
    a = fit_cox(rows.stop, rows.event, x, weights=w, cluster=rows.id, **kw)
    rep = rows.loc[rows.index.repeat(w)]
    xr = rep[["z", "u"]].to_numpy()
    b = fit_cox(
        rep.stop, rep.event, xr, start=rep.start, strata=rep.region, cluster=rep.id, ties=ties
    )
    assert_allclose(a.coef, b.coef, rtol=1e-9)
    assert_allclose(a.cov, b.cov, rtol=1e-9)
    assert_allclose(a.robust_cov, b.robust_cov, rtol=1e-9)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-10)


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_pattern_route_equals_row_route(monkeypatch, ties):
    # The covariate-pattern compression (the 1M-customer route) and the merged-row route
    # give the same fit, with weights and clusters.
    rng = np.random.default_rng(4)
    n = 3000
    start = rng.integers(0, 50, n).astype(float)
    stop = start + rng.integers(1, 60, n)
    event = (rng.random(n) < 0.3).astype(float)
    x = np.column_stack([rng.integers(0, 3, n), rng.random(n) < 0.4]).astype(float)
    kw = {
        "start": start,
        "strata": rng.integers(0, 2, n),
        "weights": rng.uniform(0.5, 2, n),
        "cluster": rng.integers(0, 800, n),
        "ties": ties,
    }
    a = fit_cox(stop, event, x, **kw)
    monkeypatch.setattr(engine, "_MAX_PATTERN_CELLS", 0)
    b = fit_cox(stop, event, x, **kw)
    assert a.converged and b.converged
    assert_allclose(a.coef, b.coef, rtol=1e-9)
    assert_allclose(a.robust_cov, b.robust_cov, rtol=1e-8)


def test_unsorted_strata_equal_sorted():
    rows = _counting_rows(400, seed=1)
    x = rows[["z", "u"]].to_numpy()
    a = fit_cox(rows.stop, rows.event, x, start=rows.start, strata=rows.region, cluster=rows.id)
    o = np.argsort(rows.region.to_numpy(), kind="stable")
    s = rows.iloc[o]
    b = fit_cox(s.stop, s.event, x[o], start=s.start, strata=s.region, cluster=s.id)
    assert_allclose(a.coef, b.coef, rtol=1e-12)
    assert_allclose(a.robust_cov, b.robust_cov, rtol=1e-10)


def test_singular_information_raises():
    t = np.array([1.0, 2, 3, 4])
    with pytest.raises(np.linalg.LinAlgError):
        fit_cox(t, [1, 1, 0, 1], np.column_stack([t * 0 + 1.0, t * 0 + 2.0]))
