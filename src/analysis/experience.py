"""Compatibility module: the public experience-to-revenue API.

New code imports the study from :mod:`analysis.studies.experience` (numbers),
the sentences, labels and claims table from :mod:`analysis.report.experience`,
the figures from :mod:`analysis.report.plots.experience` and the fixed-effects
engine from :mod:`analysis.stats.fixed_effects`. :func:`run_study` here still
returns the study's numbers with the report's text attached
(:class:`~analysis.report.experience.ExperienceReport`: ``findings()``,
``notes``, ``claims``, a labelled ``hazard_table``).
"""

from analysis.report.experience import (
    ExperienceReport,
    findings,
    industry_claims,
    run_study,
)
from analysis.report.plots.experience import plot_dose_response, plot_km, plot_lags, plot_trends
from analysis.stats.fixed_effects import FEResult
from analysis.studies.experience import (
    DAYS_PER_MONTH,
    NO_SURVEY,
    NPS_LEVELS,
    WINDOW_COUNTS,
    HazardResult,
    Scenario,
    StudyResults,
    add_panel_columns,
    churn_hazards,
    compensation_effect,
    counting_process,
    dose_response,
    driver_view,
    experience_metrics,
    fcr_rate,
    lag_profile,
    moments_of_truth,
    monthly_churn,
    monthly_revenue,
    nps_categories,
    nps_landmark,
    revenue_at_stake,
    revenue_link,
    scenario_detractors_as_passives,
    scenario_fcr_up,
    scenario_sla_breaches_reduced,
    scenarios_from_params,
)

__all__ = [
    "DAYS_PER_MONTH",
    "NO_SURVEY",
    "NPS_LEVELS",
    "WINDOW_COUNTS",
    "ExperienceReport",
    "FEResult",
    "HazardResult",
    "Scenario",
    "StudyResults",
    "add_panel_columns",
    "churn_hazards",
    "compensation_effect",
    "counting_process",
    "dose_response",
    "driver_view",
    "experience_metrics",
    "fcr_rate",
    "findings",
    "industry_claims",
    "lag_profile",
    "moments_of_truth",
    "monthly_churn",
    "monthly_revenue",
    "nps_categories",
    "nps_landmark",
    "plot_dose_response",
    "plot_km",
    "plot_lags",
    "plot_trends",
    "revenue_at_stake",
    "revenue_link",
    "run_study",
    "scenario_detractors_as_passives",
    "scenario_fcr_up",
    "scenario_sla_breaches_reduced",
    "scenarios_from_params",
]
