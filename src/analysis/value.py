"""Customer value and churn risk: RFM summaries, buy-till-you-die models, CLV, churn-risk model.

Non-contractual value models (no churn date is observed, attrition is latent):

* :func:`rfm_summary` turns a transaction log into one row per customer with the
  sufficient statistics of the BG/NBD and Pareto/NBD models (frequency = repeat
  purchases, recency t_x, age T) and the mean value of repeat purchases.
* :func:`fit_bgnbd` (Fader, Hardie & Lee 2005, Marketing Science 24(2)),
  :func:`fit_pareto_nbd` (Schmittlein, Morrison & Colombo 1987; likelihood as in
  Fader & Hardie 2005, "A note on deriving the Pareto/NBD model and related
  expressions") and :func:`fit_gamma_gamma` (Fader, Hardie & Lee 2005, JMR 42(4);
  Fader & Hardie 2013, "The Gamma-Gamma model of monetary value") fit by maximum
  likelihood on compressed sufficient statistics, with standard errors from the
  inverse Hessian.
* :func:`clv` combines a transaction model and the spend model into a discounted
  expected customer value over a finite horizon.

Contractual churn risk (a churn date or an inactivity rule defines the label):

* :func:`churn_risk_features`, :func:`fit_churn_risk` and the helpers below build
  a time-split scikit-learn model with AUC, calibration, gains and permutation
  importance.

Time columns of a summary are in units of its ``freq`` ("D" days, "W" weeks of
7 days, "M" months of 30.4375 days); money is in the currency of the input.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special
from threadpoolctl import threadpool_limits

from analysis.errors import AnalysisError, Problem, examples_of

__all__ = [
    "FREQ_DAYS",
    "BGNBDResult",
    "ParetoNBDResult",
    "GammaGammaResult",
    "rfm_summary",
    "fit_bgnbd",
    "fit_pareto_nbd",
    "fit_gamma_gamma",
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
]

#: Length of one time unit in days.
FREQ_DAYS = {"D": 1.0, "W": 7.0, "M": 30.4375}


def _unit_days(freq: str) -> float:
    try:
        return FREQ_DAYS[freq]
    except KeyError:
        raise AnalysisError(
            f"Unknown time unit freq={freq!r}.",
            [
                Problem(
                    "params",
                    "value.freq",
                    "unknown_freq",
                    f"freq must be one of {sorted(FREQ_DAYS)}",
                    fix='use "D" (days), "W" (weeks) or "M" (months of 30.4375 days)',
                )
            ],
        ) from None


def _day_numbers(values, *, table: str, column: str) -> np.ndarray:
    """Return dates as int64 day numbers since 1970-01-01, raising on missing or bad dates."""
    try:
        dt = pd.to_datetime(values)
    except (ValueError, TypeError) as err:
        raise AnalysisError(
            f"Column {column!r} of {table} cannot be read as dates.",
            [Problem(table, column, "bad_date", str(err), fix="store dates as YYYY-MM-DD")],
        ) from err
    arr = np.asarray(dt, dtype="datetime64[ns]")
    bad = np.isnat(arr)
    if bad.any():
        raise AnalysisError(
            f"{int(bad.sum()):,} rows of {table} have no {column}.",
            [
                Problem(
                    table,
                    column,
                    "missing_date",
                    "missing dates",
                    n_rows=int(bad.sum()),
                    fix="drop or repair rows without a date before the value study",
                )
            ],
        )
    return arr.astype("datetime64[D]").astype(np.int64)


def _as_day(value, name: str) -> int:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise AnalysisError(f"{name}={value!r} is not a date.") from err
    if pd.isna(ts):
        raise AnalysisError(f"{name} is missing; give a date such as 1997-09-30.")
    return int(np.datetime64(ts.normalize().to_datetime64(), "D").astype(np.int64))


# ---------------------------------------------------------------------------
# RFM summary
# ---------------------------------------------------------------------------


def rfm_summary(
    transactions: pd.DataFrame,
    *,
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str = "amount",
    calibration_end,
    observation_end=None,
    freq: str = "W",
    margin: str | None = None,
) -> pd.DataFrame:
    """Summarise a transaction log into one row per customer (recency, frequency, value).

    Several purchases by one customer on one day are merged into one transaction
    (their amounts summed) before anything is counted, as in Fader, Hardie & Lee
    (2005). Only customers with a purchase on or before ``calibration_end`` are
    included; time zero of each customer is the first purchase in the data.

    Parameters
    ----------
    transactions : pandas.DataFrame
        One row per purchase.
    customer_id, date, amount : str
        Column names: customer key, purchase date (day precision), purchase value
        (currency).
    calibration_end : date-like
        Last day (inclusive) of the calibration period.
    observation_end : date-like, optional
        Last day (inclusive) of the holdout period. When given, holdout columns are added.
    freq : {"D", "W", "M"}
        Time unit of ``recency``, ``T`` and ``duration_holdout``: days, weeks (7 days)
        or months (30.4375 days).
    margin : str, optional
        Column with the gross margin of each purchase (currency); adds ``margin_ratio``
        (calibration margin / calibration revenue).

    Returns
    -------
    pandas.DataFrame
        One row per customer: ``customer_id``; ``first_purchase`` (date);
        ``frequency`` (repeat transactions in the calibration period); ``recency``
        (time of the last repeat transaction since the first purchase, 0 without
        repeats); ``T`` (time from the first purchase to ``calibration_end``);
        ``monetary_value`` (mean value of the repeat transactions, NaN without
        repeats); ``first_value`` (value of the first day's purchases);
        ``calibration_value`` (total value in the calibration period); optionally
        ``margin_ratio``; with ``observation_end``: ``frequency_holdout``
        (transactions in the holdout), ``value_holdout`` (their total value),
        ``duration_holdout`` (holdout length). ``df.attrs`` records ``freq``,
        ``calibration_end`` and ``observation_end``.
    """
    unit = _unit_days(freq)
    missing = [c for c in (customer_id, date, amount) if c not in transactions.columns]
    if margin is not None and margin not in transactions.columns:
        missing.append(margin)
    if missing:
        raise AnalysisError(
            f"transactions lacks column(s) {missing}.",
            [
                Problem(
                    "transactions",
                    c,
                    "missing_column",
                    "column not found",
                    fix=f"rename a column to {c!r} or pass its name",
                )
                for c in missing
            ],
        )
    cal_end = _as_day(calibration_end, "calibration_end")
    obs_end = None if observation_end is None else _as_day(observation_end, "observation_end")
    if obs_end is not None and obs_end <= cal_end:
        raise AnalysisError(
            f"observation_end ({observation_end}) must be after calibration_end ({calibration_end})."
        )
    days = _day_numbers(transactions[date], table="transactions", column=date)
    amounts = pd.to_numeric(transactions[amount], errors="coerce").to_numpy(dtype=float)
    bad_amount = np.isnan(amounts)
    if bad_amount.any():
        raise AnalysisError(
            f"{int(bad_amount.sum()):,} transactions have no numeric {amount}.",
            [
                Problem(
                    "transactions",
                    amount,
                    "missing_amount",
                    "missing or non-numeric amounts",
                    n_rows=int(bad_amount.sum()),
                    examples=examples_of(transactions.loc[bad_amount, customer_id]),
                    fix="repair or drop these rows",
                )
            ],
        )
    codes, uniques = pd.factorize(transactions[customer_id], sort=False)
    if (codes < 0).any():
        raise AnalysisError(
            f"{int((codes < 0).sum()):,} transactions have no {customer_id}.",
            [
                Problem(
                    "transactions",
                    customer_id,
                    "missing_key",
                    "missing customer ids",
                    n_rows=int((codes < 0).sum()),
                    fix="drop these rows",
                )
            ],
        )
    end = obs_end if obs_end is not None else cal_end
    keep = days <= end
    codes = codes[keep].astype(np.int64)
    days = days[keep]
    amounts = amounts[keep]
    margins = None
    if margin is not None:
        margins = pd.to_numeric(transactions[margin], errors="coerce").to_numpy(dtype=float)[keep]
        margins = np.nan_to_num(margins, nan=0.0)

    # Merge same-day purchases: sort on one int64 key (customer, day).
    dmin = int(days.min()) if days.size else 0
    span = int(days.max()) - dmin + 1 if days.size else 1
    key = codes * span + (days - dmin)
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if key.size else np.array([], int)
    day_amount = np.add.reduceat(amounts[order], starts) if key.size else np.array([])
    day_margin = (
        np.add.reduceat(margins[order], starts) if margins is not None and key.size else None
    )
    ukey = key[starts]
    cust = ukey // span
    day = ukey % span + dmin

    in_cal = day <= cal_end
    c_cust = cust[in_cal]
    c_day = day[in_cal]
    c_amt = day_amount[in_cal]
    # Customers (contiguous, day ascending within a customer).
    cstarts = (
        np.flatnonzero(np.r_[True, c_cust[1:] != c_cust[:-1]]) if c_cust.size else np.array([], int)
    )
    cends = np.r_[cstarts[1:], c_cust.size].astype(int)
    who = c_cust[cstarts]
    n_days = cends - cstarts
    first = c_day[cstarts]
    last = c_day[cends - 1]
    total = np.add.reduceat(c_amt, cstarts) if c_cust.size else np.array([])
    first_val = c_amt[cstarts]
    x = n_days - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        mval = np.where(x > 0, (total - first_val) / np.maximum(x, 1), np.nan)
    out = pd.DataFrame(
        {
            "customer_id": uniques.take(who) if len(who) else pd.Index([], dtype=object),
            "first_purchase": first.astype("datetime64[D]").astype("datetime64[s]"),
            "frequency": x.astype(np.int64),
            "recency": (last - first) / unit,
            "T": (cal_end - first) / unit,
            "monetary_value": mval,
            "first_value": first_val,
            "calibration_value": total,
        }
    )
    out["customer_id"] = np.asarray(uniques.take(who)) if len(who) else []
    if day_margin is not None:
        c_mar = day_margin[in_cal]
        tot_m = np.add.reduceat(c_mar, cstarts) if c_cust.size else np.array([])
        with np.errstate(invalid="ignore", divide="ignore"):
            out["margin_ratio"] = np.where(total != 0, tot_m / total, np.nan)
    if obs_end is not None:
        h = ~in_cal
        n_cust_all = len(uniques)
        cnt = np.bincount(cust[h], minlength=n_cust_all)
        val = np.bincount(cust[h], weights=day_amount[h], minlength=n_cust_all)
        out["frequency_holdout"] = cnt[who].astype(np.int64)
        out["value_holdout"] = val[who]
        out["duration_holdout"] = (obs_end - cal_end) / unit
    out.attrs.update(
        {
            "freq": freq,
            "calibration_end": str(np.datetime64(cal_end, "D")),
            "observation_end": None if obs_end is None else str(np.datetime64(obs_end, "D")),
        }
    )
    return out


def _summary_arrays(summary: pd.DataFrame, frequency="frequency", recency="recency", T="T"):
    missing = [c for c in (frequency, recency, T) if c not in summary.columns]
    if missing:
        raise AnalysisError(
            f"summary lacks column(s) {missing}; build it with value.rfm_summary().",
        )
    x = summary[frequency].to_numpy(dtype=float)
    tx = summary[recency].to_numpy(dtype=float)
    TT = summary[T].to_numpy(dtype=float)
    bad = (
        ~np.isfinite(x)
        | ~np.isfinite(tx)
        | ~np.isfinite(TT)
        | (x < 0)
        | (tx < 0)
        | (tx > TT + 1e-9)
    )
    if bad.any():
        raise AnalysisError(
            f"{int(bad.sum()):,} summary rows have impossible (frequency, recency, T).",
            [
                Problem(
                    "summary",
                    None,
                    "bad_rfm",
                    "need frequency >= 0 and 0 <= recency <= T",
                    n_rows=int(bad.sum()),
                    fix="rebuild the summary with value.rfm_summary()",
                )
            ],
        )
    return x, tx, TT


def _compress(*cols: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Group identical rows of the given columns and return (unique columns, counts)."""
    df = pd.DataFrame({f"c{i}": c for i, c in enumerate(cols)})
    g = df.groupby(list(df.columns), sort=False, observed=True).size()
    idx = g.index.to_frame(index=False)
    return [idx[c].to_numpy(dtype=float) for c in df.columns], g.to_numpy(dtype=float)


# ---------------------------------------------------------------------------
# Maximum likelihood machinery
# ---------------------------------------------------------------------------


def _numeric_gradient(f, theta, h=1e-5):
    g = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        g[i] = (f(theta + e) - f(theta - e)) / (2 * h)
    return g


def _numeric_hessian(f, theta, h=1e-4):
    k = theta.size
    H = np.empty((k, k))
    f0 = f(theta)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h
        H[i, i] = (f(theta + ei) - 2 * f0 + f(theta - ei)) / h**2
        for j in range(i + 1, k):
            ej = np.zeros(k)
            ej[j] = h
            v = (
                f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)
            ) / (4 * h**2)
            H[i, j] = H[j, i] = v
    return H


