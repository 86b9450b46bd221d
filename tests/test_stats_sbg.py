"""Tests of the shifted-beta-geometric (sBG) retention model (analysis.stats.btyd.sbg).

References for the expected values
-----------------------------------
* Fader & Hardie (2007), "How to project customer retention", Journal of Interactive
  Marketing 21(1), 76-90. Table 1: customers of the "regular" and "high end" cohorts
  (1,000 each) still active at years 0-12. Fitting the sBG to years 0-7 (seven renewal
  opportunities) they report alpha = 0.704, beta = 1.182 (regular) and alpha = 0.668,
  beta = 3.806 (high end). The same estimates are the reference values of the sBG
  tests of pymc-marketing (tests/clv/models/test_shifted_beta_geo.py, "pg(7) of
  paper") and of jdmaturen/shifted_beta_geometric_py (sbg.py, ``test()``).
* jdmaturen/shifted_beta_geometric_py, README (an independent implementation, fitted
  to the high-end years 1-7): projected survival in years 8-12 = 0.460, 0.436, 0.414,
  0.395, 0.378, and DERL at d = 10% for the survivors after 7 renewals = 7.530.
* Fader & Hardie (2010), "Customer-base valuation in a contractual setting: the perils
  of ignoring heterogeneity", Marketing Science 29(1), 85-93, Table 3 (as transcribed
  in pymc-marketing's sBG tests): DERL at d = 0.10 for customers who made 0-4
  renewals (FH's n - 1 renewals, n = 1..5): case 1 (alpha = 3.80, beta = 15.20)
  3.31, 3.45, 3.59, 3.72, 3.84; case 2 (alpha = 0.067, beta = 0.267) 7.68, 9.46,
  9.86, 10.06, 10.19.
* Fader & Hardie, "Fitting the sBG model to multi-cohort data" (brucehardie.com note),
  four cohorts of 10,000 with 10000, 8000, 6480, 5307, 4391 active: alpha = 3.80,
  beta = 15.19 (the reference value of jdmaturen/shifted_beta_geometric_py's tests).

Independent second implementations in this file: the log-likelihood, survival and
churn probabilities by the recursion of FH (2007, eq. 7), maximised with Nelder-Mead;
standard errors from a finite-difference Hessian of that likelihood; DERL as a direct
sum of discounted survival probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import optimize, special

from analysis import value
from analysis.errors import AnalysisError
from analysis.stats.btyd import SBGResult, fit_sbg, fit_sbg_counts, parameter_table

# FH (2007), Table 1: customers still active at years 0..12.
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394]
# FH (2007): estimates from years 0-7.
PUBLISHED = {"regular": (0.704, 1.182), "high_end": (0.668, 3.806)}


# ---------------------------------------------------------------------------
# A second implementation: FH (2007), eq. 7 recursion
# ---------------------------------------------------------------------------


def _churn_probs(a, b, n):
    """P(T = 1..n) by the recursion P(T=1) = a/(a+b), P(T=t) = (b+t-2)/(a+b+t-1) P(T=t-1)."""
    p = [a / (a + b)]
    for t in range(2, n + 1):
        p.append(p[-1] * (b + t - 2) / (a + b + t - 1))
    return np.array(p)


def _survival_rec(a, b, n):
    """S(0..n) = 1 - cumulative churn probabilities."""
    return np.concatenate([[1.0], 1.0 - np.cumsum(_churn_probs(a, b, n))])


def _loglik_rec(a, b, active):
    active = np.asarray(active, float)
    n = active.size - 1
    lost = active[:-1] - active[1:]
    return float(
        np.dot(lost, np.log(_churn_probs(a, b, n)))
        + active[-1] * np.log(_survival_rec(a, b, n)[-1])
    )


def _expand(active):
    """One row per customer from counts still active at periods 0, 1, ..., K."""
    active = np.asarray(active)
    k = active.size - 1
    rows = [(t - 1, True) for t in range(1, k + 1) for _ in range(active[t - 1] - active[t])]
    rows += [(k, False)] * int(active[-1])
    return pd.DataFrame(rows, columns=["renewals", "left"])


@pytest.fixture(scope="module")
def fits():
    return {
        "regular": fit_sbg_counts(REGULAR[:8]),
        "high_end": fit_sbg_counts(HIGH_END[:8]),
    }


# ---------------------------------------------------------------------------
# Published estimates and the shared likelihood
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cohort", ["regular", "high_end"])
def test_published_estimates(fits, cohort):
    r = fits[cohort]
    gamma, delta = PUBLISHED[cohort]  # FH (2007): alpha, beta
    assert round(float(r.params["gamma"]), 3) == gamma
    assert round(float(r.params["delta"]), 3) == delta
    assert r.n_customers == 1000
    assert list(r.params.index) == ["gamma", "delta"]


@pytest.mark.parametrize("cohort, data", [("regular", REGULAR), ("high_end", HIGH_END)])
def test_loglik_and_estimates_match_second_implementation(fits, cohort, data):
    r = fits[cohort]
    g, d = r.params
    assert r.loglik == pytest.approx(_loglik_rec(g, d, data[:8]), rel=1e-12)
    ref = optimize.minimize(
        lambda th: -_loglik_rec(*np.exp(th), data[:8]),
        [0.0, 0.0],
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000},
    )
    assert_allclose(r.params.to_numpy(), np.exp(ref.x), rtol=1e-6)
    assert r.loglik == pytest.approx(-ref.fun, abs=1e-8)


@pytest.mark.parametrize("cohort, data", [("regular", REGULAR), ("high_end", HIGH_END)])
def test_standard_errors_from_observed_information(fits, cohort, data):
    """SEs equal the inverse of a finite-difference Hessian of the recursion likelihood."""
    r = fits[cohort]
    p = r.params.to_numpy()
    h = 1e-4 * p
    H = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h[i], np.eye(2)[j] * h[j]
            H[i, j] = (
                _loglik_rec(*(p + ei + ej), data[:8])
                - _loglik_rec(*(p + ei - ej), data[:8])
                - _loglik_rec(*(p - ei + ej), data[:8])
                + _loglik_rec(*(p - ei - ej), data[:8])
            ) / (4 * h[i] * h[j])
    cov = np.linalg.inv(-H)
    assert_allclose(r.cov.to_numpy(), cov, rtol=1e-4)
    assert_allclose(r.se.to_numpy(), np.sqrt(np.diag(cov)), rtol=1e-4)


def test_customer_rows_and_counts_share_one_likelihood(fits):
    rows = _expand(REGULAR[:8])
    r = fit_sbg(rows, periods="renewals", churned="left")
    c = fits["regular"]
    assert_allclose(r.params.to_numpy(), c.params.to_numpy(), rtol=1e-9)
    assert_allclose(r.se.to_numpy(), c.se.to_numpy(), rtol=1e-7)
    assert r.loglik == pytest.approx(c.loglik, rel=1e-12)
    assert (r.n_customers, r.n_churned) == (1000, 1000 - 241)
    # 0/1 flags and a shuffled frame give the same fit
    rows01 = rows.assign(left=rows["left"].astype(int)).sample(frac=1.0, random_state=3)
    r01 = fit_sbg(rows01, periods="renewals", churned="left")
    assert_allclose(r01.params.to_numpy(), r.params.to_numpy(), rtol=1e-12)


def test_multi_cohort_counts():
    # FH note "Fitting the sBG model to multi-cohort data": alpha = 3.80, beta = 15.19.
    cohorts = [
        [10000, 8000, 6480, 5307, 4391],
        [10000, 8000, 6480, 5307],
        [10000, 8000, 6480],
        [10000, 8000],
    ]
    r = fit_sbg_counts(cohorts)
    assert round(float(r.params["gamma"]), 2) == 3.80
    assert round(float(r.params["delta"]), 2) == 15.19
    assert r.n_customers == 40000
    # the same likelihood as the customer rows of all cohorts stacked
    rows = pd.concat([_expand(c) for c in cohorts], ignore_index=True)
    r2 = fit_sbg(rows, periods="renewals", churned="left")
    assert_allclose(r2.params.to_numpy(), r.params.to_numpy(), rtol=1e-9)


def test_value_exports_fit_sbg_and_parameter_table(fits):
    assert value.fit_sbg is fit_sbg
    t = parameter_table(fits["high_end"])
    assert list(t["parameter"]) == ["gamma", "delta"]
    assert (t["model"] == "sBG").all()
    assert (t["ci_lower"] < t["estimate"]).all() and (t["estimate"] < t["ci_upper"]).all()


# ---------------------------------------------------------------------------
# Projected survival and retention
# ---------------------------------------------------------------------------


def test_projected_survival_high_end_matches_reference(fits):
    # jdmaturen/shifted_beta_geometric_py README: years 8-12 = 0.460, 0.436, 0.414, 0.395, 0.378
    s = fits["high_end"].survival(np.arange(8, 13))
    assert_allclose(np.round(s, 3), [0.460, 0.436, 0.414, 0.395, 0.378], atol=1e-12)


@pytest.mark.parametrize(
    "cohort, data, tol", [("regular", REGULAR, 0.005), ("high_end", HIGH_END, 0.02)]
)
def test_survival_and_retention_curves(fits, cohort, data, tol):
    r = fits[cohort]
    g, d = r.params
    t = np.arange(13)
    s = r.survival(t)
    # model quantities against the recursion (FH 2007, eq. 7) and eq. 8
    assert_allclose(s, _survival_rec(g, d, 12), rtol=1e-10)
    assert r.survival(0) == 1.0
    rr = r.retention_rate(t[1:])
    assert_allclose(rr, s[1:] / s[:-1], rtol=1e-10)
    assert_allclose(rr, (d + t[1:] - 1) / (g + d + t[1:] - 1), rtol=1e-14)
    assert np.all(np.diff(rr) > 0)  # retention rises with tenure (sorting)
    # projections of the held-out years 8-12 against FH (2007), Table 1
    observed = np.asarray(data) / 1000
    assert np.max(np.abs(s[8:] - observed[8:])) < tol
    observed_rr = observed[1:] / observed[:-1]
    assert np.max(np.abs(rr[7:] - observed_rr[7:])) < 0.015


# ---------------------------------------------------------------------------
# Residual lifetime and customer value
# ---------------------------------------------------------------------------


def _derl_sum(g, d, m, rate):
    """Direct sum of discounted survival probabilities: sum_j S(m+1+j)/S(m) / (1+rate)^j."""
    n = int(60 / np.log1p(rate)) + m + 2
    s = _survival_rec(g, d, n)
    j = np.arange(n - m)
    return float(np.sum(s[m + 1 :] / s[m] / (1 + rate) ** j))


def _derl_betaln(g, d, m, rate, n=2_000_000):
    """The same sum in log space (no cancellation in 1 - cumulative sums) for small rates."""
    j = np.arange(n)
    ls = special.betaln(g, d + m + 1 + j) - special.betaln(g, d + m)
    return float(np.sum(np.exp(ls - j * np.log1p(rate))))


def test_derl_fader_hardie_2010_table3():
    case1 = SBGResult.from_params(3.80, 15.20)
    assert_allclose(
        case1.discounted_residual_lifetime(np.arange(5), 0.10),
        [3.31, 3.45, 3.59, 3.72, 3.84],
        atol=0.005,
    )
    # Case 2: the published alpha, beta are rounded to 3 decimals; the table is matched
    # to 0.01 with them and to its 2 decimals with 1/15 and 4/15 (which round to them
    # and have the same mean churn probability, 0.2, as case 1).
    published = [7.68, 9.46, 9.86, 10.06, 10.19]
    case2 = SBGResult.from_params(0.067, 0.267)
    assert_allclose(case2.discounted_residual_lifetime(np.arange(5), 0.10), published, atol=0.01)
    exact = SBGResult.from_params(1 / 15, 4 / 15)
    assert_allclose(exact.discounted_residual_lifetime(np.arange(5), 0.10), published, atol=0.005)


def test_derl_reference_implementation(fits):
    # jdmaturen README: high-end survivors after 7 renewals, d = 10%: 7.530
    assert round(fits["high_end"].discounted_residual_lifetime(7, 0.10), 3) == 7.530


@pytest.mark.parametrize(
    "g, d, m, rate",
    [
        (0.704, 1.182, 0, 0.10),
        (0.668, 3.806, 3, 0.05),
        (1.0, 1.2, 5, 0.01),  # integer gamma: scipy's hyp2f1 is off here near z = 1
        (3.0, 0.1, 1, 0.02),
        (0.05, 0.4, 0, 0.25),
        (25.0, 80.0, 12, 0.008),
    ],
)
def test_derl_equals_direct_sum(g, d, m, rate):
    model = SBGResult.from_params(g, d)
    assert model.discounted_residual_lifetime(m, rate) == pytest.approx(
        _derl_sum(g, d, m, rate), rel=1e-8
    )


@pytest.mark.parametrize(
    "g, d, m, rate", [(1.0, 1.2, 5, 0.001), (0.3, 2.0, 2, 0.002), (2.0, 9.0, 0, 0.0005)]
)
def test_derl_small_discount_rates(g, d, m, rate):
    model = SBGResult.from_params(g, d)
    assert model.discounted_residual_lifetime(m, rate) == pytest.approx(
        _derl_betaln(g, d, m, rate), rel=1e-8
    )


def test_derl_hypergeometric_closed_form():
    """FH (2010), eq. 6, where scipy's 2F1 is accurate (argument 1/1.1, non-integer gamma)."""
    g, d, rate = 0.668, 3.806, 0.10
    m = np.arange(6)
    closed = (d + m) / (g + d + m) * special.hyp2f1(1, d + m + 1, g + d + m + 1, 1 / (1 + rate))
    model = SBGResult.from_params(g, d)
    assert_allclose(model.discounted_residual_lifetime(m, rate), closed, rtol=1e-10)


