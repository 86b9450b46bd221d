"""Sentences, display tables and the CRM export of the customer value report (04).

Every sentence is written from the numbers of :mod:`analysis.studies.value`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from analysis.studies.value.churn_risk import ChurnRiskResult
from analysis.studies.value.study import ValueStudy, value_study


def value_findings(
    concentration: dict,
    ranked: pd.DataFrame,
    *,
    currency: str = "",
    horizon_label: str = "",
    total_clv: tuple[float, float, float] | None = None,
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
    """

    def money(v):
        return f"{currency}{v:,.0f}"

    n = len(ranked)
    high = ranked["clv_tier"] == "high"
    protect = ranked["protect"]
    s = [
        f"The top {concentration['top']:.0%} of customers hold {concentration['share']:.0%} of expected value "
        f"{horizon_label} (95% bootstrap interval {concentration['ci_lower']:.0%} to {concentration['ci_upper']:.0%}; "
        f"{concentration['n_customers']:,} customers).".replace("  ", " "),
        f"{int(protect.sum()):,} of {int(high.sum()):,} high-value customers ({protect.sum() / max(high.sum(), 1):.0%}) are at risk; "
        f"their expected value is {money(ranked.loc[protect, 'value'].sum())} and the value at stake "
        f"(value x risk) is {money(ranked.loc[protect, 'value_at_stake'].sum())}.",
        f"Across all {n:,} customers the value at stake is {money(ranked['value_at_stake'].sum())}, "
        f"{ranked['value_at_stake'].sum() / max(ranked['value'].sum(), 1e-12):.0%} of total expected value.",
    ]
    if int(ranked["strategic"].sum()) > 0:
        st = ranked["strategic"] & protect
        s.append(
            f"{int(st.sum()):,} of the customers to protect are in strategic segments "
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


def _auc_word(auc: float) -> str:
    if auc < 0.6:
        return "only slightly better than chance"
    if auc < 0.7:
        return "moderately"
    if auc < 0.8:
        return "well"
    return "very well"


def study_findings(vs: ValueStudy, *, currency: str = "") -> list[str]:
    """Write the report's headline findings from a :class:`ValueStudy`."""
    months = vs.settings["horizon_months"]
    s = value_findings(
        vs.concentration,
        vs.ranked,
        currency=f"{currency} " if currency and len(currency) > 1 else currency,
        horizon_label=f"over the next {months:g} months",
        total_clv=vs.total_clv,
    )
    e = vs.holdout_errors.set_index("model")
    if "BG/NBD" in e.index:
        r = e.loc["BG/NBD"]
        s.append(
            f"Validation: on the holdout ({vs.settings['calibration_end']} to {vs.settings['observation_end']}) "
            f"the BG/NBD model predicted {r['predicted_total']:,.0f} repeat purchases against "
            f"{r['actual_total']:,.0f} observed ({r['total_error_pct']:+.1f}%)."
        )
    if vs.churn is not None:
        ch = vs.churn
        s.append(
            f"The churn-risk model ranks customers {_auc_word(ch.auc)} out of time: test AUC {ch.auc:.2f} "
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
    "churn_model_failed": (
        "The churn-risk model could not be fitted ({reason}); risk = 1 - P(alive) instead."
    ),
    "no_churn_dates": (
        "The data has no churn dates (non-contractual), so risk is the BG/NBD probability that the "
        "customer has already lapsed, 1 - P(alive)."
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
    return pd.DataFrame(rows, columns=["measure", "value"])


def write_export(ranked: pd.DataFrame, path) -> Path:
    """Write the full ranked list of customers to protect as CSV (never shown in reports).

    Returns the path written. Parent folders are created.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ranked.to_csv(p, index=False, float_format="%.4f")
    return p
