"""Kaplan-Meier estimation and the tests and summaries built on it.

Every function takes one row per subject (customers: the ``lifetimes`` table,
see :func:`analysis.derive.lifetimes`) and column names, and returns a new
DataFrame or a small result object. Time is in whatever unit the ``duration``
column uses (the lifetimes table has days and months; the report uses months).

Left truncation (late entry): customers who signed up before the data window
are only seen because they were still customers when the window opened. Pass
their tenure at the window start as ``entry``; they then join the risk set only
after that tenure (risk interval ``(entry, duration]``, as in R's
``Surv(entry, duration, event)``).

Engines: statsmodels ``SurvfuncRight`` (Kaplan-Meier, with entry) and
``survdiff`` (log-rank). Added here: log-log intervals, medians with
intervals, restricted mean survival time (RMST) and its variance, pairwise
Holm-adjusted log-rank tests and the number-at-risk table. The Cox model is in
:mod:`analysis.stats.cox`, cumulative incidence in
:mod:`analysis.stats.competing_risks`, hazards over tenure in
:mod:`analysis.stats.hazard`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from analysis.errors import DataError, ParamsError, Problem, examples_of

TABLE = "lifetimes"
ALL = "all"  # label of the single group when no grouping column is given

__all__ = [
    "ALL",
    "TABLE",
    "LogrankResult",
    "at_risk_table",
    "holm",
    "kaplan_meier",
    "logrank",
    "median_survival",
    "rmst",
    "survival_at",
]


# ----------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ParamsError(
            "alpha must be between 0 and 1",
            [Problem("survival", "alpha", "range", f"got {alpha!r}", fix="use e.g. 0.05")],
        )
    return float(stats.norm.ppf(1 - alpha / 2))


def _prepare(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    entry: str | None = None,
    group: str | None = None,
    extra: tuple[str, ...] = (),
    weights: str | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Return a clean working frame with columns _t, _e, _entry, _g, _w (+ extra) and notes.

    ``_w`` is the row's frequency weight: the number of customers the row stands for
    (column ``weights``), 1 without one. Rows with entry == duration are dropped: they
    are never at risk.
    """
    needed = [duration, event] + [c for c in (entry, group, weights) if c] + list(extra)
    missing = [c for c in dict.fromkeys(needed) if c not in df.columns]
    if missing:
        raise DataError(
            f"{TABLE}: required column(s) missing: {', '.join(missing)}",
            [
                Problem(
                    TABLE,
                    c,
                    "missing_column",
                    "column not found",
                    fix=(
                        f"pass an existing column name; available: {', '.join(map(str, df.columns[:12]))}"
                    ),
                )
                for c in missing
            ],
        )
    if len(df) == 0:
        raise DataError(
            f"{TABLE}: no rows to analyse",
            [
                Problem(
                    TABLE,
                    None,
                    "empty",
                    "the table has 0 rows",
                    fix="check the data window and filters",
                )
            ],
        )
    problems = []
    t = pd.to_numeric(df[duration], errors="coerce").to_numpy(dtype=float)
    ev_raw = df[event]
    ev = pd.to_numeric(
        ev_raw.astype("float64") if ev_raw.dtype == bool else ev_raw, errors="coerce"
    ).to_numpy(dtype=float)
    ids = df["customer_id"] if "customer_id" in df.columns else pd.Series(df.index)
    bad = ~np.isfinite(t)
    if bad.any():
        problems.append(
            Problem(
                TABLE,
                duration,
                "missing_duration",
                "duration is missing",
                int(bad.sum()),
                examples_of(ids[bad]),
                fix="derive durations for every customer or filter them out",
            )
        )
    neg = np.isfinite(t) & (t < 0)
    if neg.any():
        problems.append(
            Problem(
                TABLE,
                duration,
                "negative_duration",
                "duration is negative",
                int(neg.sum()),
                examples_of(ids[neg]),
                fix="check that end dates are not before start dates",
            )
        )
    badev = ~np.isin(ev, (0.0, 1.0))
    if badev.any():
        problems.append(
            Problem(
                TABLE,
                event,
                "event_not_binary",
                "event must be 0 or 1",
                int(badev.sum()),
                examples_of(ev_raw[badev]),
                fix="code churn as 1 and still-active (censored) as 0",
            )
        )
    if entry:
        en = pd.to_numeric(df[entry], errors="coerce").to_numpy(dtype=float)
        bad_en = ~np.isfinite(en) | (en < 0)
        if bad_en.any():
            problems.append(
                Problem(
                    TABLE,
                    entry,
                    "bad_entry",
                    "entry is missing or negative",
                    int(bad_en.sum()),
                    examples_of(ids[bad_en]),
                    fix="use 0 for customers observed from signup",
                )
            )
        late = np.isfinite(en) & np.isfinite(t) & (en > t)
        if late.any():
            problems.append(
                Problem(
                    TABLE,
                    entry,
                    "entry_after_end",
                    "entry (tenure when first observed) is after the end",
                    int(late.sum()),
                    examples_of(ids[late]),
                    fix="drop customers not observed inside the window (derive.usable_lifetimes)",
                )
            )
    else:
        en = np.zeros(len(df))
    w = np.ones(len(df))
    if weights:
        w = pd.to_numeric(df[weights], errors="coerce").to_numpy(dtype=float)
        bad_w = ~np.isfinite(w) | (w < 0) | (w != np.round(w))
        if bad_w.any():
            problems.append(
                Problem(
                    TABLE,
                    weights,
                    "bad_weight",
                    "the number of customers of a row is missing, negative or not whole",
                    int(bad_w.sum()),
                    examples_of(df[weights][bad_w]),
                    fix="give each row the whole number of customers it stands for",
                )
            )
    if problems:
        raise DataError(f"{TABLE}: {len(problems)} problem(s) in the survival input", problems)
    work = pd.DataFrame({"_t": t, "_e": ev.astype(np.int8), "_entry": en, "_w": w}, index=df.index)
    if group:
        g = df[group]
        work["_g"] = g.astype(object).where(g.notna(), "(missing)")
    else:
        work["_g"] = ALL
    for c in extra:
        work[c] = df[c]
    never = (work["_entry"] > 0) & (work["_entry"] >= work["_t"])
    info = {
        "n_input": int(w.sum()),
        "n_never_at_risk": int(w[never.to_numpy()].sum()),
        "n_left_truncated": int(w[((work["_entry"] > 0) & ~never).to_numpy()].sum()),
    }
    return work.loc[~never], info


