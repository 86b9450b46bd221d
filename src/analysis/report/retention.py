"""Plain-language verdict, tiles, findings, tables and notes of the retention (survival) report.

Sentences (plain text; escape when rendering as HTML) go through the shared
labels, formatters and sentence rules: the sign decides the verb, an interval
that includes no effect says "no clear evidence", a test's sentence follows the
p-values its table shows. :func:`verdict` and :func:`tiles` answer the title's
question; the ``*_table`` functions shape the body's tables and the appendix's.
:func:`retention_report` is the original one-call API (also in :mod:`analysis.survival`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from analysis.report import labels
from analysis.report.display import Suppression, suppression  # noqa: F401 (re-exported)
from analysis.report.format import (
    _is_missing,
    fmt_date,
    fmt_est,
    fmt_months,
    fmt_num,
    fmt_p,
    fmt_value,
)
from analysis.report.labels import label, level_label, value_label
from analysis.report.retention_privacy import group_suppression, hidden_labels, hide_groups
from analysis.report.sentences import (
    count_phrase,
    direction,
    join_words,
    most_common,
    ratio_sentence,
)
from analysis.stats.competing_risks import cif_at
from analysis.stats.cox import CoxResult
from analysis.stats.survival import LogrankResult, holm
from analysis.studies.retention import ALL_CUSTOMERS, RetentionResult, retention_study
from analysis.studies.sections import Skipped, is_skipped

__all__ = [
    "RetentionReport",
    "cif_table",
    "cox_table",
    "everyone_table",
    "findings",
    "frame_note",
    "group_suppression",
    "group_table",
    "hidden_labels",
    "fmt_date",
    "hide_groups",
    "logrank_tables",
    "median_table",
    "model_fit_table",
    "notes",
    "one_time_table",
    "ph_table",
    "retention_report",
    "rmst_table",
    "section_findings",
    "sentence_cif",
    "sentence_cohorts",
    "sentence_hazard_peak",
    "sentence_hazard_ratio",
    "sentence_left_truncation",
    "sentence_logrank",
    "sentence_median",
    "sentence_one_time",
    "sentence_ph",
    "sentence_rmst_difference",
    "sentence_survival_at",
    "skipped_sections",
    "survival_table",
    "tiles",
    "value_label",
    "verdict",
]

labels.register(
    {
        "median_ci": "Median tenure (95% CI)",
        "max_time": "Longest follow-up (months)",
        "survival": "Still active",
        "rmst_ci": "Average months retained (95% CI)",
        "statistic": "Chi-square",
        "rmst_ratio": "Ratio of average months retained (95% CI)",
        "observed": "Churn events observed",
        "expected": "Churn events expected (equal retention)",
        "group_a": "Group",
        "group_b": "Compared with",
        "chisq": "Chi-square",
        "cause": "Reason",
        "cif": "Share who left for this reason",
        "hazard_ratio_ci": "Hazard ratio (95% CI)",
        "reference": "Compared with",
        "factor": "Factor",
        "figure": "Figure",
        "counted": "Who is counted",
        "share_ci": "Share (95% CI)",
        "comparison": "Comparison",
    }
)

_ALL = ALL_CUSTOMERS
_SHORT = "too little follow-up"
_NR = "not reached"


# ----------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------


def _ok(x) -> bool:  # a section result that can be shown (not None, not Skipped)
    return x is not None and not is_skipped(x)


def _finite(x) -> bool:
    return not _is_missing(x) and bool(np.isfinite(float(x)))


def _h(x: float) -> str:
    """A horizon in words: 12.0 -> "12 months"."""
    return fmt_months(float(x), 0 if float(x).is_integer() else 1)


def _pct_ci(s, lo, hi, digits: int = 0) -> str:
    return fmt_est(s, lo, hi, kind="pct", digits=digits)


def _cells(est, lo, hi, kind: str, digits: int | None = None, missing: str = "") -> list[str]:
    """Format columns of estimates and bounds as "estimate (lower–upper)" cells."""
    return [
        fmt_est(e, a, b, kind=kind, digits=digits) if _finite(e) else missing
        for e, a, b in zip(est, lo, hi, strict=True)
    ]


def _split(text: str) -> tuple[str, str]:
    """Split "67% (65%–69%)" into ("67%", " (95% CI 65%–69%)"); no interval: ("67%", "")."""
    head, _, rest = text.partition(" (")
    return head, (f" (95% CI {rest}" if rest else "")


def _ci_words(text: str) -> str:
    """Put "95% CI" inside the brackets of a formatted estimate: "21 months (95% CI 20–23)"."""
    return text.replace(" (", " (95% CI ", 1) if " (" in text else text


def _who(result: RetentionResult) -> str:
    return "customers who bought again" if result.population == "repeat customers" else "customers"


def _mid_horizon(result: RetentionResult, max_time: float = np.inf) -> float | None:
    hs = [h for h in result.horizons if h <= max_time]
    if not hs:
        return None
    return 12.0 if 12.0 in hs else hs[len(hs) // 2]


def _row(frame, gcol, label_value, horizon=None):
    if not _ok(frame):
        return None
    m = frame[gcol] == label_value
    if horizon is not None:
        m &= frame["horizon"] == horizon
    sub = frame[m]
    return None if sub.empty else sub.iloc[0]


# ----------------------------------------------------------------------------
# Sentence templates (plain text; escape when rendering as HTML)
# ----------------------------------------------------------------------------


def sentence_median(row, *, who: str = "new customers", digits: int = 0) -> str:
    """Describe a median tenure with its interval, e.g. "Half of customers have left after 14 months (95% CI 13–15)."

    Parameters
    ----------
    row : mapping
        One row of :func:`median_survival` (median, ci_lower, ci_upper, max_time).
    """
    med, lo, hi = row["median"], row["ci_lower"], row["ci_upper"]
    if not _finite(med):
        return (
            f"More than half of {who} are still active at the end of follow-up "
            f"({_h(round(float(row['max_time'])))}); the median tenure is not yet reached."
        )
    ci = f"95% CI {fmt_num(lo, digits)}\u2013{fmt_num(hi, digits)}" if _finite(hi) else ""
    if _finite(lo) and not ci:
        ci = f"95% CI from {fmt_num(lo, digits)}; upper limit not reached"
    return f"Half of {who} have left after {fmt_months(med, digits)}" + (f" ({ci})." if ci else ".")


def sentence_survival_at(row, *, who: str = "customers") -> str:
    """Describe the share still active at a horizon, e.g. "78% of customers are still active after 12 months"."""
    if not _finite(row["survival"]):
        return (
            f"Follow-up is too short to estimate how many {who} are still active after "
            f"{_h(row['horizon'])}."
        )
    head, ci = _split(_pct_ci(row["survival"], row["ci_lower"], row["ci_upper"]))
    return f"{head} of {who} are still active after {_h(row['horizon'])}{ci}."


def _term_subject(result: CoxResult, term: str) -> tuple[str, str | None]:
    r = result.summary.loc[term]
    cov, lev = r["covariate"], r["level"]
    if lev is None or (isinstance(lev, float) and np.isnan(lev)):
        return f"each additional unit of {labels.sentence_label(cov)}", None
    ref = result.reference_levels.get(cov)
    return f"customers in {level_label(cov, lev)}", f"those in {level_label(cov, ref)}"


def sentence_hazard_ratio(
    result: CoxResult, term: str, *, label: str | None = None, reference_label: str | None = None
) -> str:
    """Describe one Cox hazard ratio in words: "Customers in Value tier: low leave 1.44 times as fast as ..."."""
    r = result.summary.loc[term]
    subject, ref = _term_subject(result, term)
    subject = label or subject
    adj = [
        labels.sentence_label(c) for c in result.spec.get("covariates", []) if c != r["covariate"]
    ]
    adj_txt = f"adjusted for {join_words(adj)}; " if adj else ""
    if ref is None:  # a numeric factor: the ratio per unit
        hr, lo, hi = r["hazard_ratio"], r["ci_lower"], r["ci_upper"]
        ci = fmt_est(hr, lo, hi, kind="ratio").partition(" (")[2]
        ci = f" (95% CI {ci[:-1]})" if ci else ""
        if direction(hr, lo, hi, null=1.0) in ("unclear", "none", "missing"):
            d = f"No clear evidence that {subject} goes with a different churn rate{ci}."
        else:
            d = f"{subject[:1].upper()}{subject[1:]} goes with a churn rate {fmt_num(hr, 2)} times as high{ci}."
    else:
        d = ratio_sentence(
            subject, reference_label or ref, r["hazard_ratio"], r["ci_lower"], r["ci_upper"]
        )
    if d.endswith(")."):
        return f"{d[:-2]}; {adj_txt}an association, not a proven cause)."
    return f"{d[:-1]} ({adj_txt}an association, not a proven cause)."


def sentence_rmst_difference(row, *, group: str) -> str:
    """Describe an RMST difference row of :func:`rmst` in words (observed difference, not an effect)."""
    a, b = str(row[group]).split(" - ", 1)
    diff, lo, hi = row["rmst"], row["ci_lower"], row["ci_upper"]
    ga, gb = level_label(group, a), level_label(group, b)
    within = f"Within the first {_h(row['horizon'])}"
    if not _finite(diff):
        return f"{within}, the difference in tenure between {ga} and {gb} could not be estimated."
    ci = fmt_est(diff, lo, hi, kind="months", digits=1)
    ci = ci[ci.index("(") :] if "(" in ci else ""
    ci = ci.replace("(", "(95% CI ", 1)
    if _finite(lo) and _finite(hi) and lo <= 0 <= hi:
        return (
            f"{within}, there is no clear evidence of a difference in how long customers in {ga} "
            f"and in {gb} stay (difference {fmt_num(diff, 1)} months, {ci[1:-1]})."
        )
    more = "longer" if diff > 0 else "shorter"
    if diff < 0:  # "shorter" carries the sign: the interval is of the magnitude (never negative)
        ci = fmt_est(-diff, -hi, -lo, kind="months", digits=1)
        ci = ci[ci.index("(") :].replace("(", "(95% CI ", 1) if "(" in ci else ""
    return (
        f"{within}, customers in {ga} stay on average {fmt_months(abs(diff), 1)} {more} than those "
        f"in {gb} {ci}; an observed difference, not an effect of the group."
    )


def sentence_logrank(res: LogrankResult, *, alpha: float = 0.05) -> str:
    """Describe the k-group log-rank test in words (the same p-value as its table)."""
    g = labels.sentence_label(res.group) if res.group else "group"
    if _finite(res.p_value) and res.p_value < alpha:
        what = f"Retention differs between {g} groups"
    else:
        what = f"No clear evidence that retention differs between {g} groups"
    return f"{what} (log-rank test, {fmt_p(res.p_value)})."


def sentence_ph(result: CoxResult, *, alpha: float = 0.05, moved: list | None = None) -> str:
    """Describe the proportional-hazards check in words, from the p-values its table shows.

    A factor "changes with tenure" when its Holm-adjusted p-value is below
    ``alpha`` (the rule of the stratified refit); a global p-value below
    ``alpha`` without such a factor is said as such; otherwise the smallest
    p-values are quoted, so no number in the table contradicts the sentence.
    """
    ph = result.ph_test
    glob = ph.loc["GLOBAL", "p_value"] if "GLOBAL" in ph.index else np.nan
    terms = ph.drop(index="GLOBAL", errors="ignore")
    terms = terms[terms["p_value"].notna()]
    if terms.empty:
        return "The check whether the hazard ratios change with tenure could not be computed."
    adj = pd.Series(holm(terms["p_value"].to_numpy()), index=terms.index)
    a = fmt_num(alpha, 2)
    k = len(terms)
    fails = result.ph_failures(alpha)
    if fails:
        names = join_words([label(c) for c in fails])
        worst = adj.min()
        txt = (
            f"The hazard ratio of {names} changes with tenure ({fmt_p(worst)} after adjusting for "
            f"{k} tests, below {a}; global test {fmt_p(glob)}), so a single hazard ratio is an "
            "average over tenure."
        )
        if moved:
            txt += (
                f" The model was refitted with {join_words([label(c) for c in moved])} as strata "
                "(a separate baseline for each level); the other hazard ratios come from that refit."
            )
        return txt
    smallest = terms["p_value"].idxmin()
    p_min, p_adj = terms.loc[smallest, "p_value"], adj.loc[smallest]
    if _finite(glob) and glob < alpha:
        return (
            f"The global test suggests that the hazard ratios change with tenure ({fmt_p(glob)}, "
            f"below {a}), although no single factor does after adjusting for {k} tests (smallest: "
            f"{fmt_p(p_adj)} after adjustment); read each hazard ratio as an average over tenure."
        )
    if p_min < alpha:
        return (
            f"No factor's hazard ratio clearly changes with tenure once the {k} tests are adjusted "
            f"for multiple testing: the smallest, {label(smallest)}, has {fmt_p(p_min)} on its "
            f"own but {fmt_p(p_adj)} after adjustment (global test {fmt_p(glob)})."
        )
    return (
        "No clear evidence that the hazard ratios change with tenure (global test "
        f"{fmt_p(glob)}; smallest single test {fmt_p(p_min)})."
    )


def sentence_cif(cif: pd.DataFrame, *, early: float, late: float) -> str:
    """Say which churn reason is most common early and late, from the shares its table shows.

    "Most common" is read off the cumulative shares at each horizon (the
    numbers of :func:`cif_table`); the reason that adds the most between the
    two horizons is named as such, so the sentence never reads against the table.
    """
    at = cif_at(cif, [early, late]).dropna(subset=["cif"])
    e = at[at.horizon == early].set_index("cause")
    lt = at[at.horizon == late].set_index("cause")
    if e.empty or lt.empty:
        return "Too few churn events with a recorded reason to compare reasons."
    top_e = most_common(e["cif"].to_dict())
    top_l = most_common(lt["cif"].to_dict())
    if "(tied)" in top_e or "(tied)" in top_l:
        return (
            f"Reasons for leaving are tied by {_h(early)} or {_h(late)}; the table gives each "
            "reason's share."
        )

    def share(frame, cause):
        r = frame.loc[cause]
        return f"{fmt_value(r['cif'], 'pct')} of customers, 95% CI {fmt_value(r['ci_lower'], 'pct')}\u2013{fmt_value(r['ci_upper'], 'pct')}"

    q = {k: value_label(k) for k in set(e.index) | set(lt.index)}
    txt = f"\u201c{q[top_e][:1].upper()}{q[top_e][1:]}\u201d is the most common reason for leaving in the first {_h(early)} ({share(e, top_e)})"
    if top_l == top_e:
        txt += f" and is still the most common by {_h(late)} ({share(lt, top_l)})"
    else:
        txt += f"; by {_h(late)} \u201c{q[top_l]}\u201d is the most common ({share(lt, top_l)})"
    added = (lt["cif"] - e["cif"].reindex(lt.index).fillna(0)).dropna()
    top_add = most_common(added.to_dict())
    if top_add and "(tied)" not in top_add and top_add != top_l:
        txt += (
            f"; most of those leaving between {_h(early)} and {_h(late)} cite \u201c{q[top_add]}\u201d "
            f"({fmt_value(added[top_add], 'pct')} of customers in that period)"
        )
    return txt + "."


def sentence_hazard_peak(haz: pd.DataFrame, *, unit: str = "month") -> str:
    """Name the tenure with the highest smoothed churn rate, from :func:`hazard_over_tenure`."""
    pk = _peak(haz)
    if pk is None:
        return "Too few churn events to describe how the churn rate changes with tenure."
    top, low = pk
    head, ci = _split(
        fmt_est(top["hazard_smooth"], top["smooth_ci_lower"], top["smooth_ci_upper"], kind="pct")
    )
    return (
        f"Customers are most likely to leave in {unit}s {fmt_num(top['start'], 0)}\u2013"
        f"{fmt_num(top['end'], 0)} of their tenure: {head} of those still active leave per {unit}"
        f"{ci}, against {fmt_value(low['hazard_smooth'], 'pct')} at the lowest ({unit}s "
        f"{fmt_num(low['start'], 0)}\u2013{fmt_num(low['end'], 0)})."
    )


def sentence_cohorts(matrix: pd.DataFrame, *, period: int = 6, unit: str = "month") -> str:
    """Give the range across acquisition cohorts of the share still a customer ``period`` periods in."""
    if matrix is None or matrix.empty or period not in matrix.columns:
        return "Too few cohorts with enough follow-up to compare retention by cohort."
    col = matrix[period].dropna()
    if col.empty:
        return "Too few cohorts with enough follow-up to compare retention by cohort."
    if len(col) == 1:
        kept = fmt_value(col.iloc[0], "pct", digits=0)
        return f"The one cohort with {period} {unit}s of follow-up keeps {kept} of its customers."
    lo, hi = col.idxmin(), col.idxmax()
    return (
        f"{period} {unit}s after acquisition, the {len(col)} cohorts keep between "
        f"{fmt_value(col[lo], 'pct', digits=0)} ({_cohort(lo, unit)}) and "
        f"{fmt_value(col[hi], 'pct', digits=0)} ({_cohort(hi, unit)}) of their customers."
    )


def _cohort(start, unit: str) -> str:
    """A cohort by its period: "Jun 2025" for months (and longer), "week of 2 Jun 2025" for weeks."""
    return f"week of {fmt_date(start)}" if unit == "week" else fmt_date(start, month=True)


def sentence_left_truncation(n_left_truncated: int, n_total: int) -> str:
    """State how many customers entered the data late and how they were handled."""
    if not n_left_truncated:
        return "All customers are observed from signup."
    return (
        f"{n_left_truncated:,} of {n_total:,} customers signed up before the data window; "
        "they count only from their tenure at the window start (late entry), so long-standing "
        "customers do not inflate retention."
    )


def sentence_one_time(result: RetentionResult) -> str:
    """Report one-time buyers as their own figure: who never bought again, how soon others returned."""
    o = result.one_time
    if o is None or not o.n_observable:
        return "Too few customers are old enough to tell whether they bought again."
    head, ci = _split(_pct_ci(o.share, o.ci_lower, o.ci_upper))
    txt = (
        f"{head} of new customers never bought again{ci}: {o.n_one_time:,} of the {o.n_observable:,} whose first purchase was more than "
        f"{o.inactivity_days} days before {fmt_date(result.as_of)}."
    )
    if o.n_returned and _finite(o.return_median):
        ret = _ci_words(
            fmt_est(o.return_median, o.return_ci_lower, o.return_ci_upper, kind="months", digits=1)
        )
        txt += f" Those who came back made their second purchase after a median of {ret}."
    return txt


# ----------------------------------------------------------------------------
# Verdict, tiles and section findings
# ----------------------------------------------------------------------------


def _median_text(med) -> str:
    return _ci_words(fmt_est(med["median"], med.ci_lower, med.ci_upper, kind="months", digits=1))


def _median_row(result):
    return _row(result.median, result.group or "group", _ALL)


def _peak(haz):
    """Return the (top, lowest) smoothed churn rates among months with 20+ (and 10%+) at risk."""
    if not _ok(haz):
        return None
    enough = haz.at_risk_start >= max(20, 0.1 * haz.at_risk_start.max())
    h = haz[haz.hazard_smooth.notna() & (haz.exposure > 0) & enough]
    if h.empty or not (h.hazard_smooth > 0).any():
        return None
    return h.loc[h.hazard_smooth.idxmax()], h.loc[h.hazard_smooth.idxmin()]


def _peak_phrase(result) -> str:
    pk = _peak(result.hazard)
    if pk is None:
        return ""
    a, b, rate = fmt_num(pk[0]["start"], 0), fmt_num(pk[0]["end"], 0), pk[0]["hazard_smooth"]
    return f"the risk of leaving is highest in months {a}\u2013{b} of tenure ({fmt_value(rate, 'pct')} a month)"


def verdict(result: RetentionResult) -> list[str]:
    """Answer "how long do customers stay, and when do they leave?" in at most two sentences."""
    who = _who(result)
    med = _median_row(result)
    peak = _peak_phrase(result)
    if result.population == "repeat customers" and result.one_time is not None:
        o = result.one_time
        first = sentence_one_time(result).split(":")[0]
        if med is not None and _finite(med["median"]):
            m = _median_text(med)
            first += (
                f"; those who came back kept buying for a median of {m} after their first purchase."
            )
        else:
            first += "."
        second = (
            f"A customer counts as lost after {o.inactivity_days} days without a purchase; "
            f"{fmt_value(result.n_active / result.n, 'pct', digits=0) if result.n else 'n/a'} of all "
            f"customers were still buying on {fmt_date(result.as_of)}"
        )
        second += f", and {peak}." if peak else "."
        return [first, second]
    if med is None:
        return ["How long customers stay could not be estimated on this data."]
    if _finite(med["median"]):
        m = _median_text(med)
        first = f"Half of {who} leave within {m}"
    else:
        first = (
            f"More than half of {who} are still active after {_h(round(float(med['max_time'])))} of "
            "follow-up"
        )
    h = _mid_horizon(result, float(med["max_time"]))
    sa = _row(result.survival_at, result.group or "group", _ALL, h) if h is not None else None
    if sa is not None and _finite(sa["survival"]):
        head, ci = _split(_pct_ci(sa["survival"], sa["ci_lower"], sa["ci_upper"]))
        first += f", and {head} are still active after {_h(h)}{ci}"
    first += "."
    second = (peak[:1].upper() + peak[1:] + ".") if peak else ""
    return [first, second] if second else [first]


def tiles(result: RetentionResult, *, display) -> list[dict]:
    """Return the report's key-figure tiles (3-5), built with ``display.tile``."""
    specs = []  # (name, value, kind, lo, hi, digits, note)
    med, who = _median_row(result), _who(result)
    repeat = result.population == "repeat customers"
    o = result.one_time
    if repeat and o is not None:
        note = f"{o.n_one_time:,} of {o.n_observable:,} new customers"
        specs.append(("Never bought again", o.share, "pct", o.ci_lower, o.ci_upper, 0, note))
        if _finite(o.return_median):
            note = f"median of the {o.n_returned:,} who came back"
            lo, hi = o.return_ci_lower, o.return_ci_upper
            specs.append(("Time to second purchase", o.return_median, "months", lo, hi, 1, note))
    if med is not None:
        name = "Median tenure of repeat buyers" if repeat else "Median tenure"
        if _finite(med["median"]):
            note = f"half of {who} have left by then"
            specs.append((name, med["median"], "months", med["ci_lower"], med["ci_upper"], 1, note))
        else:
            note = f"over half of {who} still active after {_h(round(float(med['max_time'])))}"
            specs.append((name, "not reached", "number", None, None, None, note))
        h = _mid_horizon(result, float(med["max_time"]))
        sa = _row(result.survival_at, result.group or "group", _ALL, h) if h is not None else None
        if sa is not None and _finite(sa["survival"]):
            lo, hi, note = sa["ci_lower"], sa["ci_upper"], f"share of {who}"
            specs.append((f"Still active after {_h(h)}", sa["survival"], "pct", lo, hi, 0, note))
    if repeat and result.n:
        days = f"the last {result.inactivity_days} days to {fmt_date(result.as_of)}"
        note = f"of all {result.n:,} customers: bought in {days}"
        specs.append(
            (
                "Share of customers still buying",
                result.n_active / result.n,
                "pct",
                None,
                None,
                0,
                note,
            )
        )
    elif _ok(result.rmst_all) and len(result.rmst_all):
        r = result.rmst_all.iloc[0]
        name = f"Average months retained in the first {_h(result.rmst_horizon)}"
        lo, hi = r["ci_lower"], r["ci_upper"]
        specs.append((name, r["rmst"], "months", lo, hi, 1, "restricted mean tenure"))
    return [
        display.tile(n, v, kind=k, lo=lo, hi=hi, digits=d, note=note)
        for n, v, k, lo, hi, d, note in specs[:6]
    ]


