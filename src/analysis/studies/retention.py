"""Retention (survival) study: how long customers stay, and what is associated with leaving.

:func:`retention_study` computes every number the retention report shows from
the lifetimes table (one row per customer, see :func:`analysis.derive.lifetimes`)
by calling the estimators of :mod:`analysis.stats`. It returns numbers and the
structured facts the report's sentences need (groups left out, covariates
skipped, why a step could not run); the sentences themselves are written by
:mod:`analysis.report.retention`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.errors import DataError, ParamsError
from analysis.stats.competing_risks import cif_at, cumulative_incidence
from analysis.stats.cox import CoxResult, _is_categorical, cox, cox_stratified_refit
from analysis.stats.hazard import hazard_over_tenure
from analysis.stats.survival import (
    LogrankResult,
    at_risk_table,
    kaplan_meier,
    logrank,
    median_survival,
    rmst,
    survival_at,
)

__all__ = [
    "RetentionResult",
    "cif_at",  # re-exported for the notebook: read the cumulative incidence at tenures
    "cohort_matrix",
    "cohort_survival",
    "drop_small_groups",
    "retention_study",
]


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
) -> pd.DataFrame:
    """Pivot the cohort table (see :func:`analysis.derive.cohorts`) to cohort x periods since.

    Cohorts smaller than ``min_group_size`` customers are dropped.

    Returns
    -------
    pandas.DataFrame
        Index: cohort (period start); columns: periods since acquisition; values: ``value``.
    """
    c = cohorts[cohorts.cohort_size >= min_group_size]
    if max_periods is not None:
        c = c[c.periods_since <= max_periods]
    return c.pivot_table(index="cohort", columns="periods_since", values=value, aggfunc="first")


# ----------------------------------------------------------------------------
# The study: every number the retention notebook shows, computed in one place
# ----------------------------------------------------------------------------


@dataclass
class RetentionResult:
    """Everything the retention report shows (see :func:`retention_study`).

    Numbers and tables only; :mod:`analysis.report.retention` writes the
    findings and notes from them. Fields after ``cif`` record the settings
    and what the study left out, so the notes can say so.

    Attributes
    ----------
    rmst_horizon, ph_alpha, min_group_size
        The settings the numbers were computed with.
    requested_group : str or None
        The ``group`` argument as given (``group`` is None when it is not in
        the data or no group is large enough).
    group_missing : bool
        The requested grouping column is not in the data.
    skipped_covariates : list of str
        Cox covariates not in the data.
    cox_dropped_levels : list of (str, list)
        Per categorical Cox covariate with small levels: the covariate and the
        levels left out of the model (fewer than ``min_group_size`` customers).
    cox_error : str or None
        First line of the error that stopped the Cox fit.
    cause_missing : bool
        A cause column was asked for but no churn reasons are recorded.
    """

    n: int
    n_events: int
    n_left_truncated: int
    group: str | None
    suppressed_groups: list
    horizons: list
    km_all: pd.DataFrame
    km_group: pd.DataFrame | None
    at_risk_all: pd.DataFrame
    at_risk_group: pd.DataFrame | None
    median: pd.DataFrame
    survival_at: pd.DataFrame
    rmst: pd.DataFrame
    logrank: LogrankResult | None
    cox: CoxResult | None
    cox_refit: CoxResult | None
    moved_to_strata: list
    hazard: pd.DataFrame
    cif: pd.DataFrame | None
    rmst_horizon: float
    ph_alpha: float
    min_group_size: int
    requested_group: str | None
    group_missing: bool
    skipped_covariates: list
    cox_dropped_levels: list
    cox_error: str | None
    cause_missing: bool


def _median_rows(lt, group, lt_groups=None, **kw):
    # the "all customers" row counts every customer, including those of groups too small
    # to show: suppressing a group hides the group, never its customers
    overall = median_survival(lt, **kw).assign(**{group or "group": "all customers"})
    if not group:
        return overall
    by = median_survival(lt if lt_groups is None else lt_groups, group=group, **kw)
    return pd.concat([overall, by], ignore_index=True)[[group] + list(overall.columns[:-1])]


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
) -> RetentionResult:
    """Compute the retention (survival) study from the lifetimes table.

    Groups (of ``group`` and of categorical Cox covariates) with fewer than
    ``min_group_size`` customers are left out and recorded in the result
    (``suppressed_groups``, ``cox_dropped_levels``). Steps that cannot be
    computed on the data (e.g. a Cox model without events) leave their field
    None and record why (``cox_error``, ``cause_missing``).

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
        Cox model terms and stratification columns (missing columns are skipped).

    Returns
    -------
    RetentionResult
    """
    requested_group = group
    group_missing = False
    cox_dropped: list = []
    cox_error = None
    cause_missing = False
    common = {"duration": duration, "event": event, "entry": entry, "alpha": alpha}
    if group and group not in lt.columns:
        group_missing = True
        group = None
    suppressed: list = []
    lt_g = lt
    if group:
        lt_g, suppressed = drop_small_groups(lt, group=group, min_group_size=min_group_size)
        if lt_g[group].nunique() < 1:
            group = None
    n_lt = int((lt[entry] > 0).sum())
    km_all = kaplan_meier(lt, **common)
    ticks = [t for t in np.arange(0, max_months + 0.1, 6)]
    at_all = at_risk_table(lt, duration=duration, entry=entry, times=ticks)
    km_g = kaplan_meier(lt_g, group=group, **common) if group else None
    at_g = (
        at_risk_table(lt_g, duration=duration, entry=entry, group=group, times=ticks)
        if group
        else None
    )
    med = _median_rows(lt, group, lt_groups=lt_g if group else None, **common)
    sa = survival_at(lt, times=horizons, **common).assign(**{group or "group": "all customers"})
    if group:
        sa = pd.concat(
            [sa, survival_at(lt_g, times=horizons, group=group, **common)], ignore_index=True
        )
    rm = rmst(lt_g if group else lt, horizon=rmst_horizon, group=group, **common)
    lr = None
    if group and lt_g[group].nunique() >= 2 and lt_g[event].sum() > 0:
        lr = logrank(lt_g, group=group, duration=duration, event=event, entry=entry)
    # Cox: drop small levels of categorical covariates, skip missing columns
    covs = [c for c in covariates if c in lt.columns]
    strata = [c for c in (strata or []) if c in lt.columns]
    skipped = [c for c in covariates if c not in lt.columns]
    lt_c = lt
    for c in covs:
        if _is_categorical(lt_c[c]):
            lt_c, small = drop_small_groups(lt_c, group=c, min_group_size=min_group_size)
            if small:
                cox_dropped.append((c, small))
    fit = refit = None
    moved: list = []
    if covs:
        try:
            ref = {
                k: v
                for k, v in (reference or {}).items()
                if k in covs and v in set(lt_c[k].dropna())
            }
            fit = cox(
                lt_c,
                duration=duration,
                event=event,
                entry=entry,
                covariates=covs,
                strata=strata or None,
                reference=ref,
                alpha=alpha,
            )
            refit, moved = cox_stratified_refit(lt_c, fit, alpha=ph_alpha)
            if not moved:
                refit = None
        except (DataError, ParamsError, np.linalg.LinAlgError) as err:
            cox_error = str(err).splitlines()[0]
            fit = None
    haz = hazard_over_tenure(
        lt,
        duration=duration,
        event=event,
        entry=entry,
        alpha=alpha,
        max_time=min(max_months, float(lt[duration].max())),
    )
    cif = None
    if cause and cause in lt.columns and lt.loc[lt[event] == 1, cause].notna().any():
        cif = cumulative_incidence(lt, cause=cause, **common)
    elif cause:
        cause_missing = True
    return RetentionResult(
        n=int(len(lt)),
        n_events=int(lt[event].sum()),
        n_left_truncated=n_lt,
        group=group,
        suppressed_groups=suppressed,
        horizons=list(horizons),
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
        rmst_horizon=rmst_horizon,
        ph_alpha=ph_alpha,
        min_group_size=min_group_size,
        requested_group=requested_group,
        group_missing=group_missing,
        skipped_covariates=skipped,
        cox_dropped_levels=cox_dropped,
        cox_error=cox_error,
        cause_missing=cause_missing,
    )