def _group_levels(work: pd.DataFrame) -> list:
    levels = pd.unique(work["_g"])
    try:
        return sorted(levels)
    except TypeError:
        return sorted(levels, key=str)


def _iter_groups(work: pd.DataFrame):
    for lev in _group_levels(work):
        yield lev, work[work["_g"] == lev]


def _with_group(frame: pd.DataFrame, group: str | None, level) -> pd.DataFrame:
    if group:
        frame.insert(0, group, level)
    return frame


# ----------------------------------------------------------------------------
# Kaplan-Meier
# ----------------------------------------------------------------------------


def _entry_eff(entry):
    """Map entry 0 to -1 so customers observed from signup are at risk at tenure 0.

    Risk sets are (entry, duration]; a customer who churns on the signup day
    (duration 0) must stay in the risk set at 0, as without any entry column.
    """
    entry = np.asarray(entry, dtype=float)
    return np.where(entry > 0, entry, -1.0)


def _weights_of(sub: pd.DataFrame, weights) -> np.ndarray | None:
    """The frequency weights of a working frame's rows, or None when every row is one
    customer (the unweighted computation, as before weights existed)."""
    return sub["_w"].to_numpy() if weights else None


def _km_core(t, e, entry, w=None):
    """Return event times, at-risk, events, S, var(log S) for one group
    (``w``: frequency weights, customers per row; None: one each)."""
    if (e.sum() if w is None else (e * w).sum()) == 0:
        return (np.array([]),) * 5
    use = entry is not None and np.any(np.asarray(entry) > 0)
    sf = SurvfuncRight(t, e, entry=_entry_eff(entry) if use else None, freq_weights=w)
    s = np.asarray(sf.surv_prob, dtype=float)
    n = np.asarray(sf.n_risk, dtype=float)
    d = np.asarray(sf.n_events, dtype=float)
    # Greenwood variance of log S (statsmodels returns the SE of S itself)
    with np.errstate(divide="ignore", invalid="ignore"):
        inc = np.where(n > d, d / (n * (n - d)), np.nan)
    varlog = np.cumsum(inc)
    return np.asarray(sf.surv_times, dtype=float), n, d, s, varlog