@dataclass
class _MLE:
    params: pd.Series
    se: pd.Series
    cov: pd.DataFrame
    loglik: float
    n_customers: int
    iterations: int


def _fit_mle(nll_mean, names, starts, n_total, model, grad_mean=None) -> _MLE:
    """Minimise a mean negative log-likelihood over log-parameters; SEs from the Hessian.

    ``nll_mean(log_params)`` returns the negative log-likelihood divided by the
    number of customers (better conditioned for the optimiser); ``grad_mean`` its
    gradient with respect to the log-parameters, when available. Each start runs
    L-BFGS-B; Nelder-Mead and BFGS polish only if the gradient check fails.
    """

    def safe(theta):
        with np.errstate(all="ignore"):
            v = nll_mean(theta)
        return v if np.isfinite(v) else 1e100

    def safe_grad(theta):
        with np.errstate(all="ignore"):
            g = grad_mean(theta)
        return g if np.all(np.isfinite(g)) else np.zeros_like(theta)

    def grad_at(theta):
        return safe_grad(theta) if grad_mean is not None else _numeric_gradient(safe, theta)

    def converged(res):
        return (
            np.isfinite(res.fun)
            and res.fun < 1e99
            and np.max(np.abs(grad_at(res.x))) <= 1e-5
            and np.all(np.abs(res.x) < 11.5)
        )

    best = None
    for s in starts:
        theta0 = np.log(np.asarray(s, dtype=float))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            cand = optimize.minimize(
                safe,
                theta0,
                jac=safe_grad if grad_mean is not None else None,
                method="L-BFGS-B",
                bounds=[(-12.0, 12.0)] * len(names),
                options={"maxiter": 3000, "ftol": 1e-15, "gtol": 1e-10},
            )
            if not converged(cand):
                res2 = optimize.minimize(
                    safe,
                    cand.x,
                    method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 4000, "maxfev": 8000},
                )
                if res2.fun < cand.fun:
                    cand = res2
                res3 = optimize.minimize(
                    safe,
                    cand.x,
                    jac=safe_grad if grad_mean is not None else None,
                    method="BFGS",
                    options={"gtol": 1e-10},
                )
                if res3.fun <= cand.fun:
                    cand = res3
        if best is None or cand.fun < best.fun:
            best = cand
        if converged(best):
            break
    theta = best.x
    fval = best.fun
    if not np.isfinite(fval) or fval >= 1e99:
        raise AnalysisError(
            f"{model}: the likelihood could not be evaluated at any starting value.",
            [
                Problem(
                    "summary",
                    None,
                    "fit_failed",
                    "non-finite log-likelihood",
                    fix="check the summary for extreme values",
                )
            ],
        )
    grad = grad_at(theta)
    if np.max(np.abs(grad)) > 1e-4 or np.any(np.abs(theta) > 11.5):
        raise AnalysisError(
            f"{model}: maximum likelihood did not converge (max |gradient| = "
            f"{np.max(np.abs(grad)):.2g} per customer; log-parameters {np.round(theta, 2).tolist()}).",
            [
                Problem(
                    "summary",
                    None,
                    "not_converged",
                    "optimiser stopped away from an interior maximum",
                    n_rows=int(n_total),
                    fix="the data may not identify the model (too few repeat purchases or too short a calibration period)",
                )
            ],
        )
    params = np.exp(theta)

    def total_nll(p):
        with np.errstate(all="ignore"):
            return nll_mean(np.log(p)) * n_total

    H = _hessian_natural(total_nll, params)
    try:
        cov = np.linalg.inv(H)
        ok = np.all(np.isfinite(cov)) and np.all(np.diag(cov) > 0)
    except np.linalg.LinAlgError:
        ok = False
    if not ok:
        raise AnalysisError(
            f"{model}: the Hessian at the maximum is not positive definite; standard errors are undefined.",
            [
                Problem(
                    "summary",
                    None,
                    "singular_hessian",
                    "flat or degenerate likelihood",
                    n_rows=int(n_total),
                    fix="use more data or a longer calibration period",
                )
            ],
        )
    se = np.sqrt(np.diag(cov))
    return _MLE(
        params=pd.Series(params, index=names, name="estimate"),
        se=pd.Series(se, index=names, name="se"),
        cov=pd.DataFrame(cov, index=names, columns=names),
        loglik=float(-fval * n_total),
        n_customers=int(n_total),
        iterations=int(getattr(best, "nit", 0)),
    )


