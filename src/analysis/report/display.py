"""Display helpers for report notebooks: findings, escaped tables, headlines, formats.

Report notebooks are rendered to HTML without their code, so everything a
reader needs is displayed through these helpers. They share three rules:

* every piece of text is HTML-escaped before it is rendered (segment names,
  churn reasons and other text from data can contain ``<``, ``&`` ...);
* tables refuse a ``customer_id`` column and cap their length, because a
  report shows aggregates, never customers or raw rows;
* groups with fewer than ``min_group_size`` customers are suppressed, and
  where a total is shown beside them (a total row, a total in the text, or
  a total another table gives) further groups are suppressed, so that a
  small group cannot be worked out by subtracting the shown groups from the
  total (complementary suppression, :func:`suppression`).

Each ``foo(...)`` that displays something has a pure ``foo_html(...)`` twin
returning the HTML string, which is what the tests check.

Headline numbers (:func:`headline`) are emitted as a display output with the
custom MIME type :data:`HEADLINE_MIME`; the report runner collects them from
the executed notebook for the reports index and strips them from the HTML.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import numbers
import re
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.report import labels as _labels
from analysis.report import page as _page
from analysis.report.format import (  # noqa: F401  (re-exported: notebooks call display.fmt_ci)
    _MISSING,
    _apply_format,
    _format_value,
    _is_missing,
    _num,
    fmt_ci,
    fmt_money,
    fmt_pct,
)
from analysis.report.suppression import (  # noqa: F401  (re-exported for notebooks and tests)
    Suppression,
    complementary_suppression,
    suppress_small,
    suppression,
)

#: MIME type of a headline record inside an executed notebook.
HEADLINE_MIME = "application/vnd.analysis.headline+json"
#: MIME type of the verdict record (the runner shows it on the index).
VERDICT_MIME = "application/vnd.analysis.verdict+json"
#: MIME type of a skipped-section record (the runner lists them on the index).
SKIPPED_MIME = "application/vnd.analysis.skipped+json"
#: MIME type of the appendix marker: everything after it is folded into one <details>.
APPENDIX_MIME = "application/vnd.analysis.appendix+json"
#: Records the runner reads and strips from the page.
RECORD_MIMES = (HEADLINE_MIME, VERDICT_MIME, SKIPPED_MIME, APPENDIX_MIME)

#: Suppression threshold used when a caller passes ``min_group_size=None``.
#: Notebooks should pass ``params.analysis.min_group_size`` explicitly.
DEFAULT_MIN_GROUP_SIZE = 10

#: Longest table :func:`show_table` displays; longer tables are usually raw rows.
DEFAULT_MAX_ROWS = 100

_SUPPRESSED = "suppressed"
_CODE_LIKE = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+|[A-Za-z_][\w ]*\[(?:T\.)?[^\[\]]*\])$"
)
_NUMBER_LIKE = re.compile(r"^[+\-\u2212<>~]?\s?[€$£]?\d")
_NON_NUMBERS = {_MISSING, _SUPPRESSED, "n/a", ""}
# A number formatted as text carries at most a few unit words ("12 days (95% CI 10–14 days)");
# a sentence that happens to start with a digit ("9 customers were excluded ...") is text.
_WORD = re.compile(r"[^\W\d_]{2,}")
_MAX_UNIT_WORDS = 4

# --------------------------------------------------------------------------------------
# Notebook set-up
# --------------------------------------------------------------------------------------


def setup_notebook(*, dpi: int = 100, figsize: tuple[float, float] = (7.0, 4.0)) -> None:
    """Configure plots, pandas display and warnings for a report notebook.

    Call it first in every report notebook. Figures are rendered inline as PNG
    (so the HTML embeds them as base64 images and stays one self-contained
    file), at ``dpi`` dots per inch and ``figsize`` inches, in the style of
    :func:`analysis.report.plots.use_style` (colour-blind-safe, readable sizes).
    Deprecation and future warnings are hidden: they are noise for readers.

    Parameters
    ----------
    dpi : int, default 100
        Resolution of inline figures, dots per inch.
    figsize : tuple of float, default (7.0, 4.0)
        Default figure width and height, inches.
    """
    import matplotlib

    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)

    shell = _ipython_shell()
    if shell is not None:
        shell.run_line_magic("matplotlib", "inline")
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    from analysis.report.plots import use_style

    use_style()
    matplotlib.rcParams.update({"figure.figsize": figsize, "figure.dpi": dpi, "savefig.dpi": dpi})
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.max_rows", 60)
    pd.set_option("display.precision", 3)
    pd.set_option("display.width", 120)


def _ipython_shell():
    """Return the running IPython shell, or None outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return None
    return get_ipython()


