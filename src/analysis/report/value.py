"""Sentences, display tables and the CRM export of the customer value report (04).

Every sentence is written from the numbers of :mod:`analysis.studies.value`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from analysis.report import format as fmt
from analysis.report import labels, page, sentences
from analysis.report.display import Suppression, suppression
from analysis.report.outputs import atomic_path
from analysis.studies.sections import is_skipped
from analysis.studies.value.churn_risk import ChurnRiskResult
from analysis.studies.value.study import ValueStudy, value_study


def value_findings(
    concentration: dict,
    ranked: pd.DataFrame,
    *,
    currency: str = "",
    horizon_label: str = "",
    total_clv: tuple[float, float, float] | None = None,
    min_group_size: int | None = None,
) -> list[str]:
    """Write the headline findings of the value study as sentences, from the numbers.

    Parameters
    ----------
    concentration : dict
        Output of :func:`value_concentration`.
    ranked : pandas.DataFrame
        Output of :func:`customers_to_protect`.
    currency : str
        Currency symbol or code placed before amounts.
    horizon_label : str
        E.g. "over the next 52 weeks", used in the sentences.
    total_clv : tuple, optional
        (estimate, lower, upper) from :func:`total_clv_interval`.
    min_group_size : int, optional
        Money over fewer customers than this (the customers to protect, those
        of them in strategic segments) is not stated, only that they are few.
    """

    def money(v):
        return f"{currency}{v:,.0f}"

    def few(k: int) -> bool:
        return bool(min_group_size) and 0 < k < min_group_size

    n = len(ranked)
    high = ranked["clv_tier"] == "high"
    protect = ranked["protect"]
    n_protect = int(protect.sum())
    protect_money = (
        f"fewer than {min_group_size} customers, so their value is not shown"
        if few(n_protect)
        else f"their expected value is {money(ranked.loc[protect, 'value'].sum())} and the value "
        f"at stake (value x risk) is {money(ranked.loc[protect, 'value_at_stake'].sum())}"
    )
    s = [
        f"The top {concentration['top']:.0%} of customers hold {concentration['share']:.0%} of expected value "
        f"{horizon_label} (95% bootstrap interval {concentration['ci_lower']:.0%} to {concentration['ci_upper']:.0%}; "
        f"{concentration['n_customers']:,} customers).".replace("  ", " "),
        f"{n_protect:,} of {int(high.sum()):,} high-value customers ({protect.sum() / max(high.sum(), 1):.0%}) are at risk; "
        f"{protect_money}.",
        f"Across all {n:,} customers the value at stake is {money(ranked['value_at_stake'].sum())}, "
        f"{ranked['value_at_stake'].sum() / max(ranked['value'].sum(), 1e-12):.0%} of total expected value.",
    ]
    if int(ranked["strategic"].sum()) > 0:
        st = ranked["strategic"] & protect
        s.append(
            f"Fewer than {min_group_size} of the customers to protect are in strategic segments."
            if few(int(st.sum()))
            else f"{int(st.sum()):,} of the customers to protect are in strategic segments "
            f"(value at stake {money(ranked.loc[st, 'value_at_stake'].sum())})."
        )
    if total_clv is not None:
        est, lo, hi = total_clv
        s.insert(
            0,
            f"Expected customer value {horizon_label} is {money(est)} in total "
            f"(95% interval from parameter uncertainty {money(lo)} to {money(hi)}).".replace(
                "  ", " "
            ),
        )
    return s


def _auc_word(auc: float, ci: tuple[float, float] | None = None) -> str:
    """Words for a ranking quality (AUC, 0.5 = chance) that never contradict its interval."""
    lo, hi = ci if ci is not None else (auc, auc)
    if hi < 0.5:
        return "worse than chance (its ranking should not be used)"
    if lo <= 0.5 or auc <= 0.5:
        return "no better than chance, as far as this data can tell"
    if auc < 0.6:
        return "only slightly better than chance"
    if auc < 0.7:
        return "moderately"
    if auc < 0.8:
        return "well"
    return "very well"


def study_findings(
    vs: ValueStudy, *, currency: str = "", min_group_size: int | None = None
) -> list[str]:
    """Write the report's headline findings from a :class:`ValueStudy`.

    With ``min_group_size``, money over fewer customers is not stated (see
    :func:`value_findings`).
    """
    months = vs.settings["horizon_months"]
    if is_skipped(vs.ranked):
        return [vs.ranked.sentence()]
    s = value_findings(
        vs.concentration,
        vs.ranked,
        currency=f"{currency} " if currency and len(currency) > 1 else currency,
        horizon_label=f"over the next {months:g} months",
        total_clv=vs.total_clv,
        min_group_size=min_group_size,
    )
    e = (
        vs.holdout_errors.set_index("model")
        if isinstance(vs.holdout_errors, pd.DataFrame)
        else pd.DataFrame()
    )
    if "BG/NBD" in e.index:
        r = e.loc["BG/NBD"]
        s.append(
            f"Validation: on the holdout ({vs.settings['calibration_end']} to {vs.settings['observation_end']}) "
            f"the BG/NBD model predicted {r['predicted_total']:,.0f} repeat purchases against "
            f"{r['actual_total']:,.0f} observed ({r['total_error_pct']:+.1f}%)."
        )
    if isinstance(vs.churn, ChurnRiskResult):
        ch = vs.churn
        s.append(
            f"Out of time, the churn-risk model ranks customers {_auc_word(ch.auc, ch.auc_ci)}: "
            f"test AUC {ch.auc:.2f} "
            f"(95% CI {ch.auc_ci[0]:.2f} to {ch.auc_ci[1]:.2f}; 0.5 = chance); calibration slope "
            f"{ch.calibration_slope:.2f} (95% CI {ch.calibration_ci['slope'][0]:.2f} to "
            f"{ch.calibration_ci['slope'][1]:.2f}; 1 = predicted risks neither too extreme nor too flat)."
        )
    return s


#: Sentences of the notes of :func:`study_notes`, by ``kind`` of a
#: :attr:`ValueStudy.caveats <analysis.studies.value.study.ValueStudy>` record.
_NOTES = {
    "left_truncated": (
        "{customers:,} customers signed up before the data window starts; their first purchase in "
        "the data is not their first purchase, so the calibration/holdout check uses only the "
        "{in_cohort:,} customers who joined inside the window. All active customers are scored."
    ),
    "model_left_out": "The {model} model could not be fitted on the {data} data ({reason}); it is left out.",
    "churned_before_as_of": (
        "{customers:,} customers had already churned (contract ended) by {as_of} and are not scored."
    ),
    "no_purchases": "{customers:,} customers have no purchase in the data and cannot be scored.",
    "no_margin": "The data has no margin column, so CLV is expressed in revenue, not margin.",
    "one_time_risk": (
        "{customers:,} customers bought only once: the purchase model cannot tell whether they "
        "are still active (it assumes nobody stops before buying again), so they get no risk "
        "score and are not in the list of customers at risk."
    ),
    "no_churn_dates": (
        "The data has no churn dates (non-contractual), so risk is the purchase model's "
        "probability that the customer has already lapsed, 1 − P(alive)."
    ),
}


def study_notes(vs: ValueStudy) -> list[str]:
    """Write the report's plain-language notes (exclusions, models left out) from ``vs.caveats``."""
    return [_NOTES[c["kind"]].format(**c) for c in vs.caveats]