def _hessian_natural(f, p):
    """Central-difference Hessian in natural parameters with relative steps."""
    k = p.size
    h = 1e-4 * np.maximum(np.abs(p), 1e-3)
    H = np.empty((k, k))
    f0 = f(p)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h[i]
        H[i, i] = (f(p + ei) - 2 * f0 + f(p - ei)) / h[i] ** 2
        for j in range(i + 1, k):
            ej = np.zeros(k)
            ej[j] = h[j]
            v = (f(p + ei + ej) - f(p + ei - ej) - f(p - ei + ej) + f(p - ei - ej)) / (
                4 * h[i] * h[j]
            )
            H[i, j] = H[j, i] = v
    return H


# ---------------------------------------------------------------------------
# BG/NBD
# ---------------------------------------------------------------------------


def _bgnbd_loglik(params, x, tx, T):
    """Per-customer log-likelihood of the BG/NBD model, FHL (2005) eq. 6, in log space."""
    r, alpha, a, b = params
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    l1 = special.betaln(a, b + x) - special.betaln(a, b) - (r + x) * np.log(alpha + T)
    pos = x > 0
    l2 = np.full_like(x, -np.inf)
    xp = x[pos]
    l2[pos] = (
        special.betaln(a + 1, b + xp - 1)
        - special.betaln(a, b)
        - (r + xp) * np.log(alpha + tx[pos])
    )
    return common + np.logaddexp(l1, l2)


def _bgnbd_grad(params, x, tx, T, w):
    """Gradient of the weighted BG/NBD log-likelihood with respect to (r, alpha, a, b)."""
    r, alpha, a, b = params
    dg = special.digamma
    l1 = special.betaln(a, b + x) - (r + x) * np.log(alpha + T)
    pos = x > 0
    l2 = np.full_like(x, -np.inf)
    l2[pos] = special.betaln(a + 1, b + x[pos] - 1) - (r + x[pos]) * np.log(alpha + tx[pos])
    m = np.logaddexp(l1, l2)
    w1 = np.exp(l1 - m)
    w2 = np.exp(l2 - m)
    xm1 = np.where(pos, x - 1, 0.0)
    d_r = dg(r + x) - dg(r) + np.log(alpha) - w1 * np.log(alpha + T) - w2 * np.log(alpha + tx)
    d_alpha = r / alpha - w1 * (r + x) / (alpha + T) - w2 * (r + x) / (alpha + tx)
    base_a = -(dg(a) - dg(a + b))
    base_b = -(dg(b) - dg(a + b))
    d_a = base_a + w1 * (dg(a) - dg(a + b + x)) + w2 * (dg(a + 1) - dg(a + b + x))
    d_b = (
        base_b
        + w1 * (dg(b + x) - dg(a + b + x))
        + w2 * np.where(pos, dg(b + xm1) - dg(a + b + x), 0.0)
    )
    return np.array([np.dot(w, d_r), np.dot(w, d_alpha), np.dot(w, d_a), np.dot(w, d_b)])


def _bgnbd_log_odds_dead(params, x, tx, T):
    """log of  a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x)  for x > 0, -inf for x = 0."""
    r, alpha, a, b = params
    out = np.full(np.broadcast(x, tx, T).shape, -np.inf)
    x, tx, T = np.broadcast_arrays(
        np.asarray(x, float), np.asarray(tx, float), np.asarray(T, float)
    )
    pos = x > 0
    out[pos] = (
        np.log(a)
        - np.log(b + x[pos] - 1)
        + (r + x[pos]) * (np.log(alpha + T[pos]) - np.log(alpha + tx[pos]))
    )
    return out


@dataclass
class BGNBDResult:
    """A fitted BG/NBD model (Fader, Hardie & Lee 2005).

    Attributes
    ----------
    params : pandas.Series
        r, alpha (transaction-rate gamma shape and scale; alpha in units of ``freq``),
        a, b (beta dropout-probability shape parameters).
    se : pandas.Series
        Standard errors from the inverse Hessian of the log-likelihood.
    cov : pandas.DataFrame
        Covariance matrix of the estimates.
    loglik : float
        Maximised log-likelihood.
    n_customers : int
        Customers in the fit.
    freq : str
        Time unit of the summary.
    """

    params: pd.Series
    se: pd.Series
    cov: pd.DataFrame
    loglik: float
    n_customers: int
    freq: str = "W"
    model: str = field(default="BG/NBD")

    def _p(self):
        return tuple(float(self.params[k]) for k in ("r", "alpha", "a", "b"))

    def expected_transactions(self, t):
        """Return E[X(t)], expected repeat transactions in (0, t] for a new customer.

        FHL (2005) eq. 7, computed with the Euler transformation of Fader & Hardie
        (2013, "Overcoming the BG/NBD model's #NUM! error problem") for stability.
        ``t`` is in units of ``freq``.
        """
        r, alpha, a, b = self._p()
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        with np.errstate(all="ignore"):
            f = (1 - z) ** (a - 1) * special.hyp2f1(a + b - 1 - r, a - 1, a + b - 1, z)
            return (a + b - 1) / (a - 1) * (1 - f)

    def p_alive(self, frequency, recency, T):
        """Return P(alive at T | x, t_x, T): probability the customer has not dropped out.

        FHL (2005) eq. 11 (alive by definition when x = 0).
        """
        lo = _bgnbd_log_odds_dead(
            self._p(),
            np.asarray(frequency, float),
            np.asarray(recency, float),
            np.asarray(T, float),
        )
        return 1.0 / (1.0 + np.exp(lo))

    def conditional_expected_transactions(self, t, frequency, recency, T):
        """Return E[Y(t) | x, t_x, T]: expected transactions in (T, T + t].

        FHL (2005) eq. 10 with the Euler transformation of the hypergeometric term.
        All times in units of ``freq``.
        """
        r, alpha, a, b = self._p()
        x = np.asarray(frequency, dtype=float)
        tx = np.asarray(recency, dtype=float)
        TT = np.asarray(T, dtype=float)
        t = np.asarray(t, dtype=float)
        z = t / (alpha + TT + t)
        with np.errstate(all="ignore"):
            f = (1 - z) ** (a - 1) * special.hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
            num = (a + b + x - 1) / (a - 1) * (1 - f)
        return num * self.p_alive(x, tx, TT)

    def predict(self, summary: pd.DataFrame, t: float) -> pd.Series:
        """Return each customer's expected transactions in the next ``t`` time units."""
        x, tx, TT = _summary_arrays(summary)
        return pd.Series(
            self.conditional_expected_transactions(t, x, tx, TT),
            index=summary.index,
            name="expected_transactions",
        )

    def p_alive_summary(self, summary: pd.DataFrame) -> pd.Series:
        """Return each customer's P(alive) at the end of the calibration period."""
        x, tx, TT = _summary_arrays(summary)
        return pd.Series(self.p_alive(x, tx, TT), index=summary.index, name="p_alive")


def fit_bgnbd(
    summary: pd.DataFrame, *, frequency="frequency", recency="recency", T="T"
) -> BGNBDResult:
    """Fit the BG/NBD model by maximum likelihood.

    The likelihood (Fader, Hardie & Lee 2005, eq. 6) is evaluated once per distinct
    (x, t_x, T) row and weighted by its count, so large customer bases fit quickly.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`rfm_summary` (one row per customer).
    frequency, recency, T : str
        Column names of repeat transactions, recency and age (units of the summary's freq).

    Returns
    -------
    BGNBDResult
        Estimates, standard errors (inverse Hessian), log-likelihood.

    Raises
    ------
    AnalysisError
        If the optimiser does not reach an interior maximum or the Hessian is singular.
    """
    x, tx, TT = _summary_arrays(summary, frequency, recency, T)
    _require_repeaters(x, "BG/NBD")
    (ux, utx, uT), w = _compress(x, tx, TT)
    n = w.sum()

    def nll(theta):
        return -np.dot(w, _bgnbd_loglik(np.exp(theta), ux, utx, uT)) / n

    def grad(theta):
        p = np.exp(theta)
        return -_bgnbd_grad(p, ux, utx, uT, w) * p / n

    scale = max(float(np.mean(TT)), 1e-3)
    starts = [(1.0, scale / 5, 1.0, 3.0), (0.5, scale / 2, 0.5, 1.0)]
    m = _fit_mle(nll, ["r", "alpha", "a", "b"], starts, n, "BG/NBD", grad_mean=grad)
    return BGNBDResult(
        m.params, m.se, m.cov, m.loglik, m.n_customers, summary.attrs.get("freq", "W")
    )


