"""Params that must fit the data: the columns they name, the windows they ask for.

``validate`` runs these checks so that a setting that cannot work on the data is
caught before any notebook runs:

- :func:`check_columns`: every setting that names a column (``survival.group``,
  ``survival.cox_covariates``, ``loyalty.heterogeneity_by``, ...) names one the data
  has (or one the study derives, such as ``n_transactions`` or ``prior_spend``); the
  problem lists the columns that exist and suggests the closest. Levels named by
  ``survival.reference_levels`` and ``value.strategic_segments`` must occur in the data.
  A group column chosen in the params with hundreds of values, or with fewer than two
  groups of ``min_group_size`` customers, gets a warning.
- :func:`check_window`: horizons, calibration and holdout periods, landmarks, lags,
  look-back windows and the KPI normal range fit between the window start and the
  as-of date.

:func:`resolve_auto` replaces every setting left at ``auto`` (the default of the
settings that name customer columns) by the columns this data offers, and states
each choice in a sentence (:class:`AutoChoice`); ``StudyData`` applies it when the
data is loaded, so studies and notebooks see concrete values.

A setting written in the params file (or a file it extends) that does not fit is an
error; a default that does not fit is a warning (the report leaves it out or says
it cannot estimate it), since the user never chose it.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import difflib
import math
import re
from dataclasses import dataclass

import ibis.expr.types as ir

from analysis.config import (
    AUTO,
    LOYALTY_EXPERIENCE_COVARIATES,
    LOYALTY_PURCHASE_COVARIATES,
    Params,
)
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


def _names(value) -> list:
    """Return the columns a setting names: none for null or ``auto``, else its list."""
    if value is None or _auto(value):
        return []
    return [value] if isinstance(value, str) else list(value)


def check_columns(params: Params, src: Source, cast: dict, problems: list[Problem]) -> None:
    """Check that every column-naming setting names a column the data has (or derives)."""
    if "customers" not in src.tables:
        return
    cust = _column_names(src)
    lifetime = cust + [c for c in LIFETIME_COLUMNS if c not in cust]
    landmark = cust + [c for c in LANDMARK_COLUMNS if c not in cust]
    if cast.get("customers") is not None:
        try:
            params, _ = resolve_auto(params, src, cast["customers"])
        except Exception:  # noqa: BLE001 - unreadable columns are reported by the table checks
            pass
    sp, lp, ep, vp = params.survival, params.loyalty, params.experience, params.value
    n = _names
    settings: list[tuple[str, list, list[str], str]] = [
        ("analysis.group", n(params.analysis.group), cust, "the customers table"),
        ("survival.group", n(sp.group), lifetime, "the customer lifetimes"),
        ("survival.cox_covariates", n(sp.cox_covariates), lifetime, "the customer lifetimes"),
        ("survival.cox_strata", n(sp.cox_strata), lifetime, "the customer lifetimes"),
        ("value.strategic_column", n(vp.strategic_column), cust, "the customers table"),
    ]
    if "loyalty" in src.tables:
        settings += [
            ("loyalty.covariates", n(lp.covariates), landmark, "the loyalty landmark frame"),
            ("loyalty.heterogeneity_by", n(lp.heterogeneity_by), landmark, "the landmark frame"),
        ]
    if "experience" in src.tables:
        settings += [
            ("experience.cox_covariates", n(ep.cox_covariates), lifetime, "the customer lifetimes"),
            ("experience.cox_strata", n(ep.cox_strata), lifetime, "the customer lifetimes"),
        ]
    for key, names, available, what in settings:
        for col in names:
            if not col or _auto(col) or col in available:
                continue
            close = difflib.get_close_matches(col, available, n=1, cutoff=0.5)
            problems.append(
                _problem(
                    params,
                    key,
                    f"'{col}' is not a column of {what} (columns: {_listed(available)})",
                    (f"did you mean '{close[0]}'? " if close else "")
                    + f"set {key} to one of the columns listed, or to auto (chosen from the "
                    "data's columns), or add the column to the customers data",
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


#: Settings naming one column whose values form groups, checked for a usable number of groups.
GROUP_KEYS = (
    "analysis.group",
    "survival.group",
    "loyalty.heterogeneity_by",
    "experience.cox_strata",
)
#: An explicitly chosen group column with more values than this gets a warning.
MAX_GROUPS_WARNED = 50


def _check_groups(params: Params, table: ir.Table, cust: list[str], problems) -> None:
    """Warn when a group column written in the params has too many or only tiny groups."""
    named = {}
    for key in GROUP_KEYS:
        col = _get(params, key)
        if params.is_explicit(key) and isinstance(col, str) and not _auto(col) and col in cust:
            named.setdefault(col, []).append(key)
    if not named:
        return
    m = params.analysis.min_group_size
    for a in profile_attributes(table, list(named), m):
        message = ""
        if a.levels > MAX_GROUPS_WARNED:
            message = (
                f"customers.{a.name} has {a.levels:,} distinct values: a breakdown by it shows "
                "that many groups, most of them suppressed as small"
            )
        elif a.kind == "categorical" and "fewer than two" in a.reason:
            message = (
                f"fewer than two values of customers.{a.name} have {m} customers or more "
                "(analysis.min_group_size): its groups would be suppressed"
            )
        for key in named[a.name] if message else ():
            section, _, name = key.partition(".")
            problems.append(
                Problem(
                    section,
                    name,
                    RULE,
                    f"{key}: {message}",
                    0,
                    (a.name,),
                    "choose a column with a few larger groups, or auto (chosen from the data)",
                    "warning",
                )
            )


def _levels(table: ir.Table, column: str, k: int = 10_000) -> list[str]:
    vals = table.select(v=table[column].cast("string")).distinct().limit(k).to_pyarrow()
    return sorted(str(v) for v in vals.column(0).to_pylist() if v is not None)


def _check_levels(params: Params, src: Source, table: ir.Table, cust: list[str], problems) -> None:
    sp, vp = params.survival, params.value
    _check_groups(params, table, cust, problems)
    covariates = _names(sp.cox_covariates)
    for cov, level in sp.reference_levels.items():
        if _auto(sp.cox_covariates):
            break  # not resolved: the customers table could not be read
        if cov not in covariates:
            problems.append(
                _problem(
                    params,
                    "survival.reference_levels",
                    f"names '{cov}', which is not in survival.cox_covariates "
                    f"({_listed(covariates) or 'none'})",
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
    if _names(vp.strategic_segments):
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
    if col and not _auto(col) and col in cust and not table[col].type().is_boolean():
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
    _kpi(params, window_days, months, span, problems)


def _kpi(params: Params, window_days: int, months: int, span: str, problems) -> None:
    kp = params.kpi
    if not params.is_explicit("kpi.normal_range_periods"):
        return  # the default: on short data the dashboard flags with the periods it has
    n = {"day": window_days, "week": window_days // 7, "month": months, "quarter": months // 3}[
        kp.granularity
    ]
    if kp.normal_range_periods >= n:
        problems.append(
            _problem(
                params,
                "kpi.normal_range_periods",
                f"a normal range over {kp.normal_range_periods} {kp.granularity}s needs more "
                f"than the {n} complete {kp.granularity}s of data ({span})",
                f"use at most {max(n - 1, 3)}, or a finer kpi.granularity",
                (kp.normal_range_periods,),
            )
        )


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
    if (
        ap.churn_definition == "contractual"
        and params.is_explicit("analysis.churn_definition")  # the default follows the data
        and "churn_date" not in src.present.get("customers", set())
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
    if ep.window_days >= window_days:
        problems.append(
            _problem(
                params,
                "experience.window_days",
                f"a look-back of {ep.window_days} days is as long as the whole window "
                f"({window_days} days: {span})",
                f"use fewer than {window_days} days",
                (ep.window_days,),
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
    return dt.date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


# --------------------------------------------------------------------------------------
# `auto` settings: chosen from the columns the data has
# --------------------------------------------------------------------------------------

#: Settings that may be ``auto`` ("section.key"), in the order their choices are stated.
AUTO_KEYS = (
    "analysis.group",
    "survival.group",
    "survival.cox_covariates",
    "loyalty.covariates",
    "loyalty.heterogeneity_by",
    "experience.cox_covariates",
    "value.strategic_column",
    "value.strategic_segments",
)
#: Customer columns never chosen automatically: the id and the relationship's dates,
#: and churn_reason, which is known only once a customer has left (using it would
#: let the outcome explain itself).
NOT_ATTRIBUTES = ("customer_id", "signup_date", "churn_date", "churn_reason")
#: A text or true/false column qualifies as a group with 2 to this many values.
MAX_LEVELS = 20
#: A column qualifies only if at most this share of customers has no value in it.
MAX_MISSING_SHARE = 0.1
_DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Attribute:
    """What :func:`profile_attributes` found about one customer column.

    Attributes
    ----------
    name : str
    kind : {"categorical", "numeric", "other"}
        Text and true/false columns are categorical; integer and decimal columns numeric.
    levels : int
        Distinct values (missing values not counted).
    missing : int
        Customers with no value.
    rows : int
        Customers.
    reason : str
        Why the column is not chosen automatically ("" when it qualifies).
    """

    name: str
    kind: str
    levels: int
    missing: int
    rows: int
    reason: str = ""

    @property
    def grouping(self) -> bool:
        """Return True if the column qualifies as a breakdown (a categorical column)."""
        return self.kind == "categorical" and not self.reason

    @property
    def covariate(self) -> bool:
        """Return True if the column qualifies as a model covariate."""
        return self.kind in ("categorical", "numeric") and not self.reason


@dataclass(frozen=True)
class AutoChoice:
    """One ``auto`` setting resolved against the data.

    Attributes
    ----------
    key : str
        "section.key", e.g. "survival.group"; "columns" for the sentence on the
        columns that were not chosen.
    value : object
        The concrete value the studies see (a column name, a list, or None).
    sentence : str
        The choice in plain words, with the setting that changes it.
    """

    key: str
    value: object
    sentence: str


def _auto(value) -> bool:
    return isinstance(value, str) and value == AUTO


def _get(params: Params, key: str):
    section, _, name = key.partition(".")
    return getattr(getattr(params, section), name)


def _attribute_names(src: Source) -> list[str]:
    """Customer columns that may be attributes: segment (if present), then extra columns."""
    return [c for c in _column_names(src) if c not in NOT_ATTRIBUTES]


def profile_attributes(table: ir.Table, names: list[str], min_group_size: int) -> list[Attribute]:
    """Describe each customer column in ``names`` and whether it qualifies for ``auto``.

    A column qualifies when at most :data:`MAX_MISSING_SHARE` of customers lack a
    value and either it is text or true/false with 2 to :data:`MAX_LEVELS`
    values, at least two of which hold ``min_group_size`` customers or more (a
    breakdown then shows at least two groups), and not dates written as text; or
    it is numeric with at least two values (numeric columns serve as covariates,
    never as groups). Runs on the engine: one aggregate plus one count per text
    column.
    """
    if not names:
        return []
    cols = {c: table[c] for c in names}
    agg = {"_rows": table.count()}
    for i, col in enumerate(cols.values()):
        agg[f"k{i}"] = col.nunique()
        agg[f"m{i}"] = col.isnull().sum()
    row = table.aggregate(**agg).to_pyarrow().to_pylist()[0]
    rows = int(row["_rows"] or 0)
    out = []
    for i, (c, col) in enumerate(cols.items()):
        k, miss = int(row[f"k{i}"] or 0), int(row[f"m{i}"] or 0)
        typ = col.type()
        kind = (
            "categorical"
            if typ.is_string() or typ.is_boolean()
            else "numeric"
            if typ.is_numeric()
            else "other"
        )
        reason = ""
        if kind == "other":
            reason = "dates" if (typ.is_date() or typ.is_timestamp()) else f"values of type {typ}"
        elif k < 2:
            reason = "no values" if k == 0 else "one value for every customer"
        elif rows and miss / rows > MAX_MISSING_SHARE:
            reason = f"{miss / rows:.0%} of customers have no value"
        elif kind == "categorical" and k > MAX_LEVELS:
            reason = (
                f"{k:,} distinct values, one per customer (an identifier)"
                if k >= 0.9 * (rows - miss)
                else f"{k:,} distinct values (a breakdown needs 2 to {MAX_LEVELS})"
            )
        elif kind == "categorical":
            counts = _level_counts(table, c)
            if all(_DATE_TEXT.match(v) for v in counts):
                reason = "dates written as text"
            elif sum(n >= min_group_size for n in counts.values()) < 2:
                reason = (
                    f"fewer than two of its values have {min_group_size} customers or more "
                    "(analysis.min_group_size)"
                )
        out.append(Attribute(c, kind, k, miss, rows, reason))
    return out


def _level_counts(table: ir.Table, column: str) -> dict[str, int]:
    t = table.select(v=table[column].cast("string"))
    t = t.filter(t.v.notnull())
    res = t.group_by("v").aggregate(n=t.count()).to_pyarrow().to_pylist()
    return {str(r["v"]): int(r["n"]) for r in res}


def _and(names) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _strategic_columns(table: ir.Table, attrs: list[Attribute]) -> list[str]:
    """Return the true/false customer columns whose name contains "strategic"."""
    out = []
    for a in attrs:
        if "strategic" not in a.name.lower() or a.levels == 0:
            continue
        if table[a.name].type().is_boolean():
            out.append(a.name)
            continue
        if a.kind == "other" or a.levels > 2:
            continue
        vals = _levels(table, a.name, k=5)
        if all(v.strip().lower() in _BOOL_TEXT for v in vals):
            out.append(a.name)
    return out


def resolve_auto(
    params: Params, src: Source, customers: ir.Table | None = None
) -> tuple[Params, list[AutoChoice]]:
    """Replace every ``auto`` setting by the columns this data offers.

    Parameters
    ----------
    params : Params
    src : Source
        The data (validated, or raw with ``customers`` the cast customers table).
    customers : ibis Table, optional
        The customers table typed by the contract; default ``src.tables["customers"]``.

    Returns
    -------
    (Params, list[AutoChoice])
        A copy of ``params`` with concrete values where ``auto`` stood (settings
        written explicitly are kept as they are), and each choice in words.

    Notes
    -----
    The rule (docs/params.md, "Settings chosen from the data"): candidate columns
    are ``segment`` and the customers table's extra columns, never the id, the
    dates or ``churn_reason``; :func:`profile_attributes` says which qualify.

    - ``analysis.group``: ``segment`` if it qualifies, else the first qualifying
      text or true/false column in the table's order; none if there is none.
    - ``survival.group``, ``loyalty.heterogeneity_by``: the breakdown column
      (``analysis.group``, as resolved).
    - ``survival.cox_covariates``, ``experience.cox_covariates``: every
      qualifying column (numeric ones included), less the model's strata.
    - ``loyalty.covariates``: spend, purchases and tenure before the landmark,
      the qualifying columns with no missing value (the propensity model needs
      every value), the service-experience history when the data has an
      experience table, and log spend.
    - ``value.strategic_column``: the one true/false column whose name contains
      "strategic", if exactly one exists; else none.
    - ``value.strategic_segments``: none. Which segments matter is a business
      decision no rule can read off the data.
    """
    params, churn = _resolve_churn_definition(params, src)
    params, notes = _resolve_columns(params, src, customers)
    return params, churn + notes


def _resolve_churn_definition(params: Params, src: Source) -> tuple[Params, list[AutoChoice]]:
    """Churn by inactivity when the data has no churn dates and the params do not say.

    The default ``contractual`` needs ``customers.churn_date``; without that column every
    customer would look retained forever (0% churn, 100% still active), so a definition the
    params file does not set follows the data. One that the file sets is kept (validation
    refuses it with the fix).
    """
    ap = params.analysis
    if (
        ap.churn_definition != "contractual"
        or params.is_explicit("analysis.churn_definition")
        or "customers" not in src.tables
        or "churn_date" in src.present.get("customers", set())
    ):
        return params, []
    new = _with_values(params, {"analysis.churn_definition": "inactivity"})
    note = AutoChoice(
        "analysis.churn_definition",
        "inactivity",
        "The data has no churn dates, so a customer counts as lost after "
        f"{ap.inactivity_days} days without a purchase (set analysis.churn_definition and "
        "analysis.inactivity_days to choose otherwise).",
    )
    return new, [note]


def _resolve_columns(
    params: Params, src: Source, customers: ir.Table | None
) -> tuple[Params, list[AutoChoice]]:
    """The column settings of :func:`resolve_auto`."""
    keys = [k for k in AUTO_KEYS if _auto(_get(params, k))]
    if not keys or "customers" not in src.tables:
        return params, []
    table = customers if customers is not None else src.tables["customers"]
    attrs = profile_attributes(table, _attribute_names(src), params.analysis.min_group_size)
    groups = [a.name for a in attrs if a.grouping]
    covs = [a.name for a in attrs if a.covariate]
    left_out = [a for a in attrs if a.reason]
    ap, sp, lp, ep, vp = (
        params.analysis,
        params.survival,
        params.loyalty,
        params.experience,
        params.value,
    )
    values: dict[str, object] = {}
    notes: list[AutoChoice] = []
    why_none = (
        f"no column of the customers table qualifies (its columns: {_and(a.name for a in attrs)})"
        if attrs
        else "the customers table has no attribute columns"
    )

    group = ap.group
    if _auto(ap.group):
        group = groups[0] if groups else None
        values["analysis.group"] = group
        notes.append(
            AutoChoice(
                "analysis.group",
                group,
                f"Breakdowns use the column {group}, chosen automatically from the customers "
                "table's columns (set analysis.group to choose another)."
                if group
                else f"No breakdown by customer group: {why_none}. Set analysis.group to name "
                "a column.",
            )
        )
    source = "chosen automatically" if _auto(ap.group) else "set in analysis.group"
    for key, what, none in (
        ("survival.group", "Retention curves are compared by", "Retention curves by group"),
        (
            "loyalty.heterogeneity_by",
            "Programme effects by subgroup are shown by",
            "Programme effects by subgroup",
        ),
    ):
        if _auto(_get(params, key)):
            values[key] = group
            notes.append(
                AutoChoice(
                    key,
                    group,
                    f"{what} the column {group}, the breakdown column {source} "
                    f"(set {key} to choose another)."
                    if group
                    else f"{none} are left out: {why_none}. Set {key} to name a column.",
                )
            )
    for key, strata, what in (
        ("survival.cox_covariates", list(sp.cox_strata), "The Cox model of retention adjusts"),
        (
            "experience.cox_covariates",
            [ep.cox_strata] if ep.cox_strata else [],
            "The experience churn models adjust",
        ),
    ):
        if not _auto(_get(params, key)):
            continue
        chosen = [c for c in covs if c not in strata]
        values[key] = chosen
        notes.append(
            AutoChoice(
                key,
                chosen,
                f"{what} for {_and(chosen)}, the customer attribute column"
                f"{'s' if len(chosen) > 1 else ''} chosen automatically (set {key} to "
                "choose others)."
                if chosen
                else f"{what} for no customer attribute: {why_none}. Set {key} to name some.",
            )
        )
    if _auto(lp.covariates):
        complete = [a.name for a in attrs if a.covariate and a.missing == 0]
        incomplete = [a.name for a in attrs if a.covariate and a.missing > 0]
        has_exp = "experience" in src.tables
        chosen = [
            *LOYALTY_PURCHASE_COVARIATES,
            *complete,
            *(LOYALTY_EXPERIENCE_COVARIATES if has_exp else ()),
            "log_prior_spend",
        ]
        values["loyalty.covariates"] = chosen
        parts = ["spend, purchases and tenure before the landmark"]
        if has_exp:
            parts.append("service experience before it")
        if complete:
            parts.append(
                f"the customer attribute{'s' if len(complete) > 1 else ''} {_and(complete)}"
            )
        sentence = (
            f"The loyalty comparisons adjust for {_and(parts)}, chosen automatically "
            "(set loyalty.covariates to choose others)."
        )
        if incomplete:
            sentence += (
                f" The column{'s' if len(incomplete) > 1 else ''} {_and(incomplete)} "
                f"{'are' if len(incomplete) > 1 else 'is'} left out: some customers have no "
                "value there, and these models need every value."
            )
        notes.append(AutoChoice("loyalty.covariates", chosen, sentence))
    if _auto(vp.strategic_column):
        found = _strategic_columns(table, attrs)
        col = found[0] if len(found) == 1 else None
        values["value.strategic_column"] = col
        if col:
            notes.append(
                AutoChoice(
                    "value.strategic_column",
                    col,
                    f"Customers marked true in the column {col} count as strategic, chosen "
                    "automatically because of its name (set value.strategic_column to choose "
                    "another, or null for none).",
                )
            )
        else:
            why = (
                f"several true/false columns are named so ({_and(found)})"
                if found
                else "no true/false column of the customers table is named 'strategic'"
            )
            notes.append(
                AutoChoice(
                    "value.strategic_column",
                    None,
                    f"No column flags strategic customers: {why} (set value.strategic_column "
                    "to name one).",
                )
            )
    if _auto(vp.strategic_segments):
        values["value.strategic_segments"] = []
        notes.append(
            AutoChoice(
                "value.strategic_segments",
                [],
                "No segment counts as strategic: which segments matter is a business choice "
                "(list them in value.strategic_segments).",
            )
        )
    if left_out:
        listed = "; ".join(f"{a.name} ({a.reason})" for a in left_out[:12])
        more = f"; and {len(left_out) - 12} more" if len(left_out) > 12 else ""
        notes.append(
            AutoChoice(
                "columns",
                [a.name for a in left_out],
                f"Customer columns not chosen automatically: {listed}{more}.",
            )
        )
    # a study whose table the data lacks says so itself; its choices would only confuse
    absent = [t for t in ("loyalty", "experience") if t not in src.tables]
    notes = [c for c in notes if c.key.split(".")[0] not in absent]
    order = {k: i for i, k in enumerate((*AUTO_KEYS, "columns"))}
    notes.sort(key=lambda c: order[c.key])
    return _with_values(params, values), notes


def _with_values(params: Params, values: dict[str, object]) -> Params:
    """Return a copy of ``params`` with the "section.key" values replaced."""
    by_section: dict[str, dict] = {}
    for key, v in values.items():
        section, _, name = key.partition(".")
        by_section.setdefault(section, {})[name] = list(v) if isinstance(v, list) else v
    changes = {s: dataclasses.replace(getattr(params, s), **kw) for s, kw in by_section.items()}
    return dataclasses.replace(params, **changes) if changes else params
