"""The loyalty-programme study: landmark analyses, sequential trials and the event study.

:func:`programme_report` runs everything and returns a :class:`ProgrammeReport` holding
numbers (frames, effects, survival contrasts, hazard ratios, event-study estimates);
the sentences are written by :mod:`analysis.report.loyalty`.

Any data, no crash: each part that this data cannot support (an arm too small, no churn
within the horizon, a design whose factors never vary, too few enrollees for the event
study ...) is replaced by a :class:`analysis.studies.sections.Skipped` that says why in
one plain sentence, and every other part is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.data.fe_engine import materialized
from analysis.data.params_fit import NOT_ATTRIBUTES
from analysis.errors import DataError
from analysis.stats.cox import WeightedCoxResult as CoxResult
from analysis.stats.cox import weighted_cox
from analysis.stats.effects import Effect, balance, covariate_matrix, estimate_effect
from analysis.stats.evalue import EValue, e_value
from analysis.stats.event_study import EventStudy, event_study
from analysis.stats.weighted_survival import SurvivalContrast
from analysis.studies.loyalty.activity import monthly_purchases, monthly_service
from analysis.studies.loyalty.descriptive import (
    naive_churn_comparison,
    points_summary,
    post_leaving,
    uptake,
)
from analysis.studies.loyalty.effects import effect_table, heterogeneity, weighted_survival
from analysis.studies.loyalty.frames import (
    DEFAULT_COVARIATES,
    engine_purchases,
    engine_service,
    event_study_panel,
    in_id_order,
    landmark_frame,
    on_engine,
    trial_covariates,
    trial_frame,
)
from analysis.studies.sections import NotEstimable, Skipped, attempt, is_skipped, skipped_from

__all__ = [
    "SECTIONS",
    "LandmarkResult",
    "ProgrammeReport",
    "SequentialResult",
    "attribute_columns",
    "programme_report",
    "resolve_covariates",
]

#: Human names of the study's sections (used in :class:`Skipped` records and on the index).
SECTIONS = {
    "uptake": "Programme uptake",
    "points": "Points earned and redeemed",
    "post_leaving": "Churn after leaving the programme",
    "naive_churn": "Simple member vs non-member comparison",
    "sequential": "Effect of enrolling on retention and spend",
    "retention": "Effect of enrolling on retention",
    "ate": "Average effect over all eligible customer-months",
    "churn_effect": "Sensitivity to unmeasured differences",
    "heterogeneity": "Who benefits most",
    "event_study": "Spend around enrolment",
    "landmark": "Members and similar non-members at {L} months of tenure",
    "survival": "Retention curves at {L} months of tenure",
    "cox": "Churn hazard ratio at {L} months of tenure",
}

_NO_CHURN_REMEDY = (
    "It needs churn events: a longer history, or a period in which some customers leave."
)
# the behavioural covariates the frames compute (every other default is a customer attribute)
_FRAME_COVARIATES = tuple(c for c in DEFAULT_COVARIATES if c not in ("segment", "value_tier"))


@dataclass
class LandmarkResult:
    """Everything estimated at one landmark (see :func:`programme_report`).

    ``survival``, ``cox``, ``cox_unweighted``, ``churn_effect`` and ``e_value`` are
    :class:`analysis.studies.sections.Skipped` when this data cannot support them.
    ``covariates`` are the covariates the models actually adjust for.
    """

    landmark: int
    frame: pd.DataFrame = field(repr=False)
    n: int
    n_members: int
    propensity: pd.Series = field(repr=False)
    balance: pd.DataFrame
    effects: pd.DataFrame
    survival: SurvivalContrast | Skipped | None
    cox: CoxResult | Skipped | None
    cox_unweighted: CoxResult | Skipped | None
    churn_effect: Effect | Skipped | None
    e_value: EValue | Skipped | None
    heterogeneity: pd.DataFrame | None
    n_trimmed: int
    weight_diagnostics: dict = field(default_factory=dict)
    covariates: list = field(default_factory=list)


@dataclass
class SequentialResult:
    """The pooled sequential-trial analysis (see :func:`trial_frame`): the headline effects.

    ``effects`` has a row per outcome, estimator and estimand that could be estimated;
    ``skipped`` lists the parts that could not (e.g. retention when nobody churned).
    ``covariates`` are the covariates the models actually adjust for.
    """

    frame: pd.DataFrame = field(repr=False)
    n_rows: int
    n_enrolments: int
    n_customers: int
    n_trials: int
    sampled_customers: int | None
    propensity: pd.Series = field(repr=False)
    balance: pd.DataFrame
    effects: pd.DataFrame
    churn_effect: Effect | Skipped | None
    e_value: EValue | Skipped | None
    heterogeneity: pd.DataFrame | Skipped | None
    weight_diagnostics: dict = field(default_factory=dict)
    covariates: list = field(default_factory=list)
    heterogeneity_by: str | None = None
    skipped: list = field(default_factory=list)


@dataclass
class ProgrammeReport:
    """Results of the loyalty-programme study, ready for a notebook to display.

    ``available`` is False when the data has no loyalty table; ``caveats`` then says
    why and every other field is empty. Each section's field holds its result, or a
    :class:`analysis.studies.sections.Skipped` when this data cannot support it
    (``landmarks`` maps each landmark to its result or its ``Skipped``);
    :meth:`skipped_sections` lists them all. ``caveats`` records, as data, each
    adjustment made (``{"kind": ..., numbers...}``);
    :func:`analysis.report.loyalty.programme_notes` writes them as sentences, and
    :func:`analysis.report.loyalty.programme_findings` writes the findings. ``message``
    and ``notes`` stay empty here: the report layer fills them for callers of the
    compatibility function ``analysis.loyalty.programme_report``.

    ``covariates`` are the covariates the headline design actually adjusts for
    (the sequential trials, else the first estimated landmark);
    ``covariates_missing`` those asked for that the data does not have, and
    ``covariates_constant`` those that never vary in this data.
    """

    available: bool
    message: str = ""
    currency: str = "EUR"
    horizon_months: int = 6
    uptake: pd.DataFrame | Skipped | None = None
    landmarks: dict = field(default_factory=dict)
    sequential: SequentialResult | Skipped | None = None
    event_study: EventStudy | Skipped | None = None
    points: pd.DataFrame | Skipped | None = None
    post_leaving: pd.DataFrame | Skipped | None = None
    naive_churn: pd.DataFrame | Skipped | None = None
    notes: list = field(default_factory=list)
    covariates: list = field(default_factory=list)
    caveats: list = field(default_factory=list)
    covariates_missing: list = field(default_factory=list)
    covariates_constant: list = field(default_factory=list)
    lookback_months: int = 3
    #: (customers in the model sample, customers in the data) when the landmark
    #: analyses, sequential trials and event study used a sample; None: every customer
    model_sample: tuple[int, int] | None = None

    def estimated_landmarks(self) -> dict:
        """Return ``{landmark: LandmarkResult}`` for the landmarks that were estimated."""
        return {L: r for L, r in self.landmarks.items() if not is_skipped(r)}

    def skipped_sections(self) -> list[Skipped]:
        """Return every section (and part of a section) that could not be estimated."""
        out = [
            x
            for x in (self.uptake, self.points, self.post_leaving, self.naive_churn)
            if is_skipped(x)
        ]
        if is_skipped(self.sequential):
            out.append(self.sequential)
        elif self.sequential is not None:
            out += list(self.sequential.skipped)
            out += [
                x
                for x in (self.sequential.churn_effect, self.sequential.heterogeneity)
                if is_skipped(x)
            ]
        for r in self.landmarks.values():
            if is_skipped(r):
                out.append(r)
            else:
                out += [x for x in (r.survival, r.cox, r.churn_effect) if is_skipped(x)]
        if is_skipped(self.event_study):
            out.append(self.event_study)
        return out


def attribute_columns(customers: pd.DataFrame, *, max_levels: int = 12) -> list[str]:
    """Return the customer attribute columns usable as covariates or breakdowns.

    Columns of the customers table other than the id, the dates and the churn reason, with
    between 2 and ``max_levels`` distinct values (an id-like text column or a
    column that never varies is no attribute), in the table's order.
    """
    out = []
    for c in customers.columns:
        if c in NOT_ATTRIBUTES:
            continue
        s = customers[c]
        if pd.api.types.is_datetime64_any_dtype(s):
            continue
        k = s.nunique(dropna=True)
        if 2 <= k <= max_levels:
            out.append(c)
    return out


def resolve_covariates(
    covariates: Sequence[str] | str | None, customers: pd.DataFrame
) -> list[str]:
    """Return the covariates asked for; ``"auto"`` (or None): what this data offers.

    ``"auto"`` takes the behavioural covariates the frames compute (spend,
    purchases, tenure, service experience, survey answers) with every customer
    attribute column (:func:`attribute_columns`) after tenure, which is the
    order of :data:`DEFAULT_COVARIATES` for the sample world.
    """
    if covariates is not None and not (isinstance(covariates, str) and covariates == "auto"):
        return [covariates] if isinstance(covariates, str) else list(covariates)
    head = list(_FRAME_COVARIATES[:3])
    return head + attribute_columns(customers) + list(_FRAME_COVARIATES[3:])


def _resolve_by(by: str | None, customers: pd.DataFrame) -> str | None:
    """The heterogeneity column: as asked, or for ``"auto"`` the first attribute column."""
    if by != "auto":
        return by or None
    cols = attribute_columns(customers, max_levels=8)
    return cols[0] if cols else None


def _usable(frame: pd.DataFrame, candidates: Sequence[str]) -> tuple[list, list, list]:
    """Split covariates into (used, missing from the data, constant in this frame)."""
    used = [c for c in candidates if c in frame.columns and frame[c].nunique() > 1]
    missing = [c for c in candidates if c not in frame.columns]
    constant = [c for c in candidates if c in frame.columns and c not in used]
    return used, missing, constant


def _count(n: int, noun: str) -> str:
    """``"1 member"``, ``"0 members"``; ``noun`` may be ``"singular|plural"``."""
    one, _, many = noun.partition("|")
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _check_arms(
    n_treated: int, n_control: int, *, what: str, treated: str, control: str, need: int
):
    """Raise :class:`NotEstimable` when either arm is smaller than ``need``."""
    if n_treated < need or n_control < need:
        raise NotEstimable(
            f"{what} has {_count(n_treated, treated)} and {_count(n_control, control)}, too few "
            "to compare",
            remedy=f"It needs at least {need:,} of each.",
        )


def programme_report(
    tables: dict,
    *,
    window_start,
    as_of,
    landmarks: Sequence[int] = (6, 12),
    lookback_months: int = 3,
    horizon_months: int = 6,
    covariates: Sequence[str] | str | None = DEFAULT_COVARIATES,
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
    model_customers: np.ndarray | None = None,
) -> ProgrammeReport:
    """Run the whole loyalty-programme study.

    Headline effects on retention and spend come from pooled sequential trials
    (:func:`trial_frame`: each month, customers who enrol vs eligible customers who do
    not, adjusted for the months before; standard errors clustered by customer). The
    landmark analyses give the survival curves, hazard ratios, and per-landmark overlap
    and balance diagnostics. A part this data cannot support is returned as a
    :class:`analysis.studies.sections.Skipped` in its field; the others are kept.

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
    covariates : sequence of str or "auto"
        Confounders measured before the landmark (columns of :func:`landmark_frame`);
        those absent or constant in the data are dropped and recorded
        (``covariates_missing``, ``covariates_constant``). ``"auto"``: see
        :func:`resolve_covariates`.
    trim : float, optional
        Propensity trimming bound for the landmark analyses and the effects on
        enrollees (ATT) of the sequential trials (reported).
    propensity_model : {"logit", "gbm"}
    event_window : (int, int)
        Event times for the enrolment event study.
    heterogeneity_by : str, "auto" or None
        Column for subgroup effects on spend (small groups suppressed); ``"auto"``:
        the first customer attribute column with 2 to 8 values.
    min_group_size : int
        Suppression threshold for subgroups, and the fewest customers an arm (members,
        non-members, enrolments, enrollees) may have for its comparison to be estimated.
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
    model_customers : array, optional
        Customer ids (as in ``tables``) the landmark analyses, the sequential trials and
        the event study are restricted to: the study's model sample
        (:func:`analysis.studies.loyalty.model_customers`), for which ``transactions``
        and ``experience`` may hold the only rows. Uptake, points, leaving and the
        simple churn comparison use every customer. None: every customer.

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
    if "left_date" not in lo_t.columns:  # optional in the contract: nobody left
        lo_t = lo_t.assign(left_date=pd.NaT)
    cust, tx, ex = tables["customers"], tables["transactions"], tables.get("experience")
    with ExitStack() as stack:
        rep = ProgrammeReport(
            available=True,
            currency=currency,
            horizon_months=int(horizon_months),
            lookback_months=int(lookback_months),
        )
        candidates = resolve_covariates(covariates, cust)
        by = _resolve_by(heterogeneity_by, cust)
        win = dict(window_start=window_start, as_of=as_of)
        rep.uptake = attempt(SECTIONS["uptake"], uptake, cust, lo_t, **win)
        rep.points = attempt(
            SECTIONS["points"],
            points_summary,
            cust,
            lo_t,
            as_of=as_of,
            min_group_size=min_group_size,
        )
        rep.post_leaving = attempt(SECTIONS["post_leaving"], post_leaving, cust, lo_t, **win)
        rep.naive_churn = attempt(
            SECTIONS["naive_churn"], naive_churn_comparison, cust, lo_t, **win
        )
        # The frames use events only through monthly sums: summarise once, in pandas (a
        # no-op for tables already summarised) or on the engine (Ibis tables, e.g. from
        # activity.study_tables: kept in a temporary table while the report runs). After
        # the sections above, which read every customer: the engine's working memory of
        # this step is not added to theirs (0.7 GB at 10M customers).
        tx, ex = _monthly_inputs(stack, tx, ex)

        if model_customers is not None:
            n_all = int(cust["customer_id"].nunique())
            cust = cust[cust["customer_id"].isin(model_customers)]
            lo_t = lo_t[lo_t["customer_id"].isin(model_customers)]
            rep.model_sample = (int(cust["customer_id"].nunique()), n_all)
        # the frames' customers in identifier order, whatever order the engine returned them
        # in (Spark's partitions, DuckDB's threads): the same frames and samples everywhere
        cust, lo_t = in_id_order(cust), in_id_order(lo_t)
        model = dict(propensity_model=propensity_model, trim=trim, seed=seed)
        for L in landmarks:
            L = int(L)
            rep.landmarks[L] = attempt(
                SECTIONS["landmark"].format(L=L),
                _landmark_result,
                rep,
                (cust, tx, lo_t, ex),
                L,
                candidates=candidates,
                lookback_months=int(lookback_months),
                horizon_months=int(horizon_months),
                min_group_size=min_group_size,
                n_boot=n_boot,
                model=model,
                **win,
            )

        if sequential:
            rep.sequential = attempt(
                SECTIONS["sequential"],
                _sequential_result,
                rep,
                cust,
                tx,
                lo_t,
                ex,
                lookback_months=int(lookback_months),
                horizon_months=int(horizon_months),
                covariates=candidates,
                heterogeneity_by=by,
                min_group_size=min_group_size,
                max_customers=trial_max_customers,
                ate_trim=ate_trim,
                **model,
                **win,
            )
        headline = rep.sequential if isinstance(rep.sequential, SequentialResult) else None
        if headline is None and rep.estimated_landmarks():
            headline = next(iter(rep.estimated_landmarks().values()))
        if headline is not None:
            rep.covariates = list(headline.covariates)
        _record_covariates(rep, candidates)

        rep.event_study = attempt(
            SECTIONS["event_study"],
            _event_study,
            cust,
            tx,
            lo_t,
            event_window=event_window,
            lookback_months=int(lookback_months),
            min_group_size=min_group_size,
            n_boot=n_boot,
            seed=seed,
            **win,
        )
        return rep


