"""Compatibility module: the public causal-effects API.

New code imports :mod:`analysis.stats.effects` (``estimate_effect``, ``balance``,
``Effect``, ``crump_bound``), :mod:`analysis.stats.evalue` (``e_value``),
:mod:`analysis.stats.logistic` (``fit_propensity``) and :mod:`analysis.stats.design`
(``covariate_matrix``).
"""

from analysis.stats.design import covariate_matrix
from analysis.stats.effects import (
    ESTIMANDS,
    JACKKNIFE_GROUPS,
    JACKKNIFE_ROWS_PER_PARAMETER,
    METHODS,
    OUTCOME_MODELS,
    SE_METHODS,
    Effect,
    balance,
    crump_bound,
    estimate_effect,
)
from analysis.stats.evalue import EValue, e_value
from analysis.stats.logistic import PROPENSITY_MODELS, SMALL_PROBLEM_ROWS, fit_propensity

__all__ = [
    "ESTIMANDS",
    "Effect",
    "EValue",
    "JACKKNIFE_GROUPS",
    "JACKKNIFE_ROWS_PER_PARAMETER",
    "METHODS",
    "OUTCOME_MODELS",
    "PROPENSITY_MODELS",
    "SE_METHODS",
    "SMALL_PROBLEM_ROWS",
    "balance",
    "covariate_matrix",
    "crump_bound",
    "e_value",
    "estimate_effect",
    "fit_propensity",
]
