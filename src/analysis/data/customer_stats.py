"""Per-customer sufficient statistics of the event tables, as Ibis expressions.

The customer value study needs, from the transactions and experience tables, only
a few numbers per customer: the RFM summary of the purchase models, purchase
counts, spend and last purchase in a handful of windows, the repeat purchases per
day of the tracking plot, and service counts before each churn-risk cutoff. These
functions build them on the engine (DuckDB, Postgres or Spark), so what reaches
Python is one row per customer (or per customer and window, or per day), whatever
the number of events.

Same-day purchases of one customer are merged into one transaction before
anything is counted, as in Fader, Hardie & Lee (2005) and
:func:`analysis.studies.value.rfm_summary`.

Each function returns an expression; callers pull it (``.to_pyarrow()``). Only the RFM
table (by ``customer_id``) and the repeat purchases (by date) come sorted, because their
order decides an order downstream; the callers of the others place rows by key, and
sorting tens of millions of rows on the engine would cost time for nothing.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from analysis.data.sources import Source


def _date(d: dt.date | str) -> ir.DateScalar:
    return ibis.literal(dt.date.fromisoformat(str(d)[:10]), type="date")


def _value_columns(t: ir.Table, margin: bool) -> dict:
    """Amount and, with ``margin``, margin per row, missing values as 0."""
    out = {"amount": t.amount.cast("float64").coalesce(0.0)}
    if margin:
        out["margin"] = t.margin.cast("float64").coalesce(0.0)
    return out


def input_gaps(source: Source) -> ir.Table:
    """Return one row of counts over the transactions: ``no_id``, ``no_date`` and
    ``no_amount`` (rows missing them) and ``margins`` (rows with a margin)."""
    t = source.table("transactions")
    return t.aggregate(
        no_id=t.customer_id.isnull().sum(),
        no_date=t.date.isnull().sum(),
        no_amount=t.amount.isnull().sum(),
        margins=t.margin.count(),
    )


def _with_codes(source: Source, t: ir.Table) -> ir.Table:
    """``t`` with ``customer_id`` replaced by the int32 ``_code`` of
    :meth:`analysis.data.Source.customer_keys` (an engine hash join)."""
    k = source.customer_keys()
    j = t.join(k, "customer_id")
    return j.select(*[c for c in t.columns if c != "customer_id"], _code=j._code)


def _only_codes(t: ir.Table, codes) -> ir.Table:
    """The rows of ``t`` (keyed by ``_code``) of the customer codes ``codes`` (a semi-join
    with an in-memory table of them)."""
    import numpy as np
    import pyarrow as pa

    keep = pa.table({"_code": pa.array(np.unique(np.asarray(codes, dtype=np.int32)))})
    return t.semi_join(ibis.memtable(keep), "_code")


def _with_ids(source: Source, t: ir.Table) -> ir.Table:
    """Undo :func:`_with_codes`: ``customer_id`` (first) back in place of ``_code``."""
    k = source.customer_keys()
    j = t.join(k, "_code")
    return j.select("customer_id", *[c for c in t.columns if c != "_code"])


def _daily(source: Source, *, end, since_signup=None, margin: bool = False) -> ir.Table:
    """:func:`daily_purchases` keyed by the customer code ``_code``: the customer-day
    group-by runs on integers, which the engine can spill (see ``Source.customer_keys``)."""
    t = source.table("transactions")
    t = t.filter(t.customer_id.notnull(), t.date.notnull(), t.date <= _date(end))
    if since_signup is not None:
        c = source.table("customers")
        c = c.filter(c.signup_date >= _date(since_signup)).select("customer_id")
        t = t.semi_join(c, "customer_id")
    vals = _value_columns(t, margin)
    t = _with_codes(source, t.select("customer_id", "date", **vals))
    return t.group_by(["_code", "date"]).aggregate(**{k: t[k].sum() for k in vals})


def daily_purchases(source: Source, *, end, since_signup=None, margin: bool = False) -> ir.Table:
    """Return one row per customer and purchase day up to ``end`` (inclusive).

    Columns: ``customer_id``, ``date``, ``amount`` (the day's total) and, with
    ``margin``, ``margin`` (missing values count as 0). With ``since_signup``, only customers who signed
    up on or after that date (the cohort whose first purchase is in the data).
    """
    return _with_ids(source, _daily(source, end=end, since_signup=since_signup, margin=margin))


def rfm(
    source: Source,
    *,
    calibration_end,
    observation_end=None,
    since_signup=None,
    margin=False,
    coded: bool = False,
) -> ir.Table:
    """Return the RFM statistics, one row per customer with a purchase by ``calibration_end``.

    Columns: ``customer_id``; ``first`` and ``last`` (first and last purchase day in
    the calibration period); ``days`` (distinct purchase days in it); ``total`` and
    ``first_value`` (value of all of them, of the first day's); with ``margin``,
    ``margin_total``; with ``observation_end``: ``holdout_days`` and
    ``holdout_value`` (purchase days and value after ``calibration_end`` up to it).
    With ``coded``, ``_code`` (the customer code of ``Source.customer_keys``, ascending)
    instead of ``customer_id``: code k is element k of ``Source.sorted_customer_ids()``,
    so the identifiers go back in Python where needed (joining them back on the engine
    ran DuckDB out of a 1 GB cap at 10M customers).
    """
    end = observation_end if observation_end is not None else calibration_end
    d = _daily(source, end=end, since_signup=since_signup, margin=margin)
    cal = d.date <= _date(calibration_end)
    aggs = {
        "first": d.date.min(where=cal),
        "last": d.date.max(where=cal),
        "days": d.count(where=cal),
        "total": d.amount.sum(where=cal),
        # the first day's value (one row per day, so no ties); a customer kept has a
        # calibration purchase, so their first day is in the calibration period
        "first_value": d.amount.argmin(d.date),
    }
    if margin:
        aggs["margin_total"] = d.margin.sum(where=cal)
    if observation_end is not None:
        aggs["holdout_days"] = d.count(where=~cal)
        aggs["holdout_value"] = d.amount.sum(where=~cal).coalesce(0.0)
    out = d.group_by("_code").aggregate(**aggs)
    out = out.filter(out.days > 0)
    if coded:
        return out.order_by("_code")
    return _with_ids(source, out).order_by("customer_id")


def repeat_purchases_by_day(
    source: Source, *, calibration_end, observation_end, since_signup=None
) -> ir.Table:
    """Return the repeat purchase days per calendar day: ``date``, ``purchases``.

    A repeat purchase day is a customer's purchase day after their first one, up to
    ``observation_end``; customers whose first purchase is after ``calibration_end``
    are left out (they are not in the calibration summary the plot compares with).
    """
    d = _daily(source, end=observation_end, since_signup=since_signup)
    first = d.group_by("_code").aggregate(_first=d.date.min())
    first = first.filter(first._first <= _date(calibration_end))
    j = d.inner_join(first, "_code")
    j = j.filter(j.date > j._first)
    return j.group_by("date").aggregate(purchases=j.count()).order_by("date")


def window_bins(source: Source, edges, *, coded: bool = False, codes=None) -> ir.Table:
    """Return purchases per customer between fixed days: one row per customer and bin.

    Bin k holds the transactions dated in (edges[k-1], edges[k]] (bin 0: on or before
    edges[0]; the last bin: after every edge). Columns: ``customer_id``, ``bin``,
    ``purchases`` (transaction rows), ``amount`` (their total, missing amounts as 0),
    ``last`` (latest date in the bin). Windows ending at any edge are sums of bins.
    With ``coded``, ``_code`` instead of ``customer_id`` (see :func:`rfm`). ``codes``
    (customer codes): only those customers' transactions (a semi-join on the engine).
    """
    t = source.table("transactions")
    t = t.filter(t.customer_id.notnull(), t.date.notnull())
    edges = sorted({dt.date.fromisoformat(str(e)[:10]) for e in edges})
    b = ibis.literal(0, type="int32")
    for e in edges:
        b = b + ibis.ifelse(t.date > _date(e), 1, 0).cast("int32")
    t = t.mutate(bin=b, _amount=_value_columns(t, False)["amount"])
    t = _with_codes(source, t.select("customer_id", "date", "bin", "_amount"))
    if codes is not None:
        t = _only_codes(t, codes)
    out = t.group_by(["_code", "bin"]).aggregate(
        purchases=t.count(), amount=t._amount.sum(), last=t.date.max()
    )
    return out if coded else _with_ids(source, out)


def value_totals(
    source: Source, *, recent_since, margin: bool = False, coded: bool = False
) -> ir.Table:
    """Return per customer: ``value`` (margin with ``margin``, else amount) of all
    transactions, and ``recent_value``, of those dated on or after ``recent_since``.
    With ``coded``, ``_code`` instead of ``customer_id`` (see :func:`rfm`)."""
    t = source.table("transactions")
    t = t.filter(t.customer_id.notnull())
    vals = _value_columns(t, margin)
    v = vals["margin" if margin else "amount"]
    t = t.mutate(_v=v)
    out = t.group_by("customer_id").aggregate(
        value=t._v.sum(), recent_value=t._v.sum(where=t.date >= _date(recent_since))
    )
    out = out.mutate(recent_value=out.recent_value.coalesce(0.0))
    return _with_codes(source, out) if coded else out


def experience_features(source: Source, *, cutoff, coded: bool = False, codes=None) -> ir.Table:
    """Return service features per customer as of ``cutoff`` (events on or before it).

    Columns: ``tickets_90d``, ``unresolved_90d`` (first contact did not resolve),
    ``sla_breaches_90d`` (tickets in the 90 days to the cutoff: dated after
    cutoff - 90 days); ``csat_sum_365d`` and ``csat_n_365d`` (CSAT answers in the 365
    days); ``nps_last`` (the latest day's NPS answer, the mean where one day has
    several; null without answers). One row per customer with an event. With
    ``coded``, ``_code`` instead of ``customer_id`` (see :func:`rfm`); with ``codes`` as
    well, only those customers (see :func:`window_bins`).
    """
    e = source.table("experience")
    cut = dt.date.fromisoformat(str(cutoff)[:10])
    e = e.filter(e.customer_id.notnull(), e.date.notnull(), e.date <= _date(cut))
    ticket = (e.kind == "ticket").fill_null(False)
    d90 = e.date > _date(cut - dt.timedelta(days=90))
    d365 = e.date > _date(cut - dt.timedelta(days=365))
    t90 = ticket & d90
    csat = e.csat.cast("float64")
    nps = e.nps.cast("float64")
    e = e.mutate(
        _t90=ibis.ifelse(t90, 1, 0),
        _unres=ibis.ifelse(t90 & (e.first_contact_resolution == False).fill_null(False), 1, 0),  # noqa: E712
        _breach=ibis.ifelse(t90 & (e.sla_met == False).fill_null(False), 1, 0),  # noqa: E712
        _csat=ibis.ifelse(d365 & csat.notnull(), csat, ibis.null("float64")),
        _nps=nps,
        _nps_day=ibis.ifelse(nps.notnull(), e.date, ibis.null("date")),
    )
    e = e.mutate(_nps_last_day=e._nps_day.max().over(ibis.window(group_by="customer_id")))
    out = e.group_by("customer_id").aggregate(
        tickets_90d=e._t90.sum(),
        unresolved_90d=e._unres.sum(),
        sla_breaches_90d=e._breach.sum(),
        csat_sum_365d=e._csat.sum(),
        csat_n_365d=e._csat.count(),
        nps_last=e._nps.mean(where=e._nps_day == e._nps_last_day),
    )
    if not coded:
        return out
    out = _with_codes(source, out)
    return out if codes is None else _only_codes(out, codes)


def first_purchase_days(source: Source, n: int = 2) -> ir.Table:
    """Return each customer's first ``n`` distinct purchase days: ``customer_id``, ``date``.

    Enough for the time to the second purchase, at most ``n`` rows per customer.
    """
    t = source.table("transactions")
    t = t.filter(t.customer_id.notnull(), t.date.notnull()).select("customer_id", "date")
    # k-th day = the earliest day after the (k-1)-th: n group-bys and joins, which an engine
    # can spill to disk, instead of a window sorted per customer (at 10M customers and 250M
    # rows, DuckDB ran out of its 1 GB with the window)
    days = t.group_by("customer_id").aggregate(date=t.date.min())
    out = days
    for _ in range(1, n):
        j = t.join(days.rename(_prev="date"), "customer_id")
        j = j.filter(j.date > j._prev)
        days = j.group_by("customer_id").aggregate(date=j.date.min())
        out = out.union(days)
    return out


def _month(date: ir.DateValue) -> ir.DateValue:
    return ibis.date(date.year(), date.month(), 1)


def monthly_purchases(source: Source) -> ir.Table:
    """Return purchases per customer and calendar month: ``customer_id``, ``date`` (first
    day of the month), ``amount`` (total) and ``purchases`` (rows), as
    :func:`analysis.studies.loyalty.activity.monthly_purchases` computes them in pandas."""
    return monthly_purchases_of(source.table("transactions"))


def monthly_purchases_of(t: ir.Table) -> ir.Table:
    """:func:`monthly_purchases` of a transactions table (``customer_id``, ``date``,
    ``amount``; one row per purchase) on its engine."""
    t = t.filter(t.customer_id.notnull(), t.date.notnull())
    t = t.mutate(_m=_month(t.date))
    out = t.group_by(["customer_id", "_m"]).aggregate(
        amount=t.amount.cast("float64").sum(), purchases=t.count()
    )
    return out.select("customer_id", date=out._m, amount=out.amount, purchases=out.purchases)


def monthly_service(source: Source) -> ir.Table:
    """Return service events per customer and calendar month, as
    :func:`analysis.studies.loyalty.activity.monthly_service` computes them in pandas:
    ``tickets``, ``unresolved``, ``sla_breaches``, ``nps_n``, ``nps_sum``, ``csat_n``,
    ``csat_sum`` and ``nps_last`` (the mean answer of the month's latest answer day)."""
    return monthly_service_of(source.table("experience"))


#: Optional columns of the experience table, and their type when absent.
_SERVICE_OPTIONAL = {
    "kind": "string",
    "nps": "float64",
    "csat": "float64",
    "first_contact_resolution": "boolean",
    "sla_met": "boolean",
}


def _with_service_columns(e: ir.Table) -> ir.Table:
    missing = {c: ibis.null(t) for c, t in _SERVICE_OPTIONAL.items() if c not in e.columns}
    return e.mutate(**missing) if missing else e


def monthly_service_of(e: ir.Table) -> ir.Table:
    """:func:`monthly_service` of an experience table (contract columns; the optional
    ones may be absent) on its engine."""
    e = _with_service_columns(e)
    e = e.filter(e.customer_id.notnull(), e.date.notnull())
    ticket = (e.kind == "ticket").fill_null(False)
    nps, csat = e.nps.cast("float64"), e.csat.cast("float64")
    e = e.mutate(
        _m=_month(e.date),
        _t=ibis.ifelse(ticket, 1, 0),
        _u=ibis.ifelse(ticket & (e.first_contact_resolution == False).fill_null(False), 1, 0),  # noqa: E712
        _b=ibis.ifelse(ticket & (e.sla_met == False).fill_null(False), 1, 0),  # noqa: E712
        _nps=nps,
        _csat=csat,
        _nps_day=ibis.ifelse(nps.notnull(), e.date, ibis.null("date")),
    )
    e = e.mutate(_last=e._nps_day.max().over(ibis.window(group_by=["customer_id", "_m"])))
    out = e.group_by(["customer_id", "_m"]).aggregate(
        tickets=e._t.sum().cast("int64"),
        unresolved=e._u.sum().cast("int64"),
        sla_breaches=e._b.sum().cast("int64"),
        nps_n=e._nps.count(),
        nps_sum=e._nps.sum().coalesce(0.0),
        csat_n=e._csat.count(),
        csat_sum=e._csat.sum().coalesce(0.0),
        nps_last=e._nps.mean(where=e._nps_day == e._last),
    )
    out = out.rename(date="_m")
    cols = ["customer_id", "date", "tickets", "unresolved", "sla_breaches"]
    cols += ["nps_n", "nps_sum", "csat_n", "csat_sum", "nps_last"]
    return out.select(*cols)