def frame_note(result: RetentionResult, *, window_start=None) -> str:
    """Say who is counted and how churn is defined (one short paragraph under the tiles)."""
    parts = []
    since = f" (data from {fmt_date(window_start)})" if window_start is not None else ""
    counted = (
        f"Counted: all {count_phrase(result.n, 'customer')} as of {fmt_date(result.as_of)}{since}"
    )
    if result.definition == "inactivity":
        days = result.inactivity_days
        parts.append(
            f"{counted}; a customer counts as lost after {days} days without a purchase, dated "
            "at the last purchase."
        )
        if result.population == "repeat customers":
            parts.append(
                f"Tenure figures describe the {result.n_population:,} customers who bought again"
                + (
                    f" and can be followed; {result.n_population_too_recent:,} more started too "
                    f"recently to follow (a lapse shows only after {result.inactivity_days} days)."
                    if result.n_population_too_recent
                    else "."
                )
                + " One-time buyers \u201cleave\u201d on the day of their first purchase and are "
                "reported separately."
            )
    else:
        parts.append(
            f"{counted}; a customer is lost on their contract end date; "
            f"{result.n_events:,} have left."
        )
    if result.n_left_truncated:
        parts.append(sentence_left_truncation(result.n_left_truncated, result.n))
    return " ".join(parts)


