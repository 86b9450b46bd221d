"""KPI dashboard text: labels, plain-language findings and formatted tables.

The numbers come from :mod:`analysis.studies.kpi`; this module turns them into
the sentences and stakeholder-readable tables of the KPI dashboard.
"""

from __future__ import annotations

import pandas as pd

from analysis.studies.kpi import latest_complete, with_changes, year_on_year

METRIC_LABELS = {
    "active": "Active customers",
    "new": "New customers",
    "churned": "Churned customers",
    "churn_rate": "Churn rate",
    "retention_rate": "Retention rate",
    "revenue": "Revenue",
    "revenue_per_customer": "Revenue per customer",
    "member_share": "Loyalty-member share",
    "nps": "NPS",
    "csat_mean": "Mean CSAT (1-5)",
    "fcr_rate": "First-contact resolution",
    "sla_compliance": "SLA compliance",
}


def _fmt_change(x: float, *, rate: bool, unit: str = "") -> str:
    if pd.isna(x):
        return ""
    if rate:
        return f"{x:+.1f} {unit}".strip()
    return f"{100 * x:+.1f}%"


def findings(kpis: pd.DataFrame, *, granularity: str, currency: str) -> list[str]:
    """Write plain-language sentences on the latest complete period, generated from the numbers."""
    k = with_changes(kpis, granularity=granularity)
    row = latest_complete(k)
    label = _period_label(row["period"], granularity)
    out = []
    if pd.notna(row["active"]):
        s = f"At the end of {label} there were {row['active']:,.0f} active customers"
        ch = [c for c in (_fmt_change(row["active_vs_prev"], rate=False),) if c]
        if ch:
            s += f" ({ch[0]} on the previous {granularity}"
            if pd.notna(row["active_vs_year"]):
                s += f", {_fmt_change(row['active_vs_year'], rate=False)} on a year earlier"
            s += ")"
        out.append(s + f"; {row['new']:,.0f} joined and {row['churned']:,.0f} left.")
    if pd.notna(row["churn_rate"]):
        s = f"The churn rate in {label} was {100 * row['churn_rate']:.2f}%"
        if pd.notna(row["churn_rate_vs_prev"]):
            s += f" ({100 * row['churn_rate_vs_prev']:+.2f} percentage points on the previous {granularity})"
        out.append(s + ".")
    if pd.notna(row["revenue"]):
        s = f"Revenue was {row['revenue']:,.0f} {currency}"
        if pd.notna(row["revenue_vs_year"]):
            s += f" ({_fmt_change(row['revenue_vs_year'], rate=False)} on the same {granularity} a year earlier)"
        elif pd.notna(row["revenue_vs_prev"]):
            s += f" ({_fmt_change(row['revenue_vs_prev'], rate=False)} on the previous {granularity})"
        if pd.notna(row["revenue_per_customer"]):
            s += f", {row['revenue_per_customer']:,.2f} {currency} per customer"
        out.append(s + ".")
    if pd.notna(row["member_share"]):
        out.append(f"{100 * row['member_share']:.1f}% of active customers were loyalty members.")
    if pd.notna(row["nps"]):
        s = f"NPS was {row['nps']:+.0f} from {row['respondents_nps']:,.0f} answers"
        if pd.notna(row["fcr_rate"]):
            s += (
                f"; {100 * row['fcr_rate']:.0f}% of tickets were resolved at first contact and "
                f"{100 * row['sla_compliance']:.0f}% met the SLA"
            )
        out.append(s + ".")
    if not bool(kpis.iloc[-1]["complete"]):
        out.append(
            f"The last {granularity} in the data is incomplete (cut at the as-of date) and is "
            "shown but not used for these comparisons."
        )
    return out


def _period_label(ts, granularity: str) -> str:
    ts = pd.Timestamp(ts)
    if granularity == "month":
        return ts.strftime("%B %Y")
    if granularity == "quarter":
        return f"Q{ts.quarter} {ts.year}"
    if granularity == "week":
        return f"the week of {ts:%d %b %Y}"
    return f"{ts:%d %b %Y}"


