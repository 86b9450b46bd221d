"""The customer value study (report 04_customer_value).

* :func:`rfm_summary` turns a transaction log into one row per customer with the
  sufficient statistics of the purchase models (:mod:`analysis.stats.btyd`).
* :func:`churn_risk_features`, :func:`fit_churn_risk` and
  :func:`churn_risk_cutoffs` build a time-split contractual churn-risk model.
* :func:`value_study` runs everything the report shows and returns a
  :class:`ValueStudy` of numbers; :func:`value_tiers`,
  :func:`value_concentration`, :func:`customers_to_protect` and
  :func:`protect_summary` are its building blocks.
* :func:`contractual_value` fits the contract-renewal (sBG) model where contracts
  end with a churn date and values customers by their discounted expected residual
  lifetime; :func:`contract_lifetimes` counts the renewals it is fitted to.

Sentences, display tables and the CRM export are in :mod:`analysis.report.value`.
"""

from analysis.studies.value.churn_risk import (
    ChurnRiskResult,
    churn_risk_cutoffs,
    churn_risk_features,
    fit_churn_risk,
)
from analysis.studies.value.contractual import (
    ContractualValue,
    contract_lifetimes,
    contractual_value,
)
from analysis.studies.value.protect import (
    TIERS,
    customers_to_protect,
    protect_summary,
    value_concentration,
    value_tiers,
)
from analysis.studies.value.rfm import rfm_summary
from analysis.studies.value.study import ValueStudy, value_study

__all__ = [
    "rfm_summary",
    "churn_risk_features",
    "churn_risk_cutoffs",
    "fit_churn_risk",
    "ChurnRiskResult",
    "TIERS",
    "ValueStudy",
    "value_study",
    "value_tiers",
    "value_concentration",
    "customers_to_protect",
    "protect_summary",
    "ContractualValue",
    "contract_lifetimes",
    "contractual_value",
]
