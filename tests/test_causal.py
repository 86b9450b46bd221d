"""Tests for analysis.causal.

Expected values come from
- worked-by-hand examples (Hernán & Robins, *Causal Inference: What If*, Table 2.2),
- the book's published NHEFS analyses (chapters 12 and 13; numbers as printed in the
  book and in its companion R code, https://remlapmot.github.io/cibookex-r/),
- VanderWeele & Ding (2017) and the R package EValue for E-values,
- independent second implementations (statsmodels) where nothing is published.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import causal
from analysis.errors import DataError, ParamsError

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def table22() -> pd.DataFrame:
    """Hernán & Robins, What If, Table 2.2: 20 individuals, confounder L, treatment A, death Y."""
    L = [0] * 8 + [1] * 12
    A = [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    Y = [0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0]
    return pd.DataFrame({"L": L, "A": A, "Y": Y})


@pytest.fixture(scope="module")
def nhefs() -> pd.DataFrame:
    """NHEFS, the 1,566 smokers with weight measured in 1982 (What If, ch. 12)."""
    from causaldata import nhefs_complete

    d = nhefs_complete.load_pandas().data.copy()
    for c in ["age", "smokeintensity", "smokeyrs", "wt71"]:
        d[f"{c}_sq"] = d[c] ** 2
    for c in ["education", "exercise", "active"]:
        d[f"{c}_cat"] = d[c].astype(int).astype(str)
    return d


# The book's confounder set L (Program 12.2): sex, race, age, age^2, education (5 categories),
# smoking intensity and years (with squares), exercise (3), active (3), weight in 1971 (with square).
NHEFS_COVARIATES = [
    "sex",
    "race",
    "age",
    "age_sq",
    "education_cat",
    "smokeintensity",
    "smokeintensity_sq",
    "smokeyrs",
    "smokeyrs_sq",
    "exercise_cat",
    "active_cat",
    "wt71",
    "wt71_sq",
]


def _fit(df, **kw):
    # The book's analyses use large-sample (analytic / GEE) standard errors: pin that variant
    # so the comparisons do not depend on when the default switches to the jackknife.
    args = dict(
        treatment="qsmk", outcome="wt82_71", covariates=NHEFS_COVARIATES, se_method="influence"
    )
    args.update(kw)
    return causal.estimate_effect(df, **args)


# --------------------------------------------------------------------------- Table 2.2 by hand


def test_table22_naive_is_association_not_effect(table22):
    # Risk among treated 7/13, among untreated 3/7 (worked by hand); difference 10/91.
    eff = causal.estimate_effect(
        table22, treatment="A", outcome="Y", covariates=["L"], method="naive"
    )
    assert eff.estimate == pytest.approx(7 / 13 - 3 / 7, abs=1e-12)
    assert eff.mean_treated == pytest.approx(7 / 13)
    assert (eff.n_treated, eff.n_control) == (13, 7)


@pytest.mark.parametrize("method", ["regression", "ipw", "aipw"])
@pytest.mark.parametrize("estimand", ["ATE", "ATT"])
def test_table22_adjusted_effect_is_null(table22, method, estimand):
    # What If, section 2.3-2.4: within each stratum of L the risk is the same under A=1 and A=0
    # (1/4 and 2/3), so the standardised and IP-weighted causal risk difference is exactly 0.
    eff = causal.estimate_effect(
        table22, treatment="A", outcome="Y", covariates=["L"], method=method, estimand=estimand
    )
    assert eff.estimate == pytest.approx(0.0, abs=1e-8)
    # Standardised risk (ATE): 0.4 * 1/4 + 0.6 * 2/3 = 0.5 (What If, Program 13.2 prints 0.5).
    if estimand == "ATE":
        assert eff.mean_control == pytest.approx(0.5, abs=1e-8)
        assert eff.mean_treated == pytest.approx(0.5, abs=1e-8)
    else:
        # Among the treated (4 with L=0, 9 with L=1): (4 * 1/4 + 9 * 2/3) / 13 = 7/13.
        assert eff.mean_control == pytest.approx(7 / 13, abs=1e-8)


def test_table22_ip_weights_by_hand(table22):
    # Pr[A=1 | L=0] = 4/8, Pr[A=1 | L=1] = 9/12 (What If, Fig. 2.1 tree). ATE weights 1/Pr[A=a|L]:
    # L=0: 2 for everyone; L=1: 4/3 for treated, 4 for untreated.
    eff = causal.estimate_effect(
        table22, treatment="A", outcome="Y", covariates=["L"], method="ipw"
    )
    expected = np.where(table22.L == 0, 2.0, np.where(table22.A == 1, 4 / 3, 4.0))
    np.testing.assert_allclose(eff.weights.to_numpy(), expected, rtol=1e-8)
    np.testing.assert_allclose(
        eff.propensity.to_numpy(), np.where(table22.L == 0, 0.5, 0.75), rtol=1e-8
    )
    # ATT weights: 1 for treated; odds e/(1-e) for untreated: 1 (L=0), 3 (L=1).
    att = causal.estimate_effect(
        table22, treatment="A", outcome="Y", covariates=["L"], method="ipw", estimand="ATT"
    )
    expected_att = np.where(table22.A == 1, 1.0, np.where(table22.L == 0, 1.0, 3.0))
    np.testing.assert_allclose(att.weights.to_numpy(), expected_att, rtol=1e-8)


def test_table22_balance_by_hand(table22):
    eff = causal.estimate_effect(
        table22, treatment="A", outcome="Y", covariates=["L"], method="ipw"
    )
    bal = causal.balance(table22, treatment="A", covariates=["L"], weights=eff.weights)
    row = bal.loc["L"]
    assert row.mean_treated == pytest.approx(9 / 13)
    assert row.mean_control == pytest.approx(3 / 7)
    # pooled SD from the sample variances (ddof=1) of a 0/1 variable
    v1 = (9 / 13) * (4 / 13) * 13 / 12
    v0 = (3 / 7) * (4 / 7) * 7 / 6
    assert row.smd == pytest.approx((9 / 13 - 3 / 7) / math.sqrt((v1 + v0) / 2))
    # pseudo-population: 8 + 12 weighted people per arm, 12 of them with L=1
    assert row.mean_treated_weighted == pytest.approx(0.6)
    assert row.mean_control_weighted == pytest.approx(0.6)
    assert row.smd_weighted == pytest.approx(0.0, abs=1e-12)


def _crump_population_alpha(pdf) -> float:
    """Population Crump bound for a propensity density, by quadrature and root finding
    (independent of causal.crump_bound, which works on a sample): alpha solves
    1 / (alpha (1 - alpha)) = 2 E[g | alpha <= e <= 1 - alpha], g = 1 / (e (1 - e))."""
    from scipy import integrate, optimize

    def gap(a):
        num = integrate.quad(lambda e: pdf(e) / (e * (1 - e)), a, 1 - a)[0]
        den = integrate.quad(pdf, a, 1 - a)[0]
        return 1 / (a * (1 - a)) - 2 * num / den

    return optimize.brentq(gap, 1e-6, 0.49)


@pytest.mark.parametrize(
    "dist",
    [stats.uniform(), stats.beta(2, 5), stats.beta(0.8, 0.8)],
    ids=["uniform", "beta(2,5)", "beta(0.8,0.8)"],
)
def test_crump_bound_matches_the_population_rule(dist):
    # Crump, Hotz, Imbens & Mitnik (2009), Biometrika 96(1), Corollary 1. For e uniform on
    # (0, 1) the equation is 1/(a(1-a)) = 4 log((1-a)/a) / (1-2a): a = 0.1018... (their
    # "rule of thumb" 0.1 comes from such calculations).
    expected = _crump_population_alpha(dist.pdf)
    e = dist.rvs(size=400_000, random_state=np.random.default_rng(3))
    assert causal.crump_bound(e) == pytest.approx(expected, abs=0.004)


def test_crump_bound_uniform_closed_form():
    from scipy import optimize

    a = optimize.brentq(
        lambda a: 1 / (a * (1 - a)) - 4 * np.log((1 - a) / a) / (1 - 2 * a), 1e-4, 0.4
    )
    assert a == pytest.approx(_crump_population_alpha(lambda e: 1.0), abs=1e-6)
    assert 0.1015 < a < 0.102


def test_crump_bound_is_zero_with_good_overlap():
    # max g <= 2 E[g]: no trimming (e in [0.3, 0.7]: g <= 4.77, E[g] >= 4)
    e = np.random.default_rng(0).uniform(0.3, 0.7, 10_000)
    assert causal.crump_bound(e) == 0.0


def test_estimate_effect_crump_trimming():
    rng = np.random.default_rng(5)
    n = 20_000
    x = rng.normal(size=n)
    e = 1 / (1 + np.exp(-(-3 + 1.5 * x)))  # rare treatment, poor overlap in the left tail
    t = (rng.random(n) < e).astype(int)
    y = 1.0 + 2.0 * t + x + rng.normal(size=n)
    df = pd.DataFrame({"t": t, "y": y, "x": x})
    eff = causal.estimate_effect(
        df, treatment="t", outcome="y", covariates=["x"], method="ipw", trim="crump"
    )
    first = causal.estimate_effect(df, treatment="t", outcome="y", covariates=["x"], method="ipw")
    a = causal.crump_bound(first.propensity)
    assert eff.trim == pytest.approx((a, 1 - a))
    assert eff.diagnostics["crump_bound"] == pytest.approx(a)
    outside = (first.propensity < a) | (first.propensity > 1 - a)
    assert eff.n_trimmed == int(outside.sum()) > 0
    assert eff.propensity[outside.to_numpy()].isna().all()
    assert eff.to_dict()["trim_lower"] == pytest.approx(a)
    assert eff.ci_lower < 2.0 < eff.ci_upper  # constant effect: the trimmed ATE is still 2
    with pytest.raises(ParamsError, match="crump"):
        causal.estimate_effect(df, treatment="t", outcome="y", covariates=["x"], trim="bogus")


def test_trimming_is_reported(table22):
    # Propensity is 0.5 for the 8 people with L=0 and 0.75 for the 12 with L=1.
    eff = causal.estimate_effect(
        table22, treatment="A", outcome="Y", covariates=["L"], method="ipw", trim=(0.6, 0.9)
    )
    assert eff.n_trimmed == 8
    assert (eff.n_treated, eff.n_control) == (9, 3)
    assert eff.trim == (0.6, 0.9)
    assert (eff.weights[table22.L == 0] == 0).all()
    assert eff.estimate == pytest.approx(0.0, abs=1e-8)


def test_categorical_covariates_are_one_hot_encoded():
    df = pd.DataFrame(
        {
            "seg": pd.Categorical(["b", "a", "c", "a"], categories=["a", "b", "c"]),
            "flag": [True, False, True, True],
        }
    )
    x = causal.covariate_matrix(df, ["seg", "flag"])
    assert list(x.columns) == ["seg[b]", "seg[c]", "flag"]
    np.testing.assert_array_equal(x["seg[b]"], [1, 0, 0, 0])
    np.testing.assert_array_equal(x["flag"], [1, 0, 1, 1])
    assert df["flag"].dtype == bool  # input untouched


def test_bad_inputs_raise_user_errors(table22):
    with pytest.raises(DataError, match="binary"):
        causal.estimate_effect(
            table22.assign(A=table22.A * 2), treatment="A", outcome="Y", covariates=["L"]
        )
    with pytest.raises(DataError, match="complete"):
        causal.estimate_effect(
            table22.assign(L=table22.L.where(table22.index > 0)),
            treatment="A",
            outcome="Y",
            covariates=["L"],
        )
    with pytest.raises(DataError, match="not found"):
        causal.estimate_effect(table22, treatment="A", outcome="Y", covariates=["nope"])
    with pytest.raises(ParamsError):
        causal.estimate_effect(table22, treatment="A", outcome="Y", covariates=["L"], method="x")
    with pytest.raises(ParamsError):
        causal.estimate_effect(
            table22,
            treatment="A",
            outcome="Y",
            covariates=["L"],
            method="regression",
            outcome_model="gbm",
        )


# --------------------------------------------------------------------------- NHEFS, published


def test_nhefs_naive_matches_program_12_1(nhefs):
    # What If, Program 12.1: lm(wt82_71 ~ qsmk): intercept 1.984, qsmk 2.541 kg.
    eff = _fit(nhefs, method="naive")
    assert eff.estimate == pytest.approx(2.541, abs=1e-3)
    assert eff.mean_control == pytest.approx(1.984, abs=1e-3)


def test_nhefs_ipw_matches_program_12_2(nhefs):
    # What If, section 12.2 / Program 12.2 (companion R code, geeglm with weights 1/Pr[A|L]):
    # qsmk 3.4405, robust Std.err 0.5255, 95% CI 2.411 to 4.47 kg. Book text: 3.4 (2.4, 4.5).
    eff = _fit(nhefs, method="ipw", estimand="ATE")
    assert eff.estimate == pytest.approx(3.4405, abs=5e-4)
    # The GEE robust SE treats the weights as known: same sandwich as our fixed-weight SE.
    assert eff.se_fixed_weights == pytest.approx(0.5255, abs=5e-4)
    # Our headline SE also accounts for estimating the propensity model, which for the ATE
    # cannot increase the variance (Lunceford & Davidian 2004), so it is a bit smaller.
    assert eff.se < eff.se_fixed_weights
    assert eff.se == pytest.approx(0.5255, rel=0.15)
    assert eff.ci_lower == pytest.approx(2.411, abs=0.15)
    assert eff.ci_upper == pytest.approx(4.47, abs=0.15)
    # Program 12.2 prints the weights' summary: min 1.054, max 16.700, mean 1.996.
    w = eff.weights
    assert w.min() == pytest.approx(1.054, abs=1e-3)
    assert w.max() == pytest.approx(16.70, abs=1e-2)
    assert w.mean() == pytest.approx(1.996, abs=1e-3)


def test_nhefs_propensity_matches_statsmodels(nhefs):
    # Independent implementation: statsmodels Logit on the same design.
    import statsmodels.api as sm

    x = causal.covariate_matrix(nhefs, NHEFS_COVARIATES)
    res = sm.Logit(nhefs["qsmk"].astype(float), sm.add_constant(x)).fit(disp=0)
    ours = causal.fit_propensity(nhefs, treatment="qsmk", covariates=NHEFS_COVARIATES)
    np.testing.assert_allclose(ours.to_numpy(), res.predict(), atol=1e-7)
    # What If, Program 12.2 coefficient for sex: -0.5274782
    assert res.params["sex[1]"] == pytest.approx(-0.5274782, abs=1e-5)


def test_nhefs_standardization_matches_programs_13_3_and_13_4(nhefs):
    # What If, Program 13.4 (outcome model without the qsmk x smokeintensity term):
    # standardised difference 3.46262182922601 kg; bootstrap 95% CI in the book text ~2.6 to 4.5.
    eff = _fit(nhefs, method="regression", outcome_model="linear_common")
    assert eff.estimate == pytest.approx(3.46262182922601, abs=1e-6)
    assert eff.se == pytest.approx(0.47, abs=0.1)  # bootstrap SE is not published with R=5 reps

    # Program 13.3 (with the qsmk x smokeintensity term): E[Y^1] 5.178841, E[Y^0] 1.660267,
    # difference 3.518574; book text 3.5 kg (95% CI 2.6, 4.5). The book averages predictions over
    # all 1,629 participants, including the 63 without a 1982 weight; we standardise over the
    # 1,566 with an outcome, so the means shift by ~0.1 but the difference agrees to ~0.002.
    eff = _fit(
        nhefs,
        method="regression",
        outcome_model="linear_common",
        interactions=["smokeintensity"],
    )
    assert eff.estimate == pytest.approx(3.518574, abs=0.01)
    assert eff.ci_lower == pytest.approx(2.6, abs=0.1)
    assert eff.ci_upper == pytest.approx(4.5, abs=0.1)


def test_nhefs_doubly_robust_agrees_with_book(nhefs):
    # What If, ch. 13 (standardisation 3.5, 95% CI 2.6 to 4.5) and ch. 12 (IP weighting 3.4,
    # 2.4 to 4.5): a doubly robust estimate with both models from the book must land between
    # them, with an interval of the same width (analytic here, bootstrap in the book).
    eff = _fit(nhefs, method="aipw", estimand="ATE")
    assert 3.3 <= eff.estimate <= 3.6
    assert eff.ci_lower == pytest.approx(2.5, abs=0.15)
    assert eff.ci_upper == pytest.approx(4.5, abs=0.25)
    assert eff.ci_upper - eff.ci_lower == pytest.approx(4.5 - 2.5, abs=0.3)


def test_nhefs_att_ipw_matches_weighted_least_squares(nhefs):
    # No published ATT; independent check: WLS of the outcome on treatment with ATT weights
    # (1 for quitters, odds for non-quitters) from a statsmodels propensity fit.
    import statsmodels.api as sm

    x = causal.covariate_matrix(nhefs, NHEFS_COVARIATES)
    ps = sm.Logit(nhefs["qsmk"].astype(float), sm.add_constant(x)).fit(disp=0).predict()
    w = np.where(nhefs.qsmk == 1, 1.0, ps / (1 - ps))
    wls = sm.WLS(nhefs.wt82_71, sm.add_constant(nhefs.qsmk.astype(float)), weights=w).fit(
        cov_type="HC0"
    )
    eff = _fit(nhefs, method="ipw", estimand="ATT")
    assert eff.estimate == pytest.approx(wls.params["qsmk"], abs=1e-6)
    assert eff.se_fixed_weights == pytest.approx(wls.bse["qsmk"], rel=1e-6)


def test_nhefs_ipw_se_agrees_with_bootstrap(nhefs):
    # Independent check of the stacked influence-function SE: a nonparametric bootstrap that
    # refits the propensity model in each resample (What If uses the bootstrap in ch. 13).
    rng = np.random.default_rng(2024)
    eff = _fit(nhefs, method="ipw")
    reps = []
    for _ in range(150):
        idx = rng.integers(0, len(nhefs), len(nhefs))
        reps.append(_fit(nhefs.iloc[idx].reset_index(drop=True), method="ipw").estimate)
    boot_se = float(np.std(reps, ddof=1))
    # Monte Carlo error of an SD from 150 draws is ~6%; allow 20%.
    assert eff.se == pytest.approx(boot_se, rel=0.2)
    # The delete-group jackknife (the small-sample variant) estimates the same sampling SD.
    jk = _fit(nhefs, method="ipw", se_method="jackknife")
    assert jk.se_method == "jackknife" and jk.df == causal.JACKKNIFE_GROUPS - 1
    assert jk.estimate == eff.estimate
    assert jk.se == pytest.approx(boot_se, rel=0.2)
    assert jk.se_influence == pytest.approx(eff.se, rel=1e-12)


def test_nhefs_flexible_models_run_and_agree_roughly(nhefs):
    # Gradient boosting with cross-fitting: no published number; the estimate should be near
    # the parametric ones (the book's models are close to right here), within 2 SE.
    eff = _fit(nhefs, method="aipw", propensity_model="gbm", outcome_model="gbm", seed=1)
    assert eff.diagnostics["crossfit_folds"] == 5
    assert abs(eff.estimate - 3.44) < 2 * eff.se
    assert 0.3 < eff.se < 0.8


# --------------------------------------------------------------------------- simulated truth


def _simulate(n, seed, effect=2.0):
    """Confounded data with a known constant effect; selection on x pushes naive upwards."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    seg = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    segb = (seg == "b").astype(float)
    lin = -0.3 + 0.8 * x1 + 0.6 * segb
    t = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(int)
    y = 1.0 + effect * t + 1.5 * x1 + 1.0 * segb + rng.normal(size=n)
    return pd.DataFrame({"t": t, "y": y, "x1": x1, "seg": seg})


