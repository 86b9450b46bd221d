"""Sufficient statistics of the experience table, built on the engine.

The experience study reads the survey and ticket events only through these
aggregates, so what reaches Python does not grow with the number of events
(issue 16): counts and sums per calendar period, per customer group, per
driver outcome and per touchpoint, each customer's latest NPS answer before a
date, and per (customer, period) counts for the counting-process rows and the
revenue panel.

Conventions, the same as the pandas computations of
:mod:`analysis.studies.experience` that the tests compare them with:

* a *failed* ticket is one not resolved at the first contact or that missed
  its SLA (a missing outcome is not a failure);
* NPS, CSAT and CES are taken from survey rows, except where a function says
  otherwise;
* "the latest answer" of a customer in a period (or before a date) is the mean
  of the answers given on the latest day with an answer: a database keeps no
  row order, so several answers on one day count equally;
* several tickets of one customer on one day count, in the driver view, as one
  ticket with the day's worst outcome (not resolved at first contact if any
  was not, SLA missed if any was, the most contacts) that was compensated if
  any was.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from analysis.data.sources import Source

#: Period keys of :func:`customer_periods`: a day, or the start of a calendar period.
KEYS = ("day", "week", "month", "quarter")


def _int01(b: ir.BooleanValue) -> ir.IntegerValue:
    """1 / 0 / null from a nullable boolean (not a cast: Postgres has no bool -> smallint)."""
    return ibis.ifelse(b.isnull(), ibis.null("int64"), ibis.ifelse(b, 1, 0).cast("int64"))


def _count(pred: ir.BooleanValue, dtype: str = "int64") -> ir.IntegerScalar:
    """Rows where ``pred`` holds (null counts as not holding)."""
    return ibis.ifelse(pred.fill_null(False), 1, 0).sum().coalesce(0).cast(dtype)


def events(source: Source) -> ir.Table:
    """Return the experience rows with a customer and a date, with helper columns.

    ``_survey`` / ``_ticket`` (the row's kind), ``_fcr``, ``_sla`` and ``_comp``
    (1 / 0 / null), ``_failed`` (a ticket not resolved at the first contact or
    that missed its SLA), and ``_nps``, ``_csat``, ``_ces`` (survey answers as
    floats, null on other rows).
    """
    e = source.table("experience")
    e = e.filter(e.customer_id.notnull(), e.date.notnull())
    survey = (e.kind == "survey").fill_null(False)
    ticket = (e.kind == "ticket").fill_null(False)
    fcr, sla = _int01(e.first_contact_resolution), _int01(e.sla_met)
    failed = ticket & ((fcr == 0).fill_null(False) | (sla == 0).fill_null(False))

    def answer(c: str) -> ir.FloatingValue:
        return ibis.ifelse(survey, e[c].cast("float64"), ibis.null("float64"))

    return e.mutate(
        _survey=survey,
        _ticket=ticket,
        _fcr=fcr,
        _sla=sla,
        _comp=_int01(e.compensated),
        _failed=failed,
        _nps=answer("nps"),
        _csat=answer("csat"),
        _ces=answer("ces"),
    )


def _key(date: ir.DateValue, key: str) -> ir.DateValue:
    from analysis.data.derive import period_start

    if key not in KEYS:
        raise ValueError(f"key must be one of {KEYS}, not {key!r}")
    return period_start(date, key)


def _sum_columns(e: ir.Table) -> dict:
    """The sums behind :func:`analysis.studies.experience.metrics.metrics_from_sums`."""
    ticket = e._ticket
    return dict(
        customers=e.customer_id.nunique(),
        answers=_count(e._survey),
        nps_n=e._nps.count(),
        promoters=_count(e._nps >= 9),
        passives=_count((e._nps >= 7) & (e._nps <= 8)),
        detractors=_count(e._nps <= 6),
        csat_n=e._csat.count(),
        csat_sum=e._csat.sum().coalesce(0.0),
        ces_n=e._ces.count(),
        ces_sum=e._ces.sum().coalesce(0.0),
        tickets=_count(ticket),
        fcr_n=_count(ticket & e._fcr.notnull()),
        fcr_yes=_count(ticket & (e._fcr == 1)),
        contacts_n=_count(ticket & e.contacts_to_resolve.notnull()),
        contacts_sum=ibis.ifelse(ticket, e.contacts_to_resolve.cast("float64"), 0.0)
        .sum()
        .coalesce(0.0),
        contacts_le2=_count(ticket & (e.contacts_to_resolve <= 2)),
        sla_n=_count(ticket & e._sla.notnull()),
        sla_yes=_count(ticket & (e._sla == 1)),
        comp_n=_count(e._failed & e._comp.notnull()),
        comp_yes=_count(e._failed & (e._comp == 1)),
        nps_any=e.nps.count(),
        csat_any=e.csat.count(),
    )


def experience_sums(
    source: Source, *, period: str | None = None, by: str | None = None
) -> ir.Table:
    """Return counts and sums of the experience rows, overall, per period and/or per group.

    One row per group (``by``: a customer attribute, taken from the customers
    table when the experience table lacks it; ``period``: ``"week"``,
    ``"month"`` or ``"quarter"``, column ``period`` = its start date), with
    ``customers`` (distinct customers with a row), ``answers`` (survey rows),
    ``nps_n``, ``promoters``, ``passives``, ``detractors``, ``csat_n`` /
    ``csat_sum``, ``ces_n`` / ``ces_sum`` (survey answers), ``tickets``,
    ``fcr_n`` / ``fcr_yes``, ``contacts_n`` / ``contacts_sum`` /
    ``contacts_le2``, ``sla_n`` / ``sla_yes`` (tickets with the outcome
    recorded, and met), ``comp_n`` / ``comp_yes`` (failed tickets with
    compensation recorded, and compensated), ``nps_any`` and ``csat_any``
    (non-missing values on rows of any kind).
    """
    e = events(source)
    keys: list[str] = []
    if by is not None:
        if by not in e.columns:
            c = source.table("customers").select("customer_id", by)
            c = c.rename(_cid="customer_id")
            e = e.left_join(c, e.customer_id == c._cid).drop("_cid")
        keys.append(by)
    if period is not None:
        e = e.mutate(period=_key(e.date, period))
        keys.append("period")
    cols = _sum_columns(e)
    return e.group_by(keys).aggregate(**cols) if keys else e.aggregate(**cols)


#: The driver view's groups, in order: (driver, outcome).
DRIVER_GROUPS = (
    ("ticket in the previous days", "none"),
    ("first-contact resolution", "yes"),
    ("first-contact resolution", "no"),
    ("SLA", "met"),
    ("SLA", "missed"),
    ("contacts to resolve", "1"),
    ("contacts to resolve", "2"),
    ("contacts to resolve", "3 or more"),
    ("failed ticket compensated", "yes"),
    ("failed ticket compensated", "no"),
)


def _driver_predicates(m: ir.Table) -> list[ir.BooleanValue]:
    """Which answers of ``m`` (answers with their matched ticket) fall in each of
    :data:`DRIVER_GROUPS`, in its order."""
    has = m._td.notnull()
    failed = has & ((m.t_fcr == 0).fill_null(False) | (m.t_sla == 0).fill_null(False))
    return [
        ~has,
        has & (m.t_fcr == 1),
        has & (m.t_fcr == 0),
        has & (m.t_sla == 1),
        has & (m.t_sla == 0),
        has & (m.t_contacts == 1),
        has & (m.t_contacts == 2),
        has & (m.t_contacts >= 3),
        failed & (m.t_comp == 1),
        failed & ~(m.t_comp == 1).fill_null(False),
    ]


DRIVER_SUMS = ("answers", "customers", "csat_n", "csat_sum", "csat_ss", "nps_n")
DRIVER_SUMS += ("promoters", "detractors", "ces_n", "ces_sum")


def driver_sums(source: Source, *, window_days: int) -> ir.Table:
    """Return one row of sums per driver group, as wide columns ``g<i>_<sum>``.

    Each survey answer is matched to the same customer's latest ticket day up
    to ``window_days`` days before it (the same day included; the day's
    tickets count as one with the day's worst outcome). Group ``i`` is the
    i-th of :data:`DRIVER_GROUPS`; the sums are
    :data:`DRIVER_SUMS` (``csat_ss``: sum of squares).
    """
    e = events(source)
    sv = e.filter(e._survey).select("customer_id", "date", "_csat", "_nps", "_ces")
    tk = e.filter(e._ticket)
    td = tk.group_by(["customer_id", "date"]).aggregate(
        t_fcr=tk._fcr.min(),
        t_sla=tk._sla.min(),
        t_contacts=tk.contacts_to_resolve.cast("float64").max(),
        t_comp=tk._comp.max(),
    )
    sd = sv.select("customer_id", "date").distinct()
    td_k = td.select(_c="customer_id", _td="date")
    lo = sd.date - ibis.interval(days=int(window_days))
    j = sd.join(td_k, [sd.customer_id == td_k._c, td_k._td <= sd.date, td_k._td >= lo])
    latest = j.group_by(["customer_id", "date"]).aggregate(_td=j._td.max())
    latest = latest.rename(_lc="customer_id", _ld="date")
    m = sv.left_join(latest, [sv.customer_id == latest._lc, sv.date == latest._ld])
    m = m.drop("_lc", "_ld")
    td_r = td.rename(_rc="customer_id", _rd="date")
    m = m.left_join(td_r, [m.customer_id == td_r._rc, m._td == td_r._rd]).drop("_rc", "_rd")
    cols = {}
    for i, pred in enumerate(_driver_predicates(m)):
        cs = ibis.ifelse(pred.fill_null(False), m._csat, ibis.null("float64"))
        ns = ibis.ifelse(pred.fill_null(False), m._nps, ibis.null("float64"))
        ce = ibis.ifelse(pred.fill_null(False), m._ces, ibis.null("float64"))
        cols.update(
            {
                f"g{i}_answers": _count(pred),
                f"g{i}_customers": m.customer_id.nunique(where=pred.fill_null(False)),
                f"g{i}_csat_n": cs.count(),
                f"g{i}_csat_sum": cs.sum().coalesce(0.0),
                f"g{i}_csat_ss": (cs * cs).sum().coalesce(0.0),
                f"g{i}_nps_n": ns.count(),
                f"g{i}_promoters": _count(ns >= 9),
                f"g{i}_detractors": _count(ns <= 6),
                f"g{i}_ces_n": ce.count(),
                f"g{i}_ces_sum": ce.sum().coalesce(0.0),
            }
        )
    return m.aggregate(**cols)


def driver_group_names() -> list[tuple[str, str]]:
    """The (driver, outcome) of each group of :func:`driver_sums`, in order."""
    return list(DRIVER_GROUPS)


def latest_nps(source: Source, *, before: dt.date | str) -> ir.Table:
    """Return each customer's latest NPS answer dated before ``before``: ``customer_id``, ``nps``.

    Rows of any kind with an NPS value count; the latest day's answers are averaged.
    """
    e = source.table("experience")
    cut = ibis.literal(dt.date.fromisoformat(str(before)[:10]), type="date")
    e = e.filter(e.customer_id.notnull(), e.date.notnull(), e.nps.notnull(), e.date < cut)
    e = e.mutate(_last=e.date.max().over(ibis.window(group_by="customer_id")))
    e = e.filter(e.date == e._last)
    return e.group_by("customer_id").aggregate(nps=e.nps.cast("float64").mean())


def touchpoint_sums(source: Source) -> ir.Table:
    """Return per ticket touchpoint: ``customers`` (distinct), ``tickets`` and ``failed``."""
    e = events(source)
    t = e.filter(e._ticket)
    return t.group_by(t.touchpoint.cast("string").name("touchpoint")).aggregate(
        customers=t.customer_id.nunique(),
        tickets=t.count(),
        failed=_count(t._failed),
    )


def failed_touchpoints(source: Source) -> list[str]:
    """Return the touchpoints of failed tickets, sorted (the columns of :func:`customer_periods`)."""
    e = events(source)
    t = e.filter(e._failed, e.touchpoint.notnull())
    tps = t.select(tp=t.touchpoint.cast("string")).distinct().to_pyarrow().column(0).to_pylist()
    return sorted(tps)


#: Stream counts of :func:`customer_periods` (the counting process's windowed counts).
STREAMS = (
    "tickets",
    "unresolved",
    "sla_breaches",
    "failures",
    "compensated_failures",
    "uncompensated_failures",
)


def customer_periods(source: Source, *, key: str, touchpoints: list[str] | None = None) -> ir.Table:
    """Return one row per customer and ``key`` (a day or a calendar period) with events.

    Columns: ``customer_id``, ``date`` (the day, or the period's start),
    the :data:`STREAMS` counts (tickets; not resolved at first contact; SLA
    missed; failed; failed and compensated; failed and not compensated),
    ``tp<i>`` (failed tickets at the i-th of ``touchpoints``), ``nps_last``
    and ``csat_last`` (the mean survey answer of the latest day with one),
    ``csat_all_n`` / ``csat_all_sum`` (CSAT values on rows of any kind).
    """
    e = events(source)
    e = e.mutate(_k=_key(e.date, key))
    w = ibis.window(group_by=["customer_id", "_k"])
    e = e.mutate(
        _nps_day=ibis.ifelse(e._nps.notnull(), e.date, ibis.null("date")),
        _csat_day=ibis.ifelse(e._csat.notnull(), e.date, ibis.null("date")),
    )
    e = e.mutate(_nps_day=e._nps_day.max().over(w), _csat_day=e._csat_day.max().over(w))
    t = e._ticket
    # counts per customer and period fit in int32: half the memory of the pulled table
    cols = dict(
        tickets=_count(t, "int32"),
        unresolved=_count(t & (e._fcr == 0), "int32"),
        sla_breaches=_count(t & (e._sla == 0), "int32"),
        failures=_count(e._failed, "int32"),
        compensated_failures=_count(e._failed & (e._comp == 1), "int32"),
        uncompensated_failures=_count(e._failed & ~(e._comp == 1).fill_null(False), "int32"),
    )
    for i, tp in enumerate(touchpoints or []):
        cols[f"tp{i}"] = _count(e._failed & (e.touchpoint.cast("string") == tp), "int32")
    cols.update(
        nps_last=e._nps.mean(where=e.date == e._nps_day),
        csat_last=e._csat.mean(where=e.date == e._csat_day),
        csat_all_n=e.csat.count().cast("int32"),
        csat_all_sum=e.csat.cast("float64").sum().coalesce(0.0),
    )
    out = e.group_by(["customer_id", "_k"]).aggregate(**cols)
    return out.rename(date="_k")
