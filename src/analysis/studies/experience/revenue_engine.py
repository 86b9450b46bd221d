"""The revenue link computed on the engine: no customer-period row comes to Python.

The same regressions as :mod:`analysis.studies.experience.revenue` (which works on a
pandas panel and is their second implementation in the tests), on an Ibis panel
(:func:`analysis.data.derive.panel`): the earlier periods' experience is joined on the
engine, and each fixed-effects regression is solved from engine sums
(:func:`analysis.studies.fixed_effects_engine.two_way_fit`).

* :func:`engine_lag_fits` -- :func:`~analysis.studies.experience.revenue._lag_fits`;
* :func:`engine_dose_response` -- :func:`~analysis.studies.experience.revenue.dose_response`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import ibis
import ibis.expr.types as ir
import pandas as pd
from scipy import stats

from analysis.data.fe_engine import check_unique_keys, materialized, period_ordinal
from analysis.errors import AnalysisError
from analysis.stats.fixed_effects import FEResult
from analysis.studies.experience.metrics import clustered_mean_se
from analysis.studies.experience.revenue import dose_row
from analysis.studies.fixed_effects_engine import two_way_fit

__all__ = [
    "dose_on",
    "engine_dose_response",
    "engine_lag_fits",
    "engine_mean_revenue",
    "lag_fits_on",
    "outcome_rows",
    "outcome_table",
    "revenue_panel",
]


def revenue_panel(
    study, exposures: Sequence[str], outcome: str = "revenue", period: str = "month"
) -> ir.Table:
    """Return the study's customer-month panel on the engine, for the revenue link.

    :func:`analysis.data.derive.panel` by calendar month (whatever ``analysis.period``:
    the report states revenue per month, a year's worth of months, and lags in months)
    with the customer, period, ``churned``, the outcome and the exposures; with a model
    sample (:meth:`analysis.data.StudyData.model_sample`) its customers only.
    """
    import dataclasses

    from analysis.data import derive

    src, lt = study.source, study.lifetimes_expr()
    sample = study.model_sample()
    if sample is not None:
        # every customer-keyed table cut to the sample first, so the engine sums the
        # sampled customers' events only (a customer's panel rows depend on their own rows)
        ids = sample.table()
        src = dataclasses.replace(
            src,
            tables={
                k: t.semi_join(ids, "customer_id") if "customer_id" in t.columns else t
                for k, t in src.tables.items()
            },
        )
        lt = lt.semi_join(ids, "customer_id")
    pn = derive.panel(src, period=period, lifetimes_expr=lt)
    return pn.select("customer_id", "period", "churned", *dict.fromkeys([outcome, *exposures]))


def engine_mean_revenue(
    panel: ir.Table, *, outcome: str = "revenue", customer: str = "customer_id"
) -> tuple[float, float]:
    """Return mean revenue per customer-period at risk and its customer-clustered standard error.

    :func:`analysis.studies.experience.metrics.monthly_revenue` on the engine: every
    panel row with the outcome (currency per customer-period).
    """
    out = _clustered_means(panel.mutate(_all=0), outcome=outcome, customer=customer, by="_all")
    if not len(out):
        return float("nan"), float("nan")
    r = out.iloc[0]
    return float(r["mean"]), clustered_mean_se(
        float(r["spread"]), int(r["months"]), int(r["customers"])
    )


def _clustered_means(rows: ir.Table, *, outcome: str, customer: str, by: str) -> pd.DataFrame:
    """Per group ``by``: rows with the outcome (``months``), ``customers``, the ``mean``
    and ``spread`` (the sum over customers of their summed deviations from the group's
    mean, squared), as :func:`analysis.studies.experience.metrics.clustered_mean_se` takes
    them. Two passes on the engine, so no sums of squares cancel."""
    y = rows[outcome]
    ok = rows.filter(y.notnull() & ~y.cast("float64").isnan())
    per_c = ok.group_by([by, customer]).aggregate(
        _n=ok.count(), _s=ok[outcome].cast("float64").sum()
    )
    means = per_c.group_by(by).aggregate(_m=per_c._s.sum() / per_c._n.sum())
    pm = per_c.join(means, by)
    dev = pm._s - pm._n * pm._m  # a customer's sum of deviations from the group's mean
    return (
        pm.group_by(by)
        .aggregate(
            months=pm._n.sum(), customers=pm.count(), mean=pm._m.max(), spread=(dev * dev).sum()
        )
        .to_pandas()
        .sort_values(by)
    )


def outcome_rows(
    panel: ir.Table,
    *,
    exposures: Sequence[str],
    outcome: str = "revenue",
    customer: str = "customer_id",
    period: str = "period",
    freq: str = "month",
) -> ir.Table:
    """Return the months in which a customer was a customer throughout, numbered.

    ``_c`` (customer), ``_o`` (period number, :func:`analysis.data.fe_engine.period_ordinal`),
    the outcome and the exposures, from the panel's rows with ``churned == 0``.
    """
    full = panel.filter(panel.churned == 0)
    return full.select(
        _c=full[customer],
        _o=period_ordinal(full[period], freq),
        **{c: full[c] for c in dict.fromkeys([outcome, *exposures])},
    )


def _lagged(rows: ir.Table, exposures: Sequence[str], lag: int, outcome: str) -> ir.Table:
    """Each row with the exposures of the same customer ``lag`` periods earlier (inner join)."""
    back = rows.select(_c2=rows._c, _o2=rows._o + lag, **{f"_l_{x}": rows[x] for x in exposures})
    j = rows.join(back, (rows._c == back._c2) & (rows._o == back._o2))
    return j.select("_c", "_o", outcome, *(f"_l_{x}" for x in exposures))


def engine_lag_fits(
    con,
    panel: ir.Table,
    *,
    exposures: Sequence[str],
    lags: Sequence[int],
    outcome: str = "revenue",
    customer: str = "customer_id",
    period: str = "period",
    freq: str = "month",
    k_fixef: str = "nonnested",
    alpha: float = 0.05,
) -> dict[tuple[str, int], FEResult]:
    """Fit the revenue link of each exposure and lag alone, on the engine.

    Parameters
    ----------
    con : ibis backend
        The engine holding ``panel``.
    panel : ibis.Table
        One row per customer and period at risk (:func:`analysis.data.derive.panel`):
        the customer, the period's start date, ``churned``, the outcome (currency
        per customer-period) and the exposures.
    exposures, lags
        As :func:`analysis.studies.experience.revenue.lag_profile`.
    freq : {"month", "quarter", "week", "day"}
        The panel's period.

    Returns
    -------
    dict
        ``(exposure, lag) -> FEResult``, term ``<exposure>_lag<L>``; pairs that
        cannot be estimated are left out. Equal to
        :func:`analysis.studies.experience.revenue._lag_fits` on the same rows.

    Raises
    ------
    AnalysisError
        A lag below 0, or none.
    DataError
        More than one row per customer and period.
    """
    with outcome_table(
        con,
        panel,
        exposures=exposures,
        outcome=outcome,
        customer=customer,
        period=period,
        freq=freq,
    ) as m:
        return lag_fits_on(
            con,
            m,
            exposures=exposures,
            lags=lags,
            outcome=outcome,
            fixed_effects=(customer, period),
            k_fixef=k_fixef,
            alpha=alpha,
        )


@contextmanager
def outcome_table(
    con,
    panel: ir.Table,
    *,
    exposures: Sequence[str],
    outcome: str = "revenue",
    customer: str = "customer_id",
    period: str = "period",
    freq: str = "month",
) -> Iterator[ir.Table]:
    """:func:`outcome_rows` computed once into a temporary table of the engine (dropped
    afterwards), checked for one row per customer and period.

    Raises
    ------
    DataError
        More than one row per customer and period.
    """
    rows = outcome_rows(
        panel, exposures=exposures, outcome=outcome, customer=customer, period=period, freq=freq
    )
    with materialized(con, rows) as m:
        check_unique_keys(m, customer="_c", period="_o")
        yield m


def lag_fits_on(
    con,
    rows: ir.Table,
    *,
    exposures: Sequence[str],
    lags: Sequence[int],
    outcome: str = "revenue",
    fixed_effects: Sequence[str] = ("customer_id", "period"),
    k_fixef: str = "nonnested",
    alpha: float = 0.05,
) -> dict[tuple[str, int], FEResult]:
    """:func:`engine_lag_fits` on the rows of :func:`outcome_table`."""
    lags = [int(v) for v in lags]
    if not lags or any(v < 0 for v in lags):
        raise AnalysisError(f"lags must be non-negative integers, got {lags}")
    fits: dict[tuple[str, int], FEResult] = {}
    for lag in dict.fromkeys(lags):
        # not materialized: each fit copies only its own usable rows (engine memory)
        j = _lagged(rows, exposures, lag, outcome)
        for x in exposures:
            fits.update(_one_fit(con, j, x, lag, outcome, tuple(fixed_effects), k_fixef, alpha))
    return fits


def _one_fit(con, j, x, lag, outcome, fixed_effects, k_fixef, alpha) -> dict:
    """``{(x, lag): FEResult}``, or nothing when this pair cannot be estimated."""
    try:
        return {
            (x, lag): two_way_fit(
                con,
                j,
                outcome=outcome,
                regressors=[f"_l_{x}"],
                customer="_c",
                period="_o",
                names=[f"{x}_lag{lag}" if lag else x],
                fixed_effects=fixed_effects,
                k_fixef=k_fixef,
                alpha=alpha,
            )
        }
    except AnalysisError:
        return {}


def _round_half_even(x: ir.FloatingValue) -> ir.IntegerValue:
    """Round to the nearest integer, halves to even (numpy's ``round``; SQL rounds halves up)."""
    f = x.floor().cast("int64")
    frac = x - f
    return f + ibis.cases((frac > 0.5, 1), (frac == 0.5, f % 2), else_=0).cast("int64")


def engine_dose_response(
    con,
    panel: ir.Table,
    *,
    exposure: str = "csat_mean",
    outcome: str = "revenue",
    reference: int = 3,
    customer: str = "customer_id",
    period: str = "period",
    freq: str = "month",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Tabulate next-period revenue by this period's rounded CSAT level, on the engine.

    The table of :func:`analysis.studies.experience.revenue.dose_response` (raw means
    with customer-clustered intervals, and the fixed-effects contrast to
    ``reference``), from engine sums.

    Returns
    -------
    pandas.DataFrame
        One row per level: level, customer_months, customers, next_revenue_mean,
        ci_lower, ci_upper (currency per customer-month), fe_difference,
        fe_ci_lower, fe_ci_upper (currency, vs ``reference``).
    """
    with outcome_table(
        con,
        panel,
        exposures=[exposure],
        outcome=outcome,
        customer=customer,
        period=period,
        freq=freq,
    ) as m:
        return dose_on(
            con,
            m,
            exposure=exposure,
            outcome=outcome,
            reference=reference,
            fixed_effects=(customer, period),
            alpha=alpha,
        )


def dose_on(
    con,
    rows: ir.Table,
    *,
    exposure: str = "csat_mean",
    outcome: str = "revenue",
    reference: int = 3,
    fixed_effects: Sequence[str] = ("customer_id", "period"),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """:func:`engine_dose_response` on the rows of :func:`outcome_table`."""
    z = stats.norm.ppf(1 - alpha / 2)
    j = _lagged(rows, [exposure], 1, outcome)
    lx = j[f"_l_{exposure}"]
    has = lx.notnull() & ~lx.isnan()
    j = j.filter(has).mutate(_lvl=_round_half_even(lx))
    lv = _clustered_means(j, outcome=outcome, customer="_c", by="_lvl").rename(
        columns={"_lvl": "level"}
    )
    levels = [int(v) for v in lv["level"]]
    fe = None
    dummies = {v: f"_lvl_{v}" for v in levels if v != reference}
    if dummies and reference in levels:
        d = j.mutate(**{name: ibis.ifelse(j._lvl == v, 1.0, 0.0) for v, name in dummies.items()})
        try:
            fe = two_way_fit(
                con,
                d,
                outcome=outcome,
                regressors=list(dummies.values()),
                customer="_c",
                period="_o",
                fixed_effects=tuple(fixed_effects),
                alpha=alpha,
            )
        except AnalysisError:
            fe = None
    out = [
        dose_row(
            int(r.level),
            int(r.months),
            int(r.customers),
            float(r.mean),
            clustered_mean_se(float(r.spread), int(r.months), int(r.customers)),
            z=z,
            reference=reference,
            fe=fe,
        )
        for r in lv.itertuples(index=False)
    ]
    return pd.DataFrame(out) if out else pd.DataFrame()
