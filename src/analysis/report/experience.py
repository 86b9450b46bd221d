"""Sentences, labels and tables of the experience-to-revenue report (03).

Every sentence is written from the numbers of :mod:`analysis.studies.experience`
through :mod:`analysis.report.sentences` (the sign decides the verb; an interval
that includes no effect says "no clear evidence"):

* the page's top: :func:`verdict` (what a better service experience is worth,
  in two sentences) and :func:`tiles` (the key figures, which are also the
  index's headlines);
* one finding per section (:func:`trends_finding`, :func:`drivers_finding`,
  :func:`retention_finding`, :func:`hazard_finding`, :func:`revenue_finding`,
  :func:`lags_finding`, :func:`moments_finding`, :func:`compensation_finding`,
  :func:`stakes_finding`) and the compact tables beside them
  (``*_table``), with the full tables for the analysts' appendix
  (``*_full``); :func:`notes` and :func:`method_notes` for the appendix.

A section the data cannot support holds a
:class:`~analysis.studies.sections.Skipped` in the study result; its functions
here are not called for it (the notebook shows the skipped section instead).
:func:`run_study` runs the study and attaches the text (the original one-call API,
also offered by :mod:`analysis.experience`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from analysis.report.format import _is_missing, fmt_est, fmt_money, fmt_pct, fmt_value
from analysis.report.labels import label, register
from analysis.report.sentences import count_phrase, direction, join_words, most_common
from analysis.report.sentences import ratio_sentence as _ratio_sentence
from analysis.report.suppression import suppression
from analysis.stats.fixed_effects import FEResult
from analysis.studies.experience import (
    ClaimNumbers,
    HazardResult,
    StudyResults,
    claim_numbers,
)
from analysis.studies.experience import run_study as _run_study
from analysis.studies.sections import Skipped, is_skipped

#: Labels of the churn-model terms in the report's hazard table.
TERM_LABELS = {
    "nps_category[passive]": "Latest NPS: passive (vs promoter)",
    "nps_category[detractor]": "Latest NPS: detractor (vs promoter)",
    "nps_category[none]": "No NPS answer yet (vs promoter)",
    "unresolved_window": "Each ticket not resolved at first contact, in the window",
    "sla_breaches_window": "Each SLA breach, in the window",
    "compensated_failures_window": "Each failed ticket that was compensated (extra)",
    "member": "Loyalty member",
}

#: Plain names of the scenarios (their ids never reach the page).
SCENARIO_LABELS = {
    "detractors_as_passives": "Detractors churn like passives",
    "fcr_up": "More tickets resolved at first contact",
    "sla_breaches_reduced": "Fewer SLA breaches",
}

#: Service measures of the revenue link and their units (axis titles, table cells).
EXPOSURE_LABELS = {
    "csat_mean": "CSAT (1–5), monthly mean",
    "unresolved_tickets": "Tickets not resolved at first contact",
    "sla_breaches": "SLA breaches",
}
_EXPOSURE_UNITS = {
    "csat_mean": "per CSAT point",
    "unresolved_tickets": "per unresolved ticket",
    "sla_breaches": "per SLA breach",
}

register(
    {
        **TERM_LABELS,
        **SCENARIO_LABELS,
        **EXPOSURE_LABELS,
        "nps_score": "NPS (−100 to 100)",
        "answers": "Survey answers",
        "nps_answers": "NPS answers",
        "promoter_share": "Promoters",
        "passive_share": "Passives",
        "detractor_share": "Detractors",
        "csat_mean": "CSAT (1–5)",
        "ces_mean": "Customer effort (1–7)",
        "tickets": "Tickets",
        "fcr_rate": "Resolved at first contact",
        "contacts_to_resolve": "Contacts to resolve (mean)",
        "sla_compliance": "Within SLA",
        "compensated_share": "Failed tickets compensated",
        "driver": "Ticket before the answer",
        "nps_category": "Latest NPS answer",
        "churned": "Left",
        "term_label": "Factor",
        "exposure": "Service measure",
        "lag": "Months later",
        "csat_level": "CSAT this month",
        "next_revenue": "Next-month revenue (mean)",
        "fe_difference": "Same customers, vs CSAT 3",
        "touchpoint": "Touchpoint",
        "failure_rate": "Failed tickets",
        "customers_lost": "Customers lost per 100 failed tickets",
        "revenue_lost": "Revenue lost per 100 failed tickets",
        "effect_of_failures": "100 more failed tickets",
        "scenario": "Scenario",
        "customers_kept": "Customers kept a year",
        "revenue_kept": "Revenue kept",
        "claim": "Claim",
        "our_number": "Our number",
        "what_the_data_can_say": "What this data can say",
        "comparison": "Comparison",
        "customers_with_compensated_failure": "Customers with a compensated failure",
        "adjusted_for": "Adjusted for",
        "design": "Design",
        "churn_rate_ratio": "Churn rate ratio",
        "customer_months": "Customer-months",
        "survey": "Survey",
        "nps_ci": "NPS (95% CI)",
        "csat_ci": "CSAT (95% CI)",
    }
)

_NPS_WORDS = {"promoter": "promoters", "passive": "passives", "detractor": "detractors"}


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def _ok(x: Any) -> bool:
    """Whether a section result is there to show (not skipped, not empty)."""
    if x is None or is_skipped(x):
        return False
    if isinstance(x, pd.DataFrame):
        return len(x) > 0
    return True


def _ci_text(est: Any, lo: Any, hi: Any, *, kind: str = "number", **kw: Any) -> str:
    """Return "X (95% CI a–b)" for a sentence."""
    text = fmt_est(est, lo, hi, kind=kind, **kw)
    return text.replace(" (", " (95% CI ", 1)


def _hidden(df: pd.DataFrame, group_col: str, min_group_size: int, count_col="customers") -> set:
    """Groups a table of ``df`` suppresses (small or complementary), by ``group_col`` label."""
    if not len(df) or count_col not in df.columns:
        return set()
    sup = suppression(
        df, count_col=count_col, min_group_size=min_group_size, total=True, group_col=group_col
    )
    return set(sup.hidden_groups)


# --------------------------------------------------------------------------------------
# Verdict and tiles
# --------------------------------------------------------------------------------------


def _first_stake(res: StudyResults) -> pd.Series | None:
    """The headline scenario: the first one with a clear direction, else the first one."""
    if not _ok(res.stakes):
        return None
    st = res.stakes
    for i in range(len(st)):
        r = st.iloc[i]
        if direction(r.churners_prevented_per_year, r.churners_ci_lower, r.churners_ci_upper) in (
            "up",
            "down",
        ):
            return r
    return st.iloc[0]


def _scenario_name(s: pd.Series) -> str:
    return label(s.scenario) if s.scenario in SCENARIO_LABELS else str(s.description)


def _if_clause(s: pd.Series) -> str:
    """Return "if detractors churned at the rate of passives" for a scenario row."""
    name, desc = str(s.scenario), str(s.description)
    if name == "detractors_as_passives":
        return "if detractors left at the rate of passives"
    desc = desc.replace(" up ", " rose by ", 1) if name == "fcr_up" else desc
    desc = desc.replace(" cut by ", " were cut by ", 1)
    return "if " + (desc if desc[:2].isupper() else desc[:1].lower() + desc[1:])


def stakes_sentence(s: pd.Series, currency: str, horizon_months: float) -> str:
    """Word one scenario's customers kept and revenue kept, sign-aware."""
    cond = _if_clause(s)
    d = direction(s.churners_prevented_per_year, s.churners_ci_lower, s.churners_ci_upper)
    months = fmt_value(horizon_months, "months")
    if d in ("unclear", "none", "missing"):
        est = fmt_est(
            s.churners_prevented_per_year, s.churners_ci_lower, s.churners_ci_upper, kind="count"
        )
        return (
            f"No clear evidence that fewer customers would leave {cond}: the estimate is "
            f"{est.replace(' (', ' (95% CI ', 1)} customers a year."
        )
    n = abs(float(s.churners_prevented_per_year))
    a, b = sorted((abs(float(s.churners_ci_lower)), abs(float(s.churners_ci_upper))))
    money = abs(float(s.revenue_at_stake))
    ma, mb = sorted((abs(float(s.revenue_ci_lower)), abs(float(s.revenue_ci_upper))))
    who = f"about {fmt_value(n, 'count')} {'fewer' if d == 'up' else 'more'}"
    verb = "keeping" if d == "up" else "losing"
    return (
        f"{cond[:1].upper() + cond[1:]}, {who} customers would leave each year "
        f"(95% CI {fmt_value(a, 'count')} to {fmt_value(b, 'count')}), {verb} about "
        f"{fmt_money(money, currency)} of revenue (95% CI {fmt_money(ma, currency)} to "
        f"{fmt_money(mb, currency)}), counting {months} of revenue per customer."
    )