def _cox_top(result: RetentionResult, hidden=()):
    fit = result.cox_shown
    if fit is None:
        return None, []
    cat = fit.summary[fit.summary.level.notna()]
    cat = cat[~cat.level.astype(str).isin({str(h) for h in hidden})]
    return fit, list(cat.sort_values("p_value").index)


def _groups_finding(
    result: RetentionResult, diffs: pd.DataFrame | None, alpha: float = 0.05
) -> str:
    """The group comparison in words: the overall test first, then a pair only if it stands.

    With many groups the largest of many pairwise differences is a multiple-comparison
    artefact unless it survives a Holm correction over every pair compared, and a pair is
    never put forward when the overall log-rank test finds no difference.
    """
    overall = sentence_logrank(result.logrank, alpha=alpha) if _ok(result.logrank) else ""
    if diffs is None or not len(diffs):
        return overall
    if len(diffs) > 1 or overall:
        p = diffs["p_value"].to_numpy(dtype=float)
        ok = np.isfinite(p)
        adj = np.full(len(p), np.nan)
        if ok.any():
            adj[ok] = holm(p[ok])
        significant = diffs[np.nan_to_num(adj, nan=1.0) < alpha]
        overall_ok = not _ok(result.logrank) or (
            _finite(result.logrank.p_value) and result.logrank.p_value < alpha
        )
        if significant.empty or not overall_ok:
            return overall or sentence_rmst_difference(
                diffs.loc[diffs.rmst.abs().idxmax()], group=result.group
            )
        diffs = significant
    top = diffs.loc[diffs.rmst.abs().idxmax()]
    pair = sentence_rmst_difference(top, group=result.group)
    return f"{overall} {pair}".strip()