@pytest.mark.parametrize("method", ["regression", "ipw", "aipw"])
@pytest.mark.parametrize("estimand", ["ATE", "ATT"])
def test_known_effect_is_recovered_and_naive_is_biased(method, estimand):
    df = _simulate(20_000, seed=7)
    naive = causal.estimate_effect(
        df, treatment="t", outcome="y", covariates=["x1", "seg"], method="naive"
    )
    eff = causal.estimate_effect(
        df, treatment="t", outcome="y", covariates=["x1", "seg"], method=method, estimand=estimand
    )
    assert eff.ci_lower < 2.0 < eff.ci_upper
    # treated have higher x1 and more segment b, both raise y: naive biased upward by > 0.5
    assert naive.estimate > 2.5
    assert naive.ci_lower > 2.0


def test_binary_outcome_logit_regression_recovers_risk_difference():
    rng = np.random.default_rng(3)
    n = 20_000
    x = rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    p0 = 1 / (1 + np.exp(-(-1 + x)))
    p1 = 1 / (1 + np.exp(-(-1 + x - 0.7)))
    y = (rng.random(n) < np.where(t == 1, p1, p0)).astype(int)
    truth = float(np.mean(p1 - p0))  # sample ATE of the potential risks
    df = pd.DataFrame({"t": t, "y": y, "x": x})
    for method in ("regression", "aipw"):
        eff = causal.estimate_effect(
            df, treatment="t", outcome="y", covariates=["x"], method=method, outcome_model="logit"
        )
        assert eff.ci_lower < truth < eff.ci_upper