def _publish(data: Mapping[str, Any]) -> None:
    """Display a MIME bundle in a notebook; print its text form elsewhere."""
    if _ipython_shell() is None:
        print(data.get("text/plain", ""))
        return
    from IPython.display import display

    display(dict(data), raw=True)


def _display_html(markup: str, text: str) -> None:
    _publish({"text/html": markup, "text/plain": text})


# --------------------------------------------------------------------------------------
# Findings, notes, notices
# --------------------------------------------------------------------------------------


def findings_html(sentences: Iterable[str] | str, *, title: str = "Findings") -> str:
    """Return the HTML of a findings box: an escaped title and a list of sentences."""
    if isinstance(sentences, str):
        sentences = [sentences]
    items = "".join(f"<li>{html.escape(str(s))}</li>" for s in sentences)
    return (
        '<div class="analysis-findings">'
        f'<p class="analysis-findings-title"><strong>{html.escape(title)}</strong></p>'
        f"<ul>{items}</ul></div>"
    )


def findings(sentences: Iterable[str] | str, *, title: str = "Findings") -> None:
    """Display a findings box listing ``sentences`` (escaped).

    Parameters
    ----------
    sentences : iterable of str, or str
        Plain-language findings, generated from numbers by study functions.
    title : str, default "Findings"
        Heading of the box.
    """
    sentences = [sentences] if isinstance(sentences, str) else list(sentences)
    text = "\n".join([title] + [f"- {s}" for s in sentences])
    _display_html(findings_html(sentences, title=title), text)


def note_html(text: str) -> str:
    """Return an escaped paragraph."""
    return f'<p class="analysis-note">{html.escape(str(text))}</p>'


def note(text: str) -> None:
    """Display ``text`` as an escaped paragraph."""
    _display_html(note_html(text), str(text))


def absent_table_message(table_name: str) -> str:
    """Return the plain sentence shown when the data lacks an optional table."""
    return (
        f"This data has no {table_name} table, so this section is skipped. "
        f"Add {'an' if str(table_name)[:1].lower() in 'aeiou' else 'a'} {table_name} table to the "
        "data source to see it."
    )


def absent_table_html(table_name: str) -> str:
    """Return the escaped notice for a missing optional table."""
    return f'<p class="analysis-absent">{html.escape(absent_table_message(table_name))}</p>'


def absent_table(table_name: str) -> None:
    """Display the notice "this data has no <table_name> table" for a skipped section."""
    _display_html(absent_table_html(table_name), absent_table_message(table_name))


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _is_identifier_name(name: Any) -> bool:
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    return key in {"customerid", "customer", "custid", "clientid"}


def _refuse_identifiers(df: pd.DataFrame) -> None:
    names = [c for c in df.columns if _is_identifier_name(c)]
    names += [n for n in df.index.names if n is not None and _is_identifier_name(n)]
    if names:
        raise AnalysisError(
            f"refusing to display a table with customer identifier column(s) {names}: "
            "reports show aggregates only. Drop the column or aggregate (for example "
            "df.groupby('segment').size()) before show_table."
        )


def _is_number_text(text: str) -> bool:
    """Return True for a number formatted as text ("€1,234 (+3%)", "-0.6 pt"), not a sentence."""
    return bool(_NUMBER_LIKE.match(text)) and len(_WORD.findall(text)) <= _MAX_UNIT_WORDS