# assigned=(): keep this name and docstring; __wrapped__ gives the study's signature.
@functools.wraps(value_study, assigned=(), updated=())
def value_study_with_notes(study, **kwargs) -> ValueStudy:
    """Run :func:`analysis.studies.value.value_study` and write its notes into ``notes``.

    Keyword arguments as for the study. The result's ``notes`` hold
    :func:`study_notes`, the sentences ``ValueStudy.notes`` held before the study and
    its sentences were split; the compatibility function ``analysis.value.value_study``
    is this function.
    """
    vs = value_study(study, **kwargs)
    vs.notes = study_notes(vs)
    return vs


def protected_value_at_stake(vs: ValueStudy, *, min_group_size: int) -> float:
    """Return the value at stake of the customers to protect; NaN when they are too few to show."""
    if is_skipped(vs.ranked):
        return float("nan")
    protect = vs.ranked["protect"]
    n = int(protect.sum())
    if 0 < n < min_group_size:
        return float("nan")
    return float(vs.ranked.loc[protect, "value_at_stake"].sum())


def segment_suppression(vs: ValueStudy, *, min_group_size: int) -> Suppression:
    """Decide which segments the value report hides, in every table by segment.

    The report states the number of scored customers and their total value,
    so segments under ``min_group_size`` customers are hidden together with
    the next smallest ones until the hidden segments cannot be told apart
    (see :func:`analysis.report.display.suppression`). Pass the result as
    ``hide=`` to every table by segment (``group_col="segment"``).
    """
    counts = (
        vs.scores.groupby("segment", observed=True, dropna=True)
        .size()
        .rename("customers")
        .reset_index()
    )
    counts["segment"] = counts["segment"].astype(str)
    return suppression(
        counts,
        count_col="customers",
        min_group_size=min_group_size,
        total=float(len(vs.scores)),
        group_col="segment",
    )


