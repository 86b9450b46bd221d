"""Customer lifetime value, parameter tables and holdout checks of the purchase models.

:func:`clv` combines a transaction model (BG/NBD or Pareto/NBD) and the
Gamma-Gamma spend model into a discounted expected customer value over a finite
horizon; :func:`total_clv_interval` adds a parameter-uncertainty interval to the
total. The holdout functions compare a calibration-period fit with the purchases
that followed. Times are in units of the summary's ``freq``; money in the
currency of the input.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError, Problem
from analysis.stats.btyd.gamma_gamma import GammaGammaResult
from analysis.stats.btyd.mle import _compress, _summary_arrays
from analysis.stats.btyd.pareto_nbd import _PairIndex
from analysis.stats.btyd.units import _MONTH_DAYS, _as_day, _day_numbers, _unit_days

# ---------------------------------------------------------------------------
# Tables from fitted models
# ---------------------------------------------------------------------------


def parameter_table(result, *, level: float = 0.95) -> pd.DataFrame:
    """Tabulate a fitted model's parameters: estimate, standard error and Wald interval.

    The interval is computed on the log scale (parameters are positive) and
    transformed back, ``estimate * exp(+-z * se / estimate)``, so it is
    asymmetric and never negative; NaN where the standard error is NaN.

    Parameters
    ----------
    result : BGNBDResult, ParetoNBDResult, GammaGammaResult or SBGResult
        Any fitted model with ``params``, ``se``, ``model``, ``loglik`` and
        ``n_customers``.
    level : float
        Confidence level of the intervals (0.95 = 95%).

    Returns
    -------
    pandas.DataFrame
        ``model``, ``parameter``, ``estimate``, ``se``, ``ci_lower``, ``ci_upper``
        (in the parameter's own unit: e.g. BG/NBD alpha in units of ``freq``,
        Gamma-Gamma v in currency, shapes unitless), and the fit's ``loglik`` and
        ``n_customers`` repeated on every row.
    """
    from scipy.stats import norm

    z = norm.ppf(0.5 + level / 2)
    est = result.params
    se = result.se
    se_log = se / est
    return pd.DataFrame(
        {
            "model": result.model,
            "parameter": est.index,
            "estimate": est.to_numpy(),
            "se": se.to_numpy(),
            "ci_lower": (est * np.exp(-z * se_log)).to_numpy(),
            "ci_upper": (est * np.exp(z * se_log)).to_numpy(),
            "loglik": result.loglik,
            "n_customers": result.n_customers,
        }
    )


# ---------------------------------------------------------------------------
# Customer lifetime value
# ---------------------------------------------------------------------------


def _per_unit_rate(discount_rate: float, freq: str) -> float:
    """Convert an annual discount rate into the rate per ``freq`` unit (compound)."""
    if not (0 <= discount_rate < 1):
        raise AnalysisError(
            f"discount_rate={discount_rate!r} must be an annual rate in [0, 1), e.g. 0.10.",
            [
                Problem(
                    "params",
                    "value.discount_rate",
                    "bad_rate",
                    "out of range",
                    fix="use e.g. 0.10 for 10% a year",
                )
            ],
        )
    return (1.0 + discount_rate) ** (_unit_days(freq) / 365.25) - 1.0


def _check_freq(summary: pd.DataFrame, freq: str) -> None:
    have = summary.attrs.get("freq")
    if have is not None and have != freq:
        raise AnalysisError(
            f"The summary is in units of {have!r} but freq={freq!r} was given.",
            [
                Problem(
                    "summary",
                    None,
                    "unit_mismatch",
                    "time units differ",
                    fix=f"pass freq={have!r} or rebuild the summary",
                )
            ],
        )


class _ClvInputs:
    """Per-customer inputs of :func:`clv`, prepared once for many parameter draws.

    Customers with the same (x, t_x, T) have the same expected transactions, so
    the model is evaluated once per distinct row (and its hypergeometric factor once
    per distinct (x, T)) and gathered back with ``pos``.
    """

    def __init__(self, summary: pd.DataFrame, margin: float | str):
        x, tx, TT = _summary_arrays(summary)
        (ux, utx, uT), _ = _compress(x, tx, TT)
        key = pd.MultiIndex.from_arrays([ux, utx, uT])
        self.pos = key.get_indexer(pd.MultiIndex.from_arrays([x, tx, TT]))
        self.rows = _PairIndex(ux, utx, uT)
        self.x = x
        self.monetary = summary["monetary_value"].to_numpy(float)
        if isinstance(margin, str):
            if margin not in summary.columns:
                raise AnalysisError(f"summary has no margin column {margin!r}.")
            mr = summary[margin].to_numpy(float)
            mr = np.where(np.isfinite(mr), mr, np.nanmedian(mr) if np.isfinite(mr).any() else 1.0)
        else:
            mr = np.full(x.size, float(margin))
        self.margin = mr
        self.customer_id = summary["customer_id"].to_numpy()
        self.index = summary.index


def _clv_columns(
    transaction_model, gamma_gamma, inputs: _ClvInputs, *, horizon: float, rate: float, step: float
) -> dict:
    """Return the columns of :func:`clv` (per-unit discount ``rate``) as arrays."""
    n_steps = int(np.ceil(horizon / step - 1e-9))
    ends = np.minimum(np.arange(1, n_steps + 1, dtype=float) * step, horizon)
    pa, cum = transaction_model._conditional_path(ends, inputs.rows)
    disc = (1.0 + rate) ** (-ends)
    # sum_k (cum_k - cum_{k-1}) d_k = sum_k cum_k (d_k - d_{k+1}), with d_{n+1} = 0: the
    # discounted increments without two more row x step matrices (about 1 GB each at
    # ten million customers)
    discounted = cum @ (disc - np.append(disc[1:], 0.0))  # per distinct (x, t_x, T) row
    spend = gamma_gamma.conditional_expected_spend(inputs.x, inputs.monetary)
    pos = inputs.pos
    total = cum[:, -1][pos]
    return {
        "p_alive": pa[pos],
        "expected_transactions": total,
        "expected_spend": spend,
        "clv": discounted[pos] * spend * inputs.margin,
        "clv_undiscounted": total * spend * inputs.margin,
    }


def clv(
    transaction_model,
    gamma_gamma: GammaGammaResult,
    summary: pd.DataFrame,
    *,
    horizon: float,
    discount_rate: float,
    freq: str = "W",
    margin: float | str = 1.0,
    step: float = 1.0,
) -> pd.DataFrame:
    """Compute each customer's expected, discounted value over a finite horizon.

    Expected transactions per period come from the transaction model's conditional
    expectation (BG/NBD or Pareto/NBD), the value per transaction from the
    Gamma-Gamma conditional expectation; each period's cash flow is discounted to
    the end of the calibration period at the end of the period.

    Parameters
    ----------
    transaction_model : BGNBDResult or ParetoNBDResult
        Fitted on ``summary``.
    gamma_gamma : GammaGammaResult
        Fitted spend model.
    summary : pandas.DataFrame
        Output of :func:`rfm_summary`.
    horizon : float
        Length of the forecast horizon in units of ``freq`` (e.g. 52 weeks).
    discount_rate : float
        Annual discount rate (0.10 = 10% a year), converted to a rate per ``freq`` unit.
    freq : {"D", "W", "M"}
        Time unit of the summary and the horizon.
    margin : float or str
        Gross-margin ratio applied to revenue (1.0 = revenue), or the name of a
        summary column with a ratio per customer (e.g. ``margin_ratio``).
    step : float
        Length of one cash-flow period in units of ``freq`` (1: each week's expected
        purchases are discounted separately when freq is "W").

    Returns
    -------
    pandas.DataFrame
        One row per customer, in summary order: ``customer_id``, ``p_alive``,
        ``expected_transactions`` (over the horizon), ``expected_spend`` (mean value
        per transaction, currency), ``clv`` (discounted expected margin over the
        horizon, currency), ``clv_undiscounted``.
    """
    _check_freq(summary, freq)
    if not horizon > 0:
        raise AnalysisError(f"horizon={horizon!r} must be positive (units of {freq!r}).")
    d = _per_unit_rate(discount_rate, freq)
    inputs = _ClvInputs(summary, margin)
    cols = _clv_columns(
        transaction_model, gamma_gamma, inputs, horizon=float(horizon), rate=d, step=float(step)
    )
    return pd.DataFrame({"customer_id": inputs.customer_id, **cols}, index=inputs.index)


def total_clv_interval(
    transaction_model,
    gamma_gamma: GammaGammaResult,
    summary: pd.DataFrame,
    *,
    horizon: float,
    discount_rate: float,
    freq: str = "W",
    margin: float | str = 1.0,
    n_draws: int = 100,
    level: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float, float]:
    """Return the total CLV of a customer base with a parameter-uncertainty interval.

    Draws model parameters from their asymptotic normal distribution on the log
    scale (estimates and inverse-Hessian covariance of both models), recomputes the
    total, and returns (estimate, lower, upper) in currency. Sampling variation of
    future purchases is not included: the interval is for the expected value.
    The estimate discounts each ``freq`` unit separately (as :func:`clv` with
    ``step=1``); the draws use about monthly steps and are rescaled by the ratio
    of the two totals at the estimates. Draws with Gamma-Gamma ``q <= 1`` (no
    finite mean spend) or a non-finite total are discarded.

    Parameters
    ----------
    transaction_model : BGNBDResult or ParetoNBDResult
        Fitted on ``summary``, with its parameter covariance ``cov``.
    gamma_gamma : GammaGammaResult
        Fitted spend model, with its parameter covariance ``cov``.
    summary : pandas.DataFrame
        Output of :func:`rfm_summary`; every customer in it is summed.
    horizon : float
        Length of the forecast horizon in units of ``freq``; positive.
    discount_rate : float
        Annual discount rate (0.10 = 10% a year), in [0, 1).
    freq : {"D", "W", "M"}
        Time unit of the summary and the horizon.
    margin : float or str
        Gross-margin ratio, or the name of a summary column with one per
        customer (as in :func:`clv`).
    n_draws : int
        Parameter draws.
    level : float
        Confidence level of the interval (0.95 = 95%).
    seed : int or numpy.random.Generator
        Seed (or generator) of the draws.

    Returns
    -------
    (float, float, float)
        Total CLV over the horizon (currency, discounted, times the margin) and
        the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the drawn
        totals; the bounds are NaN when no draw is usable.

    Raises
    ------
    analysis.errors.AnalysisError
        If ``horizon`` is not positive, ``discount_rate`` is outside [0, 1),
        ``freq`` is unknown or differs from the summary's, or ``margin`` names
        no column.
    """
    _check_freq(summary, freq)
    if not horizon > 0:
        raise AnalysisError(f"horizon={horizon!r} must be positive (units of {freq!r}).")
    inputs = _ClvInputs(summary, margin)
    d = _per_unit_rate(discount_rate, freq)
    est = float(
        pd.Series(
            _clv_columns(
                transaction_model, gamma_gamma, inputs, horizon=float(horizon), rate=d, step=1.0
            )["clv"]
        ).sum()
    )
    return _clv_interval(
        transaction_model,
        gamma_gamma,
        inputs,
        est,
        horizon=float(horizon),
        rate=d,
        freq=freq,
        n_draws=n_draws,
        level=level,
        seed=seed,
    )


def _clv_interval(
    transaction_model,
    gamma_gamma,
    inputs: _ClvInputs,
    est: float,
    *,
    horizon: float,
    rate: float,
    freq: str,
    n_draws: int,
    level: float,
    seed,
) -> tuple[float, float, float]:
    """Return (est, lower, upper): the parameter-draw interval of :func:`total_clv_interval`."""
    rng = np.random.default_rng(seed)
    # Draws use about monthly cash-flow steps (4x to 30x fewer model evaluations);
    # the interval is taken on the ratio to the coarse estimate and rescaled.
    coarse_step = max(1.0, _MONTH_DAYS / _unit_days(freq))
    kw = dict(horizon=horizon, rate=rate, step=coarse_step)
    coarse = float(
        pd.Series(_clv_columns(transaction_model, gamma_gamma, inputs, **kw)["clv"]).sum()
    )
    totals = []
    for _ in range(n_draws):
        tm = _perturbed(transaction_model, rng)
        gg = _perturbed(gamma_gamma, rng)
        if float(gg.params["q"]) <= 1:
            continue
        with np.errstate(all="ignore"):
            v = pd.Series(_clv_columns(tm, gg, inputs, **kw)["clv"]).sum()
        if np.isfinite(v):
            totals.append(v * est / coarse)
    a = (1 - level) / 2
    lo, hi = np.quantile(totals, [a, 1 - a]) if totals else (np.nan, np.nan)
    return est, float(lo), float(hi)


def _perturbed(result, rng):
    est = result.params.to_numpy(float)
    cov = result.cov.to_numpy(float)
    cov_log = cov / np.outer(est, est)
    draw = np.exp(rng.multivariate_normal(np.log(est), cov_log))
    new = type(result).__new__(type(result))
    new.__dict__.update(result.__dict__)
    new.params = pd.Series(draw, index=result.params.index, name="estimate")
    return new


# ---------------------------------------------------------------------------
# Calibration / holdout validation
# ---------------------------------------------------------------------------


def holdout_by_frequency(summary: pd.DataFrame, model, *, max_frequency: int = 7) -> pd.DataFrame:
    """Compare predicted and actual holdout transactions by calibration frequency group.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`rfm_summary` with ``observation_end`` (holdout columns).
    model : BGNBDResult or ParetoNBDResult
        Fitted on the calibration period.
    max_frequency : int
        Frequencies at or above this value are pooled into one group (label ``"7+"``).

    Returns
    -------
    pandas.DataFrame
        One row per group: ``frequency_group``, ``n_customers``, ``actual`` and
        ``predicted`` (mean holdout transactions per customer), ``difference``.
    """
    if "frequency_holdout" not in summary.columns:
        raise AnalysisError(
            "The summary has no holdout columns; call rfm_summary(..., observation_end=...)."
        )
    x, tx, TT = _summary_arrays(summary)
    pred = model.conditional_expected_transactions(
        summary["duration_holdout"].to_numpy(float), x, tx, TT
    )
    grp = np.minimum(x, max_frequency).astype(int)
    df = pd.DataFrame(
        {"g": grp, "actual": summary["frequency_holdout"].to_numpy(float), "predicted": pred}
    )
    out = df.groupby("g").agg(
        n_customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean")
    )
    out = out.reset_index()
    out["frequency_group"] = [f"{g}+" if g == max_frequency else str(g) for g in out["g"]]
    out["difference"] = out["predicted"] - out["actual"]
    return out[["frequency_group", "n_customers", "actual", "predicted", "difference"]]


def holdout_errors(summary: pd.DataFrame, model) -> dict:
    """Measure a transaction model's errors over the holdout period.

    Each customer's prediction is the model's conditional expectation of
    transactions in their holdout period (``duration_holdout``, units of the
    summary's ``freq``) given their calibration-period ``frequency``,
    ``recency`` and ``T``; it is compared with ``frequency_holdout``.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`rfm_summary` with ``observation_end`` (holdout columns).
    model : BGNBDResult or ParetoNBDResult
        Fitted on the calibration period.

    Returns
    -------
    dict
        ``model`` (name), ``n_customers``, ``actual_total`` and ``predicted_total``
        (holdout transactions), ``total_error_pct`` (100 * (predicted - actual) /
        actual, %), ``mae`` and ``rmse`` (per customer, transactions),
        ``correlation`` (Pearson, per customer; NaN when either side is constant).

    Raises
    ------
    analysis.errors.AnalysisError
        If the summary has no holdout columns.
    """
    if "frequency_holdout" not in summary.columns:
        raise AnalysisError(
            "The summary has no holdout columns; call rfm_summary(..., observation_end=...)."
        )
    x, tx, TT = _summary_arrays(summary)
    pred = model.conditional_expected_transactions(
        summary["duration_holdout"].to_numpy(float), x, tx, TT
    )
    act = summary["frequency_holdout"].to_numpy(float)
    return {
        "model": model.model,
        "n_customers": int(act.size),
        "actual_total": float(act.sum()),
        "predicted_total": float(pred.sum()),
        "total_error_pct": float(100 * (pred.sum() - act.sum()) / max(act.sum(), 1e-12)),
        "mae": float(np.mean(np.abs(pred - act))),
        "rmse": float(np.sqrt(np.mean((pred - act) ** 2))),
        "correlation": float(np.corrcoef(pred, act)[0, 1])
        if act.std() > 0 and pred.std() > 0
        else np.nan,
    }


def cumulative_tracking(
    transactions: pd.DataFrame,
    summary: pd.DataFrame,
    model,
    *,
    customer_id: str = "customer_id",
    date: str = "date",
) -> pd.DataFrame:
    """Track actual and expected cumulative repeat transactions of the calibration cohort.

    Expected values add E[X(t - first purchase)] over customers (the model's
    unconditional expectation), as in FHL (2005) Figure 2. Same-day purchases are
    merged and each customer's first purchase is not a repeat.

    Parameters
    ----------
    transactions : pandas.DataFrame
        The transaction log used for ``summary``.
    summary : pandas.DataFrame
        Output of :func:`rfm_summary` (its customers form the cohort; ``attrs`` give
        the unit and the period ends).
    model : BGNBDResult or ParetoNBDResult
    customer_id, date : str
        Column names in ``transactions``.

    Returns
    -------
    pandas.DataFrame
        One row per period (units of the summary's freq) from the cohort's first
        purchase to the observation end: ``period``, ``period_end`` (date),
        ``actual``/``expected`` (repeat transactions in the period), ``actual_cum``,
        ``expected_cum``, ``calibration`` (True up to the calibration end), ``days``
        (days the period covers) and ``partial`` (a last period cut short by the
        observation end: its counts cover fewer days, not fewer purchases per day).
    """
    end = _as_day(
        summary.attrs.get("observation_end") or summary.attrs["calibration_end"], "observation_end"
    )
    first = summary["first_purchase"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    first_map = pd.Series(first, index=summary["customer_id"].to_numpy())
    tx = transactions[[customer_id, date]]
    days = _day_numbers(tx[date], table="transactions", column=date)
    pairs = pd.DataFrame({"c": tx[customer_id].to_numpy(), "d": days}).drop_duplicates()
    f = first_map.reindex(pairs["c"].to_numpy()).to_numpy()
    rep = pairs["d"].to_numpy()[
        np.isfinite(f)
        & (pairs["d"].to_numpy() > np.nan_to_num(f, nan=np.inf))
        & (pairs["d"].to_numpy() <= end)
    ]
    return _tracking_table(rep, summary, model)


def _tracking_table(rep: np.ndarray, summary: pd.DataFrame, model, weights=None) -> pd.DataFrame:
    """Return the :func:`cumulative_tracking` table from the repeat purchase days ``rep``
    (day numbers; with ``weights``, the number of repeat purchase days on each)."""
    freq = summary.attrs.get("freq", "W")
    unit = _unit_days(freq)
    cal_end = _as_day(summary.attrs["calibration_end"], "calibration_end")
    end = _as_day(
        summary.attrs.get("observation_end") or summary.attrs["calibration_end"], "observation_end"
    )
    first = summary["first_purchase"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    start = int(first.min())
    n_periods = int(np.ceil((end - start + 1) / unit))
    period = np.floor((rep - start) / unit).astype(int)
    actual = np.bincount(period, weights=weights, minlength=n_periods)[:n_periods].astype(float)
    # Expected: customers grouped by first purchase offset (in units).
    offs, counts = np.unique((first - start), return_counts=True)
    ends_days = np.minimum((np.arange(1, n_periods + 1)) * unit, end - start + 1)
    exp_cum = np.zeros(n_periods)
    for o, c in zip(offs, counts, strict=True):
        # customer age in units at each period end; the first purchase day counts as day 0, so the
        # cohort member's exposure starts at the end of that day.
        age = np.clip((ends_days - o - 1) / unit, 0, None)
        exp_cum += c * model.expected_transactions(age)
    expected = np.diff(np.r_[0.0, exp_cum])
    period_end = (start + ends_days - 1).astype("datetime64[D]").astype("datetime64[s]")
    return pd.DataFrame(
        {
            "period": np.arange(1, n_periods + 1),
            "period_end": period_end,
            "actual": actual,
            "expected": expected,
            "actual_cum": np.cumsum(actual),
            "expected_cum": exp_cum,
            "calibration": (start + ends_days - 1) <= cal_end,
            # days the period covers: the last one may be cut by the observation end
            "days": np.diff(np.r_[0, ends_days]).astype(int),
            "partial": np.diff(np.r_[0, ends_days]) < unit,
        }
    )
