"""The logistic regression and propensity-score fits, with thread control.

:func:`logit_newton` is the one logistic fit of the package (Newton-Raphson with step
halving on a standardised design from :func:`with_intercept`, optionally with an offset), and
:func:`logit_covariance` its model-based covariance: propensity scores, the per-arm outcome
models of :mod:`analysis.stats.effects`, the weighted survival curves' propensities and the
calibration slope of :mod:`analysis.stats.classification` all use them. (Penalised or
flexible classifiers used as learners, e.g. scikit-learn's in the churn-risk model, are
separate.) :func:`fit_propensity` and
:func:`propensity_scores` estimate treatment probabilities with it or with gradient
boosting (:func:`gbm_classifier`, out-of-fold over :func:`assign_folds`).
:func:`limit_threads` runs small problems single-threaded.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.errors import ParamsError
from analysis.stats.design import binary_treatment, covariate_matrix

__all__ = [
    "GBM_OPTIONS",
    "PROPENSITY_MODELS",
    "SMALL_PROBLEM_ROWS",
    "assign_folds",
    "fit_propensity",
    "gbm_classifier",
    "gbm_regressor",
    "independent_columns",
    "limit_threads",
    "logit_covariance",
    "logit_newton",
    "propensity_scores",
    "standardise",
    "with_intercept",
]

# below this many rows numerical work runs single-threaded: on the shared 2-core machine the
# loyalty sequential-trial analysis (395,000 rows, 20 fits) took 122 s with multi-threaded BLAS
# and 17 s single-threaded (bench/results/causal.md)
SMALL_PROBLEM_ROWS = 1_000_000
PROPENSITY_MODELS = ("logit", "gbm")


def standardise(x: np.ndarray) -> np.ndarray:
    """Centre and scale the non-constant columns of a design (keeps the column space, helps Newton).

    Each column with a positive standard deviation becomes ``(x - mean) / sd``
    (population sd, ``ddof=0``); constant columns become all zeros, so
    :func:`independent_columns` drops them.

    Parameters
    ----------
    x : numpy.ndarray
        Float covariates, ``(n, k)``, without an intercept. ``k`` may be 0.

    Returns
    -------
    numpy.ndarray
        A new ``(n, k)`` array (``x`` itself when ``k`` is 0).
    """
    if x.shape[1] == 0:
        return x
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    keep = sd > 0
    out = np.empty_like(x)
    out[:, keep] = (x[:, keep] - mu[keep]) / sd[keep]
    out[:, ~keep] = 0.0
    return out


def independent_columns(gram: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Return the indices of a maximal set of linearly independent columns, in order.

    Greedy Gram-Schmidt on the Gram matrix: column ``j`` is kept when the part
    of it not explained by the columns kept before it has a squared norm above
    ``tol`` times its own; columns of zero norm are never kept. Earlier columns
    win, so put the ones to keep (e.g. the intercept) first.

    Parameters
    ----------
    gram : numpy.ndarray
        Gram matrix ``z' z`` of the design ``z``, ``(k, k)``.
    tol : float
        Relative residual squared norm below which a column counts as dependent.

    Returns
    -------
    numpy.ndarray
        Increasing integer indices of the kept columns (possibly empty).
    """
    keep: list[int] = []
    for j in range(gram.shape[0]):
        gjj = gram[j, j]
        if gjj <= 0:
            continue
        if keep:
            gs = gram[np.ix_(keep, keep)]
            gsj = gram[keep, j]
            resid = gjj - gsj @ np.linalg.solve(gs, gsj)
        else:
            resid = gjj
        if resid > tol * gjj:
            keep.append(j)
    return np.asarray(keep, dtype=int)


def with_intercept(x: np.ndarray) -> np.ndarray:
    """Build a full-rank logistic design: a column of ones, then standardised covariates.

    Covariates pass through :func:`standardise`; constant columns and columns
    linearly dependent on earlier ones (:func:`independent_columns`) are
    dropped, so the result has full column rank as :func:`logit_newton` needs.

    Parameters
    ----------
    x : numpy.ndarray
        Float covariates, ``(n, k)``, without an intercept (``k`` may be 0).

    Returns
    -------
    numpy.ndarray
        Design ``(n, 1 + m)``, ``m <= k``, with the intercept in the first column.
    """
    z = np.column_stack([np.ones(x.shape[0]), standardise(x)])
    cols = independent_columns(z.T @ z)
    return z[:, cols]


