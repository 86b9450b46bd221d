"""Buy-till-you-die models of non-contractual purchasing, and customer lifetime value.

No churn date is observed; attrition is latent. Each model takes an RFM summary
(one row per customer: frequency = repeat purchases, recency t_x, age T, mean
value of repeat purchases; built by :func:`analysis.studies.value.rfm_summary`).

* :func:`fit_bgnbd` (Fader, Hardie & Lee 2005, Marketing Science 24(2)),
  :func:`fit_pareto_nbd` (Schmittlein, Morrison & Colombo 1987; likelihood as in
  Fader & Hardie 2005, "A note on deriving the Pareto/NBD model and related
  expressions") and :func:`fit_gamma_gamma` (Fader, Hardie & Lee 2005, JMR 42(4);
  Fader & Hardie 2013, "The Gamma-Gamma model of monetary value") fit by maximum
  likelihood on compressed sufficient statistics, with standard errors from the
  inverse Hessian.
* :func:`clv` combines a transaction model and the spend model into a discounted
  expected customer value over a finite horizon.
* :func:`fit_sbg` and :func:`fit_sbg_counts` fit the shifted-beta-geometric model of
  contract renewal (Fader & Hardie 2007, Journal of Interactive Marketing 21(1)): the
  contractual case, where churn is observed. :class:`SBGResult` projects survival and
  retention and values customers by their discounted expected residual lifetime
  (Fader & Hardie 2010, Marketing Science 29(1)).

Time columns of a summary are in units of its ``freq`` ("D" days, "W" weeks of
7 days, "M" months of 30.4375 days); money is in the currency of the input.
"""

from analysis.stats.btyd.bgnbd import BGNBDResult, fit_bgnbd
from analysis.stats.btyd.clv import (
    clv,
    cumulative_tracking,
    holdout_by_frequency,
    holdout_errors,
    parameter_table,
    total_clv_interval,
)
from analysis.stats.btyd.gamma_gamma import GammaGammaResult, fit_gamma_gamma
from analysis.stats.btyd.pareto_nbd import ParetoNBDResult, fit_pareto_nbd
from analysis.stats.btyd.sbg import SBGResult, fit_sbg, fit_sbg_counts
from analysis.stats.btyd.units import FREQ_DAYS

__all__ = [
    "FREQ_DAYS",
    "BGNBDResult",
    "ParetoNBDResult",
    "GammaGammaResult",
    "SBGResult",
    "fit_bgnbd",
    "fit_pareto_nbd",
    "fit_gamma_gamma",
    "fit_sbg",
    "fit_sbg_counts",
    "clv",
    "total_clv_interval",
    "parameter_table",
    "holdout_by_frequency",
    "holdout_errors",
    "cumulative_tracking",
]
