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
        return bool(isinstance(x, numbers.Real) and not math.isfinite(x))
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


#: From a million on, money prints in words of its scale, to three significant figures.
_MONEY_SCALES = ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"))


def money_scale(x: float) -> tuple[float, str] | None:
    """Return the scale (divisor, word) an amount prints in: ``3.7e9 -> (1e9, "billion")``.

    ``None`` below a million. An amount that rounds up to the next scale at three
    significant figures takes that scale (999.96 million prints as "1.00 billion").
    """
    a = abs(float(x))
    for div, word in _MONEY_SCALES:
        if a >= div * 0.9995:
            return div, word
    return None


def _sig_digits(v: float, sig: int = 3) -> int:
    """Decimals that show ``v`` to ``sig`` significant figures (none for 100 and above)."""
    a = abs(v)
    return 0 if a == 0 or a >= 10 ** (sig - 1) else sig - 1 - math.floor(math.log10(a))


def _scaled_money(
    x: float, scale: tuple[float, str], digits: int, currency: str, *, word: bool = True
) -> str:
    div, name = scale
    body = _num(abs(float(x)) / div, digits)
    sign = "-" if float(x) < 0 and body.strip("0.,") else ""
    symbol = _CURRENCY_SYMBOLS.get(currency.upper())
    tail = f" {name}" if word else ""
    if symbol:
        return f"{sign}{symbol}{body}{tail}"
    return f"{sign}{body}{tail} {currency}" if word else f"{sign}{body}"


def fmt_money(x: float, currency: str = "EUR", *, digits: int | None = None) -> str:
    """Format an amount of money: ``1234.5 -> "€1,234"``, ``12.5 -> "€12.50"``,
    ``3_713_514_031 -> "€3.71 billion"``.

    Parameters
    ----------
    x : float
        Amount in units of ``currency``. Missing values give ``"n/a"``.
    currency : str, default "EUR"
        ISO code; EUR, USD and GBP print as their symbol before the number,
        other codes after it (``"1,234 CHF"``).
    digits : int, optional
        Decimals of amounts below a million. Default: 2 below 1,000 in absolute
        value, else 0. From a million on, amounts print in millions, billions or
        trillions to three significant figures, whatever ``digits`` says: a reader
        takes in "€3.71 billion" at a glance, not "€3,713,514,031".
    """
    if _is_missing(x):
        return "n/a"
    x = float(x)
    scale = money_scale(x)
    if scale is not None:
        return _scaled_money(x, scale, _sig_digits(round(x / scale[0], 2)), currency)
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


# --------------------------------------------------------------------------------------
# One set of formatters for stakeholder pages (issue 15): a value with its unit,
# an estimate and its interval in one cell, p-values, months, percentage points.
# --------------------------------------------------------------------------------------

#: Text shown for an estimate that could not be computed.
NOT_ESTIMABLE = "not estimable"
_MINUS = "\u2212"  # a real minus sign: "−0.5 points"

KINDS = ("number", "count", "pct", "pp", "money", "months", "days", "ratio", "p")


def fmt_num(x: float, digits: int | None = None) -> str:
    """Format a plain number: ``1234.5 -> "1,235"``, ``0.617 -> "0.62"``.

    Parameters
    ----------
    x : float
        The number. Missing values give ``"n/a"``.
    digits : int, optional
        Decimals. Default: 0 from 100 up in absolute value, else 2.
    """
    if _is_missing(x):
        return "n/a"
    x = float(x)
    if digits is None:
        digits = 0 if abs(x) >= 100 else 2
    text = _num(x, digits)
    return (
        text.replace("-", _MINUS)
        if text.startswith("-") and text.strip("-0.,")
        else text.lstrip("-")
    )


def fmt_p(p: float) -> str:
    """Format a p-value: ``"p < 0.001"``, ``"p = 0.03"``, ``"p = 0.48"``.

    Two significant decimals below 0.1 keep 0.048 apart from 0.05: ``"p = 0.048"``.
    """
    if _is_missing(p):
        return "p n/a"
    p = float(p)
    if p < 0.001:
        return "p < 0.001"
    if p > 0.99:
        return "p > 0.99"
    digits = 3 if p < 0.01 else 2
    # never round onto a conventional threshold from the other side (0.0499 is not "0.05")
    while digits < 6 and round(p, digits) in (0.01, 0.05, 0.1) and p != round(p, digits):
        digits += 1
    return f"p = {p:.{digits}f}"