def section_findings(result: RetentionResult, *, hidden=()) -> dict[str, str]:
    """Return the one-sentence finding of each body section that can be shown.

    Keys: "one_time", "curves", "hazard", "groups", "cox", "cif".
    """
    out: dict[str, str] = {}
    who = _who(result)
    if result.one_time is not None:
        out["one_time"] = sentence_one_time(result)
    med = _median_row(result)
    if med is not None:
        out["curves"] = sentence_median(med, who=who, digits=1)
    if _ok(result.hazard):
        out["hazard"] = sentence_hazard_peak(result.hazard)
    if result.group:
        diffs = result.rmst[(result.rmst.kind == "difference")] if _ok(result.rmst) else None
        if diffs is not None:
            diffs = diffs[diffs.rmst.notna() & (diffs.se > 0)]
            diffs = diffs[~diffs[result.group].isin(set(hidden))]
        out["groups"] = _groups_finding(result, diffs)
    fit, terms = _cox_top(result, hidden)
    if fit is not None:
        out["cox"] = (
            sentence_hazard_ratio(fit, terms[0])
            if terms
            else (sentence_hazard_ratio(fit, fit.summary.index[0]) if len(fit.summary) else "")
        )
    if _ok(result.cif) and len(result.cif):
        early = float(result.horizons[0]) if result.horizons else 3.0
        out["cif"] = sentence_cif(result.cif, early=early, late=float(result.rmst_horizon))
    return {k: v for k, v in out.items() if v}