def _ci(s, varlog, z, conf_type):
    with np.errstate(divide="ignore", invalid="ignore"):
        se_log = np.sqrt(varlog)
        if conf_type == "log-log":
            theta = se_log / np.abs(np.log(s))
            lo = s ** np.exp(z * theta)
            hi = s ** np.exp(-z * theta)
        elif conf_type == "log":
            lo = s * np.exp(-z * se_log)
            hi = np.minimum(s * np.exp(z * se_log), 1.0)
        elif conf_type == "plain":
            se = s * se_log
            lo = np.clip(s - z * se, 0, 1)
            hi = np.clip(s + z * se, 0, 1)
        else:
            raise ParamsError(
                f"unknown conf_type {conf_type!r}",
                [
                    Problem(
                        "survival",
                        "conf_type",
                        "choice",
                        f"got {conf_type!r}",
                        fix="use 'log-log' (default), 'log' or 'plain'",
                    )
                ],
            )
    bad = ~np.isfinite(lo) | ~np.isfinite(hi) | (s <= 0)
    lo = np.where(bad, np.nan, lo)
    hi = np.where(bad, np.nan, hi)
    return lo, hi


def kaplan_meier(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    group: str | None = None,
    entry: str | None = None,
    alpha: float = 0.05,
    conf_type: str = "log-log",
    weights: str | None = None,
) -> pd.DataFrame:
    """Estimate Kaplan-Meier survival (retention) curves with pointwise intervals.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per customer.
    duration : str
        Column with tenure at churn or censoring (e.g. months since signup).
    event : str
        Column with 1 = churned, 0 = still active (censored).
    group : str, optional
        Column defining separate curves.
    entry : str, optional
        Column with tenure when the customer was first observed (left
        truncation); the customer is at risk on ``(entry, duration]``.
    alpha : float
        1 - confidence level.
    conf_type : {"log-log", "log", "plain"}
        Interval transform; log-log (the default) stays within [0, 1]. R's
        ``survfit`` default is ``"log"``.
    weights : str, optional
        Column with the number of customers each row stands for (frequency weights:
        rows of customers with the same values, counted on the engine); the result
        equals that of one row per customer.

    Returns
    -------
    pandas.DataFrame
        One row per group and distinct event time: [group], time (duration
        unit), at_risk, events, survival, se (Greenwood SE of survival),
        ci_lower, ci_upper.
    """
    z = _z(alpha)
    work, _ = _prepare(
        df, duration=duration, event=event, entry=entry, group=group, weights=weights
    )
    parts = []
    for lev, sub in _iter_groups(work):
        tt, n, d, s, varlog = _km_core(
            sub["_t"].to_numpy(),
            sub["_e"].to_numpy(),
            sub["_entry"].to_numpy() if entry else None,
            _weights_of(sub, weights),
        )
        lo, hi = _ci(s, varlog, z, conf_type)
        frame = pd.DataFrame(
            {
                "time": tt,
                "at_risk": n.astype(np.int64),
                "events": d.astype(np.int64),
                "survival": s,
                "se": s * np.sqrt(varlog),
                "ci_lower": lo,
                "ci_upper": hi,
            }
        )
        parts.append(_with_group(frame, group, lev))
    return pd.concat(parts, ignore_index=True)


def _step_lookup(km: pd.DataFrame, times, t_max: float) -> pd.DataFrame:
    """Evaluate a KM step table at arbitrary times (NaN beyond follow-up)."""
    tt = km["time"].to_numpy()
    times = np.asarray(times, dtype=float)
    idx = np.searchsorted(tt, times, side="right") - 1
    out = {}
    for col, start in (("survival", 1.0), ("ci_lower", 1.0), ("ci_upper", 1.0), ("se", 0.0)):
        v = km[col].to_numpy()
        val = np.where(idx >= 0, v[np.clip(idx, 0, None)] if len(v) else start, start)
        out[col] = np.where(times > t_max, np.nan, val)
    return pd.DataFrame(out)