_DESIGN = (
    "These are associations in observational data: customers' experience was not assigned "
    "at random, and the figures read the adjusted associations as causes."
)


def verdict(res: StudyResults) -> list[str]:
    """Answer "what is a better service experience worth?" in at most two sentences.

    The headline is the first scenario of the revenue-at-stake table whose interval
    excludes no change (else the first one): customers and revenue kept a year, with
    95% intervals. Without scenarios, the revenue link of CSAT, then the churn ratio
    of detractors. The second sentence states the design in words.
    """
    s = _first_stake(res)
    if s is not None:
        return [stakes_sentence(s, res.currency, res.horizon_months), _DESIGN]
    if _ok(res.revenue) and res.revenue_term in res.revenue.summary.index:
        if is_skipped(res.hazards):  # say why customers and revenue kept are missing
            why = res.hazards.reason.rstrip(".")
            return [
                revenue_finding(res),
                f"{why}, so customers and revenue kept cannot be estimated; the link above is "
                "an observational association.",
            ]
        return [revenue_finding(res), _DESIGN]
    if _ok(res.hazards) and "nps_category[detractor]" in res.hazards.summary.index:
        return [hazard_finding(res), _DESIGN]
    why = res.hazards.reason if is_skipped(res.hazards) else "the models could not be estimated"
    return [
        "This data cannot yet put a value on a better service experience: "
        + why[:1].lower()
        + why[1:].rstrip(".")
        + ".",
        "The sections below show what can be measured.",
    ]