def findings(result: RetentionResult, *, hidden=()) -> list[str]:
    """Write the findings of the retention report (at most six sentences).

    One-time buyers (inactivity churn), median tenure, share still active at a
    middle horizon, the two most significant hazard ratios, the largest RMST
    difference, the reasons for leaving and a proportional-hazards warning,
    each where the data allow it.
    """
    sf = section_findings(result, hidden=hidden)
    sent = [sf[k] for k in ("one_time", "curves") if k in sf]
    med = _median_row(result)
    h = _mid_horizon(result, float(med["max_time"])) if med is not None else None
    row = _row(result.survival_at, result.group or "group", _ALL, h) if h is not None else None
    if row is not None:
        sent.append(sentence_survival_at(row, who=_who(result)))
    fit, terms = _cox_top(result, hidden)
    sent += [sentence_hazard_ratio(fit, t) for t in terms[:2]]
    sent += [sf[k] for k in ("groups", "cif") if k in sf]
    if isinstance(result.cox, CoxResult) and result.cox.ph_failures(result.ph_alpha):
        sent.append(sentence_ph(result.cox, alpha=result.ph_alpha, moved=result.moved_to_strata))
    return sent[:6]


def skipped_sections(result: RetentionResult) -> list[Skipped]:
    """Return every section of the result that could not be estimated."""
    names = "km_all rmst_all rmst logrank hazard cox ph_table concordance cif".split()
    found = [getattr(result, n) for n in names]
    found.append(result.one_time.returned_by if result.one_time is not None else None)
    skipped = [v for v in found if is_skipped(v)]
    return [v for i, v in enumerate(skipped) if all(v is not w for w in skipped[:i])]