def survival_at(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    times,
    group: str | None = None,
    entry: str | None = None,
    alpha: float = 0.05,
    conf_type: str = "log-log",
    weights: str | None = None,
) -> pd.DataFrame:
    """Estimate the share of customers still active at given tenures, with intervals.

    Parameters
    ----------
    df, duration, event, group, entry, alpha, conf_type, weights
        As in :func:`kaplan_meier`.
    times : sequence of float
        Tenures (duration unit) at which to read the curve.

    Returns
    -------
    pandas.DataFrame
        [group], horizon, survival, se, ci_lower, ci_upper, at_risk (customers
        still observed at that tenure). NaN where the horizon is beyond the
        longest follow-up of the group.
    """
    z = _z(alpha)
    work, _ = _prepare(
        df, duration=duration, event=event, entry=entry, group=group, weights=weights
    )
    parts = []
    for lev, sub in _iter_groups(work):
        t = sub["_t"].to_numpy()
        tt, n, d, s, varlog = _km_core(
            t,
            sub["_e"].to_numpy(),
            sub["_entry"].to_numpy() if entry else None,
            _weights_of(sub, weights),
        )
        lo, hi = _ci(s, varlog, z, conf_type)
        km = pd.DataFrame(
            {"time": tt, "survival": s, "se": s * np.sqrt(varlog), "ci_lower": lo, "ci_upper": hi}
        )
        vals = _step_lookup(km, times, float(t.max()))
        en, w = sub["_entry"].to_numpy(), sub["_w"].to_numpy()
        risk = [int(w[(t >= h) & (en <= h)].sum()) for h in np.asarray(times, dtype=float)]
        frame = pd.DataFrame({"horizon": np.asarray(times, dtype=float)})
        frame = pd.concat([frame, vals], axis=1)
        frame["at_risk"] = risk
        parts.append(_with_group(frame, group, lev))
    return pd.concat(parts, ignore_index=True)


def _first_crossing(tt, curve, level=0.5, eps=1e-10):
    """Return the R-style quantile time: first time the curve is <= level.

    If the curve sits exactly on ``level`` over an interval, R takes the
    midpoint of that interval (to the next event time).
    """
    below = np.flatnonzero(curve <= level + eps)
    if len(below) == 0:
        return np.nan
    k = below[0]
    if abs(curve[k] - level) < eps and k + 1 < len(tt):
        return 0.5 * (tt[k] + tt[k + 1])
    return float(tt[k])


def median_survival(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    group: str | None = None,
    entry: str | None = None,
    alpha: float = 0.05,
    conf_type: str = "log-log",
    weights: str | None = None,
) -> pd.DataFrame:
    """Estimate the median tenure (time by which half have churned) with an interval.

    The interval is the set of times whose pointwise survival interval
    contains 0.5 (Brookmeyer-Crowley style, as R's ``print.survfit``).

    Parameters
    ----------
    df, duration, event, group, entry, alpha, conf_type, weights
        As in :func:`kaplan_meier` (``alpha``: 1 - confidence level of the
        median's interval).

    Returns
    -------
    pandas.DataFrame
        One row per group: [group], n (customers at risk at some time),
        events, median, ci_lower, ci_upper (duration unit; NaN where not
        reached within follow-up), max_time (longest follow-up, duration unit).
    """
    z = _z(alpha)
    work, _ = _prepare(
        df, duration=duration, event=event, entry=entry, group=group, weights=weights
    )
    rows = []
    for lev, sub in _iter_groups(work):
        tt, n, d, s, varlog = _km_core(
            sub["_t"].to_numpy(),
            sub["_e"].to_numpy(),
            sub["_entry"].to_numpy() if entry else None,
            _weights_of(sub, weights),
        )
        lo, hi = _ci(s, varlog, z, conf_type)
        lo_f = np.where(np.isnan(lo), 0.0, lo)  # undefined lower band after S hits 0
        hi_f = np.where(np.isnan(hi), np.inf, hi)
        row = {
            "n": int(sub["_w"].sum()),
            "events": int((sub["_e"] * sub["_w"]).sum()),
            "median": _first_crossing(tt, s) if len(tt) else np.nan,
            "ci_lower": _first_crossing(tt, lo_f) if len(tt) else np.nan,
            "ci_upper": _first_crossing(tt, hi_f) if len(tt) else np.nan,
            "max_time": float(sub["_t"].max()),
        }
        if group:
            row = {group: lev, **row}
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------
# Restricted mean survival time
# ----------------------------------------------------------------------------


