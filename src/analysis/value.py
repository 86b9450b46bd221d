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
from pathlib import Path

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
    "churn_risk_cutoffs",
    "total_clv_interval",
    "ValueStudy",
    "value_study",
    "study_findings",
    "write_export",
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
    arr = np.asarray(values)
    if not np.issubdtype(arr.dtype, np.datetime64):
        try:
            arr = np.asarray(pd.to_datetime(values), dtype="datetime64[ns]")
        except (ValueError, TypeError) as err:
            raise AnalysisError(
                f"Column {column!r} of {table} cannot be read as dates.",
                [Problem(table, column, "bad_date", str(err), fix="store dates as YYYY-MM-DD")],
            ) from err
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
    unit, count = np.datetime_data(arr.dtype)
    per_day = {
        "D": 1,
        "h": 24,
        "m": 1440,
        "s": 86400,
        "ms": 86_400_000,
        "us": 86_400_000_000,
        "ns": 86_400_000_000_000,
    }.get(unit)
    if per_day is None:
        return arr.astype("datetime64[D]").astype(np.int64)
    # Integer floor division of the raw counts: much faster than a datetime cast.
    return arr.view(np.int64) * count // per_day if count != 1 else arr.view(np.int64) // per_day


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
    _unit_days(freq)  # fail early on an unknown unit
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
    margins = None
    if margin is not None:
        margins = pd.to_numeric(transactions[margin], errors="coerce").to_numpy(dtype=float)
    out, _ = _rfm_from_codes(
        codes.astype(np.int64, copy=False),
        np.asarray(uniques),
        days,
        amounts,
        margins,
        cal_end=cal_end,
        obs_end=obs_end,
        freq=freq,
    )
    return out


def _rfm_from_codes(
    codes, ids, days, amounts, margins, *, cal_end: int, obs_end, freq: str, purchase_days=None
):
    """Return (:func:`rfm_summary` frame, code of each row) from integer-coded arrays.

    ``codes`` index ``ids`` (customer ids); customers come out in ascending code
    order, so codes numbered in order of first appearance reproduce the row order of
    :func:`rfm_summary`. ``days`` are int64 day numbers; ``cal_end`` and ``obs_end``
    (or None) are day numbers. A list passed as ``purchase_days`` receives the
    (customer code, day) arrays of the distinct purchase days up to the end.
    """
    unit = _unit_days(freq)
    end = obs_end if obs_end is not None else cal_end
    keep = days <= end
    all_kept = bool(keep.all())
    codes = codes if all_kept else codes[keep]
    days = days if all_kept else days[keep]
    amounts = amounts if all_kept else amounts[keep]
    if margins is not None:
        margins = margins if all_kept else margins[keep]
        if np.isnan(margins).any():
            margins = np.nan_to_num(margins, nan=0.0)
    del keep

    # Merge same-day purchases: sort on one int64 key (customer, day), built in place.
    dmin = int(days.min()) if days.size else 0
    span = int(days.max()) - dmin + 1 if days.size else 1
    key = codes.astype(np.int64)
    key *= span
    key += days
    key -= dmin
    # Logs stored by customer and date are already in key order: skip the sort.
    order = None if np.all(key[1:] >= key[:-1]) else np.argsort(key, kind="stable")
    if order is not None:
        key = key[order]
        amounts = amounts[order]
        margins = margins[order] if margins is not None else None
    if key.size:
        change = np.empty(key.size, dtype=bool)
        change[0] = True
        np.not_equal(key[1:], key[:-1], out=change[1:])
        starts = np.flatnonzero(change)
        del change
    else:
        starts = np.array([], int)
    day_amount = np.add.reduceat(amounts, starts) if key.size else np.array([])
    day_margin = np.add.reduceat(margins, starts) if margins is not None and key.size else None
    ukey = key[starts]
    del key, order, amounts, margins, starts
    cust = ukey // span
    # day = key - cust * span + dmin, in place (cheaper than a second integer division)
    day = ukey
    day -= cust * span
    day += dmin
    del ukey

    in_cal = day <= cal_end
    all_cal = bool(in_cal.all())  # scoring summaries: no copies
    c_cust = cust if all_cal else cust[in_cal]
    c_day = day if all_cal else day[in_cal]
    c_amt = day_amount if all_cal else day_amount[in_cal]
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
            "customer_id": ids[who] if len(who) else pd.Index([], dtype=object),
            "first_purchase": first.astype("datetime64[D]").astype("datetime64[s]"),
            "frequency": x.astype(np.int64),
            "recency": (last - first) / unit,
            "T": (cal_end - first) / unit,
            "monetary_value": mval,
            "first_value": first_val,
            "calibration_value": total,
        }
    )
    out["customer_id"] = ids[who] if len(who) else []
    if day_margin is not None:
        c_mar = day_margin if all_cal else day_margin[in_cal]
        tot_m = np.add.reduceat(c_mar, cstarts) if c_cust.size else np.array([])
        with np.errstate(invalid="ignore", divide="ignore"):
            out["margin_ratio"] = np.where(total != 0, tot_m / total, np.nan)
    if obs_end is not None:
        h = ~in_cal
        n_cust_all = len(ids)
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
    if purchase_days is not None:
        purchase_days.extend([cust, day])
    return out, who


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
    """Run :func:`_fit_mle_impl` with one BLAS/OpenMP thread.

    The vectors are long but the operations are simple; on a shared machine,
    multi-threaded BLAS calls inside the optimiser are many times slower.
    """
    with threadpool_limits(1):
        return _fit_mle_impl(nll_mean, names, starts, n_total, model, grad_mean)


def _fit_mle_impl(nll_mean, names, starts, n_total, model, grad_mean=None) -> _MLE:
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


class _BGNBDData:
    """Weighted BG/NBD data indexed by distinct x, t_x and T values.

    Terms that depend on the parameters and only one of x, t_x or T are computed
    once per distinct value and gathered, which makes each likelihood evaluation
    on a million customers cost a few vector gathers rather than special functions.
    """

    def __init__(self, x, tx, T, w):
        self.xv, self.ix = np.unique(x, return_inverse=True)
        self.tv, self.it = np.unique(tx, return_inverse=True)
        self.Tv, self.iT = np.unique(T, return_inverse=True)
        self.w = w
        self.pos = self.xv > 0

    def _parts(self, params):
        r, alpha, a, b = params
        xv = self.xv
        rx = (r + xv)[self.ix]
        lT = np.log(alpha + self.Tv)[self.iT]
        lt = np.log(alpha + self.tv)[self.it]
        b1 = special.betaln(a, b + xv) - special.betaln(a, b)
        b2 = np.full_like(xv, -np.inf)
        b2[self.pos] = special.betaln(a + 1, b + xv[self.pos] - 1) - special.betaln(a, b)
        l1 = b1[self.ix] - rx * lT
        l2 = b2[self.ix] - rx * lt
        m = np.logaddexp(l1, l2)
        return rx, lT, lt, l1, l2, m

    def loglik(self, params):
        r, alpha, a, b = params
        common = special.gammaln(r + self.xv) - special.gammaln(r) + r * np.log(alpha)
        _, _, _, _, _, m = self._parts(params)
        return float(np.dot(self.w, common[self.ix] + m))

    def grad(self, params):
        r, alpha, a, b = params
        dg = special.digamma
        xv = self.xv
        rx, lT, lt, l1, l2, m = self._parts(params)
        w1 = np.exp(l1 - m)
        w2 = np.exp(l2 - m)
        w = self.w
        # Per-x sums of weights let the x-only terms be summed once per distinct x.
        nx = np.bincount(self.ix, weights=w, minlength=xv.size)
        s1 = np.bincount(self.ix, weights=w * w1, minlength=xv.size)
        s2 = np.bincount(self.ix, weights=w * w2, minlength=xv.size)
        d_r = np.dot(nx, dg(r + xv) - dg(r) + np.log(alpha)) - np.dot(w, w1 * lT + w2 * lt)
        d_alpha = r / alpha * nx.sum() - np.dot(
            w, rx * (w1 / (alpha + self.Tv[self.iT]) + w2 / (alpha + self.tv[self.it]))
        )
        base_a = -(dg(a) - dg(a + b))
        base_b = -(dg(b) - dg(a + b))
        xm1 = np.where(self.pos, xv - 1, 0.0)
        d_a = (
            nx.sum() * base_a
            + np.dot(s1, dg(a) - dg(a + b + xv))
            + np.dot(s2, dg(a + 1) - dg(a + b + xv))
        )
        d_b = (
            nx.sum() * base_b
            + np.dot(s1, dg(b + xv) - dg(a + b + xv))
            + np.dot(s2, np.where(self.pos, dg(b + xm1) - dg(a + b + xv), 0.0))
        )
        return np.array([d_r, d_alpha, d_a, d_b])


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


