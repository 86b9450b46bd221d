"""Revenue link: next-period revenue on this period's experience, customers compared with themselves.

* :func:`revenue_link` -- revenue on earlier periods' experience with customer
  and period fixed effects absorbed (:mod:`analysis.stats.fixed_effects`) and
  customer-clustered standard errors;
* :func:`lag_profile` -- one such regression per exposure and lag;
* :func:`dose_response` -- next-period revenue by this period's CSAT level.

Money is in the data's currency per customer-period.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import AnalysisError
from analysis.stats.fixed_effects import FEResult, _codes, _fe_fit_all, _fe_fits
from analysis.studies.experience.frames import _lag_index, _lagged, _require
from analysis.studies.experience.metrics import monthly_revenue


def _check_fe_args(
    panel: pd.DataFrame,
    *,
    outcome: str,
    exposures: Sequence[str],
    lags: Sequence[int],
    fixed_effects: Sequence[str],
    cluster: str,
    customer: str,
    period: str,
    k_fixef: str,
) -> None:
    """Check the revenue link's arguments: the columns it names and its lags."""
    if k_fixef not in ("nonnested", "full"):
        raise AnalysisError(f"k_fixef must be 'nonnested' or 'full', not {k_fixef!r}")
    _require(
        panel, "panel", sorted({outcome, *exposures, *fixed_effects, cluster, customer, period})
    )
    if any(lag < 0 for lag in lags) or not lags:
        raise AnalysisError(f"lags must be non-negative integers, got {lags}")


def revenue_link(
    panel: pd.DataFrame,
    *,
    outcome: str = "revenue",
    exposures: Sequence[str],
    lags: Sequence[int] = (1,),
    fixed_effects: Sequence[str] = ("customer_id", "period"),
    cluster: str = "customer_id",
    customer: str = "customer_id",
    period: str = "period",
    freq: str = "month",
    k_fixef: str = "nonnested",
    alpha: float = 0.05,
    tol: float = 1e-10,
    maxiter: int = 10_000,
) -> FEResult:
    """Regress this period's outcome on earlier periods' experience with absorbed fixed effects.

    ``revenue[i, t] = b_L * x[i, t-L] + a_i + g_t + e[i, t]`` for each lag L:
    with ``lags=(1,)`` this is next-period revenue on current experience.
    Customer and period effects are absorbed by the package's fixed-effects
    engine (:func:`analysis.stats.fixed_effects.demean`: exactly, through the
    small period-by-period system, for two effects one of which has few
    levels; pyfixest's alternating projections otherwise), never built as
    dummy columns, so a 1M-customer x 36-month panel fits in seconds.

    Standard errors are cluster-robust (CRV1) with the small-sample factor
    ``G/(G-1) * (N-1)/(N-K)`` used by Stata (``reghdfe``, ``xtreg, fe
    vce(cluster)``) and R fixest/pyfixest by default: with
    ``k_fixef="nonnested"`` fixed effects nested in the cluster (customer
    effects when clustering by customer) are not counted in K; with ``"full"``
    every fixed-effect level counts, which reproduces dummy-variable OLS
    (statsmodels ``C(customer) + C(period)``, ``cov_type="cluster"``).
    Intervals and p-values use Student t with G-1 degrees of freedom.

    Parameters
    ----------
    panel : pandas.DataFrame
        One row per customer and period (analysis.derive.panel).
    outcome : str
        Outcome column (revenue: currency per customer-period).
    exposures : sequence of str
        Experience columns (e.g. csat_mean, unresolved_tickets, sla_breaches).
        Missing values (no survey that month) drop the row.
    lags : sequence of int
        Periods between exposure and outcome; several lags enter jointly
        (distributed lag). 0 means the same period.
    fixed_effects : sequence of str
        Columns whose effects are absorbed; empty gives pooled OLS with an
        intercept.
    cluster : str
        Cluster column for the standard errors.
    customer, period : str
        Key columns used to find earlier periods.
    freq : {"month", "quarter", "week", "day"}
        Period length when ``period`` holds dates.
    k_fixef : {"nonnested", "full"}
        How fixed effects count in the small-sample factor (see above).
    alpha : float
        1 - confidence level.
    tol, maxiter
        Convergence settings of the demeaning.

    Returns
    -------
    FEResult
        ``summary`` per term (``<exposure>_lag<L>``): coef (outcome units per
        exposure unit), se, ci_lower, ci_upper, p_value, n_obs, n_customers.
    """
    exposures = list(exposures)
    lags = [int(v) for v in lags]
    fixed_effects = list(fixed_effects)
    _check_fe_args(
        panel,
        outcome=outcome,
        exposures=exposures,
        lags=lags,
        fixed_effects=fixed_effects,
        cluster=cluster,
        customer=customer,
        period=period,
        k_fixef=k_fixef,
    )
    lagged, terms = _lagged(
        panel, customer=customer, period=period, exposures=exposures, lags=lags, freq=freq
    )
    y = panel[outcome].to_numpy(dtype=float)
    x = [lagged.pop(t) for t in terms]
    return _fe_fit_all(
        panel,
        y,
        x,
        terms,
        outcome=outcome,
        fixed_effects=fixed_effects,
        cluster=cluster,
        customer=customer,
        k_fixef=k_fixef,
        alpha=alpha,
        tol=tol,
        maxiter=maxiter,
    )


