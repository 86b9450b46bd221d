"""The customer value study: everything the 04_customer_value report shows, as numbers.

Value tiers, concentration of value and the ranked list of customers to protect,
and :func:`value_study`, which runs the purchase models, CLV and the churn-risk
model on a loaded data source. Sentences are written by :mod:`analysis.report.value`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analysis.errors import AnalysisError, Problem
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
from analysis.studies.sections import Skipped, attempt
from analysis.studies.value import inputs
from analysis.studies.value.churn_risk import (
    _churn_features_coded,
    _CustomerCoder,
    _cutoff_days,
    _EngineExperience,
    churn_risk_cutoffs,
    fit_churn_risk,
)
from analysis.studies.value.contractual import _PERIOD_DAYS, contractual_value
from analysis.studies.value.protect import (  # noqa: E402  (re-exported)
    customers_to_protect,
    protect_summary,
    strategic_flags,
    value_concentration,
    value_tiers,
)
from analysis.studies.value.purchase import fit_section, fitted

# ---------------------------------------------------------------------------
# Study: everything the 04_customer_value report shows
# ---------------------------------------------------------------------------


@dataclass
class ValueStudy:
    """Results of :func:`value_study` (all money in the data's currency).

    A part that this data cannot support holds a
    :class:`~analysis.studies.sections.Skipped` in place of its result (and is
    listed in ``skipped``); every other part is kept.

    Attributes
    ----------
    settings : dict
        Calibration end, observation end, unit, horizon (units and months), discount rate,
        risk horizon, number of customers used and excluded, ``value_source``.
    calibration : pandas.DataFrame
        RFM summary of the calibration/holdout split (validation).
    models_calibration : dict
        Fitted on the calibration period: "bgnbd", "pareto_nbd", "gamma_gamma" (model or Skipped).
    holdout_by_frequency, holdout_errors, tracking : pandas.DataFrame or Skipped
        Validation tables of the BG/NBD (see :func:`holdout_by_frequency`,
        :func:`holdout_errors`, :func:`cumulative_tracking`).
    models : dict
        Refitted on all data up to as_of: "bgnbd", "gamma_gamma" (model or Skipped).
    parameters : pandas.DataFrame
        Parameter tables of every fitted model (estimate, se, interval, loglik, fitted_on).
    scores : pandas.DataFrame
        One row per scored (active) customer: RFM, the purchase models' P(alive),
        expected transactions and spend and ``clv_purchase`` (value over the horizon),
        the contractual model's ``renewals``, ``value_per_period``, ``derl``,
        ``clv_contract`` (residual lifetime value) and ``clv_contract_horizon``, and
        ``clv``: the value the report uses (``value_source``), risk and its source.
    value_source : str
        "contractual" (sBG: value per period x discounted expected residual lifetime),
        "purchase" (BG/NBD + Gamma-Gamma over ``horizon_months``) or "history" (margin of
        the last ``horizon_months``, observed; no model could be fitted).
    total_clv : (float, float, float)
        Total of ``clv`` with a 95% parameter-uncertainty interval (NaN bounds for "history").
    total_purchase : tuple or None
        Total of the purchase models' value over the horizon (when both fitted).
    contract : ContractualValue, Skipped or None
        The contractual (sBG) model; None for a non-contractual business.
    concentration : dict
        Share of value in the top ``top_share`` of customers, with a bootstrap interval.
    ranked : pandas.DataFrame or Skipped
        Full ranked list of :func:`customers_to_protect` (for the CSV export only).
    by_group : pandas.DataFrame or Skipped
        Customers, at risk, to protect and value at stake by segment and CLV tier.
    rfm_by_tier : pandas.DataFrame
        Mean RFM and value by CLV tier.
    churn : ChurnRiskResult, Skipped or None
        Contractual churn-risk model (None when the data has no churn dates).
    skipped : list of Skipped
        Every part that could not be estimated, in order.
    caveats : list of dict
        Exclusions, in the order they arose, one record each: ``kind``
        ("left_truncated", "churned_before_as_of", "no_purchases", "no_margin",
        "no_churn_dates") and its numbers. :func:`analysis.report.value.study_notes`
        writes them as sentences.
    notes : list of str
        Those sentences. Empty here; filled by
        :func:`analysis.report.value.value_study_with_notes`.
    """

    settings: dict
    calibration: pd.DataFrame
    models_calibration: dict
    holdout_by_frequency: object
    holdout_errors: object
    tracking: object
    models: dict
    parameters: pd.DataFrame
    scores: pd.DataFrame
    total_clv: tuple
    concentration: dict
    ranked: object
    by_group: object
    rfm_by_tier: pd.DataFrame
    churn: object
    caveats: list
    value_source: str = "purchase"
    total_purchase: tuple | None = None
    contract: object = None
    skipped: list = field(default_factory=list)
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

    customers = _customers(study)
    as_of = pd.Timestamp(study.as_of)
    window_start = pd.Timestamp(study.window_start)
    # Only per-customer statistics built on the engine reach Python (inputs.py): the
    # transactions themselves stay where the data lives, whatever their number.
    has_margin = inputs.check_transactions(study)
    margin_col = "margin" if has_margin else None
    as_of_day = _as_day(as_of, "calibration_end")
    now_tab = inputs.rfm_table(study, cal_end=as_of_day, obs_end=None, margin=has_margin)
    # codes of the source (identifier order): engine results come keyed by them, and the
    # identifiers stay one Arrow array, put back only where a table shows customers
    coder = _CustomerCoder.from_source(study.source)
    n_codes = len(coder.ids)
    cust_codes = customers["customer_id"].to_numpy(np.int64)  # pulled as codes

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
    cal_day, obs_day = _as_day(cal_end, "calibration_end"), _as_day(obs_end, "observation_end")
    calib, cal_who = inputs.rfm_frame(
        inputs.rfm_table(
            study, cal_end=cal_day, obs_end=obs_day, margin=False, since_signup=window_start.date()
        ),
        coder,
        cal_end=cal_day,
        obs_end=obs_day,
        freq=freq,
    )
    cal_words = "calibration period"
    m_cal = {
        "bgnbd": fit_section("bgnbd", fit_bgnbd, calib, data=cal_words),
        "gamma_gamma": fit_section("gamma_gamma", fit_gamma_gamma, calib, data=cal_words),
        "pareto_nbd": fit_section("pareto_nbd", fit_pareto_nbd, calib, data=cal_words),
    }
    bg_cal = m_cal["bgnbd"]
    if fitted(bg_cal):
        hbf = holdout_by_frequency(calib, bg_cal)
        if fitted(m_cal["pareto_nbd"]):
            hbf = hbf.merge(
                holdout_by_frequency(calib, m_cal["pareto_nbd"])[
                    ["frequency_group", "predicted"]
                ].rename(columns={"predicted": "predicted_pareto_nbd"}),
                on="frequency_group",
            )
        herr = pd.DataFrame(
            [holdout_errors(calib, m_cal[k]) for k in ("bgnbd", "pareto_nbd") if fitted(m_cal[k])]
        )
        rep_day, rep_n = inputs.repeat_days(
            study, cal_end=cal_end, obs_end=obs_end, since_signup=window_start.date()
        )
        tracking = _tracking_table(rep_day, calib, bg_cal, weights=rep_n)
    else:
        hbf = herr = tracking = Skipped(
            "Holdout check of the purchase model",
            "The purchase model could not be fitted on the calibration period, so its "
            "predictions cannot be checked against the holdout",
            bg_cal.remedy,
            detail=bg_cal.detail,
        )

    # (2) Refit on everything to as_of and score active customers.
    now, now_who = inputs.rfm_frame(now_tab, coder, cal_end=as_of_day, obs_end=None, freq=freq)
    del now_tab
    gone_code = np.zeros(n_codes, bool)
    has_churn_col = "churn_date" in customers.columns
    if has_churn_col:
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
    all_words = "whole history"
    models = {
        "bgnbd": fit_section("bgnbd", fit_bgnbd, now, data=all_words),
        "gamma_gamma": fit_section("gamma_gamma", fit_gamma_gamma, now, data=all_words),
    }
    del now
    margin = "margin_ratio" if margin_col else 1.0
    if not margin_col:
        caveats.append({"kind": "no_margin"})
    _check_freq(active, freq)
    rate = _per_unit_rate(discount_rate, freq)
    scores = active[
        ["customer_id", "frequency", "recency", "T", "monetary_value", "calibration_value"]
    ].copy()
    total_purchase = None
    if fitted(models["bgnbd"]) and fitted(models["gamma_gamma"]):
        clv_inputs = _ClvInputs(active, margin)
        kw = dict(horizon=float(horizon), rate=rate)
        c = _clv_columns(models["bgnbd"], models["gamma_gamma"], clv_inputs, step=1.0, **kw)
        c["clv_purchase"] = c.pop("clv")
        for k, v in c.items():
            scores[k] = v
        total_purchase = _clv_interval(
            models["bgnbd"],
            models["gamma_gamma"],
            clv_inputs,
            float(scores["clv_purchase"].sum()),
            freq=freq,
            n_draws=n_draws,
            level=0.95,
            seed=seed,
            **kw,
        )
        del clv_inputs
    elif fitted(models["bgnbd"]):
        scores["p_alive"] = models["bgnbd"].p_alive(
            active["frequency"], active["recency"], active["T"]
        )
    group_col = _breakdown_column(study, customers)
    scores["segment"] = _segments(customers, group_col, cust_codes, n_codes, active_codes)

    # (2b) Contractual value: the sBG where contracts end with a churn date.
    contractual = (
        study.params.analysis.churn_definition == "contractual"
        and has_churn_col
        and customers["churn_date"].notna().any()
    )
    contract = None
    horizon_days = int(round(horizon_months * _MONTH_DAYS))
    in_window, last = inputs.value_by_code(
        study,
        coder,
        recent_since=(as_of - pd.Timedelta(days=horizon_days)).date(),
        margin=has_margin,
    )
    if contractual:
        # keyed by customer code (an integer lookup, not a join on ten million strings)
        contract = attempt(
            "Contract-renewal model (sBG)",
            contractual_value,
            pd.DataFrame(
                {
                    "customer_id": cust_codes,
                    "signup_date": customers["signup_date"].to_numpy(),
                    "churn_date": customers["churn_date"].to_numpy(),
                }
            ),
            pd.Series(in_window[cust_codes], index=cust_codes),
            as_of=as_of,
            window_start=window_start,
            period=study.params.analysis.period,
            discount_rate_annual=discount_rate,
            horizon_months=horizon_months,
            n_draws=max(n_draws, 200),
            seed=seed,
        )
        if fitted(contract):
            cs = contract.scores.set_index("customer_id").reindex(active_codes)
            for k in ("renewals", "value_per_period", "residual_lifetime", "derl"):
                scores[k] = cs[k].to_numpy()
            scores["clv_contract"] = cs["clv"].to_numpy()
            scores["clv_contract_horizon"] = cs["clv_horizon"].to_numpy()
            contract.scores["customer_id"] = coder.ids_of(contract.scores["customer_id"])
    if fitted(contract):
        value_source, value_col_name, total = "contractual", "clv_contract", contract.total
    elif total_purchase is not None:
        value_source, value_col_name, total = "purchase", "clv_purchase", total_purchase
    else:
        # No model: the margin of the last horizon, observed (a description, not a forecast).
        value_source, value_col_name = "history", "value_recent"
        scores["value_recent"] = last[active_codes]
        total = (float(scores["value_recent"].sum()), float("nan"), float("nan"))
    scores["clv"] = scores[value_col_name].astype(float).fillna(0.0)

    # (3) Risk: the churn-risk model where churn dates exist, else 1 - P(alive), else the
    # contract model's chance of leaving within the risk horizon.
    scores["risk"] = np.nan
    scores["risk_source"] = ""
    # 1 - P(alive) describes silent lapsing; where contracts end with a churn date the
    # purchase model knows nothing of them, so it is no risk of leaving there.
    has_dates = has_churn_col and customers["churn_date"].notna().any()
    if "p_alive" in scores.columns and not has_dates:
        scores["risk"] = 1.0 - scores["p_alive"]
        scores["risk_source"] = "1 - P(alive), BG/NBD"
        # The BG/NBD lets customers drop out only after a repeat purchase, so it says
        # P(alive) = 1 for everyone who bought once: that is no evidence they stayed.
        once = scores["frequency"].to_numpy() == 0
        if once.any():
            scores.loc[once, ["risk", "risk_source"]] = [np.nan, ""]
            caveats.append({"kind": "one_time_risk", "customers": int(once.sum())})
    if fitted(contract):
        risk_periods = max(
            1, int(round(risk_horizon_months * _MONTH_DAYS / _PERIOD_DAYS[contract.period]))
        )
        m = scores["renewals"].to_numpy(float)
        ok = np.isfinite(m)
        mod = contract.model
        lost = np.full(len(scores), np.nan)
        lost[ok] = 1.0 - mod.survival(m[ok] + risk_periods) / mod.survival(m[ok])
        scores.loc[ok, "risk"] = lost[ok]
        scores.loc[ok, "risk_source"] = "contract-renewal model"
    churn = None
    has_churn = has_churn_col and customers["churn_date"].notna().any()
    if has_churn:
        churn = attempt(
            "Churn-risk model",
            _churn_risk,
            study,
            customers,
            coder,
            n_codes,
            as_of=as_of,
            risk_horizon_months=risk_horizon_months,
            seed=seed,
        )
        if fitted(churn):
            churn, p_by_code = churn  # (model, risk of each customer code; NaN: not scored)
            got = p_by_code[active_codes]
            ok = ~np.isnan(got)
            scores.loc[ok, "risk"] = got[ok]
            scores.loc[ok, "risk_source"] = f"churn-risk model, next {risk_horizon_months:g} months"
    else:
        caveats.append({"kind": "no_churn_dates"})

    # every row says one of a few sources: a categorical, not a string per customer
    scores["risk_source"] = scores["risk_source"].astype("category")

    # (4) Tiers, concentration, customers to protect.
    # A customer no model can score keeps no risk (never an imputed one): they are not
    # ranked as at risk, and averages of risk cover the scored customers only.
    has_risk = scores["risk"].notna()
    scores["clv_tier"] = value_tiers(scores["clv"], quantiles=tier_quantiles).to_numpy()
    if has_risk.any():
        # ranked by customer code; the ids go back in once the ranking is done
        ranked = customers_to_protect(
            scores.assign(customer_id=active_codes),
            value="clv",
            risk="risk",
            tier_quantiles=tier_quantiles,
            risk_threshold=risk_threshold,
            risk_top_share=risk_top_share,
            strategic_segments=vp.strategic_segments,
            strategic_column=None,
        )
        ranked_codes = ranked["customer_id"].to_numpy()
        if vp.strategic_column and vp.strategic_column in customers.columns:
            flag_by_code = np.zeros(n_codes, bool)
            flag_by_code[cust_codes] = strategic_flags(customers[vp.strategic_column]).to_numpy()
            ranked["strategic"] = ranked["strategic"].to_numpy() | flag_by_code[ranked_codes]
        # each ranked row back to its scores row (ranked is a permutation of scores)
        row_of_code = np.full(n_codes, -1, dtype=np.int64)
        row_of_code[active_codes] = np.arange(len(active_codes))
        scores = scores.drop(columns=["clv_tier"])  # back from the ranking, at the end
        ranked_at = np.empty(len(scores), dtype=np.int64)  # ranked row of each scores row
        ranked_at[row_of_code[ranked_codes]] = np.arange(len(ranked))
        for col in ("clv_tier", "strategic", "at_risk", "value_at_stake", "protect"):
            scores[col] = ranked[col].iloc[ranked_at].set_axis(scores.index)
        ranked["customer_id"] = coder.ids_of(ranked_codes)
        by_group = protect_summary(
            ranked, by=["segment", "clv_tier"], min_group_size=study.min_group_size
        )
    else:
        ranked = by_group = Skipped(
            "Customers to protect",
            "No model of who is likely to leave could be fitted, so customers at risk cannot "
            "be singled out",
            "Churn dates, or purchase histories a purchase model fits, would allow it.",
        )
    if (scores["clv"].to_numpy(dtype=float) > 0).any():
        conc = value_concentration(scores["clv"], top=vp.top_share, seed=seed)
    else:  # nobody has a positive value (no model, no recent purchases): nothing to rank
        nan = float("nan")
        conc = {"share": nan, "ci_lower": nan, "ci_upper": nan, "top": vp.top_share}
        conc["n_customers"] = len(scores)
    tier = scores.groupby("clv_tier", observed=True)
    total_clv_sum = scores["clv"].sum()
    agg = {"customers": ("customer_id", "size")}
    for col in (
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "p_alive",
        "value_per_period",
        "renewals",
    ):
        if col in scores.columns:
            agg[col] = (col, "mean")
    agg.update(clv=("clv", "mean"), clv_total=("clv", "sum"), risk=("risk", "mean"))
    rfm_by_tier = tier.agg(**agg).reset_index()
    rfm_by_tier["clv_share"] = rfm_by_tier["clv_total"] / total_clv_sum if total_clv_sum else np.nan
    rfm_by_tier["clv_tier"] = rfm_by_tier["clv_tier"].astype(str)
    order = {t: i for i, t in enumerate(("high", "medium", "low"))}
    rfm_by_tier = rfm_by_tier.sort_values("clv_tier", key=lambda c: c.map(order)).reset_index(
        drop=True
    )
    tabs = []
    for key in ("bgnbd", "gamma_gamma"):
        if fitted(models[key]):
            tabs.append(
                parameter_table(models[key]).assign(fitted_on=f"all data to {as_of.date()}")
            )
    for key in ("bgnbd", "pareto_nbd", "gamma_gamma"):
        if fitted(m_cal.get(key)):
            tabs.append(parameter_table(m_cal[key]).assign(fitted_on=f"calibration to {cal_end}"))
    if fitted(contract):
        tabs.append(
            parameter_table(contract.model).assign(fitted_on=f"contracts to {as_of.date()}")
        )
    params_tab = (
        pd.concat(tabs, ignore_index=True)
        if tabs
        else pd.DataFrame(
            columns=[
                "model",
                "parameter",
                "estimate",
                "se",
                "ci_lower",
                "ci_upper",
                "loglik",
                "n_customers",
                "fitted_on",
            ]
        )
    )
    skipped = []
    for x in (
        *m_cal.values(),
        hbf,
        *models.values(),
        contract,
        churn,
        ranked,
    ):
        if isinstance(x, Skipped) and x.section not in {k.section for k in skipped}:
            skipped.append(x)
    # The KPI and retention reports' inactivity framing, to set P(alive) beside it.
    inactivity_days = int(study.params.analysis.inactivity_days)
    days_since = (scores["T"] - scores["recency"]).to_numpy(float) * unit
    recent_share = float(np.mean(days_since <= inactivity_days)) if len(scores) else float("nan")
    rep = (scores["frequency"] > 0).to_numpy()
    has_pa = "p_alive" in scores.columns
    mean_p_alive = float(scores["p_alive"].mean()) if has_pa else float("nan")
    # BG/NBD sets P(alive) = 1 for one-time buyers by construction: compare repeaters.
    pa_rep = float(scores.loc[rep, "p_alive"].mean()) if has_pa and rep.any() else float("nan")
    recent_rep = float(np.mean(days_since[rep] <= inactivity_days)) if rep.any() else float("nan")
    settings = {
        "breakdown_column": group_col,
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
        "value_source": value_source,
        "contractual": bool(contractual),
        "period": study.params.analysis.period,
        "churn_definition": study.params.analysis.churn_definition,
        "inactivity_days": inactivity_days,
        "share_bought_recently": recent_share,
        "mean_p_alive": mean_p_alive,
        "one_time_share": float(1 - rep.mean()) if len(scores) else float("nan"),
        "mean_p_alive_repeaters": pa_rep,
        "share_bought_recently_repeaters": recent_rep,
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
        value_source=value_source,
        total_purchase=total_purchase,
        contract=contract,
        skipped=skipped,
    )


def _customers(study) -> pd.DataFrame:
    """The customers table with the columns the value study reads, ``customer_id`` as
    the customer code of ``study.source`` (the join runs on the engine).

    Not kept in the study's cache, and without the columns no step reads: at ten million
    customers the whole table with its text identifiers held about 1 GB for the whole
    notebook (and 4 GB while it was converted).
    """
    t = study.source.table("customers")
    vp = study.params.value
    group = study.params.analysis.group
    wanted = [
        "customer_id",
        "signup_date",
        "churn_date",
        "segment",
        group if isinstance(group, str) else None,
        getattr(vp, "strategic_column", None),
        *getattr(study.source, "attributes", []),
    ]
    cols = list(dict.fromkeys(c for c in wanted if c and c in t.columns))
    tab = study.coded(t.select(*cols)).to_pyarrow()
    # text attributes as categoricals (one small code per customer), encoded on the Arrow
    # side: ten million strings are never made into pandas text first
    for i, c in enumerate(tab.column_names):
        if c != "customer_id" and (
            pa.types.is_string(tab[c].type) or pa.types.is_large_string(tab[c].type)
        ):
            tab = tab.set_column(i, c, pc.dictionary_encode(tab[c]))
    out = tab.to_pandas()
    for c in out.columns[1:]:  # categories sorted, as astype("category") gives them
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].cat.reorder_categories(sorted(out[c].cat.categories))
    return out


def _segments(customers, group_col, cust_codes, n_codes: int, active_codes) -> pd.Categorical:
    """The breakdown group of each scored customer (codes ``active_codes``), as a
    categorical: "unknown" where the customer has none, "all" without a breakdown.

    A categorical holds one small integer per customer where text held one Python
    string each (ten million of them at 10M customers).
    """
    if group_col is None:
        return pd.Categorical(np.zeros(len(active_codes), np.int8), categories=["all"])
    col = customers[group_col]
    groups = pd.Categorical(col.astype("str").where(col.notna(), None))
    cats = [str(c) for c in groups.categories]
    unknown = cats.index("unknown") if "unknown" in cats else len(cats)
    if unknown == len(cats):
        cats.append("unknown")
    by_code = np.full(n_codes, unknown, dtype=np.int32)
    gc = groups.codes.astype(np.int32)
    by_code[cust_codes] = np.where(gc < 0, unknown, gc)
    return pd.Categorical.from_codes(by_code[active_codes], categories=cats)


def _breakdown_column(study, customers: pd.DataFrame) -> str | None:
    """The customers column the report's "segment" breakdown uses, or None (one group).

    The breakdown column of the params (``analysis.group``, resolved from the data when
    ``auto``) when the customers table has values in it; else ``segment`` when it has
    values; else none. (An optional contract column the data lacks is all empty.)
    """
    group = study.params.analysis.group
    for col in (group if isinstance(group, str) else None, "segment"):
        if col and col in customers.columns and customers[col].notna().any():
            return col
    return None


class _Fixed:
    """Features computed once, handed to every chunk of customers (the engine query of
    :class:`_EngineExperience` runs once per cutoff, not once per chunk)."""

    def __init__(self, feats: dict):
        self.feats = feats

    def features(self, cut: int, n_codes: int) -> dict:
        return self.feats


def _churn_risk(
    study,
    customers,
    coder,
    n_codes,
    *,
    as_of,
    risk_horizon_months,
    seed,
    chunk_customers: int = 500_000,
):
    """Fit the churn-risk model; return (model, churn probability of each customer code,
    NaN where the customer is not scored).

    Customers are scored ``chunk_customers`` at a time: the features of one chunk are
    built, scored and dropped before the next (at ten million customers the features of
    everyone at once took about 2 GB). Each customer's features depend on that customer
    only, so the chunks change nothing.
    """
    cuts = churn_risk_cutoffs(as_of, horizon_months=risk_horizon_months)
    attrs = [
        a for a in ["segment", *getattr(study.source, "attributes", [])] if a in customers.columns
    ]
    kw = dict(
        horizon_months=risk_horizon_months,
        definition="contractual",
        customer_id="customer_id",
        signup="signup_date",
        churn="churn_date",
        attributes=attrs,
        extra=None,
        as_of=as_of,
        experience=_EngineExperience(study.source, coder) if study.has("experience") else None,
        loyalty=_coded_table(study, "loyalty", None, coder) if study.has("loyalty") else None,
    )
    coded_customers = customers[["customer_id", "signup_date", "churn_date", *attrs]]
    days = {k: _cutoff_days(cuts[k], risk_horizon_months) for k in ("train", "test", "score")}
    fit_customers, fit_codes = coded_customers, None
    sample = study.model_sample()
    if sample is not None:  # fitted and tested on the model sample; every customer is scored
        chosen = coder.codes_of(sample.ids)
        keep = np.zeros(n_codes, bool)
        keep[chosen[chosen >= 0]] = True
        fit_customers = coded_customers[keep[coded_customers["customer_id"].to_numpy()]]
        fit_codes = fit_customers["customer_id"].to_numpy()
    kw["keep_codes"] = True  # customer codes, mapped to the scores by the caller
    # The training and test windows are binned for the customers the model is fitted on,
    # the score windows for everyone: one customer x window array of each size at a time.
    bins = inputs.purchase_bins(study, coder, [days["train"], days["test"]], codes=fit_codes)
    fit_kw = dict(kw)
    if kw["experience"] is not None and fit_codes is not None:  # service of the sample only
        fit_kw["experience"] = _EngineExperience(study.source, coder, codes=fit_codes)
    train = _churn_features_coded(fit_customers, coder, bins, cutoff=cuts["train"], **fit_kw)
    test = _churn_features_coded(fit_customers, coder, bins, cutoff=cuts["test"], **fit_kw)
    del bins, fit_kw
    model = fit_churn_risk(train, test, seed=seed)
    del train, test, fit_customers
    bins = inputs.purchase_bins(study, coder, [days["score"]])
    if kw["experience"] is not None:
        kw["experience"] = _Fixed(kw["experience"].features(days["score"][0], n_codes))
    p_by_code = np.full(n_codes, np.nan)
    for start in range(0, len(coded_customers), chunk_customers):
        part = coded_customers.iloc[start : start + chunk_customers]
        cur = _churn_features_coded(part, coder, bins, cutoff=cuts["score"], **kw)
        if len(cur):
            p_by_code[cur["customer_id"].to_numpy()] = model.predict(cur).to_numpy()
        del cur
    return model, p_by_code
