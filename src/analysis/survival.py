"""Survival (retention) study: how long customers stay, and what is associated with leaving.

Every function takes one row per customer (the ``lifetimes`` table, see
:func:`analysis.derive.lifetimes`) and column names, and returns a new
DataFrame or a small result object. Time is in whatever unit the ``duration``
column uses (the lifetimes table has days and months; the report uses months).

Left truncation (late entry): customers who signed up before the data window
are only seen because they were still customers when the window opened. Pass
their tenure at the window start as ``entry``; they then join the risk set only
after that tenure (risk interval ``(entry, duration]``, as in R's
``Surv(entry, duration, event)``).

Engines: statsmodels ``SurvfuncRight`` (Kaplan-Meier, with entry),
``survdiff`` (log-rank) and ``PHReg`` (Cox, Efron/Breslow ties, strata,
entry). Added here: log-log intervals, medians with intervals, restricted mean
survival time (RMST) and its variance, pairwise Holm-adjusted log-rank tests,
the Grambsch-Therneau proportional-hazards test, Harrell's concordance with
left truncation, Aalen-Johansen cumulative incidence with left truncation,
life-table hazards with Poisson intervals, and plain-language sentences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from analysis.errors import DataError, ParamsError, Problem, examples_of

TABLE = "lifetimes"
ALL = "all"  # label of the single group when no grouping column is given

__all__ = [
    "CoxResult",
    "LogrankResult",
    "RetentionReport",
    "at_risk_table",
    "cif_at",
    "cohort_matrix",
    "cohort_survival",
    "concordance_index",
    "cox",
    "cox_stratified_refit",
    "cumulative_incidence",
    "drop_small_groups",
    "hazard_over_tenure",
    "holm",
    "kaplan_meier",
    "logrank",
    "median_survival",
    "ph_test",
    "retention_report",
    "rmst",
    "sentence_cif",
    "sentence_hazard_peak",
    "sentence_hazard_ratio",
    "sentence_left_truncation",
    "sentence_logrank",
    "sentence_median",
    "sentence_ph",
    "sentence_rmst_difference",
    "sentence_survival_at",
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
) -> tuple[pd.DataFrame, dict]:
    """Return a clean working frame with columns _t, _e, _entry, _g (+ extra) and notes.

    Rows with entry == duration are dropped: they are never at risk.
    """
    needed = [duration, event] + [c for c in (entry, group) if c] + list(extra)
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
    if problems:
        raise DataError(f"{TABLE}: {len(problems)} problem(s) in the survival input", problems)
    work = pd.DataFrame({"_t": t, "_e": ev.astype(np.int8), "_entry": en}, index=df.index)
    if group:
        g = df[group]
        work["_g"] = g.astype(object).where(g.notna(), "(missing)")
    else:
        work["_g"] = ALL
    for c in extra:
        work[c] = df[c]
    never = (work["_entry"] > 0) & (work["_entry"] >= work["_t"])
    info = {
        "n_input": int(len(work)),
        "n_never_at_risk": int(never.sum()),
        "n_left_truncated": int(((work["_entry"] > 0) & ~never).sum()),
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


def drop_small_groups(
    df: pd.DataFrame, *, group: str, min_group_size: int
) -> tuple[pd.DataFrame, list]:
    """Remove rows of groups with fewer than ``min_group_size`` customers.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per customer.
    group : str
        Grouping column.
    min_group_size : int
        Smallest group that may be shown.

    Returns
    -------
    (pandas.DataFrame, list)
        The remaining rows (a new frame) and the suppressed group labels.
    """
    sizes = df[group].value_counts(dropna=False)
    small = [g for g, n in sizes.items() if n < min_group_size]
    keep = ~df[group].isin(small)
    return df.loc[keep].copy(), small


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


def _km_core(t, e, entry):
    """Return event times, at-risk, events, S, var(log S) for one group."""
    if e.sum() == 0:
        return (np.array([]),) * 5
    use = entry is not None and np.any(np.asarray(entry) > 0)
    sf = SurvfuncRight(t, e, entry=_entry_eff(entry) if use else None)
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

    Returns
    -------
    pandas.DataFrame
        One row per group and distinct event time: [group], time (duration
        unit), at_risk, events, survival, se (Greenwood SE of survival),
        ci_lower, ci_upper.
    """
    z = _z(alpha)
    work, _ = _prepare(df, duration=duration, event=event, entry=entry, group=group)
    parts = []
    for lev, sub in _iter_groups(work):
        tt, n, d, s, varlog = _km_core(
            sub["_t"].to_numpy(), sub["_e"].to_numpy(), sub["_entry"].to_numpy() if entry else None
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
) -> pd.DataFrame:
    """Estimate the share of customers still active at given tenures, with intervals.

    Parameters
    ----------
    df, duration, event, group, entry, alpha, conf_type
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
    work, _ = _prepare(df, duration=duration, event=event, entry=entry, group=group)
    parts = []
    for lev, sub in _iter_groups(work):
        t = sub["_t"].to_numpy()
        tt, n, d, s, varlog = _km_core(
            t, sub["_e"].to_numpy(), sub["_entry"].to_numpy() if entry else None
        )
        lo, hi = _ci(s, varlog, z, conf_type)
        km = pd.DataFrame(
            {"time": tt, "survival": s, "se": s * np.sqrt(varlog), "ci_lower": lo, "ci_upper": hi}
        )
        vals = _step_lookup(km, times, float(t.max()))
        en = sub["_entry"].to_numpy()
        risk = [int(((t >= h) & (en <= h)).sum()) for h in np.asarray(times, dtype=float)]
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
) -> pd.DataFrame:
    """Estimate the median tenure (time by which half have churned) with an interval.

    The interval is the set of times whose pointwise survival interval
    contains 0.5 (Brookmeyer-Crowley style, as R's ``print.survfit``).

    Returns
    -------
    pandas.DataFrame
        [group], n, events, median, ci_lower, ci_upper (duration unit; NaN
        where not reached within follow-up), max_time (longest follow-up).
    """
    z = _z(alpha)
    work, _ = _prepare(df, duration=duration, event=event, entry=entry, group=group)
    rows = []
    for lev, sub in _iter_groups(work):
        tt, n, d, s, varlog = _km_core(
            sub["_t"].to_numpy(), sub["_e"].to_numpy(), sub["_entry"].to_numpy() if entry else None
        )
        lo, hi = _ci(s, varlog, z, conf_type)
        lo_f = np.where(np.isnan(lo), 0.0, lo)  # undefined lower band after S hits 0
        hi_f = np.where(np.isnan(hi), np.inf, hi)
        row = {
            "n": int(len(sub)),
            "events": int(sub["_e"].sum()),
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


def _rmst_one(t, e, entry, horizon):
    tt, n, d, s, _ = _km_core(t, e, entry)
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


def rmst(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    horizon: float,
    group: str | None = None,
    entry: str | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Estimate the restricted mean survival time: average tenure within the first ``horizon``.

    RMST is the area under the Kaplan-Meier curve from 0 to ``horizon``
    (duration unit), i.e. the expected number of time units a customer stays
    during the first ``horizon``. Its variance is the Greenwood-type formula
    sum_k A_k^2 d_k / (n_k (n_k - d_k)), A_k the area from event time t_k to
    the horizon (Klein & Moeschberger 2003, sec. 4.5; as in R's survRM2).

    Returns
    -------
    pandas.DataFrame
        Rows with kind "estimate": [group], horizon, rmst, se, ci_lower,
        ci_upper, n, events. When grouped, further rows with kind
        "difference" (group = "A - B") and a two-sided p_value, for every
        pair of groups. A group whose longest follow-up is shorter than the
        horizon gets NaN (the curve is unknown there).
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
    work, _ = _prepare(df, duration=duration, event=event, entry=entry, group=group)
    rows = []
    for lev, sub in _iter_groups(work):
        t = sub["_t"].to_numpy()
        e_sub = sub["_e"].to_numpy()
        reaches_zero = (
            bool(e_sub[t == t.max()].any())
            and _km_core(t, e_sub, sub["_entry"].to_numpy() if entry else None)[3][-1] == 0
        )
        if t.max() < horizon and not reaches_zero:
            est, se = np.nan, np.nan
        else:
            est, se = _rmst_one(
                t, sub["_e"].to_numpy(), sub["_entry"].to_numpy() if entry else None, horizon
            )
        rows.append(
            {
                "kind": "estimate",
                "group": lev,
                "horizon": float(horizon),
                "rmst": est,
                "se": se,
                "ci_lower": est - z * se,
                "ci_upper": est + z * se,
                "n": int(len(sub)),
                "events": int(sub["_e"].sum()),
                "p_value": np.nan,
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


def _risk_counts(t, e, entry, utimes):
    """Return at-risk counts and event counts at ``utimes`` (risk set: entry < u <= t)."""
    ts = np.sort(t)
    n_time = len(t) - np.searchsorted(ts, utimes, side="left")  # t >= u
    es = np.sort(_entry_eff(entry))
    n_entry = len(entry) - np.searchsorted(es, utimes, side="left")  # entry >= u
    ev = np.sort(t[e == 1])
    d = np.searchsorted(ev, utimes, side="right") - np.searchsorted(ev, utimes, side="left")
    return (n_time - n_entry).astype(float), d.astype(float)


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
) -> LogrankResult:
    """Test whether retention curves differ between groups (log-rank test).

    Parameters
    ----------
    df, duration, event, entry
        As in :func:`kaplan_meier`.
    group : str
        Column with two or more groups.

    Returns
    -------
    LogrankResult
        Overall k-group test, observed/expected table and all pairwise tests
        with Holm-adjusted p-values.
    """
    work, _ = _prepare(df, duration=duration, event=event, entry=entry, group=group)
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
    codes = pd.Categorical(g, categories=levels).codes
    use_entry = en if (entry and np.any(en > 0)) else None
    try:
        chisq, p = survdiff(t, e, codes, entry=use_entry)
    except np.linalg.LinAlgError:  # no events, or no information to compare
        chisq, p = np.nan, np.nan
    utimes = np.unique(t[e == 1])
    n_all, d_all = _risk_counts(t, e, en, utimes)
    tab = []
    for k, lev in enumerate(levels):
        m = codes == k
        n_g, d_g = _risk_counts(t[m], e[m], en[m], utimes)
        with np.errstate(divide="ignore", invalid="ignore"):
            exp_g = np.nansum(np.where(n_all > 0, d_all * n_g / n_all, 0.0))
        tab.append(
            {"group": lev, "n": int(m.sum()), "observed": int(d_g.sum()), "expected": float(exp_g)}
        )
    pairs = []
    for i in range(len(levels)):
        for j in range(i + 1, len(levels)):
            m = (codes == i) | (codes == j)
            if e[m].sum() == 0:
                stat_ij, p_ij = np.nan, np.nan
            else:
                try:
                    stat_ij, p_ij = survdiff(
                        t[m], e[m], codes[m], entry=en[m] if use_entry is not None else None
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
# Concordance
# ----------------------------------------------------------------------------


def _fenwick_counts(
    point_key, point_score, query_key, query_score, n_scores, strict=True, chunk=256
):
    """Count points with key > query key (>= if not strict) and score <, == the query score.

    Offline 2-D dominance counting: points sorted by key (descending) are
    added to a Fenwick tree over score ranks in chunks; pairs inside the
    current chunk are counted by brute force.
    """
    order = np.argsort(-point_key, kind="stable")
    pk = point_key[order]
    ps = point_score[order]
    # number of points with key > q (or >= q): prefix length in descending order
    neg = -pk  # ascending
    side = "left" if strict else "right"
    plen = np.searchsorted(neg, -query_key, side=side)
    less = np.zeros(len(query_key), dtype=np.int64)
    equal = np.zeros(len(query_key), dtype=np.int64)

    tree = np.zeros(n_scores + 2, dtype=np.int64)  # last slot: sink for overflowing updates
    nbits = int(n_scores + 1).bit_length()

    def tree_prefix(idx):  # sum of counts for score ranks < idx (1-based tree; tree[0] = 0)
        res = np.zeros(len(idx), dtype=np.int64)
        i = idx.copy()
        for _ in range(nbits):
            res += tree[i]
            i &= i - 1  # drop the lowest set bit
        return res

    def tree_add(scores):
        i = scores + 1
        for _ in range(nbits):
            np.add.at(tree, i, 1)
            i = np.minimum(i + (i & -i), n_scores + 1)
            if i.min() > n_scores:
                break

    qorder = np.argsort(plen, kind="stable")
    qplen = plen[qorder]
    n_points = len(pk)
    for start in range(0, max(n_points, 1) + 1, chunk):
        stop = start + chunk
        lo_q = np.searchsorted(qplen, start, side="left")
        hi_q = np.searchsorted(qplen, stop, side="left")
        if hi_q > lo_q:
            qi = qorder[lo_q:hi_q]
            qs = query_score[qi]
            both = tree_prefix(np.concatenate([qs, qs + 1]))
            base_less, base_leq = both[: len(qs)], both[len(qs) :]
            block = ps[start:stop]
            for b0 in range(0, len(qi), 4096):
                sl = slice(b0, b0 + 4096)
                lim = (plen[qi[sl]] - start)[:, None]
                cols = np.arange(len(block))[None, :]
                inside = cols < lim
                less[qi[sl]] = base_less[sl] + (inside & (block[None, :] < qs[sl, None])).sum(1)
                equal[qi[sl]] = (base_leq[sl] - base_less[sl]) + (
                    inside & (block[None, :] == qs[sl, None])
                ).sum(1)
        if start < n_points:
            tree_add(ps[start:stop])
    return less, equal, plen


def concordance_index(time, event, score, entry=None, strata=None) -> dict:
    """Compute Harrell's C: how often the customer with the higher risk score churns first.

    A pair is comparable when customer i churns at t_i while customer j is
    at risk at t_i: j's end is later (or j is censored at t_i) and j entered
    before t_i (left truncation). Pairs with tied event times are not
    comparable; tied scores count one half. Pairs are formed within strata.

    Parameters
    ----------
    time, event, score : array_like
        Durations, 1/0 churn indicators, risk scores (higher = churns sooner).
    entry : array_like, optional
        Tenure at first observation.
    strata : array_like, optional
        Pairs are only formed within the same stratum.

    Returns
    -------
    dict
        concordance, concordant, discordant, tied_score, comparable.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(int)
    score = np.asarray(score, dtype=float)
    entry = np.zeros_like(time) if entry is None else np.asarray(entry, dtype=float)
    strata = (
        np.zeros(len(time), dtype=np.int64)
        if strata is None
        else pd.factorize(np.asarray(strata))[0]
    )
    tot = {"concordant": 0, "discordant": 0, "tied_score": 0}
    for s in np.unique(strata):
        m = strata == s
        t, e, sc, en = time[m], event[m], score[m], _entry_eff(entry[m])
        ev = np.flatnonzero(e == 1)
        if len(ev) == 0:
            continue
        _, t_rank = np.unique(t, return_inverse=True)
        key = 2 * t_rank.astype(np.int64) + (1 - e)  # censored at t ranks after events at t
        uscore, s_rank = np.unique(sc, return_inverse=True)
        s_rank = s_rank.astype(np.int64)
        ns = len(uscore)
        less, eq, plen = _fenwick_counts(key, s_rank, key[ev], s_rank[ev], ns, strict=True)
        total = plen
        # remove customers who entered at or after t_i (not yet at risk): entry_j >= t_i
        less2, eq2, plen2 = _fenwick_counts(en, s_rank, t[ev], s_rank[ev], ns, strict=False)
        less = less - less2
        eq = eq - eq2
        total = total - plen2
        greater = total - less - eq
        # concordant: the churner has the higher score than the one still at risk
        tot["concordant"] += int(less.sum())
        tot["discordant"] += int(greater.sum())
        tot["tied_score"] += int(eq.sum())
    comparable = tot["concordant"] + tot["discordant"] + tot["tied_score"]
    c = (tot["concordant"] + 0.5 * tot["tied_score"]) / comparable if comparable else np.nan
    return {"concordance": float(c), **tot, "comparable": int(comparable)}


# ----------------------------------------------------------------------------
# Cox regression
# ----------------------------------------------------------------------------


@dataclass
class CoxResult:
    """Result of :func:`cox`.

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by term: coef, se, hazard_ratio, ci_lower, ci_upper, z, p_value,
        covariate, level (None for numeric terms).
    ph_test : pandas.DataFrame
        Indexed by term plus "GLOBAL": chisq, df, p_value (Grambsch-Therneau
        score test of proportional hazards).
    concordance : float
        Harrell's C of the linear predictor (within strata, left truncation aware).
    reference_levels : dict
        Reference level of each categorical covariate.
    n, n_events, n_left_truncated, n_dropped_missing : int
    loglik : float
        Log partial likelihood at the estimate.
    spec : dict
        The arguments of the fit (used by :func:`cox_stratified_refit`).
    """

    summary: pd.DataFrame
    ph_test: pd.DataFrame
    concordance: float
    reference_levels: dict
    n: int
    n_events: int
    n_left_truncated: int
    n_dropped_missing: int
    loglik: float
    spec: dict = field(default_factory=dict)
    concordance_detail: dict = field(default_factory=dict)
    converged: bool = True

    def ph_failures(self, alpha: float = 0.05) -> list[str]:
        """Return covariates with a term whose PH test fails at ``alpha`` after Holm adjustment.

        Holm's adjustment across terms keeps one of several tests from
        flagging by chance (3 terms at 5% would give a false alarm in about
        one model of seven).
        """
        t = self.ph_test.drop(index="GLOBAL", errors="ignore")
        t = t[t["p_value"].notna()]
        if t.empty:
            return []
        adj = holm(t["p_value"].to_numpy())
        bad = t.index[adj < alpha]
        cov = self.summary.loc[bad, "covariate"] if len(bad) else []
        return list(dict.fromkeys(cov))


def _is_categorical(s: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))


