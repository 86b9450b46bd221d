"""Descriptive tables of the loyalty study (not effects).

Uptake, member profiles before adjustment, points, churn after leaving the programme and
the naive member vs non-member churn comparisons.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.stats.effects import balance
from analysis.studies.loyalty.frames import (
    DAYS_PER_MONTH,
    _add_months,
    _month_index,
    _window_spans,
)

__all__ = [
    "level_counts",
    "level_sizes",
    "member_profile",
    "naive_churn_comparison",
    "points_summary",
    "post_leaving",
    "uptake",
]


def uptake(
    customers: pd.DataFrame,
    loyalty: pd.DataFrame,
    *,
    window_start,
    as_of,
) -> pd.DataFrame:
    """Count enrolments, leavers and members per calendar month.

    Returns
    -------
    pandas.DataFrame
        One row per month of the window: ``month`` (first day), ``enrolments``,
        ``leavers``, ``members`` (active members at month end: enrolled, not left,
        not churned), ``active_customers`` (at month end) and ``member_share``.
    """
    ws = pd.Timestamp(window_start).to_period("M").start_time
    last = int(_month_index(pd.Series([pd.Timestamp(as_of)]), ws)[0])
    months = np.arange(last + 1)
    ends = _add_months(ws, months + 1)  # first day of the next month
    su = pd.to_datetime(customers["signup_date"]).to_numpy()
    ch = pd.to_datetime(customers["churn_date"]).to_numpy()
    active = [
        int(((su < e) & (np.isnat(ch) | (ch >= e))).sum()) for e in ends.astype("datetime64[ns]")
    ]
    lo = loyalty.merge(customers[["customer_id", "churn_date"]], on="customer_id", how="left")
    en = pd.to_datetime(lo["enrolled_date"]).to_numpy()
    lv = (
        pd.to_datetime(lo["left_date"]).to_numpy()
        if "left_date" in lo
        else np.full(len(lo), np.datetime64("NaT"))
    )
    lc = pd.to_datetime(lo["churn_date"]).to_numpy()
    members = [
        int(((en < e) & (np.isnat(lv) | (lv >= e)) & (np.isnat(lc) | (lc >= e))).sum())
        for e in ends.astype("datetime64[ns]")
    ]
    em = _month_index(lo["enrolled_date"], ws)
    lm = _month_index(lo["left_date"], ws) if "left_date" in lo else np.full(len(lo), np.nan)
    out = pd.DataFrame(
        {
            "month": _add_months(ws, months),
            "enrolments": [int((em == m).sum()) for m in months],
            "leavers": [int((lm == m).sum()) for m in months],
            "members": members,
            "active_customers": active,
        }
    )
    out["member_share"] = out["members"] / out["active_customers"].where(
        out["active_customers"] > 0
    )
    return out


def member_profile(
    frame: pd.DataFrame,
    *,
    columns: Sequence[str],
    treatment: str = "member",
    min_group_size: int = 10,
) -> pd.DataFrame:
    """Describe members and non-members at the landmark, before any adjustment.

    Returns
    -------
    pandas.DataFrame
        One row per covariate (categoricals one row per non-reference level):
        mean (or share) among members, among non-members, and the standardised
        difference. Empty if either group is smaller than ``min_group_size``.
    """
    n1 = int(frame[treatment].sum())
    if min(n1, len(frame) - n1) < min_group_size:
        return pd.DataFrame(columns=["members", "non_members", "smd"])
    bal = balance(frame, treatment=treatment, covariates=list(columns))
    return bal.rename(columns={"mean_treated": "members", "mean_control": "non_members"})


def points_summary(
    customers: pd.DataFrame,
    loyalty: pd.DataFrame,
    *,
    as_of,
    min_group_size: int = 10,
) -> pd.DataFrame:
    """Summarise points earned and redeemed, and how redeemers and non-redeemers fare.

    Descriptive only: redeeming needs time in the programme to collect points,
    so redeemers are partly redeemers *because* they stayed.

    Returns
    -------
    pandas.DataFrame
        One row per group (``redeemers``, ``non-redeemers``): members, mean points
        earned and redeemed, mean months in the programme, and monthly churn rate
        while in the programme (churn events per member-month). Groups smaller
        than ``min_group_size`` have their numbers suppressed.
    """
    need = {"points_earned", "points_redeemed"}
    if not need.issubset(loyalty.columns) or loyalty["points_earned"].isna().all():
        return pd.DataFrame()
    end = pd.Timestamp(as_of)
    lo = loyalty.merge(customers[["customer_id", "churn_date"]], on="customer_id", how="left")
    left = (
        pd.to_datetime(lo["left_date"]) if "left_date" in lo else pd.Series(pd.NaT, index=lo.index)
    )
    churn = pd.to_datetime(lo["churn_date"])
    stop = pd.concat([left, churn, pd.Series(end, index=lo.index)], axis=1).min(axis=1)
    months = (stop - pd.to_datetime(lo["enrolled_date"])).dt.days.clip(lower=0) / DAYS_PER_MONTH
    churned_in = churn.notna() & (churn <= stop) & (left.isna() | (churn <= left))
    lo = lo.assign(months=months, churned_in=churned_in.astype(int))
    lo["group"] = np.where(lo["points_redeemed"].fillna(0) > 0, "redeemers", "non-redeemers")
    rows = []
    for g, d in lo.groupby("group"):
        row = {"group": g, "members": len(d)}
        if len(d) >= min_group_size:
            row.update(
                points_earned=float(d["points_earned"].mean()),
                points_redeemed=float(d["points_redeemed"].mean()),
                months_in_programme=float(d["months"].mean()),
                monthly_churn_rate=float(d["churned_in"].sum() / max(d["months"].sum(), 1e-9)),
            )
        rows.append(row)
    return pd.DataFrame(rows)


def post_leaving(
    customers: pd.DataFrame,
    loyalty: pd.DataFrame,
    *,
    window_start,
    as_of,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Compare monthly churn rates: while a member, after leaving, and never enrolled.

    Descriptive rates (churn events per customer-month in the window) with
    exact Poisson intervals; not adjusted for who leaves.

    Returns
    -------
    pandas.DataFrame
        One row per state: ``customers`` (with time in that state),
        ``customer_months``, ``churn_events``, ``monthly_churn_rate`` with
        ``ci_lower`` and ``ci_upper``.
    """
    c = _window_spans(customers, loyalty, window_start=window_start, as_of=as_of)
    en = pd.to_datetime(c["enrolled_date"])
    lv = pd.to_datetime(c["left_date"])
    spans = {
        "never enrolled / before enrolling": (
            c["start"],
            en.fillna(c["stop"]).clip(upper=c["stop"]),
        ),
        "member": (en, lv.fillna(c["stop"]).clip(upper=c["stop"])),
        "after leaving": (lv, c["stop"]),
    }
    rows = []
    for name, (a, b) in spans.items():
        a = a.clip(lower=c["start"])
        months = ((b - a).dt.days / DAYS_PER_MONTH).clip(lower=0).fillna(0)
        ev = c["churned"] & a.notna() & (a <= c["stop"]) & (c["stop"] <= b) & (months > 0)
        k, T = int(ev.sum()), float(months.sum())
        lo_ci = stats.chi2.ppf(alpha / 2, 2 * k) / 2 / T if k > 0 and T > 0 else 0.0
        hi_ci = stats.chi2.ppf(1 - alpha / 2, 2 * k + 2) / 2 / T if T > 0 else float("nan")
        rows.append(
            {
                "state": name,
                "customers": int((months > 0).sum()),
                "customer_months": T,
                "churn_events": k,
                "monthly_churn_rate": k / T if T > 0 else float("nan"),
                "ci_lower": lo_ci,
                "ci_upper": hi_ci,
            }
        )
    return pd.DataFrame(rows)


