"""KPI dashboard: customer, revenue, loyalty and service KPIs by period.

Counts are customers; money is in the data's currency; rates are shares
between 0 and 1 (NPS is on its usual -100..100 scale).

Definitions (per period ``[start, end)``):

- ``at_risk``: customers who were customers at some point in the period
  (entered before its end, not churned before its start).
- ``active``: customers at the end of the period.
- ``new``: sign-ups in the period. ``churned``: churn events in the period.
- ``churn_rate`` = churned / at_risk; ``retention_rate`` = 1 - churn_rate.
- ``revenue``: sum of transaction amounts; ``revenue_per_customer`` = revenue / at_risk.
- ``member_share``: loyalty members among active customers at period end.
- ``nps`` = 100 x (share of promoters 9-10 - share of detractors 0-6) among survey answers.
- ``csat_mean``; ``fcr_rate``: tickets resolved at first contact / tickets;
  ``sla_compliance``: tickets within SLA / tickets with an SLA flag.

The numbers only: sentences, formatted tables and plots are in
:mod:`analysis.report.kpi` and :mod:`analysis.report.plots.kpi`.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analysis.data.derive import PERIOD_STEP, period_start, period_starts

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


def _count_le(sorted_values: np.ndarray, points: np.ndarray, strict: bool) -> np.ndarray:
    """Count values < point (strict) or <= point for each point; values sorted, NaT excluded."""
    side = "left" if strict else "right"
    return np.searchsorted(sorted_values, points, side=side)


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
    entry = np.sort(pd.to_datetime(lifetimes["entry_date"]).to_numpy("datetime64[ns]"))
    start = np.sort(pd.to_datetime(lifetimes["start_date"]).to_numpy("datetime64[ns]"))
    churn = pd.to_datetime(lifetimes.loc[lifetimes["event"] == 1, "end_date"])
    churn = np.sort(churn.to_numpy("datetime64[ns]"))
    ps = periods["period"].to_numpy("datetime64[ns]")
    pe = periods["period_end"].to_numpy("datetime64[ns]")
    entered_before_end = _count_le(entry, pe, strict=True)
    churned_before_start = _count_le(churn, ps, strict=True)
    churned_before_end = _count_le(churn, pe, strict=True)
    window_start = entry.min() if len(entry) else ps[0]
    new = _count_le(start, pe, strict=True) - _count_le(start, np.maximum(ps, window_start), True)
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
    enrolled = np.sort(pd.to_datetime(memberships["enrolled_date"]).to_numpy("datetime64[ns]"))
    ended = pd.to_datetime(memberships["member_end"]).dropna()
    ended = np.sort(ended.to_numpy("datetime64[ns]"))
    pe = periods["period_end"].to_numpy("datetime64[ns]")
    return pd.Series(
        _count_le(enrolled, pe, True) - _count_le(ended, pe, True), index=periods.index
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
    mem = None
    if src.has("loyalty"):
        loy = src.table("loyalty").select("customer_id", "enrolled_date", "left_date").to_pandas()
        mem = loy
    return rev, exp, mem


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
        ``suppressed`` column naming them.
    """
    granularity = granularity or study.params.kpi.granularity
    lt = study.lifetimes()
    periods = _period_frame(study.window_start, study.as_of, granularity)
    out = customer_counts(lt, periods)
    rev, exp, mem = _ibis_by_period(study, granularity)
    rev["period"] = pd.to_datetime(rev["period"])
    out = out.merge(rev[["period", "revenue"]], on="period", how="left")
    out["revenue"] = out["revenue"].fillna(0.0)
    out["churn_rate"] = out["churned"] / out["at_risk"].where(out["at_risk"] > 0)
    out["retention_rate"] = 1 - out["churn_rate"]
    out["revenue_per_customer"] = out["revenue"] / out["at_risk"].where(out["at_risk"] > 0)
    if mem is not None:
        ends = lt.loc[lt["event"] == 1, ["customer_id", "end_date"]]
        m = mem.merge(ends, on="customer_id", how="left")
        m["member_end"] = pd.concat(
            [pd.to_datetime(m["left_date"]), pd.to_datetime(m["end_date"])], axis=1
        ).min(axis=1)
        # Arrow's hash lookup: pandas' isin on Arrow strings builds Python objects (20 s at 1M)
        keep = pc.is_in(pa.array(m["customer_id"]), value_set=pa.array(lt["customer_id"]))
        m = m[keep.to_numpy(zero_copy_only=False)]
        out["members"] = member_counts(m, out)
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
    out = _suppress(out, study.min_group_size)
    return out[
        [
            "period",
            "period_end",
            "complete",
            "at_risk",
            "active",
            "new",
            "churned",
            "churn_rate",
            "retention_rate",
            "revenue",
            "revenue_per_customer",
            "members",
            "member_share",
            "nps",
            "respondents_nps",
            "csat_mean",
            "respondents_csat",
            "tickets",
            "fcr_rate",
            "sla_compliance",
            "suppressed",
        ]
    ]


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