def test_ratio_is_lift_with_interval():
    # mean under treatment / mean under control; with effect 2 and control mean ~ 1 + ...
    df = _simulate(20_000, seed=11).assign(y=lambda d: d.y + 10)
    eff = causal.estimate_effect(
        df, treatment="t", outcome="y", covariates=["x1", "seg"], estimand="ATT"
    )
    assert eff.ratio == pytest.approx(eff.mean_treated / eff.mean_control)
    assert eff.ratio_ci_lower < eff.ratio < eff.ratio_ci_upper


def test_input_is_not_mutated(table22):
    before = table22.copy()
    causal.estimate_effect(table22, treatment="A", outcome="Y", covariates=["L"], trim=0.01)
    causal.balance(table22, treatment="A", covariates=["L"])
    pd.testing.assert_frame_equal(table22, before)


# --------------------------------------------------------------------------- E-values


def test_e_value_published_examples():
    # VanderWeele & Ding (2017), Ann Intern Med 167:268, breastfeeding and infant respiratory
    # death: RR 3.9 (95% CI 1.8 to 8.7) -> E-value 7.26, and 3.0 for the lower limit.
    ev = causal.e_value(3.9, 1.8, 8.7)
    assert ev.point == pytest.approx(7.26, abs=0.01)
    assert ev.ci == pytest.approx(3.0, abs=0.01)
    # R package EValue vignette: evalues.RR(10.73, 8.02, 14.36) -> 20.94777, 15.52336.
    ev = causal.e_value(10.73, 8.02, 14.36)
    assert ev.point == pytest.approx(20.94777, abs=1e-4)
    assert ev.ci == pytest.approx(15.52336, abs=1e-4)