def _require_repeaters(x, model):
    if x.size == 0:
        raise AnalysisError(f"{model}: the summary has no customers.")
    if (x > 0).sum() < 10:
        raise AnalysisError(
            f"{model}: only {(x > 0).sum()} of {x.size:,} customers made a repeat purchase; the model is not identified.",
            [
                Problem(
                    "summary",
                    "frequency",
                    "too_few_repeaters",
                    "need at least 10 repeat purchasers",
                    n_rows=int(x.size),
                    fix="use a longer calibration period or more customers",
                )
            ],
        )


# ---------------------------------------------------------------------------
# Pareto/NBD
# ---------------------------------------------------------------------------


def _log_hyp2f1(a, b, c, z):
    with np.errstate(all="ignore"):
        return np.log(special.hyp2f1(a, b, c, z))


def _pnbd_log_parts(params, x, tx, T):
    """Return (log term_alive, log term_dead) of the Pareto/NBD likelihood without the common factor.

    Likelihood (Fader & Hardie 2005 note, eq. 19-22):
    L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) * A0 ].
    """
    r, alpha, s, beta = params
    x, tx, T = np.broadcast_arrays(
        np.asarray(x, float), np.asarray(tx, float), np.asarray(T, float)
    )
    rsx = r + s + x
    log_alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    if alpha >= beta:
        base, b2 = alpha, s + 1.0
        z1 = (alpha - beta) / (alpha + tx)
        z2 = (alpha - beta) / (alpha + T)
    else:
        base, b2 = beta, r + x
        z1 = (beta - alpha) / (beta + tx)
        z2 = (beta - alpha) / (beta + T)
    la1 = _log_hyp2f1(rsx, b2, rsx + 1, z1) - rsx * np.log(base + tx)
    la2 = _log_hyp2f1(rsx, b2, rsx + 1, z2) - rsx * np.log(base + T)
    with np.errstate(all="ignore"):
        diff = la2 - la1
        log_a0 = la1 + np.log1p(-np.exp(np.minimum(diff, 0.0)))
    log_a0 = np.where(
        diff >= 0, -np.inf, log_a0
    )  # t_x == T: no time to die after the last purchase
    log_dead = np.log(s) - np.log(rsx) + log_a0
    return log_alive, log_dead


def _pnbd_loglik(params, x, tx, T):
    r, alpha, s, beta = params
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    la, ld = _pnbd_log_parts(params, x, tx, T)
    return common + np.logaddexp(la, ld)


@dataclass
class ParetoNBDResult:
    """A fitted Pareto/NBD model (Schmittlein, Morrison & Colombo 1987).

    Attributes
    ----------
    params : pandas.Series
        r, alpha (transaction-rate gamma shape and scale), s, beta (dropout-rate gamma
        shape and scale); alpha and beta in units of ``freq``.
    se, cov, loglik, n_customers, freq
        As for :class:`BGNBDResult`.
    """

    params: pd.Series
    se: pd.Series
    cov: pd.DataFrame
    loglik: float
    n_customers: int
    freq: str = "W"
    model: str = field(default="Pareto/NBD")

    def _p(self):
        return tuple(float(self.params[k]) for k in ("r", "alpha", "s", "beta"))

    def expected_transactions(self, t):
        """Return E[X(t)] for a new customer (Fader & Hardie 2005 note, eq. 17); ``t`` in ``freq`` units."""
        r, alpha, s, beta = self._p()
        t = np.asarray(t, dtype=float)
        if abs(s - 1) < 1e-8:
            return r * beta / alpha * np.log((beta + t) / beta)
        return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))

    def p_alive(self, frequency, recency, T):
        """Return P(alive at T | x, t_x, T) (Fader & Hardie 2005 note, eq. 18)."""
        la, ld = _pnbd_log_parts(self._p(), frequency, recency, T)
        return np.exp(la - np.logaddexp(la, ld))

    def conditional_expected_transactions(self, t, frequency, recency, T):
        """Return E[Y(t) | x, t_x, T], expected transactions in (T, T + t] (SMC 1987; FH note eq. 21)."""
        r, alpha, s, beta = self._p()
        x = np.asarray(frequency, float)
        TT = np.asarray(T, float)
        t = np.asarray(t, float)
        if abs(s - 1) < 1e-8:
            f = (beta + TT) * np.log((beta + TT + t) / (beta + TT))
        else:
            f = (beta + TT) / (s - 1) * (1 - ((beta + TT) / (beta + TT + t)) ** (s - 1))
        return (r + x) / (alpha + TT) * f * self.p_alive(x, recency, TT)

    def predict(self, summary: pd.DataFrame, t: float) -> pd.Series:
        """Return each customer's expected transactions in the next ``t`` time units."""
        x, tx, TT = _summary_arrays(summary)
        return pd.Series(
            self.conditional_expected_transactions(t, x, tx, TT),
            index=summary.index,
            name="expected_transactions",
        )

    def p_alive_summary(self, summary: pd.DataFrame) -> pd.Series:
        """Return each customer's P(alive) at the end of the calibration period."""
        x, tx, TT = _summary_arrays(summary)
        return pd.Series(self.p_alive(x, tx, TT), index=summary.index, name="p_alive")


def fit_pareto_nbd(
    summary: pd.DataFrame, *, frequency="frequency", recency="recency", T="T"
) -> ParetoNBDResult:
    """Fit the Pareto/NBD model by maximum likelihood.

    The log-likelihood is computed in log space with scipy's Gauss hypergeometric
    function, choosing the series argument (alpha >= beta or not) that keeps it in
    [0, 1), and taking the difference of the two hypergeometric terms with
    ``log1p`` to avoid cancellation. Identical (x, t_x, T) rows are weighted.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`rfm_summary`.
    frequency, recency, T : str
        Column names (units of the summary's freq).

    Returns
    -------
    ParetoNBDResult

    Raises
    ------
    AnalysisError
        If the fit does not converge or the Hessian is singular.
    """
    x, tx, TT = _summary_arrays(summary, frequency, recency, T)
    _require_repeaters(x, "Pareto/NBD")
    (ux, utx, uT), w = _compress(x, tx, TT)
    n = w.sum()

    def nll(theta):
        return -np.dot(w, _pnbd_loglik(np.exp(theta), ux, utx, uT)) / n

    scale = max(float(np.mean(TT)), 1e-3)
    starts = [(1.0, scale / 4, 1.0, scale / 4), (0.5, scale / 2, 0.5, scale)]
    m = _fit_mle(nll, ["r", "alpha", "s", "beta"], starts, n, "Pareto/NBD")
    return ParetoNBDResult(
        m.params, m.se, m.cov, m.loglik, m.n_customers, summary.attrs.get("freq", "W")
    )


# ---------------------------------------------------------------------------
# Gamma-Gamma
# ---------------------------------------------------------------------------


def _gg_loglik(params, x, m):
    """Per-customer log-density of the mean spend m of x transactions (Fader & Hardie 2013, eq. 3)."""
    p, q, v = params
    px = p * x
    return (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(v + m * x)
    )


@dataclass
class GammaGammaResult:
    """A fitted Gamma-Gamma spend model (Fader, Hardie & Lee 2005 JMR; Fader & Hardie 2013).

    Attributes
    ----------
    params : pandas.Series
        p (shape of transaction values around a customer's mean), q and v (shape and
        scale of the distribution of customer means; v in currency).
    se, cov, loglik, n_customers
        As for :class:`BGNBDResult`. ``n_excluded`` counts repeaters dropped for a
        non-positive mean spend.
    """

    params: pd.Series
    se: pd.Series
    cov: pd.DataFrame
    loglik: float
    n_customers: int
    n_excluded: int = 0
    model: str = field(default="Gamma-Gamma")

    def population_mean_spend(self) -> float:
        """Return E(M) = p v / (q - 1), the mean transaction value of a random customer (currency)."""
        p, q, v = (float(self.params[k]) for k in ("p", "q", "v"))
        return p * v / (q - 1) if q > 1 else np.inf

    def conditional_expected_spend(self, frequency, monetary_value):
        """Return E(M | x, m_x) = (v + m_x x) p / (p x + q - 1) (Fader & Hardie 2013, eq. 5).

        Customers without repeat transactions (x = 0 or m_x missing) get the
        population mean p v / (q - 1). Currency units.
        """
        p, q, v = (float(self.params[k]) for k in ("p", "q", "v"))
        x = np.asarray(frequency, float)
        m = np.nan_to_num(np.asarray(monetary_value, float), nan=0.0)
        x = np.where(m > 0, x, 0.0)
        return (v + m * x) * p / (p * x + q - 1)


