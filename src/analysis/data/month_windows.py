"""Sums of monthly activity over windows of calendar months, computed on the engine.

The loyalty frames (landmark, sequential trials, event-study panel) need, for each
customer and *anchor* month (a landmark month, a trial month), sums of the customer's
monthly purchases and service events over windows of months around it, and the latest
NPS answer before it. This module builds them as engine queries, so that only the
frame's rows (one per customer and anchor month, or per customer and active month for
the event study) reach Python, never the events or the monthly activity:

* :func:`cumulative_grid`: one row per customer and month ``k`` (-1 = every month
  before the window start, 0 = the window start month, ..., ``n_months`` - 1): the
  running sums of each activity column through month ``k``, and the category of the
  latest NPS answer through month ``k`` (0 none, 1 detractor, 2 passive, 3 promoter);
* :func:`window_sums`: for anchor rows, the sum of a column over months ``a .. b``
  as the difference of two running sums (two equi-joins per distinct month, no range
  join, so the cost grows with the anchors and the months, not with their product);
* :func:`month_panel`: one row per customer and month of a span, with that month's
  activity (0 without any).

Months are numbered from the window start month: ``(year - y0) * 12 + month - m0``.
The same numbers as :func:`analysis.studies.loyalty.frames._month_index`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
import pyarrow as pa

__all__ = [
    "NPS_CATEGORY",
    "cumulative_grid",
    "month_index",
    "month_panel",
    "months_table",
    "window_sums",
]

#: Category codes of the latest NPS answer: 0 none, 1 detractor (0-6), 2 passive (7-8),
#: 3 promoter (9-10).
NPS_CATEGORY = ("none", "detractor", "passive", "promoter")


def month_index(date: ir.DateValue, window_start) -> ir.IntegerValue:
    """Calendar months from the month of ``window_start`` to the month of ``date``."""
    import pandas as pd

    ws = pd.Timestamp(window_start)
    return (date.year().cast("int64") - ws.year) * 12 + date.month().cast("int64") - ws.month


def months_table(first: int, stop: int, name: str = "k") -> ir.Table:
    """A small in-memory table of the month numbers ``first .. stop - 1``."""
    return ibis.memtable(pa.table({name: pa.array(range(first, stop), pa.int64())}))


def _nps_code(score: ir.FloatingValue) -> ir.IntegerValue:
    return ibis.cases((score <= 6, 1), (score <= 8, 2), else_=3)


def cumulative_grid(
    monthly: ir.Table,
    customers: ir.Table,
    *,
    window_start,
    n_months: int,
    columns: Sequence[str],
    nps_last: str | None = None,
) -> ir.Table:
    """Running sums of monthly activity per customer, through each month of the window.

    Parameters
    ----------
    monthly : ibis.Table
        One row per customer and month: ``customer_id``, ``date`` (any day of the
        month) and ``columns``; ``nps_last`` (the month's latest NPS answer, null
        without one) if given.
    customers : ibis.Table
        ``customer_id`` of the customers to cover (one row each).
    window_start : date-like
        Month 0.
    n_months : int
        Months of the window: the grid runs from -1 (every month before the window,
        summed) to ``n_months`` - 1; later months are left out.
    columns : sequence of str
        Columns of ``monthly`` to sum.
    nps_last : str, optional
        Column of ``monthly`` with the month's latest NPS answer.

    Returns
    -------
    ibis.Table
        ``customer_id``, ``k`` and, per column, its sum over months ``<= k``
        (0 without activity); ``nps_cat`` with ``nps_last``: the category code of the
        latest answer in a month ``<= k`` (0 without one).
    """
    m = monthly.semi_join(customers, "customer_id")
    mi = month_index(m.date, window_start)
    m = m.mutate(_mi=mi, _k=ibis.greatest(mi, -1))
    m = m.filter(m._mi < n_months)
    sums = {c: m[c].sum() for c in columns}
    act = m.group_by(["customer_id", "_k"]).aggregate(**sums)
    if nps_last is not None:
        # the latest answered month in each grid month (-1 gathers every earlier month)
        a = m.filter(m[nps_last].notnull())
        latest = a.group_by(["customer_id", "_k"]).aggregate(_last=a._mi.max())
        last = a.semi_join(
            latest, [a.customer_id == latest.customer_id, a._k == latest._k, a._mi == latest._last]
        )
        last = last.select("customer_id", "_k", _cat=_nps_code(last[nps_last]))
        act = act.left_join(last, ["customer_id", "_k"]).select(*act.columns, "_cat")
    grid = customers.select("customer_id").cross_join(months_table(-1, n_months))
    g = grid.left_join(act, [grid.customer_id == act.customer_id, grid.k == act._k])
    g = g.select(
        grid.customer_id,
        grid.k,
        *[act[c].coalesce(0).name(c) for c in columns],
        *([act._cat] if nps_last is not None else []),
    )
    w = ibis.cumulative_window(group_by="customer_id", order_by="k")
    out = {c: g[c].sum().over(w) for c in columns}
    if nps_last is not None:
        # latest answer: the largest (k + 1) * 4 + category so far, its category the remainder
        tagged = ibis.ifelse(g._cat.notnull(), (g.k + 1) * 4 + g._cat, 0)
        out["nps_cat"] = tagged.max().over(w) % 4
    return g.select("customer_id", "k", **out)


def window_sums(
    anchors: ir.Table,
    grid: ir.Table,
    lookups: Mapping[str, object],
    windows: Mapping[str, tuple[str, str | None, str]],
    *,
    carry: Mapping[str, tuple[str, str]] | None = None,
) -> ir.Table:
    """Sums of activity over windows of months around each anchor row.

    Parameters
    ----------
    anchors : ibis.Table
        One row per anchor, with ``customer_id`` and whatever the lookups use.
    grid : ibis.Table
        A :func:`cumulative_grid` of the anchors' customers.
    lookups : mapping
        Name -> month number (an expression of ``anchors`` or a deferred ``ibis._``
        expression) at which to read the
        running sums. Months must lie in the grid (-1 .. n_months - 1).
    windows : mapping
        Output column -> (grid column, lookup before the window or None, lookup at its
        last month): the sum over months after the first lookup's month through the
        second's (from the beginning with None).
    carry : mapping, optional
        Output column -> (grid column, lookup): the grid value at that month as it is
        (e.g. ``nps_cat``).

    Returns
    -------
    ibis.Table
        The anchor columns and the window columns.
    """
    carry = dict(carry or {})
    used = {lk for _, a, b in windows.values() for lk in (a, b) if lk is not None}
    used |= {lk for _, lk in carry.values()}
    t = anchors.mutate(**{f"_k_{name}": lookups[name] for name in sorted(used)})
    keep = list(anchors.columns)
    for name in sorted(used):
        cols = sorted(
            {c for c, a, b in windows.values() if name in (a, b)}
            | {c for c, lk in carry.values() if lk == name}
        )
        g = grid.select(
            _g_id=grid.customer_id, _g_k=grid.k, **{f"{c}@{name}": grid[c] for c in cols}
        )
        j = t.left_join(g, [t.customer_id == g._g_id, t[f"_k_{name}"] == g._g_k])
        t = j.select(*t.columns, *[f"{c}@{name}" for c in cols])

    def at(col: str, name: str):
        return t[f"{col}@{name}"].coalesce(0)

    out = {}
    for column, (col, before, last) in windows.items():
        value = at(col, last)
        if before is not None:
            value = value - at(col, before)
        out[column] = value
    for column, (col, name) in carry.items():
        out[column] = at(col, name)
    return t.select(*keep, **out)


def month_panel(
    monthly: ir.Table,
    spans: ir.Table,
    *,
    window_start,
    n_months: int,
    columns: Sequence[str],
) -> ir.Table:
    """One row per customer and month of its span, with the month's activity.

    Parameters
    ----------
    monthly : ibis.Table
        ``customer_id``, ``date`` and ``columns``, one row per customer and month.
    spans : ibis.Table
        ``customer_id``, ``first`` and ``last`` (month numbers, inclusive; no month when
        ``last < first``), one row per customer; other columns are carried along.
    window_start : date-like
        Month 0.
    n_months : int
        Months 0 .. ``n_months`` - 1 are candidates.
    columns : sequence of str
        Activity columns (0 in a month without any).

    Returns
    -------
    ibis.Table
        The columns of ``spans`` but ``first`` and ``last``, ``k`` (month number) and
        ``columns``.
    """
    months = months_table(0, n_months)
    rows = spans.cross_join(months)
    rows = rows.filter((rows.k >= rows["first"]) & (rows.k <= rows["last"]))
    m = monthly.semi_join(spans, "customer_id")
    m = m.mutate(_k=month_index(m.date, window_start))
    act = m.group_by(["customer_id", "_k"]).aggregate(**{c: m[c].sum() for c in columns})
    j = rows.left_join(act, [rows.customer_id == act.customer_id, rows.k == act._k])
    keep = [rows[c] for c in spans.columns if c not in ("first", "last")]
    return j.select(*keep, rows.k, *[act[c].coalesce(0).name(c) for c in columns])
