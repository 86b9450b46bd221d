"""Derived tables as Ibis expressions: customer lifetimes, customer-period panel, cohorts.

The functions take a validated :class:`~analysis.data.Source` and return Ibis
table expressions, so the same code runs on DuckDB, Postgres or Spark; callers
pull only the compact results to pandas (``expr.to_pandas()``).

Time units: ``*_days`` columns are whole days; ``*_months`` are days / 30.4375
(the average month). Money columns are in the data's currency.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from analysis.data.sources import Source

DAYS_PER_MONTH = 30.4375
_TRUNC = {"day": "D", "week": "W", "month": "M", "quarter": "Q"}


def period_start(date: ir.DateValue, period: str) -> ir.DateValue:
    """Return the start date of the ``period`` (day/week/month/quarter) holding ``date``.

    Weeks start on Monday.
    """
    # Built from date parts rather than truncate(): DuckDB's date_trunc returns a
    # timestamp, which would make every join on `period` cast on the fly.
    if period == "day":
        return date
    if period == "week":
        return date - date.day_of_week.index().as_interval("D")
    y, m = date.year(), date.month()
    if period == "quarter":
        m = ((m - 1) // 3) * 3 + 1
    return ibis.date(y, m, 1)


def period_starts(first: dt.date, last: dt.date, period: str) -> pd.DatetimeIndex:
    """Return every period start from the period holding ``first`` to the one holding ``last``."""
    freq = {"day": "D", "week": "W-MON", "month": "MS", "quarter": "QS"}[period]
    first_ts = pd.Timestamp(first)
    if period == "week":
        start = first_ts - pd.Timedelta(days=first_ts.weekday())
    elif period == "month":
        start = first_ts.replace(day=1)
    elif period == "quarter":
        start = first_ts.replace(day=1, month=3 * ((first_ts.month - 1) // 3) + 1)
    else:
        start = first_ts
    return pd.date_range(start, pd.Timestamp(last), freq=freq)


def _flag(pred: ir.BooleanValue) -> ir.IntegerValue:
    """Return 1 where ``pred`` holds, else 0, as int8.

    Not ``pred.cast("int8")``: Postgres cannot cast boolean to smallint.
    """
    return ibis.ifelse(pred, 1, 0).cast("int8")


PERIOD_STEP = {
    "day": pd.DateOffset(days=1),
    "week": pd.DateOffset(weeks=1),
    "month": pd.DateOffset(months=1),
    "quarter": pd.DateOffset(months=3),
}  # length of one period: period start + step = the next period's start


def _calendar(first: dt.date, last: dt.date, period: str) -> ir.Table:
    starts = period_starts(first, last, period)
    cal = pd.DataFrame({"period": starts.date, "period_end": (starts + PERIOD_STEP[period]).date})
    return ibis.memtable(cal, schema={"period": "date", "period_end": "date"})


def lifetimes(
    source: Source,
    *,
    definition: str = "contractual",
    inactivity_days: int = 90,
    as_of: dt.date | None = None,
    window_start: dt.date | None = None,
) -> ir.Table:
    """Build one row per customer with start, end, tenure and the churn event.

    Parameters
    ----------
    source : Source
        Validated source (see :func:`analysis.data.load`).
    definition : {"contractual", "inactivity"}
        ``contractual``: churn at ``churn_date`` (censored at ``as_of`` when empty
        or later). ``inactivity``: churn at the last purchase when no purchase
        followed within ``inactivity_days`` before ``as_of``; customers who never
        bought churn at signup on the same rule. Customers whose last purchase
        is closer to ``as_of`` than ``inactivity_days`` are censored at ``as_of``.
    inactivity_days : int
        Days without a purchase that define inactivity churn.
    as_of, window_start : datetime.date, optional
        Default: the source's inferred values.

    Returns
    -------
    ibis.Table
        customer_id, start_date (signup), entry_date (first day observed: the
        later of signup and window start), end_date, entry_days, duration_days,
        entry_months, duration_months (tenure at entry and at end), event (1 =
        churned, 0 = censored), left_truncated (bool), churn_reason,
        first_purchase, last_purchase, n_transactions, revenue (currency),
        segment and every further customer attribute.
    """
    as_of = as_of or source.as_of
    window_start = window_start or source.window_start
    if definition not in ("contractual", "inactivity"):
        raise ValueError(f"definition must be 'contractual' or 'inactivity', not {definition!r}")
    cust = source.table("customers")
    tx = source.table("transactions")
    agg = tx.group_by("customer_id").aggregate(
        first_purchase=tx.date.min(),
        last_purchase=tx.date.max(),
        n_transactions=tx.count(),
        revenue=tx.amount.sum(),
    )
    j = cust.left_join(agg, "customer_id").drop("customer_id_right")
    ws = ibis.literal(window_start, type="date")
    ao = ibis.literal(as_of, type="date")
    entry_date = ibis.greatest(j.signup_date, ws)
    if definition == "contractual":
        churned = j.churn_date.notnull() & (j.churn_date <= ao)
        end_date = ibis.ifelse(churned, j.churn_date, ao)
        reason = ibis.ifelse(churned, j.churn_reason, ibis.null("string"))
    else:
        last_activity = ibis.coalesce(j.last_purchase, j.signup_date)
        churned = ao.delta(last_activity, unit="day") > inactivity_days
        end_date = ibis.ifelse(churned, last_activity, ao)
        reason = ibis.null("string")
    out = j.mutate(
        start_date=j.signup_date,
        entry_date=entry_date,
        end_date=end_date,
        event=_flag(churned),
        churn_reason=reason,
        n_transactions=ibis.coalesce(j.n_transactions, 0),
        revenue=ibis.coalesce(j.revenue, 0.0),
    )
    out = out.mutate(
        entry_days=out.entry_date.delta(out.start_date, unit="day"),
        duration_days=out.end_date.delta(out.start_date, unit="day"),
        left_truncated=out.start_date < ws,
    )
    # Days cast to float first: Spark reads the literal 30.4375 as a DECIMAL and would round
    # the quotient to its scale.
    out = out.mutate(
        entry_months=out.entry_days.cast("float64") / DAYS_PER_MONTH,
        duration_months=out.duration_days.cast("float64") / DAYS_PER_MONTH,
    )
    attrs = [c for c in source.attributes]
    cols = [
        "customer_id",
        "start_date",
        "entry_date",
        "end_date",
        "entry_days",
        "duration_days",
        "entry_months",
        "duration_months",
        "event",
        "left_truncated",
        "churn_reason",
        "first_purchase",
        "last_purchase",
        "n_transactions",
        "revenue",
        "segment",
        *attrs,
    ]
    return out.select(*cols)


def usable_lifetimes(lt: ir.Table) -> ir.Table:
    """Keep lifetimes a survival estimator can use: observed for a positive time after entry.

    A left-truncated customer whose inactivity churn falls before the window
    started (no purchase inside the window) has ``duration <= entry`` and
    carries no information about survival after entry.
    """
    return lt.filter((lt.entry_days == 0) | (lt.duration_days > lt.entry_days))


def _given_or_lifetimes(lifetimes_expr: ir.Table | None, source: Source, **kw) -> ir.Table:
    """Return ``lifetimes_expr`` if the caller built it already, else :func:`lifetimes`."""
    return lifetimes_expr if lifetimes_expr is not None else lifetimes(source, **kw)


def panel(
    source: Source,
    *,
    period: str = "month",
    lifetimes_expr: ir.Table | None = None,
    definition: str = "contractual",
    inactivity_days: int = 90,
    as_of: dt.date | None = None,
    window_start: dt.date | None = None,
    minimal: bool = False,
) -> ir.Table:
    """Build one row per customer and period while the customer is at risk.

    A customer is at risk from the period holding ``entry_date`` to the period
    holding ``end_date`` (the churn period included).

    Returns
    -------
    ibis.Table
        customer_id, period (period start date), revenue (currency), margin
        (currency, null where the data has none), transactions, active
        (bought in the period), member (loyalty member at some point in the
        period), surveys, csat_mean, ces_mean, nps_last (latest NPS answer in
        the period), tickets, unresolved_tickets (tickets not resolved at first
        contact), sla_breaches, compensated, churned (1 in the churn period),
        periods_since_entry, segment. With ``minimal``, only customer_id, period,
        revenue, margin, transactions, active, churned and segment (no loyalty
        or experience joins: what the cohort table needs).
    """
    as_of = as_of or source.as_of
    window_start = window_start or source.window_start
    lt = _given_or_lifetimes(
        lifetimes_expr,
        source,
        definition=definition,
        inactivity_days=inactivity_days,
        as_of=as_of,
        window_start=window_start,
    )
    lt = usable_lifetimes(lt)
    cal = _calendar(window_start, as_of, period)
    base = lt.select("customer_id", "entry_date", "end_date", "event", "segment")
    rows = base.join(cal, (cal.period <= base.end_date) & (cal.period_end > base.entry_date))
    rows = rows.mutate(
        churned=_flag(
            (rows.event == 1) & (rows.end_date >= rows.period) & (rows.end_date < rows.period_end)
        ),
    )
    tx = source.table("transactions")
    tx = tx.mutate(period=period_start(tx.date, period))
    txa = tx.group_by(["customer_id", "period"]).aggregate(
        revenue=tx.amount.sum(), margin=tx.margin.sum(), transactions=tx.count()
    )
    out = rows.left_join(txa, ["customer_id", "period"]).drop("customer_id_right", "period_right")
    out = out.mutate(
        revenue=ibis.coalesce(out.revenue, 0.0),
        transactions=ibis.coalesce(out.transactions, 0),
    )
    if minimal:
        out = out.mutate(active=_flag(out.transactions > 0))
        return out.select(
            "customer_id",
            "period",
            "revenue",
            "margin",
            "transactions",
            "active",
            "churned",
            "segment",
        )
    if source.has("loyalty"):
        loy = source.table("loyalty")
        m = rows.select("customer_id", "period", "period_end").join(loy, "customer_id")
        m = m.filter(
            (m.enrolled_date < m.period_end) & (m.left_date.isnull() | (m.left_date >= m.period))
        )
        mem = m.select("customer_id", "period").distinct().mutate(member=ibis.literal(1, "int8"))
        out = out.left_join(mem, ["customer_id", "period"]).drop(
            "customer_id_right", "period_right"
        )
        out = out.mutate(member=ibis.coalesce(out.member, 0).cast("int8"))
    else:
        out = out.mutate(member=ibis.literal(0, "int8"))
    if source.has("experience"):
        ex = source.table("experience")
        ex = ex.mutate(period=period_start(ex.date, period))
        is_survey = ex.kind == "survey"
        is_ticket = ex.kind == "ticket"
        exa = ex.group_by(["customer_id", "period"]).aggregate(
            surveys=is_survey.sum().cast("int64"),
            csat_mean=ex.csat.mean(),
            ces_mean=ex.ces.mean(),
            nps_last=ex.nps.argmax(ex.date, where=ex.nps.notnull()),
            tickets=is_ticket.sum().cast("int64"),
            unresolved_tickets=(
                is_ticket & (ex.first_contact_resolution == False)  # noqa: E712
            )
            .sum()
            .cast("int64"),
            sla_breaches=(is_ticket & (ex.sla_met == False)).sum().cast("int64"),  # noqa: E712
            compensated=(ex.compensated == True).sum().cast("int64"),  # noqa: E712
        )
        out = out.left_join(exa, ["customer_id", "period"]).drop(
            "customer_id_right", "period_right"
        )
        out = out.mutate(
            **{
                c: ibis.coalesce(out[c], 0)
                for c in ("surveys", "tickets", "unresolved_tickets", "sla_breaches", "compensated")
            }
        )
    else:
        out = out.mutate(
            surveys=ibis.literal(0),
            csat_mean=ibis.null("float64"),
            ces_mean=ibis.null("float64"),
            nps_last=ibis.null("float64"),
            tickets=ibis.literal(0),
            unresolved_tickets=ibis.literal(0),
            sla_breaches=ibis.literal(0),
            compensated=ibis.literal(0),
        )
    out = out.mutate(active=_flag(out.transactions > 0))
    return out.select(
        "customer_id",
        "period",
        "revenue",
        "margin",
        "transactions",
        "active",
        "member",
        "surveys",
        "csat_mean",
        "ces_mean",
        "nps_last",
        "tickets",
        "unresolved_tickets",
        "sla_breaches",
        "compensated",
        "churned",
        "segment",
    )


def cohorts(
    source: Source,
    *,
    period: str = "month",
    panel_expr: ir.Table | None = None,
    lifetimes_expr: ir.Table | None = None,
    definition: str = "contractual",
    inactivity_days: int = 90,
    as_of: dt.date | None = None,
    window_start: dt.date | None = None,
) -> ir.Table:
    """Build the acquisition-cohort table: cohort x periods since acquisition.

    Only cohorts acquired inside the data window are included: a cohort that
    signed up before the window is seen only through its survivors.

    Returns
    -------
    ibis.Table
        cohort (period start of signup), periods_since (0 = signup period),
        cohort_size, customers_active (still customers at the end of the
        period: not churned in or before it), retention_rate, revenue (currency), revenue_retention
        (revenue / revenue in period 0).
    """
    as_of = as_of or source.as_of
    window_start = window_start or source.window_start
    lt = _given_or_lifetimes(
        lifetimes_expr,
        source,
        definition=definition,
        inactivity_days=inactivity_days,
        as_of=as_of,
        window_start=window_start,
    )
    pn = (
        panel_expr
        if panel_expr is not None
        else panel(
            source,
            period=period,
            lifetimes_expr=lt,
            as_of=as_of,
            window_start=window_start,
            minimal=True,
        )
    )
    ws = ibis.literal(window_start, type="date")
    members = lt.filter(lt.start_date >= ws).select(
        "customer_id", cohort=period_start(lt.start_date, period)
    )
    j = pn.join(members, "customer_id")
    j = j.mutate(periods_since=_periods_since(j.period, j.cohort, period))
    g = j.group_by(["cohort", "periods_since"]).aggregate(
        customers_active=(1 - j.churned).sum(), revenue=j.revenue.sum()
    )
    size = members.group_by("cohort").aggregate(cohort_size=members.count())
    rev0 = g.filter(g.periods_since == 0).select("cohort", revenue0=g.revenue)
    out = g.join(size, "cohort").left_join(rev0, "cohort").drop("cohort_right")
    out = out.mutate(
        # Cast first: Postgres divides integers as integers.
        retention_rate=out.customers_active.cast("float64") / out.cohort_size,
        revenue_retention=ibis.ifelse(
            out.revenue0 > 0, out.revenue / out.revenue0, ibis.null("float64")
        ),
    )
    return out.select(
        "cohort",
        "periods_since",
        "cohort_size",
        "customers_active",
        "retention_rate",
        "revenue",
        "revenue_retention",
    ).order_by(["cohort", "periods_since"])


def _periods_since(period_date: ir.DateValue, cohort: ir.DateValue, period: str) -> ir.IntegerValue:
    """Whole periods from ``cohort`` to ``period_date`` (both period starts)."""
    if period == "month":
        since = (period_date.year() - cohort.year()) * 12 + (period_date.month() - cohort.month())
    elif period == "quarter":
        since = (period_date.year() - cohort.year()) * 4 + (
            period_date.quarter() - cohort.quarter()
        )
    elif period == "week":
        since = period_date.delta(cohort, unit="day") // 7
    else:
        since = period_date.delta(cohort, unit="day")
    return since.cast("int64")


def cohort_table(
    source: Source,
    *,
    period: str = "month",
    lifetimes_expr: ir.Table | None = None,
    definition: str = "contractual",
    inactivity_days: int = 90,
    as_of: dt.date | None = None,
    window_start: dt.date | None = None,
) -> pd.DataFrame:
    """Return the table of :func:`cohorts` (same rows, columns and values) as pandas, built
    from counts instead of a customer-period panel.

    What reaches Python: customers per cohort, per cohort and entry period, per cohort,
    end period and churn flag, and revenue per cohort and period, all summed on the
    engine. The panel of :func:`cohorts` joins every customer to every calendar period it
    was at risk in (an inequality join with hundreds of millions of rows at 10M customers,
    which ran DuckDB out of a 1 GB cap); here the customer count at risk in period ``k``
    of a cohort is those who entered by ``k`` less those who ended before it, and a
    purchase counts where its period lies between the customer's entry and end periods,
    as the panel's rows do.
    """
    as_of = as_of or source.as_of
    window_start = window_start or source.window_start
    lt = _given_or_lifetimes(
        lifetimes_expr,
        source,
        definition=definition,
        inactivity_days=inactivity_days,
        as_of=as_of,
        window_start=window_start,
    )
    ws = ibis.literal(window_start, type="date")
    members = lt.filter(lt.start_date >= ws)
    members = members.mutate(cohort=period_start(members.start_date, period))
    size = members.group_by("cohort").aggregate(cohort_size=members.count()).to_pandas()
    u = usable_lifetimes(lt)
    u = u.filter(u.start_date >= ws)
    u = u.mutate(cohort=period_start(u.start_date, period))
    u = u.mutate(
        k_entry=_periods_since(period_start(u.entry_date, period), u.cohort, period),
        k_end=_periods_since(period_start(u.end_date, period), u.cohort, period),
        churn=ibis.ifelse(u.event == 1, 1, 0),
    )
    entries = u.group_by(["cohort", "k_entry"]).aggregate(n=u.count()).to_pandas()
    ends = u.group_by(["cohort", "k_end"]).aggregate(n=u.count(), churns=u.churn.sum()).to_pandas()
    keys = source.customer_keys()
    uc = u.join(keys, "customer_id")
    uc = uc.select(_code=uc._code, cohort=uc.cohort, k_entry=uc.k_entry, k_end=uc.k_end)
    tx = source.table("transactions")
    tx = tx.filter(tx.date.notnull()).join(keys, "customer_id")
    tx = tx.select(_code=tx._code, date=tx.date, amount=tx.amount)
    j = tx.join(uc, "_code")
    j = j.mutate(k=_periods_since(period_start(j.date, period), j.cohort, period))
    j = j.filter((j.k >= j.k_entry) & (j.k <= j.k_end))
    rev = j.group_by(["cohort", "k"]).aggregate(revenue=j.amount.sum()).to_pandas()

    rows = []
    for c in sorted(set(entries["cohort"]) | set(ends["cohort"])):
        e = entries[entries["cohort"] == c]
        d = ends[ends["cohort"] == c]
        hi = int(d["k_end"].max()) if len(d) else -1
        k = np.arange(0, hi + 1)
        entered = np.searchsorted(np.sort(np.repeat(e["k_entry"], e["n"])), k, side="right")
        ended_before = np.searchsorted(np.sort(np.repeat(d["k_end"], d["n"])), k, side="left")
        at_risk = entered - ended_before
        churns = pd.Series(d["churns"].to_numpy(), index=d["k_end"].to_numpy())
        churns = churns.groupby(level=0).sum().reindex(k, fill_value=0).to_numpy()
        keep = at_risk > 0
        rows.append(
            pd.DataFrame(
                {
                    "cohort": c,
                    "periods_since": k[keep],
                    "customers_active": (at_risk - churns)[keep],
                }
            )
        )
    g = (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame({"cohort": [], "periods_since": [], "customers_active": []})
    )
    rev = rev.rename(columns={"k": "periods_since"})
    g = g.merge(rev, on=["cohort", "periods_since"], how="left")
    g["revenue"] = g["revenue"].astype(float).fillna(0.0)
    out = g.merge(size, on="cohort")
    rev0 = out.loc[out["periods_since"] == 0, ["cohort", "revenue"]].rename(
        columns={"revenue": "revenue0"}
    )
    out = out.merge(rev0, on="cohort", how="left")
    out["retention_rate"] = out["customers_active"].astype(float) / out["cohort_size"]
    out["revenue_retention"] = np.where(
        out["revenue0"] > 0, out["revenue"] / out["revenue0"].where(out["revenue0"] > 0), np.nan
    )
    out = out.astype(
        {"periods_since": "int64", "customers_active": "int64", "cohort_size": "int64"}
    )
    out["cohort"] = pd.to_datetime(out["cohort"]).astype("datetime64[s]")
    cols = [
        "cohort",
        "periods_since",
        "cohort_size",
        "customers_active",
        "retention_rate",
        "revenue",
        "revenue_retention",
    ]
    return out[cols].sort_values(["cohort", "periods_since"]).reset_index(drop=True)