def _hidden_rows(
    df: pd.DataFrame,
    *,
    count_col: str | None,
    min_group_size: int | None,
    total: bool | float | None,
    totals_by: Iterable[str | Sequence[str]] | None,
    group_col: str | None,
    total_label: Any,
    hide: Suppression | Collection | None,
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Return (small, complementary, threshold) row masks of a table for :func:`table_html`."""
    small = np.zeros(len(df), dtype=bool)
    extra = np.zeros(len(df), dtype=bool)
    threshold = None
    if count_col is not None:
        threshold = DEFAULT_MIN_GROUP_SIZE if min_group_size is None else min_group_size
        sup = suppression(
            df,
            count_col=count_col,
            min_group_size=threshold,
            total=total,
            totals_by=totals_by,
            group_col=group_col if group_col is not None else df.columns[0],
            total_label=total_label,
            hide=hide,
        )
        return sup.small, sup.complementary & ~sup.small, threshold
    if total is not None or totals_by is not None or total_label is not None:
        raise AnalysisError(
            "show_table: total=, totals_by= and total_label= need count_col= (the customers "
            "per row) to decide which rows to suppress."
        )
    if hide is not None:
        gcol = group_col if group_col is not None else df.columns[0]
        if gcol not in df.columns:
            raise AnalysisError(f"show_table: group column {gcol!r} is not in the table.")
        labels = df[gcol]
        if isinstance(hide, Suppression):
            if threshold is None:
                threshold = hide.min_group_size
            small |= labels.isin(hide.small_groups).to_numpy()
            extra |= labels.isin(hide.complementary_groups).to_numpy()
        else:
            extra |= labels.isin(set(hide)).to_numpy()
        extra &= ~small
    return small, extra, threshold


def _suppression_note(n_small: int, n_extra: int, threshold: int | None) -> str:
    parts = []
    if n_small:
        parts.append(f"{n_small} group(s) with fewer than {threshold} customers are suppressed.")
    if n_extra:
        parts.append(
            f"{n_extra} {'further ' if n_small else ''}row(s) are suppressed so that small "
            "groups cannot be worked out from the totals."
        )
    return " ".join(parts)


def table_html(
    df: pd.DataFrame,
    *,
    caption: str | None = None,
    formats: Mapping[str, str | Callable[[Any], str]] | None = None,
    count_col: str | None = None,
    min_group_size: int | None = None,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    total: bool | float | None = None,
    totals_by: Iterable[str | Sequence[str]] | None = None,
    group_col: str | None = None,
    total_label: Any = None,
    hide: Suppression | Collection | None = None,
) -> str:
    """Return an escaped HTML table of ``df``; see :func:`show_table`."""
    if not isinstance(df, pd.DataFrame):
        if isinstance(df, pd.Series):
            df = df.to_frame()
        else:
            raise TypeError(f"show_table expects a pandas DataFrame, got {type(df).__name__}")
    _refuse_identifiers(df)
    if df.empty:  # no rows (e.g. no group the data can show): no table, not a crash
        return ""
    if max_rows is not None and len(df) > max_rows:
        raise AnalysisError(
            f"refusing to display a table of {len(df):,} rows (limit {max_rows}): reports show "
            "aggregates, not raw rows. Aggregate, or pass max_rows= if this is a summary."
        )
    if not isinstance(df.index, pd.RangeIndex) or any(n is not None for n in df.index.names):
        df = df.reset_index()
    if isinstance(df.columns, pd.MultiIndex):
        df = df.copy()
        df.columns = [" ".join(str(p) for p in c if str(p)) for c in df.columns]
    formats = dict(formats or {})

    small, extra, threshold = _hidden_rows(
        df,
        count_col=count_col,
        min_group_size=min_group_size,
        total=total,
        totals_by=totals_by,
        group_col=group_col,
        total_label=total_label,
        hide=hide,
    )
    suppressed = small | extra
    # Labels stay readable in a suppressed row; every number in it is masked.
    labels = {group_col} if group_col is not None else set()
    for cols in totals_by or []:
        labels |= {cols} if isinstance(cols, str) else set(cols)
    if hide is not None and group_col is None:
        labels.add(df.columns[0])

    texts: dict[Any, list[str]] = {c: [] for c in df.columns}
    for i, (_, row) in enumerate(df.iterrows()):
        for c in df.columns:
            text = _apply_format(row[c], formats.get(c))
            if _CODE_LIKE.match(text):  # a model term or a snake_case code: its label
                text = _labels.label(text)
            if suppressed[i] and c == count_col:
                text = f"<{threshold}" if small[i] else _SUPPRESSED
            elif (
                suppressed[i]
                and c not in labels
                and (pd.api.types.is_numeric_dtype(df[c]) or _is_number_text(text))
            ):
                text = _SUPPRESSED
            texts[c].append(text)
    # Right-align numbers, also those formatted as text ("12.5%", "€1,234", "+3 (-2)").
    numeric = {
        c: pd.api.types.is_numeric_dtype(df[c])
        or (len(df) > 0 and all(_is_number_text(t) or t in _NON_NUMBERS for t in texts[c]))
        for c in df.columns
    }
    head = "".join(
        f'<th class="{"num" if numeric[c] else "txt"}">{html.escape(_labels.label(str(c)))}</th>'
        for c in df.columns
    )
    rows = []
    for i in range(len(df)):
        cells = []
        for c in df.columns:
            cls = "num" if numeric[c] else "txt"
            cells.append(f'<td class="{cls}">{html.escape(texts[c][i])}</td>')
        tr_class = ' class="suppressed"' if suppressed[i] else ""
        rows.append(f"<tr{tr_class}>{''.join(cells)}</tr>")
    foot = ""
    if suppressed.any():
        note_text = _suppression_note(int(small.sum()), int(extra.sum()), threshold)
        foot = f'<p class="analysis-table-note">{html.escape(note_text)}</p>'
    table = f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    # The caption sits above the scrolling box (a <caption> would scroll away with a wide
    # table and wrap to a narrow one's width); aria-labelledby keeps it the table's name.
    cap, label = "", ""
    if caption:
        key = hashlib.sha1((caption + table).encode("utf-8")).hexdigest()[:10]
        cap = f'<p class="analysis-caption" id="tbl-{key}">{html.escape(caption)}</p>'
        label = f' aria-labelledby="tbl-{key}"'
    return (
        f'<div class="analysis-table">{cap}'
        f'<div class="analysis-table-scroll" role="region" tabindex="0"{label}>'
        f'<table class="analysis"{label}>{table}</div>{foot}</div>'
    )


def show_table(
    df: pd.DataFrame,
    *,
    caption: str | None = None,
    formats: Mapping[str, str | Callable[[Any], str]] | None = None,
    count_col: str | None = None,
    min_group_size: int | None = None,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    total: bool | float | None = None,
    totals_by: Iterable[str | Sequence[str]] | None = None,
    group_col: str | None = None,
    total_label: Any = None,
    hide: Suppression | Collection | None = None,
) -> None:
    """Display ``df`` as an escaped HTML table, suppressing small groups.

    Parameters
    ----------
    df : pandas.DataFrame
        An aggregate table (one row per group or period). A non-default index
        is shown as leading columns.
    caption : str, optional
        Table caption (escaped).
    formats : mapping, optional
        Column -> format: a format spec (``",.1f"``, ``".1%"``), a
        ``str.format`` pattern (``"{:.2f} days"``) or a callable returning str.
    count_col : str, optional
        Column with the number of customers per row. Rows below
        ``min_group_size`` show ``"<N"`` there and "suppressed" in every
        number of the row (labels stay).
    min_group_size : int, optional
        Suppression threshold; default :data:`DEFAULT_MIN_GROUP_SIZE`. Pass
        ``params.analysis.min_group_size``.
    max_rows : int or None, default 100
        Refuse longer tables (raw rows do not belong in a report).
    total, totals_by, total_label : optional
        Totals shown beside the table (a total row labelled ``total_label``,
        a total in the text, subtotals in other tables): further rows are
        suppressed so that no small one can be worked out from them (see
        :func:`suppression`); they show "suppressed" in ``count_col``.
    group_col : str, optional
        Column with the group labels (default: the first column), kept
        readable in suppressed rows.
    hide : Suppression or collection, optional
        Groups to suppress in this table because another table of the same
        groups suppressed them (its :class:`Suppression`, or labels): rows
        whose ``group_col`` is one of them are masked.

    Raises
    ------
    AnalysisError
        If the table has a customer id column (or index) or too many rows.
    """
    markup = table_html(
        df,
        caption=caption,
        formats=formats,
        count_col=count_col,
        min_group_size=min_group_size,
        max_rows=max_rows,
        total=total,
        totals_by=totals_by,
        group_col=group_col,
        total_label=total_label,
        hide=hide,
    )
    if not markup:  # an empty table is not shown (nor its caption)
        return
    text = f"{caption}\n" if caption else ""
    _display_html(markup, text + f"[table: {len(df)} rows x {df.shape[1]} columns]")


# --------------------------------------------------------------------------------------
# Headline numbers
# --------------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if _is_missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


def headline_record(name: str, value: Any, *, unit: str = "", digits: int | None = None) -> dict:
    """Return the JSON record :func:`headline` emits (name, value, unit, formatted text)."""
    v = _json_value(value)
    shown = v
    if unit == "%" and isinstance(v, int | float) and not isinstance(v, bool):
        shown = 100 * v  # a fraction, as in fmt_pct
    if v is None:
        num = "n/a"
    elif isinstance(v, bool) or isinstance(v, str):
        num = str(v)
    elif digits is not None:
        num = _num(shown, digits)
    elif isinstance(shown, int) or float(shown).is_integer() and abs(shown) >= 1000:
        num = f"{shown:,.0f}"
    else:
        num = _num(shown, 0 if abs(shown) >= 1000 else 2)
    if unit == "%":
        text = f"{num}%"
    else:
        text = f"{num} {unit}".strip() if num != "n/a" else num
    return {"name": str(name), "value": v, "unit": str(unit), "text": text}


def headline(name: str, value: Any, *, unit: str = "", digits: int | None = None) -> None:
    """Record a headline number for the reports index.

    Shows nothing in the stakeholder HTML (the runner strips it); in an
    interactive session the text form is displayed.

    Parameters
    ----------
    name : str
        Short label, e.g. ``"Monthly churn"``.
    value : number or str
        The number (or an already formatted string such as :func:`fmt_ci` output).
    unit : str, optional
        Unit label appended to the number (``"EUR"``, ``"months"``). ``"%"``
        means ``value`` is a fraction shown as a percentage, as in
        :func:`fmt_pct`: ``headline("Churn", 0.0316, unit="%", digits=2)`` shows "3.16%".
    digits : int, optional
        Decimals (of the percentage for ``unit="%"``). Default: 0 for integers
        and values of 1,000 or more, else 2.
    """
    record = headline_record(name, value, unit=unit, digits=digits)
    _publish({HEADLINE_MIME: record, "text/plain": f"Headline: {record['name']}: {record['text']}"})


# --------------------------------------------------------------------------------------
# Page shape: verdict, tiles, section findings, skipped sections, appendix
# --------------------------------------------------------------------------------------


def verdict(text: str | Sequence[str]) -> None:
    """Display the verdict, the first thing on the page: at most two plain sentences.

    The runner also shows it on the reports index.

    Parameters
    ----------
    text : str or sequence of str
        The answer to the report's title question, with the headline number
        and its interval in plain units, and the design's limits in words.
    """
    parts = [text] if isinstance(text, str) else [str(t) for t in text]
    body = " ".join(p.strip() for p in parts if p.strip())
    _publish({VERDICT_MIME: {"text": body}, "text/plain": ""})
    _display_html(_page.verdict_html(body), body)


def tile(name: str, value: Any, **kwargs: Any) -> dict:
    """Return a key-figure tile for :func:`tiles` (see :func:`analysis.report.page.tile`)."""
    return _page.tile(name, value, **kwargs)


def tiles(items: Iterable[Mapping[str, Any]]) -> None:
    """Display a row of key-figure tiles; each tile is also a headline on the index.

    Parameters
    ----------
    items : iterable of dict
        Tiles from :func:`tile`; three to six read best.
    """
    items = [dict(t) for t in items]
    for t in items:
        rec = _page.headline_of(t)
        _publish({HEADLINE_MIME: rec, "text/plain": f"Headline: {rec['name']}: {rec['text']}"})
    text = "\n".join(f"{t['name']}: {t['text']}" for t in items)
    _display_html(_page.tiles_html(items), text)


def heading(title: str) -> None:
    """Display a section heading from code, so that a section that is not shown has none."""
    _display_html(f"<h2>{html.escape(str(title))}</h2>", str(title))


def section_finding(text: str) -> None:
    """Display a section's opening finding (one sentence)."""
    _display_html(_page.finding_html(text), str(text))


def flags(texts: Sequence[str], *, title: str = "Unusual values") -> None:
    """Display the unusual-value flags (nothing when there are none)."""
    markup = _page.flags_html(texts, title=title)
    if markup:
        _display_html(markup, "\n".join([title, *texts]))


def skipped(section: Any, reason: str | None = None) -> None:
    """Display a section that could not be estimated, and record it for the index.

    Parameters
    ----------
    section : Skipped or str
        A :class:`analysis.studies.sections.Skipped`, or the section's name.
    reason : str, optional
        The plain sentence, when ``section`` is a name.
    """
    if hasattr(section, "sentence"):
        name, sentence, detail = section.section, section.sentence(), getattr(section, "detail", "")
    else:
        name, sentence, detail = str(section), str(reason or ""), ""
    _publish(
        {SKIPPED_MIME: {"section": name, "reason": sentence, "detail": detail}, "text/plain": ""}
    )
    _display_html(_page.skipped_html(name, sentence), f"Not estimated: {name}. {sentence}")


def appendix(title: str = "For analysts: methods, diagnostics and full tables") -> None:
    """Start the folded appendix: everything displayed after this call goes into it.

    The page shows one closed ``<details>`` block at its end with ``title`` as
    its summary; printing the page expands it. Call once, near the end.
    """
    _publish({APPENDIX_MIME: {"title": str(title)}, "text/plain": f"--- {title} ---"})


# --------------------------------------------------------------------------------------
# Provenance (used by the report runner)
# --------------------------------------------------------------------------------------


def _plain(obj: Any) -> Any:
    """Convert params-like structures to YAML/JSON-safe builtins."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dt.date | dt.datetime | pd.Timestamp):
        return obj.isoformat()
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


def provenance_html(
    *,
    params: Mapping[str, Any],
    fingerprint: Mapping[str, Any],
    package_version: str,
    git_commit: str,
    run_started: str,
    run_seconds: float | None = None,
    notebook: str | None = None,
    params_file: str | None = None,
    kernel_name: str | None = None,
) -> str:
    """Return the escaped provenance footer of a report.

    Parameters
    ----------
    params : mapping
        The run's params (``Params.to_dict()``), shown as YAML.
    fingerprint : mapping
        Data fingerprint: row counts per table (``rows``), ``content_hash``,
        ``as_of``, ``window_start``.
    package_version, git_commit : str
        Version of ``analysis`` and the git commit ("unknown" outside a repository).
    run_started : str
        When the run started (ISO 8601, UTC).
    run_seconds : float, optional
        Time the notebook took to execute, seconds.
    notebook, params_file, kernel_name : str, optional
        Source notebook name, params file path and Jupyter kernel.
    """
    import yaml

    fp = dict(fingerprint)
    rows = fp.pop("rows", None) or fp.pop("row_counts", None) or {}
    items: list[tuple[str, str]] = []
    if notebook:
        items.append(("Notebook", f"{notebook}.ipynb"))
    items.append(("Run started", run_started))
    if run_seconds is not None:
        items.append(("Execution time", f"{run_seconds:.1f} s"))
    if params_file:
        items.append(("Params file", params_file))
    items.append(("Package", f"analysis {package_version}"))
    items.append(("Git commit", git_commit))
    if kernel_name:
        items.append(("Kernel", kernel_name))
    for key in ("as_of", "window_start", "content_hash", "source"):
        if key in fp:
            items.append((f"Data {key.replace('_', ' ')}", str(fp.pop(key))))
    for key, value in fp.items():
        items.append((f"Data {key}", json.dumps(_plain(value))))
    dl = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items)
    row_cells = "".join(
        f'<tr><td class="txt">{html.escape(str(t))}</td>'
        f'<td class="num">{html.escape(_format_value(n))}</td></tr>'
        for t, n in dict(rows).items()
    )
    rows_table = (
        '<table class="analysis provenance-rows"><thead><tr><th class="txt">Table</th>'
        f'<th class="num">Rows</th></tr></thead><tbody>{row_cells}</tbody></table>'
        if row_cells
        else ""
    )
    params_yaml = yaml.safe_dump(_plain(dict(params)), sort_keys=False, allow_unicode=True)
    return (
        '<section class="provenance"><h2>Provenance</h2>'
        f"<dl>{dl}</dl>{rows_table}"
        "<details><summary>Params of this run</summary>"
        f"<pre>{html.escape(params_yaml)}</pre></details></section>"
    )
