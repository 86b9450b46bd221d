"""Labels, sentences and tables of the loyalty-programme report.

The page (issue 15): :func:`verdict` answers the title question in at most two
sentences; :func:`key_tiles` gives the key figures; each body section opens with
one finding (``*_finding``) and shows at most one compact table (``*_table``);
the analysts' appendix holds the full tables (:func:`effects_full_table`,
:func:`naive_churn_table`, ...); the method prose is the notebook's own.

One unit per concept through the page: retention effects in percentage points,
spend effects in money over the outcome horizon. Every sentence comes from
:mod:`analysis.report.sentences` (the sign picks the verb; an interval that includes
no effect says "no clear evidence"; a missing number says "could not be estimated").

:func:`programme_findings` and :func:`programme_notes` write the study's findings and
caveats as plain sentences; :func:`programme_report_with_findings` is the old
``analysis.loyalty.programme_report`` (the study's result plus ``.findings``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from analysis.report import labels, page
from analysis.report.format import _is_missing, fmt_est, fmt_value
from analysis.report.sentences import count_phrase, direction, join_words
from analysis.report.sentences import effect_sentence as _effect_sentence
from analysis.report.suppression import complementary_suppression
from analysis.stats.effects import Effect
from analysis.stats.evalue import EValue
from analysis.studies.loyalty import ProgrammeReport, SequentialResult, programme_report
from analysis.studies.loyalty.descriptive import level_counts, level_sizes
from analysis.studies.sections import is_skipped

__all__ = [
    "COVARIATE_LABELS",
    "METHOD_LABELS",
    "QUANTITY_LABELS",
    "covariate_label",
    "covariates_sentence",
    "e_value_sentence",
    "effect_rows",
    "effect_sentence",
    "effects_compact_table",
    "effects_finding",
    "effects_full_table",
    "event_study_finding",
    "event_study_note",
    "headline_design",
    "heterogeneity_finding",
    "heterogeneity_table",
    "hidden_levels",
    "key_tiles",
    "landmark_finding",
    "landmark_table",
    "level_sizes",
    "points_finding",
    "post_leaving_finding",
    "profile_finding",
    "programme_findings",
    "programme_notes",
    "programme_report_with_findings",
    "register_lookback",
    "robustness_finding",
    "survival_table",
    "uptake_finding",
    "verdict",
]

# --------------------------------------------------------------------------- labels


def _covariate_labels(lookback: int = 3) -> dict[str, str]:
    m = f"{lookback} month" + ("" if lookback == 1 else "s")
    return {
        "prior_spend": f"spend in the {m} before",
        "log_prior_spend": f"log(1 + spend) in the {m} before",
        "prior_purchases": f"purchases in the {m} before",
        "tenure_months": "tenure (months)",
        "log_tenure_months": "log tenure",
        "segment": "segment",
        "value_tier": "value tier",
        "prior_nps_category": "latest NPS answer",
        "prior_tickets": f"service tickets in the {m} before",
        "history_tickets": "service tickets over the whole history",
        "history_nps_mean": "mean NPS answer over the whole history (0 if never answered)",
        "history_nps_answered": "answered an NPS survey before",
        "prior_unresolved": f"unresolved tickets in the {m} before",
        "prior_sla_breaches": f"SLA breaches in the {m} before",
    }


# Plain-language labels for stakeholder tables and plots (the code keeps the short names).
COVARIATE_LABELS = _covariate_labels(3)
METHOD_LABELS = {
    "naive": "simple comparison (not adjusted)",
    "regression": "regression adjustment",
    "ipw": "inverse-probability weighting",
    "aipw": "doubly robust (AIPW)",
}
QUANTITY_LABELS = {
    "survival_member": "Share still active: members",
    "survival_non_member": "Share still active: similar non-members",
    "survival_difference": "Share still active: difference (points)",
    "rmst_member": "Mean months active within the horizon: members",
    "rmst_non_member": "Mean months active within the horizon: similar non-members",
    "rmst_difference": "Mean months active within the horizon: difference",
}
ESTIMAND_LABELS = {
    "ATT": "on those who enrolled (ATT)",
    "ATE": "on every eligible customer-month (ATE)",
    "observational contrast": "observational contrast",
}
OUTCOME_LABELS = {"retained": "Retention", "spend": "Spend", "purchases": "Purchases"}


_REPORT_LABELS = """
points_earned: Points earned (mean)
points_redeemed: Points redeemed (mean)
months_in_programme: Months in the programme (mean)
monthly_churn_rate: Monthly churn rate
n_treated: Customers who enrolled
n_control: Comparison customers
state: Programme state
comparison: Comparison
lift: Lift
effect: Effect
enrolling: Enrolling
not_enrolling: Not enrolling
simple_comparison: Simple comparison (not adjusted)
technical_message: Technical message
adjusted_effect: Effect of enrolling (adjusted)
difference: Difference
similar_non_members: Similar non-members
landmark: Tenure at comparison
member_churn: Members: monthly churn
non_member_churn: Non-members: monthly churn
members_vs_non_members: Members / non-members
e_value: E-value
e_value_ci: E-value of the interval
churn_risk_ratio: Churn risk ratio
design: Design
"""


def _register(lookback: int = 3) -> None:
    cov = _covariate_labels(lookback)
    labels.register({k: v[:1].upper() + v[1:] for k, v in cov.items()}, replace=True)
    pairs = (line.split(": ", 1) for line in _REPORT_LABELS.strip().splitlines())
    labels.register(dict(pairs))


_register(3)


def covariate_label(name: str) -> str:
    """Plain-language label of a covariate or one of its dummy columns (lower case).

    ``"prior_spend"`` -> ``"spend in the 3 months before"``;
    ``"segment[consumer]"`` -> ``"segment: consumer"``; unknown names are returned
    with underscores as spaces.
    """
    base, sep, level = str(name).partition("[")
    label = COVARIATE_LABELS.get(base, base.replace("_", " "))
    return f"{label}: {level.rstrip(']')}" if sep else label


def hidden_levels(
    frame: pd.DataFrame,
    columns: Iterable[str],
    *,
    min_group_size: int,
    id_col: str | None = "customer_id",
    complementary: bool = False,
) -> set[str]:
    """Return the ``column[level]`` names of categorical levels with too few customers.

    The first level of each column is the reference of the dummy coding (no row
    of its own), so only the other levels are returned. With ``complementary``,
    further levels are hidden so that a hidden level cannot be worked out from
    the others and the column's total.
    """
    hidden: set[str] = set()
    for names, counts in level_counts(frame, columns, id_col=id_col).values():
        hide = counts < min_group_size
        if complementary and len(names) > 1:
            rows = np.arange(1, len(names))
            blocks = [(rows, float(counts.sum()))]
            hide = hide | complementary_suppression(counts, hide, blocks, min_group_size)
        hidden |= {n for n, h in zip(names[1:], hide[1:], strict=True) if h}
    return hidden


# --------------------------------------------------------------------------- numbers


def _ok(x) -> bool:
    return x is not None and not is_skipped(x)


def _finite(*xs) -> bool:
    return all(not _is_missing(x) and math.isfinite(float(x)) for x in xs)


def effect_rows(
    effects: pd.DataFrame | None, outcome: str, method: str = "aipw", estimand: str = "ATT"
):
    """Return one row of an effects table (a Series), or None when it is not there."""
    if effects is None or len(effects) == 0:
        return None
    if method == "naive":
        estimand = "observational contrast"
    m = effects[
        (effects["outcome"] == outcome)
        & (effects["method"] == method)
        & (effects["estimand"] == estimand)
    ]
    return None if m.empty else m.iloc[0]


def headline_design(rep: ProgrammeReport):
    """Return the design the verdict uses, ``(effects, "sequential" | "landmark L")``, or None."""
    if isinstance(rep.sequential, SequentialResult):
        return rep.sequential.effects, "sequential"
    lms = rep.estimated_landmarks()
    if lms:
        L, r = next(iter(lms.items()))
        return r.effects, f"landmark {L}"
    return None


def _months(h: int) -> str:
    return f"{h} month" + ("" if h == 1 else "s")


def _per100(x: float) -> str:
    v = abs(100 * x)
    return f"{v:.0f}" if v >= 1.5 else f"{v:.1f}"


def _est_ci(row, kind: str, digits: int, currency: str) -> str:
    """``"estimate +0.1 points, 95% CI −6.2 to 6.4"`` (no nested brackets)."""
    text = fmt_est(
        row.estimate, row.ci_lower, row.ci_upper, kind=kind, digits=digits, currency=currency
    )
    head, _, rest = text.partition(" (")
    return f"estimate {head}, 95% CI {rest[:-1]}" if rest else f"estimate {head}"


def _retention_phrase(row, horizon: int) -> str:
    """'keeps about 3 more customers in 100 over 6 months (95% CI 2 to 4)' and its mirror."""
    if row is None or not _finite(row.estimate):
        return ""
    d = direction(row.estimate, row.ci_lower, row.ci_upper)
    if d == "unclear":
        return (
            f"shows no clear effect on how many customers stay over {_months(horizon)} "
            f"({_est_ci(row, 'pp', 1, 'EUR')})"
        )
    if d == "none":
        return f"leaves the share of customers still there after {_months(horizon)} unchanged"
    a, b = sorted((abs(row.ci_lower), abs(row.ci_upper)))
    more = "more" if d == "up" else "fewer"
    return (
        f"keeps about {_per100(row.estimate)} {more} customers in 100 over {_months(horizon)} "
        f"(95% CI {_per100(a)} to {_per100(b)})"
    )


def _spend_phrase(row, horizon: int, currency: str, *, say_horizon: bool = True) -> str:
    if row is None or not _finite(row.estimate):
        return ""
    d = direction(row.estimate, row.ci_lower, row.ci_upper)
    if d == "unclear":
        return f"shows no clear effect on spend ({_est_ci(row, 'money', 0, currency)})"
    if d == "none":
        return "leaves spend unchanged"
    a, b = sorted((abs(row.ci_lower), abs(row.ci_upper)))
    money = fmt_value(abs(row.estimate), "money", digits=0, currency=currency)
    ci = fmt_est(a, a, b, kind="money", digits=0, currency=currency)
    ci = ci[ci.index("(") + 1 : -1] if "(" in ci else ""
    verb = "adds" if d == "up" else "takes away"
    tail = f" (95% CI {ci})" if ci else ""
    over = f" over {_months(horizon)}" if say_horizon else ""
    return f"{verb} about {money} in spend per customer{over}{tail}"


def _times(r: float) -> str:
    words = {2: "twofold", 3: "threefold", 4: "fourfold", 5: "fivefold", 6: "sixfold"}
    k = round(r)
    return words.get(k, f"about {r:.0f} times")


def _overstatement(effects: pd.DataFrame, currency: str) -> str:
    """How the simple member vs non-member comparison compares with the adjusted effect."""
    best = None
    for y, what in (("spend", "spend effect"), ("retained", "retention effect")):
        adj, naive = effect_rows(effects, y), effect_rows(effects, y, "naive")
        if adj is None or naive is None or not _finite(adj.estimate, naive.estimate):
            continue
        if direction(adj.estimate, adj.ci_lower, adj.ci_upper) != "up" or naive.estimate <= 0:
            continue
        r = naive.estimate / adj.estimate
        if best is None or abs(math.log(r)) > abs(math.log(best[0])):
            best = (r, what)
    if best is None:
        return ""
    r, what = best
    if r >= 1.5:
        return f"the simple member vs non-member comparison overstates the {what} {_times(r)}"
    if r <= 1 / 1.5:
        return f"the simple member vs non-member comparison understates the {what}"
    return f"the simple member vs non-member comparison gives a similar {what}"


_LIMITS = "observational: customers were not randomly enrolled, so differences nobody measured could still explain part of it"


def verdict(rep: ProgrammeReport) -> str:
    """Answer the title question in at most two sentences, with numbers and the design's limits."""
    if not rep.available:
        return (
            "This data cannot answer the question: it has no loyalty programme table (who "
            "enrolled and when), so members cannot be told apart from other customers."
        )
    h, cur = rep.horizon_months, rep.currency
    head = headline_design(rep)
    if head is None:
        reasons = [
            s.reason
            for s in rep.skipped_sections()
            if "enrol" in s.section.lower() or "tenure" in s.section.lower()
        ]
        why = (
            reasons[0].rstrip(".")
            if reasons
            else "too few members and non-members could be compared"
        )
        return f"This data cannot yet say whether the programme works: {why[:1].lower() + why[1:]}."
    effects, design = head
    ret, sp = effect_rows(effects, "retained"), effect_rows(effects, "spend")
    dirs = [
        direction(r.estimate, r.ci_lower, r.ci_upper)
        for r in (ret, sp)
        if r is not None and _finite(r.estimate)
    ]
    if not dirs:
        return "The programme's effect could not be estimated with this data."
    if "up" in dirs and "down" not in dirs:
        modest = (
            ret is not None
            and _finite(ret.estimate)
            and abs(ret.estimate) < 0.05
            and (sp is None or not _finite(sp.ratio) or sp.ratio < 1.2)
        )
        answer = ("Yes, modestly" if modest else "Yes") if set(dirs) == {"up"} else "Partly"
    elif "down" in dirs and "up" not in dirs:
        answer = "No"
    elif "up" in dirs and "down" in dirs:
        answer = "Mixed"
    else:
        answer = "Not clearly"
    rp = _retention_phrase(ret, h)
    phrases = [p for p in (rp, _spend_phrase(sp, h, cur, say_horizon=not rp)) if p]
    subject = (
        "enrolling"
        if design == "sequential"
        else f"being a member at {design.split()[1]} months of tenure"
    )
    first = f"{answer}: {subject} {join_words(phrases)}."
    over = _overstatement(effects, cur)
    second = (
        (over[:1].upper() + over[1:] + "; " + _LIMITS + ".")
        if over
        else (_LIMITS[:1].upper() + _LIMITS[1:] + ".")
    )
    return f"{first} {second}"


