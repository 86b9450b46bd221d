"""The parts of a stakeholder page: verdict, key-figure tiles, findings, skipped sections.

Pure functions from numbers and text to escaped HTML. The notebook-facing
helpers that display them (and emit the records the runner reads) are in
:mod:`analysis.report.display`: ``display.verdict``, ``display.tiles``,
``display.section_finding``, ``display.skipped``, ``display.flags`` and
``display.appendix``.

Every report has one shape (issue 15): a verdict of at most two sentences,
three to six tiles, sections that open with one finding sentence, and a
folded "for analysts" appendix at the end.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from analysis.report.format import _is_missing, fmt_est, fmt_value

#: Placeholder the runner fills with the value the previous good run showed.
PREVIOUS_RUN_SLOT = '<span class="tile-prev" data-tile="{key}"></span>'

_KIND_UNITS = {"pct": "%", "pp": "points", "months": "months", "days": "days", "ratio": "×"}


def _e(x: Any) -> str:
    return html.escape(str(x))


def tile_key(name: str) -> str:
    """Return a stable HTML-safe key of a tile name (used to match runs)."""
    return re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-")[:60] or "tile"


def tile(
    name: str,
    value: Any,
    *,
    kind: str = "number",
    lo: Any = None,
    hi: Any = None,
    digits: int | None = None,
    currency: str = "EUR",
    note: str = "",
    change: Any = None,
    change_label: str = "",
    good: str | None = None,
    spark: Sequence[Any] | None = None,
    spark_partial: int = 0,
    flag: str | None = None,
    target: Any = None,
    text: str | None = None,
) -> dict[str, Any]:
    """Return one key-figure tile (a dict :func:`tiles_html` renders).

    Parameters
    ----------
    name : str
        Plain label, e.g. ``"Monthly churn"``.
    value : float or str
        The figure. A string is shown as it is.
    kind : str, default "number"
        Unit kind, as in :func:`analysis.report.format.fmt_value`.
    lo, hi : float, optional
        95% interval.
    digits : int, optional
        Decimals.
    currency : str, default "EUR"
        ISO code for money.
    note : str, optional
        One short line under the value (who is counted, the period).
    change : float, optional
        Change against an earlier period, in the tile's unit (percentage
        points for ``kind="pct"``).
    change_label : str, optional
        What the change compares with, e.g. ``"vs last month"``.
    good : {"up", "down"}, optional
        Which direction is good, to colour the change; None keeps it neutral.
    spark : sequence of float, optional
        Recent values, oldest first, drawn as a sparkline.
    spark_partial : int, default 0
        How many of the last ``spark`` values are partial or not yet observable
        (drawn dashed).
    flag : str, optional
        Text of an unusual-value flag, e.g. ``"above its usual range"``.
    target : float, optional
        Target in the tile's unit.
    text : str, optional
        Ready-made value text (overrides formatting).

    Returns
    -------
    dict
        The tile, including ``text``: the value and interval as one string,
        which is also the headline text the index shows.
    """
    if text is None:
        text = (
            str(value)
            if isinstance(value, str)
            else fmt_est(value, lo, hi, kind=kind, digits=digits, currency=currency)
        )
    head, _, rest = text.partition(" (")
    interval = f"95% CI {rest[:-1]}" if rest.endswith(")") and not isinstance(value, str) else ""
    if rest and not interval:
        head = text
    change_text = ""
    if change is not None and not _is_missing(change):
        ck = "pp" if kind == "pct" else kind
        c = float(change)
        shown = fmt_value(c, ck, digits=digits, currency=currency)
        if c > 0 and not shown.startswith("+"):
            shown = "+" + shown
        arrow = "▲" if c > 0 else ("▼" if c < 0 else "●")
        change_text = f"{arrow} {shown} {change_label}".strip()
    target_text = ""
    if target is not None and not _is_missing(target):
        target_text = f"target {fmt_value(target, kind, digits=digits, currency=currency)}"
    value_json = None if isinstance(value, str) or _is_missing(value) else float(value)
    return {
        "name": str(name),
        "key": tile_key(name),
        "value": value if isinstance(value, str) else value_json,
        "kind": kind,
        "text": text,
        "head": head,
        "interval": interval,
        "note": str(note or ""),
        "change": change_text,
        "change_dir": (
            ""
            if change is None or _is_missing(change) or good is None or float(change) == 0
            else ("good" if (float(change) > 0) == (good == "up") else "bad")
        ),
        "spark": [None if _is_missing(v) else float(v) for v in (spark or [])],
        "spark_partial": int(spark_partial),
        "flag": str(flag or ""),
        "target": target_text,
        "lo": None if _is_missing(lo) else lo,
        "hi": None if _is_missing(hi) else hi,
    }


def headline_of(t: Mapping[str, Any]) -> dict[str, Any]:
    """Return the index headline record of a tile: the index shows what the tile shows."""
    return {
        "name": t["name"],
        "value": t["value"],
        "unit": _KIND_UNITS.get(t["kind"], ""),
        "text": t["text"],
        "kind": t["kind"],
    }


def sparkline_svg(
    values: Sequence[Any], *, partial: int = 0, width: int = 120, height: int = 28
) -> str:
    """Return an inline SVG sparkline (no script); the last ``partial`` points dashed."""
    pts = [(i, v) for i, v in enumerate(values) if v is not None and not _is_missing(v)]
    if len(pts) < 2:
        return ""
    ys = [v for _, v in pts]
    lo, hi = min(ys), max(ys)
    span = (hi - lo) or 1.0
    n = max(len(values) - 1, 1)

    def xy(i: int, v: float) -> str:
        x = 2 + (width - 4) * i / n
        y = height - 3 - (height - 6) * (v - lo) / span
        return f"{x:.1f},{y:.1f}"

    cut = len(values) - partial
    solid = [xy(i, v) for i, v in pts if i < cut]
    dashed = [xy(i, v) for i, v in pts if i >= cut - 1] if partial else []
    parts = [
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'role="img" aria-label="trend over recent periods">'
    ]
    if len(solid) >= 2:
        parts.append(
            f'<polyline fill="none" stroke="currentColor" stroke-width="1.6" points="{" ".join(solid)}"/>'
        )
    if len(dashed) >= 2:
        parts.append(
            f'<polyline fill="none" stroke="currentColor" stroke-width="1.2" stroke-dasharray="3 2" '
            f'opacity=".6" points="{" ".join(dashed)}"/>'
        )
    last = [p for p in pts if p[0] < cut] or pts
    cx, cy = xy(*last[-1]).split(",")
    parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.2" fill="currentColor"/>')
    parts.append("</svg>")
    return "".join(parts)


def tiles_html(items: Iterable[Mapping[str, Any]]) -> str:
    """Return the HTML of a row of key-figure tiles."""
    cells = []
    for t in items:
        cls = "tile flagged" if t.get("flag") else "tile"
        body = [
            f'<div class="tile-name">{_e(t["name"])}</div>',
            f'<div class="tile-value">{_e(t["head"])}</div>',
        ]
        if t.get("interval"):
            body.append(f'<div class="tile-ci">{_e(t["interval"])}</div>')
        if t.get("flag"):
            body.append(f'<div class="tile-flag">⚑ {_e(t["flag"])}</div>')
        if t.get("target"):
            body.append(f'<div class="tile-target">{_e(t["target"])}</div>')
        if t.get("change"):
            d = t.get("change_dir") or "neutral"
            body.append(f'<div class="tile-change change-{d}">{_e(t["change"])}</div>')
        spark = sparkline_svg(t.get("spark") or [], partial=int(t.get("spark_partial") or 0))
        if spark:
            body.append(f'<div class="tile-spark">{spark}</div>')
        body.append(PREVIOUS_RUN_SLOT.format(key=_e(t["key"])))
        if t.get("note"):
            body.append(f'<div class="tile-note">{_e(t["note"])}</div>')
        cells.append(f'<div class="{cls}">{"".join(body)}</div>')
    return f'<div class="tiles">{"".join(cells)}</div>'


def verdict_html(text: str | Sequence[str]) -> str:
    """Return the verdict box: at most two sentences answering the report's question."""
    parts = [text] if isinstance(text, str) else [str(t) for t in text if str(t).strip()]
    body = " ".join(p.strip() for p in parts)
    return f'<div class="verdict" role="note"><p>{_e(body)}</p></div>'


def finding_html(text: str) -> str:
    """Return a section's one-sentence finding."""
    return f'<p class="analysis-finding">{_e(text)}</p>'


def skipped_html(section: str, sentence: str) -> str:
    """Return the notice of a section that could not be estimated."""
    return (
        '<div class="analysis-skipped"><p><strong>Not estimated: '
        f"{_e(section)}.</strong> {_e(sentence)}</p></div>"
    )


def flags_html(texts: Sequence[str], *, title: str = "Unusual values") -> str:
    """Return the box listing unusual-value flags (empty string when there are none)."""
    texts = [t for t in texts if str(t).strip()]
    if not texts:
        return ""
    items = "".join(f"<li>{_e(t)}</li>" for t in texts)
    return f'<div class="analysis-flags"><p><strong>{_e(title)}</strong></p><ul>{items}</ul></div>'


def is_finite_number(x: Any) -> bool:
    """True for a real, finite number."""
    try:
        return not isinstance(x, bool) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
