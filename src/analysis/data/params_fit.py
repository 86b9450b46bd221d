"""Params that must fit the data: the columns they name, the windows they ask for.

``validate`` runs these checks so that a setting that cannot work on the data is
caught before any notebook runs:

- :func:`check_columns`: every setting that names a column (``survival.group``,
  ``survival.cox_covariates``, ``loyalty.heterogeneity_by``, ...) names one the data
  has (or one the study derives, such as ``n_transactions`` or ``prior_spend``); the
  problem lists the columns that exist and suggests the closest. Levels named by
  ``survival.reference_levels`` and ``value.strategic_segments`` must occur in the data.
- :func:`check_window`: horizons, calibration and holdout periods, landmarks, lags
  and the like fit between the window start and the as-of date.

A setting written in the params file (or a file it extends) that does not fit is an
error; a default that does not fit is a warning (the report leaves it out or says
it cannot estimate it), since the user never chose it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math

import ibis.expr.types as ir

from analysis.config import Params
from analysis.data.derive import DAYS_PER_MONTH
from analysis.data.sources import Source
from analysis.errors import Problem

#: Columns of the customer-lifetime table that are not customer columns
#: (analysis.data.derive.lifetimes); usable as survival groups and covariates.
LIFETIME_COLUMNS = ("n_transactions", "revenue", "left_truncated")
#: Columns of the loyalty landmark frame usable as covariates or subgroups
#: (analysis.studies.loyalty.landmark_frame and trial_covariates), beside customer columns.
LANDMARK_COLUMNS = (
    "prior_spend",
    "log_prior_spend",
    "prior_purchases",
    "history_spend_per_month",
    "tenure_months",
    "log_tenure_months",
    "prior_tickets",
    "prior_unresolved",
    "prior_sla_breaches",
    "prior_nps_category",
    "history_tickets",
    "history_nps_mean",
    "history_nps_answered",
    "history_csat_mean",
    "history_csat_answered",
    "programme_tier",
    "former_member",
    "member_months",
)
#: Rule name of every problem found here.
RULE = "params_vs_data"
_BOOL_TEXT = {"true", "false", "t", "f", "1", "0", "yes", "no", "y", "n", "1.0", "0.0"}
_PERIOD_DAYS = {"week": 7.0, "month": DAYS_PER_MONTH, "quarter": 3 * DAYS_PER_MONTH}


def _severity(params: Params, key: str) -> str:
    return "error" if params.is_explicit(key) else "warning"


def _listed(names, k: int = 20) -> str:
    names = list(names)
    return ", ".join(names[:k]) + (", ..." if len(names) > k else "")


def _problem(params: Params, key: str, message: str, fix: str, examples=()) -> Problem:
    """Return a params-vs-data problem for ``key`` ("section.key")."""
    section, _, name = key.partition(".")
    sev = _severity(params, key)
    if sev == "warning":
        message += " (a default setting: the report leaves it out or cannot estimate it)"
    return Problem(section, name, RULE, message, 0, tuple(examples), fix, sev)


def _column_names(src: Source) -> list[str]:
    """Customer columns the data has: contract columns present, then attributes."""
    present = src.present.get("customers", set())
    contract = [c for c in src.tables["customers"].columns if c in present]
    return contract + [a for a in src.attributes if a not in contract]


def check_columns(params: Params, src: Source, cast: dict, problems: list[Problem]) -> None:
    """Check that every column-naming setting names a column the data has (or derives)."""
    if "customers" not in src.tables:
        return
    cust = _column_names(src)
    lifetime = cust + [c for c in LIFETIME_COLUMNS if c not in cust]
    landmark = cust + [c for c in LANDMARK_COLUMNS if c not in cust]
    sp, lp, ep, vp = params.survival, params.loyalty, params.experience, params.value
    settings: list[tuple[str, list, list[str], str]] = [
        ("analysis.group", [params.analysis.group], cust, "the customers table"),
        ("survival.group", [sp.group], lifetime, "the customer lifetimes"),
        ("survival.cox_covariates", sp.cox_covariates, lifetime, "the customer lifetimes"),
        ("survival.cox_strata", sp.cox_strata, lifetime, "the customer lifetimes"),
        ("value.strategic_column", [vp.strategic_column], cust, "the customers table"),
    ]
    if "loyalty" in src.tables:
        settings += [
            ("loyalty.covariates", lp.covariates, landmark, "the loyalty landmark frame"),
            ("loyalty.heterogeneity_by", [lp.heterogeneity_by], landmark, "the landmark frame"),
        ]
    if "experience" in src.tables:
        settings += [
            ("experience.cox_covariates", ep.cox_covariates, lifetime, "the customer lifetimes"),
            ("experience.cox_strata", [ep.cox_strata], lifetime, "the customer lifetimes"),
        ]
    for key, names, available, what in settings:
        for col in names:
            if not col or col in available:
                continue
            close = difflib.get_close_matches(col, available, n=1, cutoff=0.5)
            problems.append(
                _problem(
                    params,
                    key,
                    f"'{col}' is not a column of {what} (columns: {_listed(available)})",
                    (f"did you mean '{close[0]}'? " if close else "")
                    + f"set {key} to one of the columns listed, or add the column to the "
                    "customers data",
                    (col,),
                )
            )
    table = cast.get("customers")
    if table is None:
        return
    try:
        _check_levels(params, src, table, cust, problems)
    except Exception:  # noqa: BLE001 - unreadable columns are reported by the table checks
        return


def _levels(table: ir.Table, column: str, k: int = 10_000) -> list[str]:
    vals = table.select(v=table[column].cast("string")).distinct().limit(k).to_pyarrow()
    return sorted(str(v) for v in vals.column(0).to_pylist() if v is not None)


def _check_levels(params: Params, src: Source, table: ir.Table, cust: list[str], problems) -> None:
    sp, vp = params.survival, params.value
    for cov, level in sp.reference_levels.items():
        if cov not in sp.cox_covariates:
            problems.append(
                _problem(
                    params,
                    "survival.reference_levels",
                    f"names '{cov}', which is not in survival.cox_covariates "
                    f"({_listed(sp.cox_covariates)})",
                    "give reference levels only for covariates of the Cox model",
                    (cov,),
                )
            )
            continue
        if cov not in cust:
            continue  # reported as a missing column
        levels = _levels(table, cov)
        if str(level) not in levels:
            close = difflib.get_close_matches(str(level), levels, n=1, cutoff=0.5)
            problems.append(
                _problem(
                    params,
                    "survival.reference_levels",
                    f"'{level}' is not a level of customers.{cov} (levels: {_listed(levels)})",
                    (f"did you mean '{close[0]}'? " if close else "")
                    + f"set survival.reference_levels.{cov} to one of the levels listed",
                    (level,),
                )
            )
    if vp.strategic_segments:
        if "segment" not in src.present.get("customers", set()):
            problems.append(
                _problem(
                    params,
                    "value.strategic_segments",
                    "is set, but the customers table has no segment column",
                    "map a segment column in data.columns.customers, or empty the list",
                )
            )
        else:
            levels = _levels(table, "segment")
            for seg in vp.strategic_segments:
                if str(seg) in levels:
                    continue
                close = difflib.get_close_matches(str(seg), levels, n=1, cutoff=0.5)
                problems.append(
                    _problem(
                        params,
                        "value.strategic_segments",
                        f"'{seg}' is not a segment of the data (segments: {_listed(levels)})",
                        (f"did you mean '{close[0]}'? " if close else "")
                        + "list segments that occur in customers.segment",
                        (seg,),
                    )
                )
    col = vp.strategic_column
    if col and col in cust and not table[col].type().is_boolean():
        vals = _levels(table, col, k=50)
        odd = [v for v in vals if v.strip().lower() not in _BOOL_TEXT]
        if odd:
            problems.append(
                _problem(
                    params,
                    "value.strategic_column",
                    f"customers.{col} is not a true/false column (values: {_listed(vals, 8)})",
                    "name a column holding true/false (or 1/0, yes/no) per customer",
                    tuple(odd[:5]),
                )
            )


# --------------------------------------------------------------------------------------
# Windows and horizons
# --------------------------------------------------------------------------------------


def _months_between(a: dt.date, b: dt.date) -> int:
    return (b.year - a.year) * 12 + (b.month - a.month)


def check_window(params: Params, src: Source, problems: list[Problem]) -> None:
    """Check the settings that need a long enough data window (on a validated source)."""
    as_of, ws = src.as_of, src.window_start
    cust = src.tables["customers"]
    first_signup = cust.signup_date.min().to_pyarrow().as_py() or ws
    window_days = (as_of - ws).days + 1
    tenure = (as_of - min(first_signup, ws)).days / DAYS_PER_MONTH
    span = f"the data runs from {ws} to {as_of}"
    _survival(params, tenure, span, problems)
    _value(params, src, ws, as_of, window_days, span, problems)
    _analysis(params, src, window_days, span, problems)
    # complete calendar months from the window start's month to the as-of date
    months = _months_between(ws, as_of + dt.timedelta(days=1))
    if "loyalty" in src.tables:
        _loyalty(params, ws, first_signup, months, span, problems)
    if "experience" in src.tables:
        _experience(params, ws, as_of, window_days, span, problems)


def _survival(params: Params, tenure: float, span: str, problems) -> None:
    sp = params.survival
    longer = [h for h in sp.horizons_months if h > tenure]
    if longer:
        problems.append(
            _problem(
                params,
                "survival.horizons_months",
                f"{_listed(f'{h:g}' for h in longer)} month(s) is longer than any tenure the "
                f"data can show ({tenure:.1f} months: {span}, earliest signup included)",
                f"list horizons up to {math.floor(tenure)} months",
                tuple(longer),
            )
        )
    if sp.rmst_horizon_months > tenure:
        problems.append(
            _problem(
                params,
                "survival.rmst_horizon_months",
                f"{sp.rmst_horizon_months:g} months is longer than any tenure the data can show "
                f"({tenure:.1f} months)",
                f"set it to at most {math.floor(tenure)} months",
                (sp.rmst_horizon_months,),
            )
        )


def _value(params: Params, src: Source, ws, as_of, window_days: int, span: str, problems) -> None:
    vp = params.value
    cw, hw = vp.calibration_weeks, vp.holdout_weeks
    # the same split as analysis.studies.value (calibration from the window start)
    cal_end = ws + dt.timedelta(days=(7 * cw - 1) if cw > 0 else window_days // 2 - 1)
    obs_end = min(cal_end + dt.timedelta(days=7 * hw), as_of) if hw > 0 else as_of
    weeks = window_days // 7
    if cal_end >= as_of or not (ws < cal_end < obs_end):
        problems.append(
            _problem(
                params,
                "value.calibration_weeks",
                f"{cw} weeks of calibration leave no holdout period: {span} ({weeks} weeks)",
                f"use fewer than {weeks} calibration weeks, or 0 (the first half of the window)",
                (cw,),
            )
        )
    elif hw > 0 and cal_end + dt.timedelta(days=7 * hw) > as_of:
        left = (as_of - cal_end).days // 7
        problems.append(
            _problem(
                params,
                "value.holdout_weeks",
                f"calibration ({cw or 'half the window'}) plus {hw} holdout weeks run past the "
                f"as-of date: {span} ({weeks} weeks), leaving {left} weeks after calibration",
                f"use at most {left} holdout weeks, or 0 (the rest of the window)",
                (hw,),
            )
        )
    has_churn = "churn_date" in src.present.get("customers", set())
    if has_churn:
        k = dt.timedelta(days=round(vp.risk_horizon_months * DAYS_PER_MONTH))
        if as_of - 2 * k <= ws:
            problems.append(
                _problem(
                    params,
                    "value.risk_horizon_months",
                    f"{vp.risk_horizon_months:g} months is too long to train the churn-risk model: "
                    f"it needs two horizons inside the window ({span})",
                    f"use at most {math.floor(window_days / 2 / DAYS_PER_MONTH)} months",
                    (vp.risk_horizon_months,),
                )
            )


def _analysis(params: Params, src: Source, window_days: int, span: str, problems) -> None:
    ap = params.analysis
    if ap.churn_definition == "inactivity" and ap.inactivity_days >= window_days:
        problems.append(
            _problem(
                params,
                "analysis.inactivity_days",
                f"{ap.inactivity_days} days is as long as the whole window ({window_days} days: "
                f"{span}), so no customer can be seen to churn",
                f"use fewer than {window_days} days",
                (ap.inactivity_days,),
            )
        )
    if ap.churn_definition == "contractual" and "churn_date" not in src.present.get(
        "customers", set()
    ):
        problems.append(
            _problem(
                params,
                "analysis.churn_definition",
                "contractual churn needs customers.churn_date, which the data does not have",
                "map the contract end column in data.columns.customers.churn_date, or set "
                "analysis.churn_definition: inactivity",
            )
        )
    n = int(src.tables["customers"].count().to_pyarrow().as_py())
    if ap.min_group_size > n:
        problems.append(
            _problem(
                params,
                "analysis.min_group_size",
                f"{ap.min_group_size} is more than the {n:,} customers in the data, so every "
                "figure would be suppressed",
                f"use at most {n}",
                (ap.min_group_size,),
            )
        )


def _loyalty(params: Params, ws, first_signup, months: int, span: str, problems) -> None:
    lp = params.loyalty
    need = int(lp.lookback_months) + int(lp.horizon_months)
    if need > months:
        key = (
            "loyalty.horizon_months"
            if params.is_explicit("loyalty.horizon_months")
            else ("loyalty.lookback_months")
        )
        problems.append(
            _problem(
                params,
                key,
                f"lookback ({lp.lookback_months:g}) plus horizon ({lp.horizon_months:g}) months "
                f"need {need} complete months, but the window has {months} ({span})",
                "shorten loyalty.lookback_months or loyalty.horizon_months",
                (lp.lookback_months, lp.horizon_months),
            )
        )
        return
    # landmark month index of the earliest signup, relative to the window start's month
    s_min = _months_between(ws, first_signup)
    last_full = months - 1
    late = [
        L for L in lp.landmarks_months if s_min + int(L) > last_full - int(lp.horizon_months) + 1
    ]
    if late:
        problems.append(
            _problem(
                params,
                "loyalty.landmarks_months",
                f"landmark(s) {_listed(f'{L:g}' for L in late)} month(s) plus a "
                f"{lp.horizon_months:g}-month horizon reach past the as-of date even for the "
                f"earliest customer ({span})",
                "use earlier landmarks or a shorter loyalty.horizon_months",
                tuple(late),
            )
        )
    lo, hi = lp.event_window
    if max(-lo, hi) >= months:
        problems.append(
            _problem(
                params,
                "loyalty.event_window",
                f"[{lo}, {hi}] months around enrolment reach beyond the {months} months of data "
                f"({span})",
                f"use a window within [-{months - 1}, {months - 1}]",
                (lo, hi),
            )
        )


def _experience(params: Params, ws, as_of, window_days: int, span: str, problems) -> None:
    ep = params.experience
    lm = _add_months(ws, int(ep.km_landmark_months))
    if lm >= as_of:
        problems.append(
            _problem(
                params,
                "experience.km_landmark_months",
                f"{ep.km_landmark_months} months after the window start is on or after the "
                f"as-of date ({span})",
                f"use fewer than {_months_between(ws, as_of)} months",
                (ep.km_landmark_months,),
            )
        )
    period = params.analysis.period
    n_periods = int(window_days // _PERIOD_DAYS[period])
    long = [lag for lag in ep.lags if lag >= n_periods]
    if long:
        problems.append(
            _problem(
                params,
                "experience.lags",
                f"lag(s) {_listed(map(str, long))} are as long as the {n_periods} {period}s of data ({span})",
                f"use lags below {n_periods}",
                tuple(long),
            )
        )


def _add_months(d: dt.date, k: int) -> dt.date:
    m = d.month - 1 + k
    y, m = d.year + m // 12, m % 12 + 1
    days = [
        31,
        29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28,
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ]
    return dt.date(y, m, min(d.day, days[m - 1]))
