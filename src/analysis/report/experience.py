"""Sentences, labels and tables of the experience-to-revenue report (03).

Every sentence is written from the numbers of :mod:`analysis.studies.experience`:
:func:`study_findings` and :func:`notes` from a
:class:`~analysis.studies.experience.StudyResults`, :func:`hazard_table` adds
the term labels, :func:`claims_table` sets the data's numbers beside common
claims. :func:`run_study` runs the study and attaches all of it (the original
one-call API, also offered by :mod:`analysis.experience`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from analysis.report.format import fmt_money
from analysis.stats.fixed_effects import FEResult
from analysis.studies.experience import (
    ClaimNumbers,
    HazardResult,
    StudyResults,
    claim_numbers,
)
from analysis.studies.experience import run_study as _run_study

__all__ = [
    "TERM_LABELS",
    "ExperienceReport",
    "claims_table",
    "findings",
    "hazard_table",
    "hidden_term_labels",
    "small_terms",
    "industry_claims",
    "notes",
    "run_study",
    "study_findings",
]

#: Labels of the churn-model terms in the report's hazard table.
TERM_LABELS = {
    "nps_category[passive]": "Latest NPS: passive (vs promoter)",
    "nps_category[detractor]": "Latest NPS: detractor (vs promoter)",
    "nps_category[none]": "No NPS answer yet (vs promoter)",
    "unresolved_window": "Each ticket not resolved at first contact, in the window",
    "sla_breaches_window": "Each SLA breach, in the window",
    "compensated_failures_window": "Each failed ticket that was compensated (extra)",
    "member": "Loyalty member this month",
}


# --------------------------------------------------------------------------------------
# Claims and findings
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
    if numbers.revenue_pct_per_csat is not None:
        pct = numbers.revenue_pct_per_csat
        cx = (
            f"One CSAT point more this month goes with {pct[0]:+.1f}% revenue next "
            f"month (95% CI {pct[1]:+.1f}% to {pct[2]:+.1f}%), same customers "
            "compared across months"
        )
    else:
        cx = "Not estimable: too few CSAT answers in consecutive months"
    ret = numbers.retained_12m
    two = numbers.within_two_contacts
    one = numbers.first_contact
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
                    f"{100 * ret[0]:.1f}% of customers retained over 12 months at the "
                    f"observed churn rate (95% CI {100 * ret[1]:.1f}%-{100 * ret[2]:.1f}%)"
                    if np.isfinite(ret[0])
                    else "Not measurable: no customer-months at risk in the data"
                ),
                "what_the_data_can_say": (
                    "One company, no comparison group without a service strategy: the retention rate "
                    "is measured, the strategy's share in it is not."
                ),
            },
            {
                "claim": "Up to 90% of incidents can be resolved at the first or second contact",
                "our_number": (
                    f"{100 * two[0]:.1f}% of tickets resolved within two contacts "
                    f"(95% CI {100 * two[1]:.1f}%-{100 * two[2]:.1f}%); "
                    f"{100 * one[0]:.1f}% at the first"
                    if np.isfinite(two[0]) and np.isfinite(one[0])
                    else "Not measurable: the data records no ticket resolution "
                    "(contacts to resolve or first-contact resolution on tickets)"
                ),
                "what_the_data_can_say": (
                    "Directly measured on our tickets; what is achievable depends on the ticket mix, "
                    "which the claim does not state."
                ),
            },
        ]
    )


def _whole(v: float) -> str:
    """Format a count estimate as a whole number without a negative zero."""
    return f"{int(round(v)):,}"


def findings(
    *,
    hazards: HazardResult,
    revenue: FEResult | None,
    revenue_term: str,
    stakes: pd.DataFrame,
    currency: str = "EUR",
    compensation: pd.DataFrame | None = None,
    min_group_size: int | None = None,
) -> list[str]:
    """Write the report's key findings as sentences generated from the estimates.

    With ``min_group_size``, nothing is said about a model term whose level
    has fewer customers (when the hazard result counts them, see
    :func:`small_terms`) nor about compensation seen for fewer customers.
    """

    def money(v: float) -> str:
        return fmt_money(v, currency)

    small = small_terms(hazards, min_group_size) if min_group_size else set()
    out = []
    for term, label in [
        ("nps_category[detractor]", "Detractors"),
        ("nps_category[passive]", "Passives"),
    ]:
        if term in hazards.summary.index and term not in small:
            hr, lo, hi = hazards.hr(term)
            out.append(
                f"{label} churn at {hr:.2f} times the rate of promoters (95% CI "
                f"{lo:.2f}-{hi:.2f}), counting only answers given before the time at risk "
                "they explain and adjusting for the other terms of the model."
            )
    for term, label in [
        ("unresolved_window", "ticket not resolved at first contact"),
        ("sla_breaches_window", "missed SLA"),
    ]:
        if term in hazards.summary.index:
            hr, lo, hi = hazards.hr(term)
            window = f"{hazards.window_days} days" if hazards.window_days else "window"
            out.append(
                f"Each {label} in the last {window} multiplies the churn "
                f"rate by {hr:.2f} (95% CI {lo:.2f}-{hi:.2f})."
            )
    if revenue is not None and revenue_term in revenue.summary.index:
        r = revenue.summary.loc[revenue_term]
        out.append(
            f"One CSAT point more in a month goes with {money(r.coef)} more revenue per "
            f"customer the next month (95% CI {money(r.ci_lower)} to {money(r.ci_upper)}), "
            f"comparing the same customers across months ({r.n_obs:,.0f} customer-months, "
            f"{r.n_customers:,.0f} customers)."
        )
    for _, s in stakes.iterrows():
        out.append(
            f"{s.description}: about {_whole(s.churners_prevented_per_year)} fewer churners a "
            f"year (95% CI {_whole(s.churners_ci_lower)} to {_whole(s.churners_ci_upper)}), worth "
            f"{money(s.revenue_at_stake)} (95% CI {money(s.revenue_ci_lower)} to "
            f"{money(s.revenue_ci_upper)}) under the assumptions stated with the table."
        )
    if compensation is not None and len(compensation):
        c = compensation.iloc[0]
        n = c.get("customers_with_compensated_failure")
        if min_group_size and n is not None and not (n >= min_group_size):
            return out  # the table suppresses it too
        out.append(
            f"Observational: after a compensated failure customers churned at "
            f"{c.hazard_ratio:.2f} times the rate after an uncompensated one of the same "
            f"kind (95% CI {c.ci_lower:.2f}-{c.ci_upper:.2f}); compensation was not "
            "assigned at random."
        )
    return out


# --------------------------------------------------------------------------------------
# The report's parts, written from StudyResults
# --------------------------------------------------------------------------------------


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
    )


def notes(res: StudyResults) -> list[str]:
    """Write the report's notes: what the study left out (``res.caveats``), in order."""
    out = []
    for c in res.caveats:
        kind = c["kind"]
        if kind == "landmark_halfway":
            out.append("The data window is shorter than the landmark; the curves start halfway.")
        elif kind == "not_varying":
            out.append(
                "Left out of the churn model because they do not vary in this data: "
                + ", ".join(c["columns"])
                + "."
            )
        elif kind == "no_revenue_link":
            out.append("Too few CSAT answers in consecutive months to relate CSAT to revenue.")
        elif kind == "no_compensation":
            out.append(
                "No compensated failures (or no failures) in the data: compensation skipped."
            )
        elif kind == "scenario_skipped":
            out.append(f"Scenario '{c['scenario']}' needs a covariate this data lacks.")
        elif kind == "fcr_scenario_no_data":
            rate = c.get("fcr_rate")
            out.append(
                "The first-contact-resolution scenario is left out: "
                + (
                    "every ticket is already resolved at the first contact."
                    if rate is not None and rate >= 1
                    else "the data records no first-contact resolution on tickets "
                    "(add first_contact_resolution to ticket rows to estimate it)."
                )
            )
        else:
            raise ValueError(f"unknown experience caveat {kind!r}")
    return out