def _monthly_inputs(stack: ExitStack, tx, ex):
    """The transactions and experience tables as monthly activity: pandas tables summarised
    in pandas; Ibis tables summarised on their engine into temporary tables that ``stack``
    drops (every frame reads them instead of the events)."""
    if not on_engine(tx):
        return monthly_purchases(tx), (monthly_service(ex) if ex is not None else None)
    con = tx.get_backend()
    tx = stack.enter_context(materialized(con, engine_purchases(tx)))
    if ex is not None:
        ex = stack.enter_context(materialized(con, engine_service(ex)))
    return tx, ex


def _record_covariates(rep: ProgrammeReport, candidates: Sequence[str]) -> None:
    """Record which asked-for covariates the data lacks and which never vary."""
    frames = [r.frame for r in rep.estimated_landmarks().values()]
    if isinstance(rep.sequential, SequentialResult):
        frames.append(rep.sequential.frame)
    cands = (
        trial_covariates(candidates) if isinstance(rep.sequential, SequentialResult) else candidates
    )
    if not frames:
        return
    cols = set().union(*(f.columns for f in frames))
    rep.covariates_missing = [c for c in candidates if c not in cols]
    rep.covariates_constant = [
        c
        for c in cands
        if c in cols and c not in rep.covariates and c not in rep.covariates_missing
    ]
    dropped = rep.covariates_missing + rep.covariates_constant
    if dropped:
        rep.caveats.append(
            {
                "kind": "covariates_left_out",
                "covariates": list(dropped),
                "missing": list(rep.covariates_missing),
                "constant": list(rep.covariates_constant),
            }
        )