def _latest_share(up) -> tuple[float, str]:
    if not isinstance(up, pd.DataFrame) or up.empty:
        return float("nan"), ""
    u = up.dropna(subset=["member_share"])
    if u.empty:
        return float("nan"), ""
    last = u.iloc[-1]
    return float(last["member_share"]), pd.Timestamp(last["month"]).strftime("%B %Y")


def key_tiles(rep: ProgrammeReport) -> list[dict]:
    """Return the report's key-figure tiles (3 to 5); each is also an index headline."""
    if not rep.available:
        return []
    h, cur = rep.horizon_months, rep.currency
    out = []
    head = headline_design(rep)
    if head is not None:
        effects, design = head
        what = "enrolling" if design == "sequential" else "membership"
        specs = (
            ("retained", "aipw", f"Retention effect of {what}", "pp", "more customers per 100 "),
            ("spend", "aipw", f"Spend effect of {what}", "money", "per customer "),
            ("spend", "naive", "Unadjusted spend gap", "money", "members vs non-members, "),
        )
        for y, method, name, kind, note in specs:
            r = effect_rows(effects, y, method)
            if r is None:
                continue
            note += f"still active after {_months(h)} (adjusted)" if y == "retained" else ""
            note += f"over {_months(h)} (adjusted)" if method != "naive" and y == "spend" else ""
            note += "observational, not an effect" if method == "naive" else ""
            ci = {} if method == "naive" else {"lo": r.ci_lower, "hi": r.ci_upper}
            dig = 0 if kind == "money" else None
            out.append(
                page.tile(name, r.estimate, kind=kind, digits=dig, currency=cur, note=note, **ci)
            )
    share, month = _latest_share(rep.uptake)
    if _finite(share):
        out.append(
            page.tile("Members among active customers", share, kind="pct", note=f"end of {month}")
        )
    sq = rep.sequential
    if isinstance(sq, SequentialResult):
        note = f"in {sq.n_trials} monthly comparisons"
        out.append(page.tile("Enrolments compared", sq.n_enrolments, kind="count", note=note))
    elif isinstance(rep.uptake, pd.DataFrame) and len(rep.uptake):
        n = int(rep.uptake["enrolments"].sum())
        out.append(page.tile("Enrolments in the window", n, kind="count"))
    return out[:6]


