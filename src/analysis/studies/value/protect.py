"""Value tiers, concentration of value and the ranked list of customers to protect.

Building blocks of :func:`analysis.studies.value.value_study`: each takes one row
per customer (a value in currency, a risk as a probability) and returns numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from analysis.errors import AnalysisError, Problem

# ---------------------------------------------------------------------------
# Value tiers, concentration and customers to protect
# ---------------------------------------------------------------------------


TIERS = ("low", "medium", "high")


def value_tiers(values: pd.Series, *, quantiles: tuple[float, float] = (0.5, 0.8)) -> pd.Series:
    """Assign value tiers by rank: low below the first quantile, high from the second.

    Parameters
    ----------
    values : pandas.Series
        Value per customer (e.g. CLV in currency).
    quantiles : (float, float)
        Rank cut-points; (0.5, 0.8) makes the top 20% "high", the next 30% "medium".

    Returns
    -------
    pandas.Series
        Ordered categorical with levels low < medium < high, same index as ``values``.
    """
    lo, hi = quantiles
    if not (0 < lo < hi < 1):
        raise AnalysisError(
            f"tier quantiles {quantiles!r} must satisfy 0 < low < high < 1.",
            [
                Problem(
                    "params",
                    "value.tier_quantiles",
                    "bad_quantiles",
                    "not increasing in (0, 1)",
                    fix="e.g. [0.5, 0.8]",
                )
            ],
        )
    pct = values.rank(method="first", pct=True)
    pos = {t: i for i, t in enumerate(TIERS)}
    code = np.where(pct > hi, pos["high"], np.where(pct > lo, pos["medium"], pos["low"]))
    return pd.Series(
        pd.Categorical.from_codes(code.astype(np.int8), categories=list(TIERS), ordered=True),
        index=values.index,
        name="value_tier",
    )


def value_concentration(
    values: pd.Series,
    *,
    top: float = 0.1,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> dict:
    """Return the share of total value held by the top ``top`` fraction of customers.

    The interval resamples customers (bootstrap), so it describes how stable the
    share is for a customer base like this one.

    Returns
    -------
    dict
        ``share`` (0-1), ``ci_lower``, ``ci_upper``, ``top`` and ``n_customers``.
    """
    v = np.sort(np.asarray(values, float))[::-1]
    v = v[np.isfinite(v)]
    n = v.size
    if n == 0 or v.sum() <= 0:
        raise AnalysisError("value_concentration: no positive values to summarise.")
    k = max(1, int(round(top * n)))
    share = v[:k].sum() / v.sum()
    rng = np.random.default_rng(seed)
    # One BLAS thread: waking idle BLAS threads for each short dot costs more than the dot.
    with threadpool_limits(1):
        boots = [_top_share_resample(v, k, rng) for _ in range(n_boot)]
    a = (1 - level) / 2
    lo, hi = np.quantile(boots, [a, 1 - a])
    return {
        "share": float(share),
        "ci_lower": float(lo),
        "ci_upper": float(hi),
        "top": top,
        "n_customers": int(n),
    }


def _top_share_resample(v: np.ndarray, k: int, rng) -> float:
    """Return the top-k share of one bootstrap resample of the descending values ``v``."""
    n = v.size
    # A resample of the descending values is each value repeated by its draw count,
    # already in order: the top-k sum needs counts, not a sort. (The draws are those
    # of rng.choice(v, n), which calls rng.integers(0, n, n).)
    cnt = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
    cum = np.cumsum(cnt)
    j = int(np.searchsorted(cum, k))  # value at position k of the sorted resample
    top_sum = np.dot(cnt[:j], v[:j]) + (k - (cum[j - 1] if j else 0)) * v[j]
    return float(top_sum / np.dot(cnt, v))


_TRUE_TEXT = {"true", "t", "1", "1.0", "yes", "y"}


def strategic_flags(values: pd.Series) -> pd.Series:
    """Read a true/false column as booleans, missing as False.

    Text columns from CSV files hold words, not booleans: ``"false"`` and ``"no"``
    are False (a plain ``astype(bool)`` would make every non-empty string True).
    """
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return pd.Series(
            np.nan_to_num(pd.to_numeric(values, errors="coerce").astype(float).to_numpy()) != 0,
            index=values.index,
        )
    text = values.astype("string").str.strip().str.lower()
    return text.isin(_TRUE_TEXT).fillna(False).astype(bool)


def customers_to_protect(
    scores: pd.DataFrame,
    *,
    value: str = "clv",
    risk: str = "risk",
    customer_id: str = "customer_id",
    segment: str | None = "segment",
    tier_quantiles: tuple[float, float] = (0.5, 0.8),
    risk_threshold: float | None = None,
    risk_top_share: float = 0.2,
    strategic_segments: list[str] | tuple[str, ...] = (),
    strategic_column: str | None = None,
) -> pd.DataFrame:
    """Rank customers by value at stake and flag high-value customers at high risk.

    Parameters
    ----------
    scores : pandas.DataFrame
        One row per customer with a value column (currency) and a risk column
        (probability 0-1 of being lost: churn probability from the churn-risk model,
        or 1 - P(alive) from a BG/NBD or Pareto/NBD fit).
    value, risk, customer_id, segment : str
        Column names (``segment`` may be None).
    tier_quantiles : (float, float)
        Cut-points for :func:`value_tiers`.
    risk_threshold : float, optional
        Risk at or above which a customer counts as at risk. Default: relative, the
        ``risk_top_share`` of customers with the highest risk.
    risk_top_share : float
        Share of customers counted as at risk when no absolute threshold is given.
    strategic_segments : sequence of str
        Segments flagged as strategic.
    strategic_column : str, optional
        Boolean column flagging strategic customers (combined with ``strategic_segments`` by OR).

    Returns
    -------
    pandas.DataFrame
        All customers sorted by ``value_at_stake`` (value x risk, currency),
        descending: ``rank``, ``customer_id``, ``segment``, ``clv_tier`` (value tier),
        ``strategic``, ``value``, ``risk``, ``at_risk``, ``value_at_stake``,
        ``protect`` (high tier and at risk).
    """
    for c in [value, risk, customer_id] + ([segment] if segment else []):
        if c not in scores.columns:
            raise AnalysisError(f"customers_to_protect: column {c!r} not found in scores.")
    r = scores[risk].astype(float)
    if ((r < 0) | (r > 1)).any():
        raise AnalysisError(f"Risk column {risk!r} must hold probabilities in [0, 1].")
    out = pd.DataFrame(
        {
            "customer_id": scores[customer_id].to_numpy(),
            "segment": _text_or_categorical(scores[segment]) if segment else "all",
            "value": scores[value].astype(float).to_numpy(),
            "risk": r.to_numpy(),
        }
    )
    out["clv_tier"] = value_tiers(out["value"], quantiles=tier_quantiles).to_numpy()
    strategic = out["segment"].isin(list(strategic_segments)).to_numpy()
    if strategic_column:
        if strategic_column not in scores.columns:
            raise AnalysisError(f"strategic column {strategic_column!r} not found in scores.")
        strategic = strategic | strategic_flags(scores[strategic_column]).to_numpy()
    out["strategic"] = strategic
    if risk_threshold is None:
        scored = int(out["risk"].notna().sum())  # customers without a risk are never at risk
        out["at_risk"] = (
            out["risk"].rank(method="first", ascending=False) <= risk_top_share * scored
        )
    else:
        out["at_risk"] = out["risk"] >= risk_threshold
    out["value_at_stake"] = out["value"] * out["risk"]
    out["protect"] = (out["clv_tier"] == "high") & out["at_risk"]
    out = out.sort_values(
        ["protect", "value_at_stake"], ascending=[False, False], kind="stable"
    ).reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out[
        [
            "rank",
            "customer_id",
            "segment",
            "clv_tier",
            "strategic",
            "value",
            "risk",
            "at_risk",
            "value_at_stake",
            "protect",
        ]
    ]


def _text_or_categorical(values: pd.Series):
    """A group column as text, or left categorical (one small code per customer instead of
    a string each: the value study's segments at ten million customers)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in values.cat.categories]
        if len(set(cats)) == len(cats):
            return values.cat.rename_categories(cats).array
    return values.astype(str).to_numpy()


def protect_summary(
    ranked: pd.DataFrame, *, by=("segment", "clv_tier"), min_group_size: int = 10
) -> pd.DataFrame:
    """Summarise a ranked list by group: customers, at risk, to protect, value and value at stake.

    Groups with fewer than ``min_group_size`` customers keep their count (so a
    report table can show "<N") but every other number is suppressed (NaN), and
    ``suppressed`` is True.
    """
    by = list(by)
    g = ranked.groupby(by, observed=True, sort=True)
    out = g.agg(
        customers=("customer_id", "size"),
        at_risk=("at_risk", "sum"),
        to_protect=("protect", "sum"),
        strategic=("strategic", "sum"),
        value=("value", "sum"),
        value_at_stake=("value_at_stake", "sum"),
        mean_risk=("risk", "mean"),
    ).reset_index()
    for c in by:  # group labels as text (a categorical column keeps no room for a total)
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype(str)
    small = out["customers"] < min_group_size
    num = [
        "customers",
        "at_risk",
        "to_protect",
        "strategic",
        "value",
        "value_at_stake",
        "mean_risk",
    ]
    out[num] = out[num].astype(float)
    out.loc[small, num] = np.nan
    out["suppressed"] = small
    return out
