"""The whole experience-to-revenue study in one call (the report notebook displays its parts).

:func:`run_study` pulls compact frames from a loaded :class:`StudyData`,
builds the counting-process rows and the revenue panel, and runs every
estimate of the report; :class:`StudyResults` holds the numbers.
Methods, conventions and checks: ``docs/methods/experience.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.data.params_fit import NOT_ATTRIBUTES
from analysis.stats.fixed_effects import FEResult
from analysis.studies.experience.frames import (
    WINDOW_COUNTS,
    add_panel_columns,
    counting_process_from_sums,
)
from analysis.studies.experience.hazards import (
    HazardResult,
    Scenario,
    _varies,
    churn_hazards,
    compensation_effect,
    moments_of_truth,
    revenue_at_stake,
    scenarios_from_params,
)
from analysis.studies.experience.metrics import (
    ClaimNumbers,
    _landmark_categories,
    claim_numbers,
    drivers_from_sums,
    fcr_rate,
    landmark_at_risk,
    metrics_from_sums,
    monthly_churn,
)
from analysis.studies.experience.revenue import _lag_table
from analysis.studies.experience.revenue_engine import (
    dose_on,
    engine_mean_revenue,
    lag_fits_on,
    outcome_table,
    revenue_panel,
)
from analysis.studies.experience.tables import EngineExperience, _study_frames
from analysis.studies.sections import NotEstimable, Skipped, attempt, is_skipped


@dataclass
class StudyResults:
    """Everything the experience report shows, computed from one :class:`StudyData`.

    Numbers only: :mod:`analysis.report.experience` writes the findings, the
    notes (from ``caveats``), the hazard-table labels and the claims table.

    A section this data cannot support holds a
    :class:`~analysis.studies.sections.Skipped` (what could not be estimated,
    why, and what data would allow it) in place of its result; every other
    section is kept. :meth:`skipped` lists them.

    Attributes
    ----------
    hazard_table : pandas.DataFrame or Skipped
        ``hazards.summary`` rows of the terms in :data:`HAZARD_TABLE_TERMS`.
    overall : pandas.DataFrame or Skipped
        :func:`experience_metrics` over the whole window (one row).
    claim_numbers : ClaimNumbers
        This data's numbers beside three common customer-experience claims.
    scenarios_skipped : list of Skipped
        Scenarios of the revenue-at-stake table this data cannot evaluate.
    adjusted_for : list of str
        Customer attributes in every churn model (besides the experience terms).
    strata : str or None
        Customer attribute with its own baseline hazard.
    n_churn_events : int
        Churns in the counting-process rows (customers who left while observed).
    caveats : list of dict
        What the study left out, in order, as records with a ``kind``:
        ``landmark_halfway`` (the window is shorter than the landmark),
        ``not_varying`` (``columns`` left out of the churn model),
        ``adjust_missing`` (``columns`` asked for but absent from the data),
        ``strata_not_adjusted`` (``column``: the strata column, not also a term),
        ``lag_exposures_left_out`` (``columns`` without a revenue link at any lag).
    """

    currency: str
    min_group_size: int
    window_days: int
    update: str
    trends: pd.DataFrame | Skipped
    by_segment: pd.DataFrame
    overall: pd.DataFrame | Skipped
    by_nps: pd.DataFrame | Skipped
    drivers: pd.DataFrame | Skipped
    landmark: str
    km: pd.DataFrame | Skipped
    km_counts: pd.DataFrame | Skipped
    hazards: HazardResult | Skipped
    hazard_table: pd.DataFrame | Skipped
    revenue: FEResult | Skipped
    revenue_term: str
    lags: pd.DataFrame | Skipped
    dose: pd.DataFrame | Skipped
    moments: pd.DataFrame | Skipped
    compensation: pd.DataFrame | Skipped
    stakes: pd.DataFrame | Skipped
    claim_numbers: ClaimNumbers
    churn_rate: tuple[float, float, float]
    revenue_per_month: tuple[float, float]
    caveats: list[dict] = field(default_factory=list)
    scenarios_skipped: list[Skipped] = field(default_factory=list)
    adjusted_for: list[str] = field(default_factory=list)
    strata: str | None = None
    n_churn_events: int = 0
    group: str | None = None
    horizon_months: float = 12.0

    def skipped(self) -> list[Skipped]:
        """Return every section (and scenario) this data could not support, in report order."""
        parts = [
            self.trends,
            self.drivers,
            self.km,
            self.hazards,
            self.revenue,
            self.lags,
            self.dose,
            self.moments,
            self.compensation,
            self.stakes,
            *self.scenarios_skipped,
        ]
        out, seen = [], set()
        for x in parts:
            if is_skipped(x) and (x.section, x.reason) not in seen:
                seen.add((x.section, x.reason))
                out.append(x)
        return out


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


#: Service measures related to later revenue, one regression per measure and lag.
LAG_EXPOSURES = ("csat_mean", "unresolved_tickets", "sla_breaches")


def _study_rows(
    lt: pd.DataFrame,
    ex: pd.DataFrame,
    pn: pd.DataFrame,
    *,
    touchpoints: Sequence[str],
    window_days: int,
    period: str | None,
    update: str,
    keep: Sequence[str],
) -> pd.DataFrame:
    """Build the report's counting-process rows with ``member``, block by block of customers.

    ``ex``: the experience sums per customer code and day or period
    (:meth:`EngineExperience.customer_periods`), their ``tp<i>`` columns counting failed
    tickets at ``touchpoints[i]``. Equal to
    ``add_panel_columns(counting_process_from_sums(lt, ex, ...), pn, ["member"])`` without
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
        cp = counting_process_from_sums(
            lt_b,
            ex_b,
            touchpoints=touchpoints,
            window_days=window_days,
            period=period,
            update=update,
            keep=keep,
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


#: Fewest churn events a churn model of this report is fitted on.
MIN_CHURN_EVENTS = 10

#: Human names of the report's sections (what a Skipped says could not be estimated).
SECTIONS = {
    "trends": "Experience over time",
    "drivers": "What drives the survey scores",
    "km": "Retention by latest NPS answer",
    "hazards": "Churn and the service experience",
    "revenue": "Next-month revenue and satisfaction",
    "lags": "Revenue in the months after an experience",
    "dose": "Next-month revenue by satisfaction level",
    "moments": "Touchpoints where a failed ticket costs most",
    "compensation": "Compensation after a failed ticket",
    "stakes": "Revenue at stake under scenarios",
}

#: Customer columns that are never adjusted for: keys, dates and an outcome (why they left).
_NOT_ATTRIBUTES = NOT_ATTRIBUTES


def _attribute_columns(lt: pd.DataFrame, candidates: Sequence[str], max_levels: int = 12) -> list:
    """Return the candidate columns usable as adjustments: 2 to ``max_levels`` values, not dates."""
    out = []
    for c in candidates:
        if c not in lt.columns or pd.api.types.is_datetime64_any_dtype(lt[c]):
            continue
        if 2 <= lt[c].nunique(dropna=True) <= max_levels:
            out.append(c)
    return out


def _churn_gate(n_events: int) -> None:
    """Raise :class:`NotEstimable` when the rows hold too few churns for a churn model."""
    if n_events == 0:
        raise NotEstimable(
            "No customer left during the time the data covers, so churn cannot be related to "
            "the service experience",
            remedy="It needs customers who left, with the date they left.",
        )
    if n_events < MIN_CHURN_EVENTS:
        who = "customer" if n_events == 1 else "customers"
        raise NotEstimable(
            f"Only {n_events} {who} left during the time the data covers, too few to relate "
            "churn to the service experience",
            remedy=f"It needs at least {MIN_CHURN_EVENTS} customers who left.",
        )


def _pool_small_levels(values: pd.Series, min_group_size: int) -> pd.Series:
    """Pool the levels of an adjustment column held by fewer than ``min_group_size`` customers.

    A Cox term per tiny level (an industry of 3 accounts) is estimated from a handful of
    events, often not at all (the model fails or the term runs to infinity). The small
    levels become :data:`OTHER_GROUPS`; when that pool is itself too small, its customers
    are adjusted as members of the most common level. Missing values stay missing.
    """
    from analysis.studies.retention import OTHER_GROUPS

    v = values.astype(object)
    sizes = v.dropna().value_counts()
    small = [g for g, n in sizes.items() if n < min_group_size]
    if not small or len(small) == len(sizes):
        return v
    pooled = v.where(~v.isin(small), OTHER_GROUPS)
    if int(sizes[small].sum()) < min_group_size:
        pooled = pooled.where(pooled != OTHER_GROUPS, sizes.index[0])
    return pooled


def _section(key: str, fn, *args, **kwargs):
    """Run one section through :func:`attempt` under its human name."""
    return attempt(SECTIONS[key], fn, *args, **kwargs)


def _skip(key: str, reason: str, remedy: str = "") -> Skipped:
    return Skipped(SECTIONS[key], reason, remedy)


def _scenario_gap(sc: Scenario, hz: HazardResult) -> str:
    """Return why the fitted model cannot evaluate a scenario ('' when it can)."""
    pos = set(hz.terms)
    for ch in sc.changes:
        if ch[0] == "shift":
            _, col, lv_from, lv_to = ch
            ref = hz.design.get(col, (None, None))[1]
            if f"{col}[{lv_from}]" not in pos or (lv_to != ref and f"{col}[{lv_to}]" not in pos):
                return (
                    "The churn model has no NPS categories to compare (no NPS answers, or no "
                    "detractors or passives among them)"
                    if col == "nps_category"
                    else f"The churn model has no {col} levels to compare"
                )
        elif ch[0] == "scale" and ch[1] not in pos:
            return {
                "unresolved_window": "First-contact resolution does not vary in this data, so "
                "the churn model has no term for unresolved tickets",
                "sla_breaches_window": "SLA outcomes do not vary in this data (or are not "
                "recorded), so the churn model has no term for SLA breaches",
            }.get(ch[1], "The churn model has no term this scenario changes")
    return ""


def _scenario_section(sc: Scenario) -> str:
    d = sc.description
    acronym = d[:2].isupper()  # "SLA breaches ..." keeps its capitals
    return "Scenario: " + (d if acronym else d[:1].lower() + d[1:])


def _fcr_gap(ex: pd.DataFrame | pd.Series) -> str:
    """Return why the first-contact-resolution scenario cannot be built ('' when it can).

    ``ex``: experience rows or their overall counts (see :func:`fcr_rate`).
    """
    rate = fcr_rate(ex)
    if np.isnan(rate):
        return "The data records no first-contact resolution on tickets"
    if rate >= 1:
        return (
            "Every ticket is already resolved at the first contact, so there is nothing to improve"
        )
    return ""


def _run_study(
    study: Any,
    *,
    landmark_months: int | None,
    driver_window_days: int | None,
    update: str | None,
    adjust: Sequence[str] | str | None,
    strata: str | None,
    alpha: float,
) -> StudyResults:
    p = study.params.experience
    landmark_months = landmark_months or p.km_landmark_months
    driver_window_days = driver_window_days or p.driver_window_days
    update = update or p.covariate_update
    adjust = p.cox_covariates if adjust is None else adjust
    auto = isinstance(adjust, str) and adjust == "auto"
    adjust = [] if auto else ([adjust] if isinstance(adjust, str) else list(adjust))
    strata = p.cox_strata if strata == "" else strata
    strata = strata or None
    period = study.params.analysis.period
    group = study.params.analysis.group
    group = None if group == "auto" else group
    cust_cols = list(study.source.table("customers").columns)
    if auto:
        adjust = [c for c in cust_cols if c not in _NOT_ATTRIBUTES]
    # The revenue side first, on the engine, before any frame is pulled: the engine's
    # working memory for the monthly panel (up to its cap) then adds to little.
    rev, fits, dose, has_csat = _revenue_side(study, p.lags, alpha)
    lt, exp, pn, cust = _study_frames(
        study,
        lifetime_columns=["start_date", "entry_days", "duration_days", "event", *adjust, strata],
        group=group,
    )
    caveats: list[dict] = []
    missing = [c for c in adjust if c not in lt.columns]
    if missing and not auto:
        caveats.append({"kind": "adjust_missing", "columns": missing})
    adjust = [c for c in dict.fromkeys(adjust) if c in lt.columns]
    if auto:
        adjust = _attribute_columns(lt, adjust)
    strata = strata if strata in lt.columns else None
    if strata and strata in adjust:
        adjust = [c for c in adjust if c != strata]
        if not auto:
            caveats.append({"kind": "strata_not_adjusted", "column": strata})
    keep = [c for c in dict.fromkeys([*adjust, strata]) if c]
    for c in keep:  # one byte per counting-process row instead of a string
        if not pd.api.types.is_numeric_dtype(lt[c]):
            if c in adjust:
                lt[c] = _pool_small_levels(lt[c], study.min_group_size)
            lt[c] = lt[c].astype("category")

    counts = exp.overall()  # one row of counts over the whole experience table
    trends = _section(
        "trends", lambda: metrics_from_sums(exp.sums(period=period), ["period"], alpha=alpha)
    )
    if not is_skipped(trends) and not len(trends):
        trends = _skip(
            "trends",
            "The experience table has no rows in the data window",
            "It needs survey answers or tickets dated inside the window.",
        )
    overall = _section("trends", metrics_from_sums, exp.sums(), alpha=alpha)
    if not is_skipped(overall) and not (len(overall) and overall["customers"].iloc[0] > 0):
        overall = (
            trends if is_skipped(trends) else _skip("trends", "The data has no experience rows")
        )
    by_segment = (
        attempt(
            SECTIONS["trends"],
            lambda: metrics_from_sums(exp.sums(by=group), [group], alpha=alpha),
        )
        if group and group in cust.columns
        else pd.DataFrame()
    )
    if is_skipped(by_segment):
        by_segment = pd.DataFrame()
    drivers = _section("drivers", _drivers, exp, driver_window_days, alpha)
    if not is_skipped(drivers) and not _drivers_informative(drivers):
        drivers = _skip(
            "drivers",
            "The data has no tickets, so survey scores cannot be compared by ticket outcome"
            if not counts["tickets"]
            else "The data has no survey answers, so scores cannot be compared by ticket outcome"
            if not counts["answers"]
            else "No survey answer in this data follows a ticket within "
            f"{driver_window_days} days, so scores cannot be compared by ticket outcome",
            "It needs both survey answers (CSAT or NPS) and tickets with their outcomes.",
        )

    lm_date = pd.Timestamp(study.window_start) + pd.DateOffset(months=landmark_months)
    if lm_date >= pd.Timestamp(study.as_of):
        lm_date = (
            pd.Timestamp(study.window_start)
            + (pd.Timestamp(study.as_of) - pd.Timestamp(study.window_start)) / 2
        )
        caveats.append({"kind": "landmark_halfway"})
    km_part = _section("km", _km_by_nps, lt, exp, lm_date, study.min_group_size, alpha)
    km, km_counts = (km_part, km_part) if is_skipped(km_part) else km_part

    # the panel is gone before the counting-process rows are built (at 1M customers each
    # holds ~16M rows)
    members = pn[["customer_id", "period", "member"]]
    del pn
    failed = fits if is_skipped(fits) else None  # the computation itself failed: say why
    fits = {} if failed is not None else fits
    fe = fits.get(("csat_mean", 1))  # = revenue_link(panel, exposures=["csat_mean"], lags=(1,))
    if fe is None and failed is not None:
        fe = Skipped(SECTIONS["revenue"], failed.reason, failed.remedy, failed.detail)
    elif fe is None:
        fe = (
            _skip(
                "revenue",
                "Too few customers gave a satisfaction (CSAT) answer in a month followed by a "
                "whole month as a customer, so satisfaction cannot be related to next-month "
                "revenue",
                "More CSAT answers, or a longer history, would allow it.",
            )
            if has_csat
            else _skip(
                "revenue",
                "The data has no satisfaction (CSAT) answers, so satisfaction cannot be "
                "related to next-month revenue",
                "It needs CSAT scores on survey answers.",
            )
        )
    lags = _lag_table(fits, LAG_EXPOSURES, p.lags)
    if len(lags):
        left_out = [x for x in LAG_EXPOSURES if x not in set(lags["exposure"])]
        if left_out:
            caveats.append({"kind": "lag_exposures_left_out", "columns": left_out})
    elif failed is not None:
        lags = failed
    else:
        lags = _skip(
            "lags",
            "No service measure (satisfaction, unresolved tickets, SLA breaches) was recorded "
            "often enough, in months followed by further months as a customer, to relate it to "
            "later revenue",
            "More survey answers or tickets, or a longer history, would allow it.",
        )
    del fits
    if not is_skipped(dose) and not len(dose):
        dose = fe if is_skipped(fe) else _skip("dose", "The data has no CSAT answers")
        dose = Skipped(SECTIONS["dose"], dose.reason, dose.remedy)

    common = dict(
        currency=study.currency,
        min_group_size=study.min_group_size,
        window_days=p.window_days,
        update=update,
        trends=trends,
        by_segment=by_segment,
        overall=overall,
        by_nps=km_counts,
        drivers=drivers,
        landmark=str(lm_date.date()),
        km=km,
        km_counts=km_counts,
        revenue=fe,
        revenue_term="csat_mean_lag1",
        lags=lags,
        dose=dose,
        revenue_per_month=rev,
        caveats=caveats,
        adjusted_for=list(adjust),
        strata=strata,
        group=group if group and group in cust.columns else None,
        horizon_months=float(p.horizon_months),
    )
    key = period if update == "period" else "day"
    cp = attempt(
        SECTIONS["hazards"],
        lambda pn, **k: _study_rows(lt, pn=pn, **k, **_touchpoints_and_sums(exp, key)),
        members,
        window_days=p.window_days,
        period=period,
        update=update,
        keep=keep,
    )
    del members
    exp.forget_periods()  # the panel's (update: event) and the churn rows' sums
    if is_skipped(cp):  # every churn model needs these rows: each section says why not
        churn = {
            k: Skipped(SECTIONS[k], cp.reason, cp.remedy, cp.detail)
            for k in ("hazards", "moments", "compensation", "stakes")
        }
        empty = pd.DataFrame({"start": [], "stop": [], "event": []})
        return StudyResults(
            **common,
            hazards=churn["hazards"],
            hazard_table=churn["hazards"],
            moments=churn["moments"],
            compensation=churn["compensation"],
            stakes=churn["stakes"],
            claim_numbers=claim_numbers(
                revenue=None if is_skipped(fe) else fe,
                term="csat_mean_lag1",
                cp=empty,
                experience=counts,
                alpha=alpha,
            ),
            churn_rate=(float("nan"),) * 3,
        )
    n_events = int(cp["event"].sum())
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
    hz = _section("hazards", _fit_main_model, cp, base, strata, n_events, alpha)
    ht = (
        hz
        if is_skipped(hz)
        else hz.summary.loc[[t for t in hz.terms if t in HAZARD_TABLE_TERMS]].copy()
    )

    h = monthly_churn(cp, alpha)
    moments = _section(
        "moments",
        _moments,
        cp,
        exp.touchpoints(),
        n_events=n_events,
        monthly_churn_rate=h[0],
        revenue_per_month=rev,
        horizon_months=p.horizon_months,
        adjust=[c for c in ["nps_category", "member", *adjust] if _varies(cp, c)],
        strata=strata,
        alpha=alpha,
    )
    comp = _section(
        "compensation",
        _compensation,
        cp,
        n_events=n_events,
        adjust=[c for c in ["nps_category", "tickets_window", "member", *adjust] if _varies(cp, c)],
        strata=strata,
        alpha=alpha,
    )
    at_risk = None
    if study.model_sample() is not None:  # the yearly figures apply to every active customer
        from analysis.data import derive

        lt_all = derive.usable_lifetimes(study.lifetimes_expr())
        at_risk = int(lt_all.filter(lt_all.event == 0).count().to_pyarrow().as_py())
    stakes, scen_skipped = _stakes(hz, cp, counts, p, rev, alpha, at_risk)
    claims = claim_numbers(
        revenue=None if is_skipped(fe) else fe,
        term="csat_mean_lag1",
        cp=cp,
        experience=counts,
        alpha=alpha,
    )
    return StudyResults(
        **common,
        hazards=hz,
        hazard_table=ht,
        moments=moments,
        compensation=comp,
        stakes=stakes,
        claim_numbers=claims,
        churn_rate=h,
        scenarios_skipped=scen_skipped,
        n_churn_events=n_events,
    )


def _revenue_side(study: Any, lags: Sequence[int], alpha: float) -> tuple:
    """Revenue per customer-month, the lag fits, the dose table and whether any outcome
    month follows a CSAT answer, all on the engine from sums (no customer-period row
    comes to Python), by calendar month whatever ``analysis.period``: the report speaks
    of months (revenue a month, next month, lags in months)."""
    lag_exposures = list(LAG_EXPOSURES)
    con = study.source.con
    rp = revenue_panel(study, lag_exposures)  # an engine expression, computed per use
    rev = engine_mean_revenue(rp)
    has_csat = False
    with ExitStack() as stack:
        # the months with an outcome, once into the engine's memory for both sections
        rows = attempt(
            SECTIONS["lags"],
            lambda: stack.enter_context(outcome_table(con, rp, exposures=lag_exposures)),
        )
        if is_skipped(rows):  # e.g. a panel with two rows for a customer and month
            fits, dose = rows, Skipped(SECTIONS["dose"], rows.reason, rows.remedy, rows.detail)
        else:
            has_csat = bool(rows.csat_mean.notnull().any().to_pyarrow().as_py())
            fits = _section(
                "lags",
                lag_fits_on,
                con,
                rows,
                exposures=lag_exposures,
                lags=[1, *lags],
                alpha=alpha,
            )
            dose = _section("dose", dose_on, con, rows, alpha=alpha)
    return rev, fits, dose, has_csat


def _drivers_informative(drivers: pd.DataFrame) -> bool:
    """Whether the driver view compares answers after some ticket outcome (not only 'none')."""
    if not len(drivers):
        return False
    rows = drivers[(drivers["outcome"] != "none") & (drivers["answers"] > 0)]
    return bool(len(rows)) and bool(rows[["csat_mean", "nps"]].notna().any().any())


def _drivers(exp: EngineExperience, window_days: int, alpha: float) -> pd.DataFrame:
    from analysis.data.experience_stats import driver_group_names

    return drivers_from_sums(
        exp.drivers(window_days), driver_group_names(), window_days=window_days, alpha=alpha
    )


def _touchpoints_and_sums(exp: EngineExperience, key: str) -> dict:
    """The experience sums per customer and ``key`` for :func:`_study_rows`."""
    from analysis.data.experience_stats import KEYS
    from analysis.errors import AnalysisError

    if key not in KEYS:
        raise AnalysisError(
            "update='period' needs a calendar period (analysis.period: week, month or quarter)"
        )
    sums, tps = exp.customer_periods(key)
    return {"ex": sums, "touchpoints": tps}


def _km_by_nps(
    lt: pd.DataFrame, exp: EngineExperience, lm_date: pd.Timestamp, min_group: int, alpha: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Kaplan-Meier curves by latest NPS answer from the landmark date, and their counts."""
    from analysis.stats import survival

    lm = _landmark_categories(
        landmark_at_risk(lt, landmark=lm_date), exp.latest_nps(lm_date.date())
    )
    if not len(lm):
        raise NotEstimable(
            "No customer was still a customer on the date the retention curves start from",
            remedy="A longer history, or an earlier start of the curves, would allow it.",
        )
    answered = lm["nps_category"].astype(str) != "none"
    if not exp.overall()["nps_any"]:
        raise NotEstimable(
            "The data has no NPS answers, so retention cannot be compared by NPS answer",
            remedy="It needs NPS answers (0-10) on survey rows.",
        )
    if int(answered.sum()) < min_group:
        raise NotEstimable(
            "Too few customers gave an NPS answer before the date the retention curves start "
            "from, so retention cannot be compared by NPS answer",
            remedy="It needs NPS answers (0-10) on survey rows, from at least "
            f"{min_group} customers.",
        )
    if int(lm["event"].sum()) == 0:
        raise NotEstimable(
            "No customer left after the date the retention curves start from, so retention "
            "stays at 100% in every NPS group and there are no curves to compare",
            remedy="It needs customers who left, with the date they left.",
        )
    km = survival.kaplan_meier(
        lm, duration="months", event="event", group="nps_category", alpha=alpha
    )
    counts = (
        lm.groupby("nps_category", observed=True)
        .agg(customers=("event", "size"), churned=("event", "sum"))
        .reset_index()
    )
    return km, counts


def _fit_main_model(
    cp: pd.DataFrame, base: list[str], strata: str | None, n_events: int, alpha: float
) -> HazardResult:
    _churn_gate(n_events)
    if not any(c in base for c in ("nps_category", "unresolved_window", "sla_breaches_window")):
        raise NotEstimable(
            "Neither NPS answers nor ticket outcomes vary in this data, so churn cannot be "
            "related to the service experience",
            remedy="It needs NPS answers, or tickets with first-contact resolution or SLA "
            "outcomes.",
        )
    return churn_hazards(cp, covariates=base, strata=strata, alpha=alpha)


def _moments(cp: pd.DataFrame, ex: pd.DataFrame, *, n_events: int, **kw: Any) -> pd.DataFrame:
    """Moments of truth; ``ex``: counts per touchpoint (:func:`touchpoint_sums`)."""
    _churn_gate(n_events)
    out = moments_of_truth(cp, ex, **kw)
    if not len(out):
        raise NotEstimable(
            "The data records no failed tickets at named touchpoints, so touchpoints cannot "
            "be ranked",
            remedy="It needs tickets with a touchpoint and their first-contact resolution or SLA "
            "outcome.",
        )
    return out


def _compensation(cp: pd.DataFrame, *, n_events: int, **kw: Any) -> pd.DataFrame:
    _churn_gate(n_events)
    if not _varies(cp, "compensated_failures_window"):
        raise NotEstimable(
            "No failed ticket in this data was compensated (or compensation is not recorded), "
            "so compensated and uncompensated failures cannot be compared",
            remedy="It needs failed tickets that record whether the customer was compensated.",
        )
    severity = [c for c in ("unresolved_window", "sla_breaches_window") if _varies(cp, c)]
    return compensation_effect(cp, severity=severity, **kw)


def _stakes(
    hz: HazardResult | Skipped,
    cp: pd.DataFrame,
    ex: pd.Series,
    p: Any,
    rev: tuple[float, float],
    alpha: float,
    customers_at_risk: int | None = None,
) -> tuple[pd.DataFrame | Skipped, list[Skipped]]:
    """Evaluate each scenario on the fitted churn model; the ones it cannot take are Skipped."""
    if is_skipped(hz):
        return Skipped(SECTIONS["stakes"], hz.reason, hz.remedy, hz.detail), []
    skipped, rows = [], []
    scenarios = scenarios_from_params(p, ex)
    gap = _fcr_gap(ex)
    if gap:
        skipped.append(
            Skipped(
                f"Scenario: first-contact resolution up {float(p.fcr_improvement_points):g} points",
                gap,
                "It needs tickets that record first-contact resolution, some of them unresolved.",
            )
        )
    for sc in scenarios:
        why = _scenario_gap(sc, hz)
        if why:
            skipped.append(Skipped(_scenario_section(sc), why, ""))
            continue
        got = attempt(
            _scenario_section(sc),
            revenue_at_stake,
            hz,
            cp,
            scenario=sc,
            monthly_revenue=rev,
            customers_at_risk=customers_at_risk,
            horizon_months=p.horizon_months,
            alpha=alpha,
        )
        if is_skipped(got):
            skipped.append(got)
        else:
            rows.append(got)
    if not rows:
        return (
            Skipped(
                SECTIONS["stakes"],
                "None of the scenarios can be evaluated on this data",
                "Each scenario's own note says what it needs.",
            ),
            skipped,
        )
    return pd.concat(rows, ignore_index=True), skipped
