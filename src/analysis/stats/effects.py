"""Average treatment effects from observational data, with diagnostics.

One entry point, :func:`estimate_effect`, covers four estimators of the effect
of a binary treatment on an outcome:

``naive``
    Difference in mean outcome between treated and untreated. An observational
    contrast, not an effect estimate; shown so readers see how much adjustment
    changes the answer.
``regression``
    Outcome regression standardised over the target population (the parametric
    g-formula of Hernán & Robins, *Causal Inference: What If*, ch. 13).
``ipw``
    Inverse probability weighting with normalised (Hájek) weights (ch. 12).
``aipw``
    Augmented IPW, the doubly robust estimator: consistent if either the
    propensity model or the outcome model is right.

Estimands: ``ATE`` (everyone treated vs no one treated) and ``ATT`` (the
treated as they were vs the treated had they not been treated).

Standard errors are analytic, from each estimator's influence function. For
``ipw`` with the logistic propensity model the influence function includes the
propensity-model estimation step (stacked estimating equations), which is why
it is usually a little smaller than the "robust" GEE standard error that treats
the weights as known; the latter is available as ``Effect.se_fixed_weights``.
For ``aipw`` the standard error is the sample standard deviation of the
efficient influence function; with flexible (gradient-boosting) nuisance
models the nuisances are cross-fitted so that this standard error stays valid.

Everything is numpy linear algebra (a Newton/IRLS logistic fit, normal
equations for least squares), so one million rows with twenty covariates take a
few seconds.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import DataError, ParamsError, Problem
from analysis.stats.design import binary_treatment, covariate_matrix, numeric_outcome
from analysis.stats.logistic import (
    PROPENSITY_MODELS,
    assign_folds,
    gbm_regressor,
    independent_columns,
    limit_threads,
    logit_newton,
    propensity_scores,
    standardise,
    with_intercept,
)

__all__ = [
    "ESTIMANDS",
    "Effect",
    "JACKKNIFE_GROUPS",
    "JACKKNIFE_ROWS_PER_PARAMETER",
    "METHODS",
    "OUTCOME_MODELS",
    "SE_METHODS",
    "balance",
    "covariate_matrix",
    "crump_bound",
    "estimate_effect",
]

METHODS = ("naive", "regression", "ipw", "aipw")
SE_METHODS = ("auto", "influence", "jackknife")
# "auto" switches to the delete-group jackknife when the smaller arm has fewer than this many
# rows per model parameter: below it (mean leverage p/n in that arm above 5%) in-sample
# residuals of the arm's outcome model and the propensity fit are visibly shrunk and the
# influence-function standard error is too small. Simulation (bench/results/causal.md, 400
# worlds, 17 parameters): at ~94 treated (p/n = 0.18) the influence SE was 8-20% too small; at
# ~190 treated (p/n = 0.09) IPW-ATE retention coverage was 91.5% with the influence SE and
# 93.8% with the jackknife. First threshold 10, raised to 20 after the 400-world run.
JACKKNIFE_ROWS_PER_PARAMETER = 20
JACKKNIFE_GROUPS = 40
ESTIMANDS = ("ATE", "ATT")
OUTCOME_MODELS = ("linear", "linear_common", "logit", "gbm")

_EPS = 1e-12


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Effect:
    """Estimated effect of a binary treatment on an outcome.

    Attributes
    ----------
    estimate : float
        Difference in mean outcome, treated minus untreated, in the outcome's units.
    se, ci_lower, ci_upper, p_value : float
        Standard error, confidence interval and two-sided p-value for no effect.
        With ``se_method="influence"`` the interval uses the normal
        distribution; with ``"jackknife"`` a t distribution with ``df`` degrees
        of freedom (number of jackknife groups - 1).
    n_treated, n_control : int
        Rows used after dropping trimmed rows.
    method, estimand : str
        As requested.
    mean_treated, mean_control : float
        Estimated mean outcome under treatment and under no treatment in the
        target population (for ``naive``: the raw group means).
    ratio, ratio_ci_lower, ratio_ci_upper : float
        ``mean_treated / mean_control`` with a delta-method interval on the log
        scale (NaN when a mean is not positive). For spend this is the lift.
    weights : pandas.Series or None
        Per-row IP weights (index of the input) for ``ipw`` and ``aipw``: ATE
        ``1/e`` for treated and ``1/(1-e)`` for untreated; ATT ``1`` for treated
        and ``e/(1-e)`` for untreated; 0 for trimmed rows. None otherwise.
    propensity : pandas.Series or None
        Estimated propensity score per row (NaN where not estimated).
    n_trimmed : int
        Rows dropped because their propensity fell outside the trimming bounds.
    trim : tuple or None
        The propensity bounds used.
    se_fixed_weights : float
        For ``ipw``: sandwich standard error treating the weights as known (what a
        weighted GEE / regression with robust errors reports). NaN otherwise.
    diagnostics : dict
        Effective sample sizes, largest weight, propensity range, and, for
        flexible models, the number of cross-fitting folds.
    se_method : str
        ``"influence"`` (analytic) or ``"jackknife"`` (delete-group), as used.
    df : float
        Degrees of freedom of the interval's t reference (infinite: normal).
    n_clusters : int or None
        Number of clusters when standard errors are clustered.
    se_influence : float
        The analytic influence-function standard error (also when the
        jackknife was used, for comparison).
    """

    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    p_value: float
    n_treated: int
    n_control: int
    method: str
    estimand: str
    treatment: str
    outcome: str
    mean_treated: float
    mean_control: float
    ratio: float
    ratio_ci_lower: float
    ratio_ci_upper: float
    alpha: float = 0.05
    weights: pd.Series | None = field(default=None, repr=False)
    propensity: pd.Series | None = field(default=None, repr=False)
    n_trimmed: int = 0
    trim: tuple[float, float] | None = None
    se_fixed_weights: float = float("nan")
    propensity_model: str | None = None
    outcome_model: str | None = None
    diagnostics: dict = field(default_factory=dict, repr=False)
    se_method: str = "influence"
    df: float = float("inf")
    n_clusters: int | None = None
    se_influence: float = float("nan")

    def to_dict(self) -> dict:
        """Return the scalar results as a plain dict (no per-row arrays)."""
        keys = [
            "method",
            "estimand",
            "treatment",
            "outcome",
            "estimate",
            "se",
            "ci_lower",
            "ci_upper",
            "p_value",
            "mean_treated",
            "mean_control",
            "ratio",
            "ratio_ci_lower",
            "ratio_ci_upper",
            "n_treated",
            "n_control",
            "n_trimmed",
            "propensity_model",
            "outcome_model",
            "se_method",
            "df",
            "n_clusters",
        ]
        out = {k: getattr(self, k) for k in keys}
        out["trim_lower"] = self.trim[0] if self.trim else float("nan")
        return out


# --------------------------------------------------------------------------- checks


def crump_bound(propensity) -> float:
    """Optimal trimming bound of Crump, Hotz, Imbens & Mitnik (2009).

    Keeping the units with ``alpha <= e(x) <= 1 - alpha`` minimises the asymptotic
    variance of the (efficiently estimated) average effect among the units kept,
    under homoskedasticity (Crump et al., "Dealing with limited overlap in
    estimation of average treatment effects", Biometrika 96(1), 187-199,
    Theorem 1 and Corollary 1). With ``g = 1 / (e (1 - e))``: ``alpha = 0`` if
    ``max g <= 2 E[g]``; otherwise ``alpha = 1/2 - sqrt(1/4 - 1/gamma)`` where
    ``gamma`` solves ``gamma = 2 E[g | g <= gamma]``.

    Parameters
    ----------
    propensity : array-like
        Estimated propensity scores in (0, 1).

    Returns
    -------
    float
        The bound ``alpha`` in [0, 0.5).
    """
    e = np.clip(np.asarray(propensity, dtype=float), _EPS, 1 - _EPS)
    e = e[np.isfinite(e)]
    if e.size == 0:
        return 0.0
    g = np.sort(1.0 / (e * (1.0 - e)))
    if g[-1] <= 2.0 * g.mean():
        return 0.0
    # E[g | g <= gamma] is the running mean cm_k on [g_k, g_{k+1}); the root gamma = 2 cm_k
    # lies in the first interval with 2 cm_k < g_{k+1} (and 2 cm_k >= g_k holds there)
    cm = np.cumsum(g) / np.arange(1, g.size + 1)
    k = int(np.flatnonzero(2.0 * cm[:-1] < g[1:])[0])
    gamma = 2.0 * cm[k]
    return float(0.5 - math.sqrt(0.25 - 1.0 / gamma))


def _trim_bounds(trim) -> tuple[float, float] | str | None:
    if trim is None:
        return None
    if isinstance(trim, str):
        if trim != "crump":
            raise ParamsError(
                f"trim={trim!r}: use a number in [0, 0.5), a (low, high) pair, or 'crump' "
                "(the data-driven bound of Crump et al. 2009)."
            )
        return "crump"
    if isinstance(trim, (int, float)):
        if not 0 <= trim < 0.5:
            raise ParamsError(f"trim={trim!r}: use a number in [0, 0.5), e.g. 0.01.")
        return (float(trim), 1.0 - float(trim))
    lo, hi = trim
    if not 0 <= lo < hi <= 1:
        raise ParamsError(f"trim={trim!r}: use (low, high) with 0 <= low < high <= 1.")
    return (float(lo), float(hi))


# --------------------------------------------------------------------------- estimators
# Each returns (mu1, mu0, if1, if0): the two potential-outcome means in the target
# population and their influence functions (length n, mean zero).


def _naive(y, t):
    n1, n0 = t.sum(), (1 - t).sum()
    mu1 = float((t * y).sum() / n1)
    mu0 = float(((1 - t) * y).sum() / n0)
    n = len(y)
    if1 = t * (y - mu1) * n / n1
    if0 = (1 - t) * (y - mu0) * n / n0
    return mu1, mu0, if1, if0


def _linear_design(x: np.ndarray, model: str, interactions: np.ndarray | None):
    """Return a function t -> outcome design matrix for a linear outcome model."""
    base = with_intercept(x)
    if model == "linear":

        def make(t):
            return np.hstack([base * (1 - t)[:, None], base * t[:, None]])

        return make
    inter = standardise(interactions) if interactions is not None else None

    def make(t):
        cols = [base, t[:, None]]
        if inter is not None and inter.shape[1]:
            cols.append(inter * t[:, None])
        return np.hstack(cols)

    return make


def _ols_fit(z, y):
    gram = z.T @ z
    keep = independent_columns(gram)
    zk = z[:, keep]
    g = gram[np.ix_(keep, keep)]
    beta = np.linalg.solve(g, zk.T @ y)
    return keep, beta, g / len(y)


def _arm_predictions(y, t, x, z=None):
    """Predict E[Y | T=a, X] from separate least-squares fits per arm (no copies of the design)."""
    base = with_intercept(x) if z is None else z
    preds = []
    for a in (1, 0):
        rows = t == a
        keep, beta, _ = _ols_fit(base[rows], y[rows])
        preds.append(base[:, keep] @ beta)
    return preds[0], preds[1]


def _regression_linear(y, t, x, *, estimand, model, interactions):
    n = len(y)
    make = _linear_design(x, model, interactions)
    z = make(t)
    keep, beta, h = _ols_fit(z, y)
    resid = y - z[:, keep] @ beta
    z1 = make(np.ones(n))[:, keep]
    z0 = make(np.zeros(n))[:, keep]
    m1, m0 = z1 @ beta, z0 @ beta
    score = z[:, keep] * resid[:, None]  # per-row estimating function of beta
    hinv = np.linalg.inv(h)
    if estimand == "ATE":
        mu1, mu0 = float(m1.mean()), float(m0.mean())
        d1, d0 = z1.mean(axis=0), z0.mean(axis=0)
        if1 = (m1 - mu1) + score @ (hinv @ d1)
        if0 = (m0 - mu0) + score @ (hinv @ d0)
    else:
        p = t.mean()
        mu1 = float((t * y).sum() / t.sum())
        mu0 = float((t * m0).sum() / t.sum())
        d0 = (z0 * t[:, None]).sum(axis=0) / t.sum()
        if1 = t * (y - mu1) / p
        if0 = t * (m0 - mu0) / p + score @ (hinv @ d0)
    return mu1, mu0, if1, if0, m1, m0


def _regression_logit(y, t, x, *, estimand):
    """Separate logistic outcome models per arm, standardised (binary outcomes)."""
    n = len(y)
    base = with_intercept(x)
    m = {}
    corr = {}
    for a in (0, 1):
        rows = t == a
        beta, _ = logit_newton(base[rows], y[rows])
        pa = 1.0 / (1.0 + np.exp(-(base @ beta)))
        m[a] = pa
        # Fisher information of the arm model, per row of the full sample
        w = pa * (1 - pa) * rows
        h = (base * w[:, None]).T @ base / n
        score = base * (rows * (y - pa))[:, None]
        corr[a] = (h, score)
    if estimand == "ATE":
        out = []
        for a in (1, 0):
            mu = float(m[a].mean())
            h, score = corr[a]
            d = (base * (m[a] * (1 - m[a]))[:, None]).mean(axis=0)
            out.append((mu, (m[a] - mu) + score @ np.linalg.solve(h, d)))
        (mu1, if1), (mu0, if0) = out
    else:
        p = t.mean()
        mu1 = float((t * y).sum() / t.sum())
        if1 = t * (y - mu1) / p
        mu0 = float((t * m[0]).sum() / t.sum())
        h, score = corr[0]
        d = (base * (t * m[0] * (1 - m[0]))[:, None]).sum(axis=0) / t.sum()
        if0 = t * (m[0] - mu0) / p + score @ np.linalg.solve(h, d)
    return mu1, mu0, if1, if0, m[1], m[0]


def _ipw(y, t, e, z, *, estimand, account_for_ps: bool):
    """Hájek IPW; the influence function optionally includes the logistic PS step."""
    n = len(y)
    if estimand == "ATE":
        w1 = t / e
        w0 = (1 - t) / (1 - e)
    else:
        w1 = t.astype(float)
        w0 = (1 - t) * e / (1 - e)
    mu1 = float((w1 * y).sum() / w1.sum())
    mu0 = float((w0 * y).sum() / w0.sum())
    a1, a0 = w1.mean(), w0.mean()
    psi1 = w1 * (y - mu1)
    psi0 = w0 * (y - mu0)
    if1 = psi1 / a1
    if0 = psi0 / a0
    fixed = (if1.copy(), if0.copy())
    if account_for_ps and z is not None:
        # Stacked estimating equations: beta (logistic score z*(t-e)), then mu's.
        info = (z * (e * (1 - e))[:, None]).T @ z / n
        if_beta = np.linalg.solve(info, (z * (t - e)[:, None]).T).T  # n x k
        if estimand == "ATE":
            # d/d beta of 1/e = -(1-e)/e * z ; of 1/(1-e) = e/(1-e) * z
            g1 = (z * (psi1 * -(1 - e))[:, None]).mean(axis=0)
            g0 = (z * (psi0 * e)[:, None]).mean(axis=0)
        else:
            # treated weight 1 has no beta-derivative; d/d beta of e/(1-e) = e/(1-e) * z
            g1 = np.zeros(z.shape[1])
            g0 = (z * psi0[:, None]).mean(axis=0)
        if1 = (psi1 + if_beta @ g1) / a1
        if0 = (psi0 + if_beta @ g0) / a0
    return mu1, mu0, if1, if0, w1 + w0, fixed


def _aipw(y, t, e, m1, m0, *, estimand):
    """Augmented IPW with normalised residual weights; returns influence functions."""
    if estimand == "ATE":
        w1 = t / e
        w0 = (1 - t) / (1 - e)
        a1, a0 = w1.mean(), w0.mean()
        r1 = w1 * (y - m1) / a1
        r0 = w0 * (y - m0) / a0
        mu1 = float(np.mean(m1 + r1))
        mu0 = float(np.mean(m0 + r0))
        if1 = m1 + r1 - mu1
        if0 = m0 + r0 - mu0
        weights = w1 + w0
    else:
        p = t.mean()
        odds = e / (1 - e)
        w0 = (1 - t) * odds
        mu1 = float((t * y).sum() / t.sum())
        # mu0 = E[Y(0) | T=1] = mean_T(m0) + weighted mean of untreated residuals
        b = float((t * m0).sum() / t.sum())
        c = float((w0 * (y - m0)).sum() / w0.sum())
        mu0 = b + c
        if1 = t * (y - mu1) / p
        if0 = t * (m0 - b) / p + w0 * (y - m0 - c) / w0.mean()
        weights = t + w0
    return mu1, mu0, if1, if0, weights


def _crossfit_outcome(y, t, x, *, model, seed, folds):
    """Out-of-fold predictions of E[Y | T=a, X] for a = 1, 0."""
    n = len(y)
    m1, m0 = np.empty(n), np.empty(n)
    fold = assign_folds(n, folds, seed + 1000)
    for k in range(folds):
        tr, te = fold != k, fold == k
        for a, m in ((1, m1), (0, m0)):
            rows = tr & (t == a)
            if model == "gbm":
                with limit_threads(n):
                    reg = gbm_regressor(seed + k).fit(x[rows], y[rows])
                    m[te] = reg.predict(x[te])
            else:
                z = with_intercept(x)
                if model == "logit":
                    beta, _ = logit_newton(z[rows], y[rows])
                    m[te] = 1 / (1 + np.exp(-(z[te] @ beta)))
                else:
                    keep, beta, _ = _ols_fit(z[rows], y[rows])
                    m[te] = z[te][:, keep] @ beta
    return m1, m0


# --------------------------------------------------------------------------- API


def estimate_effect(
    df: pd.DataFrame,
    *,
    treatment: str,
    outcome: str,
    covariates: Sequence[str],
    method: str = "aipw",
    estimand: str = "ATE",
    propensity_model: str = "logit",
    outcome_model: str = "linear",
    trim: float | tuple[float, float] | str | None = None,
    seed: int = 0,
    alpha: float = 0.05,
    interactions: Sequence[str] | None = None,
    folds: int = 5,
    cluster: str | None = None,
    se_method: str = "auto",
    jackknife_groups: int = JACKKNIFE_GROUPS,
) -> Effect:
    """Estimate the average effect of a binary treatment on an outcome.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per unit (e.g. customer at a landmark). Not modified.
    treatment : str
        Binary treatment column (0/1 or bool).
    outcome : str
        Numeric outcome column (binary outcomes as 0/1). Units carry through to
        ``Effect.estimate`` (e.g. currency per customer, or a probability).
    covariates : sequence of str
        Pre-treatment confounders: numeric, boolean or categorical (one-hot
        encoded, first level as reference). Transformations such as squares must
        be added as columns beforehand.
    method : {"naive", "regression", "ipw", "aipw"}
        Estimator; see the module docstring.
    estimand : {"ATE", "ATT"}
        Average effect in everyone, or in the treated.
    propensity_model : {"logit", "gbm"}
        Unpenalised logistic regression (textbook), or gradient boosting with
        out-of-fold (cross-fitted) predictions.
    outcome_model : {"linear", "linear_common", "logit", "gbm"}
        ``linear``: separate least-squares fits per arm (fully interacted).
        ``linear_common``: one least-squares fit with a treatment indicator, plus
        treatment-by-covariate terms for the columns in ``interactions`` (the
        specification of Hernán & Robins, Program 13.2). ``logit``: separate
        logistic fits per arm (binary outcomes). ``gbm``: gradient boosting,
        cross-fitted, ``aipw`` only.
    trim : float, (float, float) or "crump", optional
        Drop rows whose estimated propensity lies outside ``[trim, 1 - trim]``
        (or ``[low, high]``), then refit on the remaining rows. ``"crump"``: the
        bound is chosen from the data by the variance-minimising rule of Crump
        et al. (2009), see :func:`crump_bound` (no trimming when overlap is good).
        The estimand becomes the effect in the population with overlap; the
        number of dropped rows is reported in ``Effect.n_trimmed`` and the bounds
        used in ``Effect.trim``.
    seed : int
        Seed for cross-fitting folds and boosting (unused by the parametric models).
    alpha : float
        1 - confidence level of the interval.
    interactions : sequence of str, optional
        Covariates interacted with treatment in ``outcome_model="linear_common"``.
    folds : int
        Cross-fitting folds for flexible models.
    cluster : str, optional
        Column identifying clusters of rows that are not independent (e.g. the
        customer in pooled sequential trials, where one customer is a control
        in many monthly trials). Influence-function contributions are summed
        within clusters (with the small-sample factor G / (G - 1)); jackknife
        groups never split a cluster.
    se_method : {"auto", "influence", "jackknife"}
        ``influence``: the analytic influence-function standard error with a
        normal interval (the textbook large-sample variant). ``jackknife``:
        delete-group jackknife over ``jackknife_groups`` random groups of rows
        (or clusters), refitting every model each time, with a t interval on
        ``groups - 1`` degrees of freedom; it captures the small-sample
        shrinkage of in-sample residuals and the propensity fit that the
        influence function misses. ``auto`` (default): the jackknife when the
        smaller arm has fewer than 20 rows per model parameter and the models
        are parametric, otherwise the influence function (large data and
        cross-fitted boosting stay fast).
    jackknife_groups : int
        Number of jackknife groups (assigned at random with ``seed``).

    Returns
    -------
    Effect
        Estimate, standard error, interval, p-value, group sizes, the two
        potential-outcome means and their ratio, weights and propensities.

    Raises
    ------
    ParamsError
        For unknown options.
    DataError
        For missing columns or values, a non-binary treatment, or an empty arm.
    """
    with limit_threads(len(df), user_api=None):
        return _estimate(
            df,
            treatment=treatment,
            outcome=outcome,
            covariates=covariates,
            method=method,
            estimand=estimand,
            propensity_model=propensity_model,
            outcome_model=outcome_model,
            trim=trim,
            seed=seed,
            alpha=alpha,
            interactions=interactions,
            folds=folds,
            cluster=cluster,
            se_method=se_method,
            jackknife_groups=jackknife_groups,
        )


def _estimate(
    df,
    *,
    treatment,
    outcome,
    covariates,
    method,
    estimand,
    propensity_model,
    outcome_model,
    trim,
    seed,
    alpha,
    interactions,
    folds,
    cluster=None,
    se_method="influence",
    jackknife_groups=JACKKNIFE_GROUPS,
    arrays=None,
):
    # ``arrays``: (t, y, x, inter) already validated and encoded (jackknife replicates)
    if se_method not in SE_METHODS:
        raise ParamsError(f"Unknown se_method {se_method!r}; use one of {SE_METHODS}.")
    if int(jackknife_groups) < 3:
        raise ParamsError(f"jackknife_groups={jackknife_groups!r}: use at least 3 (e.g. 40).")
    if cluster is not None and cluster not in df.columns:
        raise DataError(
            f"Cluster column {cluster!r} not found in the analysis frame ({len(df):,} rows).",
            [Problem("analysis frame", cluster, "missing_column", "column not present")],
        )
    if method not in METHODS:
        raise ParamsError(f"Unknown method {method!r}; use one of {METHODS}.")
    if estimand not in ESTIMANDS:
        raise ParamsError(f"Unknown estimand {estimand!r}; use one of {ESTIMANDS}.")
    if propensity_model not in PROPENSITY_MODELS:
        raise ParamsError(
            f"Unknown propensity_model {propensity_model!r}; use one of {PROPENSITY_MODELS}."
        )
    if outcome_model not in OUTCOME_MODELS:
        raise ParamsError(f"Unknown outcome_model {outcome_model!r}; use one of {OUTCOME_MODELS}.")
    if method == "regression" and outcome_model == "gbm":
        raise ParamsError(
            "outcome_model='gbm' has no valid analytic standard error for method='regression'; "
            "use method='aipw' (cross-fitted, doubly robust) instead."
        )
    if outcome_model == "linear_common" and method == "aipw":
        raise ParamsError("outcome_model='linear_common' is for method='regression'; use 'linear'.")
    bounds = _trim_bounds(trim)

    if arrays is None:
        t = binary_treatment(df, treatment)
        y = numeric_outcome(df, outcome)
        xdf = (
            covariate_matrix(df, covariates) if method != "naive" else pd.DataFrame(index=df.index)
        )
        x = xdf.to_numpy(dtype=float)
        inter = None
        if interactions:
            inter = covariate_matrix(df, list(interactions)).to_numpy(dtype=float)
    else:
        t, y, x, inter = arrays
    full_arrays = (t, y, x, inter)
    _check_arms(df, treatment, t)

    diagnostics: dict = {}
    keep = np.ones(len(t), dtype=bool)
    e_full = np.full(len(t), np.nan)
    z_full = None
    needs_ps = method in ("ipw", "aipw") or bounds is not None
    if needs_ps:
        # one standardised design with intercept, shared by the propensity and outcome models
        z_full = with_intercept(x) if propensity_model == "logit" else None
        e_full = propensity_scores(x, t, model=propensity_model, seed=seed, folds=folds, z=z_full)
        if bounds == "crump":
            a = crump_bound(e_full)
            bounds = (a, 1.0 - a)
            diagnostics["crump_bound"] = a
        if bounds is not None:
            keep = (e_full >= bounds[0]) & (e_full <= bounds[1])
            if keep.sum() < len(keep):
                t, y, x = t[keep], y[keep], x[keep]
                inter = inter[keep] if inter is not None else None
                _check_arms(df.loc[keep], treatment, t, trimmed=True)
                z_full = None  # trimmed rows: rebuild the design on the rest
                e_full[keep] = propensity_scores(
                    x, t, model=propensity_model, seed=seed, folds=folds
                )
                e_full[~keep] = np.nan
    n_trimmed = int((~keep).sum())
    e = np.clip(e_full[keep], _EPS, 1 - _EPS) if needs_ps else None

    weights = None
    se_fixed = float("nan")
    if method == "naive":
        mu1, mu0, if1, if0 = _naive(y, t)
    elif method == "regression":
        if outcome_model == "logit":
            mu1, mu0, if1, if0, _, _ = _regression_logit(y, t, x, estimand=estimand)
        else:
            mu1, mu0, if1, if0, _, _ = _regression_linear(
                y, t, x, estimand=estimand, model=outcome_model, interactions=inter
            )
    elif method == "ipw":
        z = (
            (z_full if z_full is not None else with_intercept(x))
            if propensity_model == "logit"
            else None
        )
        mu1, mu0, if1, if0, w, (f1, f0) = _ipw(
            y, t, e, z, estimand=estimand, account_for_ps=propensity_model == "logit"
        )
        weights = w
    else:
        crossfit = propensity_model == "gbm" or outcome_model == "gbm"
        if crossfit:
            m1, m0 = _crossfit_outcome(y, t, x, model=outcome_model, seed=seed, folds=folds)
            diagnostics["crossfit_folds"] = folds
        elif outcome_model == "logit":
            *_, m1, m0 = _regression_logit(y, t, x, estimand="ATE")
        else:
            m1, m0 = _arm_predictions(y, t, x, z=z_full)
        mu1, mu0, if1, if0, weights = _aipw(y, t, e, m1, m0, estimand=estimand)

    n = len(y)
    est = mu1 - mu0
    infl = if1 - if0
    codes, n_clusters = None, None
    if cluster is not None:
        codes, uniq = pd.factorize(df[cluster].to_numpy()[keep], use_na_sentinel=False)
        n_clusters = len(uniq)

    def if_se(v: np.ndarray) -> float:
        if codes is None:
            return float(np.sqrt(np.mean(v**2) / n))
        g = np.bincount(codes, weights=v, minlength=n_clusters)
        adj = n_clusters / (n_clusters - 1) if n_clusters > 1 else 1.0
        return float(np.sqrt(adj * np.sum(g**2)) / n)

    se = if_se(infl)
    se_influence = se
    if method == "ipw":
        se_fixed = if_se(f1 - f0)
    ratio, rlo, rhi = float("nan"), float("nan"), float("nan")
    lse = float("nan")
    if mu1 > 0 and mu0 > 0:
        ratio = mu1 / mu0
        lse = if_se(if1 / mu1 - if0 / mu0)

    n_params = x.shape[1] + 1 if method != "naive" else 1
    n_small = min(int(t.sum()), int(n - t.sum()))
    parametric = propensity_model != "gbm" and outcome_model != "gbm"
    use_jk = se_method == "jackknife" or (
        se_method == "auto"
        and parametric  # cross-fitted flexible models: refits are costly and add tuning noise
        and n_small < JACKKNIFE_ROWS_PER_PARAMETER * n_params
    )
    dof = float("inf")
    if use_jk:
        se, lse, dof = _jackknife(
            df,  # every replicate trims (if asked) on its own propensity fit
            full_arrays,
            cluster=cluster,
            groups=int(jackknife_groups),
            seed=seed,
            kwargs=dict(
                treatment=treatment,
                outcome=outcome,
                covariates=covariates,
                method=method,
                estimand=estimand,
                propensity_model=propensity_model,
                outcome_model=outcome_model,
                trim=trim,
                seed=seed,
                alpha=alpha,
                interactions=interactions,
                folds=folds,
            ),
        )
    zq = stats.norm.ppf(1 - alpha / 2) if math.isinf(dof) else stats.t.ppf(1 - alpha / 2, dof)
    if se > 0:
        tail = stats.norm.sf(abs(est) / se) if math.isinf(dof) else stats.t.sf(abs(est) / se, dof)
        p_value = float(2 * tail)
    else:
        p_value = float("nan")
    if math.isfinite(lse):
        with np.errstate(over="ignore"):
            rlo, rhi = float(ratio * np.exp(-zq * lse)), float(ratio * np.exp(zq * lse))

    weights_s = None
    ps_s = None
    if needs_ps:
        ps_s = pd.Series(e_full, index=df.index, name="propensity")
        diagnostics["propensity_min"] = float(np.min(e))
        diagnostics["propensity_max"] = float(np.max(e))
    if weights is not None:
        full = np.zeros(len(keep))
        full[keep] = weights
        weights_s = pd.Series(full, index=df.index, name="weight")
        for label, rows in (("treated", t == 1), ("control", t == 0)):
            wr = weights[rows]
            diagnostics[f"ess_{label}"] = float(wr.sum() ** 2 / np.sum(wr**2))
            diagnostics[f"max_weight_{label}"] = float(wr.max())

    return Effect(
        estimate=float(est),
        se=se,
        ci_lower=float(est - zq * se),
        ci_upper=float(est + zq * se),
        p_value=p_value,
        n_treated=int(t.sum()),
        n_control=int(n - t.sum()),
        method=method,
        estimand=estimand,
        treatment=treatment,
        outcome=outcome,
        mean_treated=float(mu1),
        mean_control=float(mu0),
        ratio=ratio,
        ratio_ci_lower=rlo,
        ratio_ci_upper=rhi,
        alpha=alpha,
        weights=weights_s,
        propensity=ps_s,
        n_trimmed=n_trimmed,
        trim=bounds,
        se_fixed_weights=se_fixed,
        propensity_model=propensity_model if needs_ps else None,
        outcome_model=outcome_model if method in ("regression", "aipw") else None,
        diagnostics=diagnostics,
        se_method="jackknife" if use_jk else "influence",
        df=dof,
        n_clusters=n_clusters,
        se_influence=se_influence,
    )


def _jackknife(df, arrays, *, cluster, groups, seed, kwargs):
    """Delete-group jackknife SEs of the estimate and of log(ratio); returns (se, lse, df).

    Rows (or whole clusters) are assigned to ``groups`` random groups; each replicate
    drops one group and refits every model. Variance: (G - 1) / G * sum (theta_g - mean)^2.
    """
    rng = np.random.default_rng([int(seed), 7919])
    if cluster is not None:
        codes, uniq = pd.factorize(df[cluster].to_numpy(), use_na_sentinel=False)
        n_units = len(uniq)
    else:
        codes, n_units = np.arange(len(df)), len(df)
    g = min(groups, n_units)
    unit_group = rng.permutation(np.arange(n_units) % g)
    row_group = unit_group[codes]
    est, lrat = [], []
    with warnings.catch_warnings():
        # a replicate's logistic fit may warn where the full fit did not; the full fit warns
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in range(g):
            m = row_group != k
            sub = pd.DataFrame(index=pd.RangeIndex(int(m.sum())))
            sub_arrays = tuple(None if a is None else a[m] for a in arrays)
            eff = _estimate(sub, **kwargs, se_method="influence", arrays=sub_arrays)
            est.append(eff.estimate)
            lrat.append(math.log(eff.ratio) if eff.ratio > 0 else float("nan"))
    est, lrat = np.asarray(est), np.asarray(lrat)
    se = float(np.sqrt((g - 1) / g * np.sum((est - est.mean()) ** 2)))
    lse = float("nan")
    if np.isfinite(lrat).all():
        lse = float(np.sqrt((g - 1) / g * np.sum((lrat - lrat.mean()) ** 2)))
    return se, lse, float(g - 1)


def _check_arms(df, treatment, t, trimmed=False):
    n1 = int(t.sum())
    n0 = int(len(t) - n1)
    if n1 < 2 or n0 < 2:
        when = " after trimming" if trimmed else ""
        raise DataError(
            f"Need at least two treated and two untreated rows{when}.",
            [
                Problem(
                    "analysis frame",
                    treatment,
                    "empty_arm",
                    f"{n1} treated, {n0} untreated",
                    n_rows=len(t),
                    fix="check the treatment definition, or loosen trimming",
                )
            ],
        )


def balance(
    df: pd.DataFrame,
    *,
    treatment: str,
    covariates: Sequence[str],
    weights: pd.Series | np.ndarray | str | None = None,
) -> pd.DataFrame:
    """Compare covariate means between treated and untreated, before and after weighting.

    The standardised mean difference (SMD) divides the difference in means by
    the pooled standard deviation ``sqrt((var_treated + var_control) / 2)`` of
    the *unweighted* sample, so that before and after values share a
    denominator (Austin 2009). Categoricals are one-hot encoded, one row per
    non-reference level. |SMD| below 0.1 is the usual threshold for balance.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per unit.
    treatment : str
        Binary treatment column.
    covariates : sequence of str
        Covariates to compare.
    weights : pandas.Series, array, column name, or None
        Balancing weights per row (e.g. ``Effect.weights``); rows with weight 0
        (trimmed) are ignored in the weighted columns.

    Returns
    -------
    pandas.DataFrame
        Indexed by covariate: ``mean_treated``, ``mean_control``, ``smd``, and
        with weights also ``mean_treated_weighted``, ``mean_control_weighted``,
        ``smd_weighted``.
    """
    t = binary_treatment(df, treatment).astype(bool)
    x = covariate_matrix(df, covariates)
    xt, xc = x[t], x[~t]
    m1, m0 = xt.mean(), xc.mean()
    sd = np.sqrt((xt.var(ddof=1) + xc.var(ddof=1)) / 2)
    sd = sd.where(sd > 0)
    out = pd.DataFrame({"mean_treated": m1, "mean_control": m0, "smd": (m1 - m0) / sd})
    if weights is not None:
        if isinstance(weights, str):
            w = df[weights].to_numpy(dtype=float)
        elif isinstance(weights, pd.Series):
            w = weights.reindex(df.index).to_numpy(dtype=float)
        else:
            w = np.asarray(weights, dtype=float)
        if len(w) != len(df) or np.isnan(w).any() or (w < 0).any():
            raise DataError(
                "Balance weights must be one non-negative number per row.",
                [Problem("analysis frame", None, "bad_weights", "weights length or values")],
            )
        wt, wc = w[t], w[~t]
        mw1 = (xt.to_numpy() * wt[:, None]).sum(axis=0) / wt.sum()
        mw0 = (xc.to_numpy() * wc[:, None]).sum(axis=0) / wc.sum()
        out["mean_treated_weighted"] = mw1
        out["mean_control_weighted"] = mw0
        out["smd_weighted"] = (mw1 - mw0) / sd.to_numpy()
    out.index.name = "covariate"
    return out
