"""Contract validation of a source, the validation receipt, provenance.

:func:`validate` checks a raw :class:`~analysis.data.sources.Source` against the
contract and casts it; :func:`check` lists every problem of a params file's data,
:func:`load` returns the validated source or raises; :func:`fingerprint` and
:func:`customer_ids` serve run provenance and the privacy guard.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir

from analysis.config import Params
from analysis.data import dates, params_fit, table_checks
from analysis.data.contract import TABLES
from analysis.data.sources import _IBIS_TYPES, Source, open_source
from analysis.data.table_checks import (
    _bad_rows,
    _count,
    _examples,
    _text_date,
    engine_problem,
    is_engine_error,
    validate_table,
)
from analysis.errors import DataError, Problem

# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _policy_problem(
    params_key: str,
    policy: str,
    table: str,
    column: str | None,
    rule: str,
    message: str,
    n: int,
    ex: tuple,
    fix: str,
) -> Problem:
    sev = "warning" if policy == "drop" else "error"
    if sev == "warning":
        message += " (dropped, as params data." + params_key + " = drop)"
        fix = "check the extract; these rows are excluded from every report"
    else:
        fix = fix + f", or set data.{params_key}: drop to exclude them with a warning"
    return Problem(table, column, rule, message, n, ex, fix=fix, severity=sev)


def validate(
    src: Source, params: Params, *, receipt: dict | None = None
) -> tuple[Source, list[Problem]]:
    """Check the source against the contract and return the cast source and all problems.

    Parameters
    ----------
    src : Source
        Raw source from :func:`open_source`.
    params : Params

    Returns
    -------
    (Source, list[Problem])
        A new Source with contract-typed tables (rows dropped where a ``drop``
        policy applies) and every problem found, errors and warnings. Callers
        must not use the Source when any problem has severity ``"error"``.

    With a ``receipt`` (see :func:`check`; the report runner validates once and
    passes it to every notebook) no check runs: its problems, as-of date and
    window are reused and only the cast expressions are built, with the same
    ``drop`` policies applied.
    """
    if receipt is not None:
        return _from_receipt(src, params, receipt)
    problems: list[Problem] = list(src.problems)
    for name, spec in TABLES.items():
        if spec.required and name not in src.tables:
            hint = src.missing_hints.get(name)
            problems.append(
                Problem(
                    name,
                    None,
                    "missing_table",
                    "required table not found",
                    fix=(f"{hint}; or " if hint else "")
                    + f"provide a '{name}' file or table, or map its name in "
                    f"params data.tables.{name}",
                )
            )
    cast: dict[str, ir.Table] = {}
    for name in src.tables:
        try:
            c = validate_table(src, name, problems, params=params)
            if c is not None and _count(c) == 0:
                problems.append(
                    Problem(
                        name,
                        None,
                        "empty",
                        "table has no rows",
                        fix="check the extract; an empty table cannot be analysed",
                    )
                )
        except Exception as exc:
            if not is_engine_error(exc):
                raise
            problems.append(engine_problem(name, src.locations.get(name, name), exc))
            c = None
        if c is not None:
            cast[name] = c
    params_fit.check_columns(params, src, cast, problems)
    if _data_errors(problems) or "customers" not in cast:
        return src, problems
    out = _relational(src, params, cast, problems)
    if not _data_errors(problems):
        params_fit.check_window(params, out, problems)
    return out, problems


def _data_errors(problems: list[Problem]) -> bool:
    """Return True if a problem of the data itself (not of a setting) is an error."""
    return any(p.severity == "error" and p.rule != params_fit.RULE for p in problems)


def _relational(src: Source, params: Params, cast: dict, problems: list[Problem]) -> Source:
    """Checks across tables and against the as-of date; return the validated source."""
    d = params.data
    cust = cast["customers"]
    # Duplicate customer ids.
    dup = cust.group_by("customer_id").aggregate(n=cust.count()).filter(lambda x: x.n > 1)
    n_dup = _count(dup)
    if n_dup:
        problems.append(
            Problem(
                "customers",
                "customer_id",
                "duplicate",
                "customer_id is not unique",
                n_dup,
                _examples(dup),
                fix="remove duplicate customer rows (one row per customer)",
            )
        )
    # churn before signup.
    if "churn_date" in src.present["customers"]:
        n, ex = _bad_rows(cust, cust.churn_date < cust.signup_date)
        if n:
            problems.append(
                Problem(
                    "customers",
                    "churn_date",
                    "order",
                    "churn_date before signup_date",
                    n,
                    ex,
                    fix="correct the dates or blank churn_date",
                )
            )

    # As-of date and data window, robust to a few outlying dates (analysis.data.dates).
    end = None if d.as_of else dates.robust_end(*dates.histogram(_as_of_columns(cast)))
    start = None if d.window_start else dates.robust_start(*dates.histogram(_window_columns(cast)))
    as_of = d.as_of or (end.date if end else _scalar(cust.signup_date.max()))
    window_start = d.window_start or (start.date if start else _scalar(cust.signup_date.min()))
    note = _as_of_note(d, end, start, as_of, window_start)
    _check_dates_against_window(params, as_of, window_start, end, start, problems)
    for colname in ("signup_date", "churn_date"):
        if colname in src.present["customers"]:
            n, ex = _bad_rows(cust, cust[colname] > as_of)
            if n:
                problems.append(
                    Problem(
                        "customers",
                        colname,
                        "future",
                        f"{colname} after the as-of date {as_of}" + _outlier_note(end),
                        n,
                        ex,
                        fix="correct the dates, or set data.as_of later",
                    )
                )
    if "loyalty" in cast and "left_date" in src.present["loyalty"]:
        lt = cast["loyalty"]
        n, ex = _bad_rows(lt, lt.left_date > as_of)
        if n:
            problems.append(
                Problem(
                    "loyalty",
                    "left_date",
                    "future",
                    f"left_date after the as-of date {as_of}" + _outlier_note(end),
                    n,
                    ex,
                    fix="correct the dates, or set data.as_of later",
                )
            )

    # Orphans and out-of-window rows in event tables.
    known = _known_customers(cust)
    floor = None if d.window_start else window_start
    for name, datecol in EVENT_DATES:
        if name not in cast:
            continue
        t = cast[name]
        orphan = t.anti_join(known, "customer_id")
        n = _count(orphan)
        if n:
            problems.append(
                _policy_problem(
                    "orphan_rows",
                    d.orphan_rows,
                    name,
                    "customer_id",
                    "orphan",
                    "rows for customers not in the customers table",
                    n,
                    _examples(orphan),
                    fix="add the customers, or fix the ids",
                )
            )
            if d.orphan_rows == "drop":
                t = t.semi_join(known, "customer_id")
        j = t.join(known, "customer_id")
        fix = "correct the dates or the signup dates"
        checks = [
            (j[datecol] < j._signup, f"{datecol} before the customer's signup_date", fix),
            (
                j[datecol] > as_of,
                f"{datecol} after the as-of date {as_of}" + _outlier_note(end),
                "correct the dates, or set data.as_of to include them"
                if end is not None and end.moved
                else "correct the dates, or set data.as_of later",
            ),
        ]
        table_floor = floor if name in WINDOW_TABLES else None
        if table_floor is not None and start is not None and start.moved:
            checks.append(
                (
                    j[datecol] < table_floor,
                    f"{datecol} before the default data window, which starts on {table_floor}: "
                    f"{start.n_outlying:,} row(s) lie far before the bulk of the data "
                    f"(the earliest on {start.raw})",
                    "correct the dates, or set data.window_start to include them",
                )
            )
        for pred, what, fix in checks:
            n, ex = _bad_rows(j, pred)
            if n:
                problems.append(
                    _policy_problem(
                        "out_of_window_rows",
                        d.out_of_window_rows,
                        name,
                        datecol,
                        "out_of_window",
                        what,
                        n,
                        ex,
                        fix=fix,
                    )
                )
        if d.out_of_window_rows == "drop":
            t = _in_window(t, known, datecol, as_of, table_floor)
        cast[name] = t
    if "transactions" in cast and not d.refunds_allowed:
        t = cast["transactions"]
        n, ex = _bad_rows(t, t.amount < 0)
        if n:
            problems.append(
                Problem(
                    "transactions",
                    "amount",
                    "negative",
                    "negative amounts",
                    n,
                    ex,
                    fix="remove refunds, or set data.refunds_allowed: true if the "
                    "data records refunds as negative amounts",
                )
            )
    if "loyalty" in cast and "left_date" in src.present["loyalty"]:
        t = cast["loyalty"]
        n, ex = _bad_rows(t, t.left_date < t.enrolled_date)
        if n:
            problems.append(
                Problem(
                    "loyalty",
                    "left_date",
                    "order",
                    "left_date before enrolled_date",
                    n,
                    ex,
                    fix="correct the dates or blank left_date",
                )
            )
    out = _validated_source(src, cast, as_of, window_start, problems)
    out.as_of_note = note
    return out


# Event tables and their date column, checked against signup and the as-of date.
EVENT_DATES = (("transactions", "date"), ("loyalty", "enrolled_date"), ("experience", "date"))
# Tables whose dates define the default window start (loyalty memberships may predate it).
WINDOW_TABLES = ("transactions", "experience")
# Columns whose latest date is the default as-of date.
AS_OF_DATES = (
    ("transactions", "date"),
    ("experience", "date"),
    ("customers", "signup_date"),
    ("customers", "churn_date"),
)


def _as_of_columns(cast: dict) -> list:
    return [cast[t][c] for t, c in AS_OF_DATES if t in cast and c in cast[t].columns]


def _window_columns(cast: dict) -> list:
    return [cast[t]["date"] for t in WINDOW_TABLES if t in cast]


def _outlier_note(end: dates.Edge | None) -> str:
    if end is None or not end.moved:
        return ""
    return (
        f" (the default as-of date leaves out {end.n_outlying:,} row(s) dated far beyond the "
        f"rest of the data, up to {end.raw}, against ~{end.rate:,.0f} rows a day before it)"
    )


def _as_of_note(d, end, start, as_of, window_start) -> str:
    if d.as_of:
        parts = [f"as-of date {as_of} (data.as_of)"]
    elif end is not None and end.moved:
        parts = [
            f"as-of date {as_of} (the latest date in the data, leaving out "
            f"{end.n_outlying:,} row(s) far beyond the rest, up to {end.raw})"
        ]
    else:
        parts = [f"as-of date {as_of} (the latest date in the data)"]
    if d.window_start:
        parts.append(f"window from {window_start} (data.window_start)")
    elif start is not None and start.moved:
        parts.append(
            f"window from {window_start} (the earliest transaction or experience date, "
            f"leaving out {start.n_outlying:,} row(s) far before the rest, from {start.raw})"
        )
    else:
        parts.append(f"window from {window_start} (the earliest transaction or experience date)")
    return "; ".join(parts)


def _check_dates_against_window(params, as_of, window_start, end, start, problems) -> None:
    d = params.data
    today = table_checks._today()
    if d.as_of and d.as_of > today and not d.future_dates_allowed:
        problems.append(
            Problem(
                "data",
                "as_of",
                "after_run_date",
                f"data.as_of {d.as_of} is after today ({today}, the run date)",
                fix="set data.as_of to a past date (or leave it empty: the latest date in the "
                "data), or set data.future_dates_allowed: true",
            )
        )
    if window_start >= as_of:
        problems.append(
            Problem(
                "data",
                "window_start" if d.window_start else "as_of",
                "window",
                f"the data window would start on {window_start}, not before the as-of date {as_of}",
                fix="set data.as_of after the window start (or leave it empty), or set "
                "data.window_start earlier",
            )
        )


def _known_customers(cust: ir.Table) -> ir.Table:
    """One row per customer id with its earliest signup date (``_signup``).

    An aggregate rather than ``distinct(on=...)``, which compiles to FIRST():
    DuckDB and Spark have it, Postgres does not.
    """
    return cust.group_by("customer_id").aggregate(_signup=cust.signup_date.min())


def _in_window(
    t: ir.Table, known: ir.Table, datecol: str, as_of: dt.date, floor: dt.date | None = None
) -> ir.Table:
    """Keep rows dated from the customer's signup (and ``floor``) to ``as_of`` (``drop`` policy)."""
    keep = t.join(known, "customer_id")
    pred = (keep[datecol] >= keep._signup) & (keep[datecol] <= as_of)
    if floor is not None:
        pred = pred & (keep[datecol] >= floor)
    return keep.filter(pred).drop("_signup")


