"""RFM summaries: one row per customer with the sufficient statistics of the purchase models.

frequency = repeat purchases, recency t_x, age T (BG/NBD and Pareto/NBD) and the
mean value of repeat purchases (Gamma-Gamma). Time columns are in units of the
summary's ``freq`` ("D" days, "W" weeks of 7 days, "M" months of 30.4375 days);
money is in the currency of the input.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError, Problem, examples_of
from analysis.stats.btyd.units import _as_day, _day_numbers, _unit_days


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
