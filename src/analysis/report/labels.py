"""One vocabulary for every report: column, term, estimator, scenario and quantity labels.

Every table header, axis, legend and sentence that names a column or a model
quantity goes through :func:`label`, so that no snake_case name, model-term
syntax (``segment[business]``) or settings key reaches a stakeholder's page.

The registry :data:`LABELS` holds the labels shared by every report; each
report module adds its own keys with :func:`register` when it is imported.
A key that is not registered still gets a readable label: model terms become
"Column: level" and snake_case becomes words, but reports should register
the keys they show, because "Ci lower" is readable and still not plain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

#: Labels shared by every report (report modules add theirs with :func:`register`).
LABELS: dict[str, str] = {
    # interval and test columns
    "estimate": "Estimate",
    "ci_lower": "Lower bound (95%)",
    "ci_upper": "Upper bound (95%)",
    "se": "Standard error",
    "std_err": "Standard error",
    "z": "z statistic",
    "chi2": "Chi-square",
    "df": "Degrees of freedom",
    "p": "p-value",
    "p_value": "p-value",
    "p_holm": "p-value (Holm-adjusted)",
    "p_adjusted": "p-value (adjusted)",
    "ratio": "Ratio",
    "hazard_ratio": "Hazard ratio",
    "rate_ratio": "Rate ratio",
    "risk_ratio": "Risk ratio",
    "odds_ratio": "Odds ratio",
    "coef": "Coefficient",
    "term": "Term",
    "level": "Level",
    "quantity": "Quantity",
    "unit": "Unit",
    "value": "Value",
    "n": "Customers",
    "customers": "Customers",
    "n_customers": "Customers",
    "accounts": "Accounts",
    "events": "Churn events",
    "churn_events": "Churn events",
    "churners": "Customers who left",
    "at_risk": "At risk",
    "n_at_risk": "At risk",
    "censored": "Still active (censored)",
    "customer_months": "Customer-months",
    "share": "Share",
    "rank": "Rank",
    "smd": "Standardised difference",
    "smd_weighted": "Standardised difference after weighting",
    "loglik": "Log-likelihood",
    "aic": "AIC",
    "bic": "BIC",
    "method": "Method",
    "estimand": "Estimand",
    "outcome": "Outcome",
    "horizon": "Horizon",
    "horizon_months": "Horizon (months)",
    "months": "Months",
    "tenure_months": "Tenure (months)",
    "period": "Period",
    "month": "Month",
    "week": "Week",
    "day": "Day",
    "quarter": "Quarter",
    "cohort": "Cohort",
    "date": "Date",
    "group": "Group",
    "covariate": "Factor",
    "variable": "Factor",
    "missing": "Missing",
    "missing_share": "Share missing",
    "rows": "Rows",
    "table": "Table",
    "column": "Column",
    "note": "Note",
    "status": "Status",
    # contract columns
    "customer_id": "Customer",
    "signup_date": "Sign-up date",
    "churn_date": "Churn date",
    "segment": "Segment",
    "region": "Region",
    "channel": "Acquisition channel",
    "acquisition_channel": "Acquisition channel",
    "value_tier": "Value tier",
    "plan": "Plan",
    "industry": "Industry",
    "amount": "Amount",
    "revenue": "Revenue",
    "spend": "Spend",
    "margin": "Margin",
    "purchases": "Purchases",
    "orders": "Orders",
    "enrolled": "Enrolled",
    "member": "Loyalty member",
    "members": "Members",
    "non_members": "Non-members",
    "nps": "NPS (0–10)",
    "csat": "CSAT (1–5)",
    "ces": "Customer effort (1–7)",
    "first_contact_resolution": "First-contact resolution",
    "fcr": "First-contact resolution",
    "sla_met": "SLA met",
    "kind": "Kind",
    "reason": "Reason",
    "churn_reason": "Churn reason",
    # estimators
    "naive": "Naive comparison",
    "regression": "Regression adjustment",
    "ipw": "Inverse-probability weighting",
    "aipw": "Doubly robust (AIPW)",
    "ATT": "Effect on those enrolled",
    "ATE": "Effect on everyone eligible",
    "kaplan_meier": "Kaplan–Meier",
    "cox": "Cox model",
    "rmst": "Restricted mean time retained",
    "rmtl": "Restricted mean time lost",
}

_TERM = re.compile(r"^(?P<col>[^\[\]]+)\[(?:T\.)?(?P<level>[^\[\]]*)\]$")
_SNAKE = re.compile(r"[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+")


def register(mapping: Mapping[str, str], *, replace: bool = False) -> None:
    """Add labels to the shared registry (one set of words per name).

    Parameters
    ----------
    mapping : mapping of str to str
        Key (column, term, estimator, scenario or quantity name) to its human label.
    replace : bool, default False
        Replace existing labels on purpose (e.g. labels that name a look-back set in params).

    Raises
    ------
    ValueError
        When a key already has a different label: the registry is shared by every
        report, so one name must read the same wherever it appears (the last
        module imported would otherwise decide). Give a report-specific quantity a
        name of its own, or pass table-only labels to :func:`relabel` (``extra``).
    """
    clashes = {
        str(k): (LABELS[str(k)], str(v))
        for k, v in mapping.items()
        if not replace and str(k) in LABELS and LABELS[str(k)] != str(v)
    }
    if clashes:
        raise ValueError(f"labels registered twice with different words: {clashes}")
    for k, v in mapping.items():
        LABELS[str(k)] = str(v)


def humanize(key: str) -> str:
    """Return words for a name nobody registered: ``"days_to_return"`` -> ``"Days to return"``."""
    text = str(key).replace("__", " ").replace("_", " ").strip()
    text = re.sub(r"\s+", " ", text)
    return text[:1].upper() + text[1:]


def label(key: Any) -> str:
    """Return the human label of a column, term, estimator, scenario or quantity name.

    Parameters
    ----------
    key : object
        The name. Registered names use :data:`LABELS`; model terms such as
        ``"segment[business]"`` or ``"segment[T.business]"`` become
        ``"Segment: business"``; other snake_case names become words.

    Returns
    -------
    str
        The label.
    """
    if not isinstance(key, str):
        return "" if key is None else str(key)
    if key in LABELS:
        return LABELS[key]
    m = _TERM.match(key)
    if m:
        return level_label(m.group("col"), m.group("level"))
    low = key.lower()
    if low in LABELS:
        return LABELS[low]
    if "_" in key and " " not in key:
        return humanize(key)
    return key


def value_label(value: Any) -> str:
    """Return a data value in words: ``"small_business"`` -> ``"Small business"`` (others as text)."""
    if isinstance(value, str) and "_" in value and " " not in value:
        return humanize(value)
    return "" if value is None else str(value)


def level_label(column: str, level: Any) -> str:
    """Return ``"Value tier: low"`` for column ``value_tier`` and level ``low``.

    Underscored values read as words: ``("industry", "small_business")`` gives
    ``"Industry: Small business"``.
    """
    return f"{label(column)}: {value_label(level)}"


def sentence_label(key: Any) -> str:
    """Return :func:`label` in lower case for use inside a sentence (acronyms kept)."""
    text = label(key)
    first = text.split(" ", 1)[0]
    if first.isupper() or any(c.isupper() for c in first[1:]):
        return text
    return text[:1].lower() + text[1:]


def relabel(df: pd.DataFrame, extra: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Return ``df`` with its column (and index) names replaced by their labels.

    Parameters
    ----------
    df : DataFrame
        A table about to be shown.
    extra : mapping, optional
        Labels for this table only; they take precedence over the registry.
    """
    extra = dict(extra or {})

    def one(name: Any) -> Any:
        if name is None:
            return None
        return extra.get(name, label(name)) if isinstance(name, str) else name

    out = df.rename(columns=one)
    if isinstance(out.index, pd.MultiIndex):
        out.index = out.index.set_names([one(n) for n in out.index.names])
    elif out.index.name is not None:
        out.index = out.index.rename(one(out.index.name))
    return out


