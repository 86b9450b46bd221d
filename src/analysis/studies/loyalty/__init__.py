"""Loyalty-programme study: landmark design, sequential trials, event study.

The question is what the programme does to retention and spend. Members are
not a random sample of customers (enrolment follows recent spend, tenure and
experience), so the plain member vs non-member contrast mixes the programme's
effect with who joins. The study therefore:

1. builds a **landmark** frame (:func:`landmark_frame`): at a fixed tenure L
   (e.g. 6 or 12 months after signup) it takes every customer still active,
   calls those who are members at that moment "treated" and everyone else
   "control", measures covariates only *before* L and outcomes only *after* L.
   Nobody's treatment status depends on surviving past L, so there is no
   immortal-time bias;
2. adjusts for the measured confounders with :func:`analysis.stats.effects.estimate_effect`
   (IPW / AIPW) and IP-weighted survival curves, RMST and a weighted Cox model
   (:func:`analysis.stats.weighted_survival.weighted_survival`, ``weighted_cox``);
3. looks at spend around the enrolment month in a staggered-adoption **event
   study** (:func:`analysis.stats.event_study.event_study`) with a
   heterogeneity-robust estimator.

:func:`programme_report` runs all of it and returns numbers (a part this data cannot
support becomes an :class:`analysis.studies.sections.Skipped` with a plain reason); the sentences are in
:mod:`analysis.report.loyalty` and the plots in :mod:`analysis.report.plots.loyalty`.
See docs/methods/loyalty.md for the assumptions and how to read the numbers.
"""

from analysis.studies.loyalty.activity import (
    model_customers,
    monthly_purchases,
    monthly_service,
    study_tables,
)
from analysis.studies.loyalty.descriptive import (
    level_counts,
    level_sizes,
    member_profile,
    naive_churn_comparison,
    points_summary,
    post_leaving,
    uptake,
)
from analysis.studies.loyalty.effects import effect_table, heterogeneity, weighted_survival
from analysis.studies.loyalty.frames import (
    DAYS_PER_MONTH,
    DEFAULT_COVARIATES,
    event_study_panel,
    landmark_frame,
    trial_covariates,
    trial_frame,
)
from analysis.studies.loyalty.study import (
    SECTIONS,
    LandmarkResult,
    ProgrammeReport,
    SequentialResult,
    attribute_columns,
    programme_report,
    resolve_covariates,
)

__all__ = [
    "SECTIONS",
    "DAYS_PER_MONTH",
    "DEFAULT_COVARIATES",
    "LandmarkResult",
    "ProgrammeReport",
    "SequentialResult",
    "attribute_columns",
    "effect_table",
    "event_study_panel",
    "heterogeneity",
    "landmark_frame",
    "level_counts",
    "level_sizes",
    "member_profile",
    "model_customers",
    "monthly_purchases",
    "monthly_service",
    "naive_churn_comparison",
    "points_summary",
    "post_leaving",
    "programme_report",
    "resolve_covariates",
    "study_tables",
    "trial_covariates",
    "trial_frame",
    "uptake",
    "weighted_survival",
]
