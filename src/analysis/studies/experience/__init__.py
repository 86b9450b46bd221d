"""Experience to revenue: how service experience relates to churn and next-period revenue.

The study links the ``experience`` table (survey answers and service tickets)
to the churn clock and to the monthly revenue panel:

* :mod:`.frames` -- :func:`nps_categories`, :func:`counting_process`
  (``(start, stop]`` rows whose time-varying covariates only use experience
  recorded *before* each row starts), :func:`add_panel_columns`;
* :mod:`.hazards` -- :func:`churn_hazards` (Cox model with customer-clustered
  standard errors), scenarios and :func:`revenue_at_stake`,
  :func:`moments_of_truth`, :func:`compensation_effect`;
* :mod:`.revenue` -- :func:`revenue_link` (next-period revenue with customer
  and period fixed effects absorbed), :func:`lag_profile`,
  :func:`dose_response`;
* :mod:`.metrics` -- descriptive views, churn and revenue rates, and the
  numbers beside common CX claims;
* :mod:`.study` -- :func:`run_study`, which computes everything the report
  notebook shows and returns the numbers (:class:`StudyResults`).

Sentences, labels and plots are in :mod:`analysis.report.experience` and
:mod:`analysis.report.plots.experience`. Methods, conventions and checks:
``docs/methods/experience.md``. Time on the churn clock is in days since the
customer's ``start_date``; money is in the data's currency.
"""

from analysis.stats.fixed_effects import FEResult
from analysis.studies.experience.frames import (
    DAYS_PER_MONTH,
    NO_SURVEY,
    NPS_LEVELS,
    WINDOW_COUNTS,
    add_panel_columns,
    counting_process,
    nps_categories,
)
from analysis.studies.experience.hazards import (
    HazardResult,
    Scenario,
    churn_hazards,
    compensation_effect,
    moments_of_truth,
    revenue_at_stake,
    scenario_detractors_as_passives,
    scenario_fcr_up,
    scenario_sla_breaches_reduced,
    scenarios_from_params,
)
from analysis.studies.experience.metrics import (
    ClaimNumbers,
    claim_numbers,
    driver_view,
    experience_metrics,
    fcr_rate,
    monthly_churn,
    monthly_revenue,
    nps_landmark,
)
from analysis.studies.experience.revenue import dose_response, lag_profile, revenue_link
from analysis.studies.experience.study import HAZARD_TABLE_TERMS, StudyResults, run_study

__all__ = [
    "DAYS_PER_MONTH",
    "HAZARD_TABLE_TERMS",
    "NO_SURVEY",
    "NPS_LEVELS",
    "WINDOW_COUNTS",
    "ClaimNumbers",
    "FEResult",
    "HazardResult",
    "Scenario",
    "StudyResults",
    "add_panel_columns",
    "churn_hazards",
    "claim_numbers",
    "compensation_effect",
    "counting_process",
    "dose_response",
    "driver_view",
    "experience_metrics",
    "fcr_rate",
    "lag_profile",
    "moments_of_truth",
    "monthly_churn",
    "monthly_revenue",
    "nps_categories",
    "nps_landmark",
    "revenue_at_stake",
    "revenue_link",
    "run_study",
    "scenario_detractors_as_passives",
    "scenario_fcr_up",
    "scenario_sla_breaches_reduced",
    "scenarios_from_params",
]