def churn_summary_table(result: ChurnRiskResult) -> pd.DataFrame:
    """Return the churn-risk model's out-of-time test measures as a two-column table (text values)."""
    rows = [
        ("customers in training (earlier cutoff)", f"{result.n_train:,}"),
        ("customers in test (later cutoff)", f"{result.n_test:,}"),
        (
            "churn share, training / test",
            f"{result.base_rate_train:.1%} / {result.base_rate_test:.1%}",
        ),
        (
            "test ROC AUC (95% bootstrap CI)",
            f"{result.auc:.3f} ({result.auc_ci[0]:.3f} to {result.auc_ci[1]:.3f})",
        ),
        (
            "calibration slope (95% CI; 1 = ideal)",
            f"{result.calibration_slope:.2f} ({result.calibration_ci['slope'][0]:.2f} to {result.calibration_ci['slope'][1]:.2f})",
        ),
        (
            "calibration intercept (95% CI; 0 = ideal)",
            f"{result.calibration_intercept:.2f} ({result.calibration_ci['intercept'][0]:.2f} to "
            f"{result.calibration_ci['intercept'][1]:.2f})",
        ),
        ("Brier score", f"{result.brier:.4f}"),
    ]
    rows = [(m[:1].upper() + m[1:], v.replace("-", "\u2212")) for m, v in rows]
    return pd.DataFrame(rows, columns=["measure", "value"])


#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection":
#: equals, plus, minus, at, tab, carriage return).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

#: Export columns written exactly as they are. Customer ids are the key the CRM matches the
#: list on: a quote added to an id would make it match no customer, so they are not altered.
#: They are keys of the company's own customer system (unique and present, by the data
#: contract), not free text; a system whose ids can begin with "=" or "@" would need its CRM
#: import to read the file as text, not a spreadsheet.
EXPORT_KEYS = ("customer_id",)