def _landmark_result(
    rep: ProgrammeReport,
    tabs: tuple,
    L: int,
    *,
    candidates,
    window_start,
    as_of,
    lookback_months,
    horizon_months,
    min_group_size,
    n_boot,
    model,
) -> LandmarkResult:
    """Estimate everything at one landmark; raise :class:`NotEstimable` when it cannot."""
    cust, tx, lo_t, ex = tabs
    f = landmark_frame(
        cust,
        tx,
        lo_t,
        ex,
        landmark_months=L,
        window_start=window_start,
        as_of=as_of,
        lookback_months=lookback_months,
        horizon_months=horizon_months,
    )
    if len(f) == 0:
        raise NotEstimable(
            f"No customer reached {L} months of tenure with {lookback_months} months of history "
            f"before it and {horizon_months} months of follow-up after it in this data window",
            remedy="A longer history, or an earlier landmark, would allow it.",
        )
    n1 = int(f["member"].sum())
    _check_arms(
        n1,
        len(f) - n1,
        what=f"At {L} months of tenure the data",
        treated="member",
        control="non-member",
        need=min_group_size,
    )
    if int(f["churned"].sum()) == 0:
        raise NotEstimable(
            f"No customer active at {L} months of tenure left within the following "
            f"{horizon_months} months, so there is no churn to compare",
            remedy=_NO_CHURN_REMEDY,
        )
    covs, _, _ = _usable(f, candidates)
    ipw = estimate_effect(
        f, treatment="member", outcome="retained", covariates=covs, method="ipw", **model
    )
    bal = balance(f, treatment="member", covariates=covs, weights=ipw.weights)
    eff = effect_table(f, outcomes=("retained",), covariates=covs, **model)
    churn = attempt(
        SECTIONS["churn_effect"],
        estimate_effect,
        f,
        treatment="member",
        outcome="churned",
        covariates=covs,
        method="aipw",
        estimand="ATT",
        **model,
    )
    ev = _e_value_of(churn)
    surv = attempt(
        SECTIONS["survival"].format(L=L),
        weighted_survival,
        f,
        covariates=covs,
        horizon=float(horizon_months),
        trim=model["trim"],
        se="bootstrap" if n_boot > 0 else "analytic",
        n_boot=n_boot,
        seed=model["seed"],
    )
    cox = attempt(
        SECTIONS["cox"].format(L=L),
        weighted_cox,
        f,
        weights=ipw.weights,
        horizon=float(horizon_months),
    )
    cox_u = attempt(SECTIONS["cox"].format(L=L), weighted_cox, f, horizon=float(horizon_months))
    return LandmarkResult(
        landmark=L,
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
        covariates=covs,
    )


