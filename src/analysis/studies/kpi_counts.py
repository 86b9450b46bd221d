"""Customer and member counts per period for the KPI dashboard, from counts per day.

The counts need only how many customers have each entry, start and churn date (and how many
memberships start and end on each day), so they are built from counts per day summed on the
engine (:func:`lifetime_day_counts`) or from per-customer dates (:meth:`DayCounts.of`), with
the same numbers. Re-exported by :mod:`analysis.studies.kpi`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class DayCounts:
    """How many customers (or memberships) have a date on each day: sorted distinct days
    and the running total, so that "how many before this point" is one lookup. Built from
    per-customer dates (:meth:`of`) or from counts per day made on the engine
    (:meth:`from_counts`); both give the same numbers."""

    def __init__(self, days: np.ndarray, counts: np.ndarray):
        days = np.asarray(days, dtype="datetime64[ns]")
        counts = np.asarray(counts, dtype=np.int64)
        ok = ~np.isnat(days)
        days, counts = days[ok], counts[ok]
        order = np.argsort(days, kind="stable")
        self.days, self.total = days[order], np.cumsum(counts[order])

    @classmethod
    def of(cls, dates) -> DayCounts:
        d = pd.to_datetime(pd.Series(dates)).to_numpy("datetime64[ns]")
        d = d[~np.isnat(d)]
        days, n = np.unique(d, return_counts=True)
        return cls(days, n)

    @classmethod
    def from_counts(cls, table) -> DayCounts:
        """From an engine result with columns ``day`` and ``n``."""
        df = table.to_pandas() if hasattr(table, "to_pandas") else table
        return cls(pd.to_datetime(df["day"]).to_numpy("datetime64[ns]"), df["n"].to_numpy())

    def before(self, points: np.ndarray, strict: bool = True) -> np.ndarray:
        """Count dates < point (strict) or <= point, for each point."""
        i = np.searchsorted(self.days, points, side="left" if strict else "right")
        total = np.concatenate([[0], self.total])  # total[i]: dates in the first i days
        return total[i]

    def first(self):
        return self.days[0] if len(self.days) else None


def customer_counts(lifetimes: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    """Count at-risk, active, new and churned customers per period.

    Parameters
    ----------
    lifetimes : DataFrame
        One row per customer with ``start_date``, ``entry_date``, ``end_date``
        and ``event`` (see :func:`analysis.data.derive.lifetimes`).
    periods : DataFrame
        ``period`` (start) and ``period_end`` (exclusive end), datetime64.

    Returns
    -------
    DataFrame
        periods with at_risk, active, new and churned added.
    """
    return customer_counts_from_days(
        entry=DayCounts.of(lifetimes["entry_date"]),
        start=DayCounts.of(lifetimes["start_date"]),
        churn=DayCounts.of(lifetimes.loc[lifetimes["event"] == 1, "end_date"]),
        periods=periods,
    )


def customer_counts_from_days(
    *, entry: DayCounts, start: DayCounts, churn: DayCounts, periods: pd.DataFrame
) -> pd.DataFrame:
    """:func:`customer_counts` from counts per day of entry, start and churn dates."""
    ps = periods["period"].to_numpy("datetime64[ns]")
    pe = periods["period_end"].to_numpy("datetime64[ns]")
    entered_before_end = entry.before(pe)
    churned_before_start = churn.before(ps)
    churned_before_end = churn.before(pe)
    window_start = entry.first() if entry.first() is not None else ps[0]
    new = start.before(pe) - start.before(np.maximum(ps, window_start))
    out = periods.copy()
    out["at_risk"] = entered_before_end - churned_before_start
    out["active"] = entered_before_end - churned_before_end
    out["new"] = np.clip(new, 0, None)
    out["churned"] = churned_before_end - churned_before_start
    return out


def member_counts(memberships: pd.DataFrame, periods: pd.DataFrame) -> pd.Series:
    """Count loyalty members at each period's end.

    ``memberships`` has ``enrolled_date`` and ``member_end`` (the earlier of
    leaving the programme and churning; NaT while still a member).
    """
    return member_counts_from_days(
        DayCounts.of(memberships["enrolled_date"]), DayCounts.of(memberships["member_end"]), periods
    )


def member_counts_from_days(
    enrolled: DayCounts, ended: DayCounts, periods: pd.DataFrame
) -> pd.Series:
    """:func:`member_counts` from counts per day of enrolments and membership ends."""
    pe = periods["period_end"].to_numpy("datetime64[ns]")
    return pd.Series(enrolled.before(pe) - ended.before(pe), index=periods.index)


def _per_day(expr, column: str):
    """Engine: rows per non-null value of the date ``column`` (columns ``day``, ``n``)."""
    t = expr.filter(expr[column].notnull())
    return DayCounts.from_counts(t.group_by(day=t[column]).aggregate(n=t.count()).to_pandas())


def lifetime_day_counts(study) -> dict:
    """Counts per day that the KPI customer counts need, built on the engine from the usable
    lifetimes (the rows of ``study.lifetimes()``): ``entry``, ``start``, ``churn`` (end date
    of churned customers), ``once`` (churned customers with at most one purchase) and, with
    a loyalty table, ``enrolled`` and ``member_end`` of the memberships of those customers.
    Nothing per customer reaches Python."""
    import ibis

    lt = study.usable_lifetimes_expr()
    churned = lt.filter(lt.event == 1, lt.end_date.notnull())
    # churns and one-time buyers' churns in one table per churn day
    ends = (
        churned.group_by(day=churned.end_date)
        .aggregate(n=churned.count(), once=(churned.n_transactions <= 1).sum().cast("int64"))
        .to_pandas()
    )
    out = {
        "entry": _per_day(lt, "entry_date"),
        "start": _per_day(lt, "start_date"),
        "churn": DayCounts.from_counts(ends),
        "once": DayCounts.from_counts(ends.assign(n=ends["once"].fillna(0))),
    }
    if study.has("loyalty"):
        loy = study.source.table("loyalty").select("customer_id", "enrolled_date", "left_date")
        ends = lt.select(
            "customer_id",
            churn_end=ibis.ifelse(lt.event == 1, lt.end_date, ibis.null(lt.end_date.type())),
        )
        m = loy.join(ends, "customer_id")  # memberships of customers in the lifetimes only
        end = ibis.cases(
            (m.left_date.isnull(), m.churn_end),
            (m.churn_end.isnull(), m.left_date),
            (m.left_date <= m.churn_end, m.left_date),
            else_=m.churn_end,
        )
        m = m.select(enrolled_date=m.enrolled_date, member_end=end)
        # A membership that ends on or before it starts never counted: under inactivity
        # churn a customer who joined after their last purchase was already lost by then.
        m = m.filter(m.member_end.isnull() | (m.member_end > m.enrolled_date))
        out["enrolled"] = _per_day(m, "enrolled_date")
        out["member_end"] = _per_day(m, "member_end")
    return out
