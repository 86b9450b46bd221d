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
from pathlib import Path

import ibis
import ibis.expr.types as ir

from analysis.config import Params
from analysis.data.contract import TABLES, Table
from analysis.data.sources import _IBIS_TYPES, Source, open_source
from analysis.errors import DataError, Problem

# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


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
        if c.kind == "int" and col.type().is_floating():
            out[c.name] = col.round(0).cast("int64")
            continue
        if c.kind == "id":
            out[c.name] = col.cast("string")
            continue
        out[c.name] = col if col.type() == ibis.dtype(target) else col.try_cast(target)
    return out


def _validate_table(
    src: Source, name: str, problems: list[Problem], *, checks: bool = True
) -> ir.Table | None:
    """Check one table's columns and types; return it cast to contract types (or None).

    With ``checks=False`` only the cast expression is built (no query runs).
    """
    spec = TABLES[name]
    t = src.tables[name]
    present = src.present[name]
    missing = [c for c in spec.required_columns if c not in present]
    if missing:
        for c in missing:
            problems.append(
                Problem(
                    name,
                    c,
                    "missing_column",
                    "required column is missing",
                    fix=f"add the column or map your column name to '{c}' in "
                    f"params data.columns.{name}",
                )
            )
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
                    fix="fix these values in the source (dates as YYYY-MM-DD, "
                    "numbers without currency signs), or map the right column",
                )
            )
    extra = {}
    if name == "customers":
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
    return cast


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
    d = params.data
    if receipt is not None:
        return _from_receipt(src, params, receipt)
    problems: list[Problem] = []
    for name, spec in TABLES.items():
        if spec.required and name not in src.tables:
            problems.append(
                Problem(
                    name,
                    None,
                    "missing_table",
                    "required table not found",
                    fix=f"provide a '{name}' file or table, or map its name in "
                    f"params data.tables.{name}",
                )
            )
    cast: dict[str, ir.Table] = {}
    for name in src.tables:
        c = _validate_table(src, name, problems)
        if c is not None:
            cast[name] = c
    for name, t in cast.items():
        if _count(t) == 0:
            problems.append(
                Problem(
                    name,
                    None,
                    "empty",
                    "table has no rows",
                    fix="check the extract; an empty table cannot be analysed",
                )
            )
    if any(p.severity == "error" for p in problems) or "customers" not in cast:
        return src, problems

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

    # As-of date and data window.
    as_of = d.as_of or _infer_as_of(cast)
    window_start = d.window_start or _infer_window_start(cast)
    for colname in ("signup_date", "churn_date"):
        if colname in src.present["customers"]:
            n, ex = _bad_rows(cust, cust[colname] > as_of)
            if n:
                problems.append(
                    Problem(
                        "customers",
                        colname,
                        "future",
                        f"{colname} after the as-of date {as_of}",
                        n,
                        ex,
                        fix="correct the dates, or set data.as_of later",
                    )
                )

    # Orphans and out-of-window rows in event tables.
    known = _known_customers(cust)
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
        early = j[datecol] < j._signup
        late = j[datecol] > as_of
        for pred, what in (
            (early, f"{datecol} before the customer's signup_date"),
            (late, f"{datecol} after the as-of date {as_of}"),
        ):
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
                        fix="correct the dates or the signup dates",
                    )
                )
        if d.out_of_window_rows == "drop":
            t = _in_window(t, known, datecol, as_of)
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
    return _validated_source(src, cast, as_of, window_start, problems), problems


# Event tables and their date column, checked against signup and the as-of date.
EVENT_DATES = (("transactions", "date"), ("loyalty", "enrolled_date"), ("experience", "date"))


def _known_customers(cust: ir.Table) -> ir.Table:
    """One row per customer id with its earliest signup date (``_signup``).

    An aggregate rather than ``distinct(on=...)``, which compiles to FIRST():
    DuckDB and Spark have it, Postgres does not.
    """
    return cust.group_by("customer_id").aggregate(_signup=cust.signup_date.min())


def _in_window(t: ir.Table, known: ir.Table, datecol: str, as_of: dt.date) -> ir.Table:
    """Keep rows dated from the customer's signup to ``as_of`` (the ``drop`` policy)."""
    keep = t.join(known, "customer_id")
    keep = keep.filter((keep[datecol] >= keep._signup) & (keep[datecol] <= as_of))
    return keep.drop("_signup")


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
    )