def fmt_months(x: float, digits: int | None = None) -> str:
    """Format a duration in months: ``1 -> "1 month"``, ``3.0 -> "3 months"``, ``22.74 -> "22.7 months"``."""
    if _is_missing(x):
        return "n/a"
    x = float(x)
    if digits is None:
        digits = 0 if float(x).is_integer() else 1
    text = fmt_num(x, digits)
    return f"{text} month" if text in ("1", "1.0") else f"{text} months"


def fmt_days(x: float, digits: int | None = None) -> str:
    """Format a duration in days: ``1 -> "1 day"``, ``45.2 -> "45 days"``."""
    if _is_missing(x):
        return "n/a"
    text = fmt_num(float(x), 0 if digits is None else digits)
    return f"{text} day" if text == "1" else f"{text} days"


def fmt_pp(x: float, digits: int = 1, *, sign: bool = True) -> str:
    """Format a difference of two shares in percentage points: ``0.031 -> "+3.1 points"``.

    Parameters
    ----------
    x : float
        Difference of two fractions (0.031 is 3.1 percentage points).
    digits : int, default 1
        Decimals of the points.
    sign : bool, default True
        Print ``+`` before positive values (a minus sign is always printed).
    """
    if _is_missing(x):
        return "n/a"
    v = 100 * float(x)
    body = _num(abs(v), digits)
    zero = not body.strip("0.,")
    s = "" if zero else (_MINUS if v < 0 else ("+" if sign else ""))
    unit = "point" if body == "1" else "points"
    return f"{s}{body} {unit}"


def fmt_ratio(x: float, digits: int = 2) -> str:
    """Format a ratio: ``1.4412 -> "1.44×"``."""
    if _is_missing(x):
        return "n/a"
    return f"{fmt_num(float(x), digits)}×"


