"""Params files: one YAML per run, validated against a typed schema.

Every section is a dataclass; every field has a type, a default and a comment
that ``docs/params.md`` repeats. Unknown keys are rejected with the closest
valid key; wrong types and out-of-range values get a message naming the key.
Paths are resolved relative to the params file.

Example
-------
>>> params = load_params("params/default.yaml")          # doctest: +SKIP
>>> params.analysis.churn_definition                      # doctest: +SKIP
'contractual'
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from analysis.errors import ParamsError, Problem

#: Value of a column-naming setting that is chosen from the data when it is loaded
#: (analysis.data.params_fit.resolve_auto; docs/params.md, "Settings chosen from the data").
AUTO = "auto"

# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------


@dataclass
class DataParams:
    """Where the data is and how to read it."""

    source: Literal["folder", "duckdb", "postgres", "spark"] = (
        "folder"  # kind of source (docs/scaling.md)
    )
    path: Path | None = (
        None  # folder of CSV/Parquet files, or a .duckdb file (relative to this file)
    )
    format: Literal["auto", "parquet", "csv"] = "auto"  # file format inside a folder source
    url: str | None = None  # database URL (postgres); never put passwords here
    url_env: str | None = None  # name of an environment variable holding the database URL
    schema: str | None = None  # database schema holding the tables
    tables: dict[str, str] = field(default_factory=dict)  # contract table -> file stem / db table
    columns: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> {contract: yours}
    as_of: dt.date | None = (
        None  # report date; empty: the latest date in the data, ignoring a few rows far beyond the rest
    )
    window_start: dt.date | None = (
        None  # first day the data covers; empty: earliest transaction or experience date, ignoring a few rows far before the rest
    )
    currency: str = "EUR"  # currency label for money columns
    refunds_allowed: bool = False  # allow negative transaction amounts
    orphan_rows: Literal["error", "drop"] = "error"  # rows for unknown customers
    out_of_window_rows: Literal["error", "drop"] = (
        "error"  # rows dated before signup or after as_of, and (default window only) rows far before the bulk of the data
    )
    future_dates_allowed: bool = (
        False  # allow dates after the run date (today); off: they are errors
    )
    extreme_values: Literal["warning", "error"] = (
        "warning"  # amounts, points, hours and counts far beyond the column's usual range (docs/data-contract.md)
    )
    encoding: str = (
        "utf-8"  # text encoding of CSV files, e.g. cp1252 or latin-1 for Windows/Excel exports
    )
    timezone: str = (
        "UTC"  # time zone whose calendar dates are used for timestamps with a UTC offset
    )


@dataclass
class AnalysisParams:
    """Definitions shared by every study."""

    churn_definition: Literal["contractual", "inactivity"] = (
        "contractual"  # what counts as churn; unset and no churn_date column: inactivity
    )
    inactivity_days: int = 90  # days without purchase after which a customer counts as churned
    period: Literal["week", "month", "quarter"] = "month"  # panel / cohort period
    min_group_size: int = 10  # aggregates over fewer customers are suppressed
    group: str | None = (
        "auto"  # breakdown column of every report; auto: chosen from the customers table's columns (docs/params.md); null: no breakdowns
    )
    model_max_customers: int | None = (
        250000  # models that need rows per customer (loyalty effects, experience churn and revenue models) use a stratified random sample of this many customers when there are more, and the report says so; empty: every customer
    )
    model_seed: int = 0  # seed of that sample


@dataclass
class ReportsParams:
    """How the runner executes notebooks and where it writes."""

    output_dir: Path = Path("../reports")  # where HTML, index and exports go
    notebooks: list[str] = field(default_factory=list)  # report names; empty: all notebooks
    timeout_seconds: int = 1800  # per-notebook time limit
    jobs: int = 2  # notebooks executed in parallel
    kernel_name: str = (
        "analysis"  # Jupyter kernel used by papermill (make setup registers "analysis")
    )
    title: str = "Customer retention reports"  # title of the index page
    engine_memory_limit: str | None = (
        None  # DuckDB memory cap per notebook, e.g. "2GB" (it spills to disk beyond); empty: DuckDB's default (80% of RAM)
    )


@dataclass
class KpiParams:
    """KPI dashboard (00_kpi_dashboard)."""

    granularity: Literal["day", "week", "month", "quarter"] = "month"  # reporting period
    periods_shown: int = 24  # number of most recent periods in tables and plots
    normal_range_periods: int = 12  # flag a KPI outside its range over this many periods
    targets: dict[str, float] = field(default_factory=dict)  # KPI -> target, e.g. {sla_met: 0.9}


@dataclass
class SurvivalParams:
    """Retention and survival curves (01_retention_survival)."""

    group: str | None = (
        "auto"  # grouping column for KM curves and log-rank; auto: the breakdown column (analysis.group); null: none
    )
    horizons_months: list[float] = field(
        default_factory=lambda: [3.0, 6.0, 12.0, 24.0]
    )  # tenures at which the share still active is reported
    rmst_horizon_months: float = 24.0  # restricted mean survival time horizon
    cox_covariates: Literal["auto"] | list[str] = (
        "auto"  # Cox terms; text columns give one term per level; auto: the customer attribute columns that qualify (docs/params.md); []: none
    )
    cox_strata: list[str] = field(default_factory=list)  # stratify the Cox baseline by these
    ph_alpha: float = 0.05  # PH test level below which a stratified refit is shown
    max_months: float = 36.0  # x-axis limit of curves
    reference_levels: dict[str, str] = field(
        default_factory=dict
    )  # Cox reference level per categorical covariate, e.g. {segment: consumer}; empty: the most frequent level


# Confounders of the loyalty study on the sample world (columns of
# analysis.loyalty.landmark_frame; params/default.yaml lists them);
# analysis.loyalty.DEFAULT_COVARIATES and the coverage simulation use this same list.
# On other data, loyalty.covariates: auto builds the list from the parts below.
LOYALTY_COVARIATES = (
    "prior_spend",
    "prior_purchases",
    "tenure_months",
    "segment",
    "value_tier",
    "prior_nps_category",
    "prior_tickets",
    "history_tickets",
    "history_nps_mean",
    "prior_unresolved",
    "prior_sla_breaches",
    "log_prior_spend",
)
#: loyalty.covariates auto, first: computed from transactions and signup (always there).
LOYALTY_PURCHASE_COVARIATES = ("prior_spend", "prior_purchases", "tenure_months")
#: loyalty.covariates auto, after the customer attributes: computed from the experience
#: table (only when the data has one), then log_prior_spend.
LOYALTY_EXPERIENCE_COVARIATES = (
    "prior_nps_category",
    "prior_tickets",
    "history_tickets",
    "history_nps_mean",
    "prior_unresolved",
    "prior_sla_breaches",
)


@dataclass
class LoyaltyParams:
    """Loyalty-programme effects (02_loyalty_programme)."""

    landmarks_months: list[float] = field(default_factory=lambda: [6.0, 12.0])  # landmark tenures
    lookback_months: float = 3.0  # covariate window before the landmark
    horizon_months: float = 6.0  # outcome window after the landmark
    covariates: Literal["auto"] | list[str] = (
        "auto"  # confounders measured before the landmark (columns of loyalty.landmark_frame); auto: spend, purchases and tenure, service experience when there is an experience table, and the customer attribute columns that qualify
    )
    trim: float | None = (
        None  # landmark analyses and effects on enrollees (ATT): drop rows with propensity outside [trim, 1 - trim]; empty: no trimming
    )
    ate_trim: Literal["crump"] | float | None = (
        "crump"  # sequential-trial ATE (everyone eligible): "crump" keeps customer-months with propensity in [a, 1 - a], a chosen by the rule of Crump et al. (2009); a number: that a; empty: no trimming (weak overlap: the few enrolments with tiny propensities get huge weights)
    )
    propensity_model: Literal["logit", "gbm"] = "logit"
    event_window: list[int] = field(default_factory=lambda: [-6, 6])  # periods around enrolment
    heterogeneity_by: str | None = (
        "auto"  # column for subgroup effects; auto: the breakdown column (analysis.group); null: none
    )
    n_boot: int = 0  # 0: analytic intervals for the weighted survival curves and the event study; > 0: that many bootstrap replicates instead (slow on large data)
    seed: int = 0  # seed of those bootstraps and of the sequential-trial sample
    trial_max_customers: int | None = (
        50000  # sequential trials on a random sample of at most this many customers (stated in the report); empty: all customers
    )


@dataclass
class ExperienceParams:
    """Experience-to-revenue links (03_experience_revenue)."""

    window_days: int = 90  # look-back window for tickets and breaches in the churn model
    lags: list[int] = field(default_factory=lambda: [1, 2, 3])  # revenue-link lags (periods)
    fcr_improvement_points: float = 10.0  # scenario: FCR up by this many percentage points
    sla_breach_reduction: float = 0.5  # scenario: share of SLA breaches avoided
    horizon_months: float = 12.0  # horizon of revenue-at-stake figures
    covariate_update: Literal["period", "event"] = (
        "period"  # churn model: experience counts from the next period (period) or from its own day (event)
    )
    km_landmark_months: int = (
        12  # retention curves by NPS category start this many months after the window start
    )
    driver_window_days: int = (
        30  # a ticket up to this many days before a survey answer counts as its driver
    )
    cox_covariates: Literal["auto"] | list[str] = (
        "auto"  # customer attributes added to every experience Cox model; auto: the customer attribute columns that qualify, less cox_strata; []: none
    )
    cox_strata: str | None = None  # customer attribute with its own baseline hazard; null: none


@dataclass
class ValueParams:
    """Customer value and churn risk (04_customer_value)."""

    calibration_weeks: int = 0  # 0: split the window in half; CDNOW uses 39
    holdout_weeks: int = 0  # 0: the rest of the window
    freq: Literal["D", "W", "M"] = "W"  # time unit of the purchase models
    clv_horizon_months: float = 12.0  # CLV horizon
    discount_rate_annual: float = 0.10  # annual discount rate for CLV
    risk_horizon_months: float = 3.0  # churn-risk label: churn within this many months
    strategic_column: str | None = (
        "auto"  # true/false customer column flagging strategic customers; auto: the one such column whose name contains "strategic", if any; null: none
    )
    strategic_segments: Literal["auto"] | list[str] = (
        "auto"  # or: levels of customers.segment deemed strategic; auto: none (no rule can tell which segments matter to you); []: none
    )
    top_share: float = 0.1  # "top decile" for value concentration
    export_name: str = "customers_to_protect.csv"  # CRM export, written under output_dir/exports
    risk_top_share: float = 0.2  # share of scored customers (highest risk first) counted as at risk
    tier_quantiles: list[float] = field(
        default_factory=lambda: [0.5, 0.8]
    )  # CLV-rank cuts: low < 1st <= medium < 2nd <= high


@dataclass
class Params:
    """A validated params file."""

    data: DataParams = field(default_factory=DataParams)
    analysis: AnalysisParams = field(default_factory=AnalysisParams)
    reports: ReportsParams = field(default_factory=ReportsParams)
    kpi: KpiParams = field(default_factory=KpiParams)
    survival: SurvivalParams = field(default_factory=SurvivalParams)
    loyalty: LoyaltyParams = field(default_factory=LoyaltyParams)
    experience: ExperienceParams = field(default_factory=ExperienceParams)
    value: ValueParams = field(default_factory=ValueParams)
    source_file: Path | None = None  # set by load_params, not read from YAML
    explicit: frozenset[str] = field(
        default_factory=frozenset
    )  # "section.key" of every key the file (or its extends chain, or overrides) sets

    def to_dict(self) -> dict[str, Any]:
        """Return the params as plain YAML-able data (paths and dates as strings)."""
        return {name: _plain(getattr(self, name)) for name in SECTIONS}

    def is_explicit(self, key: str) -> bool:
        """Return True if ``key`` ("section.key") was written in the params, not defaulted.

        Data checks use it to tell a setting the user chose (refused when it cannot
        work on the data) from a default that does not fit (a warning).
        """
        return key in self.explicit


# Fields of Params that are not sections of the file.
_NOT_SECTIONS = ("source_file", "explicit")
#: Section names of a params file, in order.
SECTIONS = tuple(f.name for f in dataclasses.fields(Params) if f.name not in _NOT_SECTIONS)


# --------------------------------------------------------------------------------------
# Range checks that types cannot express
# --------------------------------------------------------------------------------------

_RANGES: dict[tuple[str, str], tuple[float | None, float | None]] = {
    ("analysis", "inactivity_days"): (1, None),
    ("analysis", "min_group_size"): (1, None),
    ("analysis", "model_max_customers"): (100, None),
    ("analysis", "model_seed"): (0, None),
    ("reports", "timeout_seconds"): (1, None),
    ("reports", "jobs"): (1, 64),
    ("kpi", "periods_shown"): (1, None),
    ("kpi", "normal_range_periods"): (3, None),
    ("survival", "rmst_horizon_months"): (0.001, None),
    ("survival", "ph_alpha"): (0.0, 1.0),
    ("survival", "max_months"): (0.001, None),
    ("loyalty", "lookback_months"): (0.001, None),
    ("loyalty", "horizon_months"): (0.001, None),
    ("loyalty", "trim"): (0.0, 0.5),
    ("loyalty", "ate_trim"): (0.0, 0.5),
    ("loyalty", "trial_max_customers"): (100, None),
    ("experience", "window_days"): (1, None),
    ("experience", "sla_breach_reduction"): (0.0, 1.0),
    ("experience", "fcr_improvement_points"): (0.0, 100.0),
    ("experience", "horizon_months"): (0.001, None),
    ("experience", "km_landmark_months"): (1, None),
    ("experience", "driver_window_days"): (1, None),
    ("value", "calibration_weeks"): (0, None),
    ("value", "holdout_weeks"): (0, None),
    ("value", "clv_horizon_months"): (0.001, None),
    ("value", "discount_rate_annual"): (0.0, 1.0),
    ("value", "risk_horizon_months"): (0.001, None),
    ("value", "top_share"): (0.001, 1.0),
    ("value", "risk_top_share"): (0.001, 1.0),
}


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def load_params(path: str | Path, overrides: dict[str, Any] | None = None) -> Params:
    """Read, validate and resolve a params file.

    Parameters
    ----------
    path : str or Path
        YAML file. Relative paths inside it resolve against its folder. A top-level
        ``extends: other.yaml`` (relative to the file) reads that file first and
        merges this one over it, section by section (the scheduled sets in
        ``params/`` extend ``default.yaml``); paths then resolve against the
        extending file's folder.
    overrides : dict, optional
        Nested dict merged over the file's content before validation
        (e.g. ``{"data": {"as_of": "2025-12-31"}}``).

    Returns
    -------
    Params

    Raises
    ------
    ParamsError
        Listing every problem, one per line.
    """
    path = Path(path)
    raw = _read_raw(path, chain=())
    if overrides:
        raw = _merge(raw, overrides)
    return params_from_dict(raw, base_dir=path.resolve().parent, source_file=path.resolve())


def _read_raw(path: Path, *, chain: tuple[Path, ...]) -> dict[str, Any]:
    """Read one params file as a dict, resolving ``extends: other.yaml`` (merged under it)."""
    if not path.is_file():
        hint = f" (extended by {chain[-1]})" if chain else ""
        raise ParamsError(
            f"params file not found: {path}{hint}",
            [
                Problem(
                    "params",
                    "extends" if chain else None,
                    "missing_file",
                    f"no file at {path}",
                    fix="pass --params with the path of a YAML file, e.g. params/default.yaml"
                    if not chain
                    else "fix the 'extends:' path (relative to the extending file)",
                )
            ],
        )
    if path.resolve() in chain:
        loop = " -> ".join(str(p) for p in (*chain, path.resolve()))
        raise ParamsError(
            f"params files extend each other in a loop: {loop}",
            [Problem("params", "extends", "cycle", loop, fix="remove one of the 'extends:' lines")],
        )
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(
            f"params file {path} is not valid YAML",
            [
                Problem(
                    "params",
                    None,
                    "yaml",
                    str(exc).replace("\n", " "),
                    fix="fix the YAML syntax (indentation, colons, quotes)",
                )
            ],
        ) from None
    if not isinstance(raw, dict):
        raise ParamsError(
            f"params file {path} must hold a mapping of sections",
            [
                Problem(
                    "params",
                    None,
                    "yaml",
                    "top level is not a mapping",
                    fix="start the file with section names such as 'data:'",
                )
            ],
        )
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str) or not base.strip():
        raise ParamsError(
            f"params file {path}: 'extends' must be a file name",
            [
                Problem(
                    "params",
                    "extends",
                    "type",
                    f"got {base!r}",
                    fix="write e.g. 'extends: default.yaml' (relative to this file)",
                )
            ],
        )
    parent = _read_raw(path.parent / base, chain=(*chain, path.resolve()))
    return _merge(parent, raw)


def params_from_dict(
    raw: dict[str, Any], *, base_dir: Path | None = None, source_file: Path | None = None
) -> Params:
    """Validate a nested dict into :class:`Params` (see :func:`load_params`)."""
    problems: list[Problem] = []
    base_dir = Path(base_dir or Path.cwd())
    params = _build(Params, raw, "params", problems, base_dir)
    if params is not None:
        params.source_file = source_file
        params.explicit = frozenset(
            f"{section}.{key}"
            for section, body in raw.items()
            if section in SECTIONS and isinstance(body, dict)
            for key in body
        )
        _cross_checks(params, problems)
    if problems:
        where = source_file or "params"
        raise ParamsError(f"{len(problems)} problem(s) in {where}", problems)
    return params


def _cross_checks(params: Params, problems: list[Problem]) -> None:
    d = params.data
    if d.source in ("folder", "duckdb") and d.path is None:
        problems.append(
            Problem(
                "data",
                "path",
                "required",
                f"source '{d.source}' needs a path",
                fix="set data.path to the data folder or .duckdb file",
            )
        )
    if d.source == "postgres" and not (d.url or d.url_env):
        problems.append(
            Problem(
                "data",
                "url",
                "required",
                "source 'postgres' needs url or url_env",
                fix="set data.url_env to the name of an environment variable",
            )
        )
    from analysis.data.contract import TABLES

    for section, mapping in (("tables", d.tables), ("columns", d.columns)):
        for t in mapping:
            if t not in TABLES:
                problems.append(_unknown(f"data.{section}", t, list(TABLES)))
    for t, cols in d.columns.items():
        if t in TABLES and isinstance(cols, dict):
            valid = TABLES[t].column_names
            for c in cols:
                if c not in valid and not TABLES[t].extra_columns_allowed:
                    problems.append(_unknown(f"data.columns.{t}", c, valid))
    for t, cols in d.columns.items():
        if not isinstance(cols, dict):
            continue
        seen: dict[str, str] = {}
        for contract_col, yours in cols.items():
            if yours in seen:
                problems.append(
                    Problem(
                        "data",
                        f"columns.{t}.{contract_col}",
                        "duplicate_mapping",
                        f"data.columns.{t} maps both '{seen[yours]}' and '{contract_col}' to "
                        f"your column '{yours}'",
                        fix="map each contract column to a different column of your data",
                    )
                )
            seen[yours] = contract_col
    _check_encoding_and_timezone(d, problems)
    _check_lists(params, problems)
    if d.as_of and d.window_start and d.window_start >= d.as_of:
        problems.append(
            Problem(
                "data",
                "window_start",
                "range",
                f"window_start {d.window_start} is not before as_of {d.as_of}",
                fix="set window_start earlier than as_of",
            )
        )


def _check_encoding_and_timezone(d: DataParams, problems: list[Problem]) -> None:
    import codecs

    try:
        codecs.lookup(d.encoding)
    except LookupError:
        common = ["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1", "iso-8859-15", "mac-roman"]
        close = difflib.get_close_matches(d.encoding.lower(), common, n=1, cutoff=0.4)
        problems.append(
            Problem(
                "data",
                "encoding",
                "unknown_encoding",
                f"'{d.encoding}' is not a text encoding Python knows",
                fix=(f"did you mean '{close[0]}'? " if close else "")
                + "use e.g. utf-8, cp1252 (Windows/Excel), latin-1 or utf-16",
            )
        )
    zones = _time_zones()
    if zones and d.timezone not in zones:
        close = difflib.get_close_matches(d.timezone, sorted(zones), n=1, cutoff=0.6)
        problems.append(
            Problem(
                "data",
                "timezone",
                "unknown_timezone",
                f"'{d.timezone}' is not an IANA time zone name",
                fix=(f"did you mean '{close[0]}'? " if close else "")
                + "use a name such as UTC, Europe/Berlin or America/New_York",
            )
        )


def _time_zones() -> set[str]:
    """Return the IANA time zone names known here (empty when no tz database is installed)."""
    try:
        import zoneinfo

        return set(zoneinfo.available_timezones()) | {"UTC"}
    except Exception:  # noqa: BLE001 - no tz database: leave the check to the engine
        return set()


def _check_lists(params: Params, problems: list[Problem]) -> None:
    """Range checks on list-valued settings that the type alone cannot express."""

    def bad(section: str, key: str, message: str, fix: str) -> None:
        problems.append(Problem(section, key, "range", f"{section}.{key}: {message}", fix=fix))

    sp, lp, ep, vp = params.survival, params.loyalty, params.experience, params.value
    if any(h <= 0 for h in sp.horizons_months):
        bad(
            "survival",
            "horizons_months",
            f"{sp.horizons_months} has a value <= 0",
            "list tenures in months greater than 0, e.g. [3, 6, 12]",
        )
    if any(v <= 0 for v in lp.landmarks_months):
        bad(
            "loyalty",
            "landmarks_months",
            f"{lp.landmarks_months} has a value <= 0",
            "list landmark tenures in months greater than 0, e.g. [6, 12]",
        )
    if len(lp.event_window) != 2 or not (lp.event_window[0] < 0 <= lp.event_window[1]):
        bad(
            "loyalty",
            "event_window",
            f"{lp.event_window} is not [first, last] with first < 0 <= last",
            "give two whole numbers of months around enrolment, e.g. [-6, 6]",
        )
    if any(v < 1 for v in ep.lags):
        bad(
            "experience",
            "lags",
            f"{ep.lags} has a lag below 1",
            "list lags of one period or more, e.g. [1, 2, 3]",
        )
    q = vp.tier_quantiles
    if len(q) != 2 or not (0 < q[0] < q[1] < 1):
        bad(
            "value",
            "tier_quantiles",
            f"{q} is not two increasing shares between 0 and 1",
            "give two cut-points, e.g. [0.5, 0.8]",
        )
    name = vp.export_name
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        bad(
            "value",
            "export_name",
            f"'{name}' is not a plain file name",
            "give a file name such as customers_to_protect.csv (it is written under reports.output_dir/exports)",
        )


# --------------------------------------------------------------------------------------
# A small typed-dataclass validator
# --------------------------------------------------------------------------------------


def _unknown(where: str, key: str, valid: list[str]) -> Problem:
    close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(valid)}"
    return Problem(
        where.split(".")[0],
        f"{where.partition('.')[2] + '.' if '.' in where else ''}{key}",
        "unknown_key",
        f"unknown key '{key}' in {where}",
        fix=hint,
    )


def _build(cls, raw, where: str, problems: list[Problem], base_dir: Path):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                where,
                None,
                "type",
                f"{where} must be a mapping, got {type(raw).__name__}",
                fix=f"write {where} as 'key: value' lines",
            )
        )
        return None
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in _NOT_SECTIONS]
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            problems.append(_unknown(where, key, names))
            continue
        label = key if where == "params" else f"{where}.{key}"
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            built = _build(tp, value, key, problems, base_dir)
            if built is not None:
                kwargs[key] = built
            continue
        ok, conv, msg = _coerce(value, tp, base_dir)
        if not ok:
            section, _, k = label.partition(".")
            problems.append(
                Problem(
                    section,
                    k or None,
                    "type",
                    f"{label}: {msg}",
                    fix=f"give {label} a value of type {_type_name(tp)}",
                )
            )
            continue
        rng = _RANGES.get((where, key))
        if rng and isinstance(conv, int | float) and not isinstance(conv, bool):
            lo, hi = rng
            if (lo is not None and conv < lo) or (hi is not None and conv > hi):
                bounds = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
                problems.append(
                    Problem(
                        where,
                        key,
                        "range",
                        f"{label}={conv} is outside {bounds}",
                        fix=f"choose {label} within {bounds}",
                    )
                )
                continue
        kwargs[key] = conv
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - defensive
        problems.append(Problem(where, None, "type", str(exc)))
        return None


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return str(tp).replace("typing.", "")
    return {type(None): "empty", dt.date: "date (YYYY-MM-DD)", Path: "path"}.get(tp, tp.__name__)


def _coerce(value, tp, base_dir: Path):
    """Return (ok, converted, message)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return True, None, ""
        msgs = []
        for a in args:
            if a is type(None):
                continue
            ok, conv, msg = _coerce(value, a, base_dir)
            if ok:
                return True, conv, ""
            msgs.append(msg)
        return False, None, "; ".join(msgs)
    if origin is Literal:
        if value in args:
            return True, value, ""
        close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return False, None, f"'{value}' is not one of {', '.join(map(str, args))}{hint}"
    if origin is list:
        if value is None:
            return True, [], ""
        if not isinstance(value, list):
            value = [value]
        out = []
        for i, v in enumerate(value):
            ok, conv, msg = _coerce(v, args[0], base_dir)
            if not ok:
                return False, None, f"item {i}: {msg}"
            out.append(conv)
        return True, out, ""
    if origin is dict:
        if value is None:
            return True, {}, ""
        if not isinstance(value, dict):
            return False, None, f"expected a mapping, got {type(value).__name__}"
        out = {}
        for k, v in value.items():
            ok, conv, msg = _coerce(v, args[1], base_dir)
            if not ok:
                return False, None, f"key '{k}': {msg}"
            out[str(k)] = conv
        return True, out, ""
    if tp is bool:
        if isinstance(value, bool):
            return True, value, ""
        return False, None, f"expected true or false, got {value!r}"
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return False, None, f"expected a whole number, got {value!r}"
        return True, value, ""
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False, None, f"expected a number, got {value!r}"
        return True, float(value), ""
    if tp is str:
        if isinstance(value, str):
            return True, value, ""
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True, str(value), ""
        return False, None, f"expected text, got {value!r}"
    if tp is Path:
        if not isinstance(value, str) or not value:
            return False, None, f"expected a path, got {value!r}"
        p = Path(value).expanduser()
        return True, (p if p.is_absolute() else (base_dir / p).resolve()), ""
    if tp is dt.date:
        if isinstance(value, dt.datetime):
            return True, value.date(), ""
        if isinstance(value, dt.date):
            return True, value, ""
        if isinstance(value, str):
            try:
                return True, dt.date.fromisoformat(value.strip()), ""
            except ValueError:
                return False, None, f"'{value}' is not a date (use YYYY-MM-DD)"
        return False, None, f"expected a date (YYYY-MM-DD), got {value!r}"
    return False, None, f"unsupported type {tp}"  # pragma: no cover


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _plain(obj):
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Path | dt.date):
        return str(obj)
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def describe_params() -> list[dict[str, str]]:
    """List every params key with its type and default (used to check docs/params.md)."""
    rows = []
    for f in dataclasses.fields(Params):
        if f.name in _NOT_SECTIONS:
            continue
        sec = f.default_factory()  # type: ignore[misc]
        hints = typing.get_type_hints(type(sec))
        for g in dataclasses.fields(sec):
            rows.append(
                {
                    "section": f.name,
                    "key": g.name,
                    "type": _type_name(hints[g.name]),
                    "default": repr(_plain(getattr(sec, g.name))),
                }
            )
    return rows


def _field_comments(cls) -> dict[str, str]:
    """Return {field: comment} from the ``# ...`` comments inside each field's definition."""
    import ast
    import inspect
    import io
    import textwrap
    import tokenize

    src = textwrap.dedent(inspect.getsource(cls))
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    out = {}
    for node in ast.parse(src).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found = [comments[i] for i in range(node.lineno, node.end_lineno + 1) if i in comments]
            if found:
                out[node.target.id] = " ".join(found)
    return out


def params_markdown() -> str:
    """Return a markdown table of every params key with type, default and meaning."""
    comments: dict[tuple[str, str], str] = {}
    for f in dataclasses.fields(Params):
        if f.name in _NOT_SECTIONS:
            continue
        cls = type(f.default_factory())  # type: ignore[misc]
        for key, text in _field_comments(cls).items():
            comments[(f.name, key)] = text
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for r in describe_params():
        c = comments.get((r["section"], r["key"]), "").replace("|", "\\|")
        t = r["type"].replace("|", "\\|")
        lines.append(f"| `{r['section']}.{r['key']}` | {t} | `{r['default']}` | {c} |")
    return "\n".join(lines) + "\n"