def csv_safe(frame: pd.DataFrame, *, keep: tuple[str, ...] = EXPORT_KEYS) -> pd.DataFrame:
    """Return a copy of ``frame`` whose text cells a spreadsheet cannot run as formulas.

    Following the OWASP guidance on CSV injection, a text cell that begins
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, or whose first
    character after leading whitespace is one of ``= + - @`` (some
    spreadsheets skip the whitespace), gets a single quote in front, so a
    segment named ``=HYPERLINK(...)`` is written as ``'=HYPERLINK(...)`` and
    shown as text. Quotes, commas and line breaks inside a cell are quoted by
    the CSV writer (RFC 4180), so they cannot start a new cell. Numbers stay
    numbers (a negative amount is not text), and the columns in ``keep`` (the
    customer id, the export's key) are left exactly as they are.

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows to export.
    keep : tuple of str, default ("customer_id",)
        Columns written unchanged.

    Returns
    -------
    pandas.DataFrame
        A copy; text columns other than ``keep`` neutralised.
    """

    def safe(value):
        if isinstance(value, str) and (
            value.startswith(FORMULA_TRIGGERS) or value.lstrip().startswith(FORMULA_TRIGGERS[:4])
        ):
            return "'" + value
        return value

    out = frame.copy(deep=False)  # copy on write: replacing a column leaves ``frame`` as it is
    for c in out.columns:
        col = out[c]
        if c in keep:
            continue
        if isinstance(col.dtype, pd.CategoricalDtype):
            # the categories, not every row (ten million rows, a few segments)
            cats = [safe(v) for v in col.cat.categories]
            if len(set(cats)) == len(cats):
                out[c] = col.cat.rename_categories(cats)
                continue
        elif not (pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)):
            continue
        out[c] = col.astype(object).map(safe)
    return out


def write_export(ranked: pd.DataFrame, path) -> Path:
    """Write the full ranked list of customers to protect as CSV (never shown in reports).

    Returns the path written. Parent folders are created. The file is written
    atomically (a temporary file beside it, then a rename), so a CRM import never
    reads a partial list. The report runner passes a staging folder and publishes
    the export together with the report.
    """
    p = Path(path)
    with atomic_path(p) as tmp:
        csv_safe(ranked).to_csv(tmp, index=False, float_format="%.4f")
    return p


# ---------------------------------------------------------------------------
# The stakeholder page (issue 15): labels, verdict, tiles, section findings, tables
# ---------------------------------------------------------------------------

labels.register(
    {
        "clv": "Expected value",
        "clv_mean": "Mean expected value",
        "clv_total": "Total expected value",
        "clv_share": "Share of value",
        "clv_tier": "Value tier",
        "clv_purchase": "Value over the horizon (purchase models)",
        "clv_contract": "Remaining-relationship value (contract model)",
        "clv_contract_horizon": "Value over the horizon (contract model)",
        "value_per_period": "Margin per period",
        "value_at_stake": "Value at stake",
        "to_protect": "To protect",
        "strategic": "In strategic segments",
        "mean_risk": "Mean risk of leaving",
        "risk": "Risk of leaving",
        "p_alive": "Chance still active",
        "frequency": "Repeat purchases",
        "recency": "Time to last purchase",
        "T": "Time since first purchase",
        "monetary_value": "Spend per repeat purchase",
        "expected_purchases": "Expected purchases",
        "expected_spend": "Expected spend per purchase",
        "renewals": "Renewals made",
        "frequency_group": "Repeat purchases in calibration",
        "actual": "Actual",
        "predicted": "Predicted (BG/NBD)",
        "predicted_pareto_nbd": "Predicted (Pareto/NBD)",
        "actual_total": "Actual repeat purchases",
        "predicted_total": "Predicted repeat purchases",
        "total_error_pct": "Error of the total (%)",
        "mae": "Mean absolute error",
        "rmse": "Root mean squared error",
        "correlation": "Correlation",
        "model": "Model",
        "parameter": "Parameter",
        "fitted_on": "Fitted on",
        "measure": "Measure",
        "retention": "Share renewing",
        "model_retention": "Share renewing (model)",
        "model_survival": "Share still active (model)",
        "t": "Renewal",
        "churned": "Left",
        "churn_rate": "Share who left",
        "lift": "Lift",
        "cum_share_customers": "Share of customers (cumulative)",
        "cum_share_churners": "Share of leavers reached (cumulative)",
        "section": "Section",
        "detail": "Technical message",
        "value_tier_label": "Value tier",
        # churn-risk model features
        "tenure_days": "Tenure (days)",
        "recency_days": "Days since last purchase",
        "purchases_total": "Purchases to date",
        "purchases_90d": "Purchases, last 90 days",
        "purchases_365d": "Purchases, last 365 days",
        "spend_90d": "Spend, last 90 days",
        "spend_prev_90d": "Spend, the 90 days before",
        "spend_365d": "Spend, last 365 days",
        "tickets_90d": "Tickets, last 90 days",
        "unresolved_90d": "Unresolved tickets, last 90 days",
        "sla_breaches_90d": "SLA breaches, last 90 days",
        "csat_mean_365d": "Mean CSAT, last 365 days",
        "nps_category": "Latest NPS answer",
    }
)