def small_terms(hazards: HazardResult, min_group_size: int) -> set[str]:
    """Return the model terms of categorical levels with fewer than ``min_group_size`` customers.

    Reads the customers per level the hazard result carries
    (``level_customers``, by term name); a result without them gives an
    empty set.
    """
    sizes = getattr(hazards, "level_customers", None) or {}
    return {t for t, n in dict(sizes).items() if n < min_group_size}


def hidden_term_labels(res: StudyResults) -> set[str]:
    """Return the ``term_label`` of the hazard-table rows to suppress (levels of too few customers)."""
    return {TERM_LABELS.get(t, t) for t in small_terms(res.hazards, res.min_group_size)}


def hazard_table(res: StudyResults) -> pd.DataFrame:
    """Return the churn hazard table with a first column ``term_label`` (plain-language term)."""
    ht = res.hazard_table.copy()
    ht.insert(0, "term_label", [TERM_LABELS[t] for t in ht.index])
    return ht


# --------------------------------------------------------------------------------------
# The one-call report (numbers plus text), kept for existing callers
# --------------------------------------------------------------------------------------


@dataclass
class ExperienceReport(StudyResults):
    """:class:`StudyResults` with the report's text: labelled hazard table, claims, notes.

    What :func:`analysis.experience.run_study` returned before the restructure:
    ``hazard_table`` has ``term_label``, ``claims`` is :func:`claims_table`'s
    table, ``notes`` are :func:`notes`' sentences and :meth:`findings` writes
    the findings.
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
    numbers["hazard_table"] = hazard_table(res)
    return ExperienceReport(**numbers, claims=claims_table(res.claim_numbers), notes=notes(res))