def _validated_source(src: Source, cast: dict, as_of, window_start, problems) -> Source:
    """Return the validated Source: absent optional columns filled with typed nulls."""
    full: dict[str, ir.Table] = {}
    for name, t in cast.items():
        add = {
            c.name: ibis.null(_IBIS_TYPES[c.kind])
            for c in TABLES[name].columns
            if c.name not in t.columns
        }
        full[name] = t.mutate(**add) if add else t
    return Source(
        con=src.con,
        tables=full,
        present=src.present,
        attributes=src.attributes,
        as_of=as_of,
        window_start=window_start,
        problems=problems,
        validated=True,
        locations=src.locations,
        other_files=src.other_files,
        missing_hints=src.missing_hints,
    )


def _from_receipt(src: Source, params: Params, receipt: dict) -> tuple[Source, list[Problem]]:
    """Build the validated Source from a receipt, running no check (see :func:`validate`)."""
    d = params.data
    problems = [Problem(**{**p, "examples": tuple(p["examples"])}) for p in receipt["problems"]]
    as_of = dt.date.fromisoformat(receipt["as_of"])
    window_start = dt.date.fromisoformat(receipt["window_start"])
    cast = {name: validate_table(src, name, [], checks=False) for name in src.tables}
    known = _known_customers(cast["customers"])
    floor = None if d.window_start else window_start
    for name, datecol in EVENT_DATES:
        if name not in cast:
            continue
        t = cast[name]
        if d.orphan_rows == "drop":
            t = t.semi_join(known, "customer_id")
        if d.out_of_window_rows == "drop":
            t = _in_window(t, known, datecol, as_of, floor if name in WINDOW_TABLES else None)
        cast[name] = t
    out = _validated_source(src, cast, as_of, window_start, problems)
    out.as_of_note = receipt.get("as_of_note", "")
    return out, problems