def _rmst_one(t, e, entry, horizon, w=None):
    tt, n, d, s, _ = _km_core(t, e, entry, w)
    keep = tt <= horizon
    tt, n, d, s = tt[keep], n[keep], d[keep], s[keep]
    # step function: S = 1 on [0, t1), s[k] on [t_k, t_{k+1}), last to horizon
    knots = np.concatenate([[0.0], tt, [horizon]])
    heights = np.concatenate([[1.0], s])
    areas = heights * np.diff(knots)
    est = float(areas.sum())
    # A_k = area under S from t_k to horizon
    tail = np.cumsum(areas[::-1])[::-1][1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n > d, d / (n * (n - d)), 0.0)
    var = float(np.sum(tail**2 * w))
    return est, math.sqrt(var)


def _log_ratio(name, est_a, est_b, se_a, se_b, z) -> dict:
    """Ratio est_a / est_b with a log-scale (delta-method) interval and p-value, as survRM2."""
    est_a, est_b, se_a, se_b = (np.float64(v) for v in (est_a, est_b, se_a, se_b))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_ratio = np.log(est_a) - np.log(est_b)
        se = np.sqrt(se_a**2 / est_a**2 + se_b**2 / est_b**2)
        ok = bool(np.isfinite(log_ratio) and np.isfinite(se) and se > 0)
    if not ok:
        return dict.fromkeys(
            [name, f"{name}_ci_lower", f"{name}_ci_upper", f"{name}_p_value"], np.nan
        )
    return {
        name: float(np.exp(log_ratio)),
        f"{name}_ci_lower": float(np.exp(log_ratio - z * se)),
        f"{name}_ci_upper": float(np.exp(log_ratio + z * se)),
        f"{name}_p_value": float(2 * stats.norm.sf(abs(log_ratio) / se)),
    }


