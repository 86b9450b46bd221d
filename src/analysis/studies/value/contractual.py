"""Customer value for a contractual business: the sBG model and discounted residual lifetime.

Where customers have contracts (a churn date is recorded when they leave), churn is
observed and the right model of the remaining relationship is contractual: the
shifted-beta-geometric (sBG) model of Fader & Hardie (2007), fitted to the renewals
each customer made, and the discounted expected residual lifetime (DERL) of Fader &
Hardie (2010). A customer's value is their margin (or revenue) per period times
their DERL: the expected present value of the payments still to come.

Renewal periods are the params' ``analysis.period`` (a month by default): a
customer who signed up on 15 January and is active on 20 March has made two
renewals (15 February and 15 March); one whose contract ended on 20 March left at
the third renewal opportunity (15 April) after two renewals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.stats.btyd.life_table import life_table
from analysis.stats.btyd.sbg import SBGResult, fit_sbg
from analysis.studies.sections import NotEstimable

#: Renewal period lengths: months per period, or days for weeks.
_PERIOD_MONTHS = {"month": 1, "quarter": 3}
_PERIOD_DAYS = {"week": 7.0, "month": 30.4375, "quarter": 91.3125}

#: At least this many churned customers in the fit population.
MIN_CHURNED = 10


@dataclass
class ContractualValue:
    """The contractual value model of the value study (all money in the data's currency).

    Attributes
    ----------
    model : SBGResult
        The sBG fit (gamma, delta; renewal periods of ``period``).
    period : str
        Renewal period ("week", "month", "quarter").
    fit_population : str
        "acquired_in_window" (customers whose signup lies inside the data window, so
        every renewal and churn of theirs is seen) or "all" (no such customers).
    n_fit, n_churned_fit : int
        Customers in the fit and how many of them left.
    life_table : pandas.DataFrame
        Observed retention at each renewal opportunity of the fit population, with the
        model's ``model_retention`` and ``model_survival`` beside it.
    scores : pandas.DataFrame
        One row per active customer: ``customer_id``, ``renewals`` (made so far),
        ``value_per_period`` (margin or revenue per period while active),
        ``residual_lifetime`` (expected further renewals, undiscounted; infinite when
        gamma <= 1), ``derl`` (discounted), ``clv`` (value per period x DERL) and
        ``clv_horizon`` (the same over the next ``horizon_periods`` renewals).
    total, total_horizon : (float, float, float)
        Sum of ``clv`` / ``clv_horizon`` with a 95% parametric-bootstrap interval.
    discount_rate_period : float
        Discount rate per renewal period.
    horizon_periods : int
        Renewals counted in ``clv_horizon``.
    mean_churn : (float, float, float)
        Mean churn probability per period of a new customer, gamma / (gamma + delta),
        with a 95% interval (delta method on the log-odds).
    """

    model: SBGResult
    period: str
    fit_population: str
    n_fit: int
    n_churned_fit: int
    life_table: pd.DataFrame
    scores: pd.DataFrame
    total: tuple
    total_horizon: tuple
    discount_rate_period: float
    horizon_periods: int
    mean_churn: tuple


def _whole_periods(start: pd.Series, end: pd.Series, period: str, *, up: bool) -> np.ndarray:
    """Return whole renewal periods from ``start`` to ``end`` (floor, or ceiling with ``up``)."""
    s = pd.to_datetime(start)
    e = pd.to_datetime(end)
    if period in _PERIOD_MONTHS:
        k = _PERIOD_MONTHS[period]
        months = (e.dt.year - s.dt.year) * 12 + (e.dt.month - s.dt.month)
        # not yet at the day of month of the start: one month less (clipped month ends
        # count as reached: a 31 January start renews on the last day of February)
        day_s = s.dt.day.to_numpy()
        day_e = e.dt.day.to_numpy()
        month_end = (e + pd.offsets.MonthEnd(0)).dt.day.to_numpy()
        before = (day_e < day_s) & (day_e < month_end)
        whole = months.to_numpy() - before
        exact = day_e == np.minimum(day_s, month_end)
        frac_left = ~(exact & (whole % k == 0))
        q = whole // k
        if up:
            q = q + frac_left
        return q.astype(int)
    days = (e - s).dt.days.to_numpy(float) / _PERIOD_DAYS[period]
    return (np.ceil(days - 1e-9) if up else np.floor(days + 1e-9)).astype(int)


def contract_lifetimes(
    customers: pd.DataFrame, *, as_of, period: str = "month", churn: str = "churn_date"
) -> pd.DataFrame:
    """Return the renewals each customer made and whether they have left, as of ``as_of``.

    Parameters
    ----------
    customers : pandas.DataFrame
        ``customer_id``, ``signup_date`` and ``churn`` (empty while active).
    as_of : date-like
        Report date; churn after it counts as still active.
    period : {"week", "month", "quarter"}
        Renewal period.
    churn : str
        Churn-date column.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``signup_date``, ``renewals`` (whole periods: renewals made
        while active; for a customer who left, the renewals before leaving), ``churned``.
    """
    as_of = pd.Timestamp(as_of)
    signup = pd.to_datetime(customers["signup_date"])
    cd = pd.to_datetime(customers[churn]) if churn in customers.columns else pd.NaT
    churned = (cd.notna() & (cd <= as_of)).to_numpy() if churn in customers.columns else False
    churned = np.broadcast_to(churned, (len(customers),)).copy()
    end = pd.Series(np.where(churned, cd, as_of), index=customers.index).astype("datetime64[ns]")
    active_k = _whole_periods(signup, end, period, up=False)
    # A customer who left during period j (after j - 1 renewals) made j - 1 renewals.
    left_k = np.maximum(_whole_periods(signup, end, period, up=True) - 1, 0)
    renewals = np.maximum(np.where(churned, left_k, active_k), 0)
    return pd.DataFrame(
        {
            "customer_id": customers["customer_id"].to_numpy(),
            "signup_date": signup.to_numpy(),
            "renewals": renewals.astype(int),
            "churned": churned,
        }
    )


def periods_in_window(signup: pd.Series, *, window_start, as_of, period: str) -> np.ndarray:
    """Return the renewal periods each customer has been paying for inside the data window.

    A customer acquired in the window has paid for ``renewals + 1`` periods (the current
    one included); one acquired before it for the (part) periods since the window start.
    """
    ws, ao = pd.Timestamp(window_start), pd.Timestamp(as_of)
    s = pd.to_datetime(signup)
    start = s.where(s >= ws, ws)
    end = pd.Series(ao + pd.Timedelta(days=1), index=s.index)
    return np.maximum(_whole_periods(start, end, period, up=True), 1)


def contractual_value(
    customers: pd.DataFrame,
    value_in_window: pd.Series,
    *,
    as_of,
    window_start,
    period: str = "month",
    discount_rate_annual: float = 0.10,
    horizon_months: float = 12.0,
    n_draws: int = 400,
    seed: int = 0,
) -> ContractualValue:
    """Fit the sBG model to contract renewals and value every active customer.

    Parameters
    ----------
    customers : pandas.DataFrame
        ``customer_id``, ``signup_date``, ``churn_date``.
    value_in_window : pandas.Series
        Margin (or revenue) of each customer inside the data window, in currency,
        indexed by ``customer_id`` (missing: 0).
    as_of, window_start : date-like
        Report date and first day of the data.
    period : {"week", "month", "quarter"}
        Renewal period.
    discount_rate_annual : float
        Annual discount rate, converted to a rate per period (compound).
    horizon_months : float
        Horizon of ``clv_horizon`` (whole periods, at least one).
    n_draws : int
        Parameter draws of the bootstrap intervals.
    seed : int
        Seed of the draws.

    Returns
    -------
    ContractualValue

    Raises
    ------
    NotEstimable
        Too few churned customers, or an sBG likelihood without an interior maximum.
    """
    as_of, ws = pd.Timestamp(as_of), pd.Timestamp(window_start)
    life = contract_lifetimes(customers, as_of=as_of, period=period)
    in_window = (life["signup_date"] >= ws).to_numpy()
    population = "acquired_in_window"
    fit_rows = life[in_window]
    if int(fit_rows["churned"].sum()) < MIN_CHURNED:
        population = "all"
        fit_rows = life
    n_churned = int(fit_rows["churned"].sum())
    if n_churned < MIN_CHURNED:
        raise NotEstimable(
            f"Only {n_churned} customers have left so far, too few to estimate how long "
            "contracts last",
            remedy=f"It needs at least {MIN_CHURNED} customers whose contracts have ended.",
        )
    try:
        model = fit_sbg(fit_rows, periods="renewals", churned="churned")
    except NotEstimable:
        raise
    except Exception as exc:  # the sBG's own messages are technical; word them
        raise NotEstimable(
            "The contract-renewal model found no stable estimate: retention by tenure does not "
            "follow its pattern (it expects the share who renew to stay level or rise with tenure)",
            remedy="A longer history of renewals, or a constant-churn model, would allow it.",
        ) from exc
    table = life_table(fit_rows["renewals"], fit_rows["churned"])
    table["model_retention"] = model.retention_rate(table["t"].to_numpy(float))
    table["model_survival"] = model.survival(table["t"].to_numpy(float))

    days = _PERIOD_DAYS[period]
    rate = (1.0 + discount_rate_annual) ** (days / 365.25) - 1.0
    horizon = max(1, int(round(horizon_months * 30.4375 / days)))
    active = life[~life["churned"]].reset_index(drop=True)
    paid = periods_in_window(active["signup_date"], window_start=ws, as_of=as_of, period=period)
    value = value_in_window.reindex(active["customer_id"].to_numpy()).fillna(0.0).to_numpy(float)
    per_period = value / paid
    m = active["renewals"].to_numpy(float)
    derl = np.asarray(model.discounted_residual_lifetime(m, rate), float)
    within = np.asarray(model.discounted_value_within(m, rate, horizon), float)
    scores = pd.DataFrame(
        {
            "customer_id": active["customer_id"].to_numpy(),
            "renewals": active["renewals"].to_numpy(),
            "value_per_period": per_period,
            "residual_lifetime": np.asarray(model.expected_residual_lifetime(m), float),
            "derl": derl,
            "clv": per_period * derl,
            "clv_horizon": per_period * within,
        }
    )
    total = model.base_value(per_period, m, discount_rate=rate, n_draws=n_draws, seed=seed)
    total_h = model.base_value(
        per_period, m, discount_rate=rate, horizon=horizon, n_draws=n_draws, seed=seed
    )
    return ContractualValue(
        model=model,
        period=period,
        fit_population=population,
        n_fit=len(fit_rows),
        n_churned_fit=n_churned,
        life_table=table,
        scores=scores,
        total=total,
        total_horizon=total_h,
        discount_rate_period=rate,
        horizon_periods=horizon,
        mean_churn=_mean_churn(model),
    )


def _mean_churn(model: SBGResult) -> tuple[float, float, float]:
    """Return gamma / (gamma + delta) with a delta-method 95% interval on the log-odds scale."""
    g, d = float(model.params["gamma"]), float(model.params["delta"])
    est = g / (g + d)
    cov = model.cov.to_numpy(float)
    # log-odds of the mean = log gamma - log delta; gradient in (gamma, delta)
    grad = np.array([1.0 / g, -1.0 / d])
    var = float(grad @ cov @ grad)
    if not np.isfinite(var) or var < 0:
        return est, float("nan"), float("nan")
    lo_odds = np.log(g / d) + np.array([-1.96, 1.96]) * np.sqrt(var)
    lo, hi = 1.0 / (1.0 + np.exp(-lo_odds))
    return est, float(lo), float(hi)