RECEIPT_ENV = "ANALYSIS_VALIDATION_RECEIPT"


def _receipt_key(params: Params, src: Source) -> str | None:
    """Return a key of the data and its params, or None where no cheap key exists.

    Folder and DuckDB sources: file names, sizes and modification times, row
    counts per table, and the params' data section. A database that can change
    without its files changing (Postgres, Spark) gets no receipt. The run date is
    part of the key, since dates after it are refused.
    """
    if params.data.source not in ("folder", "duckdb"):
        return None
    fp = fingerprint(params, src, with_as_of=False)
    return f"{fp['content_hash']}|{params.data!r}|{table_checks._today()}"


def _write_receipt(path: Path, params: Params, src: Source, valid: Source, problems) -> None:
    key = _receipt_key(params, src)
    if key is None:
        return
    body = {
        "key": key,
        "as_of": valid.as_of.isoformat(),
        "window_start": valid.window_start.isoformat(),
        "as_of_note": valid.as_of_note,
        "problems": [
            {
                **{f: getattr(p, f) for f in ("table", "column", "rule", "message", "n_rows")},
                "examples": [str(x) for x in p.examples],
                "fix": p.fix,
                "severity": p.severity,
            }
            for p in problems
        ],
    }
    Path(path).write_text(json.dumps(body))


