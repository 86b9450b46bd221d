"""Sums of monthly activity over windows of calendar months, computed on the engine.

The loyalty frames (landmark, sequential trials, event-study panel) need, for each
customer and *anchor* month (a landmark month, a trial month), sums of the customer's
monthly purchases and service events over windows of months around it, and the latest
NPS answer before it. This module builds them as engine queries, so that only the
frame's rows (one per customer and anchor month, or per customer and active month for
the event study) reach Python, never the events or the monthly activity:

* :func:`anchored_sums`: for anchor rows (a customer and a month number), the sums of
  activity columns over windows of months around the anchor, and the category of the
  latest NPS answer before it (0 none, 1 detractor, 2 passive, 3 promoter): each anchor
  joined to its customer's active months, then one conditional aggregate per window;
* :func:`span_activity`: the activity of each customer's months inside a span (the
  non-empty cells of a customer x month panel).

Months are numbered from the window start month: ``(year - y0) * 12 + month - m0``.
The same numbers as :func:`analysis.studies.loyalty.frames._month_index`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from analysis.data.fe_engine import period_ordinal

__all__ = [
    "NPS_CATEGORY",
    "anchored_sums",
    "month_index",
    "months_table",
    "span_activity",
]

#: Category codes of the latest NPS answer: 0 none, 1 detractor (0-6), 2 passive (7-8),
#: 3 promoter (9-10).
NPS_CATEGORY = ("none", "detractor", "passive", "promoter")


def month_index(date: ir.DateValue, window_start) -> ir.IntegerValue:
    """Calendar months from the month of ``window_start`` to the month of ``date``."""
    ws = ibis.literal(pd.Timestamp(window_start).date(), type="date")
    return period_ordinal(date, "month").cast("int64") - period_ordinal(ws, "month")


def months_table(first: int, stop: int, name: str = "k") -> ir.Table:
    """A small in-memory table of the month numbers ``first .. stop - 1``."""
    return ibis.memtable(pa.table({name: pa.array(range(first, stop), pa.int64())}))


def _nps_code(score: ir.FloatingValue) -> ir.IntegerValue:
    return ibis.cases((score <= 6, 1), (score <= 8, 2), else_=3)


def anchored_sums(
    monthly: ir.Table,
    anchors: ir.Table,
    *,
    window_start,
    key: str | Sequence[str],
    windows: Mapping[str, tuple[str, object, object]],
    latest_nps: tuple[str, object] | None = None,
    through: object | None = None,
) -> ir.Table:
    """Sums of activity over windows of months around anchors, by joining each anchor to
    its customer's active months.

    One hash join and one hash aggregate: the rows joined are, per customer, its anchors
    times its active months up to ``through``. That is one row per active month for one
    anchor per customer (a landmark), and at most (trial months) x (active months) for the
    sequential trials: 36 x 36 per customer over three years. A dense customer x month grid
    of running sums read at each window's ends would grow only with the months, but its
    window functions and joins cost more memory and time at the sizes measured
    (``docs/benchmarks.md``).

    Parameters
    ----------
    monthly : ibis.Table
        One row per customer and month: ``customer_id``, ``date`` and the columns.
    anchors : ibis.Table
        ``customer_id``, ``key`` and the columns the window bounds use.
    window_start : date-like
        Month 0.
    key : str or sequence of str
        Column(s) identifying an anchor.
    windows : mapping
        Output column -> (column of ``monthly``, first month or None for every earlier
        month, last month); the bounds are expressions (deferred ``ibis._`` ones) of the
        anchor's columns and ``_mi``, the month number.
    latest_nps : (str, bound), optional
        The column of ``monthly`` with the month's latest NPS answer, and the last month
        to look at: adds ``nps_cat``, the category code of the latest answer up to it.
    through : bound, optional
        The last month any window reaches (an expression of the anchor's columns): later
        months are not joined.

    Returns
    -------
    ibis.Table
        ``key`` and the window sums (0 where the anchor's customer had no activity in
        the window), one row per anchor.
    """
    m = monthly.semi_join(anchors, "customer_id")
    m = m.mutate(_mi=month_index(m.date, window_start))
    on = [anchors.customer_id == m.customer_id]
    if through is not None:
        on.append(m._mi <= _resolve(through, anchors))
    j = anchors.left_join(m, on)
    j = j.mutate(
        **{
            f"_in_{name}": (j._mi <= _resolve(hi, j))
            & ((j._mi >= _resolve(lo, j)) if lo is not None else ibis.literal(True))
            for name, (_col, lo, hi) in windows.items()
        }
    )
    sums = {
        name: j[col].sum(where=j[f"_in_{name}"].fill_null(False)).coalesce(0)
        for name, (col, _lo, _hi) in windows.items()
    }
    if latest_nps is not None:
        col, last = latest_nps
        answered = (j[col].notnull() & (j._mi <= _resolve(last, j))).fill_null(False)
        # the latest answer: the largest (month, category) pair, its category the remainder
        tag = (j._mi - _MONTH_FLOOR) * 4 + _nps_code(j[col])
        sums["nps_cat"] = (tag.max(where=answered) % 4).coalesce(0)
    return j.group_by(key).aggregate(**sums)


#: A month number below any in the data (months before 1200 years ago are not expected).
_MONTH_FLOOR = -15_000


def _resolve(bound, table: ir.Table):
    """A window bound as an expression of ``table`` (deferred expressions are bound)."""
    return bound.resolve(table) if hasattr(bound, "resolve") else bound


def span_activity(
    monthly: ir.Table,
    spans: ir.Table,
    *,
    window_start,
    columns: Sequence[str],
) -> ir.Table:
    """Activity per customer and month inside each customer's span of months.

    The cells of a customer x month panel that hold any activity; the panel's other
    months have none.

    Parameters
    ----------
    monthly : ibis.Table
        ``customer_id``, ``date`` and ``columns``, one row per customer and month.
    spans : ibis.Table
        ``customer_id``, ``first`` and ``last`` (month numbers, inclusive), one row per
        customer; other columns are carried along.
    window_start : date-like
        Month 0.
    columns : sequence of str
        Activity columns to sum per customer and month.

    Returns
    -------
    ibis.Table
        The columns of ``spans`` but ``first`` and ``last``, ``k`` (month number) and
        ``columns``: one row per customer and month of its span with activity.
    """
    m = monthly.semi_join(spans, "customer_id")
    m = m.mutate(_k=month_index(m.date, window_start))
    act = m.group_by(["customer_id", "_k"]).aggregate(**{c: m[c].sum() for c in columns})
    j = spans.join(act, "customer_id")
    j = j.filter((j._k >= j["first"]) & (j._k <= j["last"]))
    keep = [c for c in spans.columns if c not in ("first", "last")]
    return j.select(*keep, k=j._k, **{c: j[c] for c in columns})