def snake_case_tokens(text: str) -> list[str]:
    """Return the snake_case words in ``text`` (used by the report lint)."""
    return _SNAKE.findall(str(text))


def technical_text(text: Any, *, limit: int = 300) -> str:
    """Return a technical message fit for the analysts' appendix of a stakeholder page.

    The exception's module path goes (``analysis.errors.AnalysisError: ...`` -> ``...``),
    model terms read as words (``segment[T.business]`` -> ``segment: business``), Python
    list and tuple brackets and quotes go, and missing-value words read "missing", so the
    message neither looks like a broken page nor trips the report lint. Cut at ``limit``.
    """
    if text is None:
        return ""
    t = str(text).strip()
    t = re.sub(r"^(?:[A-Za-z_][\w]*\.)+([A-Z]\w*(?:Error|Exception|Warning|Fit)):\s*", "", t)
    t = re.sub(r"([A-Za-z_]\w*)\[(?:T\.)?([^\[\]]*)\]", r"\1: \2", t)
    t = t.replace("[", "(").replace("]", ")").replace("'", "").replace('"', "")
    t = re.sub(r"(?<![A-Za-z])(nan|NaN|NaT|inf|None)(?![A-Za-z])", "missing", t)
    t = re.sub(r"\s+", " ", t)
    return t if len(t) <= limit else t[: limit - 1].rstrip() + "…"