# --------------------------------------------------------------------------- findings


def covariates_sentence(covariates: Sequence[str]) -> str:
    """Name exactly the covariates a design adjusted for (log variants folded into their base)."""
    names = []
    for c in covariates:
        base = {"log_prior_spend": "prior_spend", "log_tenure_months": "tenure_months"}.get(c, c)
        lab = covariate_label(base)
        if lab not in names:
            names.append(lab)
    if not names:
        return "No factor could be adjusted for: the comparison is not adjusted."
    return f"Adjusted for {join_words(names)}."


def effects_finding(rep: ProgrammeReport) -> str:
    """The effects section's finding: retention and spend, sign-aware."""
    head = headline_design(rep)
    if head is None:
        return ""
    effects, design = head
    h, cur = rep.horizon_months, rep.currency
    subj = (
        "Enrolling"
        if design == "sequential"
        else f"Being a member at {design.split()[1]} months of tenure"
    )
    out = []
    ret, sp = effect_rows(effects, "retained"), effect_rows(effects, "spend")
    if ret is not None:
        out.append(
            _effect_sentence(
                subj, f"{h}-month retention", ret.estimate, ret.ci_lower, ret.ci_upper, kind="pp"
            )
        )
    if sp is not None:
        out.append(
            _effect_sentence(
                subj,
                f"spend per customer over {_months(h)}",
                sp.estimate,
                sp.ci_lower,
                sp.ci_upper,
                kind="money",
                digits=0,
                currency=cur,
            )
        )
    return " ".join(out)


