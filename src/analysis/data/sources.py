"""Opening data sources: folders of CSV/Parquet files, DuckDB, Postgres, Spark.

:func:`open_source` returns a :class:`Source` with the raw contract tables, renamed
from the user's column names to the contract's; :func:`connect` gives the Ibis
connection. Validation and casting happen in :mod:`analysis.data.validation`.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir

from analysis.config import Params
from analysis.data.contract import TABLES
from analysis.errors import DataError, Problem

_FILE_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".tsv")
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
        Warnings found during validation (errors raise instead).
    """

    con: object
    tables: dict[str, ir.Table]
    present: dict[str, set[str]] = field(default_factory=dict)
    attributes: list[str] = field(default_factory=list)
    as_of: dt.date | None = None
    window_start: dt.date | None = None
    problems: list[Problem] = field(default_factory=list)
    validated: bool = False

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


# --------------------------------------------------------------------------------------
# Opening sources
# --------------------------------------------------------------------------------------


THREADS_ENV = "ANALYSIS_THREADS"
MEMORY_ENV = "ANALYSIS_ENGINE_MEMORY"


def _duckdb_config() -> dict:
    """DuckDB settings from the environment: ``ANALYSIS_THREADS`` caps its worker threads,
    ``ANALYSIS_ENGINE_MEMORY`` (e.g. ``2GB``) its memory (it spills to disk beyond).

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
    return out


def connect(params: Params):
    """Return an Ibis connection for the params' source (DuckDB in memory for folders)."""
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


def _find_table_path(folder: Path, stem: str, fmt: str) -> tuple[str, str] | None:
    """Return (glob-or-path, format) of table ``stem`` inside ``folder``, or None."""
    wanted = {
        "auto": _FILE_SUFFIXES,
        "parquet": (".parquet", ".pq"),
        "csv": (".csv", ".csv.gz", ".tsv"),
    }[fmt]
    for suf in wanted:
        p = folder / f"{stem}{suf}"
        if p.is_file():
            return str(p), ("parquet" if suf in (".parquet", ".pq") else "csv")
    sub = folder / stem
    if sub.is_dir():
        for suf in wanted:
            files = sorted(sub.glob(f"*{suf}"))
            if files:
                return str(sub / f"*{suf}"), ("parquet" if suf in (".parquet", ".pq") else "csv")
    return None


def open_source(params: Params) -> Source:
    """Open the params' data source and return its raw contract tables.

    Columns are renamed from the user's names (``data.columns``) to the
    contract's; types are not yet checked (see :func:`load`).
    """
    d = params.data
    con = connect(params)
    tables: dict[str, ir.Table] = {}
    if d.source == "folder" or (d.source == "spark" and d.path is not None):
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
        for name in TABLES:
            stem = d.tables.get(name, name)
            found = _find_table_path(folder, stem, d.format)
            if found is None:
                continue
            path, fmt = found
            if fmt == "parquet":
                t = con.read_parquet(path, table_name=f"src_{name}")
                if d.source == "spark":
                    # Validation scans every table a few dozen times; keep it in Spark's
                    # cache (memory, spilling to disk) instead of re-reading the files.
                    t = t.cache()
            elif d.source == "spark":
                raise DataError(
                    "Spark sources read Parquet only",
                    [
                        Problem(
                            name,
                            None,
                            "format",
                            f"found CSV for '{name}' at {path}",
                            fix="convert the files to Parquet, or use data.source: folder "
                            "(DuckDB reads CSV)",
                        )
                    ],
                )
            else:
                # Read CSV as text so that bad values surface as validation problems
                # instead of a reader crash or a silent type guess.
                t = con.read_csv(path, table_name=f"src_{name}", all_varchar=True)
            tables[name] = t
    else:
        existing = set(con.list_tables(database=d.schema) if d.schema else con.list_tables())
        for name in TABLES:
            tname = d.tables.get(name, name)
            if tname in existing:
                tables[name] = con.table(tname, database=d.schema) if d.schema else con.table(tname)
    renamed: dict[str, ir.Table] = {}
    for name, t in tables.items():
        mapping = d.columns.get(name, {})
        rename = {contract: user for contract, user in mapping.items() if user in t.columns}
        renamed[name] = t.rename(rename) if rename else t
    present = {n: {c for c in TABLES[n].column_names if c in t.columns} for n, t in renamed.items()}
    attrs = []
    if "customers" in renamed:
        attrs = [
            c for c in renamed["customers"].columns if c not in TABLES["customers"].column_names
        ]
    return Source(con=con, tables=renamed, present=present, attributes=attrs)