def notes(result: RetentionResult) -> list[str]:
    """Write the notes of the retention report: what was pooled, left out or not estimated."""
    out: list[str] = []
    group, mgs = result.requested_group, result.min_group_size
    g = label(group) if group else ""
    together = "retention is shown for all customers together"
    why = {
        "missing": f"The data has no {g} column; {together}.",
        "empty": f"{g} is not recorded for any customer; {together}.",
        "single": f"Only one {g} group is large enough to show; {together}.",
    }
    if result.group_note in why:
        out.append(why[result.group_note])
    if result.suppressed_groups:
        n = len(result.suppressed_groups)
        txt = (
            f"{count_phrase(n, f'{labels.sentence_label(group)} group')} with fewer than {mgs} "
            "customers each are not shown separately"
        )
        if result.group and not result.n_group_unshown:
            txt += " (pooled as \u201cother (small groups)\u201d)"
        out.append(txt + "; their customers count in every total.")
    if result.skipped_covariates:
        out.append(
            "Not in the data, so not in the model of who leaves sooner: "
            f"{join_words([label(c) for c in result.skipped_covariates])}."
        )
    for c, why in result.cox_unusable:
        if c == group and why == result.group_note:
            continue  # said once, for the group
        word = "is not recorded for any customer" if why == "empty" else "has only one value"
        out.append(f"{label(c)} {word}, so it is left out of the model of who leaves sooner.")
    for c, small in result.cox_dropped_levels:
        if c == result.group and result.suppressed_groups:
            continue
        out.append(
            f"Model of who leaves sooner: {count_phrase(len(small), 'level')} of {label(c)} with "
            f"fewer than {mgs} customers pooled."
        )
    if result.cause_missing:
        out.append("No churn reasons are recorded for this churn definition, so none are shown.")
    return out