def test_derl_of_many_customers_is_each_customers_derl():
    """Customers share renewal counts; values computed once per distinct count are each
    customer's own (direct sums as the second implementation), in the customers' order."""
    g, d, rate = 0.668, 3.806, 0.10
    m = np.array([3, 0, 3, 7, 0, 12, 7, 3])
    model = SBGResult.from_params(g, d)
    assert_allclose(
        model.discounted_residual_lifetime(m, rate),
        [_derl_sum(g, d, k, rate) for k in m],
        rtol=1e-8,
    )
    within = model.discounted_value_within(m, rate, 4)
    direct = [
        sum(model.survival(k + 1 + j) / model.survival(k) / (1 + rate) ** j for j in range(4))
        for k in m
    ]
    assert_allclose(within, direct, rtol=1e-10)
    assert model.discounted_value_within(3, rate, 4) == pytest.approx(direct[0], rel=1e-10)


def test_expected_residual_lifetime():
    m = np.array([0, 1, 4])
    model = SBGResult.from_params(2.5, 3.0)
    # E[T - 1 - m | T > m] = (delta + m) / (gamma - 1); against a long direct sum
    assert_allclose(model.expected_residual_lifetime(m), (3.0 + m) / 1.5, rtol=1e-14)
    j = np.arange(4_000_000)
    direct = np.sum(np.exp(special.betaln(2.5, 3.0 + 1 + j) - special.betaln(2.5, 3.0)))
    assert model.expected_residual_lifetime(0) == pytest.approx(direct, rel=1e-4)
    assert model.discounted_residual_lifetime(0, 0.0) == model.expected_residual_lifetime(0)
    assert np.isinf(SBGResult.from_params(0.9, 3.0).expected_residual_lifetime(2))