def tiles(res: StudyResults) -> list[dict]:
    """Return the key figures (3-6), each a :func:`analysis.report.page.tile`; skipped ones drop out."""
    from analysis.report.page import tile

    cur, need, out = res.currency, res.min_group_size, []
    s = _first_stake(res)
    clear = s is not None and direction(
        s.churners_prevented_per_year, s.churners_ci_lower, s.churners_ci_upper
    ) in ("up", "down")
    if clear:  # an unclear scenario is worded in the verdict, not shown as a bare figure
        note = f"a year; {fmt_value(res.horizon_months, 'months')} of revenue per customer"
        lo, hi = float(s.revenue_ci_lower), float(s.revenue_ci_upper)
        name = f"Revenue at stake: {_scenario_name(s).lower()}"
        out.append(
            tile(
                name, float(s.revenue_at_stake), kind="money", lo=lo, hi=hi, currency=cur, note=note
            )
        )
    t = "nps_category[detractor]"
    if _ok(res.hazards) and t in res.hazards.summary.index:
        if t not in small_terms(res.hazards, need):
            hr, lo, hi = res.hazards.hr(t)
            note = "adjusted; 1× = same rate"
            out.append(
                tile(
                    "Detractors' churn rate vs promoters", hr, kind="ratio", lo=lo, hi=hi, note=note
                )
            )
    if _ok(res.revenue) and res.revenue_term in res.revenue.summary.index:
        r = res.revenue.summary.loc[res.revenue_term]
        lo, hi, note = (
            float(r.ci_lower),
            float(r.ci_upper),
            "per customer, same customers across months",
        )
        out.append(
            tile(
                "Next-month revenue per CSAT point",
                float(r.coef),
                kind="money",
                lo=lo,
                hi=hi,
                currency=cur,
                note=note,
            )
        )
    o = res.overall.iloc[0] if _ok(res.overall) else None
    if o is not None and not _is_missing(o.nps) and o.nps_answers >= need:
        lo, hi, note = (
            float(o.nps_ci_lower),
            float(o.nps_ci_upper),
            f"{count_phrase(o.nps_answers, 'answer')}, −100 to 100",
        )
        out.append(tile("Net Promoter Score", float(o.nps), lo=lo, hi=hi, digits=1, note=note))
    if o is not None and not _is_missing(o.fcr_rate) and o.tickets >= need:
        note = count_phrase(o.tickets, "ticket")
        out.append(
            tile("Tickets resolved at first contact", float(o.fcr_rate), kind="pct", note=note)
        )
    h = res.churn_rate
    if len(out) < 3 and not _is_missing(h[0]):
        out.append(
            tile("Customers leaving per month", h[0], kind="pct", lo=h[1], hi=h[2], digits=2)
        )
    return out[:6]


# --------------------------------------------------------------------------------------
# Experience over time and by segment
# --------------------------------------------------------------------------------------


def trends_finding(res: StudyResults) -> str:
    """One sentence: NPS, CSAT and first-contact resolution over the whole window."""
    o = res.overall.iloc[0]
    parts = []
    if not _is_missing(o.nps) and o.nps_answers >= res.min_group_size:
        parts.append(
            f"NPS was {_ci_text(o.nps, o.nps_ci_lower, o.nps_ci_upper, digits=1)} "
            f"from {count_phrase(o.nps_answers, 'answer')}"
        )
    if not _is_missing(o.csat_mean):
        parts.append(f"CSAT averaged {fmt_value(o.csat_mean, 'number')} on its 1–5 scale")
    if not _is_missing(o.fcr_rate) and o.tickets >= res.min_group_size:
        parts.append(
            f"{fmt_pct(o.fcr_rate)} of {count_phrase(o.tickets, 'ticket')} were resolved at "
            "the first contact"
        )
    if not parts:
        return (
            f"The data holds {count_phrase(o.answers, 'survey answer')} and "
            f"{count_phrase(o.tickets, 'ticket')} over the window."
        )
    return "Over the whole window, " + join_words(parts) + "."


