"""Two-way fixed-effects least squares from sufficient statistics (no row ever in memory).

The regression ``y[r] = x[r] @ b + a[first(r)] + g[second(r)] + e[r]``, clustered by
the first effect (customers), with the second effect (periods) having few levels, is
exact on a handful of sums that an engine computes in a few group-bys
(:mod:`analysis.data.fe_engine` builds them):

* per row, ``y`` and ``x`` with their first-effect means removed (the "within" values
  ``y..`` and ``x..``), summed as cross-products: ``x..'x..``, ``x..'y..``, ``y..'y..``;
* per level of the second effect: rows ``N_t`` and the sums ``B = D'x..``, ``b = D'y..``;
* the small matrix ``C' diag(1/n) C`` (``C`` the first-by-second count matrix), from
  each customer's set of periods (:func:`pattern_cross`).

Frisch-Waugh-Lovell with the first effect eliminated exactly leaves the small system
``S = diag(N) - C' diag(1/n) C`` for the period effects: ``G = S^+ B`` and
``g = S^+ b``, and then ``X~'X~ = x..'x.. - B'G``, ``X~'y~ = x..'y.. - B'g`` (``X~`` the
two-way residuals), so the coefficients need no second pass over the rows. Only the
cluster-robust meat does (the per-cluster scores of the residuals):
:func:`two_way_result` takes it from the caller. This is the computation of
:class:`analysis.stats.fixed_effects.TwoWayFE` written on sums; the results equal
:func:`analysis.stats.fixed_effects.fit_fe` (tests/test_fe_engine.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import AnalysisError
from analysis.stats.fixed_effects import _RCOND, FEResult, collinear_regressors, too_few_rows

__all__ = [
    "TwoWaySolution",
    "TwoWaySums",
    "pattern_cross",
    "solve_two_way",
    "two_way_result",
]


@dataclass(frozen=True)
class TwoWaySums:
    """Sufficient statistics of a customer + period fixed-effects regression.

    Attributes
    ----------
    n_obs, n_customers : int
        Rows and customers of the estimation sample (singletons dropped).
    outcome_sum : float
        Sum of the outcome over those rows (its mean is reported).
    period_rows : numpy.ndarray
        ``N_t``, rows per period, shape ``(T,)``.
    period_y, period_x : numpy.ndarray
        Per-period sums of the within-customer deviations of the outcome ``(T,)``
        and of each regressor ``(T, k)``.
    yy, xy, xx : float, numpy.ndarray, numpy.ndarray
        Cross-products of the within-customer deviations: ``y..'y..``, ``x..'y..``
        ``(k,)`` and ``x..'x..`` ``(k, k)``.
    xx_total : numpy.ndarray
        Sum of squares of each regressor about its mean ``(k,)``: the scale against
        which a regressor absorbed by the effects is recognised.
    cross : numpy.ndarray
        ``C' diag(1/n) C`` over the periods, ``(T, T)`` (:func:`pattern_cross`).
    singletons_dropped : int
        Rows dropped because their customer or period had one row.
    """

    n_obs: int
    n_customers: int
    outcome_sum: float
    period_rows: np.ndarray
    period_y: np.ndarray
    period_x: np.ndarray
    yy: float
    xy: np.ndarray
    xx: np.ndarray
    xx_total: np.ndarray
    cross: np.ndarray
    singletons_dropped: int


@dataclass(frozen=True)
class TwoWaySolution:
    """Coefficients of :func:`solve_two_way` and what the residual pass needs.

    Attributes
    ----------
    beta : numpy.ndarray
        Coefficients ``(k,)``.
    gamma_x, gamma_y : numpy.ndarray
        Period effects of the within-customer regressors ``(T, k)`` and outcome
        ``(T,)``: the two-way residual of a row is its within value minus its period's
        effect, plus the customer's mean of those effects.
    bread : numpy.ndarray
        ``(X~'X~)^-1``.
    """

    beta: np.ndarray
    gamma_x: np.ndarray
    gamma_y: np.ndarray
    bread: np.ndarray


def pattern_cross(
    masks: np.ndarray,
    rows: np.ndarray,
    customers: np.ndarray,
    n_periods: int,
    *,
    bits: int = 62,
    step: int | None = None,
) -> np.ndarray:
    """Return ``C' diag(1/n) C`` from customers' period patterns.

    Parameters
    ----------
    masks : numpy.ndarray
        One row per distinct pattern, one int64 word per ``bits`` periods: bit ``j`` of
        word ``w`` is set when the pattern's customers have a row in period
        ``bits * w + j``.
        Shape ``(P, W)``.
    rows : numpy.ndarray
        Rows per customer of each pattern (its number of set bits), shape ``(P,)``.
    customers : numpy.ndarray
        Customers with each pattern, shape ``(P,)``.
    n_periods : int
        ``T``.
    bits : int
        Periods per word.
    step : int, optional
        Patterns unpacked at a time (memory: ``step x T`` floats); default about
        32 MB worth.

    Returns
    -------
    numpy.ndarray
        ``(T, T)``: entry ``(s, t)`` is the sum over customers with rows in both
        periods of ``1 / n_i``.
    """
    masks = np.asarray(masks, dtype=np.int64).reshape(len(rows), -1)
    w = np.asarray(customers, dtype=float) / np.asarray(rows, dtype=float)
    out = np.zeros((n_periods, n_periods))
    shifts = np.arange(bits, dtype=np.int64)
    step = step or max(1, (4 << 20) // max(n_periods, 1))
    for a in range(0, len(w), step):
        words = masks[a : a + step]
        unpacked = np.concatenate(
            [(words[:, [j]] >> shifts) & 1 for j in range(words.shape[1])], axis=1
        )[:, :n_periods].astype(float)
        out += unpacked.T @ (unpacked * w[a : a + step, None])
    return out


def solve_two_way(
    s: TwoWaySums, names: Sequence[str], *, outcome: str = "revenue"
) -> TwoWaySolution:
    """Solve the two-way fixed-effects normal equations from their sums.

    Parameters
    ----------
    s : TwoWaySums
        The sums.
    names : sequence of str
        Term names, one per regressor.
    outcome : str
        The outcome column (named in errors).

    Returns
    -------
    TwoWaySolution
        Coefficients, period effects and ``(X~'X~)^-1``.

    Raises
    ------
    AnalysisError
        Too few rows for the regressors, or a regressor collinear with the others or
        absorbed by the fixed effects (its two-way residual is at rounding level).
    """
    k = len(names)
    if s.n_obs <= k + 1:
        raise too_few_rows(s.n_obs, names, outcome)
    schur = np.diag(s.period_rows.astype(float)) - s.cross
    pinv = np.linalg.pinv(schur, rcond=_RCOND, hermitian=True)
    gamma_x = pinv @ s.period_x.reshape(len(s.period_rows), k)
    gamma_y = pinv @ s.period_y
    xtx = s.xx - s.period_x.reshape(-1, k).T @ gamma_x
    xtx = (xtx + xtx.T) / 2
    xty = s.xy - s.period_x.reshape(-1, k).T @ gamma_y
    scale = np.maximum(s.xx_total, np.finfo(float).tiny)
    # what the effects leave of a regressor: nothing but rounding when it is absorbed
    if np.linalg.matrix_rank(xtx) < k or (np.diag(xtx) <= 1e-10 * scale).any():
        raise collinear_regressors(names)
    bread = np.linalg.inv(xtx)
    return TwoWaySolution(
        beta=bread @ xty, gamma_x=gamma_x, gamma_y=gamma_y, bread=(bread + bread.T) / 2
    )


def two_way_result(
    s: TwoWaySums,
    sol: TwoWaySolution,
    names: Sequence[str],
    *,
    meat: np.ndarray,
    resid_ss: float,
    outcome_ss: float,
    fixed_effects: Sequence[str] = ("customer_id", "period"),
    k_fixef: str = "nonnested",
    alpha: float = 0.05,
) -> FEResult:
    """Return the regression with customer-clustered (CRV1) standard errors.

    Parameters
    ----------
    s, sol
        The sums and their solution (:func:`solve_two_way`).
    names : sequence of str
        Term names, one per regressor.
    meat : numpy.ndarray
        ``sum over customers of (X~_g' e_g)(X~_g' e_g)'``, ``(k, k)``.
    resid_ss : float
        ``e'e``.
    outcome_ss : float
        Sum of squares of the outcome's two-way residual about its mean (the
        within R-squared's denominator).
    fixed_effects : sequence of str
        Names recorded on the result.
    k_fixef : {"nonnested", "full"}
        Small-sample factor as :func:`analysis.stats.fixed_effects.fit_fe`: the
        customer effects are nested in the customer clusters, so ``"nonnested"``
        counts the periods only.
    alpha : float
        1 - confidence level.

    Returns
    -------
    FEResult
        As :func:`analysis.stats.fixed_effects.fit_fe` (exact: ``converged`` is True).
    """
    if k_fixef not in ("nonnested", "full"):
        raise AnalysisError(f"k_fixef must be 'nonnested' or 'full', not {k_fixef!r}")
    n, g, t = s.n_obs, s.n_customers, len(s.period_rows)
    k = len(names)
    k_fe = t if k_fixef == "nonnested" else g + t - 1
    df_k = k + k_fe
    ssc = (g / (g - 1)) * ((n - 1) / (n - df_k))
    vcov = ssc * sol.bread @ meat @ sol.bread
    se = np.sqrt(np.diag(vcov))
    beta = sol.beta
    tq = stats.t.ppf(1 - alpha / 2, g - 1)
    summary = pd.DataFrame(
        {
            "coef": beta,
            "se": se,
            "ci_lower": beta - tq * se,
            "ci_upper": beta + tq * se,
            "p_value": 2 * stats.t.sf(np.abs(beta / se), g - 1),
            "n_obs": n,
            "n_customers": g,
        },
        index=pd.Index(list(names), name="term"),
    )
    return FEResult(
        summary=summary,
        vcov=pd.DataFrame(vcov, index=list(names), columns=list(names)),
        n_obs=n,
        n_clusters=g,
        n_customers=g,
        df_k=int(df_k),
        ssc=float(ssc),
        singletons_dropped=s.singletons_dropped,
        converged=True,
        outcome_mean=s.outcome_sum / n,
        fixed_effects=tuple(fixed_effects),
        r2_within=1 - resid_ss / outcome_ss if outcome_ss > 0 else float("nan"),
    )
