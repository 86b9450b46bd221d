"""Competing risks: cumulative incidence of an event by cause (Aalen-Johansen).

Used for why customers leave: the share who have left for each churn reason by
each tenure, with left truncation (see :mod:`analysis.stats.survival`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats.survival import _iter_groups, _prepare, _risk_counts, _with_group, _z

__all__ = ["cif_at", "cumulative_incidence"]


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
    weights: str | None = None,
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
    weights : str, optional
        Column with the number of customers each row stands for (see
        :func:`analysis.stats.survival.kaplan_meier`).

    Returns
    -------
    pandas.DataFrame
        [group], cause, time, cif, se, ci_lower, ci_upper (one row per cause
        and distinct churn time).
    """
    z = _z(alpha)
    work, _ = _prepare(
        df,
        duration=duration,
        event=event,
        entry=entry,
        group=group,
        extra=(cause,),
        weights=weights,
    )
    reason = work[cause].astype(object)
    reason = reason.where(reason.notna(), unknown_label)
    work = work.assign(_c=np.where(work["_e"] == 1, reason, None))
    parts = []
    for lev, sub in _iter_groups(work):
        t = sub["_t"].to_numpy()
        e = sub["_e"].to_numpy().astype(float)
        en = sub["_entry"].to_numpy()
        w = sub["_w"].to_numpy() if weights else None
        if e.sum() == 0:
            continue
        u = np.unique(t[e == 1])
        n, d = _risk_counts(t, e, en, u, w)
        with np.errstate(divide="ignore", invalid="ignore"):
            haz = np.where(n > 0, d / n, 0.0)
        s = np.cumprod(1 - haz)
        s_prev = np.concatenate([[1.0], s[:-1]])
        causes = sorted(pd.unique(sub.loc[sub["_e"] == 1, "_c"]), key=str)
        with np.errstate(divide="ignore", invalid="ignore"):
            ra_all = np.where(n > d, d / (n * (n - d)), 0.0)
        for c in causes:
            of_c = (e == 1) & (sub["_c"].to_numpy() == c)
            _, dk = _risk_counts(t[of_c], e[of_c], en[of_c], u, None if w is None else w[of_c])
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