# --------------------------------------------------------------------------------------
# Drivers, retention by NPS
# --------------------------------------------------------------------------------------


def drivers_finding(res: StudyResults) -> str:
    """One sentence: CSAT after a ticket resolved at first contact vs one that was not."""
    d = res.drivers
    hide = _hidden(d, "outcome", res.min_group_size)

    def row(driver: str, outcome: str):
        r = d[(d.driver == driver) & (d.outcome == outcome)]
        if not len(r) or outcome in hide or r.customers.iloc[0] < res.min_group_size:
            return None
        r = r.iloc[0]
        return None if _is_missing(r.csat_mean) else r

    for driver, bad, good, what in (
        ("first-contact resolution", "no", "yes", "a ticket not resolved at the first contact"),
        ("SLA", "missed", "met", "a ticket that missed its SLA"),
    ):
        b, g = row(driver, bad), row(driver, good)
        if b is not None and g is not None:
            return (
                f"Survey answers given after {what} average CSAT "
                f"{_ci_text(b.csat_mean, b.csat_ci_lower, b.csat_ci_upper)}, against "
                f"{_ci_text(g.csat_mean, g.csat_ci_lower, g.csat_ci_upper)} after one that "
                "went well (descriptive: customers whose tickets fail may differ in other ways)."
            )
    return (
        "Survey scores by the outcome of the customer's latest ticket before the answer "
        "(descriptive: customers whose tickets fail may differ in other ways)."
    )


def _km_at(km: pd.DataFrame, group: str, t: float) -> float:
    g = km[km["nps_category"].astype(str) == group]
    tcol = "time" if "time" in km.columns else km.columns[1]
    g = g[g[tcol] <= t]
    return float(g["survival"].iloc[-1]) if len(g) else 1.0


def retention_finding(res: StudyResults) -> str:
    """One sentence: share still customers 12 months after the landmark, detractors vs promoters."""
    counts = res.km_counts
    hide = _hidden(counts, "nps_category", res.min_group_size)
    shown = [
        str(c)
        for c, n in zip(counts.nps_category, counts.customers, strict=True)
        if str(c) not in hide and n >= res.min_group_size and str(c) in _NPS_WORDS
    ]
    tcol = "time" if "time" in res.km.columns else res.km.columns[1]
    t = min(12.0, float(res.km[tcol].max())) if len(res.km) else 0.0
    when = fmt_value(round(t), "months")
    if "detractor" in shown and "promoter" in shown and t > 0:
        a, b = _km_at(res.km, "detractor", t), _km_at(res.km, "promoter", t)
        return (
            f"{when[:1].upper() + when[1:]} after {res.landmark}, {fmt_pct(a)} of customers whose "
            f"latest NPS answer was a detractor's were still customers, against {fmt_pct(b)} of "
            "promoters (Kaplan–Meier estimates)."
        )
    return (
        f"Retention after {res.landmark} of customers grouped by their latest NPS answer "
        "before that date (Kaplan–Meier estimates)."
    )


# --------------------------------------------------------------------------------------
# Churn model
# --------------------------------------------------------------------------------------


def _term_label(term: str, hz: HazardResult) -> str:
    if term in TERM_LABELS:
        return TERM_LABELS[term]
    col, _, lv = term.partition("[")
    if lv:
        ref = hz.design.get(col, (None, None))[1]
        lv = lv.rstrip("]").replace("_", " ")
        vs = f" (vs {str(ref).replace('_', ' ')})" if ref is not None else ""
        return f"{label(col)}: {lv}{vs}"
    return label(term)


def hazard_finding(res: StudyResults) -> str:
    """One sentence: detractors' churn rate against promoters' (or the strongest shown term)."""
    hz = res.hazards
    small = small_terms(hz, res.min_group_size)
    t = "nps_category[detractor]"
    if t in hz.summary.index and t not in small:
        text = _ratio_sentence(
            "Customers whose latest NPS answer was a detractor's",
            "promoters",
            *hz.hr(t),
            verb="leave",
        )
        return text[:-1] + ", with the other factors of the model held equal."
    for t, what in (
        ("unresolved_window", "Customers with a ticket not resolved at first contact"),
        ("sla_breaches_window", "Customers with an SLA breach"),
    ):
        if t in hz.summary.index:
            return _ratio_sentence(
                f"{what} in the last {hz.window_days} days",
                "customers without one, per ticket",
                *hz.hr(t),
                verb="leave",
            )
    return "Churn hazard ratios of the service-experience factors, adjusted for each other."