def _design(df: pd.DataFrame, covariates, reference: dict | None):
    """Build the numeric design matrix with treatment coding against stated references."""
    reference = dict(reference or {})
    cols, names, covs, levels, refs = [], [], [], [], {}
    for c in covariates:
        s = df[c]
        if _is_categorical(s):
            vals = s.astype(object)
            counts = vals.value_counts()
            if c in reference:
                ref = reference[c]
                if ref not in counts.index:
                    raise ParamsError(
                        f"reference level {ref!r} of {c} is not in the data",
                        [
                            Problem(
                                "survival",
                                c,
                                "reference_level",
                                f"{ref!r} not found",
                                examples=tuple(counts.index[:5]),
                                fix="choose one of the listed levels",
                            )
                        ],
                    )
            else:
                ref = counts.index[0]  # most frequent level
            refs[c] = ref
            try:
                others = sorted([v for v in counts.index if v != ref])
            except TypeError:
                others = sorted([v for v in counts.index if v != ref], key=str)
            for lev in others:
                cols.append((vals == lev).to_numpy(dtype=float))
                names.append(f"{c}[{lev}]")
                covs.append(c)
                levels.append(lev)
        else:
            cols.append(s.to_numpy(dtype=float))
            names.append(c)
            covs.append(c)
            levels.append(None)
    x = np.column_stack(cols) if cols else np.zeros((len(df), 0))
    return x, names, covs, levels, refs


