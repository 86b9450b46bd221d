"""Piecewise (life-table) hazard over tenure with exact Poisson intervals.

Events divided by time at risk per tenure interval, with left truncation (see
:mod:`analysis.stats.survival`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import ParamsError, Problem
from analysis.stats.survival import _iter_groups, _prepare, _with_group, _z

__all__ = ["hazard_over_tenure"]


def _poisson_ci(events, exposure, alpha):
    lo = np.where(events > 0, stats.chi2.ppf(alpha / 2, 2 * events) / 2, 0.0)
    hi = stats.chi2.ppf(1 - alpha / 2, 2 * events + 2) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return lo / exposure, hi / exposure


def hazard_over_tenure(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    entry: str | None = None,
    group: str | None = None,
    width: float = 1.0,
    max_time: float | None = None,
    smooth: int = 3,
    alpha: float = 0.05,
    weights: str | None = None,
) -> pd.DataFrame:
    """Estimate the churn rate per unit of tenure (life-table hazard) with intervals.

    For each tenure interval (a, a + width] the hazard is churn events divided
    by the customer time at risk in it (customer-months when durations are in
    months), with exact Poisson (Garwood) intervals. The smoothed hazard pools
    events and exposure over a centred window of ``smooth`` intervals (fewer
    at the ends). Intervals start at 0 (the first also counts churn at tenure
    0) and run up to ``max_time``; a customer is exposed in an interval over
    the overlap of ``(entry, duration]`` with it, and at risk at its start when
    ``entry <= a < duration``. Rows with a positive entry equal to the duration
    (never at risk) are dropped.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per customer.
    duration : str
        Column with tenure at churn or censoring (e.g. months since signup).
    event : str
        Column with 1 = churned, 0 = still active (censored).
    entry : str, optional
        Column with tenure when the customer was first observed (left
        truncation, duration unit); None: everyone observed from tenure 0.
    group : str, optional
        Column defining separate hazards (one block of rows per level).
    width : float
        Interval length in the duration unit (1: monthly intervals when
        durations are in months). Must be positive.
    max_time : float, optional
        Tenure (duration unit) the intervals run up to; default the longest
        duration. Later follow-up is ignored.
    smooth : int
        Intervals in the centred smoothing window (1: no smoothing); at least 1.
    alpha : float
        1 - confidence level of the intervals.
    weights : str, optional
        Column with the number of customers each row stands for (see
        :func:`analysis.stats.survival.kaplan_meier`).

    Returns
    -------
    pandas.DataFrame
        One row per group and interval: [group], start, end (tenure, duration
        unit), at_risk_start (customers), exposure (customer time at risk,
        duration unit), events, hazard, ci_lower, ci_upper, hazard_smooth,
        smooth_ci_lower, smooth_ci_upper (rates per duration unit; the hazard is
        NaN where exposure is 0), churn_prob (1 - exp(-hazard * width): chance
        of leaving within the interval given active at its start).

    Raises
    ------
    analysis.errors.ParamsError
        If ``width <= 0``, ``smooth < 1`` or ``alpha`` is not in (0, 1).
    analysis.errors.DataError
        If columns are missing or durations, events or entries are invalid.
    """
    _z(alpha)
    if width <= 0 or smooth < 1:
        raise ParamsError(
            "width must be positive and smooth >= 1",
            [
                Problem(
                    "survival",
                    "width",
                    "range",
                    f"width={width}, smooth={smooth}",
                    fix="use width=1 (month) and smooth=3",
                )
            ],
        )
    work, _ = _prepare(
        df, duration=duration, event=event, entry=entry, group=group, weights=weights
    )
    top = float(max_time if max_time is not None else work["_t"].max())
    edges = np.arange(0.0, top + width * 0.999, width)
    if len(edges) < 2:
        edges = np.array([0.0, width])
    parts = []
    for lev, sub in _iter_groups(work):
        t = sub["_t"].to_numpy()
        e = sub["_e"].to_numpy()
        en = sub["_entry"].to_numpy()
        w = sub["_w"].to_numpy()
        o = np.argsort(t[e == 1], kind="stable")
        ev_t = t[e == 1][o]
        ev_w = np.concatenate([[0.0], np.cumsum(w[e == 1][o])])  # customers up to each event
        rows = []
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            expo = (np.clip(np.minimum(t, b) - np.maximum(en, a), 0, None) * w).sum()
            lo_side = np.searchsorted(ev_t, a, side="right") if a > 0 else 0
            ev = int(ev_w[np.searchsorted(ev_t, b, side="right")] - ev_w[lo_side])
            risk = int(w[(en <= a) & (t > a)].sum())
            rows.append((a, b, risk, expo, ev))
        fr = pd.DataFrame(rows, columns=["start", "end", "at_risk_start", "exposure", "events"])
        with np.errstate(divide="ignore", invalid="ignore"):
            fr["hazard"] = np.where(fr.exposure > 0, fr.events / fr.exposure, np.nan)
        fr["ci_lower"], fr["ci_upper"] = _poisson_ci(
            fr.events.to_numpy(), fr.exposure.to_numpy(), alpha
        )
        ev_s = fr.events.rolling(smooth, center=True, min_periods=1).sum().to_numpy()
        ex_s = fr.exposure.rolling(smooth, center=True, min_periods=1).sum().to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            fr["hazard_smooth"] = np.where(ex_s > 0, ev_s / ex_s, np.nan)
        fr["smooth_ci_lower"], fr["smooth_ci_upper"] = _poisson_ci(ev_s, ex_s, alpha)
        fr["churn_prob"] = 1 - np.exp(-fr["hazard"] * width)
        parts.append(_with_group(fr, group, lev))
    return pd.concat(parts, ignore_index=True)
