"""Sentences that can't lie: findings worded from numbers by direction and significance.

Every generated sentence follows three rules:

* the sign decides the verb, and the number printed after it is a magnitude
  ("lowers retention by 14.2 points", never "raises retention by -14.2 points");
* an interval that includes no effect gives "no clear evidence", with the
  estimate and its interval still shown;
* a missing estimate gives "could not be estimated", never ``nan``.

``tests/test_sentences.py`` feeds each template negative, zero, missing and
interval-spanning inputs, single groups and ties.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from analysis.report.format import _is_missing, fmt_est, fmt_value

_LEVEL = "95% CI"


def _f(x: Any) -> float:
    return float("nan") if _is_missing(x) else float(x)


def direction(est: Any, lo: Any = None, hi: Any = None, *, null: float = 0.0) -> str:
    """Classify an estimate against "no effect".

    Parameters
    ----------
    est, lo, hi : float
        Estimate and (optional) interval bounds.
    null : float, default 0.0
        The value meaning "no effect" (1 for ratios).

    Returns
    -------
    str
        ``"missing"`` (no estimate), ``"unclear"`` (the interval includes ``null``),
        ``"none"`` (no interval and the estimate equals ``null``), else ``"up"`` or ``"down"``.
    """
    e = _f(est)
    if math.isnan(e):
        return "missing"
    a, b = _f(lo), _f(hi)
    if not (math.isnan(a) or math.isnan(b)):
        a, b = min(a, b), max(a, b)
        if a <= null <= b:
            return "unclear"
    elif e == null:
        return "none"
    return "up" if e > null else "down"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _low(text: str) -> str:
    first = text.split(" ", 1)[0]
    if first.isupper() and len(first) > 1:
        return text
    return text[:1].lower() + text[1:]


def _interval(
    lo: Any, hi: Any, kind: str, digits: int | None, currency: str, *, magnitude: bool
) -> str:
    a, b = _f(lo), _f(hi)
    if math.isnan(a) or math.isnan(b):
        return ""
    if magnitude:
        a, b = sorted((abs(a), abs(b)))
    text = fmt_est(1.0 if kind == "ratio" else a, a, b, kind=kind, digits=digits, currency=currency)
    inner = text[text.index("(") + 1 : -1] if "(" in text else ""
    return f" ({_LEVEL} {inner})" if inner else ""


def effect_sentence(
    subject: str,
    quantity: str,
    est: Any,
    lo: Any = None,
    hi: Any = None,
    *,
    kind: str = "number",
    up: str = "raises",
    down: str = "lowers",
    null: float | None = None,
    digits: int | None = None,
    currency: str = "EUR",
    observational: bool = False,
) -> str:
    """Word an effect of ``subject`` on ``quantity`` from its estimate and interval.

    Parameters
    ----------
    subject : str
        What acts, e.g. ``"Enrolling"``.
    quantity : str
        What changes, e.g. ``"6-month retention"``.
    est, lo, hi : float
        Effect estimate and 95% interval (a difference; a ratio for ``kind="ratio"``).
    kind : str, default "number"
        Unit of the effect, as in :func:`analysis.report.format.fmt_value`
        (``"pp"`` for differences of shares, ``"money"``, ``"ratio"`` ...).
    up, down : str
        Verbs for a positive and a negative effect.
    null : float, optional
        "No effect": 0, or 1 for ``kind="ratio"``.
    digits : int, optional
        Decimals.
    currency : str, default "EUR"
        ISO code for money.
    observational : bool, default False
        Add that the contrast is observational, not a measured effect.

    Returns
    -------
    str
        One sentence.
    """
    null = (1.0 if kind == "ratio" else 0.0) if null is None else null
    d = direction(est, lo, hi, null=null)
    tail = " (an observational comparison, not proof of cause)" if observational else ""
    if d == "missing":
        return f"The effect of {_low(subject)} on {quantity} could not be estimated with this data."
    if d == "unclear":
        shown = fmt_est(est, lo, hi, kind=kind, digits=digits, currency=currency)
        body = shown.replace("(", f"({_LEVEL} ", 1) if "(" in shown else shown
        return f"No clear evidence that {_low(subject)} changes {quantity}: the estimate is {body}{tail}."
    if d == "none":
        return f"{_cap(subject)} leaves {quantity} unchanged in this data{tail}."
    verb = up if d == "up" else down
    if kind == "ratio":
        shown = fmt_value(est, "ratio", digits=digits)
        ci = _interval(lo, hi, "ratio", digits, currency, magnitude=False)
        return f"{_cap(subject)} {verb} {quantity} to {shown} its level without it{ci}{tail}."
    mag = fmt_value(abs(_f(est)), kind, digits=digits, currency=currency).lstrip("+")
    ci = _interval(lo, hi, kind, digits, currency, magnitude=True)
    return f"{_cap(subject)} {verb} {quantity} by {mag}{ci}{tail}."


def ratio_sentence(
    group: str,
    reference: str,
    ratio: Any,
    lo: Any = None,
    hi: Any = None,
    *,
    verb: str = "leave",
    digits: int = 2,
) -> str:
    """Compare the rate of ``group`` with that of ``reference`` (a hazard or rate ratio).

    Returns
    -------
    str
        ``"Customers in Value tier: low leave 1.44 times as fast as those in
        Value tier: medium (95% CI 1.30–1.60)."``; ``"... at 0.70 times the rate
        of ..."`` below 1; "No clear evidence ..." when the interval includes 1.
    """
    d = direction(ratio, lo, hi, null=1.0)
    ci = _interval(lo, hi, "ratio", digits, "EUR", magnitude=False)
    r = fmt_value(ratio, "number", digits=digits)
    if d == "missing":
        return f"How fast {_low(group)} {verb} compared with {_low(reference)} could not be estimated with this data."
    if d == "unclear":
        return (
            f"No clear evidence that {_low(group)} and {_low(reference)} differ in how fast they "
            f"{verb}: ratio {r}{ci}."
        )
    if d == "none":
        return f"{_cap(group)} {verb} as fast as {_low(reference)}."
    if d == "up":
        return f"{_cap(group)} {verb} {r} times as fast as {_low(reference)}{ci}."
    return f"{_cap(group)} {verb} at {r} times the rate of {_low(reference)}{ci}."


def count_phrase(n: Any, noun: str, plural: str | None = None) -> str:
    """Return ``"1 customer"`` or ``"1,234 customers"`` (``"no customers"`` for 0)."""
    if _is_missing(n):
        return f"an unknown number of {plural or noun + 's'}"
    k = round(float(n))
    if k == 0:
        return f"no {plural or noun + 's'}"
    word = noun if k == 1 else (plural or noun + "s")
    return f"{k:,} {word}"


def join_words(items: Iterable[Any]) -> str:
    """Return ``"a, b and c"`` (``"a and b"``, ``"a"``, ``""``)."""
    xs = [str(x) for x in items]
    if len(xs) <= 1:
        return "".join(xs)
    return ", ".join(xs[:-1]) + " and " + xs[-1]


def most_common(values: Mapping[Any, Any], *, tol: float = 1e-12) -> str:
    """Return the key(s) with the largest value, computed on the numbers a table shows.

    Parameters
    ----------
    values : mapping
        Label to value (the same values the table next to the sentence shows).
    tol : float
        Values within ``tol`` of the largest count as tied.

    Returns
    -------
    str
        The top label; ``"A and B (tied)"`` for ties; ``""`` when nothing is known.
    """
    clean = {str(k): float(v) for k, v in values.items() if not _is_missing(v)}
    if not clean:
        return ""
    top = max(clean.values())
    best = [k for k, v in clean.items() if v >= top - tol]
    if len(best) == 1:
        return best[0]
    return f"{join_words(best)} (tied)"


def share_phrase(part: Any, whole: Any, *, digits: int = 0) -> str:
    """Return ``"31% (62 of 200)"``; "n/a" when the whole is zero or missing."""
    p, w = _f(part), _f(whole)
    if math.isnan(p) or math.isnan(w) or w <= 0:
        return "n/a"
    return f"{fmt_value(p / w, 'pct', digits=digits)} ({p:,.0f} of {w:,.0f})"