def _transform_time(kind, times_ev, t, e, entry):
    if kind == "identity":
        return times_ev.astype(float)
    if kind == "log":
        return np.log(times_ev)
    if kind == "rank":
        return stats.rankdata(times_ev)
    if kind == "km":
        tt, _, _, s, _ = _km_core(t, e, entry if np.any(entry > 0) else None)
        idx = np.searchsorted(tt, times_ev, side="left") - 1  # left-continuous S(t-)
        s_left = np.where(idx >= 0, s[np.clip(idx, 0, None)], 1.0)
        return 1.0 - s_left
    raise ParamsError(
        f"unknown PH-test time transform {kind!r}",
        [
            Problem(
                "survival",
                "ph_transform",
                "choice",
                f"got {kind!r}",
                fix="use 'km', 'rank', 'identity' or 'log'",
            )
        ],
    )


class _RiskSums:
    """Sum per-customer quantities over the risk sets {entry < u_j <= t} at times u_j.

    Customers are binned once by how many of the times u lie below their end
    (and their entry); each sum is then two weighted bincounts and two short
    reverse cumulative sums, so a Newton step costs O(n) per covariate pair.
    """

    def __init__(self, t, entry, u):
        self.size = len(u) + 1
        # bin = #{u <= value}; value >= u_j  <=>  bin > j
        self.bin_t = np.searchsorted(u, t, side="right")
        bin_e = np.searchsorted(u, _entry_eff(entry), side="right")
        # only late entrants can leave a risk set through entry; skip the others
        self.late = np.flatnonzero(bin_e > 0)
        self.bin_e = bin_e[self.late]
        self.n_u = len(u)

    def __call__(self, q):
        a = np.bincount(self.bin_t, weights=q, minlength=self.size)[::-1].cumsum()[::-1]
        if len(self.late) == 0:
            return a[1:]
        b = np.bincount(self.bin_e, weights=q[self.late], minlength=self.size)
        b = b[::-1].cumsum()[::-1]
        return (a - b)[1:]