def effects_compact_table(rep: ProgrammeReport) -> pd.DataFrame:
    """Outcome | simple comparison | effect of enrolling (adjusted): one row per outcome."""
    head = headline_design(rep)
    if head is None:
        return pd.DataFrame()
    effects, _ = head
    h, cur = rep.horizon_months, rep.currency
    rows = []
    for y, what, kind in (
        ("retained", f"Retention after {_months(h)}", "pp"),
        ("spend", f"Spend over {_months(h)}", "money"),
        ("purchases", f"Purchases over {_months(h)}", "number"),
    ):
        adj, naive = effect_rows(effects, y), effect_rows(effects, y, "naive")
        if adj is None:
            continue
        dig = 0 if kind == "money" else 1
        rows.append(
            {
                "outcome": what,
                "simple_comparison": fmt_value(naive.estimate, kind, digits=dig, currency=cur)
                if naive is not None
                else "n/a",
                "adjusted_effect": fmt_est(
                    adj.estimate, adj.ci_lower, adj.ci_upper, kind=kind, digits=dig, currency=cur
                ),
            }
        )
    return pd.DataFrame(rows)


def effects_full_table(
    effects: pd.DataFrame, *, currency: str = "EUR", landmark=None
) -> pd.DataFrame:
    """Every outcome, estimator and estimand in one table (analysts' appendix)."""
    est_labels = dict(ESTIMAND_LABELS)
    if landmark is not None:
        est_labels["ATE"] = f"on everyone active at {landmark} months of tenure (ATE)"
        est_labels["ATT"] = "on the members (ATT)"
    rows = []
    for r in effects.itertuples():
        kind = {"retained": "pp", "spend": "money"}.get(r.outcome, "number")
        rows.append(
            {
                "outcome": OUTCOME_LABELS.get(r.outcome, labels.label(r.outcome)),
                "method": METHOD_LABELS.get(r.method, r.method),
                "estimand": est_labels.get(r.estimand, r.estimand),
                "effect": fmt_est(
                    r.estimate,
                    r.ci_lower,
                    r.ci_upper,
                    kind=kind,
                    digits=0 if kind == "money" else 1,
                    currency=currency,
                ),
                "lift": fmt_est(
                    r.ratio, r.ratio_ci_lower, r.ratio_ci_upper, kind="ratio", digits=3
                ),
            }
        )
    return pd.DataFrame(rows)