def test_e_value_protective_and_null_and_conversions():
    # Protective RR 0.8 (0.71, 0.91): invert -> 1.25 + sqrt(1.25 * 0.25) on paper.
    ev = causal.e_value(0.8, 0.71, 0.91)
    assert ev.point == pytest.approx(1.25 + math.sqrt(1.25 * 0.25))
    r = 1 / 0.91
    assert ev.ci == pytest.approx(r + math.sqrt(r * (r - 1)))
    # Interval crossing 1 -> E-value for the CI is 1.
    assert causal.e_value(1.3, 0.9, 1.8).ci == 1.0
    # Common-outcome HR conversion (VanderWeele 2017): RR = (1 - 0.5**sqrt(HR)) / (1 - 0.5**sqrt(1/HR)).
    hr = 0.5
    rr = (1 - 0.5 ** math.sqrt(hr)) / (1 - 0.5 ** math.sqrt(1 / hr))
    ev = causal.e_value(hr, 0.4, 0.6, scale="HR", rare=False)
    assert ev.rr == pytest.approx(1 / rr)
    # SMD: RR = exp(0.91 d)
    assert causal.e_value(0.5, scale="SMD").rr == pytest.approx(math.exp(0.455))


# --------------------------------------------------------------------------- clustering


def _clustered_data(seed=3, n_clusters=300, per=4):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_clusters), per)
    u = rng.normal(size=n_clusters)[g]  # shared cluster effect: rows are not independent
    x = rng.normal(size=g.size) + 0.5 * u
    t = (rng.random(g.size) < 1 / (1 + np.exp(-0.5 * x))).astype(int)
    y = 1.0 + 2.0 * t + x + 2 * u + rng.normal(size=g.size)
    return pd.DataFrame({"g": g, "x": x, "t": t, "y": y})