def hazard_table(res: StudyResults) -> pd.DataFrame:
    """Return the churn hazard table with a first column ``term_label`` (plain-language term)."""
    ht = res.hazard_table.copy()
    ht.insert(0, "term_label", [_term_label(t, res.hazards) for t in ht.index])
    return ht


def small_terms(hazards: HazardResult, min_group_size: int) -> set[str]:
    """Return the model terms of categorical levels with fewer than ``min_group_size`` customers."""
    sizes = getattr(hazards, "level_customers", None) or {}
    return {t for t, n in dict(sizes).items() if n < min_group_size}


def hidden_term_labels(res: StudyResults) -> set[str]:
    """Return the ``term_label`` of the hazard-table rows to suppress (levels of too few customers)."""
    return {_term_label(t, res.hazards) for t in small_terms(res.hazards, res.min_group_size)}


# --------------------------------------------------------------------------------------
# Revenue link, lags, dose-response
# --------------------------------------------------------------------------------------


def revenue_finding(res: StudyResults) -> str:
    """One sentence: next-month revenue per CSAT point, same customers across months."""
    r = res.revenue.summary.loc[res.revenue_term]
    cur = res.currency
    d = direction(r.coef, r.ci_lower, r.ci_upper)
    same = "comparing each customer with themselves across months"
    if d in ("unclear", "none", "missing"):
        return (
            "No clear evidence that a customer's CSAT in one month goes with their revenue the "
            f"next month: {_ci_text(r.coef, r.ci_lower, r.ci_upper, kind='money', currency=cur)} "
            f"per CSAT point, {same}."
        )
    a, b = sorted((abs(r.ci_lower), abs(r.ci_upper)))
    word = "more" if d == "up" else "less"
    return (
        f"A month with one CSAT point more goes with {fmt_money(abs(r.coef), cur)} {word} revenue "
        f"per customer the next month (95% CI {fmt_money(a, cur)} to {fmt_money(b, cur)}), "
        f"{same} ({count_phrase(r.n_customers, 'customer')})."
    )


def lags_finding(res: StudyResults) -> str:
    """One sentence: the revenue link of the first service measure one, two, three months on."""
    lg = res.lags
    x = "csat_mean" if "csat_mean" in set(lg.exposure) else lg.exposure.iloc[0]
    g = lg[lg.exposure == x].sort_values("lag")
    words = {1: "one month", 2: "two months", 3: "three months"}
    parts = [
        f"{_ci_text(r.coef, r.ci_lower, r.ci_upper, kind='money', currency=res.currency)} "
        f"{words.get(int(r.lag), fmt_value(int(r.lag), 'months'))} later"
        for r in g.itertuples()
    ]
    what = {"csat_mean": "CSAT point", "unresolved_tickets": "ticket not resolved at first contact"}
    return (
        f"Per {what.get(x, 'SLA breach')} in a month, revenue per customer differs by "
        + join_words(parts)
        + ", comparing each customer with themselves."
    )


def _visible_moments(res: StudyResults) -> pd.DataFrame:
    m = res.moments
    hide = _hidden(m, "touchpoint", res.min_group_size)
    return m[~m.touchpoint.astype(str).isin(hide) & (m.customers >= res.min_group_size)]


def moments_finding(res: StudyResults) -> str:
    """One sentence: the touchpoint whose failed tickets cost most, on the table's own numbers."""
    m = _visible_moments(res)
    clear = m[
        [
            direction(e, a, b) == "up"
            for e, a, b in zip(
                m.customers_lost_per_100,
                m.customers_lost_ci_lower,
                m.customers_lost_ci_upper,
                strict=True,
            )
        ]
    ]
    if not len(clear):
        return (
            "No touchpoint shows clear evidence that its failed tickets drive customers away: "
            "every interval includes no change."
        )
    top = most_common(
        dict(zip(clear.touchpoint.astype(str), clear.customers_lost_per_100, strict=True))
    )
    r = clear.loc[clear.customers_lost_per_100.idxmax()]
    cost = fmt_money(r.revenue_lost_per_100, res.currency)
    # 100 failed tickets can drive away at most 100 customers: an upper bound beyond that
    # says the data cannot bound the effect, not that 340 customers leave
    upper = (
        "more than 100, which this data cannot narrow down"
        if r.customers_lost_ci_upper > 100
        else fmt_value(r.customers_lost_ci_upper, "number", digits=1)
    )
    return (
        f"Failed tickets cost most at {top}: every 100 of them go with "
        f"{fmt_value(r.customers_lost_per_100, 'number', digits=1)} more customers leaving (95% CI "
        f"{fmt_value(r.customers_lost_ci_lower, 'number', digits=1)} to {upper}), about {cost} "
        "of revenue."
    )