def _from_receipt(src: Source, params: Params, receipt: dict) -> tuple[Source, list[Problem]]:
    """Build the validated Source from a receipt, running no check (see :func:`validate`)."""
    d = params.data
    problems = [Problem(**{**p, "examples": tuple(p["examples"])}) for p in receipt["problems"]]
    as_of = dt.date.fromisoformat(receipt["as_of"])
    cast = {name: _validate_table(src, name, [], checks=False) for name in src.tables}
    known = _known_customers(cast["customers"])
    for name, datecol in EVENT_DATES:
        if name not in cast:
            continue
        t = cast[name]
        if d.orphan_rows == "drop":
            t = t.semi_join(known, "customer_id")
        if d.out_of_window_rows == "drop":
            t = _in_window(t, known, datecol, as_of)
        cast[name] = t
    window_start = dt.date.fromisoformat(receipt["window_start"])
    return _validated_source(src, cast, as_of, window_start, problems), problems


RECEIPT_ENV = "ANALYSIS_VALIDATION_RECEIPT"


def _receipt_key(params: Params, src: Source) -> str | None:
    """Return a key of the data and its params, or None where no cheap key exists.

    Folder and DuckDB sources: file names, sizes and modification times, row
    counts per table, and the params' data section. A database that can change
    without its files changing (Postgres, Spark) gets no receipt.
    """
    if params.data.source not in ("folder", "duckdb"):
        return None
    fp = fingerprint(params, src, with_as_of=False)
    return f"{fp['content_hash']}|{params.data!r}"


def _write_receipt(path: Path, params: Params, src: Source, valid: Source, problems) -> None:
    key = _receipt_key(params, src)
    if key is None:
        return
    body = {
        "key": key,
        "as_of": valid.as_of.isoformat(),
        "window_start": valid.window_start.isoformat(),
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


def _infer_as_of(cast: dict[str, ir.Table]) -> dt.date:
    dates = []
    for name, col in (
        ("transactions", "date"),
        ("experience", "date"),
        ("customers", "signup_date"),
        ("customers", "churn_date"),
    ):
        if name in cast and col in cast[name].columns:
            v = _scalar(cast[name][col].max())
            if v is not None:
                dates.append(v)
    return max(dates)


def _infer_window_start(cast: dict[str, ir.Table]) -> dt.date:
    dates = []
    for name, col in (("transactions", "date"), ("experience", "date")):
        if name in cast:
            v = _scalar(cast[name][col].min())
            if v is not None:
                dates.append(v)
    if not dates:
        dates.append(_scalar(cast["customers"].signup_date.min()))
    return min(dates)


def check(params: Params, *, receipt: str | Path | None = None) -> list[Problem]:
    """Return every validation problem of the params' data (errors and warnings).

    With ``receipt``, a clean validation (warnings at most) is also written to
    that file: the problems, as-of date and window, keyed by the data files'
    sizes, times and row counts and by the params' data section. :func:`load`
    reuses it instead of validating again when the environment variable
    ``ANALYSIS_VALIDATION_RECEIPT`` names the file and the key still matches,
    so a report run validates once rather than once per notebook.
    """
    try:
        src = open_source(params)
    except DataError as exc:
        return exc.problems or [Problem("data", None, "source", exc.summary)]
    valid, problems = validate(src, params)
    if receipt is not None and not any(p.severity == "error" for p in problems):
        _write_receipt(Path(receipt), params, src, valid, problems)
    return problems


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
        try:  # one cheap scan per date column; validation proper happens elsewhere
            cast = {}
            for name, col in (
                ("transactions", "date"),
                ("experience", "date"),
                ("customers", "signup_date"),
                ("customers", "churn_date"),
            ):
                if name in src.tables and col in src.tables[name].columns:
                    c = src.tables[name][col]
                    c = c.date() if c.type().is_timestamp() else c.try_cast("date")
                    cast.setdefault(name, {})[col] = c
            as_of = max(
                v
                for v in (_scalar(c.max()) for cols in cast.values() for c in cols.values())
                if v is not None
            )
        except Exception:  # noqa: BLE001 - provenance must never break a run
            as_of = None
    out["as_of"] = str(as_of) if as_of else "unknown"
    if src.window_start or d.window_start:
        out["window_start"] = str(src.window_start or d.window_start)
    return out


def customer_ids(params: Params, source: Source | None = None) -> set[str]:
    """Return the set of customer ids in the customers table (for the HTML privacy guard)."""
    src = source or open_source(params)
    if not src.has("customers"):
        return set()
    col = src.tables["customers"].select(cid=src.tables["customers"].customer_id.cast("string"))
    return {v for v in col.to_pyarrow().column(0).to_pylist() if v is not None}
