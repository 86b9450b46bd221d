"""KPI dashboard text: labels, the verdict, tiles, flags, findings and formatted tables.

The numbers come from :mod:`analysis.studies.kpi` (the KPI table and its
control panel: statuses, comparisons, usual ranges, service levels); this
module words them. A KPI the data cannot show yet for a period is written
"not yet observable" (never 0%), a count that may still fall is "provisional",
a period cut by the as-of date is "partial"; none of them enters a headline,
a comparison or a flag.
"""

from __future__ import annotations

import pandas as pd

from analysis.report import labels
from analysis.report.format import _is_missing, fmt_pp, fmt_value
from analysis.report.sentences import count_phrase, direction, join_words
from analysis.studies import kpi as study
from analysis.studies.kpi import with_changes, year_on_year

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
    "csat_mean": "Mean CSAT (1–5)",
    "fcr_rate": "First-contact resolution",
    "sla_compliance": "SLA compliance",
}
#: How each KPI is formatted (kinds of :func:`analysis.report.format.fmt_value`) and its decimals.
KINDS = {
    "active": ("count", 0),
    "new": ("count", 0),
    "churned": ("count", 0),
    "churned_one_time": ("count", 0),
    "churn_rate": ("pct", 2),
    "retention_rate": ("pct", 2),
    "revenue": ("money", 0),
    "revenue_per_customer": ("money", 2),
    "member_share": ("pct", 1),
    "nps": ("number", 0),
    "csat_mean": ("number", 2),
    "fcr_rate": ("pct", 1),
    "sla_compliance": ("pct", 1),
}
#: Text shown in place of a value, by status.
STATUS_TEXT = {
    study.NOT_OBSERVABLE: "not yet observable",
    study.SUPPRESSED: "suppressed",
    study.MISSING: "–",
}
#: Tiles in order of preference (a KPI without a final value is left out; at most six).
TILE_ORDER = [
    "active",
    "churn_rate",
    "revenue",
    "nps",
    "fcr_rate",
    "sla_compliance",
    "new",
    "revenue_per_customer",
    "member_share",
]
#: KPIs whose label is plural ("Active customers are ...").
PLURAL_METRICS = {"active", "new", "churned"}
#: KPIs named in the verdict's first sentence.
VERDICT_METRICS = ["active", "churn_rate", "revenue", "nps"]

# The registry is shared by every report: the KPI names are registered under "kpi_" keys so
# that "nps" (the 0-10 answer elsewhere) and "revenue" keep their meanings in other reports.
labels.register({f"kpi_{m}": v for m, v in METRIC_LABELS.items()})
labels.register({"kpi_churned_one_time": "Of them: bought once or never"})
labels.register(
    {
        "kpi_metric": "KPI",
        "kpi_period": "Period",
        "kpi_latest": "Latest final value",
        "kpi_usual_range": "Usual range",
        "kpi_history": "Periods in the range",
        "kpi_flag": "Unusual?",
        "kpi_target": "Target",
        "kpi_met": "Meets target?",
        "kpi_recent_met": "Recent periods on target",
        "kpi_change": "Change",
        "share_empty": "Share empty",
        "empty": "Empty values",
        "first_date": "First date",
        "last_date": "Last date",
        "severity": "Severity",
        "problem": "Problem",
    }
)


def metric_label(metric: str) -> str:
    """Return the KPI's label ("Churn rate")."""
    return labels.label(f"kpi_{metric}")


def _lower(text: str) -> str:
    first = text.split(" ", 1)[0]
    return (
        text
        if first.isupper() or first[:3] in ("SLA", "NPS", "CSA")
        else text[:1].lower() + text[1:]
    )


def fmt_metric(metric: str, value, *, currency: str = "EUR") -> str:
    """Format one KPI value in its unit ("2.35%", "€76,109", "1,234")."""
    kind, digits = KINDS[metric]
    return fmt_value(value, kind, digits=digits, currency=currency)