def logit_newton(
    z: np.ndarray,
    y: np.ndarray,
    *,
    offset: np.ndarray | None = None,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit an unpenalised logistic regression by Newton-Raphson with step halving.

    Maximises ``sum y*eta - log(1 + exp(eta))`` with ``eta = offset + z @ beta``;
    each step is halved until the log-likelihood does not fall. Warns
    (RuntimeWarning) when it has not converged after ``max_iter`` steps, which
    is what (quasi-)separation looks like.

    Parameters
    ----------
    z : numpy.ndarray
        Design, ``(n, k)``: an intercept in the first column (its starting
        value is the logit of the mean outcome), no linearly dependent
        columns (see :func:`with_intercept`).
    y : numpy.ndarray
        0/1 outcome, ``(n,)``.
    offset : numpy.ndarray, optional
        Known part of the linear predictor, ``(n,)`` (coefficient fixed at 1).
    max_iter : int
        Newton steps at most.
    tol : float
        Relative change of the log-likelihood that counts as converged (with
        every coefficient moving by less than 1e-6).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The coefficients ``beta`` and the fitted probabilities.
    """
    n, k = z.shape
    beta = np.zeros(k)
    ybar = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    beta[0] = math.log(ybar / (1 - ybar))

    def loglik(eta: np.ndarray) -> float:
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)))

    def predictor(b: np.ndarray) -> np.ndarray:
        return z @ b if offset is None else offset + z @ b

    eta = predictor(beta)
    ll = loglik(eta)
    converged = False
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-eta))
        w = p * (1.0 - p)
        grad = z.T @ (y - p)
        hess = (z * w[:, None]).T @ z
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        t = 1.0
        while True:
            new_beta = beta + t * step
            new_eta = predictor(new_beta)
            new_ll = loglik(new_eta)
            if new_ll >= ll - 1e-12 * abs(ll) or t < 1e-8:
                break
            t /= 2
        beta, eta = new_beta, new_eta
        change = new_ll - ll
        ll = new_ll
        if abs(change) <= tol * (abs(ll) + 1.0) and float(np.max(np.abs(t * step))) < 1e-6:
            converged = True
            break
    if not converged:
        warnings.warn(
            "Logistic regression did not converge; the propensity (or outcome) model may "
            "separate the groups perfectly. Check overlap and consider trimming.",
            RuntimeWarning,
            stacklevel=3,
        )
    p = 1.0 / (1.0 + np.exp(-eta))
    return beta, p


def logit_covariance(z: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Model-based covariance of logistic coefficients: the inverse Fisher information.

    Parameters
    ----------
    z : numpy.ndarray
        The design the coefficients were fitted on, ``(n, k)``.
    p : numpy.ndarray
        Fitted probabilities (from :func:`logit_newton`), ``(n,)``.

    Returns
    -------
    numpy.ndarray
        ``(z' diag(p (1 - p)) z)^-1``, ``(k, k)``; Wald intervals are
        ``beta +- z_(1-alpha/2) * sqrt(diag)``.
    """
    return np.linalg.inv((z * (p * (1.0 - p))[:, None]).T @ z)


# Shallow trees with early stopping: flexible enough for interactions and
# thresholds, fast, and less prone to the near-0/1 propensities deep trees produce.
GBM_OPTIONS = dict(
    max_iter=300,
    learning_rate=0.1,
    max_depth=3,
    min_samples_leaf=50,
    early_stopping=True,
    n_iter_no_change=10,
)


def gbm_classifier(seed: int):
    """Create an unfitted gradient-boosting classifier with :data:`GBM_OPTIONS`.

    Parameters
    ----------
    seed : int
        ``random_state`` of the model (its early-stopping validation split).

    Returns
    -------
    sklearn.ensemble.HistGradientBoostingClassifier
        Shallow trees with early stopping; call ``fit`` then ``predict_proba``.
    """

    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**GBM_OPTIONS, random_state=seed)


def gbm_regressor(seed: int):
    """Create an unfitted gradient-boosting regressor with :data:`GBM_OPTIONS`.

    Parameters
    ----------
    seed : int
        ``random_state`` of the model (its early-stopping validation split).

    Returns
    -------
    sklearn.ensemble.HistGradientBoostingRegressor
        Shallow trees with early stopping (squared-error loss); call ``fit`` then ``predict``.
    """

    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(**GBM_OPTIONS, random_state=seed)