def _lag_fits(
    panel: pd.DataFrame,
    *,
    exposures: Sequence[str],
    lags: Sequence[int],
    outcome: str = "revenue",
    fixed_effects: Sequence[str] = ("customer_id", "period"),
    cluster: str = "customer_id",
    customer: str = "customer_id",
    period: str = "period",
    freq: str = "month",
    k_fixef: str = "nonnested",
    alpha: float = 0.05,
    tol: float = 1e-10,
    maxiter: int = 10_000,
) -> dict[tuple[str, int], FEResult]:
    """Fit :func:`revenue_link` for each exposure and lag alone, sharing the work.

    The lag lookup is built once; per lag, exposures with the same missing
    rows share one estimation sample and one demeaning. Each result equals
    ``revenue_link(panel, exposures=[x], lags=(lag,), ...)``; pairs that
    cannot be estimated are left out.
    """
    exposures = list(exposures)
    lags = [int(v) for v in lags]
    fixed_effects = list(fixed_effects)
    _check_fe_args(
        panel,
        outcome=outcome,
        exposures=exposures,
        lags=lags,
        fixed_effects=fixed_effects,
        cluster=cluster,
        customer=customer,
        period=period,
        k_fixef=k_fixef,
    )
    index = _lag_index(panel, customer=customer, period=period, lags=lags, freq=freq)
    y = panel[outcome].to_numpy(dtype=float)
    codes = {f: _codes(panel[f].to_numpy()) for f in dict.fromkeys([*fixed_effects, cluster])}
    fits: dict[tuple[str, int], FEResult] = {}
    for lag in dict.fromkeys(lags):
        src = index.pop(lag)
        # only rows with an outcome and a row `lag` periods back can be used
        cand = np.flatnonzero((src >= 0) & ~np.isnan(y)).astype(
            np.int32 if len(y) < 2**31 else np.int64
        )
        src = src[cand]
        y_c = y[cand]
        groups: list[tuple[np.ndarray, list[str], list[np.ndarray]]] = []
        for name in exposures:
            v = panel[name].to_numpy()[src].astype(float)  # gather first, then widen
            miss = np.isnan(v)
            for g_miss, g_names, g_cols in groups:
                if np.array_equal(g_miss, miss):
                    g_names.append(name)
                    g_cols.append(v)
                    break
            else:
                groups.append((miss, [name], [v]))
        for _, g_names, g_cols in groups:
            x = list(g_cols)
            g_cols.clear()
            terms = [f"{n}_lag{lag}" if lag else n for n in g_names]
            res = _fe_fits(
                panel,
                y_c,
                x,
                terms,
                [[i] for i in range(len(terms))],
                codes=codes,
                given_rows=cand,
                outcome=outcome,
                fixed_effects=fixed_effects,
                cluster=cluster,
                customer=customer,
                k_fixef=k_fixef,
                alpha=alpha,
                tol=tol,
                maxiter=maxiter,
            )
            del x
            for name, r in zip(g_names, res, strict=True):
                if isinstance(r, FEResult):
                    fits[(name, lag)] = r
    return fits


def _lag_table(
    fits: Mapping[tuple[str, int], FEResult], exposures: Sequence[str], lags: Sequence[int]
) -> pd.DataFrame:
    rows = [fits[(x, int(lag))].summary for x in exposures for lag in lags if (x, int(lag)) in fits]
    if not rows:
        return pd.DataFrame()
    out = pd.concat(rows)
    out.insert(0, "exposure", [t.rsplit("_lag", 1)[0] for t in out.index])
    out.insert(1, "lag", [int(t.rsplit("_lag", 1)[1]) for t in out.index])
    return out


