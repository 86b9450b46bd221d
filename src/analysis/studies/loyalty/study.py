"""The loyalty-programme study: landmark analyses, sequential trials and the event study.

:func:`programme_report` runs everything and returns a :class:`ProgrammeReport` holding
numbers (frames, effects, survival contrasts, hazard ratios, event-study estimates);
the sentences are written by :mod:`analysis.report.loyalty`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from analysis.errors import DataError
from analysis.stats.cox import WeightedCoxResult as CoxResult
from analysis.stats.cox import weighted_cox
from analysis.stats.effects import Effect, balance, covariate_matrix, estimate_effect
from analysis.stats.evalue import EValue, e_value
from analysis.stats.event_study import EventStudy, event_study
from analysis.stats.weighted_survival import SurvivalContrast
from analysis.studies.loyalty.descriptive import (
    naive_churn_comparison,
    points_summary,
    post_leaving,
    uptake,
)
from analysis.studies.loyalty.effects import effect_table, heterogeneity, weighted_survival
from analysis.studies.loyalty.frames import (
    DEFAULT_COVARIATES,
    event_study_panel,
    landmark_frame,
    trial_covariates,
    trial_frame,
)

__all__ = ["LandmarkResult", "ProgrammeReport", "SequentialResult", "programme_report"]


@dataclass
class LandmarkResult:
    """Everything estimated at one landmark (see :func:`programme_report`)."""

    landmark: int
    frame: pd.DataFrame = field(repr=False)
    n: int
    n_members: int
    propensity: pd.Series = field(repr=False)
    balance: pd.DataFrame
    effects: pd.DataFrame
    survival: SurvivalContrast | None
    cox: CoxResult | None
    cox_unweighted: CoxResult | None
    churn_effect: Effect | None
    e_value: EValue | None
    heterogeneity: pd.DataFrame | None
    n_trimmed: int
    weight_diagnostics: dict = field(default_factory=dict)


@dataclass
class SequentialResult:
    """The pooled sequential-trial analysis (see :func:`trial_frame`): the headline effects."""

    frame: pd.DataFrame = field(repr=False)
    n_rows: int
    n_enrolments: int
    n_customers: int
    n_trials: int
    sampled_customers: int | None
    propensity: pd.Series = field(repr=False)
    balance: pd.DataFrame
    effects: pd.DataFrame
    churn_effect: Effect | None
    e_value: EValue | None
    heterogeneity: pd.DataFrame | None
    weight_diagnostics: dict = field(default_factory=dict)


@dataclass
class ProgrammeReport:
    """Results of the loyalty-programme study, ready for a notebook to display.

    ``available`` is False when the data has no loyalty table; ``caveats`` then says
    why and every other field is empty. ``caveats`` records, as data, each part that
    could not be estimated and each adjustment made (``{"kind": ..., numbers...}``);
    :func:`analysis.report.loyalty.programme_notes` writes them as sentences, and
    :func:`analysis.report.loyalty.programme_findings` writes the findings. ``message``
    and ``notes`` stay empty here: the report layer fills them for callers of the
    compatibility function ``analysis.loyalty.programme_report``.
    """

    available: bool
    message: str = ""
    currency: str = "EUR"
    horizon_months: int = 6
    uptake: pd.DataFrame | None = None
    landmarks: dict = field(default_factory=dict)
    sequential: SequentialResult | None = None
    event_study: EventStudy | None = None
    points: pd.DataFrame | None = None
    post_leaving: pd.DataFrame | None = None
    naive_churn: pd.DataFrame | None = None
    notes: list = field(default_factory=list)
    covariates: list = field(default_factory=list)
    caveats: list = field(default_factory=list)


def programme_report(
    tables: dict,
    *,
    window_start,
    as_of,
    landmarks: Sequence[int] = (6, 12),
    lookback_months: int = 3,
    horizon_months: int = 6,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    trim: float | None = None,
    propensity_model: str = "logit",
    event_window: Sequence[int] = (-6, 6),
    heterogeneity_by: str | None = "value_tier",
    min_group_size: int = 10,
    currency: str = "EUR",
    n_boot: int = 0,
    seed: int = 0,
    sequential: bool = True,
    trial_max_customers: int | None = 50_000,
    ate_trim: float | str | None = "crump",
) -> ProgrammeReport:
    """Run the whole loyalty-programme study.

    Headline effects on retention and spend come from pooled sequential trials
    (:func:`trial_frame`: each month, customers who enrol vs eligible customers who do
    not, adjusted for the months before; standard errors clustered by customer). The
    landmark analyses give the survival curves, hazard ratios, and per-landmark overlap
    and balance diagnostics.

    Parameters
    ----------
    tables : dict
        Contract tables as pandas frames: ``customers``, ``transactions`` and, if
        present, ``loyalty`` and ``experience``.
    window_start, as_of : date-like
        Data window.
    landmarks : sequence of int
        Landmark tenures in months (each analysed separately; not pooled).
    lookback_months, horizon_months : int
        Covariate and outcome windows in calendar months.
    covariates : sequence of str
        Confounders measured before the landmark (columns of :func:`landmark_frame`);
        those absent or constant in the data are dropped with a note.
    trim : float, optional
        Propensity trimming bound for the landmark analyses and the effects on
        enrollees (ATT) of the sequential trials (reported).
    propensity_model : {"logit", "gbm"}
    event_window : (int, int)
        Event times for the enrolment event study.
    heterogeneity_by : str, optional
        Column for subgroup effects on spend (small groups suppressed).
    min_group_size : int
        Suppression threshold for subgroups.
    currency : str
        Label for money.
    n_boot : int
        0 (default): analytic intervals for the survival curves and the event
        study; a positive number: bootstrap replicates instead (slow on large
        data).
    seed : int
        Seed for the bootstraps, the jackknife groups and the customer sample.
    sequential : bool
        Run the pooled sequential-trial analysis (the headline).
    trial_max_customers : int, optional
        Sequential trials on a random sample of at most this many customers (None:
        all); keeps very large data fast, at some loss of precision.
    ate_trim : float, "crump" or None
        Trimming of the sequential-trial ATE (the effect had every eligible
        customer-month been an enrolment). Most eligible customer-months have a
        tiny chance of enrolling, so untrimmed the ATE rests on a few enrolments
        with weights in the hundreds or thousands and its interval is too narrow
        (89-92% coverage in the simulation study). ``"crump"`` (default): the
        variance-minimising bound of Crump et al. (2009); the ATE is then the
        effect among customer-months with a real chance of enrolling, and the
        report says which share that is.

    Returns
    -------
    ProgrammeReport
        Numbers only; :func:`analysis.report.loyalty.programme_findings` writes the
        findings from it.

    Notes
    -----
    Spend effects come from the sequential trials only. At a landmark, a member's
    covariate months (the months just before the landmark) are already months in
    the programme, so they are affected by the treatment and cannot stand in for
    the customer's spending level before joining; the landmark spend contrast is
    biased upwards (by about a quarter of the effect in the simulation study) and
    is not estimated. The landmarks give retention, survival curves and hazard
    ratios.
    """
    lo_t = tables.get("loyalty")
    if lo_t is None or len(lo_t) == 0:
        return ProgrammeReport(
            available=False,
            currency=currency,
            horizon_months=horizon_months,
            caveats=[{"kind": "no_loyalty_table"}],
        )
    cust, tx, ex = tables["customers"], tables["transactions"], tables.get("experience")
    rep = ProgrammeReport(available=True, currency=currency, horizon_months=horizon_months)
    rep.uptake = uptake(cust, lo_t, window_start=window_start, as_of=as_of)
    rep.points = points_summary(cust, lo_t, as_of=as_of, min_group_size=min_group_size)
    rep.post_leaving = post_leaving(cust, lo_t, window_start=window_start, as_of=as_of)
    rep.naive_churn = naive_churn_comparison(cust, lo_t, window_start=window_start, as_of=as_of)

    for L in landmarks:
        f = landmark_frame(
            cust,
            tx,
            lo_t,
            ex,
            landmark_months=int(L),
            window_start=window_start,
            as_of=as_of,
            lookback_months=int(lookback_months),
            horizon_months=int(horizon_months),
        )
        n1 = int(f["member"].sum()) if len(f) else 0
        if n1 < min_group_size or len(f) - n1 < min_group_size:
            rep.caveats.append(
                {"kind": "landmark_too_few", "landmark": L, "customers": len(f), "members": n1}
            )
            continue
        covs = [c for c in covariates if c in f.columns and f[c].nunique() > 1]
        dropped = [c for c in covariates if c not in covs]
        if dropped and not rep.covariates:
            rep.caveats.append({"kind": "covariates_left_out", "covariates": list(dropped)})
        rep.covariates = covs
        ipw = estimate_effect(
            f,
            treatment="member",
            outcome="retained",
            covariates=covs,
            method="ipw",
            propensity_model=propensity_model,
            trim=trim,
            seed=seed,
        )
        bal = balance(f, treatment="member", covariates=covs, weights=ipw.weights)
        eff = effect_table(
            f,
            outcomes=("retained",),
            covariates=covs,
            propensity_model=propensity_model,
            trim=trim,
            seed=seed,
        )
        churn = estimate_effect(
            f,
            treatment="member",
            outcome="churned",
            covariates=covs,
            method="aipw",
            estimand="ATT",
            propensity_model=propensity_model,
            trim=trim,
            seed=seed,
        )
        ev = e_value(churn.ratio, churn.ratio_ci_lower, churn.ratio_ci_upper)
        surv = weighted_survival(
            f,
            covariates=covs,
            horizon=float(horizon_months),
            trim=trim,
            se="bootstrap" if n_boot > 0 else "analytic",
            n_boot=n_boot,
            seed=seed,
        )
        cox = weighted_cox(f, weights=ipw.weights, horizon=float(horizon_months))
        cox_u = weighted_cox(f, horizon=float(horizon_months))
        rep.landmarks[int(L)] = LandmarkResult(
            landmark=int(L),
            frame=f,
            n=len(f),
            n_members=n1,
            propensity=ipw.propensity,
            balance=bal,
            effects=eff,
            survival=surv,
            cox=cox,
            cox_unweighted=cox_u,
            churn_effect=churn,
            e_value=ev,
            heterogeneity=None,
            n_trimmed=ipw.n_trimmed,
            weight_diagnostics=dict(ipw.diagnostics),
        )

    if sequential:
        rep.sequential = _sequential_result(
            rep,
            cust,
            tx,
            lo_t,
            ex,
            window_start=window_start,
            as_of=as_of,
            lookback_months=int(lookback_months),
            horizon_months=int(horizon_months),
            covariates=covariates,
            trim=trim,
            propensity_model=propensity_model,
            heterogeneity_by=heterogeneity_by,
            min_group_size=min_group_size,
            max_customers=trial_max_customers,
            seed=seed,
            ate_trim=ate_trim,
        )

    panel = event_study_panel(cust, tx, lo_t, window_start=window_start, as_of=as_of)
    if panel["cohort"].notna().any():
        rep.event_study = event_study(
            panel,
            window=tuple(event_window),
            anticipation=int(lookback_months),
            se="bootstrap" if n_boot > 0 else "analytic",
            n_boot=n_boot,
            seed=seed,
        )
    return rep


def _sequential_result(
    rep: ProgrammeReport,
    cust,
    tx,
    lo_t,
    ex,
    *,
    window_start,
    as_of,
    lookback_months,
    horizon_months,
    covariates,
    trim,
    propensity_model,
    heterogeneity_by,
    min_group_size,
    max_customers,
    seed,
    ate_trim="crump",
) -> SequentialResult | None:
    """Run the pooled sequential-trial analysis; None (with a note) if it cannot run."""
    try:
        f = trial_frame(
            cust,
            tx,
            lo_t,
            ex,
            window_start=window_start,
            as_of=as_of,
            lookback_months=lookback_months,
            horizon_months=horizon_months,
            max_customers=max_customers,
            seed=seed,
        )
    except DataError as err:
        rep.caveats.append({"kind": "trials_not_run", "detail": str(err)})
        return None
    n1 = int(f["member"].sum())
    if n1 < min_group_size or len(f) - n1 < min_group_size:
        rep.caveats.append({"kind": "trials_too_few", "customer_months": len(f), "enrolments": n1})
        return None
    covs = [c for c in trial_covariates(covariates) if c in f.columns and f[c].nunique() > 1]
    # encode once into a slim numeric frame: every estimate below would otherwise re-encode the
    # categoricals of the wide frame (5-6x slower at 400,000 customer-months)
    design = covariate_matrix(f, covs)
    extra = [heterogeneity_by] if heterogeneity_by and heterogeneity_by in f.columns else []
    base = ["customer_id", "member", "retained", "churned", "spend", "purchases"]
    slim = pd.concat([f[base + extra], design], axis=1)
    xcols = list(design.columns)
    kw = dict(propensity_model=propensity_model, trim=trim, seed=seed, cluster="customer_id")
    ipw = estimate_effect(
        slim, treatment="member", outcome="retained", covariates=xcols, method="ipw", **kw
    )
    # balance for the headline (ATT): controls weighted to resemble the enrolments
    ipw_att = estimate_effect(
        slim,
        treatment="member",
        outcome="retained",
        covariates=xcols,
        method="ipw",
        estimand="ATT",
        **kw,
    )
    bal = balance(slim, treatment="member", covariates=xcols, weights=ipw_att.weights)
    outcomes = ("retained", "spend", "purchases")
    att = effect_table(
        slim,
        outcomes=outcomes,
        covariates=xcols,
        methods=("naive", "regression", "ipw", "aipw"),
        estimands=("ATT",),
        **kw,
    )
    ate_kw = dict(
        outcomes=outcomes,
        covariates=xcols,
        methods=("regression", "ipw", "aipw"),
        estimands=("ATE",),
    )
    try:
        ate = effect_table(slim, **ate_kw, **{**kw, "trim": ate_trim})
    except DataError as err:  # trimming emptied an arm (tiny data)
        rep.caveats.append(
            {
                "kind": "ate_trim_emptied_arm",
                "trim": ate_trim,
                "detail": str(err.args[0] if err.args else err),
            }
        )
        ate = effect_table(slim, **ate_kw, **{**kw, "trim": None})
    order = {"observational contrast": 0, "ATE": 1, "ATT": 2}
    eff = (
        pd.concat([att, ate], ignore_index=True)
        .assign(
            _o=lambda d: d["outcome"].map({o: i for i, o in enumerate(outcomes)}),
            _e=lambda d: d["estimand"].map(order),
            _m=lambda d: d["method"].map({"naive": 0, "regression": 1, "ipw": 2, "aipw": 3}),
        )
        .sort_values(["_o", "_e", "_m"], kind="stable")
        .drop(columns=["_o", "_e", "_m"])
        .reset_index(drop=True)
    )
    churn = estimate_effect(
        slim,
        treatment="member",
        outcome="churned",
        covariates=xcols,
        method="aipw",
        estimand="ATT",
        **kw,
    )
    ev = e_value(churn.ratio, churn.ratio_ci_lower, churn.ratio_ci_upper)
    het = None
    if extra:
        het = heterogeneity(
            slim,
            by=heterogeneity_by,
            outcome="spend",
            covariates=xcols,
            min_group_size=min_group_size,
            cluster="customer_id",
        )
    n_all = int(cust["customer_id"].nunique())
    return SequentialResult(
        frame=f,
        n_rows=len(f),
        n_enrolments=n1,
        n_customers=int(f["customer_id"].nunique()),
        n_trials=int(f["trial_month"].nunique()),
        sampled_customers=max_customers if max_customers and n_all > max_customers else None,
        propensity=ipw.propensity,
        balance=bal,
        effects=eff,
        churn_effect=churn,
        e_value=ev,
        heterogeneity=het,
        weight_diagnostics=dict(ipw.diagnostics),
    )