def fit_gamma_gamma(
    summary: pd.DataFrame, *, frequency="frequency", monetary_value="monetary_value"
) -> GammaGammaResult:
    """Fit the Gamma-Gamma model of mean transaction value by maximum likelihood.

    Uses customers with at least one repeat transaction and a positive mean value
    of repeat transactions (the spend definition of Fader & Hardie 2013: the first
    purchase is excluded). Identical (x, m_x) pairs are weighted.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`rfm_summary`.
    frequency, monetary_value : str
        Column names: repeat transactions and their mean value (currency).

    Returns
    -------
    GammaGammaResult

    Raises
    ------
    AnalysisError
        If fewer than 10 customers qualify or the fit fails; also if q <= 1 (infinite mean).
    """
    for c in (frequency, monetary_value):
        if c not in summary.columns:
            raise AnalysisError(f"summary lacks column {c!r}; build it with value.rfm_summary().")
    x = summary[frequency].to_numpy(dtype=float)
    m = summary[monetary_value].to_numpy(dtype=float)
    rep = x > 0
    use = rep & np.isfinite(m) & (m > 0)
    n_excl = int((rep & ~use).sum())
    if use.sum() < 10:
        raise AnalysisError(
            f"Gamma-Gamma: only {int(use.sum())} customers have repeat purchases with positive value.",
            [
                Problem(
                    "summary",
                    monetary_value,
                    "too_few_repeaters",
                    "need at least 10",
                    fix="use a longer calibration period",
                )
            ],
        )
    (ux, um), w = _compress(x[use], m[use])
    n = w.sum()

    def nll(theta):
        return -np.dot(w, _gg_loglik(np.exp(theta), ux, um)) / n

    def grad(theta):
        p, q, v = np.exp(theta)
        dg = special.digamma
        px = p * ux
        common = dg(px + q) - np.log(v + um * ux)
        d_p = ux * (common - dg(px) + np.log(um) + np.log(ux))
        d_q = common - dg(q) + np.log(v)
        d_v = q / v - (px + q) / (v + um * ux)
        g = np.array([np.dot(w, d_p), np.dot(w, d_q), np.dot(w, d_v)])
        return -g * np.array([p, q, v]) / n

    mean_m = float(np.average(um, weights=w))
    starts = [(2.0, 3.0, mean_m), (6.0, 4.0, 2 * mean_m)]
    fit = _fit_mle(nll, ["p", "q", "v"], starts, n, "Gamma-Gamma", grad_mean=grad)
    if fit.params["q"] <= 1:
        raise AnalysisError(
            f"Gamma-Gamma: q = {fit.params['q']:.3f} <= 1, so the mean spend per customer is infinite.",
            [
                Problem(
                    "summary",
                    monetary_value,
                    "heavy_tail",
                    "spend distribution too heavy-tailed",
                    fix="check for outlying transaction values (e.g. bulk orders) before fitting",
                )
            ],
        )
    return GammaGammaResult(fit.params, fit.se, fit.cov, fit.loglik, fit.n_customers, n_excl)


# ---------------------------------------------------------------------------
# Tables from fitted models
# ---------------------------------------------------------------------------


def parameter_table(result, *, level: float = 0.95) -> pd.DataFrame:
    """Return a parameter table: estimate, standard error and a Wald interval per parameter.

    The interval is computed on the log scale (parameters are positive) and
    transformed back, so it is asymmetric and never negative.
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


def _expected_path(model, x, tx, T, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (step ends, cumulative expected transactions per customer and step)."""
    n_steps = int(np.ceil(horizon - 1e-9))
    ends = np.minimum(np.arange(1, n_steps + 1, dtype=float), horizon)
    (ux, utx, uT), _ = _compress(x, tx, T)
    key = pd.MultiIndex.from_arrays([ux, utx, uT])
    pos = key.get_indexer(pd.MultiIndex.from_arrays([x, tx, T]))
    cum = np.empty((ux.size, n_steps))
    for j, t in enumerate(ends):
        cum[:, j] = model.conditional_expected_transactions(t, ux, utx, uT)
    return ends, cum[pos]