def fmt_change(metric: str, change, rel=None, *, currency: str = "EUR") -> str:
    """Format a change: "+0.4 points" for shares, "+3.2%" for counts and money, "+3" for NPS.

    Counts and money use the relative change ``rel`` when given (the absolute
    change otherwise); "" when the number needed is missing.
    """
    kind, digits = KINDS[metric]
    if kind in ("count", "money") and rel is not None:
        if _is_missing(rel):
            return ""
        text = fmt_value(rel, "pct", digits=1)
        return text if text.startswith(("−", "-")) or text == "0.0%" else f"+{text}"
    if _is_missing(change):
        return ""
    if kind == "pct":
        return fmt_value(change, "pp", digits=1)
    text = fmt_value(change, kind, digits=digits, currency=currency)
    return text if text.startswith(("−", "-")) or not text.strip("0.,€$£") else f"+{text}"


def period_label(ts, granularity: str) -> str:
    """Name a period in words: "June 2026", "Q2 2026", "the week of 01 Jun 2026", "01 Jun 2026"."""
    ts = pd.Timestamp(ts)
    if granularity == "month":
        return ts.strftime("%B %Y")
    if granularity == "quarter":
        return f"Q{ts.quarter} {ts.year}"
    if granularity == "week":
        return f"the week of {ts:%d %b %Y}"
    return f"{ts:%d %b %Y}"


def when(ts, granularity: str, *, capital: bool = False) -> str:
    """Return "in June 2026", "in the week of 01 Jun 2026" or "on 01 Jun 2026"."""
    text = ("on " if granularity == "day" else "in ") + period_label(ts, granularity)
    return text[:1].upper() + text[1:] if capital else text


def _period_word(granularity: str) -> str:
    return {"day": "day", "week": "week", "month": "month", "quarter": "quarter"}[granularity]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --------------------------------------------------------------------------------------
# Verdict, flags, tiles
# --------------------------------------------------------------------------------------


def _rounded(metric: str, change) -> float:
    """Round a change to the precision it is shown with (a change shown as 0 is no change)."""
    kind, digits = KINDS[metric]
    if _is_missing(change):
        return float("nan")
    return round(float(change), 3 if kind == "pct" else digits)


def _shown(metric: str, x) -> float:
    """The value as printed (a share to its shown decimals of a per cent)."""
    kind, digits = KINDS[metric]
    return round(float(x), digits + 2 if kind == "pct" else digits)


def shown_flags(panel: study.KpiPanel) -> pd.DataFrame:
    """Return the panel's flags whose value is outside its range also as printed.

    A value of 19.6 against a range of 20 to 20 is flagged by the study but
    would read "NPS (20) is below its usual range (20 to 20)": such flags are
    left out, so that no sentence contradicts its numbers.
    """
    f = panel.flags
    keep = [
        (_shown(r["metric"], r["value"]) > _shown(r["metric"], r["high"]))
        or (_shown(r["metric"], r["value"]) < _shown(r["metric"], r["low"]))
        for _, r in f.iterrows()
    ]
    return f[keep].reset_index(drop=True) if len(f) else f


def _movement(metric: str, r: pd.Series, currency: str) -> str:
    """ "active customers fell by 2.1% to 5,374" from one row of the panel's comparisons."""
    name = _lower(metric_label(metric))
    value = fmt_metric(metric, r["value"], currency=currency)
    kind = KINDS[metric][0]
    level = kind in ("count", "money") and not _is_missing(r["rel_change_prev"])
    size = round(float(r["rel_change_prev"]), 3) if level else _rounded(metric, r["change_prev"])
    d = direction(size)
    if d in ("none", "missing"):
        return f"{name} stayed at {value}"
    if kind == "pct":
        by = fmt_pp(abs(size), sign=False)
    elif level:
        by = fmt_value(abs(size), "pct", digits=1)
    else:
        by = fmt_metric(metric, abs(size), currency=currency)
    verb = "rose" if d == "up" else "fell"
    return f"{name} {verb} by {by} to {value}"