def rmst(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    horizon: float,
    group: str | None = None,
    entry: str | None = None,
    alpha: float = 0.05,
    weights: str | None = None,
) -> pd.DataFrame:
    """Estimate the restricted mean survival time: average tenure within the first ``horizon``.

    RMST is the area under the Kaplan-Meier curve from 0 to ``horizon``
    (duration unit), i.e. the expected number of time units a customer stays
    during the first ``horizon``. Its variance is the Greenwood-type formula
    sum_k A_k^2 d_k / (n_k (n_k - d_k)), A_k the area from event time t_k to
    the horizon (Klein & Moeschberger 2003, sec. 4.5; as in R's survRM2).

    The restricted mean time lost, RMTL = horizon - RMST, is the average
    time lost to churn within the horizon (same variance). Between two
    groups A and B the contrasts are those of R's ``survRM2::rmst2`` (Uno et
    al. 2014): the RMST difference A - B, the RMST ratio A / B and the RMTL
    ratio, the ratios with intervals and p-values on the log scale by the
    delta method, se(log ratio) = sqrt(se_A^2 / RMST_A^2 + se_B^2 / RMST_B^2).

    Parameters
    ----------
    df, duration, event, group, entry, alpha, weights
        As in :func:`kaplan_meier`.
    horizon : float
        Restriction time, in the duration unit (e.g. 24 months); positive.

    Returns
    -------
    pandas.DataFrame
        Rows with kind "estimate": [group], horizon, rmst, se, ci_lower,
        ci_upper (duration unit), n, events, p_value (NaN), and rmtl,
        rmtl_ci_lower, rmtl_ci_upper. When grouped, further rows with kind
        "difference" (group = "A - B") and a two-sided p_value, for every pair
        of groups; these rows also carry ratio, ratio_ci_lower,
        ratio_ci_upper, ratio_p_value (RMST A / B) and rmtl_ratio,
        rmtl_ratio_ci_lower, rmtl_ratio_ci_upper, rmtl_ratio_p_value (RMTL
        A / B). A group whose longest follow-up is shorter than the horizon
        gets NaN (the curve is unknown there) unless its curve has reached 0.
    """
    z = _z(alpha)
    if not horizon or horizon <= 0:
        raise ParamsError(
            "RMST horizon must be positive",
            [
                Problem(
                    "survival",
                    "rmst_horizon_months",
                    "range",
                    f"got {horizon!r}",
                    fix="use e.g. 24 (months)",
                )
            ],
        )
    work, _ = _prepare(
        df, duration=duration, event=event, entry=entry, group=group, weights=weights
    )
    rows = []
    for lev, sub in _iter_groups(work):
        t = sub["_t"].to_numpy()
        e_sub = sub["_e"].to_numpy()
        en_sub = sub["_entry"].to_numpy() if entry else None
        w_sub = _weights_of(sub, weights)
        reaches_zero = (
            bool(e_sub[t == t.max()].any()) and _km_core(t, e_sub, en_sub, w_sub)[3][-1] == 0
        )
        if t.max() < horizon and not reaches_zero:
            est, se = np.nan, np.nan
        else:
            est, se = _rmst_one(t, e_sub, en_sub, horizon, w_sub)
        rows.append(
            {
                "kind": "estimate",
                "group": lev,
                "horizon": float(horizon),
                "rmst": est,
                "se": se,
                "ci_lower": est - z * se,
                "ci_upper": est + z * se,
                "n": int(sub["_w"].sum()),
                "events": int((sub["_e"] * sub["_w"]).sum()),
                "p_value": np.nan,
                "rmtl": horizon - est,
                "rmtl_ci_lower": horizon - (est + z * se),
                "rmtl_ci_upper": horizon - (est - z * se),
            }
        )
    est_rows = list(rows)
    for i in range(len(est_rows)):
        for j in range(i + 1, len(est_rows)):
            a, b = est_rows[i], est_rows[j]
            diff = a["rmst"] - b["rmst"]
            se = math.sqrt(a["se"] ** 2 + b["se"] ** 2)
            p = 2 * stats.norm.sf(abs(diff) / se) if se > 0 else np.nan
            rows.append(
                {
                    "kind": "difference",
                    "group": f"{a['group']} - {b['group']}",
                    "horizon": float(horizon),
                    "rmst": diff,
                    "se": se,
                    "ci_lower": diff - z * se,
                    "ci_upper": diff + z * se,
                    "n": a["n"] + b["n"],
                    "events": a["events"] + b["events"],
                    "p_value": p,
                    **_log_ratio("ratio", a["rmst"], b["rmst"], a["se"], b["se"], z),
                    **_log_ratio("rmtl_ratio", a["rmtl"], b["rmtl"], a["se"], b["se"], z),
                }
            )
    out = pd.DataFrame(rows)
    if group:
        out = out.rename(columns={"group": group})
    else:
        out = out.drop(columns="group")
    return out


# ----------------------------------------------------------------------------
# Log-rank
# ----------------------------------------------------------------------------


def holm(pvalues) -> np.ndarray:
    """Adjust p-values for multiple comparisons by Holm's step-down method.

    Parameters
    ----------
    pvalues : sequence of float

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order (capped at 1).
    """
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        adj[i] = min(1.0, running)
    return adj


def _risk_counts(t, e, entry, utimes, w=None):
    """Return at-risk counts and event counts at ``utimes`` (risk set: entry < u <= t);
    ``w``: frequency weights (customers per row), None for one each."""
    if w is None:
        ts = np.sort(t)
        n_time = len(t) - np.searchsorted(ts, utimes, side="left")  # t >= u
        es = np.sort(_entry_eff(entry))
        n_entry = len(entry) - np.searchsorted(es, utimes, side="left")  # entry >= u
        ev = np.sort(t[e == 1])
        d = np.searchsorted(ev, utimes, side="right") - np.searchsorted(ev, utimes, side="left")
        return (n_time - n_entry).astype(float), d.astype(float)

    def above(x, wx, side):  # weight of rows with x >= u (side "left") or x > u ("right")
        o = np.argsort(x, kind="stable")
        cw = np.concatenate([[0.0], np.cumsum(wx[o])])
        return cw[-1] - cw[np.searchsorted(x[o], utimes, side=side)]

    w = np.asarray(w, dtype=float)
    n = above(t, w, "left") - above(_entry_eff(entry), w, "left")
    ev = e == 1
    d = above(t[ev], w[ev], "left") - above(t[ev], w[ev], "right")
    return n, d