_TIER_WORDS = {"high": "High value", "medium": "Medium value", "low": "Low value"}


def _money(x, currency: str, digits: int | None = 0) -> str:
    return fmt.fmt_value(x, "money", currency=currency, digits=digits)


def value_basis(vs: ValueStudy) -> str:
    """Return what "value" means in this run, in words (model, horizon, margin or revenue)."""
    st = vs.settings
    what = "margin" if st["margin"] else "revenue"
    if vs.value_source == "contractual":
        return (
            f"expected {what} over the rest of each active customer's contract, discounted at "
            f"{st['discount_rate']:.0%} a year"
        )
    if vs.value_source == "purchase":
        return (
            f"expected {what} over the next {fmt.fmt_months(st['horizon_months'])}, discounted "
            f"at {st['discount_rate']:.0%} a year"
        )
    return f"{what} of the last {fmt.fmt_months(st['horizon_months'])} (observed; no model fitted)"


def base_value_sentence(vs: ValueStudy, *, currency: str) -> str:
    """Return the sentence that says what the customer base is worth, with its interval."""
    est, lo, hi = vs.total_clv
    n = len(vs.scores)
    head = fmt.fmt_est(est, lo, hi, kind="money", currency=currency, digits=0)
    interval = "" if "(" not in head else " (95% interval from parameter uncertainty)"
    return f"The {n:,} active customers are worth about {head}{interval}: {value_basis(vs)}."


def verdict(vs: ValueStudy, *, currency: str, min_group_size: int) -> list[str]:
    """Return the verdict: what the base is worth, and which valuable customers are slipping away."""
    est, lo, hi = vs.total_clv
    worth = fmt.fmt_est(est, lo, hi, kind="money", currency=currency, digits=0)
    worth = worth.replace(" (", " (95% CI ", 1)
    who = "active customers" if vs.value_source == "contractual" else "customers scored"
    first = f"The {len(vs.scores):,} {who} are worth about {worth}, counting {value_basis(vs)}."
    if is_skipped(vs.ranked):
        reason = vs.ranked.reason
        return [
            first,
            f"Who is slipping away cannot be told from this data: {reason[:1].lower()}{reason[1:]}.",
        ]
    r = vs.ranked
    n_high = int((r["clv_tier"] == "high").sum())
    n_protect = int(r["protect"].sum())
    if n_protect == 0:
        return [first, "None of the high-value customers is among those most likely to leave."]
    lead = (
        f"{n_protect:,} of the {n_high:,} high-value customers are among the most likely to leave"
    )
    if n_protect < min_group_size:
        second = f"{lead} (too few to state their value); the CRM list names them."
    else:
        stake = float(r.loc[r["protect"], "value_at_stake"].sum())
        second = (
            f"{lead}, with {_money(stake, currency)} of value at stake; the CRM list names them "
            "(a prediction of who may leave, not of what will keep them)."
        )
    ch = vs.churn
    if isinstance(ch, ChurnRiskResult) and not (_finite_ci(ch.auc_ci) and ch.auc_ci[0] > 0.5):
        # the list is only as good as its ranking: say so where the ranking is no better than chance
        second = second.rstrip(".") + (
            "; but on later data the risk model ranked customers no better than chance, so this "
            "list is no better than a random pick."
        )
    return [first, second]


