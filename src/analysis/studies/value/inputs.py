"""What the value study reads from the event tables: per-customer statistics built on
the engine (:mod:`analysis.data.customer_stats`), turned into the study's arrays.

Nothing here pulls a transaction or an experience event into Python: each pull is
one row per customer (or per customer and window, or per calendar day).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError, Problem
from analysis.stats.btyd.units import _unit_days
from analysis.studies.value.churn_risk import _CustomerCoder, _TxBins


def _problem(n: int, column: str, kind: str, what: str, fix: str, message: str):
    return AnalysisError(
        message.format(n=n),
        [Problem("transactions", column, kind, what, n_rows=n, fix=fix)],
    )


def check_transactions(study) -> bool:
    """Stop on transactions the purchase models cannot read; return True if margins exist.

    Rows without a customer id, a date or a numeric amount raise an
    :class:`~analysis.errors.AnalysisError` naming the column, the count and the fix
    (validation normally stops them first). Margins count as present when at least
    one row has one.
    """
    from analysis.data import customer_stats

    g = customer_stats.input_gaps(study.source).to_pyarrow().to_pylist()[0]
    checks = (
        (
            "no_id",
            "customer_id",
            "missing_key",
            "missing customer ids",
            "drop these rows",
            "{n:,} transactions have no customer_id.",
        ),
        (
            "no_date",
            "date",
            "missing_date",
            "missing dates",
            "drop or repair rows without a date before the value study",
            "{n:,} rows of transactions have no date.",
        ),
        (
            "no_amount",
            "amount",
            "missing_amount",
            "missing or non-numeric amounts",
            "repair or drop these rows",
            "{n:,} transactions have no numeric amount.",
        ),
    )
    for key, column, kind, what, fix, message in checks:
        n = int(g[key] or 0)
        if n:
            raise _problem(n, column, kind, what, fix, message)
    return bool(g["margins"])


def _days(col) -> np.ndarray:
    """Day numbers (days since 1970-01-01, int64) of an Arrow date column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(col, pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)


def rfm_table(study, *, cal_end: int, obs_end, margin: bool, since_signup=None):
    """Pull :func:`analysis.data.customer_stats.rfm` (day numbers in, Arrow table out),
    keyed by ``_code``, the customer code of ``study.source.customer_keys()``."""
    from analysis.data import customer_stats

    def day(d):
        return None if d is None else np.datetime64(int(d), "D").item()

    tab = customer_stats.rfm(
        study.source,
        calibration_end=day(cal_end),
        observation_end=day(obs_end),
        since_signup=since_signup,
        margin=margin,
        coded=True,
    ).to_pyarrow()
    return tab


def rfm_frame(tab, coder: _CustomerCoder, *, cal_end: int, obs_end, freq: str):
    """Return (RFM summary frame, customer code of each row) from an engine RFM table
    (:func:`rfm_table`, keyed by ``_code``; ``coder`` from the same source).

    The frame has the columns and ``attrs`` of
    :func:`analysis.studies.value.rfm_summary`; rows come in ascending code order.
    """
    unit = _unit_days(freq)
    who = coder.codes_in(tab)
    order = np.argsort(who, kind="stable")
    who = who[order]

    def col(name, dtype=float):
        return tab.column(name).to_numpy(zero_copy_only=False).astype(dtype)[order]

    first, last = _days(tab.column("first"))[order], _days(tab.column("last"))[order]
    n_days = col("days", np.int64)
    total, first_val = col("total"), col("first_value")
    x = n_days - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        mval = np.where(x > 0, (total - first_val) / np.maximum(x, 1), np.nan)
    out = pd.DataFrame(
        {
            "customer_id": coder.ids_of(who) if len(who) else pd.Index([], dtype=object),
            "first_purchase": first.astype("datetime64[D]").astype("datetime64[s]"),
            "frequency": x.astype(np.int64),
            "recency": (last - first) / unit,
            "T": (cal_end - first) / unit,
            "monetary_value": mval,
            "first_value": first_val,
            "calibration_value": total,
        }
    )
    if "margin_total" in tab.column_names:
        tot_m = col("margin_total")
        with np.errstate(invalid="ignore", divide="ignore"):
            out["margin_ratio"] = np.where(total != 0, tot_m / total, np.nan)
    if obs_end is not None:
        out["frequency_holdout"] = col("holdout_days", np.int64)
        out["value_holdout"] = col("holdout_value")
        out["duration_holdout"] = (obs_end - cal_end) / unit
    out.attrs.update(
        {
            "freq": freq,
            "calibration_end": str(np.datetime64(cal_end, "D")),
            "observation_end": None if obs_end is None else str(np.datetime64(obs_end, "D")),
        }
    )
    return out, who


def repeat_days(study, *, cal_end, obs_end, since_signup) -> tuple[np.ndarray, np.ndarray]:
    """Return (day numbers, repeat purchase days on each) for the tracking plot."""
    from analysis.data import customer_stats

    tab = customer_stats.repeat_purchases_by_day(
        study.source,
        calibration_end=cal_end,
        observation_end=obs_end,
        since_signup=since_signup,
    ).to_pyarrow()
    counts = tab.column("purchases").to_numpy(zero_copy_only=False).astype(float)
    return _days(tab.column("date")), counts


def value_by_code(study, coder: _CustomerCoder, *, recent_since, margin: bool):
    """Return (value of all transactions, value since ``recent_since``) per customer code
    (``coder`` from ``study.source``)."""
    from analysis.data import customer_stats

    tab = customer_stats.value_totals(
        study.source, recent_since=recent_since, margin=margin, coded=True
    ).to_pyarrow()
    code = coder.codes_in(tab)
    ok = code >= 0
    n = len(coder.ids)
    total, recent = np.zeros(n), np.zeros(n)
    total[code[ok]] = tab.column("value").to_numpy(zero_copy_only=False).astype(float)[ok]
    recent[code[ok]] = tab.column("recent_value").to_numpy(zero_copy_only=False).astype(float)[ok]
    return total, recent


def purchase_bins(study, coder: _CustomerCoder, cutoffs, codes=None) -> _TxBins:
    """Return the churn-risk feature windows of ``cutoffs`` (pairs of day numbers) as
    :class:`_TxBins`, summed per customer and window on the engine.

    ``codes``: the customer codes to bin (the engine keeps only their transactions),
    or None for every customer.
    """
    from analysis.data import customer_stats

    edges = [np.datetime64(int(e), "D").item() for e in _TxBins.edges_of(cutoffs)]
    tab = customer_stats.window_bins(study.source, edges, coded=True, codes=codes).to_pyarrow()
    return _TxBins.from_table(tab, coder, cutoffs, rows=codes)