def verdict(panel: study.KpiPanel, *, currency: str, inactivity_days: int | None = None) -> str:
    """Say how the KPIs moved in the latest complete period, in at most two sentences."""
    g = panel.granularity
    if panel.latest is None:
        return (
            f"The data does not yet hold a complete {_period_word(g)}; the figures below cover "
            "a partial period and are not compared."
        )
    c = panel.comparisons.set_index("metric")
    now = [m for m in VERDICT_METRICS if m in c.index and c.loc[m, "period"] == panel.latest]
    moved = [m for m in now if not _is_missing(c.loc[m, "change_prev"])]
    if moved:
        prev = period_label(c.loc[moved[0], "prev_period"], g)
        first = (
            f"{when(panel.latest, g, capital=True)}, compared with {prev}, "
            f"{join_words(_movement(m, c.loc[m], currency) for m in moved)}."
        )
    elif now:
        shown = [
            f"{_lower(metric_label(m))} {fmt_metric(m, c.loc[m, 'value'], currency=currency)}"
            for m in now
        ]
        first = (
            f"{when(panel.latest, g, capital=True)}: {join_words(shown)} "
            f"(no earlier {_period_word(g)} to compare with)."
        )
    else:
        first = f"No KPI has a final value for {period_label(panel.latest, g)} yet."
    if panel.churn_hidden_from is not None and "churn_rate" not in now:
        ch = c.loc["churn_rate"] if "churn_rate" in c.index else None
        days = f"{inactivity_days} days" if inactivity_days else "a full inactivity period"
        second = (
            f"Churn since {period_label(panel.churn_hidden_from, g)} is not yet observable, because "
            f"a customer counts as lost only after {days} without a purchase"
        )
        if ch is not None and not _is_missing(ch["value"]):
            second += (
                f"; the latest {_period_word(g)} that shows it, {period_label(ch['period'], g)}, "
                f"had {fmt_metric('churn_rate', ch['value'])}"
            )
        return f"{first} {second}."
    flags = shown_flags(panel)
    if len(flags):
        names = join_words(_lower(metric_label(m)) for m in flags["metric"])
        n = len(flags)
        second = f"{_plural(n, 'KPI')} {'is' if n == 1 else 'are'} outside {'its' if n == 1 else 'their'} usual range: {names}."
    elif panel.ranges["low"].notna().any():
        second = f"Every KPI is within its usual range of the last {_plural(panel.normal_range_periods, _period_word(g))}."
    else:
        second = "There is too little history yet to say which values are unusual."
    return f"{first} {second}"


def flag_sentences(panel: study.KpiPanel, *, currency: str) -> list[str]:
    """Word each unusual value: "Churn rate in June 2026 (3.90%) is above its usual range (2.10–3.20%, ...)"."""
    g = panel.granularity
    out = []
    for _, r in shown_flags(panel).iterrows():
        m = r["metric"]
        side = "above" if r["flag"] == "high" else "below"
        verb, its = ("are", "their") if m in PLURAL_METRICS else ("is", "its")
        lo = fmt_metric(m, r["low"], currency=currency)
        hi = fmt_metric(m, r["high"], currency=currency)
        out.append(
            f"{metric_label(m)} {when(r['period'], g)} "
            f"({fmt_metric(m, r['value'], currency=currency)}) {verb} {side} {its} usual range "
            f"({lo} to {hi} in the previous {_plural(int(r['n_history']), _period_word(g))})."
        )
    return out


def tile_specs(panel: study.KpiPanel, *, currency: str, max_tiles: int = 6) -> list[dict]:
    """Return the keyword arguments of one :func:`analysis.report.display.tile` per main KPI.

    Each tile shows the KPI's latest final value, its change against the
    period before (and a year earlier in its note, where the data allows), a
    sparkline of its recent final values, a flag when the value is outside its
    usual range and the target where ``kpi.targets`` sets one.
    """
    g = panel.granularity
    c = panel.comparisons.set_index("metric")
    rng = panel.ranges.set_index("metric")
    flagged = set(shown_flags(panel)["metric"])
    svc = panel.service.set_index("metric") if len(panel.service) else pd.DataFrame()
    specs = []
    for m in TILE_ORDER:
        if m not in c.index or _is_missing(c.loc[m, "value"]):
            continue
        r = c.loc[m]
        kind, digits = KINDS[m]
        notes = [period_label(r["period"], g)]
        if panel.latest is not None and r["period"] != panel.latest:
            later = "not yet observable" if m in study.CHURN_METRICS else "provisional"
            notes[0] = f"{notes[0]} (latest final; later {_period_word(g)}s {later})"
        level = kind in ("count", "money")
        year = fmt_change(
            m, r["change_year"], r["rel_change_year"] if level else None, currency=currency
        )
        if year:
            notes.append(f"{year} vs {period_label(r['year_period'], g)}")
        flag = None
        if m in flagged:
            side = "above" if rng.loc[m, "flag"] == "high" else "below"
            flag = (
                f"{side} usual range ({fmt_metric(m, rng.loc[m, 'low'], currency=currency)} to "
                f"{fmt_metric(m, rng.loc[m, 'high'], currency=currency)})"
            )
        target = svc.loc[m, "target"] if m in svc.index else None
        specs.append(
            {
                "name": metric_label(m),
                "value": float(r["value"]),
                "kind": kind,
                "digits": digits,
                "currency": currency,
                "note": _cap("; ".join(notes)),
                "change": None if _is_missing(r["change_prev"]) else _rounded(m, r["change_prev"]),
                "change_label": (
                    f"vs {period_label(r['prev_period'], g)}"
                    if not _is_missing(r["change_prev"])
                    else ""
                ),
                "good": "down" if m in study.LOWER_IS_BETTER else "up",
                "spark": panel.sparks.get(m, []),
                "flag": flag,
                "target": None if _is_missing(target) else float(target),
            }
        )
        if len(specs) == max_tiles:
            break
    return specs


