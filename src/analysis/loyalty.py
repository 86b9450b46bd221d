"""Compatibility module: the public loyalty-study API.

New code imports the study from :mod:`analysis.studies.loyalty`, the estimators from
:mod:`analysis.stats` (``weighted_survival``, ``event_study``, ``effects``, ``evalue``),
the labels and sentences from :mod:`analysis.report.loyalty` and the plots from
:mod:`analysis.report.plots.loyalty`.

``weighted_survival`` is the study's (its confounders by default; the stats function has no
default), and ``programme_report`` is
:func:`analysis.report.loyalty.programme_report_with_findings`: the study's result, which
holds numbers only, with the findings sentences attached as ``.findings``.
"""

from analysis.report.loyalty import (
    COVARIATE_LABELS,
    METHOD_LABELS,
    QUANTITY_LABELS,
    covariate_label,
    e_value_sentence,
    effect_sentence,
)
from analysis.report.loyalty import (
    programme_report_with_findings as programme_report,
)
from analysis.report.plots.loyalty import (
    plot_event_study,
    plot_love,
    plot_overlap,
    plot_survival,
    plot_uptake,
)
from analysis.stats.cox import WeightedCoxResult as CoxResult
from analysis.stats.cox import weighted_cox
from analysis.stats.event_study import EventStudy, event_study
from analysis.stats.weighted_survival import SurvivalContrast
from analysis.studies.loyalty import (
    DAYS_PER_MONTH,
    DEFAULT_COVARIATES,
    LandmarkResult,
    ProgrammeReport,
    SequentialResult,
    effect_table,
    event_study_panel,
    heterogeneity,
    landmark_frame,
    member_profile,
    naive_churn_comparison,
    points_summary,
    post_leaving,
    trial_covariates,
    trial_frame,
    uptake,
    weighted_survival,
)

__all__ = [
    "COVARIATE_LABELS",
    "CoxResult",
    "DAYS_PER_MONTH",
    "DEFAULT_COVARIATES",
    "EventStudy",
    "LandmarkResult",
    "METHOD_LABELS",
    "ProgrammeReport",
    "QUANTITY_LABELS",
    "SequentialResult",
    "SurvivalContrast",
    "covariate_label",
    "e_value_sentence",
    "effect_sentence",
    "effect_table",
    "event_study",
    "event_study_panel",
    "heterogeneity",
    "landmark_frame",
    "member_profile",
    "naive_churn_comparison",
    "plot_event_study",
    "plot_love",
    "plot_overlap",
    "plot_survival",
    "plot_uptake",
    "points_summary",
    "post_leaving",
    "programme_report",
    "trial_covariates",
    "trial_frame",
    "uptake",
    "weighted_cox",
    "weighted_survival",
]