def profile_finding(profile: pd.DataFrame, *, lookback: int = 3) -> str:
    """Say how enrolling customers differed before joining (largest standardised difference)."""
    if profile is None or profile.empty or "smd" not in profile:
        return ""
    p = profile.dropna(subset=["smd"])
    p = p[[not str(i).startswith("log_") for i in p.index]]  # the plain measure says the same
    if p.empty:
        return ""
    top = p.reindex(p["smd"].abs().sort_values(ascending=False).index).iloc[0]
    if abs(top["smd"]) < 0.1:
        return "Customers who enrol looked much like the others before joining: no measured factor differs by more than a tenth of a standard deviation."
    a, b = top.iloc[0], top.iloc[1]
    if "[" in str(top.name):  # a category level: shares
        col, _, level = str(top.name).partition("[")
        what = (
            f"{fmt_value(a, 'pct', digits=0)} of them had {covariate_label(col)} "
            f"{level.rstrip(']')}, against {fmt_value(b, 'pct', digits=0)} of other customers"
        )
    else:
        more = "higher" if top["smd"] > 0 else "lower"
        what = (
            f"they had {more} {covariate_label(top.name)} than other customers "
            f"({fmt_value(a, 'number', digits=2)} vs {fmt_value(b, 'number', digits=2)})"
        )
    return (
        f"Customers who join are not typical: before joining, {what}, which is why a simple "
        "member vs non-member comparison misleads."
    )


def uptake_finding(rep: ProgrammeReport) -> str:
    """Members' share of active customers at the end of the window and enrolments in it."""
    share, month = _latest_share(rep.uptake)
    if not _finite(share):
        return ""
    n = int(rep.uptake["enrolments"].sum())
    return (
        f"At the end of {month}, {fmt_value(share, 'pct')} of active customers were members; "
        f"{count_phrase(n, 'customer')} enrolled during the data window."
    )


def landmark_finding(rep: ProgrammeReport) -> str:
    """Difference in the share still active after the horizon, members vs similar non-members."""
    h = rep.horizon_months
    parts = []
    for L, r in rep.estimated_landmarks().items():
        if not _ok(r.survival):
            continue
        s = r.survival.summary.set_index("quantity")
        d = s.loc["survival_difference"]
        parts.append(
            _effect_sentence(
                f"Being a member at {L} months of tenure",
                f"the share of customers still active {_months(h)} later",
                d.estimate,
                d.ci_lower,
                d.ci_upper,
                kind="pp",
            )
        )
    return " ".join(parts)


def landmark_table(rep: ProgrammeReport) -> pd.DataFrame:
    """Per landmark: share still active after the horizon, members vs similar non-members."""
    rows = []
    for L, r in rep.estimated_landmarks().items():
        if not _ok(r.survival):
            continue
        s = r.survival.summary.set_index("quantity")
        m, c, d = (
            s.loc[k] for k in ("survival_member", "survival_non_member", "survival_difference")
        )
        rows.append(
            {
                "landmark": f"{L} months",
                "members": fmt_value(m.estimate, "pct", digits=1),
                "similar_non_members": fmt_value(c.estimate, "pct", digits=1),
                "difference": fmt_est(d.estimate, d.ci_lower, d.ci_upper, kind="pp"),
            }
        )
    return pd.DataFrame(rows)


