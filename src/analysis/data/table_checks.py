"""Checks on one table: columns, types, empty values, non-finite numbers, dates, extremes.

:func:`validate_table` builds a table's cast to contract types and appends every
problem of the table on its own (relational checks across tables live in
:mod:`analysis.data.validation`). :func:`engine_problem` turns an engine's read
error (a ragged CSV line, an unterminated quote) into one problem naming the table.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re

import ibis
import ibis.expr.types as ir

from analysis.data import dates
from analysis.data.contract import TABLES, Table
from analysis.data.sources import _IBIS_TYPES, Source
from analysis.errors import Problem


def _examples(expr: ir.Table, key: str = "customer_id", k: int = 5) -> tuple:
    if key not in expr.columns:
        return ()
    vals = expr.select(key).limit(k).to_pyarrow().column(0).to_pylist()
    return tuple(v for v in vals)


def _count(expr: ir.Table) -> int:
    return int(expr.count().to_pyarrow().as_py())


def _bad_rows(t: ir.Table, pred, key: str = "customer_id") -> tuple[int, tuple]:
    bad = t.filter(pred)
    n = _count(bad)
    return n, (_examples(bad, key) if n else ())


#: Numeric columns checked for values far beyond the column's usual range.
EXTREME_COLUMNS = {
    "transactions": ("amount", "margin"),
    "loyalty": ("points_earned", "points_redeemed"),
    "experience": ("contacts_to_resolve", "response_hours"),
}
#: Extreme values: at least this many times the upper quartile of the column's magnitudes.
EXTREME_FACTOR = 1000.0
_TIMESTAMPTZ = "timestamp('UTC')"


def _today() -> dt.date:
    """Return the run date (a function, so that tests can fix it)."""
    return dt.date.today()


def _text_date(col: ir.StringValue) -> ir.DateValue:
    """Parse text dates: ``YYYY-MM-DD``, or a timestamp with or without a UTC offset.

    A timestamp with an offset is converted to the session time zone
    (``data.timezone``, see :func:`analysis.data.sources.connect`) before its date is
    taken; one without an offset keeps the date as written.
    """
    s = col.strip()
    return ibis.ifelse(s.length() <= 10, s.try_cast("date"), s.try_cast(_TIMESTAMPTZ).date())


def _typed(t: ir.Table, table: Table, present: set[str]) -> dict[str, ir.Value]:
    """Return contract columns cast (leniently) to their contract types."""
    out = {}
    for c in table.columns:
        if c.name not in present:
            continue
        col = t[c.name]
        target = _IBIS_TYPES[c.kind]
        if c.kind == "bool" and col.type().is_string():
            low = col.lower().strip()
            col = ibis.cases(
                (low.isin(["true", "t", "1", "yes", "y"]), True),
                (low.isin(["false", "f", "0", "no", "n"]), False),
                else_=ibis.null("boolean"),
            )
            out[c.name] = col
            continue
        if c.kind == "date" and col.type().is_timestamp():
            out[c.name] = col.date()
            continue
        if c.kind == "date" and col.type().is_string():
            out[c.name] = _text_date(col)
            continue
        if c.kind == "int" and col.type().is_floating():
            # NaN, inf and values beyond int64 become null (a type problem), not a crash
            # (the engines' float-to-integer cast fails on them, even as a try_cast)
            fits = ~col.isnan() & ~col.isinf() & (col.abs() < 9.2e18)
            out[c.name] = ibis.ifelse(fits, col, ibis.null("float64")).round(0).cast("int64")
            continue
        if c.kind == "id":
            if col.type().is_floating():
                # 1.0 -> "1": an integer id stored as float (a column with gaps, via pandas)
                # must match the same id stored as an integer in another table
                whole = ~col.isnan() & ~col.isinf() & (col == col.round(0)) & (col.abs() < 9e15)
                out[c.name] = ibis.ifelse(
                    whole,
                    ibis.ifelse(whole, col, ibis.null("float64")).cast("int64").cast("string"),
                    col.cast("string"),
                )
            else:
                out[c.name] = col.cast("string")
            continue
        if c.name == "kind" and col.type().is_string():
            out[c.name] = col.strip().lower()  # "Survey " is a survey
            continue
        out[c.name] = col if col.type() == ibis.dtype(target) else col.try_cast(target)
    return out


def _shown(t: ir.Table, pred, column: str, k: int = 5) -> tuple:
    """Return up to ``k`` offending values of ``column`` with their customer, as text."""
    cols = [column] + (
        ["customer_id"] if "customer_id" in t.columns and column != "customer_id" else []
    )
    rows = t.filter(pred).select(*cols).limit(k).to_pyarrow().to_pylist()
    out = []
    for r in rows:
        v = r[column]
        v = f"{v:g}" if isinstance(v, float) else str(v)
        out.append(f"{v} (customer {r['customer_id']})" if len(cols) > 1 else v)
    return tuple(out)


def _missing_columns(src: Source, name: str, missing: list[str], problems: list[Problem]) -> None:
    have = list(src.tables[name].columns)
    where = src.locations.get(name, name)
    for c in missing:
        close = difflib.get_close_matches(c, have, n=1, cutoff=0.6)
        close = close or [h for h in have if h.lower().replace(" ", "_") == c]
        hint = f"'{close[0]}' looks like it: " if close else ""
        problems.append(
            Problem(
                name,
                c,
                "missing_column",
                f"required column is missing: {where} has "
                f"{', '.join(have[:15])}{', ...' if len(have) > 15 else ''}",
                fix=f"{hint}add the column or map your column name to '{c}' in "
                f"params data.columns.{name} (e.g. data.columns: {{{name}: "
                f"{{{c}: {close[0] if close else 'your_column'}}}}})",
            )
        )


#: Columns that analysis.data.derive.lifetimes computes: a customer attribute of the same
#: name would be silently replaced or break the derivation.
RESERVED_ATTRIBUTES = (
    "start_date",
    "entry_date",
    "end_date",
    "entry_days",
    "duration_days",
    "entry_months",
    "duration_months",
    "event",
    "left_truncated",
    "first_purchase",
    "last_purchase",
    "n_transactions",
    "revenue",
)


def _reserved(src: Source, problems: list[Problem]) -> None:
    clash = [a for a in src.attributes if a.lower() in RESERVED_ATTRIBUTES]
    if clash:
        problems.append(
            Problem(
                "customers",
                clash[0],
                "reserved_column",
                f"{src.locations.get('customers', 'customers')} has column(s) "
                f"{', '.join(clash)} whose name the analysis uses for a column it derives",
                examples=tuple(clash),
                fix="rename these columns in the data (e.g. crm_revenue), or remove them",
            )
        )


def validate_table(
    src: Source, name: str, problems: list[Problem], *, checks: bool = True, params=None
) -> ir.Table | None:
    """Check one table's columns and types; return it cast to contract types (or None).

    With ``checks=False`` only the cast expression is built (no query runs).
    """
    spec = TABLES[name]
    t = src.tables[name]
    present = src.present[name]
    missing = [c for c in spec.required_columns if c not in present]
    if missing:
        _missing_columns(src, name, missing, problems)
        return None
    typed = _typed(t, spec, present)
    if not checks:
        extra = {a: t[a] for a in src.attributes} if name == "customers" else {}
        return t.select(**typed, **extra)
    # Wrong types / unparseable values: present in the raw data, null after the cast.
    for c in spec.columns:
        if c.name not in present or c.kind in ("id", "str"):
            continue
        raw = t[c.name]
        raw_nonempty = raw.notnull()
        if raw.type().is_string():
            raw_nonempty = raw_nonempty & (raw.strip() != "")
        pred = raw_nonempty & typed[c.name].isnull()
        n, ex = _bad_rows(t, pred, c.name if c.name != "customer_id" else "customer_id")
        if n:
            kind = {
                "date": "unparseable dates",
                "bool": "values that are not true/false",
                "float": "values that are not numbers",
                "int": "values that are not whole numbers",
            }[c.kind]
            ex_vals = tuple(
                t.filter(pred).select(c.name).limit(5).to_pyarrow().column(0).to_pylist()
            )
            problems.append(
                Problem(
                    name,
                    c.name,
                    "type",
                    kind,
                    n,
                    ex_vals,
                    fix={
                        "date": "write dates as YYYY-MM-DD (or a timestamp; not day/month/year, "
                        "not Excel serial numbers), or map the right column",
                        "bool": "write true/false, yes/no or 1/0, or map the right column",
                        "float": "write numbers with a dot as decimal separator, without "
                        "thousands separators or currency signs, or map the right column",
                        "int": "write whole numbers, or map the right column",
                    }[c.kind],
                )
            )
    extra = {}
    if name == "customers":
        _reserved(src, problems)
        extra = {a: t[a] for a in src.attributes}
    cast = t.select(**typed, **extra)
    # Required columns must not be null.
    for c in spec.required_columns:
        raw = t[c]
        empty = raw.isnull() | (raw.strip() == "") if raw.type().is_string() else raw.isnull()
        n, ex = _bad_rows(t, empty)
        if n:
            problems.append(
                Problem(
                    name,
                    c,
                    "null",
                    "required value is empty",
                    n,
                    ex,
                    fix=f"fill {c} for these rows or remove them",
                )
            )
    _value_checks(name, spec, present, t, typed, params, problems)
    # Ranges.
    for c in spec.columns:
        if c.name not in present or (c.lo is None and c.hi is None):
            continue
        col = cast[c.name]
        pred = ibis.literal(False)
        if c.lo is not None:
            pred = pred | (col < c.lo)
        if c.hi is not None:
            pred = pred | (col > c.hi)
        n, ex = _bad_rows(cast, pred)
        if n:
            rng = f"[{c.lo if c.lo is not None else '-inf'}, {c.hi if c.hi is not None else 'inf'}]"
            problems.append(
                Problem(
                    name,
                    c.name,
                    "range",
                    f"values outside {rng}",
                    n,
                    ex,
                    fix=f"correct the scores or blank them; {c.name} must lie in {rng}",
                )
            )
    _extreme_values(name, present, cast, params, problems)
    return cast


def _value_checks(name, spec, present, raw_t, typed, params, problems) -> None:
    """Report non-finite numbers and implausible or future dates (one query per table).

    - inf, -inf and NaN (also what a text value such as 1e400 becomes): errors;
    - dates before 1900 (typing errors such as 0024 for 2024): errors;
    - dates after the run date: errors unless ``data.future_dates_allowed``.
    """
    allow_future = params is not None and params.data.future_dates_allowed
    today = _today()
    floor = ibis.literal(dates.EARLIEST_PLAUSIBLE, type="date")
    checks = []  # (key, column, predicate on cast, rule, message, fix, show raw values)
    for c in spec.columns:
        if c.name not in present:
            continue
        col = typed[c.name]
        if c.kind == "float":
            checks.append(
                (
                    c.name,
                    col.notnull() & (col.isnan() | col.isinf()),
                    "non_finite",
                    "values that are not finite numbers (infinite, NaN, or beyond +-1.8e308)",
                    "correct these values in the source; leave the cell empty where the value is "
                    "unknown" + (" (it is required here)" if c.required else ""),
                    True,
                )
            )
        elif c.kind == "date":
            checks.append(
                (
                    c.name,
                    col < floor,
                    "implausible_date",
                    f"dates before {dates.EARLIEST_PLAUSIBLE} (typing errors such as 0024 for 2024?)",
                    "correct the dates in the source",
                    False,
                )
            )
            if not allow_future:
                checks.append(
                    (
                        c.name,
                        col > ibis.literal(today, type="date"),
                        "after_run_date",
                        f"dates after today ({today}, the run date)",
                        "correct the dates in the source; if the data really holds future dates "
                        "(scheduled contract ends, simulated data), set "
                        "data.future_dates_allowed: true",
                        False,
                    )
                )
    if not checks:
        return
    both = raw_t.mutate(**{f"_v{i}": ch[1] for i, ch in enumerate(checks)})
    counts = (
        both.aggregate(
            **{
                f"n{i}": both[f"_v{i}"].fill_null(False).ifelse(1, 0).sum()
                for i in range(len(checks))
            }
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    for i, (column, _, rule, message, fix, raw_values) in enumerate(checks):
        n = int(counts[f"n{i}"] or 0)
        if not n:
            continue
        pred = both[f"_v{i}"].fill_null(False)
        if raw_values:
            vals = both.filter(pred).select(column).limit(5).to_pyarrow().column(0).to_pylist()
            ex = tuple(str(v) for v in vals)
        else:
            ex = _shown(both.mutate(_date=typed[column]), pred, "_date")
        problems.append(Problem(name, column, rule, message, n, ex, fix=fix))


def _extreme_values(name, present, cast, params, problems) -> None:
    """Report values far beyond the column's usual range (warnings, or errors under a param).

    "Far beyond": a magnitude more than ``max(1000, (Q3/Q1)**3)`` times the upper
    quartile Q3 of the column's non-zero finite magnitudes (on a log scale: at least
    three orders of magnitude, and three interquartile ranges, above Q3). Columns with
    fewer than 8 such values are not checked. Two queries per table.
    """
    severity = params.data.extreme_values if params is not None else "warning"
    cols = [c for c in EXTREME_COLUMNS.get(name, ()) if c in present]
    if not cols:
        return

    def ok(c):
        v = cast[c].cast("float64")
        return v.notnull() & ~v.isnan() & ~v.isinf() & (v.abs() > 0)

    def usable(c):
        return ok(c).ifelse(cast[c].cast("float64").abs(), ibis.null("float64"))

    aggs = {}
    for i, c in enumerate(cols):
        m = usable(c)
        aggs.update(
            {f"n{i}": m.count(), f"a{i}": m.approx_quantile(0.25), f"b{i}": m.approx_quantile(0.75)}
        )
    stats = cast.aggregate(**aggs).to_pyarrow().to_pylist()[0]
    limits = {}
    for i, c in enumerate(cols):
        n, q1, q3 = stats[f"n{i}"] or 0, float(stats[f"a{i}"] or 0.0), float(stats[f"b{i}"] or 0.0)
        if n < 8 or q3 <= 0:
            continue
        factor = max(EXTREME_FACTOR, (q3 / q1) ** 3 if q1 > 0 else EXTREME_FACTOR)
        limits[c] = (q3, factor, q3 * factor)
    if not limits:
        return
    preds = {c: ok(c) & (cast[c].cast("float64").abs() > lim) for c, (_, _, lim) in limits.items()}
    counts = (
        cast.aggregate(
            **{f"n_{c}": p.fill_null(False).ifelse(1, 0).sum() for c, p in preds.items()}
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    for c, (q3, factor, limit) in limits.items():
        n = int(counts[f"n_{c}"] or 0)
        if not n:
            continue
        problems.append(
            Problem(
                name,
                c,
                "extreme",
                f"values beyond +-{limit:,.6g}, far outside the column's usual range "
                f"({factor:,.0f} times its upper quartile of {q3:,.6g})",
                n,
                _shown(cast, preds[c].fill_null(False), c),
                fix="correct them if they are typing or unit errors (cents as euros, an "
                "id in the amount column); set data.extreme_values: error to refuse "
                "such data, or warning to accept it",
                severity="error" if severity == "error" else "warning",
            )
        )


_ENGINE_MODULES = ("duckdb", "_duckdb", "psycopg", "psycopg2", "pyspark", "py4j", "pyarrow")


def is_engine_error(exc: BaseException) -> bool:
    """Return True for an error raised by the engine while reading data (not a bug here)."""
    return type(exc).__module__.split(".")[0] in _ENGINE_MODULES


def engine_problem(table: str, location: str, exc: Exception) -> Problem:
    """Return one problem for an engine error while reading ``table`` (no traceback).

    DuckDB's CSV errors carry the line number, the offending line and the reason;
    the line goes into the examples (it may hold customer data), the rest into the
    message.
    """
    text = str(exc)
    line = re.search(r"CSV Error on Line: (\d+)", text)
    original = re.search(r"Original Line: ?(.*)", text)
    reason = ""
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    if original:
        after = text[original.end() :].splitlines()
        reason = next((x.strip() for x in after if x.strip() and not x.startswith("Possible")), "")
    if not reason:
        reason = lines[0] if lines else type(exc).__name__
    reason = re.sub(r"^[A-Za-z ]*Error: ", "", reason)
    where = f"{location}" + (f", line {int(line.group(1)):,}" if line else "")
    return Problem(
        table,
        None,
        "unreadable",
        f"{where} could not be read: {reason[:200]}",
        examples=(original.group(1)[:120],) if original else (),
        fix="fix the file: every line needs as many fields as the header, quotes must be "
        "closed, and the delimiter must be the header's; or export it again",
    )