class _PerCustomerPredictions:
    """Per-customer predictions shared by the purchase models (BG/NBD, Pareto/NBD).

    Subclasses provide ``conditional_expected_transactions(t, x, t_x, T)`` and
    ``p_alive(x, t_x, T)`` on arrays.
    """

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

    def _conditional_path(self, ends, pairs: _PairIndex) -> tuple[np.ndarray, np.ndarray]:
        """Return (P(alive), E[Y(t) | x, t_x, T] for each t in ``ends``) for the rows of ``pairs``.

        Equal, element for element, to calling :meth:`p_alive` and
        :meth:`conditional_expected_transactions` once per t; subclasses compute the
        parts that do not depend on t only once.
        """
        x, tx, T = pairs.x, pairs.tx, pairs.T
        cum = np.empty((x.size, len(ends)))
        for j, t in enumerate(ends):
            cum[:, j] = self.conditional_expected_transactions(t, x, tx, T)
        return self.p_alive(x, tx, T), cum


@dataclass
class BGNBDResult(_PerCustomerPredictions):
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

    def _conditional_path(self, ends, pairs: _PairIndex) -> tuple[np.ndarray, np.ndarray]:
        # The same arithmetic as conditional_expected_transactions; P(alive) does not
        # depend on t, and the hypergeometric factor depends on (x, T) only.
        r, alpha, a, b = self._p()
        pa = self.p_alive(pairs.x, pairs.tx, pairs.T)
        xp, Tp = pairs.x_T
        cum = np.empty((pairs.x.size, len(ends)))
        for j, t in enumerate(ends):
            t = np.asarray(t, dtype=float)
            z = t / (alpha + Tp + t)
            with np.errstate(all="ignore"):
                f = (1 - z) ** (a - 1) * special.hyp2f1(a + b - 1 - r, a - 1, a + b + xp - 1, z)
                num = (a + b + xp - 1) / (a - 1) * (1 - f)
            cum[:, j] = num[pairs.i_T] * pa
        return pa, cum


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
    data = _BGNBDData(ux, utx, uT, w)

    def nll(theta):
        return -data.loglik(np.exp(theta)) / n

    def grad(theta):
        p = np.exp(theta)
        return -data.grad(p) * p / n

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


class _PairIndex:
    """Distinct x values and (x, t_x), (x, T) pairs of per-customer arrays, with the gathers back.

    The hypergeometric terms of the Pareto/NBD likelihood and of the BG/NBD
    conditional expectation depend on only two of (x, t_x, T). Evaluating them once
    per distinct pair and gathering gives exactly the per-customer values (the same
    element-wise operations on the same numbers) at a fraction of the cost: the
    number of distinct pairs grows far more slowly than the number of customers.
    """

    def __init__(self, x, tx, T):
        x, tx, T = np.broadcast_arrays(
            np.asarray(x, float), np.asarray(tx, float), np.asarray(T, float)
        )
        self.shape = x.shape
        self.x, self.tx, self.T = x.ravel(), tx.ravel(), T.ravel()
        cx, xv = pd.factorize(self.x, sort=False, use_na_sentinel=False)
        ctx, txv = pd.factorize(self.tx, sort=False, use_na_sentinel=False)
        cT, Tv = pd.factorize(self.T, sort=False, use_na_sentinel=False)
        self.xv, self.i_x = np.asarray(xv, float), cx
        self.x_tx, self.i_tx = _distinct_pairs(cx, self.xv, ctx, np.asarray(txv, float))
        self.x_T, self.i_T = _distinct_pairs(cx, self.xv, cT, np.asarray(Tv, float))