def _finite_ci(ci) -> bool:
    return ci is not None and all(not fmt._is_missing(x) for x in ci)


def key_tiles(vs: ValueStudy, *, currency: str, min_group_size: int) -> list[dict]:
    """Return the report's key-figure tiles (each is also an index headline)."""
    est, lo, hi = vs.total_clv
    c = vs.concentration
    # with no model fitted the figure is observed, not expected: the title says which
    title = (
        f"{'Margin' if vs.settings['margin'] else 'Revenue'} of the last "
        f"{fmt.fmt_months(vs.settings['horizon_months'])} (observed)"
        if vs.value_source == "history"
        else "Total expected customer value"
    )
    tiles = [
        page.tile(
            title,
            est,
            kind="money",
            lo=lo,
            hi=hi,
            digits=0,
            currency=currency,
            note=value_basis(vs)[:1].upper() + value_basis(vs)[1:],
        ),
        page.tile(
            "Share of value in the top decile",
            c["share"],
            kind="pct",
            lo=c["ci_lower"],
            hi=c["ci_upper"],
            digits=1,
            note=f"Top {c['top']:.0%} of {c['n_customers']:,} customers",
        ),
    ]
    if not is_skipped(vs.ranked):
        n_protect = int(vs.ranked["protect"].sum())
        tiles.append(
            page.tile(
                "High-value customers at risk",
                n_protect,
                kind="count",
                note=f"High value tier and among the {vs.settings['risk_top_share']:.0%} most likely to leave",
            )
        )
        stake = protected_value_at_stake(vs, min_group_size=min_group_size)
        tiles.append(
            page.tile(
                "Value at stake among them",
                stake if stake == stake else f"fewer than {min_group_size} customers",
                kind="money",
                digits=0,
                currency=currency,
                note="Value × risk of leaving",
            )
        )
    if vs.value_source == "contractual":
        mc, mlo, mhi = vs.contract.mean_churn
        tiles.append(
            page.tile(
                f"Churn per {vs.contract.period} of a new customer",
                mc,
                kind="pct",
                lo=mlo,
                hi=mhi,
                digits=1,
                note="Falls with tenure: the loyal stay",
            )
        )
    elif (
        "p_alive" in vs.scores.columns
        and vs.settings["mean_p_alive_repeaters"] == vs.settings["mean_p_alive_repeaters"]
    ):
        st = vs.settings
        tiles.append(
            page.tile(
                "Repeat buyers probably still active",
                st["mean_p_alive_repeaters"],
                kind="pct",
                digits=0,
                note=f"Purchase model; {st['share_bought_recently_repeaters']:.0%} bought in the "
                f"last {st['inactivity_days']} days",
            )
        )
    return tiles


def tier_finding(vs: ValueStudy) -> str:
    """Return the finding of the value-concentration section."""
    c = vs.concentration
    lo, hi = c["ci_lower"], c["ci_upper"]
    if fmt._is_missing(c["share"]):
        return (
            "No customer has a positive expected value on this data, so how concentrated "
            "value is cannot be measured."
        )
    return (
        f"The top {c['top']:.0%} of customers hold {fmt.fmt_est(c['share'], lo, hi, kind='pct', digits=0)} "
        "of expected value; the high tier (top "
        f"{1 - vs.settings['tier_quantiles'][1]:.0%}) is where retention effort pays most."
    )


