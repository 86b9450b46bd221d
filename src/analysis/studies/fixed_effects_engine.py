"""Two-way fixed-effects regressions whose rows stay on the engine.

:func:`two_way_fit` regresses an outcome on a few regressors with customer and period
effects absorbed and customer-clustered (CRV1) standard errors -- the regression of
:func:`analysis.stats.fixed_effects.fit_fe` -- without bringing a row to Python: the
engine builds the sums (:mod:`analysis.data.fe_engine`), numpy solves the small period
system from them (:mod:`analysis.stats.fixed_effects_sums`), and one more engine pass
sums the customers' residual scores. Exact, not iterative: the numbers of ``fit_fe``
(tests/test_fe_engine.py, which also checks statsmodels and pyfixest).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack

import ibis.expr.types as ir

from analysis.data.fe_engine import (
    PATTERN_BITS,
    drop_singletons,
    estimation_rows,
    materialized,
    residual_sums,
    two_way_sums,
)
from analysis.stats.fixed_effects import FEResult, too_few_rows
from analysis.stats.fixed_effects_sums import (
    TwoWaySums,
    pattern_cross,
    solve_two_way,
    two_way_result,
)

__all__ = ["two_way_fit"]


def two_way_fit(
    con,
    rows: ir.Table,
    *,
    outcome: str,
    regressors: Sequence[str],
    customer: str,
    period: str,
    names: Sequence[str] | None = None,
    fixed_effects: Sequence[str] = ("customer_id", "period"),
    k_fixef: str = "nonnested",
    alpha: float = 0.05,
) -> FEResult:
    """Regress ``outcome`` on ``regressors`` with customer and period effects, on the engine.

    Parameters
    ----------
    con : ibis backend
        The engine holding ``rows`` (temporary tables are made there and dropped).
    rows : ibis.Table
        One row per customer and period; rows with a missing outcome or regressor
        are dropped, then singletons (rows alone in their customer or period),
        repeatedly.
    outcome, regressors : str, sequence of str
        Numeric columns (the coefficient is outcome units per regressor unit).
    customer, period : str
        The effects' columns; customers are also the clusters. ``period`` may be
        any key (dates, or numbers from :func:`analysis.data.fe_engine.period_ordinal`).
    names : sequence of str, optional
        Term names (default: the regressors).
    fixed_effects : sequence of str
        Names recorded on the result.
    k_fixef : {"nonnested", "full"}
        Small-sample factor (:func:`analysis.stats.fixed_effects.fit_fe`).
    alpha : float
        1 - confidence level.

    Returns
    -------
    FEResult
        As :func:`analysis.stats.fixed_effects.fit_fe`.

    Raises
    ------
    AnalysisError
        Too few usable rows, or regressors collinear with each other or the effects.
    """
    regressors = list(regressors)
    names = list(names or regressors)
    k = len(regressors)
    base = estimation_rows(
        rows, outcome=outcome, regressors=regressors, customer=customer, period=period
    )
    with ExitStack() as stack:
        # computed once: every pass below reads these rows
        base = stack.enter_context(materialized(con, base))
        usable, n, dropped = drop_singletons(con, base, stack)
        if n <= k + 1:
            raise too_few_rows(n, names, outcome)
        raw = two_way_sums(usable, k)
        periods = raw.pop("periods")
        masks, per_customer, customers = raw.pop("patterns")
        sums = TwoWaySums(
            **raw,
            cross=pattern_cross(masks, per_customer, customers, len(periods), bits=PATTERN_BITS),
            singletons_dropped=dropped,
        )
        sol = solve_two_way(sums, names, outcome=outcome)
        meat, ee, yy = residual_sums(
            usable,
            periods,
            gamma_y=sol.gamma_y,
            gamma_x=sol.gamma_x,
            beta=sol.beta,
            n=sums.n_obs,
        )
    return two_way_result(
        sums,
        sol,
        names,
        meat=meat,
        resid_ss=ee,
        outcome_ss=yy,
        fixed_effects=fixed_effects,
        k_fixef=k_fixef,
        alpha=alpha,
    )