def _logrank_weighted(t, e, codes, entry, w, k: int):
    """(O - E) of groups 1..k-1 and their covariance, summed over event times with more
    than one customer at risk: :func:`statsmodels.duration.survfunc.survdiff` (log-rank
    weights) on rows that stand for ``w`` customers each."""
    u = np.unique(t[(e == 1) & (w > 0)])
    en = entry if entry is not None else np.zeros(len(t))
    n_g, d_g = zip(
        *(
            _risk_counts(t[codes == g], e[codes == g], en[codes == g], u, w[codes == g])
            for g in range(k)
        ),
        strict=True,
    )
    n_g, d_g = np.vstack(n_g), np.vstack(d_g)
    n, d = n_g.sum(axis=0), d_g.sum(axis=0)
    keep = n > 1
    n_g, d_g, n, d = n_g[:, keep], d_g[:, keep], n[keep], d[keep]
    r = n_g / n
    oe = (d_g - r * d)[1:].sum(axis=1)
    scale = d * (n - d) / np.clip(n - 1, 1e-10, None)
    var = np.empty((k - 1, k - 1))
    for i in range(1, k):
        for j in range(1, k):
            var[i - 1, j - 1] = np.sum(scale * r[i] * ((i == j) - r[j]))
    return oe, var


def _survdiff(t, e, codes, entry, w):
    """Log-rank chi-square and p-value: statsmodels' ``survdiff`` without weights, the
    same test from weighted counts with them."""
    if w is None:
        return survdiff(t, e, codes, entry=entry)
    k = len(np.unique(codes))
    oe, var = _logrank_weighted(t, e, np.unique(codes, return_inverse=True)[1], entry, w, k)
    chisq = float(oe.dot(np.linalg.solve(var, oe)))
    return chisq, float(1 - stats.chi2.cdf(chisq, k - 1))


@dataclass
class LogrankResult:
    """Result of a k-group log-rank test.

    Attributes
    ----------
    statistic : float
        Chi-square statistic.
    dof : int
        Degrees of freedom (groups - 1).
    p_value : float
    table : pandas.DataFrame
        group, n, observed (churn events), expected (under equal hazards).
    pairwise : pandas.DataFrame
        group_a, group_b, statistic, p_value, p_holm (Holm-adjusted).
    """

    statistic: float
    dof: int
    p_value: float
    table: pd.DataFrame
    pairwise: pd.DataFrame
    group: str = ""