def lag_profile(
    panel: pd.DataFrame,
    *,
    exposures: Sequence[str],
    lags: Sequence[int],
    outcome: str = "revenue",
    **kwargs: Any,
) -> pd.DataFrame:
    """Estimate the revenue link of each exposure at each lag, one regression per pair.

    Separate regressions keep every customer-month with that exposure
    observed at that lag (a survey score is rarely observed in three
    consecutive months, so a joint distributed-lag model would keep almost
    no rows). Keyword arguments go to :func:`revenue_link`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``<exposure>_lag<L>``: exposure, lag, coef, se, ci_lower,
        ci_upper, p_value, n_obs, n_customers.
    """
    try:
        fits = _lag_fits(panel, exposures=exposures, lags=lags, outcome=outcome, **kwargs)
    except AnalysisError:
        return pd.DataFrame()
    return _lag_table(fits, exposures, lags)


# --------------------------------------------------------------------------------------
# Dose-response of next-period revenue on CSAT
# --------------------------------------------------------------------------------------


def dose_response(
    panel: pd.DataFrame,
    *,
    exposure: str = "csat_mean",
    outcome: str = "revenue",
    reference: int = 3,
    customer: str = "customer_id",
    period: str = "period",
    freq: str = "month",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Tabulate next-period revenue by this period's (rounded) CSAT level.

    Two columns of answers per level: the raw mean of next-period revenue
    (with a customer-clustered interval), and the fixed-effects contrast to
    ``reference`` (customer and period effects absorbed, as in
    :func:`revenue_link`), which compares the same customers across months.

    Returns
    -------
    pandas.DataFrame
        One row per level: level, customer_months, customers,
        next_revenue_mean with ci_lower / ci_upper (currency per customer-
        month), fe_difference with fe_ci_lower / fe_ci_upper (currency, vs
        ``reference``).
    """
    lagged, _ = _lagged(
        panel, customer=customer, period=period, exposures=[exposure], lags=[1], freq=freq
    )
    lvl = np.round(lagged[f"{exposure}_lag1"])
    y = panel[outcome].to_numpy(dtype=float)
    ok = ~np.isnan(lvl) & ~np.isnan(y)
    levels = sorted(int(v) for v in np.unique(lvl[ok]))
    z = stats.norm.ppf(1 - alpha / 2)
    # only rows with a level can enter the contrast regression: build it on those
    has = np.flatnonzero(~np.isnan(lvl))
    df = panel[[customer, period, outcome]].iloc[has].reset_index(drop=True)
    dummies = []
    for v in levels:
        if v == reference:
            continue
        name = f"_lvl_{v}"
        df[name] = (lvl[has] == v).astype(float)
        dummies.append(name)
    fe = None
    if dummies and reference in levels:
        try:
            fe = revenue_link(
                df,
                outcome=outcome,
                exposures=dummies,
                lags=(0,),
                fixed_effects=(customer, period),
                cluster=customer,
                customer=customer,
                period=period,
                freq=freq,
                alpha=alpha,
            )
        except AnalysisError:
            fe = None
    rows = []
    cust = panel[customer].to_numpy()
    for v in levels:
        sel = ok & (lvl == v)
        mean, se = monthly_revenue(
            pd.DataFrame({customer: cust[sel], outcome: y[sel]}), outcome=outcome, customer=customer
        )
        months, customers = int(sel.sum()), int(pd.unique(cust[sel]).size)
        rows.append(dose_row(v, months, customers, mean, se, z=z, reference=reference, fe=fe))
    return pd.DataFrame(rows)


def dose_row(
    level: int,
    months: int,
    customers: int,
    mean: float,
    se: float,
    *,
    z: float,
    reference: int,
    fe: FEResult | None,
) -> dict:
    """One row of the dose table: the level's raw mean with its interval, and its
    fixed-effects contrast to ``reference`` (term ``_lvl_<level>`` of ``fe``; none when
    ``fe`` is None)."""
    row = {
        "level": level,
        "customer_months": months,
        "customers": customers,
        "next_revenue_mean": mean,
        "ci_lower": mean - z * se,
        "ci_upper": mean + z * se,
    }
    if level == reference:
        row.update(fe_difference=0.0, fe_ci_lower=0.0, fe_ci_upper=0.0)
    elif fe is not None:
        r = fe.summary.loc[f"_lvl_{level}"]
        row.update(fe_difference=r.coef, fe_ci_lower=r.ci_lower, fe_ci_upper=r.ci_upper)
    return row