def tier_table(vs: ValueStudy, *, currency: str) -> pd.DataFrame:
    """Return the compact table by value tier: customers, share of value, mean value, mean risk."""
    t = vs.rfm_by_tier
    return pd.DataFrame(
        {
            "clv_tier": [_TIER_WORDS.get(x, x) for x in t["clv_tier"]],
            "customers": t["customers"].astype(int),
            "clv_share": [fmt.fmt_value(v, "pct", digits=0) for v in t["clv_share"]],
            "clv_mean": [_money(v, currency, None) for v in t["clv"]],
            "mean_risk": [fmt.fmt_value(v, "pct", digits=0) for v in t["risk"]],
        }
    )


def segment_stakes(vs: ValueStudy) -> pd.DataFrame:
    """Return customers, at risk, to protect and value at stake by segment (all tiers)."""
    r = vs.ranked
    g = r.groupby("segment", observed=True)
    out = g.agg(
        customers=("customer_id", "size"),
        to_protect=("protect", "sum"),
        value_at_stake=("value_at_stake", "sum"),
        value=("value", "sum"),
    ).reset_index()
    return out.assign(segment=out["segment"].astype(str))


def protect_finding(vs: ValueStudy, *, currency: str, min_group_size: int) -> str:
    """Return the finding of the customers-to-protect section."""
    r = vs.ranked
    total_stake = float(r["value_at_stake"].sum())
    share = total_stake / max(float(r["value"].sum()), 1e-12)
    n_protect = int(r["protect"].sum())
    who = (
        f"fewer than {min_group_size} high-value customers"
        if 0 < n_protect < min_group_size
        else sentences.count_phrase(n_protect, "high-value customer")
    )
    return (
        f"Across all {len(r):,} customers, {_money(total_stake, currency)} of value is at stake "
        f"({share:.0%} of the total, value × risk of leaving); {who} combine high value with high "
        "risk and come first in the CRM list."
    )


def contract_finding(vs: ValueStudy) -> str:
    """Return the finding of the contract-length section (sBG)."""
    c = vs.contract
    mc, lo, hi = c.mean_churn
    per = c.period
    r1 = float(c.model.retention_rate(1.0))
    r12 = float(c.model.retention_rate(13.0 if per == "month" else 5.0))
    later = "13th" if per == "month" else "5th"
    return (
        f"A new customer leaves at a renewal with a chance of "
        f"{fmt.fmt_est(mc, lo, hi, kind='pct', digits=1)} per {per}; because the customers "
        f"likely to leave go first, the share who renew rises from {r1:.0%} at the first "
        f"renewal to {r12:.0%} at the {later}."
    )


def tracking_finding(vs: ValueStudy) -> str:
    """Return the finding of the purchase-model check (holdout)."""
    e = vs.holdout_errors.set_index("model").loc["BG/NBD"]
    diff = e["total_error_pct"] / 100
    word = "over" if diff > 0 else "under"
    return (
        f"Fitted on purchases to {vs.settings['calibration_end']}, the purchase model predicted "
        f"{e['predicted_total']:,.0f} repeat purchases in the holdout against "
        f"{e['actual_total']:,.0f} observed ({abs(diff):.1%} {word})."
    )


def p_alive_finding(vs: ValueStudy) -> str:
    """Return the P(alive) finding, reconciled with the inactivity definition of churn."""
    st = vs.settings
    days = st["inactivity_days"]
    text = (
        f"Among customers who bought more than once, the purchase model counts "
        f"{st['mean_p_alive_repeaters']:.0%} as probably still active; "
        f"{st['share_bought_recently_repeaters']:.0%} bought in the last {days} days, the "
        "definition of an active customer in the KPI and retention reports."
    )
    if st["one_time_share"] > 0:
        text += (
            f" The {st['one_time_share']:.0%} who bought once count as active in the model by "
            "construction (it learns a customer's lapse only from repeat buying)."
        )
    return text


def churn_model_finding(vs: ValueStudy) -> str:
    """Return the finding of the churn-risk model section."""
    ch = vs.churn
    return (
        "On a later period it was not trained on, the churn-risk model ranks customers "
        f"{_auc_word(ch.auc, ch.auc_ci)}: "
        f"{fmt.fmt_est(ch.auc, ch.auc_ci[0], ch.auc_ci[1], kind='number', digits=2)} "
        "on a scale where 0.5 is chance and 1 is perfect."
    )