def clv(
    transaction_model,
    gamma_gamma: GammaGammaResult,
    summary: pd.DataFrame,
    *,
    horizon: float,
    discount_rate: float,
    freq: str = "W",
    margin: float | str = 1.0,
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
    x, tx, TT = _summary_arrays(summary)
    ends, cum = _expected_path(transaction_model, x, tx, TT, float(horizon))
    inc = np.diff(np.concatenate([np.zeros((cum.shape[0], 1)), cum], axis=1), axis=1)
    disc = (1.0 + d) ** (-ends)
    spend = gamma_gamma.conditional_expected_spend(x, summary["monetary_value"].to_numpy(float))
    if isinstance(margin, str):
        if margin not in summary.columns:
            raise AnalysisError(f"summary has no margin column {margin!r}.")
        mr = summary[margin].to_numpy(float)
        mr = np.where(np.isfinite(mr), mr, np.nanmedian(mr) if np.isfinite(mr).any() else 1.0)
    else:
        mr = np.full(x.size, float(margin))
    return pd.DataFrame(
        {
            "customer_id": summary["customer_id"].to_numpy(),
            "p_alive": transaction_model.p_alive(x, tx, TT),
            "expected_transactions": cum[:, -1],
            "expected_spend": spend,
            "clv": (inc @ disc) * spend * mr,
            "clv_undiscounted": cum[:, -1] * spend * mr,
        },
        index=summary.index,
    )


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
    """
    rng = np.random.default_rng(seed)
    base = clv(
        transaction_model,
        gamma_gamma,
        summary,
        horizon=horizon,
        discount_rate=discount_rate,
        freq=freq,
        margin=margin,
    )
    totals = []
    for _ in range(n_draws):
        tm = _perturbed(transaction_model, rng)
        gg = _perturbed(gamma_gamma, rng)
        if float(gg.params["q"]) <= 1:
            continue
        with np.errstate(all="ignore"):
            v = clv(
                tm,
                gg,
                summary,
                horizon=horizon,
                discount_rate=discount_rate,
                freq=freq,
                margin=margin,
            )["clv"].sum()
        if np.isfinite(v):
            totals.append(v)
    a = (1 - level) / 2
    lo, hi = np.quantile(totals, [a, 1 - a]) if totals else (np.nan, np.nan)
    return float(base["clv"].sum()), float(lo), float(hi)


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
    """Return holdout error measures of a transaction model.

    Returns
    -------
    dict
        ``actual_total`` and ``predicted_total`` (holdout transactions), ``total_error_pct``
        (predicted vs actual, %), ``mae`` and ``rmse`` (per customer, transactions),
        ``correlation`` (Pearson, per customer), ``n_customers``.
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
        ``expected_cum``, ``calibration`` (True up to the calibration end).
    """
    freq = summary.attrs.get("freq", "W")
    unit = _unit_days(freq)
    cal_end = _as_day(summary.attrs["calibration_end"], "calibration_end")
    end = _as_day(
        summary.attrs.get("observation_end") or summary.attrs["calibration_end"], "observation_end"
    )
    first = summary["first_purchase"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    start = int(first.min())
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
    n_periods = int(np.ceil((end - start + 1) / unit))
    period = np.floor((rep - start) / unit).astype(int)
    actual = np.bincount(period, minlength=n_periods)[:n_periods].astype(float)
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
        }
    )


# ---------------------------------------------------------------------------
# Value tiers, concentration and customers to protect
# ---------------------------------------------------------------------------

TIERS = ("low", "medium", "high")


def value_tiers(values: pd.Series, *, quantiles: tuple[float, float] = (0.5, 0.8)) -> pd.Series:
    """Assign value tiers by rank: low below the first quantile, high from the second.

    Parameters
    ----------
    values : pandas.Series
        Value per customer (e.g. CLV in currency).
    quantiles : (float, float)
        Rank cut-points; (0.5, 0.8) makes the top 20% "high", the next 30% "medium".

    Returns
    -------
    pandas.Series
        Ordered categorical with levels low < medium < high, same index as ``values``.
    """
    lo, hi = quantiles
    if not (0 < lo < hi < 1):
        raise AnalysisError(
            f"tier quantiles {quantiles!r} must satisfy 0 < low < high < 1.",
            [
                Problem(
                    "params",
                    "value.tier_quantiles",
                    "bad_quantiles",
                    "not increasing in (0, 1)",
                    fix="e.g. [0.5, 0.8]",
                )
            ],
        )
    pct = values.rank(method="first", pct=True)
    lab = np.where(pct > hi, "high", np.where(pct > lo, "medium", "low"))
    return pd.Series(
        pd.Categorical(lab, categories=list(TIERS), ordered=True),
        index=values.index,
        name="value_tier",
    )


def value_concentration(
    values: pd.Series,
    *,
    top: float = 0.1,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> dict:
    """Return the share of total value held by the top ``top`` fraction of customers.

    The interval resamples customers (bootstrap), so it describes how stable the
    share is for a customer base like this one.

    Returns
    -------
    dict
        ``share`` (0-1), ``ci_lower``, ``ci_upper``, ``top`` and ``n_customers``.
    """
    v = np.sort(np.asarray(values, float))[::-1]
    v = v[np.isfinite(v)]
    n = v.size
    if n == 0 or v.sum() <= 0:
        raise AnalysisError("value_concentration: no positive values to summarise.")
    k = max(1, int(round(top * n)))
    share = v[:k].sum() / v.sum()
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        b = np.sort(rng.choice(v, n, replace=True))[::-1]
        boots.append(b[:k].sum() / b.sum())
    a = (1 - level) / 2
    lo, hi = np.quantile(boots, [a, 1 - a])
    return {
        "share": float(share),
        "ci_lower": float(lo),
        "ci_upper": float(hi),
        "top": top,
        "n_customers": int(n),
    }


def customers_to_protect(
    scores: pd.DataFrame,
    *,
    value: str = "clv",
    risk: str = "risk",
    customer_id: str = "customer_id",
    segment: str | None = "segment",
    tier_quantiles: tuple[float, float] = (0.5, 0.8),
    risk_threshold: float = 0.5,
    strategic_segments: list[str] | tuple[str, ...] = (),
    strategic_column: str | None = None,
) -> pd.DataFrame:
    """Rank customers by value at stake and flag high-value customers at high risk.

    Parameters
    ----------
    scores : pandas.DataFrame
        One row per customer with a value column (currency) and a risk column
        (probability 0-1 of being lost: churn probability from the churn-risk model,
        or 1 - P(alive) from a BG/NBD or Pareto/NBD fit).
    value, risk, customer_id, segment : str
        Column names (``segment`` may be None).
    tier_quantiles : (float, float)
        Cut-points for :func:`value_tiers`.
    risk_threshold : float
        Risk at or above which a customer counts as at risk.
    strategic_segments : sequence of str
        Segments flagged as strategic.
    strategic_column : str, optional
        Boolean column flagging strategic customers (combined with ``strategic_segments`` by OR).

    Returns
    -------
    pandas.DataFrame
        All customers sorted by ``value_at_stake`` (value x risk, currency),
        descending: ``rank``, ``customer_id``, ``segment``, ``value_tier``,
        ``strategic``, ``value``, ``risk``, ``at_risk``, ``value_at_stake``,
        ``protect`` (high tier and at risk).
    """
    for c in [value, risk, customer_id] + ([segment] if segment else []):
        if c not in scores.columns:
            raise AnalysisError(f"customers_to_protect: column {c!r} not found in scores.")
    r = scores[risk].astype(float)
    if ((r < 0) | (r > 1)).any():
        raise AnalysisError(f"Risk column {risk!r} must hold probabilities in [0, 1].")
    out = pd.DataFrame(
        {
            "customer_id": scores[customer_id].to_numpy(),
            "segment": scores[segment].astype(str).to_numpy() if segment else "all",
            "value": scores[value].astype(float).to_numpy(),
            "risk": r.to_numpy(),
        }
    )
    out["value_tier"] = value_tiers(out["value"], quantiles=tier_quantiles).to_numpy()
    strategic = out["segment"].isin(list(strategic_segments)).to_numpy()
    if strategic_column:
        if strategic_column not in scores.columns:
            raise AnalysisError(f"strategic column {strategic_column!r} not found in scores.")
        strategic = strategic | scores[strategic_column].fillna(False).astype(bool).to_numpy()
    out["strategic"] = strategic
    out["at_risk"] = out["risk"] >= risk_threshold
    out["value_at_stake"] = out["value"] * out["risk"]
    out["protect"] = (out["value_tier"] == "high") & out["at_risk"]
    out = out.sort_values(
        ["protect", "value_at_stake"], ascending=[False, False], kind="stable"
    ).reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out[
        [
            "rank",
            "customer_id",
            "segment",
            "value_tier",
            "strategic",
            "value",
            "risk",
            "at_risk",
            "value_at_stake",
            "protect",
        ]
    ]


def protect_summary(
    ranked: pd.DataFrame, *, by=("segment", "value_tier"), min_group_size: int = 10
) -> pd.DataFrame:
    """Summarise a ranked list by group: customers, at risk, to protect, value and value at stake.

    Groups with fewer than ``min_group_size`` customers have their numbers
    suppressed (NaN) and ``suppressed`` set to True.
    """
    by = list(by)
    g = ranked.groupby(by, observed=True, sort=True)
    out = g.agg(
        customers=("customer_id", "size"),
        at_risk=("at_risk", "sum"),
        to_protect=("protect", "sum"),
        strategic=("strategic", "sum"),
        value=("value", "sum"),
        value_at_stake=("value_at_stake", "sum"),
        mean_risk=("risk", "mean"),
    ).reset_index()
    small = out["customers"] < min_group_size
    num = [
        "customers",
        "at_risk",
        "to_protect",
        "strategic",
        "value",
        "value_at_stake",
        "mean_risk",
    ]
    out[num] = out[num].astype(float)
    out.loc[small, num] = np.nan
    out["suppressed"] = small
    return out


def value_findings(
    concentration: dict,
    ranked: pd.DataFrame,
    *,
    currency: str = "",
    horizon_label: str = "",
    total_clv: tuple[float, float, float] | None = None,
) -> list[str]:
    """Write the headline findings of the value study as sentences, from the numbers.

    Parameters
    ----------
    concentration : dict
        Output of :func:`value_concentration`.
    ranked : pandas.DataFrame
        Output of :func:`customers_to_protect`.
    currency : str
        Currency symbol or code placed before amounts.
    horizon_label : str
        E.g. "over the next 52 weeks", used in the sentences.
    total_clv : tuple, optional
        (estimate, lower, upper) from :func:`total_clv_interval`.
    """

    def money(v):
        return f"{currency}{v:,.0f}"

    n = len(ranked)
    high = ranked["value_tier"] == "high"
    protect = ranked["protect"]
    s = [
        f"The top {concentration['top']:.0%} of customers hold {concentration['share']:.0%} of expected value "
        f"{horizon_label} (95% bootstrap interval {concentration['ci_lower']:.0%} to {concentration['ci_upper']:.0%}; "
        f"{concentration['n_customers']:,} customers).".replace("  ", " "),
        f"{int(protect.sum()):,} of {int(high.sum()):,} high-value customers ({protect.sum() / max(high.sum(), 1):.0%}) are at risk; "
        f"their expected value is {money(ranked.loc[protect, 'value'].sum())} and the value at stake "
        f"(value x risk) is {money(ranked.loc[protect, 'value_at_stake'].sum())}.",
        f"Across all {n:,} customers the value at stake is {money(ranked['value_at_stake'].sum())}, "
        f"{ranked['value_at_stake'].sum() / max(ranked['value'].sum(), 1e-12):.0%} of total expected value.",
    ]
    if int(ranked["strategic"].sum()) > 0:
        st = ranked["strategic"] & protect
        s.append(
            f"{int(st.sum()):,} of the customers to protect are in strategic segments "
            f"(value at stake {money(ranked.loc[st, 'value_at_stake'].sum())})."
        )
    if total_clv is not None:
        est, lo, hi = total_clv
        s.insert(
            0,
            f"Expected customer value {horizon_label} is {money(est)} in total "
            f"(95% interval from parameter uncertainty {money(lo)} to {money(hi)}).".replace(
                "  ", " "
            ),
        )
    return s


# ---------------------------------------------------------------------------
# Churn-risk model (scikit-learn, time-based split)
# ---------------------------------------------------------------------------

_MONTH_DAYS = 30.4375


def churn_risk_features(
    customers: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    cutoff,
    horizon_months: float = 3.0,
    definition: str = "contractual",
    customer_id: str = "customer_id",
    signup: str = "signup_date",
    churn: str = "churn_date",
    date: str = "date",
    amount: str = "amount",
    attributes: tuple[str, ...] | list[str] = ("segment",),
    extra: pd.DataFrame | None = None,
    as_of=None,
) -> pd.DataFrame:
    """Build churn-risk features as of ``cutoff`` and the label "churned in the next k months".

    Only information dated on or before ``cutoff`` enters the features, so a model
    trained at one cutoff can be tested at a later one.

    Parameters
    ----------
    customers, transactions : pandas.DataFrame
        Contract tables.
    cutoff : date-like
        Feature date. Customers included: signed up on or before it and, for
        ``definition="contractual"``, not churned by it; for ``"inactivity"``, with at
        least one purchase on or before it.
    horizon_months : float
        Label window (cutoff, cutoff + horizon], months of 30.4375 days.
    definition : {"contractual", "inactivity"}
        Label: churn date inside the window (contractual), or no purchase inside the
        window (inactivity; for data without churn dates).
    customer_id, signup, churn, date, amount : str
        Column names.
    attributes : sequence of str
        Customer attribute columns used as categorical features (missing ones skipped).
    extra : pandas.DataFrame, optional
        More features (one row per customer, keyed by ``customer_id``), already
        computed as of ``cutoff`` by the caller.
    as_of : date-like, optional
        Last day the data covers; labels whose window ends after it are NaN.
        Default: the latest transaction, signup or churn date.

    Returns
    -------
    pandas.DataFrame
        One row per eligible customer: ``customer_id``, numeric features
        (``tenure_days``, ``recency_days``, ``purchases_90d``, ``purchases_365d``,
        ``spend_90d``, ``spend_365d``, ``spend_prev_90d``, ``mean_amount``,
        ``purchases_total``), the attribute columns, any extra columns, and
        ``churned`` (0/1; NaN where the label window runs past the data).
        ``attrs`` record cutoff, horizon and definition.
    """
    if definition not in ("contractual", "inactivity"):
        raise AnalysisError(f"definition={definition!r} must be 'contractual' or 'inactivity'.")
    cut = _as_day(cutoff, "cutoff")
    end = cut + int(round(horizon_months * _MONTH_DAYS))
    cust = customers[
        [c for c in [customer_id, signup, churn, *attributes] if c in customers.columns]
    ].copy()
    sdays = _day_numbers(cust[signup], table="customers", column=signup)
    cdays = None
    if definition == "contractual":
        if churn not in cust.columns:
            raise AnalysisError(
                "The contractual churn-risk label needs a churn date column.",
                [
                    Problem(
                        "customers",
                        churn,
                        "missing_column",
                        "no churn dates",
                        fix="use definition='inactivity'",
                    )
                ],
            )
        cd = pd.to_datetime(cust[churn])
        cdays = np.where(
            cd.isna(),
            np.iinfo(np.int64).max,
            np.asarray(cd, dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64),
        )
    tdays = _day_numbers(transactions[date], table="transactions", column=date)
    tc = transactions[customer_id].to_numpy()
    amt = pd.to_numeric(transactions[amount], errors="coerce").fillna(0.0).to_numpy(float)
    past = tdays <= cut
    tx = pd.DataFrame({"c": tc[past], "d": tdays[past], "a": amt[past]})
    age = cut - tx["d"].to_numpy()
    g = tx.assign(
        p90=(age < 90).astype(int),
        p365=(age < 365).astype(int),
        s90=np.where(age < 90, tx["a"], 0.0),
        s365=np.where(age < 365, tx["a"], 0.0),
        sp90=np.where((age >= 90) & (age < 180), tx["a"], 0.0),
    ).groupby("c", sort=False)
    feats = g.agg(
        last=("d", "max"),
        purchases_total=("d", "size"),
        spend_total=("a", "sum"),
        purchases_90d=("p90", "sum"),
        purchases_365d=("p365", "sum"),
        spend_90d=("s90", "sum"),
        spend_365d=("s365", "sum"),
        spend_prev_90d=("sp90", "sum"),
    )
    elig = sdays <= cut
    if cdays is not None:
        elig &= cdays > cut
    base = cust.loc[elig].copy()
    base["tenure_days"] = (cut - sdays[elig]).astype(float)
    f = feats.reindex(base[customer_id].to_numpy())
    if definition == "inactivity":
        keep = f["purchases_total"].notna().to_numpy()
        base, f = base.loc[keep], f.loc[keep]
    base["recency_days"] = np.where(
        f["last"].notna(), cut - f["last"].to_numpy(), base["tenure_days"].to_numpy()
    )
    for c in [
        "purchases_90d",
        "purchases_365d",
        "spend_90d",
        "spend_365d",
        "spend_prev_90d",
        "purchases_total",
    ]:
        base[c] = f[c].fillna(0).to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        base["mean_amount"] = np.where(
            f["purchases_total"].fillna(0) > 0, f["spend_total"] / f["purchases_total"], np.nan
        )
    # Label
    if definition == "contractual":
        cd_e = cdays[elig]
        label = ((cd_e > cut) & (cd_e <= end)).astype(float)
        base["churned"] = label
    else:
        fut = (tdays > cut) & (tdays <= end)
        buyers = pd.Index(pd.unique(tc[fut]))
        base["churned"] = (~base[customer_id].isin(buyers)).astype(float).to_numpy()
    if as_of is not None:
        tmax = _as_day(as_of, "as_of")
    else:
        cands = [int(tdays.max()) if tdays.size else cut, int(sdays.max())]
        if cdays is not None and (cdays < np.iinfo(np.int64).max).any():
            cands.append(int(cdays[cdays < np.iinfo(np.int64).max].max()))
        tmax = max(cands)
    if end > tmax:
        base["churned"] = np.nan  # the label window is not fully observed
    base = base.drop(columns=[c for c in (signup, churn) if c in base.columns])
    if extra is not None:
        base = base.merge(extra, on=customer_id, how="left", validate="one_to_one")
    base = base.reset_index(drop=True)
    base.attrs.update(
        {
            "cutoff": str(np.datetime64(cut, "D")),
            "horizon_months": horizon_months,
            "definition": definition,
        }
    )
    return base


def churn_risk_cutoffs(as_of, *, horizon_months: float = 3.0) -> dict:
    """Return the cutoffs of the time-based split: train, test and scoring dates.

    Train features at as_of - 2k months (label window ends at the test cutoff),
    test features at as_of - k months (label window ends at as_of), scoring at as_of.
    """
    a = pd.Timestamp(as_of).normalize()
    k = pd.Timedelta(days=round(horizon_months * _MONTH_DAYS))
    return {"train": (a - 2 * k).date(), "test": (a - k).date(), "score": a.date()}


@dataclass
class ChurnRiskResult:
    """A fitted churn-risk model and its out-of-time evaluation.

    Attributes
    ----------
    model : sklearn.pipeline.Pipeline
        Preprocessing and classifier, fitted on the train cutoff.
    features : list of str
        Feature columns used.
    test_predictions : pandas.DataFrame
        ``customer_id``, ``p_churn`` and ``churned`` at the test cutoff.
    auc, auc_ci : float, (float, float)
        Test ROC AUC and a bootstrap interval.
    calibration : pandas.DataFrame
        Binned mean predicted vs observed churn (see :func:`calibration_table`).
    calibration_slope, calibration_intercept : float
        Logistic recalibration of the test outcomes on logit(p): slope (ideal 1) and
        calibration-in-the-large intercept (ideal 0), with ``calibration_ci``.
    gains : pandas.DataFrame
        Lift/gains by decile of predicted risk (see :func:`gains_table`).
    importance : pandas.DataFrame
        Permutation importance (drop in test AUC) per feature, with its spread.
    base_rate_train, base_rate_test, brier : float
    """

    model: object
    features: list[str]
    test_predictions: pd.DataFrame
    auc: float
    auc_ci: tuple[float, float]
    calibration: pd.DataFrame
    calibration_slope: float
    calibration_intercept: float
    calibration_ci: dict
    gains: pd.DataFrame
    importance: pd.DataFrame
    base_rate_train: float
    base_rate_test: float
    brier: float
    n_train: int
    n_test: int

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        """Return churn probabilities for a feature frame built by :func:`churn_risk_features`."""
        return pd.Series(
            self.model.predict_proba(frame[self.features])[:, 1], index=frame.index, name="p_churn"
        )


def _feature_columns(frame: pd.DataFrame, label: str, customer_id: str):
    cols = [c for c in frame.columns if c not in (label, customer_id)]
    cat = [
        c
        for c in cols
        if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
    ]
    num = [c for c in cols if c not in cat]
    return num, cat


def fit_churn_risk(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    label: str = "churned",
    customer_id: str = "customer_id",
    model: str = "gbm",
    n_bins: int = 10,
    n_repeats: int = 5,
    n_boot: int = 200,
    seed: int = 0,
) -> ChurnRiskResult:
    """Fit a churn-risk classifier at one cutoff and evaluate it at a later one.

    Parameters
    ----------
    train, test : pandas.DataFrame
        Outputs of :func:`churn_risk_features` at an earlier (train) and a later
        (test) cutoff; rows with a missing label are dropped.
    label, customer_id : str
        Column names.
    model : {"gbm", "logistic"}
        Histogram gradient boosting (default) or a standardised logistic regression.
    n_bins : int
        Bins of the calibration table (equal-count).
    n_repeats : int
        Permutation-importance repeats.
    n_boot : int
        Bootstrap resamples for the AUC interval.
    seed : int
        Seed for the classifier, the permutations and the bootstrap.

    Returns
    -------
    ChurnRiskResult
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import brier_score_loss, roc_auc_score
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    tr = train.dropna(subset=[label])
    te = test.dropna(subset=[label])
    for name, fr in (("train", tr), ("test", te)):
        if len(fr) < 50 or fr[label].nunique() < 2:
            raise AnalysisError(
                f"Churn-risk {name} set has {len(fr):,} labelled customers and {fr[label].nunique()} outcome value(s).",
                [
                    Problem(
                        "customers",
                        label,
                        "too_few_labels",
                        "need both churners and stayers",
                        n_rows=len(fr),
                        fix="use a shorter risk horizon or a longer data window",
                    )
                ],
            )
    num, cat = _feature_columns(tr, label, customer_id)
    feats = num + cat
    num_pipe = (
        make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        if model == "logistic"
        else SimpleImputer(strategy="median", keep_empty_features=True)
    )
    pre = ColumnTransformer(
        [
            ("num", num_pipe, num),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False, min_frequency=10),
                cat,
            ),
        ]
    )
    if model == "gbm":
        clf = HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_iter=200,
            max_leaf_nodes=15,
            min_samples_leaf=40,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=seed,
        )
    elif model == "logistic":
        clf = LogisticRegression(max_iter=2000, C=1.0)
    else:
        raise AnalysisError(f"model={model!r} must be 'gbm' or 'logistic'.")
    pipe = Pipeline([("pre", pre), ("clf", clf)])
    Xtr = tr[feats].astype({c: str for c in cat})
    Xte = te[feats].astype({c: str for c in cat})
    ytr = tr[label].astype(int).to_numpy()
    yte = te[label].astype(int).to_numpy()
    # One OpenMP thread: on a shared machine, thread oversubscription makes boosting
    # tens of times slower; the data here are small.
    with threadpool_limits(1):
        pipe.fit(Xtr, ytr)
        p = pipe.predict_proba(Xte)[:, 1]
        imp = _permutation_importance(pipe, Xte, yte, feats, n_repeats=n_repeats, seed=seed)
    auc = float(roc_auc_score(yte, p))
    rng = np.random.default_rng(seed)
    boots = []
    n = yte.size
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        if yte[i].min() != yte[i].max():
            boots.append(roc_auc_score(yte[i], p[i]))
    auc_ci = tuple(float(v) for v in np.quantile(boots, [0.025, 0.975]))
    slope, intercept, cal_ci = calibration_slope_intercept(yte, p)
    importance = imp
    preds = pd.DataFrame({"customer_id": te[customer_id].to_numpy(), "p_churn": p, "churned": yte})
    return ChurnRiskResult(
        model=pipe,
        features=feats,
        test_predictions=preds,
        auc=auc,
        auc_ci=auc_ci,
        calibration=calibration_table(yte, p, n_bins=n_bins),
        calibration_slope=slope,
        calibration_intercept=intercept,
        calibration_ci=cal_ci,
        gains=gains_table(yte, p),
        importance=importance,
        base_rate_train=float(ytr.mean()),
        base_rate_test=float(yte.mean()),
        brier=float(brier_score_loss(yte, p)),
        n_train=int(ytr.size),
        n_test=int(yte.size),
    )