# --------------------------------------------------------------------------------------
# Section findings (one sentence each, from the numbers)
# --------------------------------------------------------------------------------------


def _latest_row(kpis: pd.DataFrame, panel: study.KpiPanel):
    if panel.latest is None:
        return None, None
    k = kpis.reset_index(drop=True)
    i = int(k.index[pd.to_datetime(k["period"]) == panel.latest][0])
    return k.iloc[i], panel.status.reset_index(drop=True).iloc[i]


def customers_finding(
    kpis: pd.DataFrame, panel: study.KpiPanel, *, inactivity_days: int | None = None
) -> str:
    """Say how many customers there were, joined and left in the latest complete period."""
    g = panel.granularity
    row, st = _latest_row(kpis, panel)
    if row is None:
        return f"No complete {_period_word(g)} yet: the counts below cover a partial period."
    end = f"the end of {period_label(row['period'], g)}"
    during = when(row["period"], g)
    parts = []
    if st["active"] == study.OK:
        parts.append(f"At {end} there were {count_phrase(row['active'], 'active customer')}")
    elif st["active"] == study.PROVISIONAL:
        parts.append(
            f"At {end} up to {count_phrase(row['active'], 'customer')} were still active "
            "(provisional: some of them may yet turn out to have lapsed)"
        )
    else:
        parts.append(
            f"{during[:1].upper()}{during[1:]} the number of active customers is {STATUS_TEXT[st['active']]}"
        )
    moves = []
    if st["new"] in (study.OK, study.PROVISIONAL):
        moves.append(f"{count_phrase(row['new'], 'customer')} joined")
    if st["churned"] == study.OK:
        left = f"{count_phrase(row['churned'], 'customer')} left"
        once = row.get("churned_one_time")
        if st.get("churned_one_time") == study.OK and row["churned"] > 0 and not _is_missing(once):
            left += f" ({fmt_metric('churned_one_time', once)} of them had bought once or never)"
        moves.append(left)
    elif st["churned"] == study.NOT_OBSERVABLE:
        days = f"{inactivity_days} days" if inactivity_days else "the inactivity period"
        moves.append(
            f"how many left is not yet observable (a lapse shows only after {days} without a purchase)"
        )
    text = parts[0]
    if moves:
        text += f"; {join_words(moves)}"
    if st["churn_rate"] == study.OK:
        text += f" (churn rate {fmt_metric('churn_rate', row['churn_rate'])})"
    return text + "."


def revenue_finding(panel: study.KpiPanel, *, currency: str) -> str:
    """Say what revenue was in the latest complete period and how it moved."""
    g = panel.granularity
    c = panel.comparisons.set_index("metric")
    r = c.loc["revenue"] if "revenue" in c.index else None
    if r is None or _is_missing(r["value"]):
        return "Revenue cannot be shown: no complete period has a final figure."
    text = (
        f"Revenue {when(r['period'], g)} was {fmt_metric('revenue', r['value'], currency=currency)}"
    )
    ch = []
    for side in ("prev", "year"):
        if not _is_missing(r[f"change_{side}"]):
            ch.append(
                f"{fmt_change('revenue', r[f'change_{side}'], r[f'rel_change_{side}'], currency=currency)} "
                f"on {period_label(r[f'{side}_period'], g)}"
            )
    if ch:
        text += f" ({', '.join(ch)})"
    rpc = c.loc["revenue_per_customer"] if "revenue_per_customer" in c.index else None
    if rpc is not None and rpc["period"] == r["period"]:
        text += (
            f", {fmt_metric('revenue_per_customer', rpc['value'], currency=currency)} per customer"
        )
    return text + "."


