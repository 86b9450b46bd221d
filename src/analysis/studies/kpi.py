"""KPI dashboard: customer, revenue, loyalty and service KPIs by period.

Counts are customers; money is in the data's currency; rates are shares
between 0 and 1 (NPS is on its usual -100..100 scale).

Definitions (per period ``[start, end)``):

- ``at_risk``: customers who were customers at some point in the period
  (entered before its end, not churned before its start).
- ``active``: customers at the end of the period.
- ``new``: sign-ups in the period. ``churned``: churn events in the period;
  ``churned_one_time`` (inactivity churn only): those of them who bought once
  or never, and so "left" on the day they joined or bought.
- ``churn_rate`` = churned / at_risk; ``retention_rate`` = 1 - churn_rate.
- ``revenue``: sum of transaction amounts; ``revenue_per_customer`` = revenue / at_risk.
- ``member_share``: loyalty members among active customers at period end.
- ``nps`` = 100 x (share of promoters 9-10 - share of detractors 0-6) among survey answers.
- ``csat_mean``; ``fcr_rate``: tickets resolved at first contact / tickets;
  ``sla_compliance``: tickets within SLA / tickets with an SLA flag.

What the data can show yet. Under inactivity churn a customer counts as
churned at the last purchase once ``inactivity_days`` have passed without
another one, so churn dated in the last ``inactivity_days`` before the as-of
date cannot be seen yet: those periods' churn is *not yet observable* (NaN
here, never 0), and the counts of customers at a period's end (or start) after
that point are *provisional*. A period cut by the as-of date is *partial*.
:func:`kpi_status` names the state of every KPI in every period, and the
control-panel computations (:func:`control_panel`: comparisons, normal ranges
and flags, service levels against targets) judge only final values.

The numbers only: sentences, formatted tables and plots are in
:mod:`analysis.report.kpi` and :mod:`analysis.report.plots.kpi`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.data.derive import PERIOD_STEP, period_start, period_starts
from analysis.studies.kpi_counts import (  # noqa: F401  (public here since before the split)
    DayCounts,
    customer_counts,
    customer_counts_from_days,
    lifetime_day_counts,
    member_counts,
    member_counts_from_days,
)

LEVEL_METRICS = ["active", "new", "churned", "revenue", "revenue_per_customer"]
RATE_METRICS = [
    "churn_rate",
    "retention_rate",
    "member_share",
    "nps",
    "csat_mean",
    "fcr_rate",
    "sla_compliance",
]
_PERIODS_PER_YEAR = {"day": None, "week": 52, "month": 12, "quarter": 4}
#: KPIs that count churn in the period: not observable while churn cannot be seen yet.
CHURN_METRICS = ["churned", "churn_rate", "retention_rate", "churned_one_time"]
#: Counts at a period's end (they subtract churn before the end): provisional until final.
END_COUNT_METRICS = ["active", "members", "member_share"]
#: Counts at a period's start (they subtract churn before the start).
START_COUNT_METRICS = ["at_risk", "revenue_per_customer"]
#: KPIs where a lower value is the better one (targets are met from below).
LOWER_IS_BETTER = {"churn_rate", "churned"}
#: Columns of :func:`kpi_table`, in order.
KPI_COLUMNS = (
    "period period_end complete churn_observable end_count_final start_count_final at_risk active "
    "new churned churned_one_time churn_rate retention_rate revenue revenue_per_customer members "
    "member_share nps "
    "respondents_nps csat_mean respondents_csat tickets fcr_rate sla_compliance suppressed "
    "not_observable"
).split()


def churn_observable_until(
    as_of: dt.date, *, definition: str, inactivity_days: int | None
) -> pd.Timestamp | None:
    """Return the first day whose churn the data cannot show yet (None: every day is observable).

    Under inactivity churn (:func:`analysis.data.derive.lifetimes`) a customer
    whose last purchase was on day ``d`` counts as churned (on ``d``) only when
    more than ``inactivity_days`` days separate ``d`` from ``as_of``; churn dated
    on or after ``as_of - inactivity_days`` is therefore not yet visible. A
    period ``[start, end)`` shows all its churn when ``end`` is on or before
    the returned day. Contractual churn is visible up to the as-of date.
    """
    if definition != "inactivity" or inactivity_days is None:
        return None
    return pd.Timestamp(as_of) - pd.Timedelta(days=int(inactivity_days))


def _period_frame(window_start: dt.date, as_of: dt.date, granularity: str) -> pd.DataFrame:
    starts = period_starts(window_start, as_of, granularity)
    ends = starts + PERIOD_STEP[granularity]
    return pd.DataFrame(
        {
            "period": starts,
            "period_end": ends,
            "complete": ends <= pd.Timestamp(as_of) + pd.Timedelta(days=1),
        }
    )


def _ibis_by_period(study, granularity: str):
    src = study.source
    tx = src.table("transactions")
    tx = tx.mutate(period=period_start(tx.date, granularity))
    rev = (
        tx.group_by("period")
        .aggregate(
            revenue=tx.amount.sum(), transactions=tx.count(), buyers=tx.customer_id.nunique()
        )
        .to_pandas()
    )
    rev = rev.astype({"revenue": "float64", "transactions": "int64", "buyers": "int64"})
    exp = None
    if src.has("experience"):
        ex = src.table("experience")
        ex = ex.mutate(period=period_start(ex.date, granularity))
        tick = ex.kind == "ticket"
        exp = (
            ex.group_by("period")
            .aggregate(
                respondents_nps=ex.nps.notnull().sum(),
                promoters=(ex.nps >= 9).sum(),
                detractors=(ex.nps <= 6).sum(),
                respondents_csat=ex.csat.notnull().sum(),
                csat_mean=ex.csat.mean(),
                tickets=tick.sum(),
                fcr_tickets=(tick & ex.first_contact_resolution.notnull()).sum(),
                fcr_yes=(tick & (ex.first_contact_resolution == True)).sum(),  # noqa: E712
                sla_tickets=(tick & ex.sla_met.notnull()).sum(),
                sla_yes=(tick & (ex.sla_met == True)).sum(),  # noqa: E712
            )
            .to_pandas()
        )
        # Boolean sums come back as 128-bit integers (Decimal objects) on some engines.
        exp = exp.astype({c: "float64" for c in exp.columns if c != "period"})
    return rev, exp


def kpi_table(study, *, granularity: str | None = None) -> pd.DataFrame:
    """Compute every KPI per period for a :class:`~analysis.data.StudyData`.

    Returns
    -------
    DataFrame
        One row per period from the window start to the as-of date: period,
        period_end, complete (False for a period cut by the as-of date),
        at_risk, active, new, churned, churn_rate, retention_rate, revenue,
        revenue_per_customer, member_share, nps, respondents_nps, csat_mean,
        respondents_csat, tickets, fcr_rate, sla_compliance. KPIs over fewer
        than ``min_group_size`` customers or answers are NaN, with a
        ``suppressed`` column naming them. ``churn_observable``,
        ``end_count_final``, ``start_count_final`` and ``not_observable`` say
        what the data can show yet (see :func:`mark_observability`): churn
        that inactivity churn cannot show yet is NaN, never 0.
    """
    granularity = granularity or study.params.kpi.granularity
    days = lifetime_day_counts(study)
    periods = _period_frame(study.window_start, study.as_of, granularity)
    out = customer_counts_from_days(
        entry=days["entry"], start=days["start"], churn=days["churn"], periods=periods
    )
    rev, exp = _ibis_by_period(study, granularity)
    rev["period"] = pd.to_datetime(rev["period"])
    out = out.merge(rev[["period", "revenue"]], on="period", how="left")
    out["revenue"] = out["revenue"].fillna(0.0)
    out["churn_rate"] = out["churned"] / out["at_risk"].where(out["at_risk"] > 0)
    out["retention_rate"] = 1 - out["churn_rate"]
    out["revenue_per_customer"] = out["revenue"] / out["at_risk"].where(out["at_risk"] > 0)
    if "enrolled" in days:
        out["members"] = member_counts_from_days(days["enrolled"], days["member_end"], out)
        out["member_share"] = out["members"] / out["active"].where(out["active"] > 0)
    else:
        out["members"] = np.nan
        out["member_share"] = np.nan
    if exp is not None:
        exp["period"] = pd.to_datetime(exp["period"])
        out = out.merge(exp, on="period", how="left")
        for c in exp.columns:
            if c not in ("period", "csat_mean"):
                out[c] = out[c].fillna(0)
        n = out["respondents_nps"].where(out["respondents_nps"] > 0)
        out["nps"] = 100 * (out["promoters"] - out["detractors"]) / n
        out["fcr_rate"] = out["fcr_yes"] / out["fcr_tickets"].where(out["fcr_tickets"] > 0)
        out["sla_compliance"] = out["sla_yes"] / out["sla_tickets"].where(out["sla_tickets"] > 0)
    else:
        for c in (
            "nps",
            "csat_mean",
            "fcr_rate",
            "sla_compliance",
            "respondents_nps",
            "respondents_csat",
            "tickets",
        ):
            out[c] = np.nan
    out["churned_one_time"] = np.nan
    if study.params.analysis.churn_definition == "inactivity":
        # a customer who bought once (or never) "leaves" on that day under inactivity churn
        ps = out["period"].to_numpy("datetime64[ns]")
        pe = out["period_end"].to_numpy("datetime64[ns]")
        out["churned_one_time"] = days["once"].before(pe) - days["once"].before(ps)
    out = _suppress(out, study.min_group_size)
    until = churn_observable_until(
        study.as_of,
        definition=study.params.analysis.churn_definition,
        inactivity_days=study.params.analysis.inactivity_days,
    )
    out = mark_observability(out, until)
    return out[KPI_COLUMNS]


def mark_observability(kpis: pd.DataFrame, until: pd.Timestamp | None) -> pd.DataFrame:
    """Mark what the data can show yet in each period, and blank churn it cannot show.

    Parameters
    ----------
    kpis : DataFrame
        ``period``, ``period_end`` and the KPI columns (see :func:`kpi_table`).
    until : Timestamp or None
        First day whose churn is not yet visible (:func:`churn_observable_until`);
        None when every day's churn is visible.

    Returns
    -------
    DataFrame
        A copy with ``churn_observable`` (the period's churn is all visible),
        ``end_count_final`` (counts at the period's end, which subtract churn
        before the end, are final), ``start_count_final`` (the same for counts
        at its start: ``at_risk``) and ``not_observable`` (the KPIs blanked in
        the row, comma-separated). ``churned``, ``churn_rate`` and
        ``retention_rate`` are NaN where churn is not observable: a count of
        churn seen so far would read as a real 0%.
    """
    out = kpis.copy()
    n = len(out)
    if until is None:
        out["churn_observable"] = np.ones(n, dtype=bool)
        out["end_count_final"] = np.ones(n, dtype=bool)
        out["start_count_final"] = np.ones(n, dtype=bool)
    else:
        until = pd.Timestamp(until)
        out["churn_observable"] = (pd.to_datetime(out["period_end"]) <= until).to_numpy()
        out["end_count_final"] = out["churn_observable"].to_numpy()
        out["start_count_final"] = (pd.to_datetime(out["period"]) <= until).to_numpy()
    blanked = [[] for _ in range(n)]
    hidden = ~out["churn_observable"].to_numpy(dtype=bool)
    for c in CHURN_METRICS:
        if c not in out:
            continue
        present = out[c].notna().to_numpy()
        for i in np.flatnonzero(hidden & present):
            blanked[i].append(c)
        out.loc[hidden, c] = np.nan
    out["not_observable"] = [", ".join(b) for b in blanked]
    return out


def _suppress(df: pd.DataFrame, k: int) -> pd.DataFrame:
    out = df.copy()
    rules = [
        (
            "at_risk",
            [
                "churn_rate",
                "retention_rate",
                "revenue_per_customer",
                "churned",
                "churned_one_time",
                "new",
                "active",
                "revenue",
                "members",
                "member_share",
            ],
        ),
        ("respondents_nps", ["nps"]),
        ("respondents_csat", ["csat_mean"]),
        ("tickets", ["fcr_rate", "sla_compliance"]),
    ]
    flags = [[] for _ in range(len(out))]
    for count_col, cols in rules:
        small = out[count_col].notna() & (out[count_col] < k) & (out[count_col] > 0)
        if count_col == "at_risk":
            small = out[count_col] < k
        for i in np.flatnonzero(small.to_numpy()):
            present = [c for c in cols if pd.notna(out.iloc[i][c])]
            if present:
                flags[i].extend(present)
        out.loc[small, cols] = np.nan
    out["suppressed"] = [", ".join(f) for f in flags]
    return out


def with_changes(kpis: pd.DataFrame, *, granularity: str) -> pd.DataFrame:
    """Add change vs the previous period and vs the same period a year earlier.

    Levels get relative changes (``<metric>_vs_prev``, ``<metric>_vs_year``,
    as fractions); rates get differences in their own units (points of a share,
    NPS points). A comparison is NaN where the earlier period is not in the data.
    """
    out = kpis.copy().reset_index(drop=True)
    if granularity == "day":
        year_ago = out["period"] - pd.DateOffset(years=1)
    else:
        year_ago = out["period"] - pd.DateOffset(years=1)
        if granularity == "week":
            year_ago = out["period"] - pd.Timedelta(weeks=52)
    idx = pd.Series(out.index, index=out["period"])
    ya_pos = idx.reindex(year_ago.to_numpy()).to_numpy()
    for m in LEVEL_METRICS + RATE_METRICS:
        v = out[m].astype(float)
        prev = v.shift(1)
        ya = pd.Series([v.iloc[int(j)] if pd.notna(j) else np.nan for j in ya_pos], index=v.index)
        if m in LEVEL_METRICS:
            out[f"{m}_vs_prev"] = (v - prev) / prev.where(prev != 0)
            out[f"{m}_vs_year"] = (v - ya) / ya.where(ya != 0)
        else:
            out[f"{m}_vs_prev"] = v - prev
            out[f"{m}_vs_year"] = v - ya
    return out


def latest_complete(kpis: pd.DataFrame) -> pd.Series:
    """Return the row of the most recent complete period (the last one if none is complete)."""
    done = kpis[kpis["complete"]]
    return (done if len(done) else kpis).iloc[-1]


def data_quality(study) -> dict[str, pd.DataFrame]:
    """Summarise the input data: row counts and date coverage, and missingness per column.

    Returns
    -------
    dict
        ``coverage``: one row per table (rows, customers, first and last date);
        ``missing``: one row per table and contract column present (share empty).
    """
    from analysis.data.contract import TABLES

    cov, miss = [], []
    datecol = {
        "customers": "signup_date",
        "transactions": "date",
        "loyalty": "enrolled_date",
        "experience": "date",
    }
    for name in TABLES:
        if not study.has(name):
            cov.append(
                {
                    "table": name,
                    "rows": 0,
                    "customers": 0,
                    "first_date": "absent",
                    "last_date": "absent",
                }
            )
            continue
        t = study.source.table(name)
        aggs = {
            "rows": t.count(),
            "customers": t.customer_id.nunique(),
            "first_date": t[datecol[name]].min(),
            "last_date": t[datecol[name]].max(),
        }
        present = sorted(study.source.present.get(name, set()))
        for c in present:
            aggs[f"null_{c}"] = t[c].isnull().sum()
        r = t.aggregate(**aggs).to_pandas().iloc[0]
        cov.append(
            {
                "table": name,
                "rows": int(r["rows"]),
                "customers": int(r["customers"]),
                "first_date": str(pd.Timestamp(r["first_date"]).date()),
                "last_date": str(pd.Timestamp(r["last_date"]).date()),
            }
        )
        for c in present:
            n = int(r[f"null_{c}"])
            miss.append(
                {"table": name, "column": c, "empty": n, "share_empty": n / max(int(r["rows"]), 1)}
            )
    return {"coverage": pd.DataFrame(cov), "missing": pd.DataFrame(miss)}


def headline_values(kpis: pd.DataFrame) -> dict[str, float]:
    """Return the headline numbers of the latest complete period (for the reports index)."""
    r = latest_complete(kpis)
    return {
        k: (None if pd.isna(r[k]) else float(r[k]))
        for k in ("active", "churn_rate", "revenue", "nps")
    }


def year_on_year(kpis: pd.DataFrame, *, granularity: str) -> pd.DataFrame:
    """Return the latest complete period beside the same period a year earlier (numbers).

    Returns
    -------
    DataFrame
        One row per KPI of ``LEVEL_METRICS + RATE_METRICS`` with a value in at
        least one of the two periods: ``metric``, ``before_period`` and
        ``before`` (the period a year earlier and its value), ``latest_period``
        and ``latest`` (the latest complete period and its value), and
        ``change`` (``<metric>_vs_year`` of :func:`with_changes`: a fraction for
        levels, a difference in the KPI's own units for rates). Empty when the
        data does not reach back a year before the latest complete period.
    """
    k = with_changes(kpis, granularity=granularity)
    row = latest_complete(k)
    offset = pd.Timedelta(weeks=52) if granularity == "week" else pd.DateOffset(years=1)
    before = k[k["period"] == pd.Timestamp(row["period"]) - offset]
    if before.empty:
        return pd.DataFrame()
    b = before.iloc[0]
    rows = []
    for m in LEVEL_METRICS + RATE_METRICS:
        if pd.isna(row[m]) and pd.isna(b[m]):
            continue
        rows.append(
            {
                "metric": m,
                "before_period": b["period"],
                "before": b[m],
                "latest_period": row["period"],
                "latest": row[m],
                "change": row[f"{m}_vs_year"],
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# The control panel: what each KPI's latest value is, how it moved, whether it is unusual
# --------------------------------------------------------------------------------------

OK = "ok"  # a final value of a complete period
PARTIAL = "partial"  # the period is cut by the as-of date
NOT_OBSERVABLE = "not_observable"  # the data cannot show this KPI for the period yet
PROVISIONAL = "provisional"  # a count that churn not yet visible may still lower
SUPPRESSED = "suppressed"  # fewer than min_group_size customers or answers
MISSING = "missing"  # no data for the KPI in the period
STATUSES = (OK, PARTIAL, NOT_OBSERVABLE, PROVISIONAL, SUPPRESSED, MISSING)

#: KPIs the control panel compares, ranges and flags (retention is 1 - churn: not flagged twice).
PANEL_METRICS = (
    "active new churned churn_rate revenue revenue_per_customer member_share nps csat_mean "
    "fcr_rate sla_compliance"
).split()
#: Service levels shown against targets even where no target is set.
SERVICE_METRICS = ["fcr_rate", "sla_compliance"]
#: Other names accepted in ``kpi.targets`` for a KPI.
TARGET_ALIASES = {
    "sla_met": "sla_compliance",
    "sla": "sla_compliance",
    "first_contact_resolution": "fcr_rate",
    "fcr": "fcr_rate",
    "csat": "csat_mean",
    "churn": "churn_rate",
    "retention": "retention_rate",
}


def _listed(column: pd.Series | None, n: int) -> list[set[str]]:
    if column is None:
        return [set() for _ in range(n)]
    return [
        {x.strip() for x in str(v).split(",") if x.strip()} if isinstance(v, str) else set()
        for v in column
    ]


def _flag_column(kpis: pd.DataFrame, name: str) -> np.ndarray:
    if name not in kpis:
        return np.ones(len(kpis), dtype=bool)
    return kpis[name].fillna(True).to_numpy(dtype=bool)


def kpi_status(kpis: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Name the state of every KPI in every period.

    Parameters
    ----------
    kpis : DataFrame
        One row per period (see :func:`kpi_table`). ``complete``,
        ``churn_observable``, ``end_count_final``, ``start_count_final``,
        ``suppressed`` and ``not_observable`` are used where present.
    metrics : list of str, optional
        Default: every KPI of ``LEVEL_METRICS + RATE_METRICS`` (and
        ``churned_one_time``) in ``kpis``.

    Returns
    -------
    DataFrame
        Same index as ``kpis``: ``period`` and one column per KPI holding one
        of :data:`STATUSES`. Precedence: not observable, suppressed, missing,
        partial, provisional, ok. Only ``ok`` values enter comparisons, normal
        ranges, flags and headlines.
    """
    metrics = metrics or [
        m for m in LEVEL_METRICS + RATE_METRICS + ["churned_one_time"] if m in kpis
    ]
    n = len(kpis)
    complete = _flag_column(kpis, "complete")
    end_final = _flag_column(kpis, "end_count_final")
    start_final = _flag_column(kpis, "start_count_final")
    supp = _listed(kpis.get("suppressed"), n)
    hidden = _listed(kpis.get("not_observable"), n)
    out = pd.DataFrame({"period": kpis["period"]}, index=kpis.index)
    for m in metrics:
        missing = kpis[m].isna().to_numpy()
        provisional = (end_final if m in END_COUNT_METRICS else np.ones(n, bool)) & (
            start_final if m in START_COUNT_METRICS else np.ones(n, bool)
        )
        col = []
        for i in range(n):
            if m in hidden[i]:
                col.append(NOT_OBSERVABLE)
            elif m in supp[i]:
                col.append(SUPPRESSED)
            elif missing[i]:
                col.append(MISSING)
            elif not complete[i]:
                col.append(PARTIAL)
            elif not provisional[i]:
                col.append(PROVISIONAL)
            else:
                col.append(OK)
        out[m] = col
    return out


def judged_values(kpis: pd.DataFrame, status: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the KPI values that may be judged (status ``ok``); every other cell is NaN."""
    status = kpi_status(kpis) if status is None else status
    metrics = [c for c in status.columns if c != "period"]
    out = pd.DataFrame({"period": kpis["period"]}, index=kpis.index)
    for m in metrics:
        out[m] = kpis[m].astype(float).where(status[m] == OK)
    return out


def year_earlier(period, granularity: str) -> pd.Timestamp:
    """Return the start of the period a year before ``period`` (52 weeks for weekly data)."""
    offset = pd.Timedelta(weeks=52) if granularity == "week" else pd.DateOffset(years=1)
    return pd.Timestamp(period) - offset


def _reference_positions(values: pd.DataFrame, metrics: list[str]) -> dict[str, int | None]:
    """Position of the latest judged value per KPI (None: no judged value)."""
    ref = {}
    for m in metrics:
        pos = np.flatnonzero(values[m].notna().to_numpy())
        ref[m] = int(pos[-1]) if len(pos) else None
    return ref


def comparisons(
    kpis: pd.DataFrame,
    *,
    granularity: str,
    metrics: list[str] | None = None,
    status: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Compare each KPI's latest final value with the previous period and a year earlier.

    The latest final value is the KPI's value in the most recent period whose
    status is ``ok`` (a partial period, churn not yet observable or a
    provisional count are skipped). A comparison is made only with a final
    value of the period just before it, or of the same period a year earlier.

    Returns
    -------
    DataFrame
        One row per KPI: ``metric``, ``period`` and ``value`` (latest final),
        ``prev_period``, ``prev_value``, ``change_prev`` (value - previous, in
        the KPI's units: customers, currency, a difference of shares, NPS
        points), ``rel_change_prev`` (change / previous, for counts and money
        only), and the same four for a year earlier (``year_*``,
        ``change_year``, ``rel_change_year``). Missing comparisons are NaN/NaT.
    """
    k = kpis.reset_index(drop=True)
    metrics = [m for m in (metrics or PANEL_METRICS) if m in k]
    status = kpi_status(k, metrics) if status is None else status.reset_index(drop=True)
    vals = judged_values(k, status)
    ref = _reference_positions(vals, metrics)
    periods = pd.to_datetime(k["period"])
    where = {p: i for i, p in enumerate(periods)}
    rows = []
    for m in metrics:
        row = {"metric": m, "period": pd.NaT, "value": np.nan}
        for side in ("prev", "year"):
            row |= {f"{side}_period": pd.NaT, f"{side}_value": np.nan}
            row |= {f"change_{side}": np.nan, f"rel_change_{side}": np.nan}
        i = ref[m]
        if i is not None:
            v = float(vals[m].iloc[i])
            row["period"], row["value"] = periods.iloc[i], v
            before = {"prev": i - 1 if i > 0 else None}
            before["year"] = where.get(year_earlier(periods.iloc[i], granularity))
            for side, j in before.items():
                if j is None or pd.isna(vals[m].iloc[j]):
                    continue
                b = float(vals[m].iloc[j])
                row[f"{side}_period"], row[f"{side}_value"] = periods.iloc[j], b
                row[f"change_{side}"] = v - b
                if m in LEVEL_METRICS and b != 0:
                    row[f"rel_change_{side}"] = (v - b) / abs(b)
        rows.append(row)
    return pd.DataFrame(rows)


def normal_ranges(
    kpis: pd.DataFrame,
    *,
    periods: int = 12,
    min_history: int | None = None,
    metrics: list[str] | None = None,
    status: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Find each KPI's usual range and flag a latest value outside it.

    The usual range of a KPI is the lowest to the highest of its final values
    in the ``periods`` periods before its latest final value. The latest value
    is flagged ``"high"`` above that range and ``"low"`` below it. With fewer
    than ``min_history`` final values in the window there is no range and no
    flag.

    Parameters
    ----------
    kpis : DataFrame
        One row per period, in time order (see :func:`kpi_table`).
    periods : int, default 12
        Periods before the latest one that make the usual range
        (``kpi.normal_range_periods``).
    min_history : int, optional
        Final values needed for a range. Default: half of ``periods``, at least 3.

    Returns
    -------
    DataFrame
        One row per KPI: ``metric``, ``period``, ``value`` (latest final),
        ``low``, ``high`` (NaN without a range), ``n_history`` (final values
        in the window), ``window_start`` (first period of the window) and
        ``flag`` (``"high"``, ``"low"``, or ``""`` inside the range or without one).
    """
    if periods < 1:
        raise ValueError(f"periods must be at least 1, not {periods}")
    min_history = max(3, -(-periods // 2)) if min_history is None else max(1, min_history)
    k = kpis.reset_index(drop=True)
    metrics = [m for m in (metrics or PANEL_METRICS) if m in k]
    status = kpi_status(k, metrics) if status is None else status.reset_index(drop=True)
    vals = judged_values(k, status)
    ref = _reference_positions(vals, metrics)
    rows = []
    for m in metrics:
        row = {
            "metric": m,
            "period": pd.NaT,
            "value": np.nan,
            "low": np.nan,
            "high": np.nan,
            "n_history": 0,
            "window_start": pd.NaT,
            "flag": "",
        }
        i = ref[m]
        if i is not None:
            row["period"], row["value"] = pd.Timestamp(k["period"].iloc[i]), float(vals[m].iloc[i])
            lo = max(0, i - periods)
            hist = vals[m].iloc[lo:i].dropna()
            row["n_history"] = len(hist)
            if i > 0:
                row["window_start"] = pd.Timestamp(k["period"].iloc[lo])
            if len(hist) >= min_history:
                row["low"], row["high"] = float(hist.min()), float(hist.max())
                if row["value"] > row["high"]:
                    row["flag"] = "high"
                elif row["value"] < row["low"]:
                    row["flag"] = "low"
        rows.append(row)
    return pd.DataFrame(rows)


def resolve_targets(targets: dict | None) -> tuple[dict[str, float], list[str]]:
    """Map ``kpi.targets`` keys to KPI names; return the targets and the unknown keys.

    Accepts the KPI names of ``LEVEL_METRICS + RATE_METRICS`` and the aliases of
    :data:`TARGET_ALIASES` (``sla_met``, ``first_contact_resolution``, ...).
    """
    known, unknown = {}, []
    for key, value in (targets or {}).items():
        name = TARGET_ALIASES.get(str(key), str(key))
        if name in LEVEL_METRICS + RATE_METRICS and value is not None and np.isfinite(value):
            known[name] = float(value)
        else:
            unknown.append(str(key))
    return known, unknown


def meets_target(metric: str, value: float, target: float) -> bool | None:
    """Return whether ``value`` meets ``target`` (lower is better for churn); None if either is missing."""
    if pd.isna(value) or pd.isna(target):
        return None
    return bool(value <= target) if metric in LOWER_IS_BETTER else bool(value >= target)


def service_levels(
    kpis: pd.DataFrame,
    *,
    targets: dict | None = None,
    periods: int = 12,
    status: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Set the service levels (and any other targeted KPI) against their targets.

    Returns
    -------
    DataFrame
        One row per KPI of :data:`SERVICE_METRICS` with a value in some period
        and per KPI with a target: ``metric``, ``period``, ``value`` (latest
        final), ``target`` (NaN without one), ``met`` (bool or None),
        ``gap`` (value - target, in the KPI's units), ``periods_met`` and
        ``periods_judged`` (of the last ``periods`` final values, how many met
        the target; 0 without a target).
    """
    k = kpis.reset_index(drop=True)
    known, _ = resolve_targets(targets)
    metrics = [m for m in SERVICE_METRICS if m in k and k[m].notna().any()]
    metrics += [m for m in known if m not in metrics and m in k]
    cols = ["metric", "period", "value", "target", "met", "gap", "periods_met", "periods_judged"]
    if not metrics:
        return pd.DataFrame(columns=cols)
    status = kpi_status(k, metrics) if status is None else status.reset_index(drop=True)
    vals = judged_values(k, status)
    ref = _reference_positions(vals, metrics)
    rows = []
    for m in metrics:
        target = known.get(m, np.nan)
        i = ref[m]
        v = float(vals[m].iloc[i]) if i is not None else np.nan
        recent = vals[m].iloc[: i + 1].dropna().tail(periods) if i is not None else pd.Series()
        met_each = [meets_target(m, x, target) for x in recent]
        rows.append(
            {
                "metric": m,
                "period": pd.Timestamp(k["period"].iloc[i]) if i is not None else pd.NaT,
                "value": v,
                "target": target,
                "met": meets_target(m, v, target),
                "gap": v - target,
                "periods_met": int(sum(bool(x) for x in met_each)),
                "periods_judged": len(met_each) if not pd.isna(target) else 0,
            }
        )
    return pd.DataFrame(rows, columns=cols)


def sparklines(
    kpis: pd.DataFrame,
    *,
    periods: int = 12,
    metrics: list[str] | None = None,
    status: pd.DataFrame | None = None,
) -> dict[str, list[float]]:
    """Return each KPI's final values over the last ``periods`` periods up to its latest final one."""
    k = kpis.reset_index(drop=True)
    metrics = [m for m in (metrics or PANEL_METRICS) if m in k]
    status = kpi_status(k, metrics) if status is None else status.reset_index(drop=True)
    vals = judged_values(k, status)
    ref = _reference_positions(vals, metrics)
    out = {}
    for m in metrics:
        i = ref[m]
        window = vals[m].iloc[max(0, i + 1 - periods) : i + 1] if i is not None else pd.Series()
        out[m] = [float(x) for x in window.dropna()]
    return out


@dataclass
class KpiPanel:
    """The control panel's numbers (the report layer words them).

    Attributes
    ----------
    granularity : str
    latest : Timestamp or None
        The latest complete period (the dashboard's "this period").
    partial : Timestamp or None
        A last period cut by the as-of date, if any.
    churn_hidden_from : Timestamp or None
        First period whose churn the data cannot show yet (inactivity churn).
    provisional_from : Timestamp or None
        First period whose end-of-period counts are provisional.
    status : DataFrame
        :func:`kpi_status`.
    comparisons, ranges, service : DataFrame
        :func:`comparisons`, :func:`normal_ranges`, :func:`service_levels`.
    sparks : dict
        :func:`sparklines`.
    unknown_targets : list of str
        ``kpi.targets`` keys that name no KPI.
    normal_range_periods : int
    """

    granularity: str
    latest: pd.Timestamp | None
    partial: pd.Timestamp | None
    churn_hidden_from: pd.Timestamp | None
    provisional_from: pd.Timestamp | None
    status: pd.DataFrame
    comparisons: pd.DataFrame
    ranges: pd.DataFrame
    service: pd.DataFrame
    sparks: dict[str, list[float]]
    unknown_targets: list[str] = field(default_factory=list)
    normal_range_periods: int = 12

    @property
    def flags(self) -> pd.DataFrame:
        """The KPIs whose latest final value is outside their usual range."""
        return self.ranges[self.ranges["flag"] != ""].reset_index(drop=True)


def _first_period(kpis: pd.DataFrame, mask: np.ndarray) -> pd.Timestamp | None:
    pos = np.flatnonzero(mask)
    return pd.Timestamp(kpis["period"].iloc[pos[0]]) if len(pos) else None


def control_panel(
    kpis: pd.DataFrame,
    *,
    granularity: str,
    normal_range_periods: int = 12,
    targets: dict | None = None,
    spark_periods: int = 12,
    min_history: int | None = None,
) -> KpiPanel:
    """Compute the control panel of a KPI table: comparisons, usual ranges, flags, service levels.

    Pure function of :func:`kpi_table`'s output (and the params values passed).
    """
    k = kpis.reset_index(drop=True)
    metrics = [m for m in PANEL_METRICS if m in k]
    status = kpi_status(k)
    done = _flag_column(k, "complete")
    latest = _first_period(k.iloc[::-1], done[::-1]) if len(k) else None
    return KpiPanel(
        granularity=granularity,
        latest=latest,
        partial=_first_period(k, ~done),
        churn_hidden_from=_first_period(k, ~_flag_column(k, "churn_observable")),
        provisional_from=_first_period(k, ~_flag_column(k, "end_count_final")),
        status=status,
        comparisons=comparisons(k, granularity=granularity, metrics=metrics, status=status),
        ranges=normal_ranges(
            k,
            periods=normal_range_periods,
            min_history=min_history,
            metrics=metrics,
            status=status,
        ),
        service=service_levels(k, targets=targets, periods=normal_range_periods, status=status),
        sparks=sparklines(k, periods=spark_periods, metrics=metrics, status=status),
        unknown_targets=resolve_targets(targets)[1],
        normal_range_periods=normal_range_periods,
    )


def study_panel(study, kpis: pd.DataFrame, *, granularity: str | None = None) -> KpiPanel:
    """Compute :func:`control_panel` with the params of a :class:`~analysis.data.StudyData`."""
    kp = study.params.kpi
    return control_panel(
        kpis,
        granularity=granularity or kp.granularity,
        normal_range_periods=kp.normal_range_periods,
        targets=kp.targets,
        spark_periods=max(kp.normal_range_periods, 2),
    )
