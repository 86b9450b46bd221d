"""Weighted Cox model for one binary treatment (the loyalty study's fitter).

Provisional: phase 2 merges it into :mod:`analysis.stats.cox`, the package's Cox engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["CoxResult", "weighted_cox"]


@dataclass(frozen=True)
class CoxResult:
    """Weighted Cox model for a binary treatment.

    Attributes
    ----------
    hazard_ratio, ci_lower, ci_upper : float
        Hazard ratio (treated vs untreated) and robust (sandwich) interval.
    log_hr, se : float
        Coefficient and its robust standard error (clustered if ``cluster`` given).
    se_model : float
        Model-based (inverse information) standard error, for reference.
    n, events : int
        Rows and events used.
    """

    hazard_ratio: float
    ci_lower: float
    ci_upper: float
    log_hr: float
    se: float
    se_model: float
    p_value: float
    n: int
    events: int
    diagnostics: dict = field(default_factory=dict)


def weighted_cox(
    frame: pd.DataFrame,
    *,
    treatment: str = "member",
    time: str = "time_months",
    event: str = "event",
    weights: pd.Series | np.ndarray | str | None = None,
    horizon: float | None = None,
    cluster: str | None = None,
    alpha: float = 0.05,
) -> CoxResult:
    """Fit a Cox model with one binary treatment, case weights and a robust variance.

    Breslow ties; Newton-Raphson on the weighted partial likelihood; robust
    variance from weighted score residuals (Lin & Wei 1989; Binder 1992), which
    is what makes the interval honest when the weights are estimated IP weights
    (it is then conservative). statsmodels' ``PHReg`` takes no case weights,
    hence this implementation.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per subject (or per subject and landmark when stacking).
    treatment, time, event : str
        Binary treatment, follow-up time (months), event indicator.
    weights : Series, array, column name, or None
        Case weights (e.g. ``Effect.weights``); None for unweighted.
    horizon : float, optional
        Administratively censor at this many months.
    cluster : str, optional
        Column identifying clusters (e.g. customer_id when landmarks are stacked).
    alpha : float
        1 - confidence level.

    Returns
    -------
    CoxResult
    """
    d = frame.reset_index(drop=True)
    x = d[treatment].to_numpy(float)
    t = d[time].to_numpy(float)
    ev = d[event].to_numpy(float)
    if weights is None:
        w = np.ones(len(d))
    elif isinstance(weights, str):
        w = d[weights].to_numpy(float)
    elif isinstance(weights, pd.Series):
        w = weights.to_numpy(float)
    else:
        w = np.asarray(weights, float)
    if horizon is not None:
        ev = np.where(t > horizon, 0.0, ev)
        t = np.minimum(t, horizon)
    use = w > 0
    x, t, ev, w = x[use], t[use], ev[use], w[use]
    groups = d[cluster].to_numpy()[use] if cluster else None

    order = np.argsort(-t, kind="stable")  # descending time: cumulative sums = risk sets
    x, t, ev, w = x[order], t[order], ev[order], w[order]
    if groups is not None:
        groups = groups[order]
    # index of the last row with the same time (ties share the risk set)
    _, first_idx = np.unique(-t, return_index=True)
    tie_end = np.repeat(np.append(first_idx[1:], len(t)) - 1, np.diff(np.append(first_idx, len(t))))

    beta = 0.0
    for _ in range(50):
        r = w * np.exp(beta * x)
        s0 = np.cumsum(r)[tie_end]
        s1 = np.cumsum(r * x)[tie_end]
        xbar = s1 / s0
        score = np.sum(w * ev * (x - xbar))
        info = np.sum(w * ev * (xbar - xbar**2))
        step = score / info
        beta += step
        if abs(step) < 1e-10:
            break
    r = w * np.exp(beta * x)
    s0 = np.cumsum(r)[tie_end]
    s1 = np.cumsum(r * x)[tie_end]
    xbar = s1 / s0
    info = float(np.sum(w * ev * (xbar - xbar**2)))
    # score residuals: event part minus the compensator accumulated over events at or before t_i
    de = w * ev / s0
    # events at times <= t_i are at positions >= tie-start of i in descending order
    cum_a = np.cumsum((de * xbar)[::-1])[::-1]
    cum_b = np.cumsum(de[::-1])[::-1]
    _, first_of_tie = np.unique(-t, return_index=True)
    tie_start = np.repeat(first_of_tie, np.diff(np.append(first_of_tie, len(t))))
    comp = np.exp(beta * x) * (x * cum_b[tie_start] - cum_a[tie_start])
    resid = w * (ev * (x - xbar) - comp)
    if groups is not None:
        resid = pd.Series(resid).groupby(groups).sum().to_numpy()
    var = float(np.sum(resid**2)) / info**2
    se = math.sqrt(var)
    z = stats.norm.ppf(1 - alpha / 2)
    return CoxResult(
        hazard_ratio=math.exp(beta),
        ci_lower=math.exp(beta - z * se),
        ci_upper=math.exp(beta + z * se),
        log_hr=beta,
        se=se,
        se_model=1 / math.sqrt(info),
        p_value=float(2 * stats.norm.sf(abs(beta) / se)),
        n=int(len(t)),
        events=int(ev.sum()),
    )