def survival_table(sv) -> pd.DataFrame:
    """The weighted survival summary with shares as percentages and differences in points."""
    kinds = {"survival_difference": "pp", "rmst_member": "months", "rmst_non_member": "months"}
    return pd.DataFrame(
        {
            "quantity": QUANTITY_LABELS.get(r.quantity, labels.label(r.quantity)),
            "estimate": fmt_est(
                r.estimate,
                r.ci_lower,
                r.ci_upper,
                kind=kinds.get(r.quantity, "pct" if r.unit == "proportion" else "months"),
                digits=1,
            ),
        }
        for r in sv.summary.itertuples()
    )


def event_study_finding(rep: ProgrammeReport) -> str:
    """What spend did around enrolment, in words (the number lives in the appendix)."""
    es = rep.event_study
    if not _ok(es):
        return ""
    pt = es.pretrend
    pre = ""
    if pt.get("df") and _finite(pt.get("p_value")):
        pre = (
            " Months further back show no clear sign that enrollees were already on a different trend."
            if pt["p_value"] >= 0.05
            else " Months further back suggest enrollees were already on a different trend, so read the pattern with care."
        )
    pa = es.post_att
    d = direction(pa["estimate"], pa["ci_lower"], pa["ci_upper"])
    after = {
        "up": "Enrollees' monthly spend stays above what their own earlier spend predicts after they join",
        "down": "Enrollees' monthly spend falls below what their own earlier spend predicts after they join",
    }.get(d, "There is no clear change in enrollees' monthly spend after they join")
    return (
        f"{after}; customers tend to join right after a spending peak, so this before-and-after view "
        "overstates the effect, and the headline uses the adjusted monthly comparison instead."
        + pre
    )


def _span(x) -> str:
    """``"1..6"`` or ``[-6, -5]`` -> ``"1 to 6"`` / ``"−6 to −5"``."""
    xs = x.split("..") if isinstance(x, str) else [int(v) for v in x]
    return " to ".join(str(v).replace("-", "−") for v in dict.fromkeys([xs[0], xs[-1]]))


def event_study_note(rep: ProgrammeReport) -> str:
    """The event-study estimate per month and over the horizon, beside the headline (appendix)."""
    es, h, cur = rep.event_study, rep.horizon_months, rep.currency
    if not _ok(es):
        return ""
    pa = es.post_att
    per_month = fmt_est(
        pa["estimate"], pa["ci_lower"], pa["ci_upper"], kind="money", digits=1, currency=cur
    )
    total = fmt_est(
        h * pa["estimate"],
        h * pa["ci_lower"],
        h * pa["ci_upper"],
        kind="money",
        digits=0,
        currency=cur,
    )
    text = (
        f"Event study (a second design): in months {_span(pa['months'])} after enrolling, enrollees' monthly "
        f"spend was {per_month} above what their own earlier spend and the calendar trend of other "
        f"customers predict, about {total} over {_months(h)}; lift "
        f"{fmt_est(pa['lift'], pa['lift_ci_lower'], pa['lift_ci_upper'], kind='ratio', digits=3)}. "
        f"{count_phrase(es.n_enrollees, 'enrollee')} among {count_phrase(es.n_customers, 'customer')}. "
        "Spend peaks just before customers join, so this is an upper bound; the headline spend effect "
        "comes from the monthly comparison, which adjusts for the months before enrolling."
    )
    pt = es.pretrend
    if pt.get("df") and _finite(pt.get("chi2"), pt.get("p_value")):
        text += (
            f" Pre-trend test (months {_span(pt['leads'])}, two-way fixed effects): chi-square "
            f"{pt['chi2']:.2f} on {pt['df']} degrees of freedom, {fmt_value(pt['p_value'], 'p')}."
        )
    return text