def service_finding(panel: study.KpiPanel) -> str:
    """Say how loyalty, satisfaction and the service levels stood, against targets where set.

    Returns "" when the data has none of these figures.
    """
    g = panel.granularity
    c = panel.comparisons.set_index("metric")
    svc = panel.service.set_index("metric") if len(panel.service) else pd.DataFrame()
    have = [m for m in PANEL_SERVICE if m in c.index and not _is_missing(c.loc[m, "value"])]
    if not have:
        return ""
    latest = max(c.loc[m, "period"] for m in have)
    parts = []
    for m in [m for m in have if c.loc[m, "period"] == latest]:
        v = fmt_metric(m, c.loc[m, "value"])
        p = {
            "fcr_rate": f"{v} of tickets were resolved at first contact",
            "sla_compliance": f"{v} of tickets met the SLA",
            "nps": f"NPS was {v}",
            "member_share": f"{v} of active customers were loyalty members",
        }[m]
        if m in svc.index and not _is_missing(svc.loc[m, "target"]):
            met = "met" if svc.loc[m, "met"] else "missed"
            p += f" (target {fmt_metric(m, svc.loc[m, 'target'])}: {met})"
        parts.append(p)
    return f"{when(latest, g, capital=True)}, {join_words(parts)}."


PANEL_SERVICE = ["fcr_rate", "sla_compliance", "nps", "member_share"]


def year_finding(panel: study.KpiPanel, *, currency: str) -> str:
    """Say how the main KPIs compare with the same period a year earlier."""
    g = panel.granularity
    c = panel.comparisons
    c = c[c["change_year"].notna() & c["metric"].isin(TILE_ORDER)]
    if c.empty:
        return (
            f"The data does not yet reach a year back from its latest complete {_period_word(g)}."
        )
    bits = []
    for _, r in c.iterrows():
        m = r["metric"]
        level = KINDS[m][0] in ("count", "money")
        ch = fmt_change(
            m, r["change_year"], r["rel_change_year"] if level else None, currency=currency
        )
        if ch:
            bits.append(f"{_lower(metric_label(m))} {ch}")
    if not bits:
        return "No KPI has final figures a year apart yet."
    return f"Against the same {_period_word(g)} a year earlier: {join_words(bits[:4])}."


def findings(kpis: pd.DataFrame, *, granularity: str, currency: str) -> list[str]:
    """Write plain-language sentences on the latest complete period, generated from the numbers."""
    panel = study.control_panel(kpis, granularity=granularity)
    out = [customers_finding(kpis, panel), revenue_finding(panel, currency=currency)]
    svc = service_finding(panel)
    if svc:
        out.append(svc)
    if panel.partial is not None:
        out.append(
            f"The last {granularity} in the data ({period_label(panel.partial, granularity)}) is "
            "incomplete (cut at the as-of date): it is shown as partial and left out of comparisons."
        )
    return out


# --------------------------------------------------------------------------------------
# Tables (strings; every header through the labels registry)
# --------------------------------------------------------------------------------------

#: KPI tables of the appendix: one per topic, so that each fits the page.
TABLE_GROUPS = {
    "Customers": ["active", "new", "churned", "churned_one_time"],
    "Churn and retention": ["churn_rate", "retention_rate"],
    "Revenue and loyalty": ["revenue", "revenue_per_customer", "member_share"],
    "Customer experience and service": ["nps", "csat_mean", "fcr_rate", "sla_compliance"],
}


def cell_text(metric: str, value, status: str, *, currency: str = "EUR", change: str = "") -> str:
    """Format one KPI cell: the value (and a formatted change) or what stands in for it."""
    if status in STATUS_TEXT:
        return STATUS_TEXT[status]
    text = fmt_metric(metric, value, currency=currency)
    if change:
        text += f" ({change})"
    if status == study.PROVISIONAL:
        text += " (provisional)"
    return text