class _CoxStratum:
    """Precomputed risk-set bookkeeping of one stratum for the vectorised Cox fit."""

    def __init__(self, t, e, entry, x, ties):
        self.x = x
        evi = np.flatnonzero(e == 1)
        self.evi = evi
        self.u, self.inv = np.unique(t[evi], return_inverse=True)
        self.d = np.bincount(self.inv, minlength=len(self.u)).astype(float)
        self.rsum = _RiskSums(t, entry, self.u)
        # Efron: the k-th of d tied events sees the risk set minus k/d of the tied set
        starts = np.concatenate([[0], np.cumsum(self.d)[:-1]]).astype(np.int64)
        order = np.argsort(self.inv, kind="stable")
        pos_in_tie = np.empty(len(evi))
        pos_in_tie[order] = np.arange(len(evi)) - np.repeat(starts, self.d.astype(np.int64))
        self.pair_j = self.inv
        self.frac = pos_in_tie / self.d[self.inv] if ties == "efron" else np.zeros(len(evi))
        self.xsum_events = x[evi].sum(0)

    def parts(self, beta, want_hessian=True):
        x = self.x
        p = x.shape[1]
        eta = x @ beta
        k = eta.max()
        w = np.exp(eta - k)
        J = len(self.u)
        s0 = self.rsum(w)
        d0 = np.bincount(self.inv, weights=w[self.evi], minlength=J)
        wx = w[:, None] * x
        s1 = np.column_stack([self.rsum(wx[:, a]) for a in range(p)])
        d1 = np.column_stack(
            [np.bincount(self.inv, weights=wx[self.evi, a], minlength=J) for a in range(p)]
        )
        pj, c = self.pair_j, self.frac
        den = s0[pj] - c * d0[pj]
        loglik = float(eta[self.evi].sum() - np.sum(np.log(den) + k))
        m = (s1[pj] - c[:, None] * d1[pj]) / den[:, None]
        grad = self.xsum_events - m.sum(0)
        if not want_hessian:
            return loglik, grad, None
        a_j = np.bincount(pj, weights=1 / den, minlength=J)
        b_j = np.bincount(pj, weights=c / den, minlength=J)
        info = -(m.T @ m)
        for a in range(p):
            for b in range(a, p):
                q = wx[:, a] * x[:, b]
                s2 = self.rsum(q)
                d2 = np.bincount(self.inv, weights=q[self.evi], minlength=J)
                val = float(a_j @ s2 - b_j @ d2)
                info[a, b] += val
                if a != b:
                    info[b, a] += val
        return loglik, grad, info

    def zph_parts(self, beta, g):
        """Return the score U2 and information blocks for adding x * g(t) at (beta, 0).

        ``g`` holds g(t) for each event (in the order of ``self.evi``). Tied
        events use the same Efron (or Breslow) risk-set weights as the fit.
        """
        x = self.x
        p = x.shape[1]
        eta = x @ beta
        w = np.exp(eta - eta.max())
        J = len(self.u)
        s0 = self.rsum(w)
        d0 = np.bincount(self.inv, weights=w[self.evi], minlength=J)
        wx = w[:, None] * x
        s1 = np.column_stack([self.rsum(wx[:, a]) for a in range(p)])
        d1 = np.column_stack(
            [np.bincount(self.inv, weights=wx[self.evi, a], minlength=J) for a in range(p)]
        )
        pj, c = self.pair_j, self.frac
        den = s0[pj] - c * d0[pj]
        m = (s1[pj] - c[:, None] * d1[pj]) / den[:, None]
        u2 = (g[:, None] * (x[self.evi] - m)).sum(0)
        blocks = []
        for wv in (np.ones_like(g), g, g**2):
            a_j = np.bincount(pj, weights=wv / den, minlength=J)
            b_j = np.bincount(pj, weights=wv * c / den, minlength=J)
            blocks.append((a_j, b_j, -((wv[:, None] * m).T @ m)))
        for a in range(p):
            for b in range(a, p):
                q = wx[:, a] * x[:, b]
                s2 = self.rsum(q)
                d2 = np.bincount(self.inv, weights=q[self.evi], minlength=J)
                for a_j, b_j, mat in blocks:
                    val = float(a_j @ s2 - b_j @ d2)
                    mat[a, b] += val
                    if a != b:
                        mat[b, a] += val
        return u2, blocks[0][2], blocks[1][2], blocks[2][2]


def _cox_fit(t, e, entry, x, strata, ties, max_iter=50, tol=1e-9):
    """Fit Cox coefficients by Newton-Raphson with vectorised risk-set sums.

    Returns beta, covariance, log partial likelihood, converged flag. Risk
    sets are (entry, duration]; ties by Efron or Breslow.
    """
    mu = x.mean(0)
    xc = x - mu  # centring changes nothing but the numerics
    codes = np.zeros(len(t), dtype=np.int64) if strata is None else strata
    strata_parts = []
    for s in np.unique(codes):
        m = codes == s
        if e[m].sum() > 0:
            strata_parts.append(_CoxStratum(t[m], e[m], entry[m], xc[m], ties))
    p = x.shape[1]

    def total(beta, hess=True):
        ll, g, h = 0.0, np.zeros(p), np.zeros((p, p))
        for sp in strata_parts:
            a, b, c = sp.parts(beta, hess)
            ll += a
            g += b
            if hess:
                h += c
        return ll, g, h

    beta = np.zeros(p)
    ll, g, h = total(beta)
    converged = False
    for _ in range(max_iter):
        step = np.linalg.solve(h, g)
        new = beta + step
        ll_new, g_new, h_new = total(new)
        halvings = 0
        while (not np.isfinite(ll_new) or ll_new < ll - 1e-12) and halvings < 20:
            step /= 2
            new = beta + step
            ll_new, g_new, h_new = total(new)
            halvings += 1
        done = abs(ll_new - ll) <= tol * (abs(ll) + tol) and np.max(np.abs(step)) < 1e-6
        beta, ll, g, h = new, ll_new, g_new, h_new
        if done:
            converged = True
            break
    cov = np.linalg.inv(h)
    return beta, cov, ll, converged


