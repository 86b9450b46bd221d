"""Effect estimates of the loyalty study with the study's defaults.

:func:`effect_table` and :func:`heterogeneity` run
:func:`analysis.stats.effects.estimate_effect` over outcomes, estimators and subgroups;
:func:`weighted_survival` is :func:`analysis.stats.weighted_survival.weighted_survival`
with the study's confounders as default covariates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.stats.effects import estimate_effect
from analysis.stats.weighted_survival import SurvivalContrast
from analysis.stats.weighted_survival import weighted_survival as _weighted_survival
from analysis.studies.loyalty.frames import DEFAULT_COVARIATES

__all__ = ["effect_table", "heterogeneity", "weighted_survival"]


def effect_table(
    frame: pd.DataFrame,
    *,
    outcomes: Sequence[str] = ("retained", "spend", "purchases"),
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    treatment: str = "member",
    methods: Sequence[str] = ("naive", "regression", "ipw", "aipw"),
    estimands: Sequence[str] = ("ATE", "ATT"),
    propensity_model: str = "logit",
    trim: float | None = None,
    seed: int = 0,
    cluster: str | None = None,
) -> pd.DataFrame:
    """Estimate the programme's effect on several outcomes with several estimators.

    Parameters
    ----------
    frame : pandas.DataFrame
        A :func:`landmark_frame` (or several stacked).
    outcomes : sequence of str
        Outcome columns (``retained`` is a proportion; ``spend`` in currency per
        customer over the horizon; ``purchases`` a count over the horizon).
    covariates, treatment, methods, estimands, propensity_model, trim, seed, cluster
        Passed to :func:`analysis.stats.effects.estimate_effect` (``cluster="customer_id"``
        for a :func:`trial_frame`, where a customer appears in many trials).

    Returns
    -------
    pandas.DataFrame
        One row per outcome, method and estimand (naive once, labelled
        "observational contrast"), with estimate, se, interval, p-value, the two
        potential-outcome means, their ratio with interval, group sizes and
        trimmed rows.
    """
    rows = []
    for y in outcomes:
        for m in methods:
            for est in ("ATE",) if m == "naive" else estimands:
                eff = estimate_effect(
                    frame,
                    treatment=treatment,
                    outcome=y,
                    covariates=list(covariates),
                    method=m,
                    estimand=est,
                    propensity_model=propensity_model,
                    trim=trim,
                    seed=seed,
                    cluster=cluster,
                )
                d = eff.to_dict()
                if m == "naive":
                    d["estimand"] = "observational contrast"
                rows.append(d)
    return pd.DataFrame(rows)


def heterogeneity(
    frame: pd.DataFrame,
    *,
    by: str,
    outcome: str,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    treatment: str = "member",
    method: str = "aipw",
    estimand: str = "ATT",
    min_group_size: int = 50,
    cluster: str | None = None,
) -> pd.DataFrame:
    """Estimate effects within subgroups; suppress groups that are too small.

    A subgroup is estimated only if both its treated and its control counts are
    at least ``min_group_size``; otherwise its row is kept with ``suppressed``
    True and no numbers. The grouping column is dropped from the covariates.

    Returns
    -------
    pandas.DataFrame
        One row per level of ``by``: n_treated, n_control, estimate, ci_lower,
        ci_upper, ratio (lift) and its interval, suppressed.

    ``cluster`` is passed to :func:`analysis.stats.effects.estimate_effect`; with it the
    counts are customers (clusters), not rows.
    """
    covs = [c for c in covariates if c != by]
    rows = []
    for level, g in frame.groupby(by, observed=True, sort=True):
        if cluster is None:
            n1 = int(g[treatment].sum())
            n0 = int(len(g) - n1)
        else:  # customers, so that suppression protects people rather than rows
            n1 = int(g.loc[g[treatment] == 1, cluster].nunique())
            n0 = int(g.loc[g[treatment] == 0, cluster].nunique())
        row = {by: level, "n_treated": n1, "n_control": n0, "suppressed": True}
        if n1 >= min_group_size and n0 >= min_group_size:
            covs_g = [c for c in covs if g[c].nunique() > 1]
            eff = estimate_effect(
                g,
                treatment=treatment,
                outcome=outcome,
                covariates=covs_g,
                method=method,
                estimand=estimand,
                cluster=cluster,
            )
            row.update(
                estimate=eff.estimate,
                ci_lower=eff.ci_lower,
                ci_upper=eff.ci_upper,
                ratio=eff.ratio,
                ratio_ci_lower=eff.ratio_ci_lower,
                ratio_ci_upper=eff.ratio_ci_upper,
                suppressed=False,
            )
        rows.append(row)
    out = pd.DataFrame(rows)
    for c in ("estimate", "ci_lower", "ci_upper", "ratio", "ratio_ci_lower", "ratio_ci_upper"):
        if c not in out:
            out[c] = np.nan
    return out


def weighted_survival(
    frame: pd.DataFrame,
    *,
    treatment: str = "member",
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    time: str = "time_months",
    event: str = "event",
    horizon: float = 6.0,
    estimand: str = "ATE",
    trim: float | None = None,
    se: str = "analytic",
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> SurvivalContrast:
    """Estimate IP-weighted survival curves of members and comparable non-members.

    :func:`analysis.stats.weighted_survival.weighted_survival`, with the study's
    confounders (:data:`DEFAULT_COVARIATES`) unless ``covariates`` is given; the
    other arguments are passed through unchanged.
    """
    return _weighted_survival(
        frame,
        treatment=treatment,
        covariates=covariates,
        time=time,
        event=event,
        horizon=horizon,
        estimand=estimand,
        trim=trim,
        se=se,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
    )