def test_clv_point_and_interval(fits):
    r = fits["high_end"]
    m = [0, 3, 7]
    out = r.clv(120.0, periods_survived=m, discount_rate=0.10, n_draws=1000, seed=4)
    derl = r.discounted_residual_lifetime(m, 0.10)
    assert_allclose(out["residual_lifetime"], derl, rtol=1e-14)
    assert_allclose(out["clv"], 120.0 * derl, rtol=1e-14)
    assert (out["ci_lower"] < out["clv"]).all() and (out["clv"] < out["ci_upper"]).all()
    again = r.clv(120.0, periods_survived=m, discount_rate=0.10, n_draws=1000, seed=4)
    pd.testing.assert_frame_equal(out, again)
    # bootstrap spread against the delta method (numerical gradient of DERL, result.cov)
    p = r.params.to_numpy()
    for i, mi in enumerate(m):
        grad = []
        for k in range(2):
            e = np.eye(2)[k] * 1e-6 * p[k]
            hi = SBGResult.from_params(*(p + e)).discounted_residual_lifetime(mi, 0.10)
            lo = SBGResult.from_params(*(p - e)).discounted_residual_lifetime(mi, 0.10)
            grad.append((hi - lo) / (2 * e[k]))
        grad = np.array(grad)
        se_delta = 120.0 * float(np.sqrt(grad @ r.cov.to_numpy() @ grad))
        assert out["se"].iloc[i] == pytest.approx(se_delta, rel=0.1)


