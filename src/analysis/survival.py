"""Compatibility module: the public survival (retention) API.

New code imports the estimators from :mod:`analysis.stats` (``survival``,
``cox``, ``competing_risks``, ``hazard``), the study from
:mod:`analysis.studies.retention` and the sentences from
:mod:`analysis.report.retention`. :func:`retention_report` still returns a
:class:`RetentionReport` carrying ``findings`` and ``notes``.
"""

from analysis.report.retention import (
    RetentionReport,
    retention_report,
    sentence_cif,
    sentence_hazard_peak,
    sentence_hazard_ratio,
    sentence_left_truncation,
    sentence_logrank,
    sentence_median,
    sentence_ph,
    sentence_rmst_difference,
    sentence_survival_at,
)
from analysis.stats.competing_risks import cif_at, cumulative_incidence
from analysis.stats.cox import CoxResult, concordance_index, cox, cox_stratified_refit, ph_test
from analysis.stats.hazard import hazard_over_tenure
from analysis.stats.survival import (
    ALL,
    TABLE,
    LogrankResult,
    at_risk_table,
    holm,
    kaplan_meier,
    logrank,
    median_survival,
    rmst,
    survival_at,
)
from analysis.studies.retention import cohort_matrix, cohort_survival, drop_small_groups

__all__ = [
    "ALL",
    "TABLE",
    "CoxResult",
    "LogrankResult",
    "RetentionReport",
    "at_risk_table",
    "cif_at",
    "cohort_matrix",
    "cohort_survival",
    "concordance_index",
    "cox",
    "cox_stratified_refit",
    "cumulative_incidence",
    "drop_small_groups",
    "hazard_over_tenure",
    "holm",
    "kaplan_meier",
    "logrank",
    "median_survival",
    "ph_test",
    "retention_report",
    "rmst",
    "sentence_cif",
    "sentence_hazard_peak",
    "sentence_hazard_ratio",
    "sentence_left_truncation",
    "sentence_logrank",
    "sentence_median",
    "sentence_ph",
    "sentence_rmst_difference",
    "sentence_survival_at",
    "survival_at",
]