# ----------------------------------------------------------------------------
# Tables (body: compact; appendix: complete)
# ----------------------------------------------------------------------------


def survival_table(result: RetentionResult, *, frame=None) -> pd.DataFrame:
    """Return groups x horizons of "share still active (95% CI)" (one cell each)."""
    sa = result.survival_at if frame is None else frame
    gcol = result.group or "group" if frame is None else "group"
    if not _ok(sa):
        return pd.DataFrame()
    sa = sa.assign(cell=_cells(sa.survival, sa.ci_lower, sa.ci_upper, "pct", 0, _SHORT))
    wide = sa.pivot_table(index=gcol, columns="horizon", values="cell", aggfunc="first", sort=False)
    wide.columns = [_h(h) for h in wide.columns]
    return wide.reset_index()


def median_table(result: RetentionResult, *, frame=None) -> pd.DataFrame:
    """Return group, customers, churn events, median tenure (95% CI), longest follow-up."""
    med = result.median if frame is None else frame
    if not _ok(med):
        return pd.DataFrame()
    gcol = (result.group or "group") if frame is None else "group"
    return pd.DataFrame(
        {
            gcol: med[gcol],
            "n": med["n"],
            "events": med["events"],
            "median_ci": _cells(med["median"], med.ci_lower, med.ci_upper, "months", 1, _NR),
            "max_time": [fmt_num(x, 1) for x in med["max_time"]],
        }
    )


def group_table(result: RetentionResult) -> pd.DataFrame:
    """Return the body's group table: customers, median tenure, share still active, average months.

    One row per shown group plus the "all customers" row (every customer).
    """
    if not _ok(result.median):
        return pd.DataFrame()
    gcol = result.group or "group"
    med = median_table(result)
    out = med[[gcol, "n", "median_ci"]].copy()
    if _ok(result.rmst) or _ok(result.rmst_all):
        est = {}
        if _ok(result.rmst_all) and len(result.rmst_all):
            r = result.rmst_all.iloc[0]
            est[_ALL] = fmt_est(r["rmst"], r["ci_lower"], r["ci_upper"], kind="months", digits=1)
        if _ok(result.rmst) and result.group:
            for _, r in result.rmst[result.rmst.kind == "estimate"].iterrows():
                est[r[result.group]] = fmt_est(
                    r["rmst"], r["ci_lower"], r["ci_upper"], kind="months", digits=1
                )
        out[f"Average months retained in the first {_h(result.rmst_horizon)} (95% CI)"] = [
            est.get(g, "") for g in out[gcol]
        ]
    return out


def rmst_table(result: RetentionResult) -> pd.DataFrame:
    """Return every restricted-mean row (estimates, differences and ratios between groups) formatted."""
    parts = []
    if _ok(result.rmst_all):
        parts.append(result.rmst_all.assign(**{result.group or "group": _ALL}))
    if _ok(result.rmst):
        parts.append(result.rmst)
    if not parts:
        return pd.DataFrame()
    rm = pd.concat(parts, ignore_index=True)
    gcol = result.group or "group"
    out = pd.DataFrame(
        {
            "comparison": rm[gcol].astype(str).str.replace(" - ", " vs ", regex=False),
            "kind": rm["kind"].map({"estimate": "Average", "difference": "Difference"}),
            "rmst_ci": _cells(rm.rmst, rm.ci_lower, rm.ci_upper, "months", 1, "not estimable"),
            "p_value": [fmt_p(p) if _finite(p) else "" for p in rm.p_value],
            "n": rm["n"],
        }
    )
    if "ratio" in rm.columns:
        out["rmst_ratio"] = _cells(rm.ratio, rm.ratio_ci_lower, rm.ratio_ci_upper, "ratio")
    out[gcol] = rm[gcol]  # kept for suppression (hidden groups), dropped by the caller's view
    return out