def _read_receipt(params: Params, src: Source) -> dict | None:
    """Return the run's validation receipt if one is set and matches this data, else None."""
    path = os.environ.get(RECEIPT_ENV, "").strip()
    if not path or not Path(path).is_file():
        return None
    try:
        body = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    key = _receipt_key(params, src)
    return body if key is not None and body.get("key") == key else None


def _scalar(expr) -> object:
    return expr.to_pyarrow().as_py()


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------


@dataclass
class TableSummary:
    """What validation read of one table: where from, how many rows, which dates."""

    name: str
    location: str
    rows: int | None
    date_column: str | None = None
    first: dt.date | None = None
    last: dt.date | None = None


@dataclass
class Diagnosis:
    """Everything :func:`diagnose` found: the problems and what the data holds.

    Attributes
    ----------
    problems : list[Problem]
        Errors and warnings, as :func:`check` returns them.
    tables : list[TableSummary]
        The tables read (empty when the source could not be opened).
    other_files : list[str]
        Files in a data folder that are not data files.
    as_of_note : str
        The as-of date and window and how they were chosen ("" when not reached).
    source : str
        Where the data is (folder, file or database).
    auto : list[AutoChoice]
        The settings left at ``auto`` and what the data made of them
        (:func:`analysis.data.params_fit.resolve_auto`; empty when the data is not valid).
    """

    problems: list[Problem]
    tables: list[TableSummary] = field(default_factory=list)
    other_files: list[str] = field(default_factory=list)
    as_of_note: str = ""
    source: str = ""
    auto: list[params_fit.AutoChoice] = field(default_factory=list)

    @property
    def unmapped_files(self) -> list[str]:
        """Return the data files in the folder that map to no table (and were not read)."""
        out = []
        for p in self.problems:
            if p.rule == "unmapped_file":
                out.append(p.message.split(" in the data folder")[0])
        return out

    @property
    def errors(self) -> list[Problem]:
        """Return the problems of severity ``"error"``."""
        return [p for p in self.problems if p.severity == "error"]

    def summary_lines(self) -> list[str]:
        """Return what was read, one line per table, for the ``validate`` command."""
        out = [f"data: {self.source}"] if self.source else []
        for t in self.tables:
            rows = "unreadable" if t.rows is None else f"{t.rows:,} rows"
            line = f"  {t.name:<12} {t.location:<28} {rows:>14}"
            if t.date_column and t.first:
                line += f"   {t.date_column} {t.first} .. {t.last}"
            out.append(line)
        if self.unmapped_files:
            out.append(
                f"  data files that map to no table (not read): {', '.join(self.unmapped_files)}"
            )
        if self.other_files:
            out.append(f"  not data files (not read): {', '.join(self.other_files)}")
        if self.as_of_note:
            out.append(self.as_of_note)
        out += _auto_lines(self.auto)
        return out