def _distinct_pairs(code_a, values_a, code_b, values_b):
    """Return ((a, b) of each distinct code pair, index of each row's pair)."""
    nb = max(len(values_b), 1)
    key = code_a.astype(np.int64) * nb + code_b
    uk, inv = np.unique(key, return_inverse=True)
    return (values_a[uk // nb], values_b[uk % nb]), inv.reshape(-1)


def _pnbd_log_parts(params, x, tx, T, pairs: _PairIndex | None = None):
    """Return (log term_alive, log term_dead) of the Pareto/NBD likelihood without the common factor.

    Likelihood (Fader & Hardie 2005 note, eq. 19-22):
    L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) * A0 ].
    ``pairs`` (built from the same x, t_x, T) lets every term that depends on x and
    one of t_x, T be evaluated once per distinct pair and gathered.
    """
    r, alpha, s, beta = params
    if pairs is None:
        pairs = _PairIndex(x, tx, T)
    (x1, tx1), (x2, T2) = pairs.x_tx, pairs.x_T
    log_alive = (-(r + x2) * np.log(alpha + T2) - s * np.log(beta + T2))[pairs.i_T]
    if alpha >= beta:
        base = alpha
        z1 = (alpha - beta) / (alpha + tx1)
        z2 = (alpha - beta) / (alpha + T2)
        h1 = _log_hyp2f1(r + s + x1, s + 1.0, r + s + x1 + 1, z1)
        h2 = _log_hyp2f1(r + s + x2, s + 1.0, r + s + x2 + 1, z2)
    else:
        base = beta
        z1 = (beta - alpha) / (beta + tx1)
        z2 = (beta - alpha) / (beta + T2)
        h1 = _log_hyp2f1(r + s + x1, r + x1, r + s + x1 + 1, z1)
        h2 = _log_hyp2f1(r + s + x2, r + x2, r + s + x2 + 1, z2)
    la1 = (h1 - (r + s + x1) * np.log(base + tx1))[pairs.i_tx]
    la2 = (h2 - (r + s + x2) * np.log(base + T2))[pairs.i_T]
    with np.errstate(all="ignore"):
        diff = la2 - la1
        log_a0 = la1 + np.log1p(-np.exp(np.minimum(diff, 0.0)))
    log_a0 = np.where(
        diff >= 0, -np.inf, log_a0
    )  # t_x == T: no time to die after the last purchase
    log_dead = (np.log(s) - np.log(r + s + pairs.xv))[pairs.i_x] + log_a0
    return log_alive.reshape(pairs.shape), log_dead.reshape(pairs.shape)


def _pnbd_loglik(params, x, tx, T, pairs: _PairIndex | None = None):
    r, alpha, s, beta = params
    if pairs is None:
        pairs = _PairIndex(x, tx, T)
    xv = pairs.xv
    common = special.gammaln(r + xv) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    la, ld = _pnbd_log_parts(params, x, tx, T, pairs)
    return common[pairs.i_x].reshape(pairs.shape) + np.logaddexp(la, ld)


@dataclass
class ParetoNBDResult(_PerCustomerPredictions):
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

    def _conditional_path(self, ends, pairs: _PairIndex) -> tuple[np.ndarray, np.ndarray]:
        # The same arithmetic as conditional_expected_transactions, per distinct (x, T).
        r, alpha, s, beta = self._p()
        la, ld = _pnbd_log_parts(self._p(), pairs.x, pairs.tx, pairs.T, pairs)
        pa = np.exp(la - np.logaddexp(la, ld))
        x, TT = pairs.x_T
        cum = np.empty((pairs.x.size, len(ends)))
        for j, t in enumerate(ends):
            t = np.asarray(t, float)
            if abs(s - 1) < 1e-8:
                f = (beta + TT) * np.log((beta + TT + t) / (beta + TT))
            else:
                f = (beta + TT) / (s - 1) * (1 - ((beta + TT) / (beta + TT + t)) ** (s - 1))
            cum[:, j] = ((r + x) / (alpha + TT) * f)[pairs.i_T] * pa
        return pa, cum


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
    pairs = _PairIndex(ux, utx, uT)

    def nll(theta):
        return -np.dot(w, _pnbd_loglik(np.exp(theta), ux, utx, uT, pairs)) / n

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
    xv, ix = np.unique(ux, return_inverse=True)
    nx = np.bincount(ix, weights=w, minlength=xv.size)
    log_m = np.log(um)
    log_x = np.log(ux)
    wx_logm = np.dot(w * ux, log_m)
    w_logm = np.dot(w, log_m)
    wx_logx = np.dot(w * ux, log_x)
    mx = um * ux

    def nll(theta):
        p, q, v = np.exp(theta)
        px = p * xv
        per_x = special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(v)
        ll = (
            np.dot(nx, per_x)
            + p * wx_logm
            - w_logm
            + p * wx_logx
            - np.dot(w * (p * ux + q), np.log(v + mx))
        )
        return -ll / n

    def grad(theta):
        p, q, v = np.exp(theta)
        dg = special.digamma
        px = p * xv
        lv = np.log(v + mx)
        d_p = np.dot(nx * xv, dg(px + q) - dg(px)) + wx_logm + wx_logx - np.dot(w * ux, lv)
        d_q = np.dot(nx, dg(px + q)) - n * dg(q) + n * np.log(v) - np.dot(w, lv)
        d_v = n * q / v - np.dot(w * (p * ux + q), 1.0 / (v + mx))
        return -np.array([d_p, d_q, d_v]) * np.array([p, q, v]) / n

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
    inc = np.diff(np.concatenate([np.zeros((cum.shape[0], 1)), cum], axis=1), axis=1)
    disc = (1.0 + rate) ** (-ends)
    discounted = inc @ disc  # per distinct (x, t_x, T) row
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


def _tracking_table(rep: np.ndarray, summary: pd.DataFrame, model) -> pd.DataFrame:
    """Return the :func:`cumulative_tracking` table from the repeat purchase days ``rep``."""
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
    # One BLAS thread: waking idle BLAS threads for each short dot costs more than the dot.
    with threadpool_limits(1):
        boots = [_top_share_resample(v, k, rng) for _ in range(n_boot)]
    a = (1 - level) / 2
    lo, hi = np.quantile(boots, [a, 1 - a])
    return {
        "share": float(share),
        "ci_lower": float(lo),
        "ci_upper": float(hi),
        "top": top,
        "n_customers": int(n),
    }


def _top_share_resample(v: np.ndarray, k: int, rng) -> float:
    """Return the top-k share of one bootstrap resample of the descending values ``v``."""
    n = v.size
    # A resample of the descending values is each value repeated by its draw count,
    # already in order: the top-k sum needs counts, not a sort. (The draws are those
    # of rng.choice(v, n), which calls rng.integers(0, n, n).)
    cnt = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
    cum = np.cumsum(cnt)
    j = int(np.searchsorted(cum, k))  # value at position k of the sorted resample
    top_sum = np.dot(cnt[:j], v[:j]) + (k - (cum[j - 1] if j else 0)) * v[j]
    return float(top_sum / np.dot(cnt, v))


def customers_to_protect(
    scores: pd.DataFrame,
    *,
    value: str = "clv",
    risk: str = "risk",
    customer_id: str = "customer_id",
    segment: str | None = "segment",
    tier_quantiles: tuple[float, float] = (0.5, 0.8),
    risk_threshold: float | None = None,
    risk_top_share: float = 0.2,
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
    risk_threshold : float, optional
        Risk at or above which a customer counts as at risk. Default: relative, the
        ``risk_top_share`` of customers with the highest risk.
    risk_top_share : float
        Share of customers counted as at risk when no absolute threshold is given.
    strategic_segments : sequence of str
        Segments flagged as strategic.
    strategic_column : str, optional
        Boolean column flagging strategic customers (combined with ``strategic_segments`` by OR).

    Returns
    -------
    pandas.DataFrame
        All customers sorted by ``value_at_stake`` (value x risk, currency),
        descending: ``rank``, ``customer_id``, ``segment``, ``clv_tier`` (value tier),
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
    out["clv_tier"] = value_tiers(out["value"], quantiles=tier_quantiles).to_numpy()
    strategic = out["segment"].isin(list(strategic_segments)).to_numpy()
    if strategic_column:
        if strategic_column not in scores.columns:
            raise AnalysisError(f"strategic column {strategic_column!r} not found in scores.")
        strategic = strategic | scores[strategic_column].fillna(False).astype(bool).to_numpy()
    out["strategic"] = strategic
    if risk_threshold is None:
        out["at_risk"] = out["risk"].rank(method="first", ascending=False) <= risk_top_share * len(
            out
        )
    else:
        out["at_risk"] = out["risk"] >= risk_threshold
    out["value_at_stake"] = out["value"] * out["risk"]
    out["protect"] = (out["clv_tier"] == "high") & out["at_risk"]
    out = out.sort_values(
        ["protect", "value_at_stake"], ascending=[False, False], kind="stable"
    ).reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out[
        [
            "rank",
            "customer_id",
            "segment",
            "clv_tier",
            "strategic",
            "value",
            "risk",
            "at_risk",
            "value_at_stake",
            "protect",
        ]
    ]


def protect_summary(
    ranked: pd.DataFrame, *, by=("segment", "clv_tier"), min_group_size: int = 10
) -> pd.DataFrame:
    """Summarise a ranked list by group: customers, at risk, to protect, value and value at stake.

    Groups with fewer than ``min_group_size`` customers keep their count (so a
    report table can show "<N") but every other number is suppressed (NaN), and
    ``suppressed`` is True.
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
    high = ranked["clv_tier"] == "high"
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
    experience: pd.DataFrame | None = None,
    loyalty: pd.DataFrame | None = None,
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
    experience : pandas.DataFrame, optional
        Contract experience table; adds ``tickets_90d``, ``unresolved_90d``,
        ``sla_breaches_90d``, ``csat_mean_365d`` and ``nps_category`` (latest answered
        NPS: detractor / passive / promoter / none).
    loyalty : pandas.DataFrame, optional
        Contract loyalty table; adds ``member`` (0/1 at the cutoff) and ``loyalty_tier``.

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
    tdays = _day_numbers(transactions[date], table="transactions", column=date)
    coder = _CustomerCoder.from_ids(transactions[customer_id], customers[customer_id])
    amt = pd.to_numeric(transactions[amount], errors="coerce").fillna(0.0).to_numpy(float)
    bins = _TxBins(
        coder.codes_of(transactions[customer_id]),
        tdays,
        amt,
        len(coder.ids),
        [_cutoff_days(cutoff, horizon_months)],
    )
    return _churn_features_coded(
        coder.code_frame(customers, customer_id),
        coder,
        bins,
        cutoff=cutoff,
        horizon_months=horizon_months,
        definition=definition,
        customer_id=customer_id,
        signup=signup,
        churn=churn,
        attributes=attributes,
        extra=extra,
        as_of=as_of,
        experience=None if experience is None else coder.code_frame(experience, customer_id),
        loyalty=None if loyalty is None else coder.code_frame(loyalty, customer_id),
    )


def _cutoff_days(cutoff, horizon_months: float) -> tuple[int, int]:
    """Return (cutoff, end of the label window) as day numbers."""
    cut = _as_day(cutoff, "cutoff")
    return cut, cut + int(round(horizon_months * _MONTH_DAYS))


class _CustomerCoder:
    """Integer codes for customer ids: transaction customers first (in order of first
    purchase row), then customers without transactions (in table order).

    Grouping and joining on int64 codes is many times faster and leaner than on
    string ids; ids are put back only in the outputs.
    """

    def __init__(self, ids: np.ndarray, n_tx: int):
        self.ids = ids  # object array: customer id of each code
        self.n_tx = n_tx  # codes below n_tx have transactions
        self._index = None

    @classmethod
    def from_ids(cls, tx_ids, customer_ids) -> _CustomerCoder:
        """Build from the transaction rows' and the customers table's ids (pandas or numpy)."""
        _, tx_uniques = pd.factorize(np.asarray(tx_ids, dtype=object), sort=False)
        tx_uniques = np.asarray(tx_uniques, dtype=object)
        cust = np.asarray(customer_ids, dtype=object)
        pos = pd.Index(tx_uniques).get_indexer(cust)
        extra = pd.unique(cust[pos < 0])
        return cls(np.concatenate([tx_uniques, np.asarray(extra, dtype=object)]), len(tx_uniques))

    @classmethod
    def from_arrow(cls, tx_ids, customer_ids) -> tuple[_CustomerCoder, np.ndarray]:
        """Build from an Arrow column of transaction ids; return (coder, code of each row).

        Arrow's hash-based ``unique`` keeps the order of first appearance, as
        ``pandas.factorize(sort=False)`` does, and never converts the ids to Python
        objects row by row.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        uniq = pc.unique(tx_ids)
        codes = pc.index_in(tx_ids, value_set=uniq)
        codes = codes.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        cust = pa.array(np.asarray(customer_ids, dtype=object), type=uniq.type)
        known = pc.is_valid(pc.index_in(cust, value_set=uniq)).to_numpy(zero_copy_only=False)
        extra = pd.unique(np.asarray(customer_ids, dtype=object)[~known])
        ids = np.concatenate(
            [uniq.to_numpy(zero_copy_only=False).astype(object), np.asarray(extra, dtype=object)]
        )
        return cls(ids, len(uniq)), codes

    @property
    def index(self) -> pd.Index:
        if self._index is None:
            self._index = pd.Index(self.ids)
        return self._index

    def codes_of(self, values) -> np.ndarray:
        """Return the int64 code of each id (-1 for ids the coder does not know)."""
        return self.index.get_indexer(np.asarray(values, dtype=object)).astype(np.int64)

    def code_frame(self, frame: pd.DataFrame, customer_id: str) -> pd.DataFrame:
        """Return ``frame`` with its id column replaced by int64 codes."""
        out = frame.copy()
        out[customer_id] = self.codes_of(frame[customer_id])
        return out


class _TxBins:
    """Per-customer purchase counts, amounts and last purchase day between fixed days.

    The churn-risk features of several cutoffs need counts and sums over windows
    ending at each cutoff; one pass over the transactions into bins bounded by all
    window edges gives every window as a sum of a few bins.
    """

    def __init__(self, codes, days, amount, n_codes: int, cutoffs):
        edges = set()
        for cut, end in cutoffs:
            edges |= {cut - 365, cut - 180, cut - 90, cut, end}
        self.edges = np.array(sorted(edges), dtype=np.int64)
        nb = self.edges.size + 1
        ok = codes >= 0
        if not ok.all():
            codes, days, amount = codes[ok], days[ok], amount[ok]
        # bin k holds days in (edges[k-1], edges[k]]; the last bin days after every edge
        key = codes.astype(np.int64) * nb + np.searchsorted(self.edges, days, side="left")
        size = n_codes * nb
        self.count = np.bincount(key, minlength=size).reshape(n_codes, nb)
        self.amount = np.bincount(key, weights=amount, minlength=size).reshape(n_codes, nb)
        last = np.full(size, np.iinfo(np.int64).min)
        np.maximum.at(last, key, days)
        self.last_in = last.reshape(n_codes, nb)
        self.max_day = int(days.max()) if days.size else None

    def covers(self, cut: int, end: int) -> bool:
        return bool(np.isin([cut - 365, cut - 180, cut - 90, cut, end], self.edges).all())

    def _upto(self, day) -> int:
        """Number of bins holding days <= ``day`` (an edge)."""
        return int(np.searchsorted(self.edges, day)) + 1

    def window(self, lo, hi) -> tuple[np.ndarray, np.ndarray]:
        """Return (purchases, amount) per customer code with lo < day <= hi (lo None: no bound)."""
        a = 0 if lo is None else self._upto(lo)
        b = self._upto(hi)
        return self.count[:, a:b].sum(axis=1), self.amount[:, a:b].sum(axis=1)

    def last(self, hi) -> np.ndarray:
        """Return each code's last purchase day on or before ``hi`` (int64 min if none)."""
        return self.last_in[:, : self._upto(hi)].max(axis=1)


def _churn_features_coded(
    customers: pd.DataFrame,
    coder: _CustomerCoder,
    tx: _TxBins,
    *,
    cutoff,
    horizon_months: float,
    definition: str,
    customer_id: str,
    signup: str,
    churn: str,
    attributes,
    extra,
    as_of,
    experience,
    loyalty,
) -> pd.DataFrame:
    """:func:`churn_risk_features` on integer-coded tables (id columns hold codes of ``coder``).

    Transactions come binned by customer code (:class:`_TxBins`, built with this
    cutoff and label end among its cutoffs).
    """
    cut, end = _cutoff_days(cutoff, horizon_months)
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
    # Per-customer counts and sums in the feature windows, from binned totals.
    if tx is None or not tx.covers(cut, end):
        raise AnalysisError(f"internal: transaction bins do not cover the cutoff {cutoff}.")
    n_past, spend_total = tx.window(None, cut)
    last = tx.last(cut)
    p90, s90 = tx.window(cut - 90, cut)
    p365, s365 = tx.window(cut - 365, cut)
    _, sp90 = tx.window(cut - 180, cut - 90)
    sums = {
        "purchases_90d": p90.astype(float),
        "purchases_365d": p365.astype(float),
        "spend_90d": s90,
        "spend_365d": s365,
        "spend_prev_90d": sp90,
        "purchases_total": n_past.astype(float),
    }
    elig = sdays <= cut
    if cdays is not None:
        elig &= cdays > cut
    base = cust.loc[elig].copy()
    base["tenure_days"] = (cut - sdays[elig]).astype(float)
    bc = base[customer_id].to_numpy()
    has = n_past[bc] > 0
    if definition == "inactivity":
        base, bc, has = base.loc[has], bc[has], has[has]
    base["recency_days"] = np.where(
        has, (cut - last[bc]).astype(float), base["tenure_days"].to_numpy()
    )
    for name, v in sums.items():
        base[name] = v[bc]
    with np.errstate(invalid="ignore", divide="ignore"):
        base["mean_amount"] = np.where(has, spend_total[bc] / n_past[bc], np.nan)
    # Label
    if definition == "contractual":
        cd_e = cdays[elig]
        label = ((cd_e > cut) & (cd_e <= end)).astype(float)
        base["churned"] = label
    else:
        bought = tx.window(cut, end)[0] > 0
        base["churned"] = (~bought[bc]).astype(float)
    if as_of is not None:
        tmax = _as_day(as_of, "as_of")
    else:
        cands = [tx.max_day if tx.max_day is not None else cut, int(sdays.max())]
        if cdays is not None and (cdays < np.iinfo(np.int64).max).any():
            cands.append(int(cdays[cdays < np.iinfo(np.int64).max].max()))
        tmax = max(cands)
    if end > tmax:
        base["churned"] = np.nan  # the label window is not fully observed
    base = base.drop(columns=[c for c in (signup, churn) if c in base.columns])
    if experience is not None:
        if not isinstance(experience, _ExperienceArrays):
            experience = _ExperienceArrays(experience, customer_id)
        base = base.reset_index(drop=True)
        bc = base[customer_id].to_numpy()
        for c, v in experience.features(cut, len(coder.ids)).items():
            base[c] = v[bc]
    if loyalty is not None:
        base = base.merge(_loyalty_features(loyalty, cut, customer_id), on=customer_id, how="left")
        base["member"] = base["member"].fillna(0.0)
        base["loyalty_tier"] = base["loyalty_tier"].fillna("none")
    base[customer_id] = coder.ids[base[customer_id].to_numpy()]
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


class _ExperienceArrays:
    """Service events as arrays by customer code, for features at several cutoffs.

    Built once from the contract experience table (ids already coded); each
    :meth:`features` call is a few passes of ``numpy.bincount`` instead of a
    pandas group-by over millions of rows.
    """

    def __init__(self, experience: pd.DataFrame, customer_id: str):
        e = experience
        n = len(e)
        self.code = e[customer_id].to_numpy(dtype=np.int64)
        self.day = _day_numbers(e["date"], table="experience", column="date")
        self.ticket = (e["kind"] == "ticket").fillna(False).to_numpy(dtype=bool)

        def false_flag(col):
            if col not in e.columns:
                return np.zeros(n, bool)
            return e[col].eq(False).fillna(False).to_numpy(dtype=bool)

        self.unresolved = false_flag("first_contact_resolution")
        self.breach = false_flag("sla_met")
        self.csat = (
            pd.to_numeric(e["csat"], errors="coerce").to_numpy(dtype=float)
            if "csat" in e.columns
            else None
        )
        self.nps = (
            pd.to_numeric(e["nps"], errors="coerce").to_numpy(dtype=float)
            if "nps" in e.columns
            else None
        )
        ok = self.code >= 0  # rows of customers the study does not know
        if not ok.all():
            for a in ("code", "day", "ticket", "unresolved", "breach", "csat", "nps"):
                if getattr(self, a) is not None:
                    setattr(self, a, getattr(self, a)[ok])

    def features(self, cut: int, n_codes: int) -> dict:
        """Return per-code arrays: ``tickets_90d``, ``unresolved_90d``, ``sla_breaches_90d``
        (counts of tickets in the 90 days to ``cut``), ``csat_mean_365d`` (mean CSAT over
        the 365 days, NaN without answers) and ``nps_category`` (latest answered NPS on
        or before ``cut``: detractor / passive / promoter, "none" without answers)."""
        past = self.day <= cut
        code = self.code[past]
        age = cut - self.day[past]
        ticket = self.ticket[past] & (age < 90)
        out = {
            "tickets_90d": np.bincount(code[ticket], minlength=n_codes).astype(float),
            "unresolved_90d": np.bincount(
                code[ticket & self.unresolved[past]], minlength=n_codes
            ).astype(float),
            "sla_breaches_90d": np.bincount(
                code[ticket & self.breach[past]], minlength=n_codes
            ).astype(float),
        }
        if self.csat is not None:
            cs = self.csat[past]
            use = (age < 365) & ~np.isnan(cs)
            total = np.bincount(code[use], weights=cs[use], minlength=n_codes)
            count = np.bincount(code[use], minlength=n_codes)
            with np.errstate(invalid="ignore", divide="ignore"):
                out["csat_mean_365d"] = np.where(count > 0, total / count, np.nan)
        else:
            out["csat_mean_365d"] = np.full(n_codes, np.nan)
        cat = np.full(n_codes, "none", dtype=object)
        if self.nps is not None:
            nps = self.nps[past]
            rows = np.flatnonzero(~np.isnan(nps))
            if rows.size:
                # Latest answer: the largest (day, row) per customer, as a stable sort by day.
                key = (cut - age[rows]) * np.int64(nps.size) + rows
                best = np.full(n_codes, -1, dtype=np.int64)
                np.maximum.at(best, code[rows], key)
                has = best >= 0
                v = nps[best[has] % nps.size]
                lab = np.select(
                    [(v > -0.5) & (v <= 6.5), (v > 6.5) & (v <= 8.5), (v > 8.5) & (v <= 10.5)],
                    ["detractor", "passive", "promoter"],
                    default="none",
                )
                cat[has] = lab
        out["nps_category"] = cat
        return out


def _loyalty_features(loyalty: pd.DataFrame, cut: int, customer_id: str) -> pd.DataFrame:
    """Membership at day ``cut`` (0/1) and the programme tier ("none" for non-members)."""
    enr = _day_numbers(loyalty["enrolled_date"], table="loyalty", column="enrolled_date")
    left = pd.to_datetime(loyalty["left_date"]) if "left_date" in loyalty.columns else None
    if left is not None:
        ld = np.where(
            left.isna(),
            np.iinfo(np.int64).max,
            np.asarray(left, dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64),
        )
    else:
        ld = np.full(enr.size, np.iinfo(np.int64).max)
    member = (enr <= cut) & (ld > cut)
    m = loyalty.loc[
        member, [customer_id] + (["tier"] if "tier" in loyalty.columns else [])
    ].drop_duplicates(customer_id)
    out = pd.DataFrame({customer_id: m[customer_id].to_numpy(), "member": 1.0})
    out["loyalty_tier"] = m["tier"].astype(str).to_numpy() if "tier" in m.columns else "member"
    return out


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
    categories: dict = field(default_factory=dict)

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        """Return churn probabilities for a feature frame built by :func:`churn_risk_features`."""
        X = _code_categories(frame[self.features], self.categories)
        return pd.Series(self.model.predict_proba(X)[:, 1], index=frame.index, name="p_churn")


def _category_levels(values: pd.Series) -> tuple[list, bool]:
    """Return (sorted distinct text values, whether any value is missing).

    The order is the one ``OneHotEncoder`` gives text categories (Python string
    order, missing last), so integer codes in this order yield the same columns.
    """
    text = values.astype(str)
    missing = bool(text.isna().any())
    return sorted(pd.unique(text.dropna().to_numpy(dtype=object))), missing


def _code_categories(frame: pd.DataFrame, categories: dict) -> pd.DataFrame:
    """Replace each categorical column by integer codes of its training levels.

    One-hot encoding integer codes is many times faster than encoding Python
    strings and gives the same design matrix. Levels unseen in training (and
    missing values when training had none) get -1, which the encoder ignores, as
    it ignores unknown text.
    """
    if not categories:
        return frame
    out = frame.copy()
    for c, (levels, has_missing) in categories.items():
        text = frame[c].astype(str)
        codes = pd.Index(levels, dtype=object).get_indexer(text.to_numpy(dtype=object))
        codes = codes.astype(np.int64)
        if has_missing:
            codes[text.isna().to_numpy()] = len(levels)
        out[c] = codes
    return out


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
    model: str = "logistic",
    n_bins: int = 10,
    n_repeats: int = 3,
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
    model : {"logistic", "gbm"}
        L2-penalised logistic regression on standardised features (default), its
        penalty chosen by 5-fold cross-validated log-loss on the training cutoff
        (churn signals are often weak, and an unpenalised or boosted model then gives
        over-confident risks out of time), or histogram gradient boosting.
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
    from sklearn.linear_model import LogisticRegressionCV
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
        clf = LogisticRegressionCV(
            Cs=np.logspace(-2, 1, 7).tolist(),
            cv=5,
            scoring="neg_log_loss",
            max_iter=2000,
            l1_ratios=(0.0,),
            use_legacy_attributes=False,
        )
    else:
        raise AnalysisError(f"model={model!r} must be 'gbm' or 'logistic'.")
    pipe = Pipeline([("pre", pre), ("clf", clf)])
    levels = {c: _category_levels(tr[c]) for c in cat}
    Xtr = _code_categories(tr[feats], levels)
    Xte = _code_categories(te[feats], levels)
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
    ranks = _AUCRanks(p, yte)
    with threadpool_limits(1):
        for _ in range(n_boot):
            i = rng.integers(0, n, n)
            # The resample as case weights: no sort per resample.
            a = ranks.auc(np.bincount(i, minlength=n))
            if np.isfinite(a):  # both outcomes in the resample
                boots.append(a)
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
        categories=levels,
    )


class _AUCRanks:
    """ROC AUC of fixed scores and outcomes under any case weights, sorting once.

    AUC is the Mann-Whitney probability that a random event scores above a random
    non-event, ties counting one half; it equals the area under the ROC curve that
    ``sklearn.metrics.roc_auc_score`` integrates (to rounding). A bootstrap
    resample is the original cases with integer weights, so all resamples share
    one sort of the scores.
    """

    def __init__(self, scores, y):
        scores = np.asarray(scores, float)
        self.order = np.argsort(scores)  # order within ties does not matter
        s = scores[self.order]
        self.y = np.asarray(y, float)[self.order]
        tie = s[1:] == s[:-1]
        if tie.any():
            new = np.r_[True, ~tie]
            self.group = np.cumsum(new) - 1  # tie group of each sorted case
        else:
            self.group = None

    def auc(self, weights=None) -> float:
        """Return the AUC under case weights (original order); NaN without both outcomes."""
        if weights is None:
            w = np.ones(self.y.size)
        else:
            w = np.asarray(weights, float)[self.order]
        pos = w * self.y
        neg = w - pos
        if self.group is not None:
            k = int(self.group[-1]) + 1
            pos = np.bincount(self.group, weights=pos, minlength=k)
            neg = np.bincount(self.group, weights=neg, minlength=k)
        n_pos, n_neg = pos.sum(), neg.sum()
        if n_pos <= 0 or n_neg <= 0:
            return np.nan
        below = np.cumsum(neg) - neg
        return float(np.dot(pos, below + 0.5 * neg) / (n_pos * n_neg))


def _auc(y, scores) -> float:
    return _AUCRanks(scores, y).auc()


def _transformed_blocks(pre, features, width: int):
    """Return the output columns of each input feature of a fitted ColumnTransformer.

    Handles the churn-risk preprocessing (a per-column numeric pipeline and a
    one-hot encoder without dropped levels); returns None for anything else, so
    the caller falls back to transforming each permuted frame.
    """
    try:
        blocks = {}
        for name, trans, cols in pre.transformers_:
            if name == "remainder" or trans == "drop" or not len(cols):
                continue
            sl = pre.output_indices_[name]
            if name == "num":
                kept = [str(c) for c in trans.get_feature_names_out(list(cols))]
                if len(kept) != sl.stop - sl.start:
                    return None
                for j, c in enumerate(kept):
                    blocks[c] = [sl.start + j]
            elif name == "cat":
                if getattr(trans, "drop_idx_", None) is not None:
                    return None
                start = sl.start
                infrequent = getattr(trans, "infrequent_categories_", [None] * len(cols))
                for c, cats, inf in zip(cols, trans.categories_, infrequent, strict=True):
                    k = len(cats) - (0 if inf is None else len(inf) - 1)
                    blocks[c] = list(range(start, start + k))
                    start += k
                if start != sl.stop:
                    return None
            else:
                return None
        if max((j for b in blocks.values() for j in b), default=-1) >= width:
            return None
        return {f: blocks.get(f, []) for f in features}
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _permutation_importance(model, X, y, features, *, n_repeats, seed):
    """Return the drop in test ROC AUC when each feature is shuffled (mean and sd over repeats).

    Preprocessing acts row by row, so shuffling a feature's rows before or after it
    gives the same design matrix: the test frame is transformed once and each
    feature's output columns are shuffled there (many times faster than
    transforming a permuted frame for every repeat).
    """
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    pre, clf = model[:-1], model[-1]
    Xt = np.asarray(pre.transform(X), dtype=float)
    p0 = clf.predict_proba(Xt)[:, 1]
    base = roc_auc_score(y, p0)
    blocks = _transformed_blocks(model[0], features, Xt.shape[1]) if len(model) == 2 else None
    rows = []
    for f in features:
        drops = []
        for _ in range(n_repeats):
            perm = rng.permutation(len(X))
            if blocks is not None:
                cols = blocks[f]
                saved = Xt[:, cols].copy()
                Xt[:, cols] = saved[perm]
                p = clf.predict_proba(Xt)[:, 1] if cols else p0
                Xt[:, cols] = saved
            else:
                Xp = X.copy()
                Xp[f] = X[f].to_numpy()[perm]
                p = model.predict_proba(Xp)[:, 1]
            drops.append(base - _auc(y, p))
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


# ---------------------------------------------------------------------------
# Study: everything the 04_customer_value report shows
# ---------------------------------------------------------------------------


@dataclass
class ValueStudy:
    """Results of :func:`value_study` (all money in the data's currency).

    Attributes
    ----------
    settings : dict
        Calibration end, observation end, unit, horizon (units and months), discount rate,
        risk horizon, number of customers used and excluded, notes.
    calibration : pandas.DataFrame
        RFM summary of the calibration/holdout split (validation).
    models_calibration : dict
        Fitted on the calibration period: "bgnbd", "pareto_nbd" (or None), "gamma_gamma".
    holdout_by_frequency, holdout_errors, tracking : pandas.DataFrame
        Validation tables (see :func:`holdout_by_frequency`, :func:`holdout_errors`,
        :func:`cumulative_tracking`).
    models : dict
        Refitted on all data up to as_of: "bgnbd", "pareto_nbd" (or None), "gamma_gamma".
    parameters : pandas.DataFrame
        Parameter tables of the as-of models (estimate, se, interval).
    scores : pandas.DataFrame
        One row per scored customer: RFM, P(alive), expected transactions and spend,
        CLV, risk and its source.
    total_clv : (float, float, float)
        Total CLV with a parameter-uncertainty interval.
    concentration : dict
        Share of value in the top ``top_share`` of customers, with a bootstrap interval.
    ranked : pandas.DataFrame
        Full ranked list of :func:`customers_to_protect` (for the CSV export only).
    by_group : pandas.DataFrame
        Customers, at risk, to protect and value at stake by segment and CLV tier.
    rfm_by_tier : pandas.DataFrame
        Mean RFM and value by CLV tier.
    churn : ChurnRiskResult or None
        Contractual churn-risk model (None when the data has no churn dates).
    notes : list of str
        Plain-language notes (skipped models, exclusions).
    """

    settings: dict
    calibration: pd.DataFrame
    models_calibration: dict
    holdout_by_frequency: pd.DataFrame
    holdout_errors: pd.DataFrame
    tracking: pd.DataFrame
    models: dict
    parameters: pd.DataFrame
    scores: pd.DataFrame
    total_clv: tuple
    concentration: dict
    ranked: pd.DataFrame
    by_group: pd.DataFrame
    rfm_by_tier: pd.DataFrame
    churn: ChurnRiskResult | None
    notes: list


def _split_dates(window_start, as_of, calibration_weeks: int, holdout_weeks: int):
    ws = pd.Timestamp(window_start).normalize()
    ao = pd.Timestamp(as_of).normalize()
    days = (ao - ws).days + 1
    if calibration_weeks and calibration_weeks > 0:
        cal_end = ws + pd.Timedelta(days=7 * calibration_weeks - 1)
    else:
        cal_end = ws + pd.Timedelta(days=days // 2 - 1)
    if holdout_weeks and holdout_weeks > 0:
        obs_end = min(cal_end + pd.Timedelta(days=7 * holdout_weeks), ao)
    else:
        obs_end = ao
    if not (ws < cal_end < obs_end):
        raise AnalysisError(
            f"Cannot split the window {ws.date()}..{ao.date()} into calibration and holdout "
            f"(calibration_weeks={calibration_weeks}, holdout_weeks={holdout_weeks}).",
            [
                Problem(
                    "params",
                    "value.calibration_weeks",
                    "bad_split",
                    "calibration end must fall inside the window",
                    fix="use fewer calibration weeks or 0 (half the window)",
                )
            ],
        )
    return cal_end.date(), obs_end.date()


@dataclass
class _CodedTransactions:
    """The transaction columns the value study needs, as arrays with integer customer codes."""

    coder: _CustomerCoder
    codes: np.ndarray  # int32 code per row (int32 halves the memory of 25M rows)
    days: np.ndarray  # int32 day number per row
    amount: np.ndarray  # float64 per row (currency)
    margin: np.ndarray | None  # float64 per row, None when the data has no margins


def _study_transactions(study, customer_ids) -> _CodedTransactions:
    """Pull the transactions of ``study`` as compact arrays (Arrow, not pandas objects).

    Only customer id, date, amount and margin are read; ids become int64 codes in
    order of first appearance (see :class:`_CustomerCoder`), dates int64 day numbers.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    t = study.source.table("transactions").select("customer_id", "date", "amount", "margin")
    tab = t.to_pyarrow()
    n_missing = tab.column("customer_id").null_count
    if n_missing:
        raise AnalysisError(
            f"{n_missing:,} transactions have no customer_id.",
            [
                Problem(
                    "transactions",
                    "customer_id",
                    "missing_key",
                    "missing customer ids",
                    n_rows=n_missing,
                    fix="drop these rows",
                )
            ],
        )
    coder, codes = _CustomerCoder.from_arrow(tab.column("customer_id"), customer_ids)
    tab = tab.drop_columns(["customer_id"])  # free the id strings before the next copies
    dates = tab.column("date")
    if dates.null_count:
        raise AnalysisError(
            f"{dates.null_count:,} rows of transactions have no date.",
            [
                Problem(
                    "transactions",
                    "date",
                    "missing_date",
                    "missing dates",
                    n_rows=dates.null_count,
                    fix="drop or repair rows without a date before the value study",
                )
            ],
        )
    days = pc.cast(dates, pa.int32()).to_numpy(zero_copy_only=False)
    del dates
    tab = tab.drop_columns(["date"])
    amount = tab.column("amount").to_numpy(zero_copy_only=False).astype(float, copy=False)
    tab = tab.drop_columns(["amount"])
    bad = np.isnan(amount)
    if bad.any():
        raise AnalysisError(
            f"{int(bad.sum()):,} transactions have no numeric amount.",
            [
                Problem(
                    "transactions",
                    "amount",
                    "missing_amount",
                    "missing or non-numeric amounts",
                    n_rows=int(bad.sum()),
                    examples=examples_of(pd.Series(coder.ids[codes[bad]])),
                    fix="repair or drop these rows",
                )
            ],
        )
    m = tab.column("margin")
    margin = (
        m.to_numpy(zero_copy_only=False).astype(float, copy=False)
        if m.null_count < len(m)
        else None
    )
    del m, tab
    pa.default_memory_pool().release_unused()
    return _CodedTransactions(coder, codes, days, amount, margin)


def _coded_table(study, name: str, columns, coder: _CustomerCoder) -> pd.DataFrame:
    """Pull a contract table to pandas with customer ids as codes, bypassing the study cache.

    ``study.table`` keeps every table it pulls for the rest of the notebook; these
    are needed only while the churn features are built.
    """
    t = study.source.table(name)
    if columns:
        t = t.select(*columns)
    frame = t.to_pandas()
    frame["customer_id"] = coder.codes_of(frame["customer_id"])
    return frame


def _try_pareto(summary, notes, label):
    try:
        return fit_pareto_nbd(summary)
    except AnalysisError as exc:
        notes.append(
            f"The Pareto/NBD model could not be fitted on the {label} data ({exc.summary}); it is left out."
        )
        return None


def value_study(
    study,
    *,
    calibration_weeks: int | None = None,
    holdout_weeks: int | None = None,
    freq: str | None = None,
    horizon_months: float | None = None,
    discount_rate: float | None = None,
    risk_horizon_months: float | None = None,
    tier_quantiles: tuple[float, float] | None = None,
    risk_threshold: float | None = None,
    risk_top_share: float | None = None,
    n_draws: int = 50,
    seed: int = 0,
) -> ValueStudy:
    """Run the customer value and churn-risk study on a loaded data source.

    Steps: (1) calibration/holdout split, BG/NBD, Pareto/NBD and Gamma-Gamma fits on
    the calibration period, validated on the holdout; (2) refit on all data to
    ``as_of`` and score every active customer: P(alive), expected transactions and
    spend, CLV over the horizon; (3) a contractual churn-risk model where the data
    has churn dates (otherwise risk = 1 - P(alive)); (4) value tiers, concentration
    and the ranked list of customers to protect.

    Parameters
    ----------
    study : analysis.data.StudyData
        From :func:`analysis.data.load_study_data`; its params' ``value`` section gives
        the defaults of every argument left as None.
    calibration_weeks, holdout_weeks : int, optional
        Split of the window (0: half / the rest).
    freq : {"D", "W", "M"}, optional
        Time unit of the purchase models.
    horizon_months, discount_rate, risk_horizon_months : float, optional
        CLV horizon (months), annual discount rate, churn-risk label window (months).
    tier_quantiles : (float, float), optional
        CLV-tier cut-points (params ``value.tier_quantiles``; default top 20% high,
        next 30% medium).
    risk_threshold : float, optional
        Absolute risk at or above which a customer counts as at risk; default: the
        ``risk_top_share`` riskiest customers.
    risk_top_share : float, optional
        Share of customers counted as at risk (relative definition; params
        ``value.risk_top_share``).
    n_draws : int
        Parameter draws for the total-CLV interval.
    seed : int
        Seed for the bootstrap, the parameter draws and the churn model.

    Returns
    -------
    ValueStudy
    """
    vp = study.params.value
    calibration_weeks = vp.calibration_weeks if calibration_weeks is None else calibration_weeks
    holdout_weeks = vp.holdout_weeks if holdout_weeks is None else holdout_weeks
    freq = freq or vp.freq
    horizon_months = vp.clv_horizon_months if horizon_months is None else horizon_months
    discount_rate = vp.discount_rate_annual if discount_rate is None else discount_rate
    risk_horizon_months = (
        vp.risk_horizon_months if risk_horizon_months is None else risk_horizon_months
    )
    if tier_quantiles is None:
        tier_quantiles = tuple(getattr(vp, "tier_quantiles", (0.5, 0.8)))
    if risk_top_share is None:
        risk_top_share = float(getattr(vp, "risk_top_share", 0.2))
    unit = _unit_days(freq)
    horizon = horizon_months * _MONTH_DAYS / unit
    notes: list[str] = []

    customers = study.table("customers")
    as_of = pd.Timestamp(study.as_of)
    window_start = pd.Timestamp(study.window_start)
    # Transactions stay compact arrays with integer customer codes: at a million
    # customers a pandas frame of string ids costs gigabytes and most of the run time.
    txa = _study_transactions(study, customers["customer_id"])
    coder = txa.coder
    n_codes = len(coder.ids)
    cust_codes = coder.codes_of(customers["customer_id"])
    margin_col = "margin" if txa.margin is not None else None

    # (1) Calibration / holdout on the cohort acquired inside the window (its first
    # purchase is its true first purchase); left-truncated customers are scored later.
    cal_end, obs_end = _split_dates(window_start, as_of, calibration_weeks, holdout_weeks)
    signup = pd.to_datetime(customers["signup_date"])
    in_cohort = (signup >= window_start).to_numpy()
    n_truncated = int((signup < window_start).sum())
    if n_truncated:
        notes.append(
            f"{n_truncated:,} customers signed up before the data window starts; their first purchase in "
            "the data is not their first purchase, so the calibration/holdout check uses only the "
            f"{int(in_cohort.sum()):,} customers who joined inside the window. All active customers are scored."
        )
    cohort_code = np.zeros(n_codes, bool)
    cohort_code[cust_codes[in_cohort]] = True
    rows = cohort_code[txa.codes]
    cal_pairs: list = []
    calib, cal_who = _rfm_from_codes(
        txa.codes[rows],
        coder.ids,
        txa.days[rows],
        txa.amount[rows],
        None,
        cal_end=_as_day(cal_end, "calibration_end"),
        obs_end=_as_day(obs_end, "observation_end"),
        freq=freq,
        purchase_days=cal_pairs,
    )
    del rows
    m_cal = {"bgnbd": fit_bgnbd(calib), "gamma_gamma": fit_gamma_gamma(calib)}
    m_cal["pareto_nbd"] = _try_pareto(calib, notes, "calibration")
    hbf = holdout_by_frequency(calib, m_cal["bgnbd"])
    if m_cal["pareto_nbd"] is not None:
        hbf = hbf.merge(
            holdout_by_frequency(calib, m_cal["pareto_nbd"])[
                ["frequency_group", "predicted"]
            ].rename(columns={"predicted": "predicted_pareto_nbd"}),
            on="frequency_group",
        )
    herr = pd.DataFrame(
        [holdout_errors(calib, m) for k, m in m_cal.items() if k != "gamma_gamma" and m is not None]
    )
    first_by_code = np.full(n_codes, np.iinfo(np.int64).max)
    first_by_code[cal_who] = (
        calib["first_purchase"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    )
    pair_cust, pair_day = cal_pairs
    tracking = _tracking_table(pair_day[pair_day > first_by_code[pair_cust]], calib, m_cal["bgnbd"])
    del cal_pairs, pair_cust, pair_day, first_by_code

    # (2) Refit on everything to as_of and score active customers.
    now, now_who = _rfm_from_codes(
        txa.codes,
        coder.ids,
        txa.days,
        txa.amount,
        txa.margin,
        cal_end=_as_day(as_of, "calibration_end"),
        obs_end=None,
        freq=freq,
    )
    gone_code = np.zeros(n_codes, bool)
    if "churn_date" in customers.columns:
        cd = pd.to_datetime(customers["churn_date"])
        gone_code[cust_codes[(cd.notna() & (cd <= as_of)).to_numpy()]] = True
    n_gone = int(gone_code.sum())
    keep_now = ~gone_code[now_who]
    active = now[keep_now].reset_index(drop=True)
    active.attrs.update(now.attrs)
    active_codes = now_who[keep_now]
    if n_gone:
        notes.append(
            f"{n_gone:,} customers had already churned (contract ended) by {as_of.date()} and are not scored."
        )
    scored_code = np.zeros(n_codes, bool)
    scored_code[now_who] = True
    n_never = int((~scored_code[cust_codes]).sum())
    if n_never:
        notes.append(f"{n_never:,} customers have no purchase in the data and cannot be scored.")
    # The Pareto/NBD (slow: a hypergeometric function per customer) is fitted on the
    # calibration period only, to compare holdout accuracy with the BG/NBD.
    models = {"bgnbd": fit_bgnbd(now), "gamma_gamma": fit_gamma_gamma(now)}
    del now
    txa.margin = None
    margin = "margin_ratio" if margin_col else 1.0
    if not margin_col:
        notes.append("The data has no margin column, so CLV is expressed in revenue, not margin.")
    _check_freq(active, freq)
    rate = _per_unit_rate(discount_rate, freq)
    clv_inputs = _ClvInputs(active, margin)
    c = pd.DataFrame(
        {
            "customer_id": clv_inputs.customer_id,
            **_clv_columns(
                models["bgnbd"],
                models["gamma_gamma"],
                clv_inputs,
                horizon=float(horizon),
                rate=rate,
                step=1.0,
            ),
        },
        index=clv_inputs.index,
    )
    total = _clv_interval(
        models["bgnbd"],
        models["gamma_gamma"],
        clv_inputs,
        float(c["clv"].sum()),
        horizon=float(horizon),
        rate=rate,
        freq=freq,
        n_draws=n_draws,
        level=0.95,
        seed=seed,
    )
    del clv_inputs
    scores = active[
        ["customer_id", "frequency", "recency", "T", "monetary_value", "calibration_value"]
    ].copy()
    scores = scores.join(c.drop(columns=["customer_id"]))
    if "segment" in customers.columns:
        seg_by_code = np.full(n_codes, None, dtype=object)
        seg_by_code[cust_codes] = customers["segment"].to_numpy(dtype=object)
        scores["segment"] = (
            pd.Series(seg_by_code[active_codes]).fillna("unknown").astype(str).to_numpy()
        )
    else:
        scores["segment"] = "all"
    scores["risk"] = 1.0 - scores["p_alive"]
    scores["risk_source"] = "1 - P(alive), BG/NBD"

    # (3) Contractual churn risk where churn dates exist.
    churn = None
    has_churn = "churn_date" in customers.columns and customers["churn_date"].notna().any()
    if has_churn:
        cuts = churn_risk_cutoffs(as_of, horizon_months=risk_horizon_months)
        attrs = [
            a
            for a in ["segment", *getattr(study.source, "attributes", [])]
            if a in customers.columns
        ]
        exp_cols = ["customer_id", "date", "kind", "first_contact_resolution", "sla_met"]
        exp_cols += ["csat", "nps"]
        kw = dict(
            horizon_months=risk_horizon_months,
            definition="contractual",
            customer_id="customer_id",
            signup="signup_date",
            churn="churn_date",
            attributes=attrs,
            extra=None,
            as_of=as_of,
            experience=_ExperienceArrays(
                _coded_table(study, "experience", exp_cols, coder), "customer_id"
            )
            if study.has("experience")
            else None,
            loyalty=_coded_table(study, "loyalty", None, coder) if study.has("loyalty") else None,
        )
        cust_cols = ["customer_id", "signup_date", "churn_date", *attrs]
        coded_customers = coder.code_frame(customers[cust_cols], "customer_id")
        bins = _TxBins(
            txa.codes,
            txa.days,
            txa.amount,
            n_codes,
            [_cutoff_days(cuts[k], risk_horizon_months) for k in ("train", "test", "score")],
        )
        del txa  # the bins hold all the churn model needs from the transactions
        args = (coded_customers, coder, bins)
        try:
            train = _churn_features_coded(*args, cutoff=cuts["train"], **kw)
            test = _churn_features_coded(*args, cutoff=cuts["test"], **kw)
            churn = fit_churn_risk(train, test, seed=seed)
            del train, test
            cur = _churn_features_coded(*args, cutoff=cuts["score"], **kw)
            p = churn.predict(cur)
            pmap = pd.Series(p.to_numpy(), index=cur["customer_id"].to_numpy())
            got = pmap.reindex(scores["customer_id"].to_numpy())
            ok = got.notna().to_numpy()
            scores.loc[ok, "risk"] = got.to_numpy()[ok]
            scores.loc[ok, "risk_source"] = f"churn-risk model, next {risk_horizon_months:g} months"
        except AnalysisError as exc:
            notes.append(
                f"The churn-risk model could not be fitted ({exc.summary}); risk = 1 - P(alive) instead."
            )
            churn = None
    else:
        notes.append(
            "The data has no churn dates (non-contractual), so risk is the BG/NBD probability that the "
            "customer has already lapsed, 1 - P(alive)."
        )

    # (4) Tiers, concentration, customers to protect.
    ranked = customers_to_protect(
        scores,
        value="clv",
        risk="risk",
        tier_quantiles=tier_quantiles,
        risk_threshold=risk_threshold,
        risk_top_share=risk_top_share,
        strategic_segments=vp.strategic_segments,
        strategic_column=None,
    )
    if vp.strategic_column and vp.strategic_column in customers.columns:
        flag = customers.set_index("customer_id")[vp.strategic_column].fillna(False).astype(bool)
        ranked["strategic"] = (
            ranked["strategic"] | flag.reindex(ranked["customer_id"]).fillna(False).to_numpy()
        )
    scores = scores.merge(
        ranked[["customer_id", "clv_tier", "strategic", "at_risk", "value_at_stake", "protect"]],
        on="customer_id",
    )
    conc = value_concentration(scores["clv"], top=vp.top_share, seed=seed)
    by_group = protect_summary(
        ranked, by=["segment", "clv_tier"], min_group_size=study.min_group_size
    )
    tier = scores.groupby("clv_tier", observed=True)
    total_clv_sum = scores["clv"].sum()
    rfm_by_tier = tier.agg(
        customers=("customer_id", "size"),
        frequency=("frequency", "mean"),
        recency=("recency", "mean"),
        T=("T", "mean"),
        monetary_value=("monetary_value", "mean"),
        p_alive=("p_alive", "mean"),
        clv=("clv", "mean"),
        clv_total=("clv", "sum"),
        risk=("risk", "mean"),
    ).reset_index()
    rfm_by_tier["clv_share"] = rfm_by_tier["clv_total"] / total_clv_sum
    rfm_by_tier["clv_tier"] = rfm_by_tier["clv_tier"].astype(str)
    order = {t: i for i, t in enumerate(("high", "medium", "low"))}
    rfm_by_tier = rfm_by_tier.sort_values("clv_tier", key=lambda c: c.map(order)).reset_index(
        drop=True
    )
    tabs = [
        parameter_table(models["bgnbd"]).assign(fitted_on=f"all data to {as_of.date()}"),
        parameter_table(models["gamma_gamma"]).assign(fitted_on=f"all data to {as_of.date()}"),
    ]
    for key in ("bgnbd", "pareto_nbd", "gamma_gamma"):
        if m_cal.get(key) is not None:
            tabs.append(parameter_table(m_cal[key]).assign(fitted_on=f"calibration to {cal_end}"))
    params_tab = pd.concat(tabs, ignore_index=True)
    settings = {
        "as_of": str(as_of.date()),
        "window_start": str(window_start.date()),
        "calibration_end": str(cal_end),
        "observation_end": str(obs_end),
        "freq": freq,
        "unit_label": {"D": "days", "W": "weeks", "M": "months"}[freq],
        "horizon_units": horizon,
        "horizon_months": horizon_months,
        "discount_rate": discount_rate,
        "risk_horizon_months": risk_horizon_months,
        "risk_threshold": risk_threshold,
        "risk_top_share": risk_top_share,
        "tier_quantiles": tier_quantiles,
        "n_calibration": len(calib),
        "n_scored": len(scores),
        "margin": bool(margin_col),
    }
    return ValueStudy(
        settings=settings,
        calibration=calib,
        models_calibration=m_cal,
        holdout_by_frequency=hbf,
        holdout_errors=herr,
        tracking=tracking,
        models=models,
        parameters=params_tab,
        scores=scores,
        total_clv=total,
        concentration=conc,
        ranked=ranked,
        by_group=by_group,
        rfm_by_tier=rfm_by_tier,
        churn=churn,
        notes=notes,
    )


def _auc_word(auc: float) -> str:
    if auc < 0.6:
        return "only slightly better than chance"
    if auc < 0.7:
        return "moderately"
    if auc < 0.8:
        return "well"
    return "very well"


def study_findings(vs: ValueStudy, *, currency: str = "") -> list[str]:
    """Write the report's headline findings from a :class:`ValueStudy`."""
    months = vs.settings["horizon_months"]
    s = value_findings(
        vs.concentration,
        vs.ranked,
        currency=f"{currency} " if currency and len(currency) > 1 else currency,
        horizon_label=f"over the next {months:g} months",
        total_clv=vs.total_clv,
    )
    e = vs.holdout_errors.set_index("model")
    if "BG/NBD" in e.index:
        r = e.loc["BG/NBD"]
        s.append(
            f"Validation: on the holdout ({vs.settings['calibration_end']} to {vs.settings['observation_end']}) "
            f"the BG/NBD model predicted {r['predicted_total']:,.0f} repeat purchases against "
            f"{r['actual_total']:,.0f} observed ({r['total_error_pct']:+.1f}%)."
        )
    if vs.churn is not None:
        ch = vs.churn
        s.append(
            f"The churn-risk model ranks customers {_auc_word(ch.auc)} out of time: test AUC {ch.auc:.2f} "
            f"(95% CI {ch.auc_ci[0]:.2f} to {ch.auc_ci[1]:.2f}; 0.5 = chance); calibration slope "
            f"{ch.calibration_slope:.2f} (95% CI {ch.calibration_ci['slope'][0]:.2f} to "
            f"{ch.calibration_ci['slope'][1]:.2f}; 1 = predicted risks neither too extreme nor too flat)."
        )
    return s


def write_export(ranked: pd.DataFrame, path) -> Path:
    """Write the full ranked list of customers to protect as CSV (never shown in reports).

    Returns the path written. Parent folders are created.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ranked.to_csv(p, index=False, float_format="%.4f")
    return p


# ---------------------------------------------------------------------------
# Plots (return a matplotlib Figure; the notebook shows it)
# ---------------------------------------------------------------------------


def plot_tracking(tracking: pd.DataFrame, *, unit_label: str = "weeks"):
    """Plot actual vs expected repeat transactions over time, the calibration end marked."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    x = tracking["period_end"]
    boundary = tracking.loc[tracking["calibration"], "period_end"].max()
    for ax, (a, e, title) in zip(
        axes,
        [
            ("actual_cum", "expected_cum", "Cumulative repeat transactions"),
            ("actual", "expected", f"Repeat transactions per period ({unit_label[:-1]})"),
        ],
        strict=True,
    ):
        ax.plot(x, tracking[a], label="actual", color="black")
        ax.plot(x, tracking[e], label="BG/NBD expected", color="tab:blue", linestyle="--")
        ax.axvline(boundary, color="grey", linestyle=":", label="end of calibration")
        ax.set_title(title)
        ax.legend(frameon=False)
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def plot_holdout_by_frequency(table: pd.DataFrame):
    """Plot mean holdout transactions, actual vs predicted, by calibration frequency group."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    pos = np.arange(len(table))
    ax.plot(pos, table["actual"], marker="o", color="black", label="actual")
    ax.plot(pos, table["predicted"], marker="s", linestyle="--", color="tab:blue", label="BG/NBD")
    if "predicted_pareto_nbd" in table.columns:
        ax.plot(
            pos,
            table["predicted_pareto_nbd"],
            marker="^",
            linestyle=":",
            color="tab:orange",
            label="Pareto/NBD",
        )
    ax.set_xticks(pos, table["frequency_group"])
    ax.set_xlabel("repeat transactions in the calibration period")
    ax.set_ylabel("mean transactions in the holdout")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_value_curve(values: pd.Series):
    """Plot the cumulative share of expected value against the share of customers (highest first)."""
    import matplotlib.pyplot as plt

    v = np.sort(np.asarray(values, float))[::-1]
    share_c = np.arange(1, v.size + 1) / v.size
    share_v = np.cumsum(v) / v.sum()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(share_c, share_v, color="tab:blue")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set_xlabel("share of customers (highest value first)")
    ax.set_ylabel("share of expected value")
    fig.tight_layout()
    return fig


def plot_p_alive(scores: pd.DataFrame, *, tier: str = "clv_tier"):
    """Plot the distribution of P(alive) by value tier."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 21)
    for t in ["high", "medium", "low"]:
        sub = scores.loc[scores[tier] == t, "p_alive"]
        if len(sub):
            ax.hist(
                sub, bins=bins, histtype="step", density=True, label=f"{t} value", linewidth=1.5
            )
    ax.set_xlabel("P(alive) at the as-of date")
    ax.set_ylabel("density")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_churn_model(result: ChurnRiskResult):
    """Plot the churn-risk model's calibration (with intervals), gains and permutation importance."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    cal = result.calibration
    ax = axes[0]
    hi = float(max(cal["mean_predicted"].max(), cal["ci_upper"].max())) * 1.05
    ax.plot([0, hi], [0, hi], color="grey", linestyle=":")
    ax.errorbar(
        cal["mean_predicted"],
        cal["observed"],
        # Clipped: at 0 or n events the Wilson bound equals the share up to rounding.
        yerr=[
            np.clip(cal["observed"] - cal["ci_lower"], 0, None),
            np.clip(cal["ci_upper"] - cal["observed"], 0, None),
        ],
        fmt="o",
        color="tab:blue",
    )
    ax.set_xlabel("mean predicted churn probability")
    ax.set_ylabel("observed churn share")
    ax.set_title("Calibration (test cutoff)")
    g = result.gains
    ax = axes[1]
    ax.plot(
        np.r_[0, g["cum_share_customers"]],
        np.r_[0, g["cum_share_churners"]],
        marker="o",
        color="tab:blue",
        label="model",
    )
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    ax.set_xlabel("share of customers contacted (highest risk first)")
    ax.set_ylabel("share of churners reached")
    ax.set_title("Gains")
    ax.legend(frameon=False)
    imp = result.importance.head(10).iloc[::-1]
    ax = axes[2]
    ax.barh(imp["feature"], imp["importance"], xerr=imp["sd"], color="tab:blue")
    ax.set_xlabel("drop in test AUC when shuffled")
    ax.set_title("Permutation importance")
    fig.tight_layout()
    return fig


def churn_summary_table(result: ChurnRiskResult) -> pd.DataFrame:
    """Return the churn-risk model's out-of-time test measures as a two-column table (text values)."""
    rows = [
        ("customers in training (earlier cutoff)", f"{result.n_train:,}"),
        ("customers in test (later cutoff)", f"{result.n_test:,}"),
        (
            "churn share, training / test",
            f"{result.base_rate_train:.1%} / {result.base_rate_test:.1%}",
        ),
        (
            "test ROC AUC (95% bootstrap CI)",
            f"{result.auc:.3f} ({result.auc_ci[0]:.3f} to {result.auc_ci[1]:.3f})",
        ),
        (
            "calibration slope (95% CI; 1 = ideal)",
            f"{result.calibration_slope:.2f} ({result.calibration_ci['slope'][0]:.2f} to {result.calibration_ci['slope'][1]:.2f})",
        ),
        (
            "calibration intercept (95% CI; 0 = ideal)",
            f"{result.calibration_intercept:.2f} ({result.calibration_ci['intercept'][0]:.2f} to "
            f"{result.calibration_ci['intercept'][1]:.2f})",
        ),
        ("Brier score", f"{result.brier:.4f}"),
    ]
    return pd.DataFrame(rows, columns=["measure", "value"])
