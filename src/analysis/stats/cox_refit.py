"""Refitting a Cox model with the covariates that fail the proportional-hazards test stratified.

:func:`cox_stratified_refit` takes a :class:`~analysis.stats.cox.CoxResult` from
:func:`~analysis.stats.cox.cox` and refits it with the failing categorical
covariates moved into strata. It is re-exported by :mod:`analysis.stats.cox`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from analysis.stats.cox import CoxResult

__all__ = ["cox_stratified_refit"]


def cox_stratified_refit(
    df: pd.DataFrame, result: CoxResult, *, alpha: float = 0.05
) -> tuple[CoxResult, list[str]]:
    """Refit a Cox model with covariates that fail the PH test moved into strata.

    A categorical covariate whose hazard ratio changes with tenure cannot be
    summarised by one hazard ratio; stratifying on it gives each of its
    levels its own baseline churn curve and keeps the other hazard ratios
    valid. Numeric covariates that fail stay in the model (stratifying on
    them is not meaningful) and are reported by the caller.

    A covariate fails when one of its terms' Grambsch-Therneau tests is
    below ``alpha`` after Holm adjustment across terms
    (:meth:`CoxResult.ph_failures`). The refit reuses every other argument of
    the original fit (``result.spec``: duration, event, entry, ties, reference
    levels, alpha, PH-test transform) and adds the moved covariates to its
    strata.

    Parameters
    ----------
    df : pandas.DataFrame
        The table ``result`` was fitted on (one row per customer), with the
        columns named in ``result.spec``.
    result : CoxResult
        A fit from :func:`analysis.stats.cox.cox`.
    alpha : float
        Level of the Holm-adjusted PH tests that flags a covariate.

    Returns
    -------
    (CoxResult, list of str)
        The refitted model and the covariates moved into strata, in the order
        :meth:`CoxResult.ph_failures` gives them; ``(result, [])`` itself if no
        failing covariate is categorical, or if moving them would leave no
        covariate in the model.
    """
    from analysis.stats.cox import _is_categorical, cox

    failing = result.ph_failures(alpha)
    movable = [c for c in failing if _is_categorical(df[c])]
    if not movable:
        return result, []
    spec = dict(result.spec)
    covs = [c for c in spec["covariates"] if c not in movable]
    if not covs:
        return result, []
    new = cox(
        df,
        duration=spec["duration"],
        event=spec["event"],
        covariates=covs,
        strata=list(spec["strata"]) + movable,
        entry=spec["entry"],
        ties=spec["ties"],
        reference={k: v for k, v in spec["reference"].items() if k in covs},
        alpha=spec["alpha"],
        ph_transform=spec["ph_transform"],
    )
    return new, movable
