"""Plain-language findings and notes of the retention (survival) report.

The sentence templates turn the numbers of :mod:`analysis.stats` and of
:func:`analysis.studies.retention.retention_study` into plain text (escape it
when rendering as HTML); :func:`findings` and :func:`notes` write the
report's findings and notes from a :class:`~analysis.studies.retention.RetentionResult`.
:func:`retention_report` runs the study and attaches both (the original
one-call API, also offered by :mod:`analysis.survival`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from analysis.report.display import Suppression, suppression
from analysis.stats.competing_risks import cif_at
from analysis.stats.cox import CoxResult
from analysis.stats.survival import LogrankResult
from analysis.studies.retention import RetentionResult, retention_study

__all__ = [
    "RetentionReport",
    "findings",
    "group_suppression",
    "hidden_labels",
    "hide_groups",
    "notes",
    "retention_report",
    "sentence_cif",
    "sentence_hazard_peak",
    "sentence_hazard_ratio",
    "sentence_left_truncation",
    "sentence_logrank",
    "sentence_median",
    "sentence_ph",
    "sentence_rmst_difference",
    "sentence_survival_at",
]


# ----------------------------------------------------------------------------
# Plain-language findings (generated from the numbers; plain text, escape when
# rendering as HTML)
# ----------------------------------------------------------------------------


def _num(x: float, digits: int = 0) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:,.{digits}f}"


def _pct(x: float, digits: int = 0) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def _p(p: float) -> str:
    if not np.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def sentence_median(
    row, *, who: str = "new customers", unit: str = "months", digits: int = 0
) -> str:
    """Describe a median tenure with its interval, e.g. "Half of new customers ... (95% CI 13-15)".

    Parameters
    ----------
    row : mapping
        One row of :func:`median_survival` (median, ci_lower, ci_upper, max_time).
    """
    med, lo, hi = row["median"], row["ci_lower"], row["ci_upper"]
    if not np.isfinite(med):
        return (
            f"More than half of {who} are still active at the end of follow-up "
            f"({_num(row['max_time'], digits)} {unit}); the median tenure is not yet reached."
        )
    ci = (
        f"95% CI {_num(lo, digits)}\u2013{_num(hi, digits)}"
        if np.isfinite(hi)
        else f"95% CI from {_num(lo, digits)}; upper limit not reached"
    )
    return f"Half of {who} have left after {_num(med, digits)} {unit} ({ci})."


def sentence_survival_at(row, *, who: str = "customers", unit: str = "months") -> str:
    """Describe the share still active at a horizon, e.g. "78% of customers are still active after 12 months"."""
    if not np.isfinite(row["survival"]):
        return (
            f"Follow-up is too short to estimate how many {who} are still active after "
            f"{_num(row['horizon'])} {unit}."
        )
    return (
        f"{_pct(row['survival'])} of {who} are still active after {_num(row['horizon'])} "
        f"{unit} (95% CI {_pct(row['ci_lower'])}\u2013{_pct(row['ci_upper'])})."
    )


def sentence_hazard_ratio(
    result: CoxResult, term: str, *, label: str | None = None, reference_label: str | None = None
) -> str:
    """Describe one Cox hazard ratio in words, e.g. "Business customers leave at 0.62 times the rate ..."."""
    r = result.summary.loc[term]
    cov, lev = r["covariate"], r["level"]
    adj = [c for c in result.spec.get("covariates", []) if c != cov]
    adj_txt = f", adjusted for {', '.join(adj)}" if adj else ""
    hr = f"HR {r['hazard_ratio']:.2f}, 95% CI {r['ci_lower']:.2f}\u2013{r['ci_upper']:.2f}"
    if lev is None or (isinstance(lev, float) and np.isnan(lev)):
        subject = label or f"Each additional unit of {cov}"
        return (
            f"{subject} goes with a churn rate {r['hazard_ratio']:.2f} times as high "
            f"({hr}{adj_txt}; an association, not a proven cause)."
        )
    ref = reference_label or f"those with {cov} = {result.reference_levels.get(cov)}"
    subject = label or f"Customers with {cov} = {lev}"
    subject = subject[:1].upper() + subject[1:]
    return (
        f"{subject} leave at {r['hazard_ratio']:.2f} times the rate of {ref} "
        f"({hr}{adj_txt}; an association, not a proven cause)."
    )


def sentence_rmst_difference(row, *, group: str, horizon_unit: str = "months") -> str:
    """Describe an RMST difference row of :func:`rmst` in words."""
    a, b = str(row[group]).split(" - ", 1)
    diff = row["rmst"]
    more = "longer" if diff >= 0 else "shorter"
    return (
        f"Within the first {_num(row['horizon'])} {horizon_unit}, customers with {group} = {a} "
        f"stay on average {_num(abs(diff), 1)} {horizon_unit} {more} than those with "
        f"{group} = {b} (difference {_num(diff, 1)}, 95% CI {_num(row['ci_lower'], 1)} to "
        f"{_num(row['ci_upper'], 1)})."
    )


def sentence_logrank(res: LogrankResult) -> str:
    """Describe the k-group log-rank test in words."""
    what = (
        "Retention differs between"
        if res.p_value < 0.05
        else "The data show no clear retention difference between"
    )
    return (
        f"{what} {res.group} groups (log-rank chi-square {res.statistic:.1f} on {res.dof} "
        f"df, {_p(res.p_value)})."
    )


def sentence_ph(result: CoxResult, *, alpha: float = 0.05, moved: list | None = None) -> str:
    """Describe the proportional-hazards check (and a stratified refit) in words."""
    fails = result.ph_failures(alpha)
    if not fails:
        return (
            "The proportional-hazards check finds no evidence that the hazard ratios change "
            f"with tenure (global {_p(result.ph_test.loc['GLOBAL', 'p_value'])})."
        )
    txt = (
        f"Warning: the hazard ratio of {', '.join(fails)} changes with tenure "
        f"(proportional-hazards test {_p(result.ph_test['p_value'].drop('GLOBAL').min())}), so "
        "a single hazard ratio is an average over tenure."
    )
    if moved:
        txt += (
            f" The model was refitted with {', '.join(moved)} as strata (a separate baseline "
            "for each level); the other hazard ratios below come from that refit."
        )
    return txt


def sentence_cif(cif: pd.DataFrame, *, early: float, late: float, unit: str = "months") -> str:
    """Say which churn reason dominates early and which late, from :func:`cumulative_incidence`."""
    at = cif_at(cif, [early, late])
    e = at[at.horizon == early].sort_values("cif", ascending=False)
    lt = at[at.horizon == late].set_index("cause")["cif"]
    ev = at[at.horizon == early].set_index("cause")["cif"]
    later = (lt - ev.reindex(lt.index).fillna(0)).sort_values(ascending=False)
    if e.empty or later.empty:
        return "Too few churn events with a recorded reason to compare reasons."
    top_e = e.iloc[0]
    top_l = later.index[0]
    row_l = at[(at.horizon == late) & (at.cause == top_l)].iloc[0]
    return (
        f"In the first {_num(early)} {unit} the most common reason for leaving is "
        f"\u201c{top_e['cause']}\u201d ({_pct(top_e['cif'], 1)} of customers, 95% CI "
        f"{_pct(top_e['ci_lower'], 1)}\u2013{_pct(top_e['ci_upper'], 1)}); between "
        f"{_num(early)} and {_num(late)} {unit} most leavers cite \u201c{top_l}\u201d "
        f"({_pct(later.iloc[0], 1)} of customers; {_pct(row_l['cif'], 1)} by {_num(late)} "
        f"{unit}, 95% CI {_pct(row_l['ci_lower'], 1)}\u2013{_pct(row_l['ci_upper'], 1)})."
    )


def sentence_hazard_peak(haz: pd.DataFrame, *, unit: str = "month") -> str:
    """Name the tenure with the highest smoothed churn rate, from :func:`hazard_over_tenure`."""
    h = haz.dropna(subset=["hazard_smooth"])
    h = h[h.exposure > 0]
    if h.empty:
        return "Too little exposure to describe how the churn rate changes with tenure."
    top = h.loc[h.hazard_smooth.idxmax()]
    low = h.loc[h.hazard_smooth.idxmin()]
    return (
        f"The churn rate is highest around {unit} {_num(top['start'])}\u2013{_num(top['end'])} "
        f"of tenure: {_pct(top['hazard_smooth'], 1)} of active customers leave per {unit} "
        f"(95% CI {_pct(top['smooth_ci_lower'], 1)}\u2013{_pct(top['smooth_ci_upper'], 1)}), "
        f"against {_pct(low['hazard_smooth'], 1)} at its lowest ({unit} "
        f"{_num(low['start'])}\u2013{_num(low['end'])})."
    )


def sentence_left_truncation(n_left_truncated: int, n_total: int) -> str:
    """State how many customers entered the data late and how they were handled."""
    if not n_left_truncated:
        return "All customers are observed from signup (no late entry)."
    return (
        f"{n_left_truncated:,} of {n_total:,} customers signed up before the data window; "
        "they count only from their tenure at the window start (late entry), so long-tenure "
        "survivors do not inflate retention."
    )


# ----------------------------------------------------------------------------
# The report's findings and notes, written from the study's numbers
# ----------------------------------------------------------------------------


def findings(result: RetentionResult, *, hidden=()) -> list[str]:
    """Write the findings of the retention report (at most six sentences).

    Parameters
    ----------
    result : RetentionResult
        Output of :func:`analysis.studies.retention.retention_study`.
    hidden : collection, optional
        Group labels the report's tables suppress (:func:`hidden_labels`); no
        sentence is written about them.

    Returns
    -------
    list of str
        Median tenure, share still active at a middle horizon, the two most
        significant categorical hazard ratios, the largest RMST difference,
        the dominant churn reasons early and late, and a proportional-hazards
        warning, each where the data allow it.
    """
    group = result.group
    horizons = result.horizons
    med, sa, rm, cif = result.median, result.survival_at, result.rmst, result.cif
    fit, refit, moved = result.cox, result.cox_refit, result.moved_to_strata
    rmst_horizon, ph_alpha = result.rmst_horizon, result.ph_alpha
    sent = []
    overall_med = med.iloc[0]
    sent.append(sentence_median(overall_med, who="customers"))
    mid_h = [h for h in horizons if h <= overall_med["max_time"]]
    if mid_h:
        h = 12.0 if 12.0 in mid_h else mid_h[len(mid_h) // 2]
        row = sa[(sa[group or "group"] == "all customers") & (sa.horizon == h)].iloc[0]
        sent.append(sentence_survival_at(row, who="customers"))
    use = refit if refit is not None else fit
    if use is not None:
        cat = use.summary[use.summary.level.notna()].sort_values("p_value")
        for term in cat.index[:2]:
            sent.append(sentence_hazard_ratio(use, term))
    if group:
        diffs = rm[(rm.kind == "difference") & rm.rmst.notna() & (rm.se > 0)]
        diffs = diffs[~diffs[group].isin(set(hidden))]
        if len(diffs):
            top = diffs.loc[diffs.rmst.abs().idxmax()]
            sent.append(sentence_rmst_difference(top, group=group))
    if cif is not None and len(cif):
        early = float(horizons[0]) if horizons else 3.0
        sent.append(sentence_cif(cif, early=early, late=float(rmst_horizon)))
    if fit is not None and fit.ph_failures(ph_alpha):
        sent.append(sentence_ph(fit, alpha=ph_alpha, moved=moved))
    return sent[:6]


def notes(result: RetentionResult) -> list[str]:
    """Write the notes of the retention report: what was left out or could not be computed.

    Parameters
    ----------
    result : RetentionResult
        Output of :func:`analysis.studies.retention.retention_study`.

    Returns
    -------
    list of str
    """
    out: list[str] = []
    group, min_group_size = result.requested_group, result.min_group_size
    if result.group_missing:
        out.append(f"The grouping column {group!r} is not in the data; curves are shown overall.")
    if result.suppressed_groups:
        out.append(
            f"{len(result.suppressed_groups)} {group} group(s) with fewer than {min_group_size} "
            "customers are not shown separately."
        )
    if result.skipped_covariates:
        out.append(
            f"Cox covariates not in the data and skipped: {', '.join(result.skipped_covariates)}."
        )
    for c, small in result.cox_dropped_levels:
        out.append(
            f"Cox model: {len(small)} level(s) of {c} with fewer than "
            f"{min_group_size} customers left out."
        )
    if result.cox_error is not None:
        out.append(f"The Cox model could not be fitted: {result.cox_error}")
    if result.cause_missing:
        out.append(
            "No churn reasons are recorded for this churn definition; the "
            "'why they leave' section is skipped."
        )
    return out


# ----------------------------------------------------------------------------
# Small groups: totals over everyone, complementary suppression
# ----------------------------------------------------------------------------

_ALL = "all customers"


def group_suppression(result: RetentionResult) -> Suppression | None:
    """Decide which groups of the retention report to hide (None without groups).

    The study leaves out groups under the threshold; the report states the
    total number of customers, so the groups it shows must not add up to
    that total less one small group. The customers of the left-out groups
    count as one hidden group, and further groups, the smallest first, are
    hidden until the hidden customers cannot be told apart (see
    :func:`analysis.report.display.suppression`).
    """
    if not result.group:
        return None
    gcol = result.group
    med = result.median
    rows = med[med[gcol] != _ALL].reset_index(drop=True)
    return suppression(
        rows,
        count_col="n",
        min_group_size=result.min_group_size,
        total=float(result.n),
        group_col=gcol,
    )


def hidden_labels(result: RetentionResult, sup: Suppression | None) -> set:
    """Return the row labels to hide in the report's tables: hidden groups and their comparisons.

    A comparison row (``"a - b"`` in the restricted-mean table) is hidden
    when either group is, since its count and difference would give the
    hidden group back.
    """
    if sup is None or not result.group:
        return set()
    hidden = set(sup.hidden_groups)
    labels = set(hidden)
    rm = result.rmst
    if result.group in rm.columns:
        for lab in rm[result.group].astype(str):
            parts = lab.split(" - ", 1)
            if len(parts) == 2 and (parts[0] in hidden or parts[1] in hidden):
                labels.add(lab)
    return labels


def hide_groups(result: RetentionResult, sup: Suppression | None) -> RetentionResult:
    """Return ``result`` without the hidden groups' curves and numbers-at-risk (for the plots).

    ``km_group`` and ``at_risk_group`` lose the hidden groups' rows; both are
    None when no group is left to draw.
    """
    if sup is None or result.km_group is None or not sup.hidden.any():
        return result
    hidden = sup.hidden_groups
    km = result.km_group[~result.km_group[result.group].isin(hidden)]
    at = result.at_risk_group
    if at is not None:
        at = at[~at.index.isin(list(hidden))]
    if km.empty:
        km, at = None, None
    return dataclasses.replace(result, km_group=km, at_risk_group=at)


# ----------------------------------------------------------------------------
# The one-call report (numbers plus sentences), kept for existing callers
# ----------------------------------------------------------------------------


@dataclass
class RetentionReport(RetentionResult):
    """Everything the retention report shows: the study's numbers and its sentences.

    What :func:`analysis.survival.retention_report` returned before the layers: a
    :class:`~analysis.studies.retention.RetentionResult` plus ``findings`` and ``notes``.
    """

    findings: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def retention_report(
    lt: pd.DataFrame,
    *,
    group: str | None,
    horizons,
    rmst_horizon: float,
    covariates,
    strata=(),
    ph_alpha: float = 0.05,
    min_group_size: int = 10,
    max_months: float = 36.0,
    reference: dict | None = None,
    duration: str = "duration_months",
    event: str = "event",
    entry: str = "entry_months",
    cause: str | None = "churn_reason",
    alpha: float = 0.05,
) -> RetentionReport:
    """Compute the retention (survival) report from the lifetimes table, with its sentences.

    Runs :func:`analysis.studies.retention.retention_study` (same arguments)
    and adds the :func:`findings` and :func:`notes` written from its numbers.

    Returns
    -------
    RetentionReport
    """
    result = retention_study(
        lt,
        group=group,
        horizons=horizons,
        rmst_horizon=rmst_horizon,
        covariates=covariates,
        strata=strata,
        ph_alpha=ph_alpha,
        min_group_size=min_group_size,
        max_months=max_months,
        reference=reference,
        duration=duration,
        event=event,
        entry=entry,
        cause=cause,
        alpha=alpha,
    )
    numbers = {f.name: getattr(result, f.name) for f in fields(RetentionResult)}
    return RetentionReport(**numbers, findings=findings(result), notes=notes(result))
