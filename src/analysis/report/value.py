"""Sentences, display tables and the CRM export of the customer value report (04).

Every sentence is written from the numbers of :mod:`analysis.studies.value`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from analysis.report.display import Suppression, suppression
from analysis.report.outputs import atomic_path
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


def _auc_word(auc: float) -> str:
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
    s = value_findings(
        vs.concentration,
        vs.ranked,
        currency=f"{currency} " if currency and len(currency) > 1 else currency,
        horizon_label=f"over the next {months:g} months",
        total_clv=vs.total_clv,
        min_group_size=min_group_size,
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


def protected_value_at_stake(vs: ValueStudy, *, min_group_size: int) -> float:
    """Return the value at stake of the customers to protect; NaN when they are too few to show."""
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

    out = frame.copy()
    for c in out.columns:
        col = out[c]
        if c in keep or not (
            pd.api.types.is_object_dtype(col)
            or pd.api.types.is_string_dtype(col)
            or isinstance(col.dtype, pd.CategoricalDtype)
        ):
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