def test_clv_without_covariance_has_no_interval():
    out = SBGResult.from_params(3.8, 15.2).clv(50.0, periods_survived=2, discount_rate=0.1)
    # FH (2010), Table 3: DERL = 3.59 after 2 renewals (2 decimals)
    assert out["clv"].iloc[0] == pytest.approx(50.0 * 3.59, abs=50.0 * 0.005)
    assert out[["se", "ci_lower", "ci_upper"]].isna().all().all()


# ---------------------------------------------------------------------------
# Boundary cases and bad input: clear errors, never a crash
# ---------------------------------------------------------------------------


def _rule(excinfo):
    return excinfo.value.problems[0].rule


def test_no_churn_raises():
    df = pd.DataFrame({"periods": [0, 1, 2, 3], "churned": [False] * 4})
    with pytest.raises(AnalysisError, match="none of the 4 customers churned") as e:
        fit_sbg(df, periods="periods", churned="churned")
    assert _rule(e) == "no_churn"
    with pytest.raises(AnalysisError) as e:
        fit_sbg_counts([1000, 1000, 1000])
    assert _rule(e) == "no_churn"


def test_everyone_churned_in_period_one_raises():
    df = pd.DataFrame({"periods": [0] * 5, "churned": [1] * 5})
    with pytest.raises(AnalysisError, match="first renewal opportunity") as e:
        fit_sbg(df, periods="periods", churned="churned")
    assert _rule(e) == "all_churned_first_period"
    with pytest.raises(AnalysisError) as e:
        fit_sbg_counts([1000, 0])
    assert _rule(e) == "all_churned_first_period"