def compensation_finding(res: StudyResults) -> str:
    """One sentence: churn after compensated vs uncompensated failures (observational)."""
    c = res.compensation.iloc[0]
    if c.customers_with_compensated_failure < res.min_group_size:
        return "Too few customers had a compensated failed ticket to report the comparison."
    text = _ratio_sentence(
        "Customers after a compensated failed ticket",
        "those after an uncompensated one of the same kind",
        c.hazard_ratio,
        c.ci_lower,
        c.ci_upper,
        verb="leave",
    )
    return text[:-1] + "; this is observational: compensation was not assigned at random."


_ADJ = {
    "unresolved_window": "unresolved tickets",
    "sla_breaches_window": "SLA breaches",
    "nps_category": "latest NPS answer",
    "tickets_window": "tickets",
    "member": "loyalty membership",
}


# --------------------------------------------------------------------------------------
# Revenue at stake
# --------------------------------------------------------------------------------------


def stakes_finding(res: StudyResults) -> str:
    """One sentence: the headline scenario's customers and revenue kept a year (as the verdict)."""
    return stakes_sentence(_first_stake(res), res.currency, res.horizon_months)


def stakes_notes(res: StudyResults) -> list[str]:
    """Return the assumptions behind the revenue-at-stake figures, as sentences."""
    st = res.stakes
    rev = res.revenue_per_month[0]
    out = [
        "Each scenario changes the service experience of the customers who left and asks how "
        "many of those departures the churn model would no longer expect, as a yearly rate for "
        f"the {count_phrase(int(st.customers_at_risk.iloc[0]), 'customer')} active now.",
        f"A customer kept is worth {fmt_value(res.horizon_months, 'months')} of average revenue "
        f"({fmt_money(rev, res.currency)} a month), not discounted.",
        "The churn model's adjusted associations are read as causes; the service experience "
        "was not assigned at random.",
    ]
    for sc, d in zip(st.scenario, st.description, strict=True):
        if sc == "fcr_up":
            out.append(
                f"{d}: the tickets now unresolved at the first contact are resolved at the same "
                "rate across customers; ticket volume does not change."
            )
        elif sc == "sla_breaches_reduced":
            out.append(
                f"{d}: the breaches avoided are spread evenly over the customers who had them."
            )
        elif sc == "detractors_as_passives":
            out.append(
                f"{d}: detractors' extra churn over passives is what the model attributes to the "
                "NPS answer, the other factors held equal."
            )
    return out


# --------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------