def ph_test(
    time, event, x, beta, *, entry=None, strata=None, transform="km", names=None, ties="efron"
) -> pd.DataFrame:
    """Test proportional hazards with the Grambsch-Therneau score test.

    For each term k this is the score test, at the fitted coefficients, for
    adding x_k * g(t) to the model (g = transformed time), i.e. for a slope
    in the scaled Schoenfeld residuals over g(t); the global test adds all
    of them. This is the test of R's ``cox.zph`` (survival >= 3.0). Tied
    event times use the fit's method (Efron or Breslow).

    Returns
    -------
    pandas.DataFrame
        Indexed by term and "GLOBAL": chisq, df, p_value.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(int)
    x = np.asarray(x, dtype=float)
    x = x - x.mean(0)  # residuals and variances do not depend on centring
    p = x.shape[1]
    entry = np.zeros_like(time) if entry is None else np.asarray(entry, dtype=float)
    strata = (
        np.zeros(len(time), dtype=np.int64)
        if strata is None
        else pd.factorize(np.asarray(strata))[0]
    )
    # g(t) from the pooled data, as R does
    g_full = np.zeros(len(time))
    ev_mask = event == 1
    g_full[ev_mask] = _transform_time(transform, time[ev_mask], time, event, entry)
    u2 = np.zeros(p)
    i11 = np.zeros((p, p))
    i12 = np.zeros((p, p))
    i22 = np.zeros((p, p))
    for s in np.unique(strata):
        m = strata == s
        if event[m].sum() == 0:
            continue
        part = _CoxStratum(time[m], event[m], entry[m], x[m], ties)
        g = g_full[m][part.evi]
        a, b11, b12, b22 = part.zph_parts(np.asarray(beta, dtype=float), g)
        u2 += a
        i11 += b11
        i12 += b12
        i22 += b22
    rows = {}
    try:
        inv11 = np.linalg.inv(i11)
        schur = i22 - i12.T @ inv11 @ i12
        glob = float(u2 @ np.linalg.solve(schur, u2))
    except np.linalg.LinAlgError:
        inv11, schur, glob = None, None, np.nan
    names = names or [f"x{k}" for k in range(p)]
    for k in range(p):
        if inv11 is None:
            rows[names[k]] = (np.nan, 1, np.nan)
            continue
        a_k = i12[:, k]
        var_k = i22[k, k] - a_k @ inv11 @ a_k
        chisq = float(u2[k] ** 2 / var_k) if var_k > 0 else np.nan
        rows[names[k]] = (chisq, 1, float(stats.chi2.sf(chisq, 1)))
    rows["GLOBAL"] = (glob, p, float(stats.chi2.sf(glob, p)) if np.isfinite(glob) else np.nan)
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["chisq", "df", "p_value"])
    out.index.name = "term"
    return out


def cox(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    covariates,
    strata=None,
    entry: str | None = None,
    ties: str = "efron",
    reference: dict | None = None,
    alpha: float = 0.05,
    ph_transform: str = "km",
) -> CoxResult:
    """Fit a Cox proportional-hazards model of churn.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per customer.
    duration, event, entry : str
        As in :func:`kaplan_meier`.
    covariates : list of str
        Numeric columns enter as they are (hazard ratio per unit); other
        columns are categorical and expanded into one term per level,
        ``"column[level]"``, against a reference level.
    strata : str or list of str, optional
        Columns whose combinations get their own baseline hazard (no hazard
        ratio is estimated for them).
    ties : {"efron", "breslow"}
        Handling of tied churn times.
    reference : dict, optional
        Reference level per categorical covariate; default the most frequent.
    alpha : float
        1 - confidence level of the hazard-ratio intervals.
    ph_transform : {"km", "rank", "identity", "log"}
        Time scale of the proportional-hazards test.

    Returns
    -------
    CoxResult
        Rows with missing covariates are dropped (count in ``n_dropped_missing``).

    Notes
    -----
    Hazard ratios from observational data are adjusted associations, not
    causal effects.
    """
    z = _z(alpha)
    covariates = list(covariates)
    strata_cols = [strata] if isinstance(strata, str) else list(strata or [])
    if ties not in ("efron", "breslow"):
        raise ParamsError(
            f"ties must be 'efron' or 'breslow', not {ties!r}",
            [
                Problem(
                    "survival",
                    "ties",
                    "choice",
                    f"got {ties!r}",
                    fix="use 'efron' (default) or 'breslow'",
                )
            ],
        )
    if not covariates:
        raise ParamsError(
            "cox needs at least one covariate",
            [
                Problem(
                    "survival",
                    "cox_covariates",
                    "empty",
                    "no covariates",
                    fix="list covariate columns, e.g. [segment, value_tier]",
                )
            ],
        )
    work, info = _prepare(
        df,
        duration=duration,
        event=event,
        entry=entry,
        extra=tuple(dict.fromkeys(covariates + strata_cols)),
    )
    miss = work[covariates + strata_cols].isna().any(axis=1)
    n_missing = int(miss.sum())
    work = work.loc[~miss]
    x, names, covs, levels, refs = _design(work, covariates, reference)
    keep = x.std(axis=0) > 0 if len(x) else np.ones(x.shape[1], bool)
    if not keep.all():
        x = x[:, keep]
        names = [n for n, k in zip(names, keep, strict=True) if k]
        covs = [n for n, k in zip(covs, keep, strict=True) if k]
        levels = [n for n, k in zip(levels, keep, strict=True) if k]
    t = work["_t"].to_numpy()
    e = work["_e"].to_numpy().astype(float)
    en = work["_entry"].to_numpy()
    if strata_cols:
        scodes = np.zeros(len(work), dtype=np.int64)
        for c in strata_cols:
            f = pd.factorize(work[c])[0].astype(np.int64)
            scodes = scodes * (int(f.max()) + 2) + f + 1
        scodes = pd.factorize(scodes)[0]
    else:
        scodes = None
    if e.sum() == 0:
        raise DataError(
            f"{TABLE}.{event}: no churn events; a Cox model cannot be fitted",
            [
                Problem(
                    TABLE,
                    event,
                    "no_events",
                    "all customers censored",
                    int(len(work)),
                    fix="check the churn definition and window",
                )
            ],
        )
    try:
        beta, cov, loglik, converged = _cox_fit(t, e, en, x, scodes, ties)
    except np.linalg.LinAlgError as err:
        raise DataError(
            f"{TABLE}: the Cox model cannot be estimated (singular information matrix)",
            [
                Problem(
                    TABLE,
                    ", ".join(covariates),
                    "singular",
                    "a covariate level has no churn events or levels are collinear",
                    fix="merge rare levels or drop redundant covariates",
                )
            ],
        ) from err
    se = np.sqrt(np.diag(cov))
    zval = beta / se
    summary = pd.DataFrame(
        {
            "coef": beta,
            "se": se,
            "hazard_ratio": np.exp(beta),
            "ci_lower": np.exp(beta - z * se),
            "ci_upper": np.exp(beta + z * se),
            "z": zval,
            "p_value": 2 * stats.norm.sf(np.abs(zval)),
            "covariate": covs,
            "level": levels,
        },
        index=pd.Index(names, name="term"),
    )
    ph = ph_test(
        t, e, x, beta, entry=en, strata=scodes, transform=ph_transform, names=names, ties=ties
    )
    conc = concordance_index(t, e, x @ beta, entry=en, strata=scodes)
    return CoxResult(
        summary=summary,
        ph_test=ph,
        concordance=conc["concordance"],
        reference_levels=refs,
        n=int(len(work)),
        n_events=int(e.sum()),
        n_left_truncated=int((en > 0).sum()),
        n_dropped_missing=n_missing,
        loglik=float(loglik),
        spec={
            "duration": duration,
            "event": event,
            "covariates": covariates,
            "strata": strata_cols,
            "entry": entry,
            "ties": ties,
            "reference": refs,
            "alpha": alpha,
            "ph_transform": ph_transform,
        },
        concordance_detail=conc,
        converged=converged,
    )


def cox_stratified_refit(
    df: pd.DataFrame, result: CoxResult, *, alpha: float = 0.05
) -> tuple[CoxResult, list[str]]:
    """Refit a Cox model with covariates that fail the PH test moved into strata.

    A categorical covariate whose hazard ratio changes with tenure cannot be
    summarised by one hazard ratio; stratifying on it gives each of its
    levels its own baseline churn curve and keeps the other hazard ratios
    valid. Numeric covariates that fail stay in the model (stratifying on
    them is not meaningful) and are reported by the caller.

    Returns
    -------
    (CoxResult, list of str)
        The refitted model (or ``result`` itself if nothing moved) and the
        covariates moved into strata.
    """
    failing = result.ph_failures(alpha)
    movable = [c for c in failing if _is_categorical(df[c])]
    if not movable:
        return result, []
    spec = dict(result.spec)
    covs = [c for c in spec["covariates"] if c not in movable]
    if not covs:
        return result, []
    new = cox(
        df,
        duration=spec["duration"],
        event=spec["event"],
        covariates=covs,
        strata=list(spec["strata"]) + movable,
        entry=spec["entry"],
        ties=spec["ties"],
        reference={k: v for k, v in spec["reference"].items() if k in covs},
        alpha=spec["alpha"],
        ph_transform=spec["ph_transform"],
    )
    return new, movable


# ----------------------------------------------------------------------------
# Competing risks: why customers leave
# ----------------------------------------------------------------------------


def cumulative_incidence(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    cause: str,
    group: str | None = None,
    entry: str | None = None,
    alpha: float = 0.05,
    unknown_label: str = "unknown",
) -> pd.DataFrame:
    """Estimate the cumulative incidence of churn by reason (Aalen-Johansen).

    CIF_k(t) = sum over event times t_j <= t of S(t_j-) d_kj / n_j, with S the
    all-cause Kaplan-Meier curve. Unlike 1 - KM per reason (which treats other
    reasons as censoring and overstates every reason), the CIFs of all reasons
    add up to 1 - S(t). Variance: delta method (Marubini & Valsecchi 1995,
    as in statsmodels' ``CumIncidenceRight``), with risk sets allowing left
    truncation. Intervals use the log(-log) transform.

    Parameters
    ----------
    df, duration, event, group, entry, alpha
        As in :func:`kaplan_meier`.
    cause : str
        Column with the churn reason of churned customers; missing reasons of
        churned customers are labelled ``unknown_label``.

    Returns
    -------
    pandas.DataFrame
        [group], cause, time, cif, se, ci_lower, ci_upper (one row per cause
        and distinct churn time).
    """
    z = _z(alpha)
    work, _ = _prepare(df, duration=duration, event=event, entry=entry, group=group, extra=(cause,))
    reason = work[cause].astype(object)
    reason = reason.where(reason.notna(), unknown_label)
    work = work.assign(_c=np.where(work["_e"] == 1, reason, None))
    parts = []
    for lev, sub in _iter_groups(work):
        t = sub["_t"].to_numpy()
        e = sub["_e"].to_numpy().astype(float)
        en = sub["_entry"].to_numpy()
        if e.sum() == 0:
            continue
        u = np.unique(t[e == 1])
        n, d = _risk_counts(t, e, en, u)
        with np.errstate(divide="ignore", invalid="ignore"):
            haz = np.where(n > 0, d / n, 0.0)
        s = np.cumprod(1 - haz)
        s_prev = np.concatenate([[1.0], s[:-1]])
        causes = sorted(pd.unique(sub.loc[sub["_e"] == 1, "_c"]), key=str)
        with np.errstate(divide="ignore", invalid="ignore"):
            ra_all = np.where(n > d, d / (n * (n - d)), 0.0)
        for c in causes:
            tc = np.sort(t[(e == 1) & (sub["_c"].to_numpy() == c)])
            dk = np.searchsorted(tc, u, side="right") - np.searchsorted(tc, u, side="left")
            dk = dk.astype(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                sp0 = np.where(n > 0, s_prev / n, 0.0)
            f = np.cumsum(sp0 * dk)
            v = f**2 * np.cumsum(ra_all) - 2 * f * np.cumsum(f * ra_all) + np.cumsum(f**2 * ra_all)
            with np.errstate(divide="ignore", invalid="ignore"):
                v += np.cumsum(sp0**2 * np.where(n > 0, (n - dk) * dk / n, 0.0))
                ra = np.where(n > 0, sp0 * dk / n, 0.0)
            v += -2 * f * np.cumsum(ra) + 2 * np.cumsum(f * ra)
            se = np.sqrt(np.clip(v, 0, None))
            with np.errstate(divide="ignore", invalid="ignore"):
                theta = z * se / (f * np.log(f))
                lo = f ** np.exp(-theta)
                hi = f ** np.exp(theta)
            ok = (f > 0) & (f < 1) & (se > 0)
            lo = np.where(ok, np.minimum(lo, hi), np.where(f <= 0, 0.0, np.nan))
            hi = np.where(
                ok,
                np.maximum(f ** np.exp(-theta), f ** np.exp(theta)),
                np.where(f <= 0, 0.0, np.nan),
            )
            frame = pd.DataFrame(
                {"cause": c, "time": u, "cif": f, "se": se, "ci_lower": lo, "ci_upper": hi}
            )
            parts.append(_with_group(frame, group, lev))
    cols = ([group] if group else []) + ["cause", "time", "cif", "se", "ci_lower", "ci_upper"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def cif_at(cif: pd.DataFrame, times, *, group: str | None = None) -> pd.DataFrame:
    """Read cumulative incidence curves at given times (step function).

    Parameters
    ----------
    cif : pandas.DataFrame
        Output of :func:`cumulative_incidence`.
    times : sequence of float

    Returns
    -------
    pandas.DataFrame
        [group], cause, horizon, cif, ci_lower, ci_upper.
    """
    keys = ([group] if group else []) + ["cause"]
    rows = []
    for key, sub in cif.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        tt = sub["time"].to_numpy()
        for h in times:
            k = np.searchsorted(tt, h, side="right") - 1
            vals = (
                sub.iloc[k][["cif", "ci_lower", "ci_upper"]].to_numpy(dtype=float)
                if k >= 0
                else np.zeros(3)
            )
            rows.append(
                dict(zip(keys, key, strict=True))
                | {"horizon": float(h), "cif": vals[0], "ci_lower": vals[1], "ci_upper": vals[2]}
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------
# Hazard over tenure, at-risk table, cohorts
# ----------------------------------------------------------------------------


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
) -> pd.DataFrame:
    """Estimate the churn rate per unit of tenure (life-table hazard) with intervals.

    For each tenure interval (a, a + width] the hazard is churn events divided
    by the customer time at risk in it (customer-months when durations are in
    months), with exact Poisson (Garwood) intervals. The smoothed hazard pools
    events and exposure over a centred window of ``smooth`` intervals.

    Returns
    -------
    pandas.DataFrame
        [group], start, end, at_risk_start, exposure, events, hazard,
        ci_lower, ci_upper, hazard_smooth, smooth_ci_lower, smooth_ci_upper
        (rates per duration unit), churn_prob (1 - exp(-hazard * width):
        chance of leaving within the interval given active at its start).
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
    work, _ = _prepare(df, duration=duration, event=event, entry=entry, group=group)
    top = float(max_time if max_time is not None else work["_t"].max())
    edges = np.arange(0.0, top + width * 0.999, width)
    if len(edges) < 2:
        edges = np.array([0.0, width])
    parts = []
    for lev, sub in _iter_groups(work):
        t = sub["_t"].to_numpy()
        e = sub["_e"].to_numpy()
        en = sub["_entry"].to_numpy()
        ev_t = np.sort(t[e == 1])
        rows = []
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            expo = np.clip(np.minimum(t, b) - np.maximum(en, a), 0, None).sum()
            lo_side = np.searchsorted(ev_t, a, side="right") if a > 0 else 0
            ev = np.searchsorted(ev_t, b, side="right") - lo_side
            risk = int(((en <= a) & (t > a)).sum())
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


def at_risk_table(
    df: pd.DataFrame,
    *,
    duration: str,
    times,
    entry: str | None = None,
    group: str | None = None,
) -> pd.DataFrame:
    """Count customers under observation at given tenures (for the table under a KM plot).

    A customer counts at tenure t when entry <= t <= duration (observed at t
    and not yet churned or censored before t).

    Returns
    -------
    pandas.DataFrame
        One row per group (index), one column per time.
    """
    cols = [duration] + ([entry] if entry else []) + ([group] if group else [])
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(
            f"{TABLE}: column(s) missing: {', '.join(missing)}",
            [Problem(TABLE, c, "missing_column", "not found") for c in missing],
        )
    t = df[duration].to_numpy(dtype=float)
    en = df[entry].to_numpy(dtype=float) if entry else np.zeros(len(df))
    g = df[group].astype(object).fillna("(missing)") if group else pd.Series(ALL, index=df.index)
    out = {}
    for lev in sorted(pd.unique(g), key=str):
        m = (g == lev).to_numpy()
        out[lev] = [int(((en[m] <= h) & (t[m] >= h)).sum()) for h in times]
    tab = pd.DataFrame.from_dict(out, orient="index", columns=list(times))
    tab.index.name = group or "group"
    return tab


def cohort_survival(
    df: pd.DataFrame,
    *,
    cohort: str,
    duration: str,
    event: str,
    months,
    entry: str | None = None,
    min_group_size: int = 0,
) -> pd.DataFrame:
    """Estimate retention by acquisition cohort at given tenures (Kaplan-Meier per cohort).

    Unlike the raw share of a cohort still active, the KM estimate uses
    customers who are still active but observed for a shorter time (recent
    cohorts) correctly; cells beyond a cohort's follow-up are NaN.

    Returns
    -------
    pandas.DataFrame
        Index: cohort; columns: tenures; values: share still active (0-1).
        Cohorts smaller than ``min_group_size`` are dropped.
    """
    d = df
    if min_group_size:
        d, _ = drop_small_groups(df, group=cohort, min_group_size=min_group_size)
    sa = survival_at(
        d, duration=duration, event=event, times=list(months), group=cohort, entry=entry
    )
    return sa.pivot(index=cohort, columns="horizon", values="survival")


# ----------------------------------------------------------------------------
# Plain-language findings (generated from the numbers; plain text, escape when
# rendering as HTML)
# ----------------------------------------------------------------------------


def _num(x: float, digits: int = 0) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:,.{digits}f}"