def period_table(
    kpis: pd.DataFrame,
    *,
    metrics: list[str],
    granularity: str,
    periods: int,
    currency: str,
    changes: bool = True,
) -> pd.DataFrame:
    """Return the last ``periods`` periods as a table of strings, one column per KPI.

    With ``changes`` each cell also shows its change on the previous period
    (percentage points for shares, per cent for counts and money, points for
    NPS). A period cut by the as-of date is marked "(partial)"; churn that the
    data cannot show yet reads "not yet observable", a count that may still
    fall "(provisional)".
    """
    k = with_changes(kpis, granularity=granularity).reset_index(drop=True)
    status = study.kpi_status(k, metrics)
    k, status = k.tail(periods), status.tail(periods)
    rows = []
    for (_, r), (_, s) in zip(k.iterrows(), status.iterrows(), strict=True):
        lab = period_label(r["period"], granularity) + ("" if r["complete"] else " (partial)")
        row = {"kpi_period": lab}
        for m in metrics:
            ch = ""
            if changes and f"{m}_vs_prev" in r:
                d = r[f"{m}_vs_prev"]  # relative for counts and money, a difference otherwise
                level = KINDS[m][0] in ("count", "money")
                ch = fmt_change(m, d, d if level else None, currency=currency)
            row[f"kpi_{m}"] = cell_text(m, r[m], s[m], currency=currency, change=ch)
        rows.append(row)
    return labels.relabel(pd.DataFrame(rows))


def display_table(
    kpis: pd.DataFrame, *, granularity: str, periods: int, currency: str
) -> pd.DataFrame:
    """Return the last ``periods`` periods with every KPI as strings (the full export table).

    Wide: the dashboard shows it split by :data:`TABLE_GROUPS` (see :func:`group_tables`).
    """
    return period_table(
        kpis,
        metrics=list(METRIC_LABELS),
        granularity=granularity,
        periods=periods,
        currency=currency,
    )


def group_tables(
    kpis: pd.DataFrame, *, granularity: str, periods: int, currency: str
) -> dict[str, pd.DataFrame]:
    """Return the full KPI table split by topic (KPIs with no value in the shown periods left out)."""
    shown = kpis.tail(periods)
    out = {}
    for title, metrics in TABLE_GROUPS.items():
        keep = [m for m in metrics if m in shown and shown[m].notna().any()]
        keep += [
            m
            for m in metrics
            if m not in keep
            and "not_observable" in shown
            and shown["not_observable"].str.contains(m).any()
        ]
        keep = [m for m in metrics if m in keep]
        if keep:
            out[title] = period_table(
                kpis, metrics=keep, granularity=granularity, periods=periods, currency=currency
            )
    return out


def recent_table(
    kpis: pd.DataFrame, *, metrics: list[str], granularity: str, periods: int = 6, currency: str
) -> pd.DataFrame:
    """Return a compact table of the last few periods (values only) for a dashboard section."""
    return period_table(
        kpis,
        metrics=metrics,
        granularity=granularity,
        periods=periods,
        currency=currency,
        changes=False,
    )


def service_table(panel: study.KpiPanel) -> pd.DataFrame:
    """Return the service levels against their targets (strings)."""
    g = panel.granularity
    rows = []
    for _, r in panel.service.iterrows():
        m = r["metric"]
        has_target = not _is_missing(r["target"])
        rows.append(
            {
                "kpi_metric": metric_label(m),
                "kpi_period": "–" if _is_missing(r["period"]) else period_label(r["period"], g),
                "kpi_latest": fmt_metric(m, r["value"]) if not _is_missing(r["value"]) else "–",
                "kpi_target": fmt_metric(m, r["target"]) if has_target else "none set",
                "kpi_met": ("yes" if r["met"] else "no")
                if has_target and r["met"] is not None
                else "–",
                "kpi_recent_met": (
                    f"{int(r['periods_met'])} of {int(r['periods_judged'])}"
                    if has_target and r["periods_judged"]
                    else "–"
                ),
            }
        )
    return labels.relabel(pd.DataFrame(rows))