def test_clustered_se_matches_statsmodels_cluster_robust_ols():
    # Second implementation: the naive difference in means is the OLS slope of y on t; its
    # cluster-robust sandwich (no small-sample factor) times sqrt(G / (G - 1)) is ours.
    import statsmodels.api as sm

    d = _clustered_data()
    eff = causal.estimate_effect(
        d, treatment="t", outcome="y", covariates=[], method="naive", cluster="g"
    )
    ols = sm.OLS(d.y, sm.add_constant(d.t.astype(float))).fit(
        cov_type="cluster", cov_kwds={"groups": d.g, "use_correction": False}
    )
    g = d.g.nunique()
    assert eff.n_clusters == g
    assert eff.se == pytest.approx(ols.bse["t"] * math.sqrt(g / (g - 1)), rel=1e-9)
    unclustered = causal.estimate_effect(
        d, treatment="t", outcome="y", covariates=[], method="naive"
    )
    assert eff.se > unclustered.se  # positively correlated rows within clusters


def test_duplicated_rows_clustered_give_the_original_se():
    # Copying every row twice adds no information: clustered by the original row, the SE
    # must equal the SE of the original data (up to the G / (G - 1) factor, same G).
    d = _clustered_data(n_clusters=400, per=1)
    d["id"] = np.arange(len(d))
    dd = pd.concat([d, d], ignore_index=True)
    for method in ("ipw", "aipw"):
        kw = dict(treatment="t", outcome="y", covariates=["x"], method=method)
        one = causal.estimate_effect(d, **kw, cluster="id", se_method="influence")
        two = causal.estimate_effect(dd, **kw, cluster="id", se_method="influence")
        assert two.estimate == pytest.approx(one.estimate, rel=1e-9)
        assert two.se == pytest.approx(one.se, rel=1e-6)


def test_auto_se_uses_jackknife_only_for_small_arms():
    d = _clustered_data(n_clusters=1000, per=1)
    # 2 parameters: threshold 2 x JACKKNIFE_ROWS_PER_PARAMETER (20) = 40 rows in the smaller arm
    kw = dict(treatment="t", outcome="y", covariates=["x"])
    assert causal.JACKKNIFE_ROWS_PER_PARAMETER == 20
    big = causal.estimate_effect(d, **kw)
    assert big.se_method == "influence" and math.isinf(big.df)
    treated, control = d[d.t == 1], d[d.t == 0]
    ok = pd.concat([treated.iloc[:40], control])
    assert causal.estimate_effect(ok, **kw).se_method == "influence"
    small = pd.concat([treated.iloc[:39], control])
    j = causal.estimate_effect(small, **kw)
    assert j.se_method == "jackknife" and j.df == causal.JACKKNIFE_GROUPS - 1
    assert j.se_influence < j.se  # the case it exists for: the analytic SE is too small
    # the t interval is wider than the normal one for the same SE
    assert j.ci_upper - j.ci_lower > 2 * 1.96 * j.se
    with pytest.raises(ParamsError):
        causal.estimate_effect(d, **kw, se_method="bootstrap")