def _pct(x: float, digits: int = 0) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def _p(p: float) -> str:
    if not np.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def sentence_median(
    row, *, who: str = "new customers", unit: str = "months", digits: int = 0
) -> str:
    """Describe a median tenure with its interval, e.g. "Half of new customers ... (95% CI 13-15)".

    Parameters
    ----------
    row : mapping
        One row of :func:`median_survival` (median, ci_lower, ci_upper, max_time).
    """
    med, lo, hi = row["median"], row["ci_lower"], row["ci_upper"]
    if not np.isfinite(med):
        return (
            f"More than half of {who} are still active at the end of follow-up "
            f"({_num(row['max_time'], digits)} {unit}); the median tenure is not yet reached."
        )
    ci = (
        f"95% CI {_num(lo, digits)}\u2013{_num(hi, digits)}"
        if np.isfinite(hi)
        else f"95% CI from {_num(lo, digits)}; upper limit not reached"
    )
    return f"Half of {who} have left after {_num(med, digits)} {unit} ({ci})."


def sentence_survival_at(row, *, who: str = "customers", unit: str = "months") -> str:
    """Describe the share still active at a horizon, e.g. "78% of customers are still active after 12 months"."""
    if not np.isfinite(row["survival"]):
        return (
            f"Follow-up is too short to estimate how many {who} are still active after "
            f"{_num(row['horizon'])} {unit}."
        )
    return (
        f"{_pct(row['survival'])} of {who} are still active after {_num(row['horizon'])} "
        f"{unit} (95% CI {_pct(row['ci_lower'])}\u2013{_pct(row['ci_upper'])})."
    )