def fmt_value(
    x: float, kind: str = "number", *, digits: int | None = None, currency: str = "EUR"
) -> str:
    """Format one value with its unit, for a tile, a cell or a sentence.

    Parameters
    ----------
    x : float
        The value. Fractions for ``"pct"``; differences of fractions for ``"pp"``.
    kind : str, default "number"
        One of :data:`KINDS`: ``number``, ``count``, ``pct``, ``pp``, ``money``,
        ``months``, ``days``, ``ratio``, ``p``.
    digits : int, optional
        Decimals; each kind has a sensible default.
    currency : str, default "EUR"
        ISO code for ``"money"``.

    Returns
    -------
    str
        The text; ``"n/a"`` for a missing value.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if _is_missing(x):
        return "n/a"
    if kind == "count":
        return fmt_num(round(float(x)), 0)
    if kind == "pct":
        text = fmt_pct(x, 1 if digits is None else digits)
        return text.replace("-", _MINUS)
    if kind == "pp":
        return fmt_pp(x, 1 if digits is None else digits)
    if kind == "money":
        if digits is None:
            digits = _default_digits(float(x), kind)
        text = fmt_money(x, currency, digits=digits)
        return text.replace("-", _MINUS)
    if kind == "months":
        return fmt_months(x, digits)
    if kind == "days":
        return fmt_days(x, digits)
    if kind == "ratio":
        return fmt_ratio(x, 2 if digits is None else digits)
    if kind == "p":
        return fmt_p(x)
    return fmt_num(x, digits)


def _default_digits(x: float, kind: str) -> int | None:
    a = abs(x)
    if kind in ("pct", "pp"):
        return 1
    if kind in ("months", "days"):
        return 0 if x.is_integer() else (1 if kind == "months" else 0)
    if kind == "money":
        return 0 if a >= 100 else 2
    if kind == "ratio":
        return 2
    if kind == "count":
        return 0
    if kind == "number":
        return 0 if a >= 100 else 2
    return None


def _bound(x: float, kind: str, digits: int | None, currency: str) -> str:
    """A bound inside an interval: unit words dropped for months/days/pp (said once after)."""
    if kind == "pp":
        v = 100 * float(x)
        body = _num(abs(v), 1 if digits is None else digits)
        return f"{_MINUS if v < 0 and body.strip('0.,') else ''}{body}"
    if kind in ("months", "days"):
        d = digits if digits is not None else (0 if float(x).is_integer() else 1)
        return fmt_num(float(x), d)
    if kind == "ratio":
        return fmt_num(float(x), 2 if digits is None else digits)
    return fmt_value(x, kind, digits=digits, currency=currency)


def fmt_est(
    est: float,
    lo: float | None = None,
    hi: float | None = None,
    *,
    kind: str = "number",
    digits: int | None = None,
    currency: str = "EUR",
) -> str:
    """Format an estimate and its interval in one cell: ``"22.7 months (22.0–23.4)"``.

    Parameters
    ----------
    est, lo, hi : float
        Estimate and 95% interval bounds (bounds optional).
    kind : str, default "number"
        As in :func:`fmt_value`.
    digits : int, optional
        Decimals.
    currency : str, default "EUR"
        ISO code for ``"money"``.

    Returns
    -------
    str
        ``"+3.1 points (2.0 to 4.2)"``, ``"€40 (€31–€49)"``, ``"1.44× (1.30–1.60)"``;
        the estimate alone when a bound is missing; ``"not estimable"`` when the
        estimate is missing.
    """
    if _is_missing(est):
        return NOT_ESTIMABLE
    if digits is None:  # one precision for the estimate and its bounds
        digits = _default_digits(float(est), kind)
        if kind == "months" and not all(
            _is_missing(v) or float(v).is_integer() for v in (lo, hi) if v is not None
        ):
            digits = 1
    head = fmt_value(est, kind, digits=digits, currency=currency)
    if lo is None or hi is None or _is_missing(lo) or _is_missing(hi):
        return head
    if _impossible_interval(float(lo), float(hi), kind):
        return f"{head} (interval not estimable)"
    if kind == "money" and money_scale(float(est)) is not None:
        return _scaled_money_interval(float(est), float(lo), float(hi), currency)
    a = _bound(lo, kind, digits, currency)
    b = _bound(hi, kind, digits, currency)
    sep = " to " if (float(lo) < 0 or float(hi) < 0) else "–"
    return f"{head} ({a}{sep}{b})"


def _scaled_money_interval(est: float, lo: float, hi: float, currency: str) -> str:
    """``"€3.71 billion (€3.70–€3.73 billion)"``: one scale, the estimate's, for all three;
    three significant figures, or more where the bounds would otherwise print alike."""
    scale = money_scale(est)
    d = _sig_digits(round(est / scale[0], 2))

    def text(x: float, digits: int, word: bool) -> str:
        return _scaled_money(x, scale, digits, currency, word=word).replace("-", _MINUS)

    for extra in range(3):  # bounds that differ must not print alike
        if text(lo, d + extra, False) != text(hi, d + extra, False) or lo == hi:
            d += extra
            break
    sep = " to " if (lo < 0 or hi < 0) else "–"
    return f"{text(est, d, True)} ({text(lo, d, False)}{sep}{text(hi, d, True)})"


#: A ratio interval wider than this factor (upper / lower) says nothing: the model broke.
MAX_RATIO_SPAN = 1e6


def _impossible_interval(lo: float, hi: float, kind: str) -> bool:
    """True for bounds no such quantity can have: the interval comes from a model that broke.

    A difference of two shares ("pp") lies within ±100 points; a ratio is positive and an
    interval spanning more than :data:`MAX_RATIO_SPAN` (e.g. 0.000 to 1.2e19) is no interval.
    """
    if kind == "pp":
        return lo < -1.0 - 1e-9 or hi > 1.0 + 1e-9
    if kind == "ratio":
        return lo < 0 or (lo == 0 and hi > 0) or (lo > 0 and hi / lo > MAX_RATIO_SPAN)
    return False


def fmt_date(d: Any, *, month: bool = False) -> str:
    """Format a date as "30 Jun 1998" (``month``: "Jun 1998"; "n/a" when missing)."""
    if d is None or _is_missing(d):
        return "n/a"
    ts = pd.Timestamp(d)
    return f"{ts:%b %Y}" if month else f"{ts.day} {ts:%b %Y}"