@pytest.mark.parametrize(
    "counts, rule",
    [
        ([1000, 600], "not_identified"),  # one renewal opportunity
        ([1000, 900, 700, 400, 100], "not_converged"),  # retention falls: geometric limit
        ([1000, 600, 600, 600], "not_converged"),  # nobody leaves after period 1
    ],
)
def test_unidentified_or_boundary_data_raise(counts, rule):
    with pytest.raises(AnalysisError) as e:
        fit_sbg_counts(counts)
    assert _rule(e) == rule


@pytest.mark.parametrize(
    "frame, match, rule",
    [
        (
            pd.DataFrame({"periods": [1, -1, 2], "churned": [1, 0, 1]}),
            "impossible 'periods'",
            "bad_periods",
        ),
        (
            pd.DataFrame({"periods": [1, 1.5, 2], "churned": [1, 0, 1]}),
            "impossible 'periods'",
            "bad_periods",
        ),
        (
            pd.DataFrame({"periods": [1, None, 2], "churned": [1, 0, 1]}),
            "impossible 'periods'",
            "bad_periods",
        ),
        (
            pd.DataFrame({"periods": [1, 2, 2], "churned": [1, None, 1]}),
            "not True/False",
            "bad_churned",
        ),
        (
            pd.DataFrame({"periods": [1, 2, 2], "churned": ["yes", "no", "yes"]}),
            "not True/False",
            "bad_churned",
        ),
        (pd.DataFrame({"periods": [1, 2, 2]}), "lacks column", "missing_column"),
        (pd.DataFrame({"periods": [], "churned": []}), "no customers", "no_rows"),
    ],
)
def test_bad_customer_rows(frame, match, rule):
    with pytest.raises(AnalysisError, match=match) as e:
        fit_sbg(frame, periods="periods", churned="churned")
    assert _rule(e) == rule


