"""Compatibility module: the public customer-value API.

New code imports :mod:`analysis.stats.btyd` (BG/NBD, Pareto/NBD, Gamma-Gamma, sBG, CLV),
:mod:`analysis.stats.classification` (AUC, calibration, gains),
:mod:`analysis.studies.value` (RFM summary, churn risk, the value study),
:mod:`analysis.report.value` (sentences, display table, CRM export) and
:mod:`analysis.report.plots.value` (plots).
"""

from __future__ import annotations

from analysis.report.plots.value import (  # noqa: F401
    plot_churn_model,
    plot_holdout_by_frequency,
    plot_p_alive,
    plot_tracking,
    plot_value_curve,
)
from analysis.report.value import (  # noqa: F401
    churn_summary_table,
    study_findings,
    study_notes,
    value_findings,
    write_export,
)
from analysis.report.value import value_study_with_notes as value_study
from analysis.stats.btyd import (  # noqa: F401
    FREQ_DAYS,
    BGNBDResult,
    GammaGammaResult,
    ParetoNBDResult,
    clv,
    cumulative_tracking,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_pareto_nbd,
    fit_sbg,
    holdout_by_frequency,
    holdout_errors,
    parameter_table,
    total_clv_interval,
)
from analysis.stats.classification import (  # noqa: F401
    calibration_slope_intercept,
    calibration_table,
    gains_table,
)
from analysis.studies.value import (  # noqa: F401
    TIERS,
    ChurnRiskResult,
    ValueStudy,
    churn_risk_cutoffs,
    churn_risk_features,
    customers_to_protect,
    fit_churn_risk,
    protect_summary,
    rfm_summary,
    value_concentration,
    value_tiers,
)

__all__ = [
    "FREQ_DAYS",
    "BGNBDResult",
    "ParetoNBDResult",
    "GammaGammaResult",
    "rfm_summary",
    "fit_bgnbd",
    "fit_pareto_nbd",
    "fit_gamma_gamma",
    "fit_sbg",
    "clv",
    "parameter_table",
    "holdout_by_frequency",
    "holdout_errors",
    "cumulative_tracking",
    "value_tiers",
    "value_concentration",
    "customers_to_protect",
    "protect_summary",
    "value_findings",
    "churn_risk_features",
    "fit_churn_risk",
    "ChurnRiskResult",
    "calibration_table",
    "calibration_slope_intercept",
    "gains_table",
    "churn_risk_cutoffs",
    "total_clv_interval",
    "ValueStudy",
    "value_study",
    "study_findings",
    "write_export",
]
