"""Default as-of date and window start that a handful of mistyped dates cannot move.

By default the as-of date is the latest date in the data and the window starts at
the earliest transaction or experience date. Taken literally, one transaction typed
as 2099-01-01 would make 2099 the as-of date (every report would then show no
revenue and no churn), and one typed as 1999 would open the window decades early.

:func:`robust_end` takes the latest date unless the last few rows sit far beyond the
dense bulk of the data. Rows are cut off at a date ``a`` when all of these hold:

1. at most a *handful* of rows lie after ``a``: ``max(10, 0.1%)`` of all dated rows;
2. they reach at least 31 days beyond ``a`` (so a quiet weekend or the last
   partial day is never cut);
3. the days right after ``a`` without a single row are implausibly empty: at the
   rate of rows per day in the 91 days up to ``a``, at least 5 rows would be expected
   in them (and those 91 days hold more than a handful of rows);
4. the rows after ``a`` are at least 10 times sparser than that rate would give over
   the same span (and that rate would give at least 20 rows).

On clean data the latest date is dense (condition 1 holds only within the last day
or so, where condition 2 fails), so the default is exactly the latest date.
:func:`robust_start` applies the same rule at the other end.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import ibis
import numpy as np

HANDFUL_MIN = 10
HANDFUL_SHARE = 0.001
MIN_REACH_DAYS = 31
RATE_DAYS = 91
EXPECTED_IN_GAP = 5.0
SPARSER_BY = 10.0
EXPECTED_MIN = 20.0

#: Dates before this are implausible in customer data (typing errors such as 0024 for 2024).
EARLIEST_PLAUSIBLE = dt.date(1900, 1, 1)
_LATEST_HISTOGRAM = dt.date(3000, 1, 1)  # dates past this are left out of the histogram
_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class Edge:
    """The robust end (or start) of the dated rows.

    Attributes
    ----------
    date : datetime.date
        The robust date.
    raw : datetime.date
        The plain maximum (or minimum).
    n_outlying : int
        Rows beyond ``date`` (after it for an end, before it for a start).
    rate : float
        Rows per day in the 91 days inside ``date`` (where rows were cut off).
    """

    date: dt.date
    raw: dt.date
    n_outlying: int = 0
    rate: float = 0.0

    @property
    def moved(self) -> bool:
        """Return True when a few outlying rows were left out."""
        return self.n_outlying > 0


def _day(d: dt.date) -> int:
    return (d - _EPOCH).days


def _date(n: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=int(n))


def _cut(x: np.ndarray, c: np.ndarray) -> tuple[int, float]:
    """Return (index of the robust last date, rate) for sorted unique days ``x`` with counts ``c``.

    Candidates are tried from the earliest (so that a cluster of outliers is cut off
    whole, not one outlier at a time).
    """
    n = len(x)
    total = int(c.sum())
    handful = max(HANDFUL_MIN, math.ceil(HANDFUL_SHARE * total))
    cum = np.cumsum(c)
    after = total - cum  # rows after x[i]
    for i in np.flatnonzero(after <= handful):
        if i >= n - 1:
            break
        reach = int(x[-1] - x[i])
        if reach < MIN_REACH_DAYS:
            break  # later candidates reach even less far
        span = min(RATE_DAYS, int(x[i] - x[0]) + 1)
        lo = np.searchsorted(x, x[i] - span, side="right")
        rows = int(cum[i] - (cum[lo - 1] if lo > 0 else 0))
        if rows <= handful:
            continue  # the rows before x[i] are no denser than the tail: not the bulk's end
        rate = rows / span
        empty = int(x[i + 1] - x[i]) - 1  # days without a single row after x[i]
        if rate * empty >= EXPECTED_IN_GAP and rate * reach >= max(
            EXPECTED_MIN, SPARSER_BY * after[i]
        ):
            return int(i), float(rate)
    return n - 1, 0.0


def robust_end(days: np.ndarray, counts: np.ndarray) -> Edge | None:
    """Return the robust latest date of a histogram (days since 1970-01-01, row counts)."""
    if len(days) == 0:
        return None
    order = np.argsort(days)
    x, c = np.asarray(days)[order], np.asarray(counts)[order]
    i, rate = _cut(x, c)
    return Edge(_date(x[i]), _date(x[-1]), int(c[i + 1 :].sum()), rate)


def robust_start(days: np.ndarray, counts: np.ndarray) -> Edge | None:
    """Return the robust earliest date of a histogram (the mirror image of :func:`robust_end`)."""
    if len(days) == 0:
        return None
    order = np.argsort(-np.asarray(days))
    x, c = -np.asarray(days)[order], np.asarray(counts)[order]
    i, rate = _cut(x, c)
    return Edge(_date(-x[i]), _date(-x[-1]), int(c[i + 1 :].sum()), rate)


def histogram(columns: list) -> tuple[np.ndarray, np.ndarray]:
    """Return (days since 1970-01-01, rows) of the dates in Ibis date ``columns``, one scan each.

    Only plausible dates (1900 to 2999) count; the others are validation errors.
    """
    parts = []
    lo = ibis.literal(EARLIEST_PLAUSIBLE, type="date")
    hi = ibis.literal(_LATEST_HISTOGRAM, type="date")
    for col in columns:
        t = col.name("d").as_table()
        parts.append(t.filter(t.d.notnull() & (t.d >= lo) & (t.d < hi)))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    u = parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)
    h = u.group_by("d").aggregate(n=u.count()).to_pyarrow()
    days = np.array([_day(v) for v in h.column("d").to_pylist()], dtype=np.int64)
    return days, np.asarray(h.column("n").to_pylist(), dtype=np.int64)
