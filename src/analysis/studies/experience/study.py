"""The whole experience-to-revenue study in one call (the report notebook displays its parts).

:func:`run_study` pulls compact frames from a loaded :class:`StudyData`,
builds the counting-process rows and the revenue panel, and runs every
estimate of the report; :class:`StudyResults` holds the numbers.
Methods, conventions and checks: ``docs/methods/experience.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError, Problem
from analysis.stats.fixed_effects import FEResult
from analysis.studies.experience.frames import WINDOW_COUNTS, add_panel_columns, counting_process
from analysis.studies.experience.hazards import (
    HazardResult,
    _varies,
    churn_hazards,
    compensation_effect,
    moments_of_truth,
    revenue_at_stake,
    scenarios_from_params,
)
from analysis.studies.experience.metrics import (
    ClaimNumbers,
    claim_numbers,
    driver_view,
    experience_metrics,
    fcr_rate,
    monthly_churn,
    monthly_revenue,
    nps_landmark,
)
from analysis.studies.experience.revenue import _lag_fits, _lag_table, dose_response
from analysis.studies.experience.tables import _study_frames


@dataclass
class StudyResults:
    """Everything the experience report shows, computed from one :class:`StudyData`.

    Numbers only: :mod:`analysis.report.experience` writes the findings, the
    notes (from ``caveats``), the hazard-table labels and the claims table.

    Attributes
    ----------
    hazard_table : pandas.DataFrame
        ``hazards.summary`` rows of the terms in :data:`HAZARD_TABLE_TERMS`.
    claim_numbers : ClaimNumbers
        This data's numbers beside three common customer-experience claims.
    caveats : list of dict
        What the study left out, in order, as records with a ``kind``:
        ``landmark_halfway`` (the window is shorter than the landmark),
        ``not_varying`` (``columns`` left out of the churn model),
        ``no_revenue_link``, ``no_compensation``, ``scenario_skipped``
        (``scenario``: its description).
    """

    currency: str
    min_group_size: int
    window_days: int
    update: str
    trends: pd.DataFrame
    by_segment: pd.DataFrame
    by_nps: pd.DataFrame
    drivers: pd.DataFrame
    landmark: str
    km: pd.DataFrame
    km_counts: pd.DataFrame
    hazards: HazardResult
    hazard_table: pd.DataFrame
    revenue: FEResult | None
    revenue_term: str
    lags: pd.DataFrame
    dose: pd.DataFrame
    moments: pd.DataFrame
    compensation: pd.DataFrame
    stakes: pd.DataFrame
    claim_numbers: ClaimNumbers
    churn_rate: tuple[float, float, float]
    revenue_per_month: tuple[float, float]
    caveats: list[dict] = field(default_factory=list)


#: Churn-model terms the report's hazard table shows, in the model's order.
HAZARD_TABLE_TERMS = (
    "nps_category[passive]",
    "nps_category[detractor]",
    "nps_category[none]",
    "unresolved_window",
    "sla_breaches_window",
    "compensated_failures_window",
    "member",
)


#: Customers per block when the study builds its counting-process rows.
_ROWS_BLOCK = 250_000


def _study_rows(
    lt: pd.DataFrame,
    ex: pd.DataFrame,
    pn: pd.DataFrame,
    *,
    window_days: int,
    period: str | None,
    update: str,
    keep: Sequence[str],
) -> pd.DataFrame:
    """Build the report's counting-process rows with ``member``, block by block of customers.

    Equal to ``add_panel_columns(counting_process(lt, ex, ...), pn, ["member"])`` without
    the columns the report does not use (period, nps_last, csat_last, failures_window,
    uncompensated_failures_window). Rows of one customer depend only on that customer's
    lifetime and events, so blocks of customers (integer codes, ``lt`` sorted by them) give
    the same rows in the same order while the working memory stays that of one block.
    """
    unused = ("period", "nps_last", "csat_last", "failures_window", "uncompensated_failures_window")
    cust = lt["customer_id"].to_numpy()
    ex_c = ex["customer_id"].to_numpy()
    pn_c = pn["customer_id"].to_numpy()
    blocks, dropped, tps = [], 0, set()
    for i in range(0, max(len(lt), 1), _ROWS_BLOCK):
        lt_b = lt.iloc[i : i + _ROWS_BLOCK]
        if len(lt_b):
            lo, hi = cust[i], cust[min(i + _ROWS_BLOCK, len(lt)) - 1]
            ex_b = ex.loc[(ex_c >= lo) & (ex_c <= hi)]
            a, b = np.searchsorted(pn_c, [lo, hi + 1])
            pn_b = pn.iloc[a:b]
        else:
            ex_b, pn_b = ex, pn
        cp = counting_process(
            lt_b, ex_b, window_days=window_days, period=period, update=update, keep=keep
        )
        cp = add_panel_columns(cp, pn_b, ["member"])
        dropped += cp.attrs["customers_dropped_no_time_at_risk"]
        tps.update(cp.attrs["touchpoints"])
        attrs = dict(cp.attrs)
        blocks.append(cp.drop(columns=[c for c in unused if c in cp.columns]))
        del cp, ex_b, pn_b
    # a touchpoint without failures in a block has zero counts there
    tp_cols = [f"failures_{t}_window" for t in sorted(tps)]
    base = [c for c in blocks[0].columns if c not in tp_cols]
    last = max((j for j, c in enumerate(base) if c in WINDOW_COUNTS), default=len(base) - 1)
    cols = base[: last + 1] + tp_cols + base[last + 1 :]  # counting_process's column order
    for j, b in enumerate(blocks):
        miss = {c: np.zeros(len(b), dtype=np.int16) for c in tp_cols if c not in b.columns}
        if miss:
            blocks[j] = b.assign(**miss)
    out = pd.concat([b[cols] for b in blocks], ignore_index=True) if len(blocks) > 1 else blocks[0]
    del blocks
    out.attrs.update(attrs)
    out.attrs.update(customers_dropped_no_time_at_risk=dropped, touchpoints=sorted(tps))
    return out


def run_study(
    study: Any,
    *,
    landmark_months: int | None = None,
    driver_window_days: int | None = None,
    update: str | None = None,
    adjust: Sequence[str] | None = None,
    strata: str | None = "",
    alpha: float = 0.05,
) -> StudyResults:
    """Run every estimate of the experience-to-revenue report on a loaded study.

    Every setting defaults to the params file's ``experience`` section; a
    keyword given here overrides it (notebook parameters use this).

    Parameters
    ----------
    study : analysis.data.StudyData
        Loaded data with an ``experience`` table.
    landmark_months : int, optional
        Kaplan-Meier curves by NPS category start this many months after the
        data window starts (answers before the landmark classify customers);
        params ``km_landmark_months``.
    driver_window_days : int, optional
        Days before a survey answer in which a ticket counts as its driver;
        params ``driver_window_days``.
    update : {"period", "event"}, optional
        How experience enters the churn model (see :func:`counting_process`);
        params ``covariate_update``.
    adjust : sequence of str, optional
        Customer attributes added to every Cox model (when present); params
        ``cox_covariates``.
    strata : str or None, optional
        Customer attribute with its own baseline hazard; ``""`` (default):
        params ``cox_strata``; ``None``: no strata.
    """
    from threadpoolctl import threadpool_limits

    # Every matrix here is narrow (a few columns); multithreaded BLAS only spins and
    # competes with the notebook running beside this one.
    with threadpool_limits(limits=1, user_api="blas"):
        return _run_study(
            study,
            landmark_months=landmark_months,
            driver_window_days=driver_window_days,
            update=update,
            adjust=adjust,
            strata=strata,
            alpha=alpha,
        )


def _run_study(
    study: Any,
    *,
    landmark_months: int | None,
    driver_window_days: int | None,
    update: str | None,
    adjust: Sequence[str] | None,
    strata: str | None,
    alpha: float,
) -> StudyResults:
    p = study.params.experience
    landmark_months = landmark_months or p.km_landmark_months
    driver_window_days = driver_window_days or p.driver_window_days
    update = update or p.covariate_update
    adjust = list(p.cox_covariates if adjust is None else adjust)
    strata = p.cox_strata if strata == "" else strata
    period = study.params.analysis.period
    group = study.params.analysis.group
    lt, ex, pn, cust = _study_frames(
        study,
        lifetime_columns=["start_date", "entry_days", "duration_days", "event", *adjust, strata],
        group=group,
    )
    keep = [c for c in [*adjust, strata] if c and c in lt.columns]
    for c in keep:  # one byte per counting-process row instead of a string
        if not pd.api.types.is_numeric_dtype(lt[c]):
            lt[c] = lt[c].astype("category")
    adjust = [c for c in adjust if c in lt.columns]
    strata = strata if strata in lt.columns else None
    caveats: list[dict] = []

    trends = experience_metrics(ex, period=period, alpha=alpha)
    by_segment = (
        experience_metrics(ex, by=group, customers=cust, alpha=alpha)
        if group in cust.columns
        else pd.DataFrame()
    )
    drivers = driver_view(ex, window_days=driver_window_days, alpha=alpha)

    lm_date = pd.Timestamp(study.window_start) + pd.DateOffset(months=landmark_months)
    if lm_date >= pd.Timestamp(study.as_of):
        lm_date = (
            pd.Timestamp(study.window_start)
            + (pd.Timestamp(study.as_of) - pd.Timestamp(study.window_start)) / 2
        )
        caveats.append({"kind": "landmark_halfway"})
    lm = nps_landmark(lt, ex, landmark=lm_date)
    from analysis.stats import survival

    km = survival.kaplan_meier(
        lm, duration="months", event="event", group="nps_category", alpha=alpha
    )
    km_counts = (
        lm.groupby("nps_category", observed=True)
        .agg(customers=("event", "size"), churned=("event", "sum"))
        .reset_index()
    )

    # Revenue side first, so the panel is gone before the counting-process rows are built
    # (at 1M customers each holds ~16M rows).
    rev = monthly_revenue(pn)
    # outcome months in which the customer was a customer for the whole month
    full = pn.loc[
        pn["churned"].to_numpy() == 0,
        ["customer_id", "period", "revenue", "csat_mean", "unresolved_tickets", "sla_breaches"],
    ]
    members = pn[["customer_id", "period", "member"]]
    del pn
    lag_exposures = ["csat_mean", "unresolved_tickets", "sla_breaches"]
    try:
        fits = _lag_fits(full, exposures=lag_exposures, lags=[1, *p.lags], alpha=alpha)
    except AnalysisError:
        fits = {}
    fe = fits.get(("csat_mean", 1))  # = revenue_link(full, exposures=["csat_mean"], lags=(1,))
    lags = _lag_table(fits, lag_exposures, p.lags)
    del fits
    dose = dose_response(full, alpha=alpha)
    del full

    cp = _study_rows(
        lt, ex, members, window_days=p.window_days, period=period, update=update, keep=keep
    )
    del members
    base = [
        "nps_category",
        "unresolved_window",
        "sla_breaches_window",
        "compensated_failures_window",
        "member",
        *adjust,
    ]
    dropped = [c for c in base if not _varies(cp, c)]
    base = [c for c in base if c not in dropped]
    if dropped:
        caveats.append({"kind": "not_varying", "columns": dropped})
    if not base:
        raise AnalysisError(
            "No experience covariate varies in this data, so the churn model cannot be fitted.",
            [
                Problem(
                    "experience",
                    None,
                    "no_variation",
                    "no NPS answers and no failed tickets",
                    fix="check the experience table's nps, first_contact_resolution, sla_met",
                )
            ],
        )
    hz = churn_hazards(cp, covariates=base, strata=strata, alpha=alpha)
    ht = hz.summary.loc[[t for t in hz.terms if t in HAZARD_TABLE_TERMS]].copy()

    h = monthly_churn(cp, alpha)
    if fe is None:
        caveats.append({"kind": "no_revenue_link"})

    moments = moments_of_truth(
        cp,
        ex,
        monthly_churn_rate=h[0],
        revenue_per_month=rev,
        horizon_months=p.horizon_months,
        adjust=[c for c in ["nps_category", "member", *adjust] if _varies(cp, c)],
        strata=strata,
        alpha=alpha,
    )
    comp_adjust = [
        c for c in ["nps_category", "tickets_window", "member", *adjust] if _varies(cp, c)
    ]
    if all(
        _varies(cp, c)
        for c in ("compensated_failures_window", "unresolved_window", "sla_breaches_window")
    ):
        comp = compensation_effect(cp, adjust=comp_adjust, strata=strata, alpha=alpha)
    else:
        comp = pd.DataFrame()
        caveats.append({"kind": "no_compensation"})
    stake_rows = []
    scenarios = scenarios_from_params(p, ex)
    if not any(sc.name == "fcr_up" for sc in scenarios):
        caveats.append({"kind": "fcr_scenario_no_data", "fcr_rate": fcr_rate(ex)})
    for sc in scenarios:
        try:
            stake_rows.append(
                revenue_at_stake(
                    hz,
                    cp,
                    scenario=sc,
                    monthly_revenue=rev,
                    horizon_months=p.horizon_months,
                    alpha=alpha,
                )
            )
        except AnalysisError:
            caveats.append({"kind": "scenario_skipped", "scenario": sc.description})
    stakes = pd.concat(stake_rows, ignore_index=True) if stake_rows else pd.DataFrame()
    claims = claim_numbers(revenue=fe, term="csat_mean_lag1", cp=cp, experience=ex, alpha=alpha)
    by_nps = km_counts
    return StudyResults(
        currency=study.currency,
        min_group_size=study.min_group_size,
        window_days=p.window_days,
        update=update,
        trends=trends,
        by_segment=by_segment,
        by_nps=by_nps,
        drivers=drivers,
        landmark=str(lm_date.date()),
        km=km,
        km_counts=km_counts,
        hazards=hz,
        hazard_table=ht,
        revenue=fe,
        revenue_term="csat_mean_lag1",
        lags=lags,
        dose=dose,
        moments=moments,
        compensation=comp,
        stakes=stakes,
        claim_numbers=claims,
        churn_rate=h,
        revenue_per_month=rev,
        caveats=caveats,
    )