def sentence_hazard_ratio(
    result: CoxResult, term: str, *, label: str | None = None, reference_label: str | None = None
) -> str:
    """Describe one Cox hazard ratio in words, e.g. "Business customers leave at 0.62 times the rate ..."."""
    r = result.summary.loc[term]
    cov, lev = r["covariate"], r["level"]
    adj = [c for c in result.spec.get("covariates", []) if c != cov]
    adj_txt = f", adjusted for {', '.join(adj)}" if adj else ""
    hr = f"HR {r['hazard_ratio']:.2f}, 95% CI {r['ci_lower']:.2f}\u2013{r['ci_upper']:.2f}"
    if lev is None or (isinstance(lev, float) and np.isnan(lev)):
        subject = label or f"Each additional unit of {cov}"
        return (
            f"{subject} goes with a churn rate {r['hazard_ratio']:.2f} times as high "
            f"({hr}{adj_txt}; an association, not a proven cause)."
        )
    ref = reference_label or f"those with {cov} = {result.reference_levels.get(cov)}"
    subject = label or f"Customers with {cov} = {lev}"
    subject = subject[:1].upper() + subject[1:]
    return (
        f"{subject} leave at {r['hazard_ratio']:.2f} times the rate of {ref} "
        f"({hr}{adj_txt}; an association, not a proven cause)."
    )


def sentence_rmst_difference(row, *, group: str, horizon_unit: str = "months") -> str:
    """Describe an RMST difference row of :func:`rmst` in words."""
    a, b = str(row[group]).split(" - ", 1)
    diff = row["rmst"]
    more = "longer" if diff >= 0 else "shorter"
    return (
        f"Within the first {_num(row['horizon'])} {horizon_unit}, customers with {group} = {a} "
        f"stay on average {_num(abs(diff), 1)} {horizon_unit} {more} than those with "
        f"{group} = {b} (difference {_num(diff, 1)}, 95% CI {_num(row['ci_lower'], 1)} to "
        f"{_num(row['ci_upper'], 1)})."
    )


def sentence_logrank(res: LogrankResult) -> str:
    """Describe the k-group log-rank test in words."""
    what = (
        "Retention differs between"
        if res.p_value < 0.05
        else "The data show no clear retention difference between"
    )
    return (
        f"{what} {res.group} groups (log-rank chi-square {res.statistic:.1f} on {res.dof} "
        f"df, {_p(res.p_value)})."
    )


def sentence_ph(result: CoxResult, *, alpha: float = 0.05, moved: list | None = None) -> str:
    """Describe the proportional-hazards check (and a stratified refit) in words."""
    fails = result.ph_failures(alpha)
    if not fails:
        return (
            "The proportional-hazards check finds no evidence that the hazard ratios change "
            f"with tenure (global {_p(result.ph_test.loc['GLOBAL', 'p_value'])})."
        )
    txt = (
        f"Warning: the hazard ratio of {', '.join(fails)} changes with tenure "
        f"(proportional-hazards test {_p(result.ph_test['p_value'].drop('GLOBAL').min())}), so "
        "a single hazard ratio is an average over tenure."
    )
    if moved:
        txt += (
            f" The model was refitted with {', '.join(moved)} as strata (a separate baseline "
            "for each level); the other hazard ratios below come from that refit."
        )
    return txt


def sentence_cif(cif: pd.DataFrame, *, early: float, late: float, unit: str = "months") -> str:
    """Say which churn reason dominates early and which late, from :func:`cumulative_incidence`."""
    at = cif_at(cif, [early, late])
    e = at[at.horizon == early].sort_values("cif", ascending=False)
    lt = at[at.horizon == late].set_index("cause")["cif"]
    ev = at[at.horizon == early].set_index("cause")["cif"]
    later = (lt - ev.reindex(lt.index).fillna(0)).sort_values(ascending=False)
    if e.empty or later.empty:
        return "Too few churn events with a recorded reason to compare reasons."
    top_e = e.iloc[0]
    top_l = later.index[0]
    row_l = at[(at.horizon == late) & (at.cause == top_l)].iloc[0]
    return (
        f"In the first {_num(early)} {unit} the most common reason for leaving is "
        f"\u201c{top_e['cause']}\u201d ({_pct(top_e['cif'], 1)} of customers, 95% CI "
        f"{_pct(top_e['ci_lower'], 1)}\u2013{_pct(top_e['ci_upper'], 1)}); between "
        f"{_num(early)} and {_num(late)} {unit} most leavers cite \u201c{top_l}\u201d "
        f"({_pct(later.iloc[0], 1)} of customers; {_pct(row_l['cif'], 1)} by {_num(late)} "
        f"{unit}, 95% CI {_pct(row_l['ci_lower'], 1)}\u2013{_pct(row_l['ci_upper'], 1)})."
    )


def sentence_hazard_peak(haz: pd.DataFrame, *, unit: str = "month") -> str:
    """Name the tenure with the highest smoothed churn rate, from :func:`hazard_over_tenure`."""
    h = haz.dropna(subset=["hazard_smooth"])
    h = h[h.exposure > 0]
    if h.empty:
        return "Too little exposure to describe how the churn rate changes with tenure."
    top = h.loc[h.hazard_smooth.idxmax()]
    low = h.loc[h.hazard_smooth.idxmin()]
    return (
        f"The churn rate is highest around {unit} {_num(top['start'])}\u2013{_num(top['end'])} "
        f"of tenure: {_pct(top['hazard_smooth'], 1)} of active customers leave per {unit} "
        f"(95% CI {_pct(top['smooth_ci_lower'], 1)}\u2013{_pct(top['smooth_ci_upper'], 1)}), "
        f"against {_pct(low['hazard_smooth'], 1)} at its lowest ({unit} "
        f"{_num(low['start'])}\u2013{_num(low['end'])})."
    )


def sentence_left_truncation(n_left_truncated: int, n_total: int) -> str:
    """State how many customers entered the data late and how they were handled."""
    if not n_left_truncated:
        return "All customers are observed from signup (no late entry)."
    return (
        f"{n_left_truncated:,} of {n_total:,} customers signed up before the data window; "
        "they count only from their tenure at the window start (late entry), so long-tenure "
        "survivors do not inflate retention."
    )


# ----------------------------------------------------------------------------
# The report: every number the retention notebook shows, computed in one place
# ----------------------------------------------------------------------------


@dataclass
class RetentionReport:
    """Everything the retention report shows (see :func:`retention_report`)."""

    n: int
    n_events: int
    n_left_truncated: int
    group: str | None
    suppressed_groups: list
    horizons: list
    km_all: pd.DataFrame
    km_group: pd.DataFrame | None
    at_risk_all: pd.DataFrame
    at_risk_group: pd.DataFrame | None
    median: pd.DataFrame
    survival_at: pd.DataFrame
    rmst: pd.DataFrame
    logrank: LogrankResult | None
    cox: CoxResult | None
    cox_refit: CoxResult | None
    moved_to_strata: list
    hazard: pd.DataFrame
    cif: pd.DataFrame | None
    findings: list
    notes: list