def limit_threads(n: int, user_api: str | None = "openmp"):
    """Limit BLAS/OpenMP to one thread for problems below :data:`SMALL_PROBLEM_ROWS` rows.

    For a few thousand rows thread start-up dominates, and on a busy machine
    multi-threaded BLAS/OpenMP can be 50x slower than a single thread. Use the
    result in a ``with`` statement: ``threadpool_limits`` applies the limit as
    soon as it is created and restores the previous limits on exit.

    Parameters
    ----------
    n : int
        Rows of the problem; at or above :data:`SMALL_PROBLEM_ROWS` nothing is limited.
    user_api : {"openmp", "blas"} or None
        Thread pools to limit (``threadpoolctl``'s ``user_api``); None limits all.

    Returns
    -------
    contextlib.AbstractContextManager
        ``threadpoolctl.threadpool_limits(1, user_api=user_api)`` for small
        problems, else a ``contextlib.nullcontext()``.
    """
    from contextlib import nullcontext

    if n >= SMALL_PROBLEM_ROWS:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api=user_api)


def assign_folds(n: int, k: int, seed: int) -> np.ndarray:
    """Assign ``n`` rows at random to ``k`` folds of (almost) equal size, seeded.

    Parameters
    ----------
    n : int
        Number of rows.
    k : int
        Number of folds (positive).
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same folds.

    Returns
    -------
    numpy.ndarray
        Fold label ``0 .. k-1`` per row, ``(n,)``: a random permutation of
        ``arange(n) % k``, so fold sizes differ by at most one.
    """
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(n) % k)


def fit_propensity(
    df: pd.DataFrame,
    *,
    treatment: str,
    covariates: Sequence[str],
    model: str = "logit",
    seed: int = 0,
    folds: int = 5,
) -> pd.Series:
    """Estimate the probability of treatment given covariates.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per unit.
    treatment : str
        Binary (0/1 or bool) treatment column.
    covariates : sequence of str
        Covariates; categoricals are one-hot encoded.
    model : {"logit", "gbm"}
        Unpenalised logistic regression, or gradient boosting (out-of-fold
        predictions over ``folds`` folds).
    seed : int
        Seed for fold assignment and boosting.
    folds : int
        Cross-fitting folds for ``gbm``.

    Returns
    -------
    pandas.Series
        Propensity per row, same index as ``df``.
    """
    t = binary_treatment(df, treatment)
    x = covariate_matrix(df, covariates).to_numpy()
    with limit_threads(len(df), user_api=None):
        e = propensity_scores(x, t, model=model, seed=seed, folds=folds)
    return pd.Series(e, index=df.index, name="propensity")


def propensity_scores(x, t, *, model, seed, folds, z=None):
    """Estimate propensity scores from a covariate array (no intercept) and a 0/1 treatment.

    ``model="logit"``: :func:`logit_newton` on ``z`` (the design with intercept, built
    from ``x`` when None); fitted probabilities are not clipped, and a fit that
    does not converge (separation) warns. ``model="gbm"``: out-of-fold gradient
    boosting (:func:`gbm_classifier`) over ``folds`` folds from :func:`assign_folds`,
    each row predicted by the model fitted without its fold, clipped to
    [1e-6, 1 - 1e-6]. See :func:`fit_propensity` for the DataFrame API.

    Parameters
    ----------
    x : numpy.ndarray
        Covariates, ``(n, k)``, without an intercept (used as they are by ``gbm``).
    t : numpy.ndarray
        0/1 treatment, ``(n,)``.
    model : {"logit", "gbm"}
        Logistic regression or gradient boosting.
    seed : int
        Seed of the fold assignment; fold ``j``'s booster gets ``seed + j``.
        Not used by ``logit``.
    folds : int
        Cross-fitting folds for ``gbm``. Not used by ``logit``.
    z : numpy.ndarray, optional
        Logistic design with intercept, ``(n, m)`` (e.g. from :func:`with_intercept`),
        to reuse one already built; ignored by ``gbm``.

    Returns
    -------
    numpy.ndarray
        Estimated probability of treatment per row, ``(n,)``.

    Raises
    ------
    analysis.errors.ParamsError
        If ``model`` is not one of :data:`PROPENSITY_MODELS`.
    """
    if model == "logit":
        z = with_intercept(x) if z is None else z
        _, e = logit_newton(z, t)
        return e
    if model == "gbm":
        e = np.empty(len(t))
        fold = assign_folds(len(t), folds, seed)
        with limit_threads(len(t)):
            for k in range(folds):
                tr, te = fold != k, fold == k
                clf = gbm_classifier(seed + k).fit(x[tr], t[tr])
                e[te] = clf.predict_proba(x[te])[:, 1]
        return np.clip(e, 1e-6, 1 - 1e-6)
    raise ParamsError(f"Unknown propensity_model {model!r}; use one of {PROPENSITY_MODELS}.")
