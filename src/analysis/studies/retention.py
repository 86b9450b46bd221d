"""Retention (survival) study: how long customers stay, and what is associated with leaving.

:func:`retention_study` computes every number the retention report shows from
the lifetimes table (one row per customer, see :func:`analysis.derive.lifetimes`)
by calling the estimators of :mod:`analysis.stats`. It returns numbers and the
structured facts the report's sentences need (groups pooled or left out,
covariates not used, sections that could not be estimated); the sentences
themselves are written by :mod:`analysis.report.retention`.

Three rules hold whatever the data:

- **Totals count everyone.** Groups too small to show are pooled into one
  "other (small groups)" level (or, when even that is too small, left out of
  the group comparisons only); the overall curves, medians, shares and the
  headline numbers are computed on every customer of the frame.
- **Any section that cannot be estimated is a** :class:`~analysis.studies.sections.Skipped`
  (no churn events, one group, a singular design, a model that does not
  converge ...); every other section stays.
- **Survival statistics describe the customers they are about.** Under
  inactivity churn a one-time buyer "leaves" on the day of the first purchase;
  such buyers are reported as their own figure (:class:`OneTimeBuyers`) and the
  tenure statistics describe the customers who bought again, with the
  all-customer figures kept beside them (``everyone_median``,
  ``everyone_survival_at``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.stats.competing_risks import cif_at, cumulative_incidence
from analysis.stats.cox import CoxResult, _is_categorical, cox, cox_stratified_refit
from analysis.stats.hazard import hazard_over_tenure
from analysis.stats.survival import (
    at_risk_table,
    holm,
    kaplan_meier,
    logrank,
    median_survival,
    rmst,
    survival_at,
)
from analysis.studies.retention_one_time import OneTimeBuyers, one_time_buyers
from analysis.studies.sections import NotEstimable, Skipped, attempt, is_skipped

__all__ = [
    "ALL_CUSTOMERS",
    "NOT_RECORDED",
    "OTHER_GROUPS",
    "OneTimeBuyers",
    "RetentionResult",
    "cif_at",  # re-exported for the notebook: read the cumulative incidence at tenures
    "cohort_matrix",
    "cohort_survival",
    "drop_small_groups",
    "one_time_buyers",
    "pool_small_groups",
    "retention_study",
]

#: Label of the row that counts every customer of the frame.
ALL_CUSTOMERS = "all customers"
#: Level that pools the groups too small to show on their own.
OTHER_GROUPS = "other (small groups)"
#: Level of customers whose attribute is missing.
NOT_RECORDED = "not recorded"

DAYS_PER_MONTH = 30.4375  # as analysis.data.derive

# Section names (shown on the index when a section is skipped)
S_CURVES = "Retention curves"
S_RMST = "Average tenure within the horizon"
S_LOGRANK = "Group comparison (log-rank test)"
S_HAZARD = "Churn rate over tenure"
S_COX = "Who leaves sooner (Cox model)"
S_PH = "Proportional-hazards check"
S_CONCORDANCE = "Model discrimination (concordance)"
S_CIF = "Reasons for leaving (competing risks)"


def drop_small_groups(
    df: pd.DataFrame, *, group: str, min_group_size: int
) -> tuple[pd.DataFrame, list]:
    """Remove rows of groups with fewer than ``min_group_size`` customers.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per customer.
    group : str
        Grouping column.
    min_group_size : int
        Smallest group that may be shown.

    Returns
    -------
    (pandas.DataFrame, list)
        The remaining rows (a new frame) and the suppressed group labels.
    """
    sizes = df[group].value_counts(dropna=False)
    small = [g for g, n in sizes.items() if n < min_group_size]
    keep = ~df[group].isin(small)
    return df.loc[keep].copy(), small


def pool_small_groups(
    values: pd.Series, *, min_group_size: int, weights: pd.Series | None = None
) -> tuple[pd.Series, list]:
    """Pool the levels with fewer than ``min_group_size`` customers into one level.

    Missing values become the level :data:`NOT_RECORDED` first, so customers
    without the attribute stay in the analysis. The small levels become
    :data:`OTHER_GROUPS`; when the pooled level is itself smaller than
    ``min_group_size`` (or there is only one small level), its customers get a
    missing value instead: they stay in every total but are in no group.

    Parameters
    ----------
    values : pandas.Series
        A categorical attribute, one value per customer.
    min_group_size : int
        Smallest group that may be shown.
    weights : pandas.Series, optional
        Customers per row (rows of counts); None: one customer per row.

    Returns
    -------
    (pandas.Series, list)
        The pooled values (object dtype, NaN where the customer is in no shown
        group) and the small levels, largest first.
    """
    v = values.astype(object).where(values.notna(), NOT_RECORDED)
    if weights is None:
        sizes = v.value_counts()
    else:
        sizes = pd.Series(np.asarray(weights, dtype=float), index=v.index).groupby(v).sum()
        sizes = sizes.sort_values(ascending=False, kind="stable")
    small = [g for g, n in sizes.items() if n < min_group_size]
    if not small:
        return v, []
    pooled_n = int(sizes[small].sum())
    target = OTHER_GROUPS if pooled_n >= min_group_size and len(small) > 1 else np.nan
    return v.where(~v.isin(small), target), small


def cohort_survival(
    df: pd.DataFrame,
    *,
    cohort: str,
    duration: str,
    event: str,
    months,
    entry: str | None = None,
    min_group_size: int = 0,
) -> pd.DataFrame:
    """Estimate retention by acquisition cohort at given tenures (Kaplan-Meier per cohort).

    Unlike the raw share of a cohort still active, the KM estimate uses
    customers who are still active but observed for a shorter time (recent
    cohorts) correctly; cells beyond a cohort's follow-up are NaN.

    Returns
    -------
    pandas.DataFrame
        Index: cohort; columns: tenures; values: share still active (0-1).
        Cohorts smaller than ``min_group_size`` are dropped.
    """
    d = df
    if min_group_size:
        d, _ = drop_small_groups(df, group=cohort, min_group_size=min_group_size)
    sa = survival_at(
        d, duration=duration, event=event, times=list(months), group=cohort, entry=entry
    )
    return sa.pivot(index=cohort, columns="horizon", values="survival")


def cohort_matrix(
    cohorts: pd.DataFrame,
    *,
    value: str = "retention_rate",
    min_group_size: int = 10,
    max_periods: int | None = None,
    base_period: int | None = None,
    observable_until=None,
    period: str = "month",
) -> pd.DataFrame:
    """Pivot the cohort table (see :func:`analysis.derive.cohorts`) to cohort x periods since.

    Cohorts smaller than ``min_group_size`` customers are dropped. With
    ``base_period`` (e.g. 1), revenue retention is relative to that period
    instead of period 0, which is a partial period (customers join during it);
    cohorts without revenue in the base period are NaN. With
    ``observable_until`` (a date: under inactivity churn, the as-of date less
    the inactivity window), retention cells of periods ending after it are NaN:
    churn in them cannot be seen yet (``period``: the cohort table's period).

    Returns
    -------
    pandas.DataFrame
        Index: cohort (period start); columns: periods since acquisition; values: ``value``.
    """
    c = cohorts[cohorts.cohort_size >= min_group_size]
    if max_periods is not None:
        c = c[c.periods_since <= max_periods]
    if observable_until is not None and value == "retention_rate":
        days = {"day": 1, "week": 7, "quarter": 3 * DAYS_PER_MONTH}.get(period, DAYS_PER_MONTH)
        ends = pd.to_datetime(c["cohort"]) + pd.to_timedelta(
            (c["periods_since"] + 1) * days, unit="D"
        )
        c = c.assign(
            retention_rate=c["retention_rate"].where(ends <= pd.Timestamp(observable_until))
        )
    if base_period is not None and value == "revenue_retention" and "revenue" in c.columns:
        base = c[c.periods_since == base_period].set_index("cohort")["revenue"]
        base = base.where(base > 0)
        c = c.assign(revenue_retention=c["revenue"] / c["cohort"].map(base).to_numpy())
        c = c[c.periods_since >= base_period]  # the partial first period is left out
    return c.pivot_table(index="cohort", columns="periods_since", values=value, aggfunc="first")


# ----------------------------------------------------------------------------
# One-time buyers (inactivity churn)
# ----------------------------------------------------------------------------


# ----------------------------------------------------------------------------
# The study: every number the retention notebook shows, computed in one place
# ----------------------------------------------------------------------------


@dataclass
class RetentionResult:
    """Everything the retention report shows (see :func:`retention_study`).

    Numbers and tables only; :mod:`analysis.report.retention` writes the
    findings and notes from them. A section that could not be estimated holds
    a :class:`~analysis.studies.sections.Skipped` in place of its numbers.

    Attributes
    ----------
    n, n_events : int
        Every customer of the lifetimes table, and those who left (churn definition).
    population : str
        Whom the tenure statistics describe: "customers", or under inactivity
        churn "repeat customers" (customers who bought again; one-time buyers
        are reported in ``one_time``).
    n_population, n_population_events : int
        Customers (and churn events) the tenure statistics describe.
    n_population_too_recent : int
        Customers of the population left out because none of their time can be
        followed yet (inactivity churn: still active, started too recently).
    n_active : int
        Customers still active at the as-of date (not churned; everyone counted).
    median, survival_at : pandas.DataFrame or Skipped
        First row "all customers" (every customer of the population), then
        one row per shown group.
    everyone_median, everyone_survival_at : pandas.DataFrame or None
        Under inactivity churn, the same numbers over every customer,
        one-time buyers included (None when the population is everyone).
    rmst_all : pandas.DataFrame or Skipped
        Restricted mean tenure of the whole population.
    rmst : pandas.DataFrame or Skipped or None
        By group, with differences between groups (None without groups).
    logrank, cox, concordance, ph_table, hazard, cif
        The model sections, each a Skipped where it could not be estimated
        (``logrank`` and ``cif`` are None where the data have no groups / no
        churn reasons at all).
    group : str or None
        The column the group sections use (None when none is usable).
    group_note : str or None
        Why the requested group is not used: "missing" (not a column),
        "empty" (no values), "single" (one group only).
    suppressed_groups : list
        Groups too small to show on their own (pooled or left out).
    n_group_unshown : int
        Customers in no shown group (their small groups pooled to fewer than
        ``min_group_size``); they still count in every total.
    skipped_covariates : list of str
        Cox covariates not in the data.
    cox_unusable : list of (str, str)
        Covariates in the data but left out of the model: ("empty" | "constant").
    cox_dropped_levels : list of (str, list)
        Categorical Cox covariates with small levels (pooled or left out).
    """

    n: int
    n_events: int
    n_left_truncated: int
    group: str | None
    suppressed_groups: list
    horizons: list
    km_all: object
    km_group: pd.DataFrame | None
    at_risk_all: object
    at_risk_group: pd.DataFrame | None
    median: object
    survival_at: object
    rmst: object
    logrank: object
    cox: object
    cox_refit: CoxResult | None
    moved_to_strata: list
    hazard: object
    cif: object
    rmst_horizon: float
    ph_alpha: float
    min_group_size: int
    requested_group: str | None
    group_missing: bool
    skipped_covariates: list
    cox_dropped_levels: list
    cause_missing: bool
    definition: str = "contractual"
    inactivity_days: int = 90
    population: str = "customers"
    n_population: int = 0
    n_population_events: int = 0
    n_population_too_recent: int = 0
    n_active: int = 0
    as_of: object = None
    one_time: OneTimeBuyers | None = None
    everyone_median: pd.DataFrame | None = None
    everyone_survival_at: pd.DataFrame | None = None
    rmst_all: object = None
    ph_table: object = None
    concordance: object = None
    group_note: str | None = None
    n_group_unshown: int = 0
    cox_unusable: list = field(default_factory=list)
    covariates_used: list = field(default_factory=list)
    max_time: float = 36.0
    #: (customers the Cox model used, customers in the population) when it was fitted on the
    #: model sample; None: every customer
    cox_sample: tuple[int, int] | None = None

    @property
    def observable_until(self):
        """Under inactivity churn, the last date whose churn can be seen (as-of less the window)."""
        if self.definition != "inactivity" or self.as_of is None:
            return None
        return self.as_of - dt.timedelta(days=int(self.inactivity_days))

    @property
    def cox_error(self) -> str | None:
        """The plain reason the Cox model was not fitted (None when it was)."""
        return self.cox.sentence() if is_skipped(self.cox) else None

    @property
    def cox_shown(self) -> CoxResult | None:
        """The Cox fit whose hazard ratios the report shows (the stratified refit if any)."""
        if is_skipped(self.cox) or self.cox is None:
            return None
        return self.cox_refit if self.cox_refit is not None else self.cox


def _with_all(frame: pd.DataFrame, group: str | None) -> pd.DataFrame:
    return frame.assign(**{group or "group": ALL_CUSTOMERS})


def _curves(lt, lt_g, group, horizons, ticks, common):
    """Kaplan-Meier, medians and shares still active: everyone first, then the shown groups."""
    duration, entry, weights = common["duration"], common["entry"], common["weights"]
    km_all = kaplan_meier(lt, **common)
    at_all = at_risk_table(lt, duration=duration, entry=entry, times=ticks, weights=weights)
    med = _with_all(median_survival(lt, **common), group)
    sa = _with_all(survival_at(lt, times=horizons, **common), group)
    km_g = at_g = None
    if group:
        km_g = kaplan_meier(lt_g, group=group, **common)
        at_g = at_risk_table(
            lt_g, duration=duration, entry=entry, group=group, times=ticks, weights=weights
        )
        by = median_survival(lt_g, group=group, **common)
        med = pd.concat([med, by], ignore_index=True)
        sa = pd.concat(
            [sa, survival_at(lt_g, times=horizons, group=group, **common)], ignore_index=True
        )
    gcol = group or "group"
    med = med[[gcol] + [c for c in med.columns if c != gcol]]
    return km_all, at_all, km_g, at_g, med, sa


def _rmst(frame, horizon, group, common):
    """Restricted mean tenure; NotEstimable when no group is followed up to the horizon."""
    out = rmst(frame, horizon=horizon, group=group, **common)
    est = out[out["kind"] == "estimate"]
    if est["rmst"].isna().all():
        longest = float(frame[common["duration"]].max())
        raise NotEstimable(
            f"Customers are followed for at most {longest:.1f} months, less than the "
            f"{horizon:g}-month horizon of the average tenure",
            remedy="A shorter horizon, or a longer history, would allow it.",
        )
    return out


def _prepare_group(lt, group, min_group_size, weights=None):
    """Return (frame with pooled group, group or None, note, small levels, customers unshown)."""
    if not group:
        return lt, None, None, [], 0
    if group not in lt.columns:
        return lt, None, "missing", [], 0
    if lt[group].isna().all():
        return lt, None, "empty", [], 0
    w = lt[weights] if weights else None
    pooled, small = pool_small_groups(lt[group], min_group_size=min_group_size, weights=w)
    shown = pooled.notna()
    if pooled[shown].nunique() < 2:
        return lt, None, "single", small, 0
    lt_g = lt.assign(**{group: pooled}).loc[shown]
    return lt_g, group, None, small, _count(lt.loc[~shown], weights)


def _cox_frame(lt, covariates, min_group_size):
    """Prepare the Cox covariates: pool small levels, drop unusable columns.

    Returns (frame, usable covariates, missing columns, [(col, reason)], [(col, small levels)]).
    """
    work = lt
    used, missing, unusable, dropped = [], [], [], []
    for c in dict.fromkeys(covariates or []):
        if c not in lt.columns:
            missing.append(c)
            continue
        s = lt[c]
        if s.isna().all():
            unusable.append((c, "empty"))
            continue
        if _is_categorical(s):
            pooled, small = pool_small_groups(s, min_group_size=min_group_size)
            if small:
                dropped.append((c, small))
            if pooled.dropna().nunique() < 2:
                unusable.append((c, "constant"))
                continue
            work = work.assign(**{c: pooled})
        elif s.dropna().nunique() < 2:
            unusable.append((c, "constant"))
            continue
        used.append(c)
    return work, used, missing, unusable, dropped


def _ph_table(fit: CoxResult):
    ph = fit.ph_test.copy()
    terms = ph.index != "GLOBAL"
    p = ph.loc[terms, "p_value"]
    ph["p_holm"] = np.nan
    if p.notna().any():
        ph.loc[p.index[p.notna()], "p_holm"] = holm(p.dropna().to_numpy())
    if ph["p_value"].isna().all():
        raise NotEstimable(
            "The check whether the hazard ratios change with tenure could not be computed on "
            "this data",
            remedy="More churn events at different tenures would allow it.",
        )
    return ph


def _concordance(fit: CoxResult):
    c = fit.concordance
    if c is None or not np.isfinite(c):
        raise NotEstimable(
            "No pair of customers could be compared (it needs one who left while the other was "
            "still a customer), so the model's discrimination is not measured",
            remedy="More churn events would allow it.",
        )
    return float(c)


def _fit_cox(lt_c, covs, strata, reference, common, ph_alpha):
    if not int(lt_c[common["event"]].sum()):
        raise NotEstimable(
            "No customer left during the observed period, so there is nothing to compare whom "
            "leaves sooner",
            remedy="It needs churn events: a longer history, or a period in which some customers "
            "leave.",
        )
    ref = {k: v for k, v in (reference or {}).items() if k in covs and v in set(lt_c[k].dropna())}
    return cox(
        lt_c,
        duration=common["duration"],
        event=common["event"],
        entry=common["entry"],
        covariates=covs,
        strata=strata or None,
        reference=ref,
        alpha=common["alpha"],
    )


_IN_SAMPLE = "_in_cox_sample"


def count_columns(
    definition: str,
    group: str | None,
    *,
    duration: str = "duration_months",
    event: str = "event",
    entry: str = "entry_months",
    cause: str | None = "churn_reason",
) -> list[str]:
    """The lifetimes columns :func:`retention_study` reads besides the Cox covariates:
    the keys of the rows of counts (:meth:`analysis.data.StudyData.lifetime_counts`).

    Tenure, churn, entry, the group and the reason always; under inactivity churn also
    the dates that decide who bought again and how long churn is observable, and the
    second purchase day (the time to return).
    """
    cols = [duration, event, entry, group, cause]
    if definition == "inactivity":
        cols += ["entry_days", "start_date", "first_purchase", "last_purchase"]
        cols += ["second_purchase"]
    return [c for c in dict.fromkeys(cols) if c]


def _count(frame: pd.DataFrame, weights: str | None, mask=None) -> int:
    """Customers in ``frame`` (rows where ``mask``): rows, or the sum of ``weights``."""
    if mask is not None:
        frame = frame.loc[np.asarray(mask, dtype=bool)]
    return int(frame[weights].sum()) if weights else int(len(frame))


def _slim(lt: pd.DataFrame, columns, cox_sample):
    """Return (``lt`` with only the ``columns`` the statistics read, ``cox_sample`` or None).

    Each step of the study copies the rows it keeps (population, follow-up rule, pooled
    groups): at ten million customers every column it does not read costs hundreds of
    megabytes per copy. Membership of the Cox sample becomes one boolean column
    (``customer_id`` is not carried on); without ``customer_id`` there is no sample.
    """
    keep = [c for c in dict.fromkeys(c for c in columns if c) if c in lt.columns]
    out = lt[keep]
    if cox_sample is not None and "customer_id" in lt.columns:
        out = out.assign(**{_IN_SAMPLE: cox_sample.contains(lt["customer_id"].array)})
    else:
        cox_sample = None
    return out, cox_sample


def _population(lt, definition, event, entry):
    """Split the inactivity-churn frame: repeat customers vs one-time buyers.

    Returns the rows the tenure statistics describe and their name.
    """
    if definition != "inactivity" or not {"first_purchase", "last_purchase"} <= set(lt.columns):
        return lt, "customers"
    first = pd.to_datetime(lt["first_purchase"])
    if "start_date" in lt.columns:
        first = first.fillna(pd.to_datetime(lt["start_date"]))
    last = pd.to_datetime(lt["last_purchase"]).fillna(first)
    repeat = (last.dt.normalize() > first.dt.normalize()).to_numpy()
    late_entry = (lt[entry] > 0).to_numpy() if entry in lt.columns else np.zeros(len(lt), bool)
    keep = repeat | late_entry
    return lt.loc[keep], "repeat customers"


def _censor_when_observable(lt, as_of, inactivity_days, duration, event, entry):
    """Censor still-active customers where inactivity churn stops being observable.

    Under inactivity churn a lapse at tenure t is only known ``inactivity_days``
    later, so nobody can be seen to leave after ``as_of - inactivity_days``.
    Censoring the still-active customers at the as-of date would count the
    last ``inactivity_days`` as churn-free time and flatten the curve; they are
    censored at ``as_of - inactivity_days`` instead (their last purchase shows
    they were active then). Still-active customers with no observable time are dropped.
    """
    if as_of is None or "start_date" not in lt.columns or not len(lt):
        return lt
    cutoff = pd.Timestamp(as_of) - pd.Timedelta(days=int(inactivity_days))
    start = pd.to_datetime(lt["start_date"])
    observable = ((cutoff - start).dt.days / DAYS_PER_MONTH).to_numpy(dtype=float)
    censored = (lt[event] == 0).to_numpy()
    dur = lt[duration].to_numpy(dtype=float)
    new = np.where(censored, np.minimum(dur, observable), dur)
    en = lt[entry].to_numpy(dtype=float) if entry in lt.columns else np.zeros(len(lt))
    keep = ~censored | (new > en)  # drop only the still-active with no observable time
    return lt.assign(**{duration: new}).loc[keep]


def retention_study(
    lt: pd.DataFrame,
    *,
    group: str | None,
    horizons,
    rmst_horizon: float,
    covariates,
    strata=(),
    ph_alpha: float = 0.05,
    min_group_size: int = 10,
    max_months: float = 36.0,
    reference: dict | None = None,
    duration: str = "duration_months",
    event: str = "event",
    entry: str = "entry_months",
    cause: str | None = "churn_reason",
    alpha: float = 0.05,
    definition: str = "contractual",
    inactivity_days: int = 90,
    as_of=None,
    transactions=None,
    cox_sample=None,
    weights: str | None = None,
    cox_rows: pd.DataFrame | None = None,
) -> RetentionResult:
    """Compute the retention (survival) study from the lifetimes table.

    Groups (of ``group`` and of categorical Cox covariates) with fewer than
    ``min_group_size`` customers are pooled into :data:`OTHER_GROUPS` (left
    out of group comparisons when even the pool is too small); every total
    counts every customer. Sections that cannot be estimated on the data are
    :class:`~analysis.studies.sections.Skipped`; the others stay.

    Parameters
    ----------
    lt : pandas.DataFrame
        Lifetimes (see :func:`analysis.derive.lifetimes`), one row per customer;
        time columns in months.
    group : str or None
        Column for the curves, medians, RMST differences and log-rank test.
    horizons : list of float
        Tenures (months) at which the share still active is reported.
    rmst_horizon : float
        Horizon (months) of the restricted mean tenure.
    covariates, strata : list of str
        Cox model terms and stratification columns (columns that are missing,
        empty or constant are left out and recorded).
    definition : {"contractual", "inactivity"}
        The churn definition of ``lt``. Under "inactivity", one-time buyers
        "leave" at tenure 0: the tenure statistics then describe repeat
        customers. One-time buyers are counted (``one_time``) under either
        definition when ``lt`` has purchase dates.
    inactivity_days : int
        Days without purchase that define inactivity churn.
    as_of : date-like, optional
        As-of date (default: the latest ``end_date``).
    transactions : pandas.DataFrame or callable, optional
        customer_id and date of purchases (time to the second purchase); each
        customer's first two purchase days are enough. A callable (such as
        ``StudyData.first_purchase_days``) is called with ``2`` only when the time to
        the second purchase is computed (inactivity churn), so other data never pulls it.
    cox_sample : analysis.data.sample.CustomerSample, optional
        The study's model sample (``StudyData.model_sample()``): the Cox model, its
        proportional-hazards check and concordance are fitted on these customers only
        (``lt`` needs ``customer_id``); curves, medians, RMST, log-rank, hazard over
        tenure and cumulative incidence use every customer. None: every customer.
    weights : str, optional
        Column of ``lt`` with the customers each row stands for: ``lt`` then holds rows
        of counts (:meth:`analysis.data.StudyData.lifetime_counts`, summed on the engine)
        instead of one row per customer, and every number equals the per-customer one.
        Under inactivity churn a ``second_purchase`` column replaces ``transactions``.
    cox_rows : pandas.DataFrame, optional
        One row per customer for the Cox model (the model sample's customers, or every
        customer), with the columns of ``lt`` and the covariates; needed with
        ``weights`` (without it the Cox model uses the rows of counts with their weights
        expanded). With ``cox_sample``, the sentence names its size.

    Returns
    -------
    RetentionResult
    """
    common = {
        "duration": duration,
        "event": event,
        "entry": entry,
        "alpha": alpha,
        "weights": weights,
    }
    horizons = [float(h) for h in horizons]
    if as_of is None and "end_date" in lt.columns and len(lt):
        as_of = pd.to_datetime(lt["end_date"]).max()
    one_time = None
    # Inactivity churn only: with contracts a customer billed once a year is not a
    # "one-time buyer" before the year is out, and the churn date says who left.
    if (
        definition == "inactivity"
        and {"first_purchase", "last_purchase"} <= set(lt.columns)
        and lt["first_purchase"].notna().any()
    ):
        one_time = one_time_buyers(
            lt,
            as_of=as_of,
            inactivity_days=inactivity_days,
            transactions=(
                None if weights else transactions(2) if callable(transactions) else transactions
            ),
            horizons=horizons[:3] or (3.0, 6.0, 12.0),
            alpha=alpha,
            weights=weights,
        )
    slim_cols = (
        [duration, event, entry, "start_date", "first_purchase", "last_purchase", group, cause]
        + list(covariates or [])
        + list(strata or [])
    )
    if weights:
        if cox_rows is None:  # one row per customer for the Cox model
            cox_rows = lt.loc[lt.index.repeat(lt[weights].to_numpy(np.int64))]
        cox_rows, _ = _slim(cox_rows, slim_cols, None)
        cox_sample_sizes = cox_sample is not None
        lt, cox_sample = _slim(lt, [*slim_cols, weights], None)
    else:
        cox_sample_sizes = False
        lt, cox_sample = _slim(lt, slim_cols, cox_sample)
    pop, population = _population(lt, definition, event, entry)
    n_too_recent = 0
    if definition == "inactivity":
        before = _count(pop, weights)
        pop = _censor_when_observable(pop, as_of, inactivity_days, duration, event, entry)
        n_too_recent = before - _count(pop, weights)
    lt_g, gcol, group_note, small, n_unshown = _prepare_group(pop, group, min_group_size, weights)
    follow = float(pop[duration].max()) if len(pop) and pop[duration].notna().any() else 0.0
    plot_max = float(min(max_months, np.ceil(follow))) if follow > 0 else float(max_months)
    ticks = list(_ticks(plot_max))
    core = attempt(S_CURVES, _curves, pop, lt_g, gcol, horizons, ticks, common)
    if is_skipped(core):
        km_all = at_all = med = sa = core
        km_g = at_g = None
    else:
        km_all, at_all, km_g, at_g, med, sa = core
    everyone_med = everyone_sa = None
    if population != "customers" and len(lt):
        every = lt
        if definition == "inactivity":  # same follow-up rule as the population's figures
            every = _censor_when_observable(lt, as_of, inactivity_days, duration, event, entry)
        everyone_med = attempt(S_CURVES, lambda: _with_all(median_survival(every, **common), None))
        everyone_sa = attempt(
            S_CURVES, lambda: _with_all(survival_at(every, times=horizons, **common), None)
        )
    rm_all = attempt(S_RMST, _rmst, pop, rmst_horizon, None, common)
    rm = attempt(S_RMST, _rmst, lt_g, rmst_horizon, gcol, common) if gcol else None
    lr = None
    if gcol:
        if not int(lt_g[event].sum()):
            lr = Skipped(
                S_LOGRANK,
                "No customer in the compared groups left during the observed period, so their "
                "retention cannot be compared",
                "It needs churn events in the groups.",
            )
        else:
            lr = attempt(
                S_LOGRANK,
                logrank,
                lt_g,
                group=gcol,
                duration=duration,
                event=event,
                entry=entry,
                weights=weights,
            )
    elif group and group_note == "single":
        lr = Skipped(
            S_LOGRANK,
            "Only one group is large enough to show, so there is nothing to compare",
            f"Groups of at least {min_group_size} customers each would allow it.",
        )
    # Cox: pool small levels, leave out columns that are missing, empty or constant
    cox_pop = pop
    if weights:  # the per-customer rows, through the same population and follow-up rules
        cox_pop, _ = _population(cox_rows, definition, event, entry)
        if definition == "inactivity":
            cox_pop = _censor_when_observable(
                cox_pop, as_of, inactivity_days, duration, event, entry
            )
    elif cox_sample is not None:
        cox_pop = pop.loc[pop[_IN_SAMPLE].to_numpy()]
    lt_c, covs, missing_covs, unusable, dropped = _cox_frame(cox_pop, covariates, min_group_size)
    strata = [c for c in (strata or []) if c in pop.columns and pop[c].notna().any()]
    refit, moved = None, []
    if not covs:
        fit = Skipped(
            S_COX,
            "The data has no customer attribute that varies between customers (such as a "
            "segment, region or channel), so there is nothing to compare who leaves sooner",
            "Customer attributes in the customers table would allow it.",
        )
    else:
        fit = attempt(S_COX, _fit_cox, lt_c, covs, strata, reference, common, ph_alpha)
    if isinstance(fit, CoxResult):
        out = attempt(S_COX, cox_stratified_refit, lt_c, fit, alpha=ph_alpha)
        if not is_skipped(out):
            refit, moved = out
            if not moved:
                refit = None
    if isinstance(fit, CoxResult):
        ph = attempt(S_PH, _ph_table, fit)
        conc = attempt(S_CONCORDANCE, _concordance, refit if refit is not None else fit)
    else:  # the Cox section's own Skipped says why; no separate PH or concordance section
        ph = conc = None
    if len(pop) and pop[duration].notna().any():
        hz_max = min(max_months, float(pop[duration].max()))
    else:
        hz_max = max_months
    haz = attempt(
        S_HAZARD,
        hazard_over_tenure,
        pop,
        duration=duration,
        event=event,
        entry=entry,
        alpha=alpha,
        max_time=hz_max if hz_max > 0 else max_months,
        weights=weights,
    )
    cif = None
    cause_missing = False
    if cause and cause in pop.columns and pop.loc[pop[event] == 1, cause].notna().any():
        cif = attempt(S_CIF, cumulative_incidence, pop, cause=cause, **common)
    elif cause:
        cause_missing = True
    has_event = event in lt.columns
    n_active = _count(lt, weights, lt[event] == 0) if has_event else 0
    return RetentionResult(
        n=_count(lt, weights),
        n_events=_count(lt, weights, lt[event] == 1) if has_event else 0,
        n_left_truncated=_count(lt, weights, lt[entry] > 0) if entry in lt.columns else 0,
        group=gcol,
        suppressed_groups=small,
        horizons=horizons,
        km_all=km_all,
        km_group=km_g,
        at_risk_all=at_all,
        at_risk_group=at_g,
        median=med,
        survival_at=sa,
        rmst=rm,
        logrank=lr,
        cox=fit,
        cox_refit=refit,
        moved_to_strata=moved,
        hazard=haz,
        cif=cif,
        rmst_horizon=float(rmst_horizon),
        ph_alpha=ph_alpha,
        min_group_size=min_group_size,
        requested_group=group,
        group_missing=group_note == "missing",
        skipped_covariates=missing_covs,
        cox_dropped_levels=dropped,
        cause_missing=cause_missing,
        definition=definition,
        inactivity_days=int(inactivity_days),
        population=population,
        n_population=_count(pop, weights),
        n_population_too_recent=int(n_too_recent),
        n_population_events=_count(pop, weights, pop[event] == 1) if event in pop.columns else 0,
        n_active=n_active,
        as_of=_as_date(as_of),
        one_time=one_time,
        everyone_median=everyone_med,
        everyone_survival_at=everyone_sa,
        rmst_all=rm_all,
        ph_table=ph,
        concordance=conc,
        group_note=group_note,
        n_group_unshown=n_unshown,
        cox_unusable=unusable,
        covariates_used=covs,
        max_time=plot_max,
        cox_sample=(
            (int(len(cox_pop)), _count(pop, weights))
            if (cox_pop is not pop and (not weights or cox_sample_sizes))
            else None
        ),
    )


def _ticks(max_months: float, n_max: int = 8):
    """Return at-risk tenures on a step of 1, 2, 3, 6 or 12 months (at most ``n_max`` + 1 ticks)."""
    for step in (1, 2, 3, 6, 12, 24):
        if max_months / step <= n_max:
            break
    return np.arange(0, max_months + 1e-9, step, dtype=float)


def _as_date(x):
    if x is None:
        return None
    try:
        ts = pd.Timestamp(x)
    except (TypeError, ValueError):
        return None
    return None if pd.isna(ts) else ts.date() if isinstance(ts, pd.Timestamp) else dt.date(x)
