"""Time units and day numbers of the buy-till-you-die models.

Time columns of a summary are in units of its ``freq`` ("D" days, "W" weeks of
7 days, "M" months of 30.4375 days); dates become int64 day numbers since
1970-01-01.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError, Problem

#: Length of one time unit in days.
FREQ_DAYS = {"D": 1.0, "W": 7.0, "M": 30.4375}

#: Length of one month in days (the month of ``freq="M"`` and of month horizons).
_MONTH_DAYS = 30.4375


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