def parameter_appendix_table(vs: ValueStudy) -> pd.DataFrame:
    """Return every model parameter (r, alpha, a, b, ...) with its interval, for the appendix."""
    t = vs.parameters
    return pd.DataFrame(
        {
            "model": t["model"],
            "parameter": t["parameter"],
            "estimate": [
                fmt.fmt_est(e, lo, hi, kind="number", digits=4 if abs(e) < 10 else 2)
                for e, lo, hi in zip(t["estimate"], t["ci_lower"], t["ci_upper"], strict=True)
            ],
            "se": [fmt.fmt_num(v, 4 if abs(v) < 10 else 2) for v in t["se"]],
            "loglik": [fmt.fmt_num(v, 1) for v in t["loglik"]],
            "fitted_on": t["fitted_on"],
        }
    )


def skipped_appendix_table(vs: ValueStudy) -> pd.DataFrame:
    """Return the sections not estimated with their technical messages, for the appendix."""
    return pd.DataFrame(
        {
            "section": [s.section for s in vs.skipped],
            "detail": [labels.technical_text(s.detail) or "—" for s in vs.skipped],
        }
    )


def method_notes(vs: ValueStudy, *, min_group_size: int) -> list[str]:
    """Return the appendix's method notes, plain sentences built from the settings."""
    st = vs.settings
    notes = [
        f"Data as of {st['as_of']} (window from {st['window_start']}). Value: {value_basis(vs)}.",
        f"At risk: the {st['risk_top_share']:.0%} of scored customers most likely to leave. Value "
        f"tiers: top {1 - st['tier_quantiles'][1]:.0%} high, next "
        f"{st['tier_quantiles'][1] - st['tier_quantiles'][0]:.0%} medium, rest low. Groups "
        f"under {min_group_size} customers are suppressed.",
    ]
    if vs.value_source == "contractual":
        c = vs.contract
        pop = (
            "customers acquired inside the data window (each one's whole contract history is seen)"
            if c.fit_population == "acquired_in_window"
            else "all customers (too few were acquired inside the data window)"
        )
        notes.append(
            f"Contract model: the shifted-beta-geometric model of Fader & Hardie (2007), fitted to "
            f"the renewals of {c.n_fit:,} {pop}, {c.n_churned_fit:,} of whom left. Each customer "
            "has a constant chance of leaving at each renewal; the chances vary between customers "
            "(a beta distribution with parameters gamma and delta). A customer's value is their "
            "margin per period (their payments in the window divided by the periods they paid "
            "for) times the discounted expected number of payments still to come (Fader & Hardie "
            "2010). Intervals: parametric bootstrap (parameters drawn from their estimated "
            "sampling distribution), parameter uncertainty only."
        )
        if vs.total_purchase is not None:
            e, lo, hi = vs.total_purchase
            notes.append(
                "For comparison, the purchase models (BG/NBD with Gamma-Gamma spend) value the same "
                f"customers at {fmt.fmt_est(e, lo, hi, kind='money', digits=0)} over the next "
                f"{fmt.fmt_months(st['horizon_months'])}; they ignore the churn dates, so the "
                "contract model is used."
            )
    if vs.value_source != "contractual" and "p_alive" in vs.scores.columns:
        notes.append(
            "Purchase models: BG/NBD (Fader, Hardie & Lee 2005) for how often customers buy and "
            "when they silently lapse, Pareto/NBD as a check, and Gamma-Gamma for spend per "
            "purchase, which shrinks a customer's own average towards the population's when "
            "they have bought only a few times. The interval of the total draws the parameters "
            "from their estimated sampling distribution (parameter uncertainty only)."
        )
    return notes + study_notes(vs)