def _e_value_of(churn: Effect | Skipped) -> EValue | Skipped:
    """E-value of a churn effect's risk ratio, or the reason it has none."""
    if is_skipped(churn):
        return churn
    if not (np.isfinite(churn.ratio) and churn.ratio > 0):
        return Skipped(
            SECTIONS["churn_effect"],
            "The churn risk ratio could not be estimated, so its sensitivity to unmeasured "
            "differences cannot be stated",
            "It needs churn among both customers who enrolled and those who did not.",
        )
    return e_value(churn.ratio, churn.ratio_ci_lower, churn.ratio_ci_upper)


def _event_study(
    cust,
    tx,
    lo_t,
    *,
    window_start,
    as_of,
    event_window,
    lookback_months,
    min_group_size,
    n_boot,
    seed,
) -> EventStudy:
    """Spend around enrolment; :class:`NotEstimable` with too few enrollees."""
    panel = event_study_panel(cust, tx, lo_t, window_start=window_start, as_of=as_of)
    enrollees = panel.loc[panel["cohort"].notna(), "customer_id"].nunique()
    if enrollees < min_group_size:
        raise NotEstimable(
            f"Only {_count(enrollees, 'customer')} enrolled during the data window while active, "
            "too few to trace their spend around the month they joined",
            remedy=f"It needs at least {min_group_size:,} enrollees.",
        )
    if panel.loc[panel["cohort"].isna(), "customer_id"].nunique() == 0 and panel["rel"].min() >= 0:
        raise NotEstimable(
            "Every customer in the data is a member from the start, so nothing shows what their "
            "spend would have been without the programme",
            remedy="It needs customers who enrol during the window, or who never enrol.",
        )
    return event_study(
        panel,
        window=tuple(event_window),
        anticipation=int(lookback_months),
        se="bootstrap" if n_boot > 0 else "analytic",
        n_boot=n_boot,
        seed=seed,
    )


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
) -> SequentialResult:
    """Run the pooled sequential-trial analysis; :class:`NotEstimable` if it cannot run."""
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
        if not str(err).startswith("No sequential trial fits"):
            raise
        need = lookback_months + horizon_months + 1
        raise NotEstimable(
            f"The data window is too short for the monthly comparison: each enrolment month "
            f"needs {lookback_months} months of history before it and {horizon_months} complete "
            "months after it",
            remedy=f"It needs at least {need} complete months of data.",
        ) from err
    n1 = int(f["member"].sum())
    n1_customers = int(f.loc[f["member"] == 1, "customer_id"].nunique())
    _check_arms(
        n1_customers,
        int(f.loc[f["member"] == 0, "customer_id"].nunique()),
        what="The monthly comparison",
        treated="customer who enrolled|customers who enrolled",
        control="customer who could have enrolled but did not|customers who could have enrolled "
        "but did not",
        need=min_group_size,
    )
    covs, _, _ = _usable(f, trial_covariates(covariates))
    # encode once into a slim numeric frame: every estimate below would otherwise re-encode the
    # categoricals of the wide frame (5-6x slower at 400,000 customer-months)
    design = covariate_matrix(f, covs)
    extra = [heterogeneity_by] if heterogeneity_by and heterogeneity_by in f.columns else []
    base = ["customer_id", "member", "retained", "churned", "spend", "purchases"]
    slim = pd.concat([f[base + extra], design], axis=1)
    xcols = list(design.columns)
    kw = dict(propensity_model=propensity_model, trim=trim, seed=seed, cluster="customer_id")
    skipped = []
    outcomes = ["retained", "spend", "purchases"]
    if int(f["churned"].sum()) == 0:
        outcomes.remove("retained")
        skipped.append(
            Skipped(
                SECTIONS["retention"],
                f"No customer in the monthly comparison left within {horizon_months} months, so "
                "there is no churn to compare",
                _NO_CHURN_REMEDY,
            )
        )
    ipw = estimate_effect(
        slim, treatment="member", outcome=outcomes[0], covariates=xcols, method="ipw", **kw
    )
    # balance for the headline (ATT): controls weighted to resemble the enrolments
    ipw_att = estimate_effect(
        slim,
        treatment="member",
        outcome=outcomes[0],
        covariates=xcols,
        method="ipw",
        estimand="ATT",
        **kw,
    )
    bal = balance(slim, treatment="member", covariates=xcols, weights=ipw_att.weights)
    att = effect_table(
        slim,
        outcomes=outcomes,
        covariates=xcols,
        methods=("naive", "regression", "ipw", "aipw"),
        estimands=("ATT",),
        **kw,
    )
    ate = _ate_rows(rep, slim, outcomes, xcols, kw, ate_trim)
    if is_skipped(ate):
        skipped.append(ate)
        ate = att.iloc[:0]
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
    if "retained" in outcomes:
        churn = attempt(
            SECTIONS["churn_effect"],
            estimate_effect,
            slim,
            treatment="member",
            outcome="churned",
            covariates=xcols,
            method="aipw",
            estimand="ATT",
            **kw,
        )
        ev = _e_value_of(churn)
    else:
        churn = ev = None
    het = _heterogeneity(f, slim, heterogeneity_by, xcols, min_group_size)
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
        covariates=covs,
        heterogeneity_by=heterogeneity_by,
        skipped=skipped,
    )