def _median_rows(lt, group, **kw):
    overall = median_survival(lt, **kw).assign(**{group or "group": "all customers"})
    if not group:
        return overall
    by = median_survival(lt, group=group, **kw)
    return pd.concat([overall, by], ignore_index=True)[[group] + list(overall.columns[:-1])]


def retention_report(
    lt: pd.DataFrame,
    *,
    group: str | None,
    horizons,
    rmst_horizon: float,
    covariates,
    strata=(),
    ph_alpha: float = 0.05,
    min_group_size: int = 10,
    max_months: float = 36.0,
    reference: dict | None = None,
    duration: str = "duration_months",
    event: str = "event",
    entry: str = "entry_months",
    cause: str | None = "churn_reason",
    alpha: float = 0.05,
) -> RetentionReport:
    """Compute the retention (survival) report from the lifetimes table.

    Groups (of ``group`` and of categorical Cox covariates) with fewer than
    ``min_group_size`` customers are left out and listed in ``notes``. Steps
    that cannot be computed on the data (e.g. a Cox model without events)
    leave their field None and say why in ``notes``.

    Parameters
    ----------
    lt : pandas.DataFrame
        Lifetimes (see :func:`analysis.derive.lifetimes`), one row per customer;
        time columns in months.
    group : str or None
        Column for the curves, medians, RMST differences and log-rank test.
    horizons : list of float
        Tenures (months) at which the share still active is reported.
    rmst_horizon : float
        Horizon (months) of the restricted mean tenure.
    covariates, strata : list of str
        Cox model terms and stratification columns (missing columns are skipped).

    Returns
    -------
    RetentionReport
    """
    notes: list[str] = []
    common = {"duration": duration, "event": event, "entry": entry, "alpha": alpha}
    if group and group not in lt.columns:
        notes.append(f"The grouping column {group!r} is not in the data; curves are shown overall.")
        group = None
    suppressed: list = []
    lt_g = lt
    if group:
        lt_g, suppressed = drop_small_groups(lt, group=group, min_group_size=min_group_size)
        if suppressed:
            notes.append(
                f"{len(suppressed)} {group} group(s) with fewer than {min_group_size} "
                "customers are not shown separately."
            )
        if lt_g[group].nunique() < 1:
            group = None
    n_lt = int((lt[entry] > 0).sum())
    km_all = kaplan_meier(lt, **common)
    ticks = [t for t in np.arange(0, max_months + 0.1, 6)]
    at_all = at_risk_table(lt, duration=duration, entry=entry, times=ticks)
    km_g = kaplan_meier(lt_g, group=group, **common) if group else None
    at_g = (
        at_risk_table(lt_g, duration=duration, entry=entry, group=group, times=ticks)
        if group
        else None
    )
    med = _median_rows(lt_g if group else lt, group, **common)
    sa = survival_at(lt, times=horizons, **common).assign(**{group or "group": "all customers"})
    if group:
        sa = pd.concat(
            [sa, survival_at(lt_g, times=horizons, group=group, **common)], ignore_index=True
        )
    rm = rmst(lt_g if group else lt, horizon=rmst_horizon, group=group, **common)
    lr = None
    if group and lt_g[group].nunique() >= 2 and lt_g[event].sum() > 0:
        lr = logrank(lt_g, group=group, duration=duration, event=event, entry=entry)
    # Cox: drop small levels of categorical covariates, skip missing columns
    covs = [c for c in covariates if c in lt.columns]
    strata = [c for c in (strata or []) if c in lt.columns]
    skipped = [c for c in covariates if c not in lt.columns]
    if skipped:
        notes.append(f"Cox covariates not in the data and skipped: {', '.join(skipped)}.")
    lt_c = lt
    for c in covs:
        if _is_categorical(lt_c[c]):
            lt_c, small = drop_small_groups(lt_c, group=c, min_group_size=min_group_size)
            if small:
                notes.append(
                    f"Cox model: {len(small)} level(s) of {c} with fewer than "
                    f"{min_group_size} customers left out."
                )
    fit = refit = None
    moved: list = []
    if covs:
        try:
            ref = {
                k: v
                for k, v in (reference or {}).items()
                if k in covs and v in set(lt_c[k].dropna())
            }
            fit = cox(
                lt_c,
                duration=duration,
                event=event,
                entry=entry,
                covariates=covs,
                strata=strata or None,
                reference=ref,
                alpha=alpha,
            )
            refit, moved = cox_stratified_refit(lt_c, fit, alpha=ph_alpha)
            if not moved:
                refit = None
        except (DataError, ParamsError, np.linalg.LinAlgError) as err:
            notes.append(f"The Cox model could not be fitted: {str(err).splitlines()[0]}")
            fit = None
    haz = hazard_over_tenure(
        lt,
        duration=duration,
        event=event,
        entry=entry,
        alpha=alpha,
        max_time=min(max_months, float(lt[duration].max())),
    )
    cif = None
    if cause and cause in lt.columns and lt.loc[lt[event] == 1, cause].notna().any():
        cif = cumulative_incidence(lt, cause=cause, **common)
    elif cause:
        notes.append(
            "No churn reasons are recorded for this churn definition; the "
            "'why they leave' section is skipped."
        )
    # findings
    sent = []
    overall_med = med.iloc[0]
    sent.append(sentence_median(overall_med, who="customers"))
    mid_h = [h for h in horizons if h <= overall_med["max_time"]]
    if mid_h:
        h = 12.0 if 12.0 in mid_h else mid_h[len(mid_h) // 2]
        row = sa[(sa[group or "group"] == "all customers") & (sa.horizon == h)].iloc[0]
        sent.append(sentence_survival_at(row, who="customers"))
    use = refit if refit is not None else fit
    if use is not None:
        cat = use.summary[use.summary.level.notna()].sort_values("p_value")
        for term in cat.index[:2]:
            sent.append(sentence_hazard_ratio(use, term))
    if group:
        diffs = rm[(rm.kind == "difference") & rm.rmst.notna() & (rm.se > 0)]
        if len(diffs):
            top = diffs.loc[diffs.rmst.abs().idxmax()]
            sent.append(sentence_rmst_difference(top, group=group))
    if cif is not None and len(cif):
        early = float(horizons[0]) if horizons else 3.0
        sent.append(sentence_cif(cif, early=early, late=float(rmst_horizon)))
    if fit is not None and fit.ph_failures(ph_alpha):
        sent.append(sentence_ph(fit, alpha=ph_alpha, moved=moved))
    return RetentionReport(
        n=int(len(lt)),
        n_events=int(lt[event].sum()),
        n_left_truncated=n_lt,
        group=group,
        suppressed_groups=suppressed,
        horizons=list(horizons),
        km_all=km_all,
        km_group=km_g,
        at_risk_all=at_all,
        at_risk_group=at_g,
        median=med,
        survival_at=sa,
        rmst=rm,
        logrank=lr,
        cox=fit,
        cox_refit=refit,
        moved_to_strata=moved,
        hazard=haz,
        cif=cif,
        findings=sent[:6],
        notes=notes,
    )


def cohort_matrix(
    cohorts: pd.DataFrame,
    *,
    value: str = "retention_rate",
    min_group_size: int = 10,
    max_periods: int | None = None,
) -> pd.DataFrame:
    """Pivot the cohort table (see :func:`analysis.derive.cohorts`) to cohort x periods since.

    Cohorts smaller than ``min_group_size`` customers are dropped.

    Returns
    -------
    pandas.DataFrame
        Index: cohort (period start); columns: periods since acquisition; values: ``value``.
    """
    c = cohorts[cohorts.cohort_size >= min_group_size]
    if max_periods is not None:
        c = c[c.periods_since <= max_periods]
    return c.pivot_table(index="cohort", columns="periods_since", values=value, aggfunc="first")
