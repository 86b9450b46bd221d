"""Number formatting for reports: percentages, money, estimates with intervals, table cells.

Pure functions from numbers to text, shared by the display helpers
(:mod:`analysis.report.display`) and the sentence templates of each study.
Missing values print as ``"n/a"`` (single numbers) or an en dash (table cells).
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

_CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}
_MISSING = "–"  # en dash for a missing value in a table cell


def _is_missing(x: Any) -> bool:
    if x is None or x is pd.NA or x is pd.NaT:
        return True
    try:
        return bool(isinstance(x, numbers.Real) and math.isnan(x))
    except TypeError:
        return False


def _num(x: float, digits: int) -> str:
    return f"{x:,.{digits}f}"


def fmt_pct(x: float, digits: int = 1) -> str:
    """Format a fraction as a percentage: ``0.1234 -> "12.3%"``.

    Parameters
    ----------
    x : float
        A fraction (0.25 means 25 %). Missing values give ``"n/a"``.
    digits : int, default 1
        Decimals of the percentage.
    """
    if _is_missing(x):
        return "n/a"
    return f"{100 * float(x):,.{digits}f}%"


def fmt_money(x: float, currency: str = "EUR", *, digits: int | None = None) -> str:
    """Format an amount of money: ``1234.5 -> "€1,234"``, ``12.5 -> "€12.50"``.

    Parameters
    ----------
    x : float
        Amount in units of ``currency``. Missing values give ``"n/a"``.
    currency : str, default "EUR"
        ISO code; EUR, USD and GBP print as their symbol before the number,
        other codes after it (``"1,234 CHF"``).
    digits : int, optional
        Decimals. Default: 2 below 1,000 in absolute value, else 0.
    """
    if _is_missing(x):
        return "n/a"
    x = float(x)
    if digits is None:
        digits = 2 if abs(x) < 1000 else 0
    body = _num(abs(x), digits)
    sign = "-" if x < 0 and body.strip("0.,") else ""
    symbol = _CURRENCY_SYMBOLS.get(currency.upper())
    if symbol:
        return f"{sign}{symbol}{body}"
    return f"{sign}{body} {currency}"


def fmt_ci(
    est: float,
    lo: float,
    hi: float,
    *,
    digits: int = 2,
    pct: bool = False,
    level: float = 0.95,
) -> str:
    """Format an estimate with its confidence interval: ``"0.62 (95% CI 0.55–0.70)"``.

    The bounds are joined by an en dash; when either bound is negative they are
    joined by " to " instead, because "-0.20–-0.05" is hard to read.

    Parameters
    ----------
    est, lo, hi : float
        Point estimate and interval bounds (fractions when ``pct=True``).
    digits : int, default 2
        Decimals (of the percentage when ``pct=True``).
    pct : bool, default False
        Show as percentages: ``"62.0% (95% CI 55.0%–70.0%)"``.
    level : float, default 0.95
        Confidence level printed in the label.
    """
    if _is_missing(est):
        return "n/a"

    def f(v: float) -> str:
        return fmt_pct(v, digits) if pct else _num(float(v), digits)

    label = f"{100 * level:g}% CI"
    if _is_missing(lo) or _is_missing(hi):
        return f"{f(est)} ({label} not available)"
    sep = " to " if (lo < 0 or hi < 0) else "–"
    return f"{f(est)} ({label} {f(lo)}{sep}{f(hi)})"


def _format_value(x: Any) -> str:
    """Format one table cell without an explicit format."""
    if _is_missing(x):
        return _MISSING
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if isinstance(x, numbers.Integral):
        return f"{int(x):,}"
    if isinstance(x, numbers.Real):
        v = float(x)
        if v != 0 and abs(v) < 0.01:
            return f"{v:.2g}"
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}"
    if isinstance(x, pd.Timestamp | dt.datetime):
        ts = pd.Timestamp(x)
        return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.strftime("%Y-%m-%d %H:%M")
    if isinstance(x, dt.date):
        return x.isoformat()
    if isinstance(x, pd.Period):
        return str(x)
    return str(x)


def _apply_format(x: Any, fmt: str | Callable[[Any], str] | None) -> str:
    if _is_missing(x):
        return _MISSING
    if fmt is None:
        return _format_value(x)
    if callable(fmt):
        return str(fmt(x))
    if "{" in fmt:
        return fmt.format(x)
    return format(x, fmt)