def _ate_rows(rep, slim, outcomes, xcols, kw, ate_trim) -> pd.DataFrame | Skipped:
    """The ATE rows, trimmed by ``ate_trim``; untrimmed (with a caveat) if trimming empties an arm."""
    ate_kw = dict(
        outcomes=outcomes,
        covariates=xcols,
        methods=("regression", "ipw", "aipw"),
        estimands=("ATE",),
    )
    try:
        return effect_table(slim, **ate_kw, **{**kw, "trim": ate_trim})
    except DataError as err:  # trimming emptied an arm (tiny data): the untrimmed ATE, said so
        if ate_trim is None:
            return skipped_from(SECTIONS["ate"], err)
        detail = str(err.args[0] if err.args else err)
        rep.caveats.append({"kind": "ate_trim_emptied_arm", "trim": ate_trim, "detail": detail})
    except Exception as exc:  # noqa: BLE001 - one failed part must not fail the section
        return skipped_from(SECTIONS["ate"], exc)
    return attempt(SECTIONS["ate"], effect_table, slim, **ate_kw, **{**kw, "trim": None})


def _heterogeneity(f, slim, by, xcols, min_group_size) -> pd.DataFrame | Skipped | None:
    """Spend effect on enrollees by subgroup, or why there is none."""
    if not by:
        return None
    if by not in f.columns:
        return Skipped(
            SECTIONS["heterogeneity"],
            f"The customer attribute chosen for this breakdown ({by.replace('_', ' ')}) is not in "
            "this data",
            "Choose one of the data's customer attribute columns for the breakdown.",
        )
    if f[by].nunique() < 2:
        return Skipped(
            SECTIONS["heterogeneity"],
            f"Every customer has the same {by.replace('_', ' ')}, so there are no groups to compare",
            "It needs an attribute on which customers differ.",
        )
    return attempt(
        SECTIONS["heterogeneity"],
        heterogeneity,
        slim,
        by=by,
        outcome="spend",
        covariates=xcols,
        min_group_size=min_group_size,
        cluster="customer_id",
    )