def service_caption(panel: study.KpiPanel) -> str:
    """Caption of :func:`service_table`: says whether targets are set."""
    if panel.service["target"].notna().any():
        return "Service levels against their targets (targets are set in the run configuration)"
    return "Service levels (no targets are set in the run configuration)"


def ranges_table(panel: study.KpiPanel, *, currency: str) -> pd.DataFrame:
    """Return every KPI's latest final value beside its usual range (strings)."""
    g = panel.granularity
    flagged = set(shown_flags(panel)["metric"])
    rows = []
    for _, r in panel.ranges.iterrows():
        m = r["metric"]
        if _is_missing(r["value"]):
            continue
        has = not _is_missing(r["low"])
        rows.append(
            {
                "kpi_metric": metric_label(m),
                "kpi_period": period_label(r["period"], g),
                "kpi_latest": fmt_metric(m, r["value"], currency=currency),
                "kpi_usual_range": (
                    f"{fmt_metric(m, r['low'], currency=currency)} to {fmt_metric(m, r['high'], currency=currency)}"
                    if has
                    else "too little history"
                ),
                "kpi_history": str(int(r["n_history"])),
                "kpi_flag": (
                    {"high": "above", "low": "below"}[r["flag"]]
                    if m in flagged
                    else ("no" if has else "–")
                ),
            }
        )
    return labels.relabel(pd.DataFrame(rows))


def year_on_year_table(kpis: pd.DataFrame, *, granularity: str, currency: str) -> pd.DataFrame:
    """Return the latest complete period beside the same period a year earlier (strings).

    Empty when the data does not reach back a year before the latest complete period.
    A value that is not final (churn not yet observable, a provisional count) is
    named as such, and its change is left out.
    """
    yoy = year_on_year(kpis, granularity=granularity)
    if yoy.empty:
        return pd.DataFrame()
    status = study.kpi_status(kpis.reset_index(drop=True)).set_index("period")
    rows = []
    for _, r in yoy.iterrows():
        m = r["metric"]
        if m not in status.columns:
            continue
        sb = status.loc[pd.Timestamp(r["before_period"]), m]
        sl = status.loc[pd.Timestamp(r["latest_period"]), m]
        final = sb == study.OK and sl == study.OK
        level = KINDS[m][0] in ("count", "money")
        change = fmt_change(m, r["change"], r["change"] if level else None, currency=currency)
        change = change if final and change else "–"
        rows.append(
            {
                "kpi_metric": metric_label(m),
                period_label(r["before_period"], granularity): cell_text(
                    m, r["before"], sb, currency=currency
                ),
                period_label(r["latest_period"], granularity): cell_text(
                    m, r["latest"], sl, currency=currency
                ),
                "kpi_change": change,
            }
        )
    return labels.relabel(pd.DataFrame(rows))


def status_note(panel: study.KpiPanel, *, inactivity_days: int | None = None) -> str:
    """Explain what "not yet observable", "provisional" and "partial" mean on this page ("" if unused)."""
    g = panel.granularity
    parts = []
    if panel.churn_hidden_from is not None:
        days = f"{inactivity_days} days" if inactivity_days else "the inactivity period"
        parts.append(
            f"A customer counts as churned on the day of their last purchase once {days} have passed "
            f"without another one, so churn from {period_label(panel.churn_hidden_from, g)} on is "
            "not yet observable: it is shown as such (never as 0%) and left out of headlines, "
            "comparisons and flags. Counts of active customers from then on are provisional: "
            "some of those customers may yet turn out to have lapsed."
        )
    if panel.partial is not None:
        parts.append(
            f"{period_label(panel.partial, g)[:1].upper()}{period_label(panel.partial, g)[1:]} is cut "
            "by the as-of date: it is marked partial and left out of comparisons and flags."
        )
    return " ".join(parts)


def data_quality_tables(dq: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Return :func:`analysis.studies.kpi.data_quality` with table and column names in words."""

    def table_name(name) -> str:
        return str(name)[:1].upper() + str(name)[1:]

    cov = dq["coverage"].assign(table=lambda d: d["table"].map(table_name))
    miss = dq["missing"]
    if len(miss):
        miss = miss.assign(
            table=lambda d: d["table"].map(table_name),
            column=lambda d: d["column"].map(lambda c: table_name(labels.label(c))),
        )
    return {"coverage": labels.relabel(cov), "missing": labels.relabel(miss)}


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