def logrank_tables(res: LogrankResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the log-rank observed/expected table and the pairwise tests, p-values formatted."""
    t, pw = res.table, res.pairwise
    tab = t.assign(**{c: [fmt_num(x, 1) for x in t[c]] for c in ("observed", "expected") if c in t})
    fmts = {"p_value": fmt_p, "p_holm": fmt_p, "statistic": lambda x: fmt_num(x, 2)}
    return tab, pw.assign(**{c: [f(x) for x in pw[c]] for c, f in fmts.items() if c in pw})


def cox_table(fit: CoxResult) -> pd.DataFrame:
    """Return the term-level Cox output: factor, level, compared with, hazard ratio (95% CI), p-value."""
    s = fit.summary
    return pd.DataFrame(
        {
            "factor": [label(c) for c in s.covariate],
            "level": ["per unit" if _is_missing(v) else str(v) for v in s.level],
            "reference": [
                str(fit.reference_levels.get(c, "")) if not _is_missing(v) else ""
                for c, v in zip(s.covariate, s.level, strict=True)
            ],
            "hazard_ratio_ci": _cells(s.hazard_ratio, s.ci_lower, s.ci_upper, "ratio"),
            "p_value": [fmt_p(p) for p in s.p_value],
        }
    )


def reference_caption(fit: CoxResult) -> str:
    """Return the reference levels in words: "Segment: consumer; Value tier: medium"."""
    return "; ".join(level_label(k, v) for k, v in fit.reference_levels.items())


def ph_table(result: RetentionResult) -> pd.DataFrame:
    """Return the proportional-hazards tests as shown: factor, chi-square, df, p, Holm-adjusted p."""
    ph = result.ph_table
    if not _ok(ph):
        return pd.DataFrame()
    return pd.DataFrame(
        {
            "term": [
                "All factors together (global)" if t == "GLOBAL" else label(t) for t in ph.index
            ],
            "chisq": [fmt_num(x, 2) for x in ph.chisq],
            "df": [fmt_num(x, 0) for x in ph["df"]],
            "p_value": [fmt_p(p) for p in ph.p_value],
            "p_holm": [fmt_p(p) if _finite(p) else "" for p in ph.p_holm],
        }
    )


def model_fit_table(result: RetentionResult) -> pd.DataFrame:
    """Return the Cox model's fit: customers, events, late entries, dropped rows, concordance, log-likelihood."""
    fit = result.cox_shown
    if fit is None:
        return pd.DataFrame()
    k = result.min_group_size
    left_out = int(fit.n_dropped_missing or 0)
    # The customers left out are often a small group's pool (no shown group, so no level);
    # with the total stated elsewhere, exact counts in and out would give it back.
    few = 0 < left_out < k

    def count(n: int) -> str:
        return f"all but fewer than {k}" if few else fmt_num(n, 0)

    rows = [
        ("Customers in the model", count(fit.n)),
        ("Churn events", count(fit.n_events)),
        ("Entered late (signed up before the window)", fmt_num(fit.n_left_truncated, 0)),
        (
            "Left out: in no group shown, or a factor not recorded",
            f"fewer than {k}" if few else fmt_num(left_out, 0),
        ),
        ("Factors", join_words([label(c) for c in fit.spec.get("covariates", [])])),
        (
            "Strata (own baseline per level)",
            join_words([label(c) for c in fit.spec.get("strata", [])]) or "none",
        ),
        ("Log partial likelihood", fmt_num(fit.loglik, 1)),
        ("Converged", "yes" if fit.converged else "no"),
    ]
    if _ok(result.concordance):
        rows.append(
            ("Concordance (0.5 = chance, 1 = perfect ranking)", fmt_num(result.concordance, 3))
        )
    return pd.DataFrame(rows, columns=["quantity", "value"])


def cif_table(result: RetentionResult) -> pd.DataFrame:
    """Return reasons x horizons of "share who left for this reason (95% CI)"."""
    if not _ok(result.cif):
        return pd.DataFrame()
    tab = cif_at(result.cif, result.horizons)
    tab = tab.assign(cell=_cells(tab.cif, tab.ci_lower, tab.ci_upper, "pct", 1, _SHORT))
    tab["cause"] = tab["cause"].map(value_label)
    wide = tab.pivot_table(index="cause", columns="horizon", values="cell", aggfunc="first")
    wide.columns = [_h(h) for h in wide.columns]
    return wide.reset_index()


def one_time_table(result: RetentionResult) -> pd.DataFrame:
    """Return the one-time-buyer figures: share who never bought again, return times."""
    o = result.one_time
    if o is None:
        return pd.DataFrame()
    counted = f"{o.n_observable:,} new customers whose first purchase was over {o.inactivity_days} days ago"
    rows = [("Never bought again", _pct_ci(o.share, o.ci_lower, o.ci_upper), counted)]
    if o.n_returned and _finite(o.return_median):
        est = fmt_est(
            o.return_median, o.return_ci_lower, o.return_ci_upper, kind="months", digits=1
        )
        rows.append(
            ("Months to the second purchase (median)", est, f"{o.n_returned:,} who came back")
        )
    if _ok(o.returned_by):
        r = o.returned_by
        who = f"all {o.n_new:,} new customers (recent ones counted while observed)"
        cells = _cells(r["share"], r["ci_lower"], r["ci_upper"], "pct", 0, _SHORT)
        rows += [
            (f"Came back within {_h(h)}", c, who) for h, c in zip(r.horizon, cells, strict=True)
        ]
    return pd.DataFrame(rows, columns=["figure", "share_ci", "counted"])


def everyone_table(result: RetentionResult) -> pd.DataFrame:
    """Return the all-customer tenure figures, one-time buyers included (inactivity churn only)."""
    if not _ok(result.everyone_median) or not _ok(result.everyone_survival_at):
        return pd.DataFrame()
    wide = survival_table(result, frame=result.everyone_survival_at)
    return median_table(result, frame=result.everyone_median).merge(wide).drop(columns=["group"])


# ----------------------------------------------------------------------------
# The one-call report (numbers plus sentences), kept for existing callers
# ----------------------------------------------------------------------------


@dataclass
class RetentionReport(RetentionResult):
    """Everything the retention report shows: the study's numbers and its sentences."""

    findings: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def retention_report(lt: pd.DataFrame, **kwargs) -> RetentionReport:
    """Compute the retention (survival) report from the lifetimes table, with its sentences.

    Runs :func:`analysis.studies.retention.retention_study` (same keyword
    arguments) and adds the :func:`findings` and :func:`notes` written from its
    numbers.

    Returns
    -------
    RetentionReport
    """
    result = retention_study(lt, **kwargs)
    numbers = {f.name: getattr(result, f.name) for f in fields(RetentionResult)}
    return RetentionReport(**numbers, findings=findings(result), notes=notes(result))
