"""The observed life table of contract renewals, to check a fitted sBG model against.

Fader & Hardie (2007) judge the shifted-beta-geometric model by comparing its
survival curve S(t) with the share of each cohort still active; with customers
acquired at different times (different observation lengths) that share is the
Kaplan-Meier product of the observed retention rates at each renewal opportunity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["life_table"]


def life_table(periods, churned) -> pd.DataFrame:
    """Tabulate observed renewals: customers at risk, churned and retention at each opportunity.

    The discrete-time life table of customers observed from acquisition (one row per
    customer in: ``periods`` renewals made, ``churned`` whether they then left). At
    opportunity ``t`` the customers at risk are those who made ``t - 1`` renewals and
    were still observed (left at ``t`` or later, or still active after ``t`` or more
    renewals); the Kaplan-Meier product of the retention rates is the share of a new
    cohort still active after ``t`` renewals, comparable with :meth:`SBGResult.survival`.

    Parameters
    ----------
    periods : array_like of int
        Renewals made by each customer.
    churned : array_like of bool
        Whether the customer left (after those renewals).

    Returns
    -------
    pandas.DataFrame
        One row per opportunity ``t`` = 1, 2, ... with at least one customer at risk:
        ``t``, ``at_risk``, ``churned``, ``retention`` (observed share renewing) and
        ``survival`` (Kaplan-Meier share of a new cohort still active after ``t``).
    """
    k = np.asarray(periods, float).astype(int)
    c = np.asarray(churned, bool)
    if k.size == 0:
        return pd.DataFrame(columns=["t", "at_risk", "churned", "retention", "survival"])
    last = np.where(c, k + 1, k)  # last opportunity at which the customer was observed
    t_max = int(last.max())
    t = np.arange(1, t_max + 1)
    n_last = np.bincount(last, minlength=t_max + 2)
    at_risk = n_last[::-1].cumsum()[::-1][1 : t_max + 1]
    left = np.bincount(k[c] + 1, minlength=t_max + 2)[1 : t_max + 1]
    keep = at_risk > 0
    ret = 1 - left[keep] / at_risk[keep]
    return pd.DataFrame(
        {
            "t": t[keep],
            "at_risk": at_risk[keep],
            "churned": left[keep],
            "retention": ret,
            "survival": np.cumprod(ret),
        }
    )
