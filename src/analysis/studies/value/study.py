"""The customer value study: everything the 04_customer_value report shows, as numbers.

Value tiers, concentration of value and the ranked list of customers to protect,
and :func:`value_study`, which runs the purchase models, CLV and the churn-risk
model on a loaded data source. Sentences are written by :mod:`analysis.report.value`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from analysis.errors import AnalysisError, Problem, examples_of
from analysis.stats.btyd.bgnbd import fit_bgnbd
from analysis.stats.btyd.clv import (
    _check_freq,
    _clv_columns,
    _clv_interval,
    _ClvInputs,
    _per_unit_rate,
    _tracking_table,
    holdout_by_frequency,
    holdout_errors,
    parameter_table,
)
from analysis.stats.btyd.gamma_gamma import fit_gamma_gamma
from analysis.stats.btyd.pareto_nbd import fit_pareto_nbd
from analysis.stats.btyd.units import _MONTH_DAYS, _as_day, _unit_days
from analysis.studies.value.churn_risk import (
    ChurnRiskResult,
    _churn_features_coded,
    _CustomerCoder,
    _cutoff_days,
    _ExperienceArrays,
    _TxBins,
    churn_risk_cutoffs,
    fit_churn_risk,
)
from analysis.studies.value.rfm import _rfm_from_codes

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
    lab = np.where(pct > hi, "high", np.where(pct > lo, "medium", "low"))
    return pd.Series(
        pd.Categorical(lab, categories=list(TIERS), ordered=True),
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
            "segment": scores[segment].astype(str).to_numpy() if segment else "all",
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
        out["at_risk"] = out["risk"].rank(method="first", ascending=False) <= risk_top_share * len(
            out
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


# ---------------------------------------------------------------------------
# Study: everything the 04_customer_value report shows
# ---------------------------------------------------------------------------


@dataclass
class ValueStudy:
    """Results of :func:`value_study` (all money in the data's currency).

    Attributes
    ----------
    settings : dict
        Calibration end, observation end, unit, horizon (units and months), discount rate,
        risk horizon, number of customers used and excluded, notes.
    calibration : pandas.DataFrame
        RFM summary of the calibration/holdout split (validation).
    models_calibration : dict
        Fitted on the calibration period: "bgnbd", "pareto_nbd" (or None), "gamma_gamma".
    holdout_by_frequency, holdout_errors, tracking : pandas.DataFrame
        Validation tables (see :func:`holdout_by_frequency`, :func:`holdout_errors`,
        :func:`cumulative_tracking`).
    models : dict
        Refitted on all data up to as_of: "bgnbd", "pareto_nbd" (or None), "gamma_gamma".
    parameters : pandas.DataFrame
        Parameter tables of the as-of models (estimate, se, interval).
    scores : pandas.DataFrame
        One row per scored customer: RFM, P(alive), expected transactions and spend,
        CLV, risk and its source.
    total_clv : (float, float, float)
        Total CLV with a parameter-uncertainty interval.
    concentration : dict
        Share of value in the top ``top_share`` of customers, with a bootstrap interval.
    ranked : pandas.DataFrame
        Full ranked list of :func:`customers_to_protect` (for the CSV export only).
    by_group : pandas.DataFrame
        Customers, at risk, to protect and value at stake by segment and CLV tier.
    rfm_by_tier : pandas.DataFrame
        Mean RFM and value by CLV tier.
    churn : ChurnRiskResult or None
        Contractual churn-risk model (None when the data has no churn dates).
    caveats : list of dict
        Exclusions and models left out, in the order they arose, one record each:
        ``kind`` ("left_truncated", "model_left_out", "churned_before_as_of",
        "no_purchases", "no_margin", "churn_model_failed", "no_churn_dates") and its
        numbers (customer counts, the as-of date, the error summary).
        :func:`analysis.report.value.study_notes` writes them as sentences.
    notes : list of str
        Those sentences. Empty here; filled by
        :func:`analysis.report.value.value_study_with_notes` (which is the compatibility
        function ``analysis.value.value_study``).
    """

    settings: dict
    calibration: pd.DataFrame
    models_calibration: dict
    holdout_by_frequency: pd.DataFrame
    holdout_errors: pd.DataFrame
    tracking: pd.DataFrame
    models: dict
    parameters: pd.DataFrame
    scores: pd.DataFrame
    total_clv: tuple
    concentration: dict
    ranked: pd.DataFrame
    by_group: pd.DataFrame
    rfm_by_tier: pd.DataFrame
    churn: ChurnRiskResult | None
    caveats: list
    notes: list = field(default_factory=list)


def _split_dates(window_start, as_of, calibration_weeks: int, holdout_weeks: int):
    ws = pd.Timestamp(window_start).normalize()
    ao = pd.Timestamp(as_of).normalize()
    days = (ao - ws).days + 1
    if calibration_weeks and calibration_weeks > 0:
        cal_end = ws + pd.Timedelta(days=7 * calibration_weeks - 1)
    else:
        cal_end = ws + pd.Timedelta(days=days // 2 - 1)
    if holdout_weeks and holdout_weeks > 0:
        obs_end = min(cal_end + pd.Timedelta(days=7 * holdout_weeks), ao)
    else:
        obs_end = ao
    if not (ws < cal_end < obs_end):
        raise AnalysisError(
            f"Cannot split the window {ws.date()}..{ao.date()} into calibration and holdout "
            f"(calibration_weeks={calibration_weeks}, holdout_weeks={holdout_weeks}).",
            [
                Problem(
                    "params",
                    "value.calibration_weeks",
                    "bad_split",
                    "calibration end must fall inside the window",
                    fix="use fewer calibration weeks or 0 (half the window)",
                )
            ],
        )
    return cal_end.date(), obs_end.date()


@dataclass
class _CodedTransactions:
    """The transaction columns the value study needs, as arrays with integer customer codes."""

    coder: _CustomerCoder
    codes: np.ndarray  # int32 code per row (int32 halves the memory of 25M rows)
    days: np.ndarray  # int32 day number per row
    amount: np.ndarray  # float64 per row (currency)
    margin: np.ndarray | None  # float64 per row, None when the data has no margins


def _study_transactions(study, customer_ids) -> _CodedTransactions:
    """Pull the transactions of ``study`` as compact arrays (Arrow, not pandas objects).

    Only customer id, date, amount and margin are read; ids become int64 codes in
    order of first appearance (see :class:`_CustomerCoder`), dates int64 day numbers.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    t = study.source.table("transactions").select("customer_id", "date", "amount", "margin")
    tab = t.to_pyarrow()
    n_missing = tab.column("customer_id").null_count
    if n_missing:
        raise AnalysisError(
            f"{n_missing:,} transactions have no customer_id.",
            [
                Problem(
                    "transactions",
                    "customer_id",
                    "missing_key",
                    "missing customer ids",
                    n_rows=n_missing,
                    fix="drop these rows",
                )
            ],
        )
    coder, codes = _CustomerCoder.from_arrow(tab.column("customer_id"), customer_ids)
    tab = tab.drop_columns(["customer_id"])  # free the id strings before the next copies
    dates = tab.column("date")
    if dates.null_count:
        raise AnalysisError(
            f"{dates.null_count:,} rows of transactions have no date.",
            [
                Problem(
                    "transactions",
                    "date",
                    "missing_date",
                    "missing dates",
                    n_rows=dates.null_count,
                    fix="drop or repair rows without a date before the value study",
                )
            ],
        )
    days = pc.cast(dates, pa.int32()).to_numpy(zero_copy_only=False)
    del dates
    tab = tab.drop_columns(["date"])
    amount = tab.column("amount").to_numpy(zero_copy_only=False).astype(float, copy=False)
    tab = tab.drop_columns(["amount"])
    bad = np.isnan(amount)
    if bad.any():
        raise AnalysisError(
            f"{int(bad.sum()):,} transactions have no numeric amount.",
            [
                Problem(
                    "transactions",
                    "amount",
                    "missing_amount",
                    "missing or non-numeric amounts",
                    n_rows=int(bad.sum()),
                    examples=examples_of(pd.Series(coder.ids[codes[bad]])),
                    fix="repair or drop these rows",
                )
            ],
        )
    m = tab.column("margin")
    margin = (
        m.to_numpy(zero_copy_only=False).astype(float, copy=False)
        if m.null_count < len(m)
        else None
    )
    del m, tab
    pa.default_memory_pool().release_unused()
    return _CodedTransactions(coder, codes, days, amount, margin)


def _coded_table(study, name: str, columns, coder: _CustomerCoder) -> pd.DataFrame:
    """Pull a contract table to pandas with customer ids as codes, bypassing the study cache.

    ``study.table`` keeps every table it pulls for the rest of the notebook; these
    are needed only while the churn features are built.
    """
    t = study.source.table(name)
    if columns:
        t = t.select(*columns)
    frame = t.to_pandas()
    frame["customer_id"] = coder.codes_of(frame["customer_id"])
    return frame


def _try_pareto(summary, caveats, label):
    try:
        return fit_pareto_nbd(summary)
    except AnalysisError as exc:
        caveats.append(
            {"kind": "model_left_out", "model": "Pareto/NBD", "data": label, "reason": exc.summary}
        )
        return None


def value_study(
    study,
    *,
    calibration_weeks: int | None = None,
    holdout_weeks: int | None = None,
    freq: str | None = None,
    horizon_months: float | None = None,
    discount_rate: float | None = None,
    risk_horizon_months: float | None = None,
    tier_quantiles: tuple[float, float] | None = None,
    risk_threshold: float | None = None,
    risk_top_share: float | None = None,
    n_draws: int = 50,
    seed: int = 0,
) -> ValueStudy:
    """Run the customer value and churn-risk study on a loaded data source.

    Steps: (1) calibration/holdout split, BG/NBD, Pareto/NBD and Gamma-Gamma fits on
    the calibration period, validated on the holdout; (2) refit on all data to
    ``as_of`` and score every active customer: P(alive), expected transactions and
    spend, CLV over the horizon; (3) a contractual churn-risk model where the data
    has churn dates (otherwise risk = 1 - P(alive)); (4) value tiers, concentration
    and the ranked list of customers to protect.

    Parameters
    ----------
    study : analysis.data.StudyData
        From :func:`analysis.data.load_study_data`; its params' ``value`` section gives
        the defaults of every argument left as None.
    calibration_weeks, holdout_weeks : int, optional
        Split of the window (0: half / the rest).
    freq : {"D", "W", "M"}, optional
        Time unit of the purchase models.
    horizon_months, discount_rate, risk_horizon_months : float, optional
        CLV horizon (months), annual discount rate, churn-risk label window (months).
    tier_quantiles : (float, float), optional
        CLV-tier cut-points (params ``value.tier_quantiles``; default top 20% high,
        next 30% medium).
    risk_threshold : float, optional
        Absolute risk at or above which a customer counts as at risk; default: the
        ``risk_top_share`` riskiest customers.
    risk_top_share : float, optional
        Share of customers counted as at risk (relative definition; params
        ``value.risk_top_share``).
    n_draws : int
        Parameter draws for the total-CLV interval.
    seed : int
        Seed for the bootstrap, the parameter draws and the churn model.

    Returns
    -------
    ValueStudy
    """
    vp = study.params.value
    calibration_weeks = vp.calibration_weeks if calibration_weeks is None else calibration_weeks
    holdout_weeks = vp.holdout_weeks if holdout_weeks is None else holdout_weeks
    freq = freq or vp.freq
    horizon_months = vp.clv_horizon_months if horizon_months is None else horizon_months
    discount_rate = vp.discount_rate_annual if discount_rate is None else discount_rate
    risk_horizon_months = (
        vp.risk_horizon_months if risk_horizon_months is None else risk_horizon_months
    )
    if tier_quantiles is None:
        tier_quantiles = tuple(getattr(vp, "tier_quantiles", (0.5, 0.8)))
    if risk_top_share is None:
        risk_top_share = float(getattr(vp, "risk_top_share", 0.2))
    unit = _unit_days(freq)
    horizon = horizon_months * _MONTH_DAYS / unit
    caveats: list[dict] = []

    customers = study.table("customers")
    as_of = pd.Timestamp(study.as_of)
    window_start = pd.Timestamp(study.window_start)
    # Transactions stay compact arrays with integer customer codes: at a million
    # customers a pandas frame of string ids costs gigabytes and most of the run time.
    txa = _study_transactions(study, customers["customer_id"])
    coder = txa.coder
    n_codes = len(coder.ids)
    cust_codes = coder.codes_of(customers["customer_id"])
    margin_col = "margin" if txa.margin is not None else None

    # (1) Calibration / holdout on the cohort acquired inside the window (its first
    # purchase is its true first purchase); left-truncated customers are scored later.
    cal_end, obs_end = _split_dates(window_start, as_of, calibration_weeks, holdout_weeks)
    signup = pd.to_datetime(customers["signup_date"])
    in_cohort = (signup >= window_start).to_numpy()
    n_truncated = int((signup < window_start).sum())
    if n_truncated:
        caveats.append(
            {"kind": "left_truncated", "customers": n_truncated, "in_cohort": int(in_cohort.sum())}
        )
    cohort_code = np.zeros(n_codes, bool)
    cohort_code[cust_codes[in_cohort]] = True
    rows = cohort_code[txa.codes]
    cal_pairs: list = []
    calib, cal_who = _rfm_from_codes(
        txa.codes[rows],
        coder.ids,
        txa.days[rows],
        txa.amount[rows],
        None,
        cal_end=_as_day(cal_end, "calibration_end"),
        obs_end=_as_day(obs_end, "observation_end"),
        freq=freq,
        purchase_days=cal_pairs,
    )
    del rows
    m_cal = {"bgnbd": fit_bgnbd(calib), "gamma_gamma": fit_gamma_gamma(calib)}
    m_cal["pareto_nbd"] = _try_pareto(calib, caveats, "calibration")
    hbf = holdout_by_frequency(calib, m_cal["bgnbd"])
    if m_cal["pareto_nbd"] is not None:
        hbf = hbf.merge(
            holdout_by_frequency(calib, m_cal["pareto_nbd"])[
                ["frequency_group", "predicted"]
            ].rename(columns={"predicted": "predicted_pareto_nbd"}),
            on="frequency_group",
        )
    herr = pd.DataFrame(
        [holdout_errors(calib, m) for k, m in m_cal.items() if k != "gamma_gamma" and m is not None]
    )
    first_by_code = np.full(n_codes, np.iinfo(np.int64).max)
    first_by_code[cal_who] = (
        calib["first_purchase"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    )
    pair_cust, pair_day = cal_pairs
    tracking = _tracking_table(pair_day[pair_day > first_by_code[pair_cust]], calib, m_cal["bgnbd"])
    del cal_pairs, pair_cust, pair_day, first_by_code

    # (2) Refit on everything to as_of and score active customers.
    now, now_who = _rfm_from_codes(
        txa.codes,
        coder.ids,
        txa.days,
        txa.amount,
        txa.margin,
        cal_end=_as_day(as_of, "calibration_end"),
        obs_end=None,
        freq=freq,
    )
    gone_code = np.zeros(n_codes, bool)
    if "churn_date" in customers.columns:
        cd = pd.to_datetime(customers["churn_date"])
        gone_code[cust_codes[(cd.notna() & (cd <= as_of)).to_numpy()]] = True
    n_gone = int(gone_code.sum())
    keep_now = ~gone_code[now_who]
    active = now[keep_now].reset_index(drop=True)
    active.attrs.update(now.attrs)
    active_codes = now_who[keep_now]
    if n_gone:
        caveats.append({"kind": "churned_before_as_of", "customers": n_gone, "as_of": as_of.date()})
    scored_code = np.zeros(n_codes, bool)
    scored_code[now_who] = True
    n_never = int((~scored_code[cust_codes]).sum())
    if n_never:
        caveats.append({"kind": "no_purchases", "customers": n_never})
    # The Pareto/NBD (slow: a hypergeometric function per customer) is fitted on the
    # calibration period only, to compare holdout accuracy with the BG/NBD.
    models = {"bgnbd": fit_bgnbd(now), "gamma_gamma": fit_gamma_gamma(now)}
    del now
    txa.margin = None
    margin = "margin_ratio" if margin_col else 1.0
    if not margin_col:
        caveats.append({"kind": "no_margin"})
    _check_freq(active, freq)
    rate = _per_unit_rate(discount_rate, freq)
    clv_inputs = _ClvInputs(active, margin)
    c = pd.DataFrame(
        {
            "customer_id": clv_inputs.customer_id,
            **_clv_columns(
                models["bgnbd"],
                models["gamma_gamma"],
                clv_inputs,
                horizon=float(horizon),
                rate=rate,
                step=1.0,
            ),
        },
        index=clv_inputs.index,
    )
    total = _clv_interval(
        models["bgnbd"],
        models["gamma_gamma"],
        clv_inputs,
        float(c["clv"].sum()),
        horizon=float(horizon),
        rate=rate,
        freq=freq,
        n_draws=n_draws,
        level=0.95,
        seed=seed,
    )
    del clv_inputs
    scores = active[
        ["customer_id", "frequency", "recency", "T", "monetary_value", "calibration_value"]
    ].copy()
    scores = scores.join(c.drop(columns=["customer_id"]))
    if "segment" in customers.columns:
        seg_by_code = np.full(n_codes, None, dtype=object)
        seg_by_code[cust_codes] = customers["segment"].to_numpy(dtype=object)
        scores["segment"] = (
            pd.Series(seg_by_code[active_codes]).fillna("unknown").astype(str).to_numpy()
        )
    else:
        scores["segment"] = "all"
    scores["risk"] = 1.0 - scores["p_alive"]
    scores["risk_source"] = "1 - P(alive), BG/NBD"

    # (3) Contractual churn risk where churn dates exist.
    churn = None
    has_churn = "churn_date" in customers.columns and customers["churn_date"].notna().any()
    if has_churn:
        cuts = churn_risk_cutoffs(as_of, horizon_months=risk_horizon_months)
        attrs = [
            a
            for a in ["segment", *getattr(study.source, "attributes", [])]
            if a in customers.columns
        ]
        exp_cols = ["customer_id", "date", "kind", "first_contact_resolution", "sla_met"]
        exp_cols += ["csat", "nps"]
        kw = dict(
            horizon_months=risk_horizon_months,
            definition="contractual",
            customer_id="customer_id",
            signup="signup_date",
            churn="churn_date",
            attributes=attrs,
            extra=None,
            as_of=as_of,
            experience=_ExperienceArrays(
                _coded_table(study, "experience", exp_cols, coder), "customer_id"
            )
            if study.has("experience")
            else None,
            loyalty=_coded_table(study, "loyalty", None, coder) if study.has("loyalty") else None,
        )
        cust_cols = ["customer_id", "signup_date", "churn_date", *attrs]
        coded_customers = coder.code_frame(customers[cust_cols], "customer_id")
        bins = _TxBins(
            txa.codes,
            txa.days,
            txa.amount,
            n_codes,
            [_cutoff_days(cuts[k], risk_horizon_months) for k in ("train", "test", "score")],
        )
        del txa  # the bins hold all the churn model needs from the transactions
        args = (coded_customers, coder, bins)
        try:
            train = _churn_features_coded(*args, cutoff=cuts["train"], **kw)
            test = _churn_features_coded(*args, cutoff=cuts["test"], **kw)
            churn = fit_churn_risk(train, test, seed=seed)
            del train, test
            cur = _churn_features_coded(*args, cutoff=cuts["score"], **kw)
            p = churn.predict(cur)
            pmap = pd.Series(p.to_numpy(), index=cur["customer_id"].to_numpy())
            got = pmap.reindex(scores["customer_id"].to_numpy())
            ok = got.notna().to_numpy()
            scores.loc[ok, "risk"] = got.to_numpy()[ok]
            scores.loc[ok, "risk_source"] = f"churn-risk model, next {risk_horizon_months:g} months"
        except AnalysisError as exc:
            caveats.append({"kind": "churn_model_failed", "reason": exc.summary})
            churn = None
    else:
        caveats.append({"kind": "no_churn_dates"})

    # (4) Tiers, concentration, customers to protect.
    ranked = customers_to_protect(
        scores,
        value="clv",
        risk="risk",
        tier_quantiles=tier_quantiles,
        risk_threshold=risk_threshold,
        risk_top_share=risk_top_share,
        strategic_segments=vp.strategic_segments,
        strategic_column=None,
    )
    if vp.strategic_column and vp.strategic_column in customers.columns:
        flag = strategic_flags(customers.set_index("customer_id")[vp.strategic_column])
        ranked["strategic"] = (
            ranked["strategic"] | flag.reindex(ranked["customer_id"]).fillna(False).to_numpy()
        )
    scores = scores.merge(
        ranked[["customer_id", "clv_tier", "strategic", "at_risk", "value_at_stake", "protect"]],
        on="customer_id",
    )
    conc = value_concentration(scores["clv"], top=vp.top_share, seed=seed)
    by_group = protect_summary(
        ranked, by=["segment", "clv_tier"], min_group_size=study.min_group_size
    )
    tier = scores.groupby("clv_tier", observed=True)
    total_clv_sum = scores["clv"].sum()
    rfm_by_tier = tier.agg(
        customers=("customer_id", "size"),
        frequency=("frequency", "mean"),
        recency=("recency", "mean"),
        T=("T", "mean"),
        monetary_value=("monetary_value", "mean"),
        p_alive=("p_alive", "mean"),
        clv=("clv", "mean"),
        clv_total=("clv", "sum"),
        risk=("risk", "mean"),
    ).reset_index()
    rfm_by_tier["clv_share"] = rfm_by_tier["clv_total"] / total_clv_sum
    rfm_by_tier["clv_tier"] = rfm_by_tier["clv_tier"].astype(str)
    order = {t: i for i, t in enumerate(("high", "medium", "low"))}
    rfm_by_tier = rfm_by_tier.sort_values("clv_tier", key=lambda c: c.map(order)).reset_index(
        drop=True
    )
    tabs = [
        parameter_table(models["bgnbd"]).assign(fitted_on=f"all data to {as_of.date()}"),
        parameter_table(models["gamma_gamma"]).assign(fitted_on=f"all data to {as_of.date()}"),
    ]
    for key in ("bgnbd", "pareto_nbd", "gamma_gamma"):
        if m_cal.get(key) is not None:
            tabs.append(parameter_table(m_cal[key]).assign(fitted_on=f"calibration to {cal_end}"))
    params_tab = pd.concat(tabs, ignore_index=True)
    settings = {
        "as_of": str(as_of.date()),
        "window_start": str(window_start.date()),
        "calibration_end": str(cal_end),
        "observation_end": str(obs_end),
        "freq": freq,
        "unit_label": {"D": "days", "W": "weeks", "M": "months"}[freq],
        "horizon_units": horizon,
        "horizon_months": horizon_months,
        "discount_rate": discount_rate,
        "risk_horizon_months": risk_horizon_months,
        "risk_threshold": risk_threshold,
        "risk_top_share": risk_top_share,
        "tier_quantiles": tier_quantiles,
        "n_calibration": len(calib),
        "n_scored": len(scores),
        "margin": bool(margin_col),
    }
    return ValueStudy(
        settings=settings,
        calibration=calib,
        models_calibration=m_cal,
        holdout_by_frequency=hbf,
        holdout_errors=herr,
        tracking=tracking,
        models=models,
        parameters=params_tab,
        scores=scores,
        total_clv=total,
        concentration=conc,
        ranked=ranked,
        by_group=by_group,
        rfm_by_tier=rfm_by_tier,
        churn=churn,
        caveats=caveats,
    )
