"""Inactivity churn's first question: how many new customers never bought again, and
how soon the others came back (:func:`one_time_buyers`, part of the retention study)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from analysis.stats.survival import survival_at
from analysis.studies.sections import NotEstimable, attempt

DAYS_PER_MONTH = 30.4375  # as analysis.data.derive
S_RETURN = "Time to second purchase"


@dataclass
class OneTimeBuyers:
    """New customers who never bought again, and how soon the others returned.

    Counted: customers who started inside the data window and whose first
    purchase (or signup, without purchase) lies more than ``inactivity_days``
    before the as-of date (the window given to a second purchase; under
    inactivity churn, exactly the customers whose churn at the first purchase
    is decidable). Times in months.

    Attributes
    ----------
    n_observable : int
        Customers counted (the denominator).
    n_one_time : int
        Of them, customers with no purchase on a later day than their first.
    share, ci_lower, ci_upper : float
        ``n_one_time / n_observable`` with its Wilson 95% interval.
    n_new, n_too_recent : int
        New customers, and those too recent to tell (left out of the share).
    inactivity_days : int
    return_median, return_ci_lower, return_ci_upper : float
        Median months from first to second purchase among customers who
        returned, with a distribution-free 95% interval; NaN without
        transactions.
    n_returned : int
        Customers with a second purchase (the median's base).
    returned_by : pandas.DataFrame or Skipped or None
        horizon (months), share, ci_lower, ci_upper, at_risk: cumulative share
        of new customers who made a second purchase within that many months of
        the first (Kaplan-Meier, recent customers censored at the as-of date).
    """

    n_observable: int
    n_one_time: int
    share: float
    ci_lower: float
    ci_upper: float
    n_new: int
    n_too_recent: int
    inactivity_days: int
    return_median: float = np.nan
    return_ci_lower: float = np.nan
    return_ci_upper: float = np.nan
    n_returned: int = 0
    returned_by: object = None


def _median_ci(x: np.ndarray, alpha: float = 0.05, w=None) -> tuple[float, float, float]:
    """Return the sample median and its distribution-free (order-statistic) interval
    (``w``: customers per value, for values of rows of counts; None: one each)."""
    x = np.asarray(x, dtype=float)
    w = np.ones(len(x)) if w is None else np.asarray(w, dtype=float)
    o = np.argsort(x, kind="stable")
    x, cum = x[o], np.cumsum(w[o])
    n = int(cum[-1]) if len(cum) else 0
    if n == 0:
        return np.nan, np.nan, np.nan

    def order_stat(k: int) -> float:  # the k-th smallest value, 1-based
        return float(x[np.searchsorted(cum, k, side="left")])

    med = order_stat(n // 2 + 1) if n % 2 else 0.5 * (order_stat(n // 2) + order_stat(n // 2 + 1))
    j = int(sps.binom.ppf(alpha / 2, n, 0.5))  # x_(j) .. x_(n-j+1), 1-based
    if j < 1:
        return med, np.nan, np.nan
    return med, order_stat(j), order_stat(n - j + 1)


def one_time_buyers(
    lt: pd.DataFrame,
    *,
    as_of,
    inactivity_days: int,
    transactions: pd.DataFrame | None = None,
    horizons=(3, 6, 12),
    alpha: float = 0.05,
    weights: str | None = None,
) -> OneTimeBuyers:
    """Count new customers who never bought again, and time how soon the others returned.

    Parameters
    ----------
    lt : pandas.DataFrame
        Lifetimes with start_date, entry_days, first_purchase, last_purchase
        (and customer_id when ``transactions`` is given).
    as_of : date-like
        The as-of date of the data.
    inactivity_days : int
        Days without a purchase that define inactivity churn.
    transactions : pandas.DataFrame, optional
        customer_id and date of purchases, for the time to the second purchase: every
        purchase, or only each customer's first two purchase days
        (:meth:`analysis.data.StudyData.first_purchase_days`, built on the engine).
    horizons : sequence of float
        Months at which the cumulative share who returned is read.
    weights : str, optional
        Column of ``lt`` with the customers each row stands for (rows of counts, built on
        the engine); the second purchase then comes from the column ``second_purchase``
        (the day of the second purchase, missing for none) instead of ``transactions``.

    Returns
    -------
    OneTimeBuyers
    """
    as_of = pd.Timestamp(as_of)
    new = lt[lt["entry_days"] == 0] if "entry_days" in lt.columns else lt
    w = new[weights].to_numpy(dtype=float) if weights else np.ones(len(new))
    first = pd.to_datetime(new["first_purchase"]).fillna(pd.to_datetime(new["start_date"]))
    last = pd.to_datetime(new["last_purchase"]).fillna(first)
    age_days = (as_of - first).dt.days
    observable = age_days > inactivity_days
    one_time = last.dt.normalize() <= first.dt.normalize()
    n_obs = int(w[observable.to_numpy()].sum())
    k = int(w[(observable & one_time).to_numpy()].sum())
    if n_obs:
        lo, hi = proportion_confint(k, n_obs, alpha=alpha, method="wilson")
        share = k / n_obs
    else:
        share = lo = hi = np.nan
    out = OneTimeBuyers(
        n_observable=n_obs,
        n_one_time=k,
        share=float(share),
        ci_lower=float(lo),
        ci_upper=float(hi),
        n_new=int(w.sum()),
        n_too_recent=int(w[(~observable).to_numpy()].sum()),
        inactivity_days=int(inactivity_days),
    )
    if not len(new):
        return out
    if "second_purchase" in new.columns:
        sec = pd.to_datetime(new["second_purchase"]).dt.normalize()
    elif transactions is None or "customer_id" not in new.columns:
        return out
    else:
        tx = transactions[["customer_id", "date"]].copy()
        tx["date"] = pd.to_datetime(tx["date"]).dt.normalize()
        tx = tx[tx["customer_id"].isin(new["customer_id"])].drop_duplicates()
        tx = tx.sort_values(["customer_id", "date"])
        nth = tx.groupby("customer_id").cumcount()
        second = tx.loc[nth == 1].set_index("customer_id")["date"]  # second purchase day
        if len(second):
            sec = pd.to_datetime(new["customer_id"].map(second))
        else:  # nobody bought twice (pandas cannot map through an empty datetime Series)
            sec = pd.Series(pd.NaT, index=new.index, dtype="datetime64[ns]")
    returned = sec.notna().to_numpy()
    gap = ((sec - first).dt.days / DAYS_PER_MONTH).to_numpy()
    follow = (age_days / DAYS_PER_MONTH).to_numpy(dtype=float)
    med, mlo, mhi = _median_ci(gap[returned], alpha, w[returned])
    out.return_median, out.return_ci_lower, out.return_ci_upper = med, mlo, mhi
    out.n_returned = int(w[returned].sum())
    frame = pd.DataFrame(
        {
            "t": np.where(returned, gap, np.maximum(follow, 0.0)),
            "e": returned.astype(int),
            "_w": w,
        }
    )
    frame = frame[np.isfinite(frame["t"])]

    def _returned_by():
        if not frame["e"].sum():
            raise NotEstimable(
                "No new customer has made a second purchase yet, so the time to return cannot be "
                "measured",
                remedy="A longer history after the first purchases would allow it.",
            )
        sa = survival_at(
            frame, duration="t", event="e", times=list(horizons), alpha=alpha, weights="_w"
        )
        return pd.DataFrame(
            {
                "horizon": sa["horizon"],
                "share": 1 - sa["survival"],
                "ci_lower": 1 - sa["ci_upper"],
                "ci_upper": 1 - sa["ci_lower"],
                "at_risk": sa["at_risk"],
            }
        )

    out.returned_by = attempt(S_RETURN, _returned_by)
    return out