def test_bad_rows_name_examples():
    df = pd.DataFrame({"periods": [1, -2, 3], "churned": [1, 0, 1]}, index=["a", "b", "c"])
    with pytest.raises(AnalysisError) as e:
        fit_sbg(df, periods="periods", churned="churned")
    p = e.value.problems[0]
    assert (p.table, p.column, p.n_rows, p.examples) == ("lifetimes", "periods", 1, ("b",))


@pytest.mark.parametrize(
    "counts, rule",
    [
        ([100.0, 86.9, 74.3], "bad_counts"),  # percentages, not counts
        ([1000, 800, 850], "not_decreasing"),
        ([0, 0, 0], "not_decreasing"),
        ([], "no_rows"),
        ([[1000, 800], [1000, -5]], "bad_counts"),
    ],
)
def test_bad_counts(counts, rule):
    with pytest.raises(AnalysisError) as e:
        fit_sbg_counts(counts)
    assert _rule(e) == rule


def test_bad_arguments_of_predictions(fits):
    r = fits["regular"]
    with pytest.raises(AnalysisError):
        r.survival(-1)
    with pytest.raises(AnalysisError):
        r.retention_rate(0)
    with pytest.raises(AnalysisError):
        r.discounted_residual_lifetime(2, -0.1)
    with pytest.raises(AnalysisError):
        r.clv(10.0, periods_survived=1, discount_rate=0.1, level=1.5)


# ---------------------------------------------------------------------------
# Known-truth recovery
# ---------------------------------------------------------------------------


def test_recovers_planted_parameters():
    """20,000 simulated customers: p ~ Beta(0.9, 2.2), lifetime ~ Geometric(p), observed
    for 1-10 renewal opportunities each (staggered joins). The 95% CIs cover the truth."""
    truth = np.array([0.9, 2.2])
    rng = np.random.default_rng(2007)
    n = 20_000
    p = rng.beta(*truth, size=n)
    lifetime = rng.geometric(p)  # the period in which the customer leaves: 1, 2, ...
    horizon = rng.integers(1, 11, size=n)  # renewal opportunities observed
    left = lifetime <= horizon
    df = pd.DataFrame({"renewals": np.where(left, lifetime - 1, horizon), "left": left})
    r = fit_sbg(df, periods="renewals", churned="left")
    lo = r.params - 1.96 * r.se
    hi = r.params + 1.96 * r.se
    assert np.all((lo.to_numpy() < truth) & (truth < hi.to_numpy()))
    assert np.all(r.se.to_numpy() < 0.1 * truth)