def industry_claims(
    *,
    revenue: FEResult | None,
    term: str,
    cp: pd.DataFrame,
    experience: pd.DataFrame,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Put this data's numbers beside three common customer-experience claims.

    Computes :func:`analysis.studies.experience.claim_numbers` and writes
    :func:`claims_table` from them.

    Returns
    -------
    pandas.DataFrame
        claim, our_number, what_the_data_can_say.
    """
    return claims_table(
        claim_numbers(revenue=revenue, term=term, cp=cp, experience=experience, alpha=alpha)
    )


def _fin(t: Sequence[float] | None) -> bool:
    return t is not None and all(not _is_missing(v) and math.isfinite(float(v)) for v in t)


def _resolution_claim(two, one) -> str:
    """Our share of tickets resolved within two contacts and at the first, as far as recorded."""
    first = (
        f"{fmt_pct(one[0])} at the first contact (95% CI {fmt_pct(one[1])} to {fmt_pct(one[2])})"
    )
    if _fin(two):
        within = (
            f"{fmt_pct(two[0])} of tickets resolved within two contacts "
            f"(95% CI {fmt_pct(two[1])} to {fmt_pct(two[2])})"
        )
        return f"{within}; {fmt_pct(one[0])} at the first" if _fin(one) else within
    if _fin(one):
        return (
            f"{first[:1].upper()}{first[1:]}; resolution within two contacts is not recorded "
            "(the tickets have no number of contacts to resolve)"
        )
    return (
        "Not measurable: the data records no ticket resolution "
        "(contacts to resolve or first-contact resolution on tickets)"
    )


def claims_table(numbers: ClaimNumbers) -> pd.DataFrame:
    """Put this data's numbers beside three common customer-experience claims.

    Parameters
    ----------
    numbers : ClaimNumbers
        From :func:`analysis.studies.experience.claim_numbers` (or
        ``StudyResults.claim_numbers``).

    Returns
    -------
    pandas.DataFrame
        claim, our_number, what_the_data_can_say.
    """
    pct = numbers.revenue_pct_per_csat
    if _fin(pct):
        d = direction(*pct)
        body = fmt_est(pct[0] / 100, pct[1] / 100, pct[2] / 100, kind="pct")
        body = body.replace(" (", " (95% CI ", 1)
        cx = ("No clear evidence of a link: " if d in ("unclear", "none") else "") + (
            f"per CSAT point this month, next-month revenue differs by {body} of its mean, "
            "same customers compared across months"
        )
        cx = cx[:1].upper() + cx[1:]
    elif numbers.csat_answers == 0:
        cx = "Not measurable: the data has no CSAT answers"
    else:
        cx = "Not estimable: too few CSAT answers in consecutive months"
    ret, two, one = numbers.retained_12m, numbers.within_two_contacts, numbers.first_contact
    return pd.DataFrame(
        [
            {
                "claim": "Companies that improve CX grow revenue 4-8% above their market",
                "our_number": cx,
                "what_the_data_can_say": (
                    "We have no market or competitor data, so 'above the market' cannot be tested; "
                    "the within-customer association is observational and covers one month ahead."
                ),
            },
            {
                "claim": "Companies with a customer-service strategy retain 92% of customers",
                "our_number": (
                    f"{fmt_pct(ret[0])} of customers retained over 12 months at the "
                    f"observed churn rate (95% CI {fmt_pct(ret[1])} to {fmt_pct(ret[2])})"
                    if _fin(ret)
                    else "Not measurable: no customer-months at risk in the data"
                ),
                "what_the_data_can_say": (
                    "One company, no comparison group without a service strategy: the retention "
                    "rate is measured, the strategy's share in it is not."
                ),
            },
            {
                "claim": "Up to 90% of incidents can be resolved at the first or second contact",
                "our_number": _resolution_claim(two, one),
                "what_the_data_can_say": (
                    "Directly measured on our tickets; what is achievable depends on the ticket "
                    "mix, which the claim does not state."
                ),
            },
        ]
    )


# --------------------------------------------------------------------------------------
# Notes for the appendix
# --------------------------------------------------------------------------------------


def _cols(cols: Sequence[str]) -> str:
    return join_words(_ADJ.get(c, EXPOSURE_LABELS.get(c, label(c)).lower()) for c in cols)


def notes(res: Any) -> list[str]:
    """Write the report's notes: what the study left out (``res.caveats``), in order."""
    out = []
    for c in res.caveats:
        kind = c["kind"]
        if kind == "landmark_halfway":
            out.append(
                "The data window is shorter than the start of the retention curves set in the "
                "params; the curves start halfway through the window."
            )
        elif kind == "not_varying":
            out.append(
                "Left out of the churn model because they do not vary in this data: "
                + _cols(c["columns"])
                + "."
            )
        elif kind == "adjust_missing":
            out.append(
                "Asked for as adjustments but not in the customers table, so left out: "
                + join_words(label(x) for x in c["columns"])
                + "."
            )
        elif kind == "strata_not_adjusted":
            out.append(
                f"{label(c['column'])} has its own baseline churn rate in every churn model, so it "
                "is not also a factor of the model."
            )
        elif kind == "lag_exposures_left_out":
            out.append(
                "No revenue link at any lag for "
                + _cols(c["columns"])
                + ": too few records in consecutive months, or no variation."
            )
        elif kind == "fcr_scenario_no_data":  # caveat of earlier study versions
            rate = c.get("fcr_rate")
            out.append(
                "The first-contact-resolution scenario is left out: "
                + (
                    "every ticket is already resolved at the first contact."
                    if rate is not None and not _is_missing(rate) and rate >= 1
                    else "the data records no first-contact resolution on tickets."
                )
            )
        else:
            raise ValueError(f"unknown experience caveat {kind!r}")
    return out


def method_notes(res: StudyResults, study: Any) -> list[str]:
    """Return the run's method notes for the appendix (data, windows, adjustments, money)."""
    p = study.params
    out = [
        f"Data as of {study.as_of}; window from {study.window_start}. Churn definition: "
        f"{p.analysis.churn_definition}. Money in {study.currency}. Groups of fewer than "
        f"{study.min_group_size} customers are suppressed.",
        f"Tickets count in the churn models for {res.window_days} days; experience enters from "
        + ("the next calendar month" if res.update == "period" else "the day it is recorded")
        + " on, so a churn is explained only by what was known before it.",
    ]
    adj = [label(c) for c in res.adjusted_for]
    out.append(
        "The churn models also adjust for "
        + (join_words(adj) if adj else "no customer attribute")
        + (f"; {label(res.strata)} has its own baseline churn rate." if res.strata else ".")
    )
    if _ok(res.hazards):
        hz = res.hazards
        out.append(
            f"The churn model uses {count_phrase(hz.n_customers, 'customer')} and "
            f"{count_phrase(hz.n_events, 'churn', 'churns')}, with standard errors clustered by "
            "customer (Cox model with time-varying covariates)."
        )
    out += notes(res)
    return out


# --------------------------------------------------------------------------------------
# Findings list (the earlier API)
# --------------------------------------------------------------------------------------


def findings(
    *,
    hazards: HazardResult | Skipped,
    revenue: FEResult | Skipped | None,
    revenue_term: str,
    stakes: pd.DataFrame | Skipped,
    currency: str = "EUR",
    compensation: pd.DataFrame | Skipped | None = None,
    min_group_size: int | None = None,
    horizon_months: float = 12.0,
) -> list[str]:
    """Write the report's key findings as sentences generated from the estimates.

    Sections that were skipped say nothing here. With ``min_group_size``, nothing is
    said about a model term whose level has fewer customers, nor about compensation
    seen for fewer customers.
    """
    out = []
    if _ok(hazards):
        small = small_terms(hazards, min_group_size) if min_group_size else set()
        for term, who in (
            ("nps_category[detractor]", "Detractors"),
            ("nps_category[passive]", "Passives"),
        ):
            if term in hazards.summary.index and term not in small:
                out.append(_ratio_sentence(who, "promoters", *hazards.hr(term), verb="churn"))
        for term, what in (
            ("unresolved_window", "ticket not resolved at first contact"),
            ("sla_breaches_window", "missed SLA"),
        ):
            if term in hazards.summary.index:
                out.append(
                    _ratio_sentence(
                        f"Customers with a {what} in the last {hazards.window_days} days",
                        "customers without one, per ticket",
                        *hazards.hr(term),
                        verb="churn",
                    )
                )
    if _ok(revenue) and revenue_term in revenue.summary.index:
        fake = _Fake(revenue=revenue, revenue_term=revenue_term, currency=currency)
        out.append(revenue_finding(fake))
    if _ok(stakes):
        for _, s in stakes.iterrows():
            out.append(stakes_sentence(s, currency, horizon_months))
    if _ok(compensation):
        c = compensation.iloc[0]
        n = c.get("customers_with_compensated_failure")
        if not (min_group_size and n is not None and not (n >= min_group_size)):
            fake = _Fake(compensation=compensation, min_group_size=min_group_size or 0)
            out.append(compensation_finding(fake))
    return out


@dataclass
class _Fake:
    """The few fields of a study result that one finding reads."""

    revenue: Any = None
    revenue_term: str = ""
    currency: str = "EUR"
    compensation: Any = None
    min_group_size: int = 0


def study_findings(res: StudyResults) -> list[str]:
    """Return the key findings of a study run as sentences generated from the numbers."""
    return findings(
        hazards=res.hazards,
        revenue=res.revenue,
        revenue_term=res.revenue_term,
        stakes=res.stakes,
        currency=res.currency,
        compensation=res.compensation,
        min_group_size=res.min_group_size,
        horizon_months=res.horizon_months,
    )


# --------------------------------------------------------------------------------------
# The one-call report (numbers plus text), kept for existing callers
# --------------------------------------------------------------------------------------


@dataclass
class ExperienceReport(StudyResults):
    """:class:`StudyResults` with the report's text: labelled hazard table, claims, notes.

    What :func:`analysis.experience.run_study` returned before the restructure:
    ``hazard_table`` has ``term_label`` (a skipped model keeps its Skipped),
    ``claims`` is :func:`claims_table`'s table, ``notes`` are :func:`notes`'
    sentences and :meth:`findings` writes the findings.
    """

    claims: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)

    def findings(self) -> list[str]:
        """Return the key findings as sentences generated from the numbers."""
        return study_findings(self)


def run_study(
    study: Any,
    *,
    landmark_months: int | None = None,
    driver_window_days: int | None = None,
    update: str | None = None,
    adjust: Sequence[str] | None = None,
    strata: str | None = "",
    alpha: float = 0.05,
) -> ExperienceReport:
    """Run the experience study and attach the report's text.

    The arguments are those of :func:`analysis.studies.experience.run_study`.

    Returns
    -------
    ExperienceReport
        The study's numbers plus the labelled hazard table, the claims table,
        the notes and :meth:`ExperienceReport.findings`.
    """
    res = _run_study(
        study,
        landmark_months=landmark_months,
        driver_window_days=driver_window_days,
        update=update,
        adjust=adjust,
        strata=strata,
        alpha=alpha,
    )
    numbers = {f.name: getattr(res, f.name) for f in fields(res)}
    if _ok(res.hazard_table):
        numbers["hazard_table"] = hazard_table(res)
    return ExperienceReport(**numbers, claims=claims_table(res.claim_numbers), notes=notes(res))