def _permutation_importance(model, X, y, features, *, n_repeats, seed):
    """Return the drop in test ROC AUC when each feature is shuffled (mean and sd over repeats)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    base = roc_auc_score(y, model.predict_proba(X)[:, 1])
    rows = []
    for f in features:
        drops = []
        for _ in range(n_repeats):
            Xp = X.copy()
            Xp[f] = X[f].to_numpy()[rng.permutation(len(X))]
            drops.append(base - roc_auc_score(y, model.predict_proba(Xp)[:, 1]))
        rows.append({"feature": f, "importance": float(np.mean(drops)), "sd": float(np.std(drops))})
    return pd.DataFrame(rows).sort_values("importance", ascending=False).reset_index(drop=True)


def calibration_table(y, p, *, n_bins: int = 10) -> pd.DataFrame:
    """Return equal-count bins of predicted probability with observed rates and Wilson intervals.

    Returns
    -------
    pandas.DataFrame
        ``bin``, ``n``, ``mean_predicted``, ``observed``, ``ci_lower``, ``ci_upper``
        (95% Wilson interval of the observed rate).
    """
    from statsmodels.stats.proportion import proportion_confint

    y = np.asarray(y, float)
    p = np.asarray(p, float)
    order = np.argsort(p, kind="stable")
    bins = np.empty(p.size, int)
    bins[order] = np.floor(np.arange(p.size) * n_bins / p.size).astype(int)
    df = pd.DataFrame({"bin": bins + 1, "y": y, "p": p})
    out = (
        df.groupby("bin")
        .agg(n=("y", "size"), mean_predicted=("p", "mean"), events=("y", "sum"))
        .reset_index()
    )
    out["observed"] = out["events"] / out["n"]
    lo, hi = proportion_confint(out["events"], out["n"], method="wilson")
    out["ci_lower"], out["ci_upper"] = np.asarray(lo), np.asarray(hi)
    return out[["bin", "n", "mean_predicted", "observed", "ci_lower", "ci_upper"]]


def calibration_slope_intercept(y, p) -> tuple[float, float, dict]:
    """Return the calibration slope and intercept of predicted probabilities, with 95% CIs.

    Slope: coefficient of logit(p) in a logistic regression of the outcome on
    logit(p) (1 = well calibrated; < 1 = predictions too extreme). Intercept:
    calibration-in-the-large, the intercept with logit(p) as an offset (0 = the
    average risk is right).
    """
    import statsmodels.api as sm

    y = np.asarray(y, float)
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    lp = np.log(p / (1 - p))
    m1 = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit()
    m0 = sm.GLM(y, np.ones((y.size, 1)), family=sm.families.Binomial(), offset=lp).fit()
    ci1 = m1.conf_int()
    ci0 = m0.conf_int()
    return (
        float(m1.params[1]),
        float(m0.params[0]),
        {
            "slope": (float(ci1[1, 0]), float(ci1[1, 1])),
            "intercept": (float(ci0[0, 0]), float(ci0[0, 1])),
        },
    )


def gains_table(y, p, *, n_groups: int = 10) -> pd.DataFrame:
    """Return a lift/gains table by group of predicted risk, highest risk first.

    Returns
    -------
    pandas.DataFrame
        ``group`` (1 = highest risk), ``n``, ``churners``, ``churn_rate``, ``lift``
        (rate / overall rate), ``cum_share_customers``, ``cum_share_churners`` (gains).
    """
    y = np.asarray(y, float)
    p = np.asarray(p, float)
    order = np.argsort(-p, kind="stable")
    grp = np.empty(p.size, int)
    grp[order] = np.floor(np.arange(p.size) * n_groups / p.size).astype(int) + 1
    df = pd.DataFrame({"group": grp, "y": y})
    out = df.groupby("group").agg(n=("y", "size"), churners=("y", "sum")).reset_index()
    out["churn_rate"] = out["churners"] / out["n"]
    base = y.mean() if y.size else np.nan
    out["lift"] = out["churn_rate"] / base if base > 0 else np.nan
    out["cum_share_customers"] = out["n"].cumsum() / out["n"].sum()
    out["cum_share_churners"] = out["churners"].cumsum() / max(out["churners"].sum(), 1e-12)
    return out