def heterogeneity_finding(rep: ProgrammeReport) -> str:
    """Which group's spend effect is largest, or that the groups cannot be told apart."""
    sq = rep.sequential
    if not isinstance(sq, SequentialResult) or not isinstance(sq.heterogeneity, pd.DataFrame):
        return ""
    h = sq.heterogeneity
    shown = h[~h["suppressed"].astype(bool)].dropna(subset=["estimate"])
    by = labels.sentence_label(sq.heterogeneity_by)
    if shown.empty:
        return f"Every {by} group is too small to estimate on its own."
    if len(shown) == 1:
        r = shown.iloc[0]
        return _effect_sentence(
            f"Enrolling, for {by} {r[sq.heterogeneity_by]}",
            f"spend over {_months(rep.horizon_months)}",
            r.estimate,
            r.ci_lower,
            r.ci_upper,
            kind="money",
            digits=0,
            currency=rep.currency,
        )
    top = shown.loc[shown["estimate"].idxmax()]
    low = shown.loc[shown["estimate"].idxmin()]
    overlap = top.ci_lower <= low.ci_upper
    money = fmt_value(top.estimate, "money", digits=0, currency=rep.currency)
    if overlap:
        return (
            f"The spend effect is largest for {by} {top[sq.heterogeneity_by]} ({money} over "
            f"{_months(rep.horizon_months)}), but the intervals overlap: no clear evidence that the "
            "groups differ."
        )
    return (
        f"The spend effect is largest for {by} {top[sq.heterogeneity_by]} ({money} over "
        f"{_months(rep.horizon_months)}) and clearly larger than for {by} {low[sq.heterogeneity_by]}."
    )


def heterogeneity_table(rep: ProgrammeReport, *, full: bool = False) -> pd.DataFrame:
    """Spend effect on enrollees by group (suppressed groups keep their row)."""
    sq = rep.sequential
    h = sq.heterogeneity
    out = pd.DataFrame(
        {
            sq.heterogeneity_by: h[sq.heterogeneity_by].astype(str),
            "n_treated": h["n_treated"],
            "effect": [
                "suppressed"
                if s
                else fmt_est(a, b, c, kind="money", digits=0, currency=rep.currency)
                for s, a, b, c in zip(h.suppressed, h.estimate, h.ci_lower, h.ci_upper, strict=True)
            ],
        }
    )
    if full:
        out.insert(2, "n_control", h["n_control"])
        out["lift"] = [
            "suppressed" if s else fmt_est(a, b, c, kind="ratio", digits=3)
            for s, a, b, c in zip(
                h.suppressed, h.ratio, h.ratio_ci_lower, h.ratio_ci_upper, strict=True
            )
        ]
    return out


def e_value_sentence(ev: EValue, *, outcome: str = "churn") -> str:
    """Turn an E-value into the sentence a stakeholder can read."""
    if not isinstance(ev, EValue) or not np.isfinite(ev.point):
        return "The sensitivity to unmeasured differences could not be computed."
    if not np.isfinite(ev.ci):
        ci = ""
    elif ev.ci > 1:
        ci = f"; to make the interval include no effect, {ev.ci:.2f} would suffice"
    else:
        ci = "; the interval already includes no effect"
    return (
        f"An unmeasured factor would need to raise both the chance of enrolling and the risk of "
        f"{outcome} by a factor of {ev.point:.2f} each, beyond the measured factors, to explain the "
        f"estimated effect away{ci}."
    )


def robustness_finding(rep: ProgrammeReport) -> str:
    """How strong a hidden difference would have to be (E-value of the headline churn effect)."""
    sq = rep.sequential
    ev = sq.e_value if isinstance(sq, SequentialResult) else None
    if not isinstance(ev, EValue):
        lms = rep.estimated_landmarks()
        ev = next((r.e_value for r in lms.values() if isinstance(r.e_value, EValue)), None)
    if not isinstance(ev, EValue) or not np.isfinite(ev.point):
        return ""
    if np.isfinite(ev.ci) and ev.ci <= 1:
        return (
            "The churn effect's interval already includes no effect, so even a weak hidden difference "
            "between joiners and others could account for it."
        )
    strength = "a strong" if ev.point >= 2 else "a moderate"
    return (
        f"To explain the churn effect away, {strength} hidden difference would be needed: something "
        f"nobody measured that makes customers {ev.point:.1f} times as likely to join and changes "
        f"their risk of leaving {ev.point:.1f}-fold."
    )


def post_leaving_finding(rep: ProgrammeReport) -> str:
    """Monthly churn after leaving the programme against while a member (descriptive)."""
    pl = rep.post_leaving
    if not isinstance(pl, pd.DataFrame) or pl.empty:
        return ""
    s = pl.set_index("state")
    if "after leaving" not in s.index or "member" not in s.index:
        return ""
    a, m = s.loc["after leaving"], s.loc["member"]
    if a.customer_months <= 0:
        return "No customer in this data has left the programme, so there is nothing to compare."
    if not _finite(a.monthly_churn_rate, m.monthly_churn_rate):
        return ""
    pa, pm = (fmt_value(x.monthly_churn_rate, "pct", digits=2) for x in (a, m))
    if a.ci_lower > m.ci_upper or a.ci_upper < m.ci_lower:
        rel = "higher than" if a.monthly_churn_rate > m.monthly_churn_rate else "lower than"
        return (
            f"Customers who left the programme churned at {pa} a month, {rel} the {pm} while "
            "members; descriptive only, since those who leave may already have been on their way out."
        )
    return (
        f"Customers who left the programme churned at {pa} a month against {pm} while members; "
        "the intervals overlap, so there is no clear difference."
    )