def _rate_ratio(k1: int, t1: float, k0: int, t0: float, alpha: float) -> tuple[float, float, float]:
    """Ratio of two Poisson rates with the exact conditional (Clopper-Pearson) interval."""
    if t1 <= 0 or t0 <= 0 or k0 == 0:
        return float("nan"), float("nan"), float("nan")
    n = k1 + k0
    lo = stats.beta.ppf(alpha / 2, k1, n - k1 + 1) if k1 > 0 else 0.0
    hi = stats.beta.ppf(1 - alpha / 2, k1 + 1, n - k1) if k1 < n else 1.0
    # k1 given k1 + k0 is binomial with p = t1 r / (t1 r + t0): r = p / (1 - p) * t0 / t1
    upper = hi / (1 - hi) * t0 / t1 if hi < 1 else float("inf")
    return (k1 / t1) / (k0 / t0), float(lo / (1 - lo) * t0 / t1), float(upper)


def naive_churn_comparison(
    customers: pd.DataFrame,
    loyalty: pd.DataFrame,
    *,
    window_start,
    as_of,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Show how the members-versus-non-members churn comparison goes wrong.

    Two descriptive comparisons of monthly churn rates in the window (churn events
    per customer-month, exact conditional interval for the rate ratio):

    * ``"ever-members vs never-members"``: what a dashboard does. Every customer who
      ever enrolled counts as a member for all their time, including the months
      before joining, in which they could not have churned as a member (they had to
      stay to join): immortal time, plus selection (the best customers join).
    * ``"member months vs non-member months"``: time split at enrolment and
      leaving, each churn counted in the state it happened in. Immortal time is
      gone; selection remains.

    Neither is an effect; the adjusted analyses are.

    Returns
    -------
    pandas.DataFrame
        One row per comparison: customer-months and churn events of members and
        non-members, their monthly churn rates, ``rate_ratio`` (members over
        non-members) with ``ci_lower`` and ``ci_upper``.
    """
    c = _window_spans(customers, loyalty, window_start=window_start, as_of=as_of)
    c = c[c["stop"] > c["start"]]
    en = pd.to_datetime(c["enrolled_date"])
    en = en.where(en <= c["stop"])  # enrolled after churning or after as_of: never a member here
    lv = pd.to_datetime(c["left_date"]).where(en.notna())
    total = (c["stop"] - c["start"]).dt.days / DAYS_PER_MONTH
    ever = en.notna()
    m_from = en.clip(lower=c["start"])
    m_to = lv.fillna(c["stop"]).clip(upper=c["stop"])
    member_months = ((m_to - m_from).dt.days / DAYS_PER_MONTH).clip(lower=0).fillna(0.0)
    churn_as_member = c["churned"] & ever & (lv.isna() | (lv >= c["stop"]))
    rows = []
    for name, (t1, k1, t0, k0) in {
        "ever-members vs never-members": (
            total[ever].sum(),
            int(c["churned"][ever].sum()),
            total[~ever].sum(),
            int(c["churned"][~ever].sum()),
        ),
        "member months vs non-member months": (
            member_months.sum(),
            int(churn_as_member.sum()),
            (total - member_months).sum(),
            int((c["churned"] & ~churn_as_member).sum()),
        ),
    }.items():
        rr, lo, hi = _rate_ratio(k1, float(t1), k0, float(t0), alpha)
        rows.append(
            {
                "comparison": name,
                "member_customer_months": float(t1),
                "member_churn_events": k1,
                "member_monthly_churn_rate": k1 / t1 if t1 > 0 else float("nan"),
                "non_member_customer_months": float(t0),
                "non_member_churn_events": k0,
                "non_member_monthly_churn_rate": k0 / t0 if t0 > 0 else float("nan"),
                "rate_ratio": rr,
                "ci_lower": lo,
                "ci_upper": hi,
            }
        )
    return pd.DataFrame(rows)


def level_sizes(
    frame: pd.DataFrame, columns: Iterable[str], *, id_col: str | None = None
) -> pd.Series:
    """Count the customers at each level of categorical columns, named ``column[level]``.

    The names are those of :func:`analysis.stats.design.covariate_matrix`
    (balance tables, love plots, model terms), so a table indexed by them can
    hide the levels with too few customers. Numeric columns are skipped.

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows the statistics were computed on.
    columns : iterable of str
        Columns to count (missing ones are skipped).
    id_col : str, optional
        Count distinct values of this column instead of rows (a customer appears
        in several rows of a sequential-trial frame).

    Returns
    -------
    pandas.Series
        Customers per ``column[level]``.
    """
    out = {}
    for c in columns:
        if c not in frame.columns:
            continue
        s = frame[c]
        if not (
            isinstance(s.dtype, pd.CategoricalDtype)
            or pd.api.types.is_object_dtype(s)
            or pd.api.types.is_string_dtype(s)
        ):
            continue
        if id_col is None:
            counts = s.astype(str).value_counts()
        else:
            counts = frame.groupby(s.astype(str), observed=True)[id_col].nunique()
        for level, n in counts.items():
            out[f"{c}[{level}]"] = int(n)
    return pd.Series(out, dtype="int64")


def level_counts(
    frame: pd.DataFrame, columns: Iterable[str], *, id_col: str | None = "customer_id"
) -> dict[str, tuple[list[str], np.ndarray]]:
    """Count customers per level of each categorical column, in dummy-coding order.

    Returns
    -------
    dict
        Column -> (``column[level]`` names, customer counts); the first level is the
        reference of :func:`analysis.stats.design.covariate_matrix` (no row of its own).
    """
    cols = [c for c in columns if c in frame.columns]
    sizes = level_sizes(frame, cols, id_col=id_col if id_col in frame.columns else None)
    out = {}
    for c in cols:
        s = frame[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            levels = [lv for lv in s.cat.categories if (s == lv).any()]
        elif pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
            levels = sorted(s.dropna().astype(str).unique())
        else:
            continue
        names = [f"{c}[{lv}]" for lv in levels]
        out[c] = (names, np.array([float(sizes.get(n, 0)) for n in names]))
    return out
