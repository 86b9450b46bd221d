"""Opening data sources: folders of CSV/Parquet files, DuckDB, Postgres, Spark.

:func:`open_source` returns a :class:`Source` with the raw contract tables, renamed
from the user's column names to the contract's; :func:`connect` gives the Ibis
connection. Validation and casting happen in :mod:`analysis.data.validation`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir

from analysis.config import Params
from analysis.data import files
from analysis.data.contract import TABLES
from analysis.errors import DataError, Problem

_IBIS_TYPES = {
    "id": "string",
    "date": "date",
    "float": "float64",
    "int": "int64",
    "bool": "boolean",
    "str": "string",
}


@dataclass
class Source:
    """Tables of one data source, keyed by contract table name.

    Attributes
    ----------
    con : ibis backend
        The connection the tables live on.
    tables : dict[str, ibis.Table]
        Contract tables. Raw (renamed only) after :func:`open_source`;
        cast to contract types, with every contract column present (absent
        optional columns as typed nulls), after :func:`load`.
    present : dict[str, set[str]]
        Contract columns that the data actually has, per table.
    attributes : list[str]
        Further customer attribute columns beyond the contract's.
    as_of, window_start : datetime.date or None
        Report date and first day the data covers (set by :func:`load`).
    problems : list[Problem]
        Warnings found while opening (files that map to no table, unnamed columns)
        and, after :func:`load`, during validation (errors raise instead).
    locations : dict[str, str]
        Where each table was read from: a file or folder inside the data folder,
        or a database table.
    other_files : list[str]
        Files in a data folder that are not data files (README, truth.json ...).
    missing_hints : dict[str, str]
        For tables the source lacks: a hint at the file that probably is the table.
    as_of_note : str
        How the as-of date was chosen (set by validation).
    """

    con: object
    tables: dict[str, ir.Table]
    present: dict[str, set[str]] = field(default_factory=dict)
    attributes: list[str] = field(default_factory=list)
    as_of: dt.date | None = None
    window_start: dt.date | None = None
    problems: list[Problem] = field(default_factory=list)
    validated: bool = False
    locations: dict[str, str] = field(default_factory=dict)
    other_files: list[str] = field(default_factory=list)
    missing_hints: dict[str, str] = field(default_factory=dict)
    as_of_note: str = ""

    def has(self, name: str) -> bool:
        """Return True if the source has the contract table ``name``."""
        return name in self.tables

    def table(self, name: str) -> ir.Table:
        """Return the Ibis table ``name``; raise DataError if the data has no such table."""
        if name not in self.tables:
            raise DataError(
                f"the data has no '{name}' table",
                [
                    Problem(
                        name,
                        None,
                        "missing_table",
                        "table not found in the source",
                        fix=f"add a '{name}' file/table or map it in params data.tables",
                    )
                ],
            )
        return self.tables[name]

    def has_column(self, table: str, column: str) -> bool:
        """Return True if ``table`` exists and the data has ``column`` in it."""
        return table in self.tables and column in self.present.get(table, set())

    def customer_keys(self) -> ir.Table:
        """Return the customer codes as a two-column Ibis table: ``customer_id`` and ``_code``
        (int32, the position in identifier order).

        The identifiers are pulled and sorted once (one column) and the codes go back to
        the engine as an in-memory table, joined by hash (an engine can spill that to disk;
        a row number over every customer is a window over one partition, and ran DuckDB out
        of its memory cap at 10M customers). Group-bys with many groups per customer, such
        as customer and day, run on the codes: DuckDB 1.5 spills those with integer keys
        but not with string keys (at 10M customers and 250M transactions the customer-day
        group-by failed in 2 GB on string ids and ran in 1 GB on codes).
        """
        cache = self.__dict__.setdefault("_keys_cache", {})
        if "keys" not in cache:
            import ibis
            import numpy as np
            import pyarrow as pa

            ids = self.sorted_customer_ids()
            codes = pa.array(np.arange(len(ids), dtype=np.int32))
            cache["keys"] = ibis.memtable(pa.table({"customer_id": ids, "_code": codes}))
        return cache["keys"]

    def sorted_customer_ids(self):
        """The customers table's identifiers, sorted, as one Arrow array: the identifier of
        customer code ``k`` (:meth:`customer_keys`) is element ``k``."""
        cache = self.__dict__.setdefault("_keys_cache", {})
        if "ids" not in cache:
            import pyarrow.compute as pc

            ids = self.table("customers").select("customer_id").to_pyarrow().column(0)
            cache["ids"] = ids.take(pc.sort_indices(ids)).combine_chunks()
        return cache["ids"]


# --------------------------------------------------------------------------------------
# Opening sources
# --------------------------------------------------------------------------------------


THREADS_ENV = "ANALYSIS_THREADS"
MEMORY_ENV = "ANALYSIS_ENGINE_MEMORY"
TEMP_ENV = "ANALYSIS_ENGINE_TEMP"
_TEMP_DIR: str | None = None


def _spill_dir() -> str:
    """Return this process's own folder for DuckDB's spill files (made once, removed at exit).

    DuckDB's default for an in-memory database is ``.tmp`` in the working directory, which
    every notebook kernel of a run shares: two kernels spilling at once corrupt each other's
    files ("Corrupt temporary file"). The folder is made under ``ANALYSIS_ENGINE_TEMP`` when
    set (e.g. a large local disk), else under the system's temporary directory.
    """
    global _TEMP_DIR
    if _TEMP_DIR is None or not os.path.isdir(_TEMP_DIR):
        import atexit
        import shutil
        import tempfile

        base = os.environ.get(TEMP_ENV, "").strip() or None
        if base:
            os.makedirs(base, exist_ok=True)
        _TEMP_DIR = tempfile.mkdtemp(prefix=f"analysis-duckdb-{os.getpid()}-", dir=base)
        atexit.register(shutil.rmtree, _TEMP_DIR, True)
    return _TEMP_DIR


def _duckdb_config() -> dict:
    """DuckDB settings from the environment: ``ANALYSIS_THREADS`` caps its worker threads,
    ``ANALYSIS_ENGINE_MEMORY`` (e.g. ``2GB``) its memory (it spills to disk beyond, into
    a folder of this process's own: :func:`_spill_dir`).

    The report runner sets it (and the BLAS/OpenMP thread variables) for each notebook to
    the machine's cores divided by the notebooks running at once, so parallel notebooks
    do not oversubscribe the CPU.
    """
    out = {}
    n = os.environ.get(THREADS_ENV, "").strip()
    if n.isdigit() and int(n) > 0:
        out["threads"] = int(n)
    mem = os.environ.get(MEMORY_ENV, "").strip()
    if mem:
        out["memory_limit"] = mem
    out["temp_directory"] = _spill_dir()
    return out


def connect(params: Params):
    """Return an Ibis connection for the params' source (DuckDB in memory for folders).

    The session time zone is set to ``data.timezone``, so that timestamps with a UTC
    offset (and time-zone-aware timestamp columns) give the calendar date in that
    zone; timestamps without an offset keep the date as written.
    """
    con = _connect(params)
    _set_time_zone(con, params)
    return con


def _set_time_zone(con, params: Params) -> None:
    d = params.data
    tz = d.timezone.replace("'", "''")
    try:
        if d.source in ("folder", "duckdb"):
            con.raw_sql(f"SET TimeZone = '{tz}'")
        elif d.source == "postgres":
            cur = con.raw_sql(f"SET TIME ZONE '{tz}'")
            getattr(cur, "close", lambda: None)()
        elif d.source == "spark":
            con._session.conf.set("spark.sql.session.timeZone", d.timezone)
    except Exception as exc:  # noqa: BLE001 - an engine without this zone
        raise DataError(
            f"the {d.source} engine does not know the time zone {d.timezone!r}",
            [
                Problem(
                    "data",
                    "timezone",
                    "unknown_timezone",
                    f"the engine refused the time zone '{d.timezone}': "
                    f"{str(exc).splitlines()[0][:200]}",
                    fix="set data.timezone to an IANA name such as UTC or Europe/Berlin",
                )
            ],
        ) from None


def _connect(params: Params):
    d = params.data
    if d.source == "folder":
        return ibis.duckdb.connect(**_duckdb_config())
    if d.source == "duckdb":
        if not d.path or not Path(d.path).is_file():
            raise DataError(
                "DuckDB file not found",
                [
                    Problem(
                        "data",
                        "path",
                        "missing_file",
                        f"no file at {d.path}",
                        fix="point data.path at an existing .duckdb file",
                    )
                ],
            )
        return ibis.duckdb.connect(str(d.path), read_only=True, **_duckdb_config())
    if d.source == "postgres":
        url = d.url or os.environ.get(d.url_env or "", "")
        if not url:
            raise DataError(
                "no Postgres URL",
                [
                    Problem(
                        "data",
                        "url_env",
                        "missing_url",
                        f"environment variable {d.url_env!r} is not set",
                        fix=f"export {d.url_env}=postgresql://user:pass@host:5432/db",
                    )
                ],
            )
        return ibis.connect(url)
    if d.source == "spark":
        return _spark_connection()
    raise DataError(f"unknown source kind {d.source!r}")  # pragma: no cover - schema prevents it


def _spark_connection():
    """Return an Ibis connection on the active Spark session, or on a new one.

    On a cluster (spark-submit, a Databricks/EMR notebook) the session that already
    exists is used; otherwise ``SparkSession.builder`` starts one from the usual Spark
    configuration (``spark-defaults.conf``, ``SPARK_*`` environment variables).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise DataError(
            "pyspark is not installed",
            [
                Problem(
                    "data",
                    "source",
                    "missing_engine",
                    "data.source is spark but the pyspark package is not installed",
                    fix="pip install 'pyspark>=3.5,<4.1' (needs Java 17), or use another source",
                )
            ],
        ) from exc
    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    return ibis.pyspark.connect(spark)


def open_source(params: Params) -> Source:
    """Open the params' data source and return its raw contract tables.

    Columns are renamed from the user's names (``data.columns``) to the
    contract's; types are not yet checked (see :func:`load`). Problems that stop
    the tables from being read at all (a file in another encoding, a duplicated
    column name, a ``data.tables`` or ``data.columns`` entry naming something the
    data lacks) raise one :class:`~analysis.errors.DataError` listing them all.
    """
    d = params.data
    con = connect(params)
    problems: list[Problem] = []
    if d.source == "folder" or (d.source == "spark" and d.path is not None):
        tables, locations, other, hints = _open_folder(con, params, problems)
    else:
        tables, other, hints = _open_database(con, params, problems), [], {}
        locations = {name: _db_name(params, name) for name in tables}
    renamed: dict[str, ir.Table] = {}
    for name, t in tables.items():
        r = _rename(name, t, d.columns.get(name, {}), locations.get(name, name), problems)
        if r is not None:
            renamed[name] = r
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DataError(
            f"the data could not be read as contract tables ({len(errors)} problem(s))", problems
        )
    present = {n: {c for c in TABLES[n].column_names if c in t.columns} for n, t in renamed.items()}
    attrs = []
    if "customers" in renamed:
        attrs = [
            c for c in renamed["customers"].columns if c not in TABLES["customers"].column_names
        ]
    return Source(
        con=con,
        tables=renamed,
        present=present,
        attributes=attrs,
        problems=problems,
        locations=locations,
        other_files=other,
        missing_hints=hints,
    )


def _db_name(params: Params, name: str) -> str:
    d = params.data
    tname = d.tables.get(name, name)
    return f"{d.schema}.{tname}" if d.schema else tname


def _open_folder(con, params: Params, problems: list[Problem]):
    """Read each table's files in a folder source; collect problems instead of raising."""
    d = params.data
    folder = Path(d.path)
    if not folder.is_dir():
        raise DataError(
            "data folder not found",
            [
                Problem(
                    "data",
                    "path",
                    "missing_folder",
                    f"no folder at {folder}",
                    fix="point data.path at the folder holding customers/transactions files "
                    "(for the sample: make data)",
                )
            ],
        )
    tables: dict[str, ir.Table] = {}
    locations: dict[str, str] = {}
    used: set[str] = set()
    for name in TABLES:
        stem = d.tables.get(name, name)
        found = files.find_table_files(folder, stem, d.format)
        if found is None:
            if name in d.tables:
                problems.append(files.missing_mapped_file(name, stem, folder, d.format))
            continue
        used.add(found.entry)
        t = _read_table(con, params, name, found, folder, problems)
        if t is not None:
            tables[name] = t
            locations[name] = found.location
    problems += files.unmapped_problems(folder, used, set(locations), d.encoding, d.columns)
    hints = _missing_hints(folder, params, locations, problems)
    return tables, locations, files.other_files(folder), hints


def _missing_hints(folder: Path, params: Params, locations: dict, problems: list) -> dict:
    """Return {table: hint} for absent tables: a file that probably is it, or data.format."""
    d = params.data
    hints = {}
    for name in TABLES:
        if name in locations:
            continue
        for p in problems:
            if p.rule == "unmapped_file" and p.table == name:
                hints[name] = p.fix.split(";")[0]
        found = files.find_table_files(folder, d.tables.get(name, name), "auto")
        if found is not None and d.format != "auto":
            hints[name] = (
                f"data.format is {d.format}, but the folder has {found.location}: set "
                f"data.format: auto, or convert the file"
            )
    return hints


def _read_table(con, params: Params, name: str, found, folder: Path, problems: list):
    d = params.data
    paths = [str(p) for p in found.paths]
    if found.format == "parquet":
        probs = files.parquet_problems(name, found, folder)
        problems += probs
        if any(p.severity == "error" for p in probs):
            return None
        try:
            t = con.read_parquet(paths if len(paths) > 1 else paths[0], table_name=f"src_{name}")
        except Exception as exc:  # noqa: BLE001 - unreadable file: one clean problem
            problems.append(_unreadable(name, found.location, exc))
            return None
        if d.source == "spark":
            # Validation scans every table a few dozen times; keep it in Spark's
            # cache (memory, spilling to disk) instead of re-reading the files.
            t = t.cache()
        return t
    if d.source == "spark":
        problems.append(
            Problem(
                name,
                None,
                "format",
                f"found CSV for '{name}' at {found.location}",
                fix="convert the files to Parquet, or use data.source: folder (DuckDB reads CSV)",
            )
        )
        return None
    layout, probs = files.csv_layout(name, found, d.encoding, folder)
    problems += probs
    if layout is None:
        return None
    try:
        # Read as text so that bad values surface as validation problems instead of a
        # reader crash or a silent type guess; the header and delimiter come from the
        # header row, so the reader cannot mistake a ragged line for the header.
        t = con.read_csv(
            [str(p) for p in layout.paths],
            table_name=f"src_{name}",
            auto_detect=False,
            header=True,
            delim=layout.delimiter,
            quote='"',
            escape='"',
            columns={c: "VARCHAR" for c in layout.columns},
        )
    except Exception as exc:  # noqa: BLE001 - unreadable file: one clean problem
        problems.append(_unreadable(name, found.location, exc))
        return None
    return t.drop(*layout.unnamed) if layout.unnamed else t


def _unreadable(name: str, location: str, exc: Exception) -> Problem:
    from analysis.data.table_checks import engine_problem, is_engine_error

    if not is_engine_error(exc):
        raise exc
    return engine_problem(name, location, exc)


def _open_database(con, params: Params, problems: list[Problem]) -> dict[str, ir.Table]:
    d = params.data
    existing = set(con.list_tables(database=d.schema) if d.schema else con.list_tables())
    tables = {}
    for name in TABLES:
        tname = d.tables.get(name, name)
        if tname in existing:
            tables[name] = con.table(tname, database=d.schema) if d.schema else con.table(tname)
        elif name in d.tables:
            close = difflib.get_close_matches(tname, sorted(existing), n=1, cutoff=0.7)
            where = f"schema {d.schema}" if d.schema else "the database"
            problems.append(
                Problem(
                    name,
                    None,
                    "missing_table",
                    f"data.tables.{name} names '{tname}', but {where} has no such table "
                    f"(tables there: {', '.join(sorted(existing)[:12]) or 'none'})",
                    fix=(f"did you mean '{close[0]}'? " if close else "")
                    + f"set data.tables.{name} to an existing table",
                )
            )
    return tables


def _rename(name: str, t: ir.Table, mapping: dict, location: str, problems: list[Problem]):
    """Rename the user's columns to the contract's; report mappings that cannot apply."""
    have = list(t.columns)
    rename: dict[str, str] = {}
    ok = True
    for contract, yours in mapping.items():
        if yours == contract:
            continue
        if yours not in have:
            close = difflib.get_close_matches(yours, have, n=1, cutoff=0.5)
            problems.append(
                Problem(
                    name,
                    contract,
                    "missing_mapped_column",
                    f"data.columns.{name}.{contract} names '{yours}', but {location} has no "
                    f"column '{yours}' (it has: {', '.join(have[:15])}{', ...' if len(have) > 15 else ''})",
                    fix=(f"did you mean '{close[0]}'? " if close else "")
                    + f"map {contract} to one of the columns listed",
                )
            )
            ok = False
            continue
        if contract in have:
            problems.append(
                Problem(
                    name,
                    contract,
                    "mapping_conflict",
                    f"data.columns.{name}.{contract} maps '{yours}' to '{contract}', but "
                    f"{location} also has a column named '{contract}'",
                    fix=f"remove or rename one of '{yours}' and '{contract}' in the data, "
                    f"or drop the mapping to use '{contract}' itself",
                )
            )
            ok = False
            continue
        rename[contract] = yours
    if not ok:
        return None
    return t.rename(rename) if rename else t