def points_finding(rep: ProgrammeReport) -> str:
    """Redeemers against non-redeemers (descriptive; redeeming needs time in the programme)."""
    p = rep.points
    if not isinstance(p, pd.DataFrame) or p.empty or "monthly_churn_rate" not in p:
        return ""
    s = p.set_index("group")
    if not {"redeemers", "non-redeemers"} <= set(s.index):
        return ""
    a, b = s.loc["redeemers", "monthly_churn_rate"], s.loc["non-redeemers", "monthly_churn_rate"]
    if not _finite(a, b) or a == b == 0:
        return (
            "No member churned in this data, whether they redeemed points or not." if a == b else ""
        )
    return (
        f"Members who redeemed points churned at {fmt_value(a, 'pct', digits=2)} a month against "
        f"{fmt_value(b, 'pct', digits=2)} for those who did not; descriptive only, since collecting "
        "points takes time in the programme."
    )


def effect_sentence(eff: Effect, *, what: str, unit: str = "", scale: float = 1.0) -> str:
    """Write one sign-aware sentence about an estimated effect and its interval.

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
    est, lo, hi = (x * scale for x in (eff.estimate, eff.ci_lower, eff.ci_upper))
    naive = eff.method == "naive"
    who = "members" if eff.estimand == "ATT" else "customers at the landmark"
    d = direction(est, lo, hi)
    if d == "missing":
        return f"The programme's effect on {what} could not be estimated."
    shown = f"{est:+,.1f}{unit} (95% CI {lo:+,.1f} to {hi:+,.1f})"
    if d in ("unclear", "none"):
        if naive:
            return f"No clear difference in {what} between members and non-members: {shown}."
        return f"No clear evidence that the programme changed {what} for {who}: {shown}."
    a, b = sorted((abs(lo), abs(hi)))
    mag = f"{abs(est):,.1f}{unit} (95% CI {a:,.1f} to {b:,.1f})"
    if naive:
        gap = "higher" if d == "up" else "lower"
        return (
            f"Before adjustment, {what} was {gap} among members than non-members by {mag}; an "
            "observational comparison, not an effect."
        )
    verb = "raised" if d == "up" else "lowered"
    return (
        f"After adjusting for measured differences, the programme is estimated to have {verb} "
        f"{what} for {who} by {mag}."
    )


def programme_findings(rep: ProgrammeReport) -> list[str]:
    """Return the verdict, each section's finding and the skipped sections, as plain sentences.

    Empty when the study could not run (``rep.available`` False).
    """
    if not rep.available:
        return []
    parts = [
        verdict(rep),
        effects_finding(rep),
        landmark_finding(rep),
        event_study_finding(rep),
        heterogeneity_finding(rep),
        robustness_finding(rep),
    ]
    if isinstance(rep.sequential, SequentialResult):
        parts.append(covariates_sentence(rep.sequential.covariates))
    parts += [s.section + ": " + s.sentence() for s in rep.skipped_sections()]
    return [p for p in parts if p]


@functools.wraps(programme_report, assigned=())  # help() and inspect show the study's arguments
def programme_notes(rep: ProgrammeReport) -> list[str]:
    """Return one sentence per caveat (in the study's order), then one per skipped section."""
    out = []
    for c in rep.caveats:
        kind = c["kind"]
        if kind == "no_loyalty_table":
            out.append(
                "The data has no loyalty table (or it is empty), so the programme cannot be "
                "evaluated. Add a loyalty table (customer, enrolment date, ...) to run this study."
            )
        elif kind == "covariates_left_out":
            missing = [covariate_label(x) for x in c.get("missing", [])]
            constant = [
                covariate_label(x)
                for x in c.get("constant", c["covariates"] if not missing else [])
            ]
            if missing:
                out.append(f"Not in this data, so not adjusted for: {join_words(missing)}.")
            if constant:
                out.append(
                    f"The same for every customer here, so not adjusted for: {join_words(constant)}."
                )
        elif kind == "ate_trim_emptied_arm":
            out.append(
                "The effect over every eligible customer-month could not be restricted to customers "
                "with a real chance of enrolling: that left an arm empty, so those rows are untrimmed."
            )
        else:
            raise ValueError(f"unknown loyalty caveat {kind!r}")
    out += [f"{s.section}: {s.sentence()}" for s in rep.skipped_sections()]
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


def register_lookback(lookback_months: int) -> None:
    """Re-register the covariate labels for a look-back other than three months."""
    global COVARIATE_LABELS
    COVARIATE_LABELS = _covariate_labels(int(lookback_months))
    _register(int(lookback_months))
