"""Labels and sentences of the loyalty-programme report.

:func:`programme_findings` writes the report's findings from a
:class:`analysis.studies.loyalty.ProgrammeReport`; :func:`effect_sentence` and
:func:`e_value_sentence` phrase single estimates; the ``*_LABELS`` dictionaries and
:func:`covariate_label` give plain-language names for tables and plots.
:func:`programme_report_with_findings` is the old ``analysis.loyalty.programme_report``
(the study's result plus ``.findings``), kept for backward compatibility.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from analysis.report.display import complementary_suppression
from analysis.stats.effects import Effect
from analysis.stats.evalue import EValue
from analysis.studies.loyalty import ProgrammeReport, SequentialResult, programme_report

__all__ = [
    "COVARIATE_LABELS",
    "METHOD_LABELS",
    "QUANTITY_LABELS",
    "covariate_label",
    "e_value_sentence",
    "effect_sentence",
    "hidden_levels",
    "level_sizes",
    "programme_findings",
    "programme_notes",
    "programme_report_with_findings",
]

# Plain-language labels for stakeholder tables and plots (the code keeps the short names).
COVARIATE_LABELS = {
    "prior_spend": "spend in the 3 months before",
    "log_prior_spend": "log(1 + spend) in the 3 months before",
    "prior_purchases": "purchases in the 3 months before",
    "tenure_months": "tenure (months)",
    "log_tenure_months": "log tenure",
    "segment": "segment",
    "value_tier": "value tier",
    "prior_nps_category": "latest NPS answer",
    "prior_tickets": "service tickets in the 3 months before",
    "history_tickets": "service tickets, whole history",
    "history_nps_mean": "mean NPS answer, whole history (0 = none)",
    "prior_unresolved": "unresolved tickets in the 3 months before",
    "prior_sla_breaches": "SLA breaches in the 3 months before",
}
METHOD_LABELS = {
    "naive": "naive (raw difference)",
    "regression": "regression adjustment",
    "ipw": "inverse-probability weighting",
    "aipw": "doubly robust (AIPW)",
}
QUANTITY_LABELS = {
    "survival_member": "share still active: members",
    "survival_non_member": "share still active: comparable non-members",
    "survival_difference": "share still active: difference",
    "rmst_member": "mean months active within the horizon: members",
    "rmst_non_member": "mean months active within the horizon: comparable non-members",
    "rmst_difference": "mean months active within the horizon: difference",
}


def covariate_label(name: str) -> str:
    """Plain-language label of a covariate or one of its dummy columns.

    ``"prior_spend"`` -> ``"spend in the 3 months before"``;
    ``"segment[consumer]"`` -> ``"segment: consumer"``; unknown names are returned
    with underscores as spaces.
    """
    base, sep, level = str(name).partition("[")
    label = COVARIATE_LABELS.get(base, base.replace("_", " "))
    return f"{label}: {level.rstrip(']')}" if sep else label


def level_sizes(
    frame: pd.DataFrame, columns: Iterable[str], *, id_col: str | None = None
) -> pd.Series:
    """Count the customers at each level of categorical columns, named ``column[level]``.

    The names are those of :func:`analysis.stats.design.covariate_matrix`
    (balance tables, love plots, model terms), so a table indexed by them can
    hide the levels with too few customers. Numeric columns are skipped.

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows the statistics were computed on.
    columns : iterable of str
        Columns to count (missing ones are skipped).
    id_col : str, optional
        Customer column: distinct customers are counted (a customer on
        several rows, as in monthly trials, counts once per level). Default:
        rows are customers.

    Returns
    -------
    pandas.Series
        Customers per ``column[level]``, every level (the reference included).
    """
    out: dict[str, int] = {}
    for c in columns:
        if c not in frame.columns:
            continue
        col = frame[c]
        if not (
            isinstance(col.dtype, pd.CategoricalDtype)
            or pd.api.types.is_object_dtype(col)
            or pd.api.types.is_string_dtype(col)
        ):
            continue
        if id_col is None:
            sizes = col.value_counts(dropna=True)
        else:
            sizes = frame.groupby(c, observed=True)[id_col].nunique()
        for level, n in sizes.items():
            out[f"{c}[{level}]"] = int(n)
    return pd.Series(out, dtype="int64")


def hidden_levels(
    frame: pd.DataFrame,
    covariates: Sequence[str],
    *,
    min_group_size: int,
    id_col: str | None = "customer_id",
    complementary: bool = False,
) -> set[str]:
    """Return the covariate levels (``column[level]``) a table or plot of ``frame`` must hide.

    A balance table, a member profile or a love plot shows one row per level of
    each categorical covariate; a level with fewer than ``min_group_size``
    customers in ``frame`` would show what those few customers did (a share of
    0 among members says none of them joined), so it is hidden. With
    ``complementary=True`` (tables of shares, which add up to one over a
    covariate's levels) the reference level, which such tables leave out, counts
    as a hidden part too, and further levels, the smallest first, are hidden
    until the hidden ones of each covariate are at least two and hold
    ``min_group_size`` customers together (see
    :func:`analysis.report.display.complementary_suppression`).

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows the table was computed on (landmark or trial frame).
    covariates : sequence of str
        The covariates of the table; numeric ones are never hidden.
    min_group_size : int
        The threshold.
    id_col : str or None, default "customer_id"
        Customer column: a customer counts once per level however many rows
        (trial months) they have. None or absent: rows are customers.
    complementary : bool, default False
        Also protect small levels from being worked out from the others.

    Returns
    -------
    set of str
        Names as in the balance tables (``"segment[TinySeg]"``).
    """
    cols = [c for c in covariates if c in frame.columns]
    ids = id_col if id_col is not None and id_col in frame.columns else None
    sizes = level_sizes(frame, cols, id_col=ids)
    hidden: set[str] = set()
    for c in cols:
        s = frame[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            levels = [lv for lv in s.cat.categories if (s == lv).any()]
        elif pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
            levels = sorted(s.dropna().astype(str).unique())
        else:
            continue
        # The order of analysis.stats.design.covariate_matrix: the first level is the reference.
        names = [f"{c}[{lv}]" for lv in levels]
        counts = np.array([float(sizes.get(n, 0)) for n in names])
        hide = counts < min_group_size
        if complementary and len(names) > 1:
            rows = np.arange(1, len(names))
            hide = hide | complementary_suppression(
                counts, hide, [(rows, float(counts.sum()))], min_group_size
            )
        hidden |= {n for n, h in zip(names[1:], hide[1:], strict=True) if h}
    return hidden


# --------------------------------------------------------------------------- sentences


def effect_sentence(eff: Effect, *, what: str, unit: str = "", scale: float = 1.0) -> str:
    """Write one plain-language sentence about an adjusted effect, with its interval.

    Returns plain text; the reporting helpers escape it when rendering HTML.

    Parameters
    ----------
    eff : analysis.stats.effects.Effect
    what : str
        What the outcome is, e.g. "6-month retention" or "spend over 6 months".
    unit : str
        Unit suffix after numbers, e.g. " percentage points" or " EUR".
    scale : float
        Multiply numbers by this before printing (100 for proportions -> points).
    """
    who = "members" if eff.estimand == "ATT" else "customers at the landmark"
    est, lo, hi = eff.estimate * scale, eff.ci_lower * scale, eff.ci_upper * scale
    if eff.method == "naive":
        return (
            f"Observed difference in {what} (members minus non-members, not adjusted): "
            f"{est:+,.1f}{unit} (95% CI {lo:+,.1f} to {hi:+,.1f})."
        )
    direction = "raised" if est > 0 else "lowered"
    certain = (
        "the interval excludes no effect"
        if lo > 0 or hi < 0
        else "the interval includes no effect, so the data cannot rule it out"
    )
    return (
        f"After adjusting for measured differences ({eff.method.upper()}, {eff.estimand}), "
        f"the programme is estimated to have {direction} {what} for {who} by "
        f"{abs(est):,.1f}{unit} (95% CI {lo:+,.1f} to {hi:+,.1f}); {certain}."
    )


def e_value_sentence(ev: EValue, *, outcome: str = "churn") -> str:
    """Turn an E-value into the sentence a stakeholder can read."""
    if not np.isfinite(ev.point):
        return "E-value not available."
    ci = (
        f"; to move the confidence interval to include no effect, a risk ratio of {ev.ci:.2f} "
        "would suffice"
        if np.isfinite(ev.ci) and ev.ci > 1
        else "; the confidence interval already includes no effect"
    )
    return (
        f"An unmeasured confounder would need to be associated with both enrolment and "
        f"{outcome} by a risk ratio of {ev.point:.2f} each, beyond the measured covariates, "
        f"to explain the estimated effect away{ci}."
    )


def _gap_clause(naive: float, adjusted: float) -> str:
    """Say how the raw contrast compares with the adjusted effect, and why."""
    if abs(naive - adjusted) <= 0.1 * max(abs(naive), abs(adjusted), 1e-12):
        return " The raw and adjusted numbers are close: measured differences explain little of it."
    if naive > adjusted:
        return (
            " The raw gap is larger because customers who join already spent more, had better "
            "service experiences or fewer tickets before joining."
        )
    return (
        " The raw gap is smaller than the adjusted effect: members differed in ways that hide it."
    )


def _sequential_findings(sq: SequentialResult, *, currency: str, horizon: int) -> list[str]:
    """Headline sentences from the pooled sequential trials."""
    e = sq.effects.set_index(["outcome", "method", "estimand"])
    ret_naive = e.loc[("retained", "naive", "observational contrast")]
    ret = e.loc[("retained", "aipw", "ATT")]
    sp_naive = e.loc[("spend", "naive", "observational contrast")]
    sp = e.loc[("spend", "aipw", "ATT")]
    sample = (
        f", a random sample of {sq.sampled_customers:,} customers" if sq.sampled_customers else ""
    )
    out = [
        f"Headline (sequential trials: each month, customers who enrolled compared with "
        f"customers who could have enrolled that month but did not; {sq.n_enrolments:,} "
        f"enrolments in {sq.n_trials} monthly trials{sample}): enrolling raised "
        f"{horizon}-month retention of those who enrolled by {100 * ret.estimate:+.1f} points "
        f"(95% CI {100 * ret.ci_lower:+.1f} to {100 * ret.ci_upper:+.1f}), after adjusting for "
        f"spend, purchases, service experience and survey answers in the months before, "
        f"tenure, segment and value tier. The raw difference was "
        f"{100 * ret_naive.estimate:+.1f} points." + _gap_clause(ret_naive.estimate, ret.estimate),
        f"Spend over the {horizon} months after enrolling: raw difference "
        f"{sp_naive.estimate:+,.0f} {currency} per customer, adjusted effect on those who "
        f"enrolled {sp.estimate:+,.0f} {currency} (95% CI {sp.ci_lower:+,.0f} to "
        f"{sp.ci_upper:+,.0f}), a lift of {100 * (sp.ratio - 1):+.1f}% (95% CI "
        f"{100 * (sp.ratio_ci_lower - 1):+.1f}% to {100 * (sp.ratio_ci_upper - 1):+.1f}%)."
        + _gap_clause(sp_naive.estimate, sp.estimate),
    ]
    if ("spend", "aipw", "ATE") in e.index:
        a = e.loc[("spend", "aipw", "ATE")]
        r = e.loc[("retained", "aipw", "ATE")]
        kept = (a.n_treated + a.n_control) / max(sq.n_rows, 1)
        who = (
            f"customer-months with at least a {100 * a.trim_lower:.1f}% chance of enrolling "
            f"({100 * kept:.0f}% of eligible customer-months; the rest almost never enrol, so "
            f"the data cannot say what enrolling would do for them)"
            if a.n_trimmed > 0
            else "all eligible customer-months"
        )
        out.append(
            f"Average effect had everyone enrolled (ATE), among {who}: retention "
            f"{100 * r.estimate:+.1f} points (95% CI {100 * r.ci_lower:+.1f} to "
            f"{100 * r.ci_upper:+.1f}), spend {a.estimate:+,.0f} {currency} (95% CI "
            f"{a.ci_lower:+,.0f} to {a.ci_upper:+,.0f})."
        )
    if sq.e_value is not None:
        out.append("Sequential trials: " + e_value_sentence(sq.e_value, outcome="churn"))
    return out


def _event_study_vs_trials(rep: ProgrammeReport, *, currency: str, horizon: int) -> str:
    """Put the event study next to the sequential-trial spend effect on enrollees, per month."""
    if rep.sequential is None or horizon <= 0:
        return ""
    e = rep.sequential.effects.set_index(["outcome", "method", "estimand"])
    sp = e.loc[("spend", "aipw", "ATT")]
    return (
        f" The sequential trials, which adjust for that peak, give {sp.estimate / horizon:+,.1f} "
        f"{currency} per month (95% CI {sp.ci_lower / horizon:+,.1f} to "
        f"{sp.ci_upper / horizon:+,.1f}, lift {100 * (sp.ratio - 1):+.1f}%) and are the "
        f"headline."
    )


def _naive_sentence(rep: ProgrammeReport) -> str:
    """Say what the dashboard comparison shows, and why it flatters the programme."""
    n = rep.naive_churn.set_index("comparison")
    ever = n.loc["ever-members vs never-members"]
    split = n.loc["member months vs non-member months"]
    if not np.isfinite(ever.rate_ratio) or not np.isfinite(split.rate_ratio):
        return ""
    text = (
        f"The simple comparison, customers who ever joined against those who never did, shows "
        f"members churning at {ever.rate_ratio:.2f} times the non-members' monthly rate (95% CI "
        f"{ever.ci_lower:.2f} to {ever.ci_upper:.2f}). It flatters the programme twice: members "
        f"are counted as members from the day they signed up, although they had to stay long "
        f"enough to join (immortal time), and the customers who join are those who were "
        f"staying anyway (selection). Counting only the months customers were actually members "
        f"gives {split.rate_ratio:.2f} ({split.ci_lower:.2f} to {split.ci_upper:.2f}); "
    )
    lm = [(L, r) for L, r in rep.landmarks.items() if r.cox is not None]
    if lm:
        L, r = lm[0]
        text += (
            f"comparing members with similar non-members (weighted, at {L} months of tenure) "
            f"gives a hazard ratio of {r.cox.hazard_ratio:.2f} ({r.cox.ci_lower:.2f} to "
            f"{r.cox.ci_upper:.2f})."
        )
    else:
        text += "only the adjusted comparisons remove the selection."
    return text


def _findings(rep: ProgrammeReport, *, currency: str, horizon: int) -> list[str]:
    out = []
    if rep.sequential is not None:
        out += _sequential_findings(rep.sequential, currency=currency, horizon=horizon)
    else:
        # no sequential trials: the landmark effects are the retention findings
        for L, r in rep.landmarks.items():
            e = r.effects.set_index(["outcome", "method", "estimand"])
            ret_naive = e.loc[("retained", "naive", "observational contrast")]
            ret = e.loc[("retained", "aipw", "ATT")]
            out.append(
                f"Landmark design, at {L} months of tenure ({r.n:,} active customers, "
                f"{r.n_members:,} members): members' {horizon}-month retention was "
                f"{100 * ret_naive.estimate:+.1f} points higher than non-members' before "
                f"adjustment; after adjusting for prior spend, tenure, segment, value tier and "
                f"service experience the programme's estimated effect on members is "
                f"{100 * ret.estimate:+.1f} points (95% CI {100 * ret.ci_lower:+.1f} to "
                f"{100 * ret.ci_upper:+.1f})." + _gap_clause(ret_naive.estimate, ret.estimate)
            )
            if r.e_value is not None:
                out.append(f"Landmark {L}: " + e_value_sentence(r.e_value, outcome="churn"))
    if rep.naive_churn is not None and len(rep.naive_churn):
        sentence = _naive_sentence(rep)
        if sentence:
            out.append(sentence)
    hrs = [
        f"{r.cox.hazard_ratio:.2f} (95% CI {r.cox.ci_lower:.2f} to {r.cox.ci_upper:.2f}) at "
        f"{L} months of tenure"
        for L, r in rep.landmarks.items()
        if r.cox is not None
    ]
    if hrs:
        out.append(
            f"Churn hazard of members against comparable non-members in the {horizon} months "
            f"after a fixed tenure (landmark design, IP-weighted Cox): hazard ratio "
            + "; ".join(hrs)
            + ". Below 1 means members churn less; these compare being a member at that tenure, "
            "as the programme is actually used, and are a second design next to the headline."
        )
    if rep.event_study is not None:
        pa = rep.event_study.post_att
        out.append(
            f"Around enrolment, monthly spend of enrollees was {pa['estimate']:+,.1f} {currency} "
            f"(95% CI {pa['ci_lower']:+,.1f} to {pa['ci_upper']:+,.1f}) above what their own "
            f"earlier spend and the market trend predict, in months {pa['months']} after "
            f"enrolling (lift {100 * (pa['lift'] - 1):+.1f}%). Spend was already high in the "
            f"months just before joining (customers join after a spending peak), so read this "
            f"as an upper bound rather than the programme's effect."
            + _event_study_vs_trials(rep, currency=currency, horizon=horizon)
        )
    return out


def programme_findings(rep: ProgrammeReport) -> list[str]:
    """Write the findings of the loyalty-programme report from the study's numbers.

    Parameters
    ----------
    rep : analysis.studies.loyalty.ProgrammeReport
        Result of :func:`analysis.studies.loyalty.programme_report`.

    Returns
    -------
    list of str
        Plain-text sentences (the display helpers escape them); empty when the study
        could not run (``rep.available`` False).
    """
    if not rep.available:
        return []
    return _findings(rep, currency=rep.currency, horizon=rep.horizon_months)


@functools.wraps(programme_report, assigned=())  # help() and inspect show the study's arguments
def programme_notes(rep: ProgrammeReport) -> list[str]:
    """Write the study's caveats (parts not estimated, adjustments made) as sentences.

    Parameters
    ----------
    rep : ProgrammeReport
        Output of :func:`analysis.studies.loyalty.programme_report`.

    Returns
    -------
    list of str
        One plain-text sentence per caveat, in the order the study recorded them
        (the reason the study could not run comes first when it could not).
    """
    out = []
    for c in rep.caveats:
        kind = c["kind"]
        if kind == "no_loyalty_table":
            out.append(
                "The data has no loyalty table (or it is empty), so the programme cannot be "
                "evaluated. Add a loyalty table (customer_id, enrolled_date, ...) to run this study."
            )
        elif kind == "landmark_too_few":
            out.append(
                f"Landmark {c['landmark']} months: {c['customers']:,} customers, "
                f"{c['members']:,} members - too few to estimate."
            )
        elif kind == "covariates_left_out":
            out.append(
                "Covariates not available or constant in this data, left out: "
                + ", ".join(c["covariates"])
            )
        elif kind == "trials_not_run":
            out.append(f"Sequential trials not run: {c['detail']}")
        elif kind == "trials_too_few":
            out.append(
                f"Sequential trials: {c['customer_months']:,} customer-months, "
                f"{c['enrolments']:,} enrolments - too few to estimate."
            )
        elif kind == "ate_trim_emptied_arm":
            out.append(
                f"Sequential trials: trimming for the ATE ({c['trim']}) left an arm empty "
                f"({c['detail']}); the ATE rows are untrimmed."
            )
        else:
            raise ValueError(f"unknown loyalty caveat {kind!r}")
    return out


def programme_report_with_findings(tables: dict, **kwargs) -> ProgrammeReport:
    """Run the loyalty-programme study and attach its text, as it did before the layers.

    The pre-restructure ``analysis.loyalty.programme_report``, kept for code that reads
    ``rep.findings``, ``rep.notes`` or ``rep.message``:
    :func:`analysis.studies.loyalty.programme_report` (same arguments) followed by
    :func:`programme_findings` and :func:`programme_notes`.
    """
    rep = programme_report(tables, **kwargs)
    rep.findings = programme_findings(rep)
    notes = programme_notes(rep)
    if rep.available:
        rep.notes = notes
    else:
        rep.message = " ".join(notes)
    return rep
