"""Tables of the experience-to-revenue report (03): compact ones for the body, full ones for the appendix.

Every table fits the page's content column at 1,280 px: an estimate and its
interval share one cell (:func:`analysis.report.format.fmt_est`), effects whose
sign matters are worded ("0.35 more customers leave (0.12–0.58)", "no clear
change (...)"), and wide tables are split. Headers are column keys that
:mod:`analysis.report.experience` registers with :mod:`analysis.report.labels`,
so ``display.show_table`` shows their labels. The sentences are in
:mod:`analysis.report.experience`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis.report.experience import _ADJ, _term_label, hazard_table
from analysis.report.format import _is_missing, fmt_est, fmt_p
from analysis.report.labels import label, technical_text
from analysis.report.sentences import direction, join_words
from analysis.studies.experience import StudyResults


def _signed(
    est: Any, lo: Any, hi: Any, *, more: str, fewer: str, kind: str = "number", currency="EUR"
) -> str:
    """Return a sign-aware cell: "0.35 more (0.12–0.58)", "0.14 fewer (…)", "no clear change (…)".

    The number printed is a magnitude; the word carries the sign, and an interval
    that includes zero says so instead of a direction.
    """
    d = direction(est, lo, hi)
    if d == "missing":
        return "not estimable"
    if d in ("unclear", "none"):
        return f"no clear change: {fmt_est(est, lo, hi, kind=kind, currency=currency)}"
    a, b = sorted((abs(float(lo)), abs(float(hi)))) if not _is_missing(lo) else (None, None)
    body = fmt_est(abs(float(est)), a, b, kind=kind, currency=currency)
    head, _, rest = body.partition(" (")
    word = more if d == "up" else fewer
    return f"{head} {word} ({rest}" if rest else f"{head} {word}"


def _cells(est: Any, lo: Any, hi: Any, **kw: Any) -> list[str]:
    """Return one "estimate (interval)" cell per row (:func:`fmt_est`)."""
    return [fmt_est(e, a, b, **kw) for e, a, b in zip(est, lo, hi, strict=True)]


def _ps(ps: Any) -> list[str]:
    """Return p-value cells: "< 0.001", "0.03"."""
    return [fmt_p(p).removeprefix("p ").removeprefix("= ") for p in ps]


def _segment_frame(res: StudyResults) -> pd.DataFrame:
    seg = res.by_segment
    g = seg.columns[0]
    return seg.assign(
        nps_ci=[
            fmt_est(e, a, b, digits=1) if n >= res.min_group_size else "n/a"
            for e, a, b, n in zip(
                seg.nps, seg.nps_ci_lower, seg.nps_ci_upper, seg.nps_answers, strict=True
            )
        ]
    ).rename(columns={g: g})


def _has(seg: pd.DataFrame, col: str) -> bool:
    """Whether a by-segment column holds any number (NPS cells: whether any NPS exists)."""
    return bool(seg["nps" if col == "nps_ci" else col].notna().any())


def segment_table(res: StudyResults) -> tuple[pd.DataFrame, dict]:
    """Return the compact experience-by-segment table (<= 6 columns) and its formats."""
    seg = _segment_frame(res)
    g = res.by_segment.columns[0]
    cols = [g, "customers", "nps_ci", "csat_mean", "fcr_rate", "sla_compliance"]
    cols = [c for c in cols if c in (g, "customers") or _has(seg, c)]
    return seg[cols], {
        "csat_mean": "{:.2f}",
        "fcr_rate": "{:.1%}",
        "sla_compliance": "{:.1%}",
    }


def segment_full(res: StudyResults) -> list[tuple[pd.DataFrame, str, dict]]:
    """Return the full by-segment tables for the appendix, split to fit the page."""
    seg = _segment_frame(res)
    g = res.by_segment.columns[0]
    pct = "{:.1%}"
    surveys = [g, "customers", "answers", "nps_ci", "promoter_share", "passive_share"]
    surveys += ["detractor_share", "csat_mean", "ces_mean"]
    tickets = [g, "customers", "tickets", "fcr_rate", "contacts_to_resolve", "sla_compliance"]
    tickets += ["compensated_share"]
    fm = {
        "promoter_share": pct,
        "passive_share": pct,
        "detractor_share": pct,
        "csat_mean": "{:.2f}",
        "ces_mean": "{:.2f}",
        "fcr_rate": pct,
        "contacts_to_resolve": "{:.2f}",
        "sla_compliance": pct,
        "compensated_share": pct,
    }
    out = []
    for cols, cap in (
        (surveys, "Survey answers by segment (whole window)"),
        (tickets, "Tickets by segment (whole window)"),
    ):
        keep = [c for c in cols if c in (g, "customers") or _has(seg, c)]
        out.append((seg[keep], cap, fm))
    return out


def drivers_table(res: StudyResults, *, full: bool = False) -> pd.DataFrame:
    """Return the driver table with CSAT and NPS as one estimate-and-interval cell each.

    ``full`` adds the mean customer-effort score (the appendix version).
    """
    d = res.drivers
    out = pd.DataFrame(
        {
            "driver": d.driver.str.replace("ticket in the previous days", "no ticket before"),
            "outcome": d.outcome,
            "answers": d.answers,
            "customers": d.customers,
            "csat_ci": _cells(d.csat_mean, d.csat_ci_lower, d.csat_ci_upper),
            "nps_ci": _cells(d.nps, d.nps_ci_lower, d.nps_ci_upper, digits=1),
        }
    )
    if full:
        out["ces_mean"] = d.ces_mean.to_numpy()
    return out


def hazard_table_compact(res: StudyResults) -> pd.DataFrame:
    """Return term label, hazard ratio with its interval in one cell, and the p-value."""
    ht = hazard_table(res)
    return pd.DataFrame(
        {
            "term_label": ht.term_label.to_numpy(),
            "churn_rate_ratio": _cells(ht.hazard_ratio, ht.ci_lower, ht.ci_upper, kind="ratio"),
            "p_value": _ps(ht.p_value),
        }
    )


def hazard_full(res: StudyResults) -> pd.DataFrame:
    """Return every term of the churn model (adjustments included) for the appendix."""
    s = res.hazards.summary
    return pd.DataFrame(
        {
            "term_label": [_term_label(t, res.hazards) for t in s.index],
            "coef": s.coef.to_numpy(),
            "se": s.se.to_numpy(),
            "churn_rate_ratio": _cells(s.hazard_ratio, s.ci_lower, s.ci_upper, kind="ratio"),
            "p_value": _ps(s.p_value),
        }
    )


def dose_table(res: StudyResults) -> pd.DataFrame:
    """Return next-month revenue by CSAT level: raw mean and within-customer difference."""
    d = res.dose
    cur = res.currency
    out = pd.DataFrame(
        {
            "csat_level": d.level.astype(int).to_numpy(),
            "customer_months": d.customer_months.to_numpy(),
            "customers": d.customers.to_numpy(),
            "next_revenue": _cells(
                d.next_revenue_mean, d.ci_lower, d.ci_upper, kind="money", currency=cur
            ),
        }
    )
    if "fe_difference" in d.columns:
        out["fe_difference"] = [
            "reference" if lv == 3 else fmt_est(e, a, b, kind="money", currency=cur)
            for lv, e, a, b in zip(
                d.level, d.fe_difference, d.fe_ci_lower, d.fe_ci_upper, strict=True
            )
        ]
    return out


def lags_table(res: StudyResults, *, full: bool = False) -> pd.DataFrame:
    """Return the lag table: measure, months later, estimate with interval, p-value, customers.

    ``full`` adds the coefficient, its standard error and the customer-months used.
    """
    lg = res.lags
    if full:
        return lags_table(res).assign(
            coef=lg.coef.to_numpy(), se=lg.se.to_numpy(), customer_months=lg.n_obs.to_numpy()
        )
    return pd.DataFrame(
        {
            "exposure": [label(x) for x in lg.exposure],
            "lag": lg.lag.astype(int).to_numpy(),
            "estimate": _cells(
                lg.coef, lg.ci_lower, lg.ci_upper, kind="money", currency=res.currency
            ),
            "p_value": _ps(lg.p_value),
            "n_customers": lg.n_customers.to_numpy(),
        }
    )


def moments_table(res: StudyResults) -> pd.DataFrame:
    """Return touchpoint, tickets, failure rate and sign-aware customers lost per 100 failures."""
    m = res.moments
    return pd.DataFrame(
        {
            "touchpoint": m.touchpoint.to_numpy(),
            "customers": m.customers.to_numpy(),
            "tickets": m.tickets.to_numpy(),
            "failure_rate": m.failure_rate.to_numpy(),
            "effect_of_failures": [
                _signed(e, a, b, more="more customers leave", fewer="fewer customers leave")
                for e, a, b in zip(
                    m.customers_lost_per_100,
                    m.customers_lost_ci_lower,
                    m.customers_lost_ci_upper,
                    strict=True,
                )
            ],
        }
    )


def moments_full(res: StudyResults) -> pd.DataFrame:
    """Return the touchpoint table with every estimate (one cell each) for the appendix."""
    m = res.moments
    cur = res.currency
    return pd.DataFrame(
        {
            "touchpoint": m.touchpoint.to_numpy(),
            "customers": m.customers.to_numpy(),
            "churn_rate_ratio": _cells(m.hazard_ratio, m.ci_lower, m.ci_upper, kind="ratio"),
            "customers_lost": _cells(
                m.customers_lost_per_100,
                m.customers_lost_ci_lower,
                m.customers_lost_ci_upper,
                digits=1,
            ),
            "revenue_lost": _cells(
                m.revenue_lost_per_100,
                m.revenue_lost_ci_lower,
                m.revenue_lost_ci_upper,
                kind="money",
                currency=cur,
                digits=0,
            ),
        }
    )


def compensation_table(res: StudyResults) -> pd.DataFrame:
    """Return the compensation comparison as one compact row."""
    c = res.compensation
    return pd.DataFrame(
        {
            "comparison": ["Compensated vs uncompensated failed ticket, same kind"],
            "customers_with_compensated_failure": c.customers_with_compensated_failure.to_numpy(),
            "churn_rate_ratio": _cells(c.hazard_ratio, c.ci_lower, c.ci_upper, kind="ratio"),
            "p_value": _ps(c.p_value),
            "adjusted_for": [
                join_words(_ADJ.get(t, label(t).lower()) for t in str(a).split(", "))
                for a in c.adjusted_for
            ],
        }
    )


def stakes_table(res: StudyResults) -> pd.DataFrame:
    """Return scenario, customers kept a year and revenue kept (short cells, sign-aware)."""
    st = res.stakes
    cur = res.currency
    return pd.DataFrame(
        {
            "scenario": [str(d) for d in st.description],
            "customers_kept": [
                _signed(e, a, b, more="fewer leave", fewer="more leave", kind="count")
                for e, a, b in zip(
                    st.churners_prevented_per_year,
                    st.churners_ci_lower,
                    st.churners_ci_upper,
                    strict=True,
                )
            ],
            "revenue_kept": [
                _signed(e, a, b, more="kept", fewer="lost", kind="money", currency=cur)
                for e, a, b in zip(
                    st.revenue_at_stake, st.revenue_ci_lower, st.revenue_ci_upper, strict=True
                )
            ],
        }
    )


def stakes_full(res: StudyResults) -> pd.DataFrame:
    """Return the revenue-at-stake figures with their intervals and customers at risk (appendix)."""
    st = res.stakes
    cur = res.currency
    return pd.DataFrame(
        {
            "scenario": [str(d) for d in st.description],
            "customers_kept": _cells(
                st.churners_prevented_per_year,
                st.churners_ci_lower,
                st.churners_ci_upper,
                kind="count",
            ),
            "revenue_kept": _cells(
                st.revenue_at_stake,
                st.revenue_ci_lower,
                st.revenue_ci_upper,
                kind="money",
                currency=cur,
                digits=0,
            ),
            "at_risk": st.customers_at_risk.to_numpy(),
        }
    )


def skipped_details(res: StudyResults) -> pd.DataFrame:
    """Return the skipped sections with their technical messages (appendix).

    The message is cleaned of missing-value words ("nan", "None") and model-term
    brackets, which a reader would take for a broken page.
    """
    rows = [
        {"section": s.section, "reason": s.sentence(), "detail": _clean(s.detail) or "-"}
        for s in res.skipped()
    ]
    return pd.DataFrame(rows, columns=["section", "reason", "detail"])


def _clean(text: str) -> str:
    return technical_text(text)