def _auto_lines(choices: list[params_fit.AutoChoice]) -> list[str]:
    """Return the ``auto`` choices for the ``validate`` command, one line per setting."""
    if not choices:
        return []
    out = ["settings chosen from the data (auto):"]
    for c in choices:
        if c.key == "columns":
            out.append(f"  {c.sentence}")
            continue
        v = c.value
        shown = (
            "none"
            if v is None or v == []
            else "[" + ", ".join(map(str, v)) + "]"
            if isinstance(v, list)
            else str(v)
        )
        out.append(f"  {c.key} = {shown}")
    return out


_SUMMARY_DATES = {
    "customers": "signup_date",
    "transactions": "date",
    "loyalty": "enrolled_date",
    "experience": "date",
}


def _summaries(src: Source) -> list[TableSummary]:
    out = []
    for name in TABLES:
        if name not in src.tables:
            continue
        loc = src.locations.get(name, name)
        try:
            t = src.tables[name]
            rows = _count(t)
            col = _SUMMARY_DATES[name]
            first = last = None
            if col in src.present[name]:
                typed = t[col].date() if t[col].type().is_timestamp() else t[col]
                if typed.type().is_string():
                    typed = _text_date(typed)
                lo = ibis.literal(dates.EARLIEST_PLAUSIBLE, type="date")
                m = t.mutate(_d=typed)
                m = m.filter(m._d >= lo)
                r = m.aggregate(a=m._d.min(), b=m._d.max()).to_pyarrow().to_pylist()[0]
                first, last = r["a"], r["b"]
            out.append(TableSummary(name, loc, rows, col, first, last))
        except Exception:  # noqa: BLE001 - the problems already say why
            out.append(TableSummary(name, loc, None))
    return out


def _source_label(params: Params) -> str:
    d = params.data
    if d.source in ("folder", "duckdb") or (d.source == "spark" and d.path):
        return f"{d.path} ({d.source})"
    return f"{d.source}" + (f", schema {d.schema}" if d.schema else "")


def _checked(params: Params, receipt) -> tuple[Source | None, Source | None, list[Problem]]:
    """Open and validate; return (raw source, validated source, problems)."""
    try:
        src = open_source(params)
    except DataError as exc:
        return None, None, exc.problems or [Problem("data", None, "source", exc.summary)]
    valid, problems = validate(src, params)
    if receipt is not None and not any(p.severity == "error" for p in problems):
        _write_receipt(Path(receipt), params, src, valid, problems)
    return src, valid, problems