def logrank(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    group: str,
    entry: str | None = None,
    weights: str | None = None,
) -> LogrankResult:
    """Test whether retention curves differ between groups (log-rank test).

    Parameters
    ----------
    df, duration, event, entry, weights
        As in :func:`kaplan_meier`.
    group : str
        Column with two or more groups.

    Returns
    -------
    LogrankResult
        Overall k-group test, observed/expected table and all pairwise tests
        with Holm-adjusted p-values.
    """
    work, _ = _prepare(
        df, duration=duration, event=event, entry=entry, group=group, weights=weights
    )
    levels = _group_levels(work)
    if len(levels) < 2:
        raise DataError(
            f"{TABLE}.{group}: the log-rank test needs at least two groups",
            [
                Problem(
                    TABLE,
                    group,
                    "one_group",
                    f"only {levels!r} present",
                    int(len(work)),
                    fix="choose a grouping column with 2+ values",
                )
            ],
        )
    t = work["_t"].to_numpy()
    e = work["_e"].to_numpy().astype(float)
    en = work["_entry"].to_numpy()
    g = work["_g"].to_numpy()
    w = _weights_of(work, weights)
    wn = work["_w"].to_numpy()
    codes = pd.Categorical(g, categories=levels).codes
    # entry 0 as -1: customers observed from signup are at risk at tenure 0, as in the
    # curves (statsmodels' risk set is entry < t, which would leave out churn on day 0)
    use_entry = _entry_eff(en) if (entry and np.any(en > 0)) else None
    try:
        chisq, p = _survdiff(t, e, codes, use_entry, w)
    except np.linalg.LinAlgError:  # no events, or no information to compare
        chisq, p = np.nan, np.nan
    utimes = np.unique(t[e == 1])
    n_all, d_all = _risk_counts(t, e, en, utimes, w)
    tab = []
    for k, lev in enumerate(levels):
        m = codes == k
        n_g, d_g = _risk_counts(t[m], e[m], en[m], utimes, None if w is None else w[m])
        with np.errstate(divide="ignore", invalid="ignore"):
            exp_g = np.nansum(np.where(n_all > 0, d_all * n_g / n_all, 0.0))
        tab.append(
            {
                "group": lev,
                "n": int(wn[m].sum()),
                "observed": int(d_g.sum()),
                "expected": float(exp_g),
            }
        )
    pairs = []
    for i in range(len(levels)):
        for j in range(i + 1, len(levels)):
            m = (codes == i) | (codes == j)
            if e[m].sum() == 0:
                stat_ij, p_ij = np.nan, np.nan
            else:
                try:
                    stat_ij, p_ij = _survdiff(
                        t[m],
                        e[m],
                        codes[m],
                        use_entry[m] if use_entry is not None else None,
                        None if w is None else w[m],
                    )
                except np.linalg.LinAlgError:
                    stat_ij, p_ij = np.nan, np.nan
            pairs.append(
                {
                    "group_a": levels[i],
                    "group_b": levels[j],
                    "statistic": float(stat_ij),
                    "p_value": float(p_ij),
                }
            )
    pw = pd.DataFrame(pairs)
    ok = pw["p_value"].notna()
    pw["p_holm"] = np.nan
    if ok.any():
        pw.loc[ok, "p_holm"] = holm(pw.loc[ok, "p_value"])
    return LogrankResult(float(chisq), len(levels) - 1, float(p), pd.DataFrame(tab), pw, group)


# ----------------------------------------------------------------------------
# Number at risk
# ----------------------------------------------------------------------------


def at_risk_table(
    df: pd.DataFrame,
    *,
    duration: str,
    times,
    entry: str | None = None,
    group: str | None = None,
    weights: str | None = None,
) -> pd.DataFrame:
    """Count customers under observation at given tenures (for the table under a KM plot).

    A customer counts at tenure t when entry <= t <= duration (observed at t
    and not yet churned or censored before t). Only the columns are checked
    (no event column is needed); a missing group is labelled "(missing)".

    Parameters
    ----------
    df : pandas.DataFrame
        One row per customer.
    duration, entry, group, weights
        As in :func:`kaplan_meier`.
    times : sequence of float
        Tenures (duration unit) at which to count.

    Returns
    -------
    pandas.DataFrame
        Customer counts (int): one row per group (index named ``group``, or
        "group" with the single row "all" when ungrouped), one column per time.
    """
    cols = [duration] + [c for c in (entry, group, weights) if c]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(
            f"{TABLE}: column(s) missing: {', '.join(missing)}",
            [Problem(TABLE, c, "missing_column", "not found") for c in missing],
        )
    t = df[duration].to_numpy(dtype=float)
    en = df[entry].to_numpy(dtype=float) if entry else np.zeros(len(df))
    w = df[weights].to_numpy(dtype=float) if weights else np.ones(len(df))
    g = df[group].astype(object).fillna("(missing)") if group else pd.Series(ALL, index=df.index)
    out = {}
    for lev in sorted(pd.unique(g), key=str):
        m = (g == lev).to_numpy()
        out[lev] = [int(w[m][(en[m] <= h) & (t[m] >= h)].sum()) for h in times]
    tab = pd.DataFrame.from_dict(out, orient="index", columns=list(times))
    tab.index.name = group or "group"
    return tab