def display_table(
    kpis: pd.DataFrame, *, granularity: str, periods: int, currency: str
) -> pd.DataFrame:
    """Return the last ``periods`` periods as a formatted, stakeholder-readable table (strings).

    One row per period (most recent last), one column per KPI.
    """
    k = with_changes(kpis, granularity=granularity).tail(periods)
    rows = {}
    for _, r in k.iterrows():
        col = _period_label(r["period"], granularity) + ("" if r["complete"] else " (partial)")
        vals = {}
        for m in METRIC_LABELS:
            v = r[m]
            if pd.isna(v):
                vals[METRIC_LABELS[m]] = "suppressed" if m in str(r["suppressed"]) else "–"
                continue
            if m in ("churn_rate", "retention_rate", "member_share", "fcr_rate", "sla_compliance"):
                s = f"{100 * v:.1f}%"
                d = r[f"{m}_vs_prev"]
                if pd.notna(d):
                    s += f" ({100 * d:+.1f} pt)"
            elif m == "nps":
                s = f"{v:+.0f}"
                d = r[f"{m}_vs_prev"]
                if pd.notna(d):
                    s += f" ({d:+.0f})"
            elif m == "csat_mean":
                s = f"{v:.2f}"
            elif m in ("revenue", "revenue_per_customer"):
                s = f"{v:,.0f} {currency}" if m == "revenue" else f"{v:,.2f} {currency}"
                d = r[f"{m}_vs_prev"]
                if pd.notna(d):
                    s += f" ({100 * d:+.1f}%)"
            else:
                s = f"{v:,.0f}"
            vals[METRIC_LABELS[m]] = s
        rows[col] = vals
    return pd.DataFrame(rows).T.rename_axis("Period").reset_index()


def year_on_year_table(kpis: pd.DataFrame, *, granularity: str, currency: str) -> pd.DataFrame:
    """Return the latest complete period beside the same period a year earlier (strings).

    Empty when the data does not reach back a year before the latest complete period.
    """
    yoy = year_on_year(kpis, granularity=granularity)
    if yoy.empty:
        return pd.DataFrame()
    rows = []
    for _, r in yoy.iterrows():
        m = r["metric"]
        pct = m in ("churn_rate", "retention_rate", "member_share", "fcr_rate", "sla_compliance")

        def f(v, m=m, pct=pct):
            if pd.isna(v):
                return "–"
            if pct:
                return f"{100 * v:.1f}%"
            if m in ("revenue", "revenue_per_customer"):
                return (
                    f"{v:,.2f} {currency}"
                    if m == "revenue_per_customer"
                    else f"{v:,.0f} {currency}"
                )
            if m == "nps":
                return f"{v:+.0f}"
            if m == "csat_mean":
                return f"{v:.2f}"
            return f"{v:,.0f}"

        d = r["change"]
        if pd.isna(d):
            change = "–"
        elif pct:
            change = f"{100 * d:+.1f} pt"
        elif m in ("nps", "csat_mean"):
            change = f"{d:+.2f}" if m == "csat_mean" else f"{d:+.0f}"
        else:
            change = f"{100 * d:+.1f}%"
        rows.append(
            {
                "KPI": METRIC_LABELS[m],
                _period_label(r["before_period"], granularity): f(r["before"]),
                _period_label(r["latest_period"], granularity): f(r["latest"]),
                "change": change,
            }
        )
    return pd.DataFrame(rows)


def validation_summary(problems, notes=()) -> pd.DataFrame:
    """Tabulate validation problems and derivation notes without example keys (no customer ids)."""
    rows = [
        {
            "table": p.table,
            "column": p.column or "",
            "severity": p.severity,
            "problem": p.message,
            "rows": p.n_rows,
        }
        for p in problems
    ]
    rows += [
        {"table": "customers", "column": "", "severity": "note", "problem": n, "rows": None}
        for n in notes
    ]
    return pd.DataFrame(rows, columns=["table", "column", "severity", "problem", "rows"])