def diagnose(params: Params, *, receipt: str | Path | None = None) -> Diagnosis:
    """Validate the params' data and say what it holds (see :func:`check` for ``receipt``).

    Returns
    -------
    Diagnosis
        The problems (errors and warnings), the tables read with their row counts
        and date ranges, files in the data folder that were not read (data files
        that map to no table among them), the as-of date and window, and the
        ``auto`` settings with the columns chosen for them. An engine error while
        reading becomes a problem naming the table.
    """
    src, valid, problems = _checked(params, receipt)
    label = _source_label(params)
    if src is None:
        return Diagnosis(problems, source=label)
    note = valid.as_of_note if valid is not None and valid.validated else ""
    auto: list = []
    if valid is not None and valid.validated and not any(p.severity == "error" for p in problems):
        try:
            auto = params_fit.resolve_auto(params, valid)[1]
        except Exception as exc:  # noqa: BLE001 - an engine error becomes a problem
            if not is_engine_error(exc):
                raise
            problems.append(engine_problem("customers", src.locations.get("customers", ""), exc))
    return Diagnosis(problems, _summaries(src), src.other_files, note, label, auto)


def check(params: Params, *, receipt: str | Path | None = None) -> list[Problem]:
    """Return every validation problem of the params' data (errors and warnings).

    With ``receipt``, a clean validation (warnings at most) is also written to
    that file: the problems, as-of date and window, keyed by the data files'
    sizes, times and row counts, by the params' data section and by the run date.
    :func:`load` reuses it instead of validating again when the environment
    variable ``ANALYSIS_VALIDATION_RECEIPT`` names the file and the key still
    matches, so a report run validates once rather than once per notebook.
    """
    return _checked(params, receipt)[2]


def load(params: Params) -> Source:
    """Open, validate and cast the params' data source.

    Raises
    ------
    DataError
        When any problem has severity ``"error"``; its message lists them all.
    """
    src = open_source(params)
    out, problems = validate(src, params, receipt=_read_receipt(params, src))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DataError(
            f"the data breaks the contract in {len(errors)} way(s); no report was produced",
            problems,
        )
    return out


def fingerprint(params: Params, source: Source | None = None, *, with_as_of: bool = True) -> dict:
    """Return row counts per table and a content hash, for run provenance.

    The hash covers file names, sizes and modification times of a folder or
    DuckDB source (cheap and changes whenever the data does) plus row counts.
    The as-of date is the source's (when validated) or the params', else the
    default that validation would choose (:mod:`analysis.data.dates`).
    """
    src = source or open_source(params)
    counts = {name: _count(t) for name, t in sorted(src.tables.items())}
    h = hashlib.sha256()
    d = params.data
    if d.source in ("folder", "duckdb", "spark") and d.path:
        p = Path(d.path)
        files = sorted(p.rglob("*")) if p.is_dir() else [p]
        for f in files:
            if f.is_file() and f.name != "truth.json":
                st = f.stat()
                h.update(f"{f.relative_to(p.parent)}|{st.st_size}|{int(st.st_mtime)}".encode())
    h.update(repr(sorted(counts.items())).encode())
    out = {"rows": counts, "content_hash": h.hexdigest()[:16], "source": d.source}
    if not with_as_of:
        return out
    as_of = src.as_of or d.as_of
    if as_of is None:
        try:  # one scan per date column; validation proper happens elsewhere
            cols = []
            for name, col in AS_OF_DATES:
                if name in src.tables and col in src.tables[name].columns:
                    c = src.tables[name][col]
                    if c.type().is_timestamp():
                        c = c.date()
                    elif c.type().is_string():
                        c = _text_date(c)
                    cols.append(c)
            edge = dates.robust_end(*dates.histogram(cols))
            as_of = edge.date if edge else None
        except Exception:  # noqa: BLE001 - provenance must never break a run
            as_of = None
    out["as_of"] = str(as_of) if as_of else "unknown"
    if src.window_start or d.window_start:
        out["window_start"] = str(src.window_start or d.window_start)
    return out


def customer_id_array(params: Params, source: Source | None = None):
    """Return the customer ids of the customers table as one Arrow string array.

    For the HTML privacy guard at any scale: ten million ids take about 130 MB
    this way, against about 1.2 GB as a Python set (:func:`customer_ids`).
    """
    import pyarrow as pa

    src = source or open_source(params)
    if not src.has("customers"):
        return pa.array([], type=pa.string())
    col = src.tables["customers"].select(cid=src.tables["customers"].customer_id.cast("string"))
    ids = col.to_pyarrow().column(0).combine_chunks()
    return ids.drop_null()


def customer_ids(params: Params, source: Source | None = None) -> set[str]:
    """Return the set of customer ids in the customers table (for the HTML privacy guard)."""
    return set(customer_id_array(params, source).to_pylist())
