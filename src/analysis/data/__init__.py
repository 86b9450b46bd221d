"""Data sources and contract validation.

A *source* is a folder of CSV or Parquet files (one file or one folder of files
per table), a DuckDB database file, a Postgres database, or Spark (a folder of
Parquet files read by Spark, or tables in the Spark session's catalog; see
docs/scaling.md). Tables are read
through Ibis, renamed from the user's column names to the contract's, checked
against the contract, and cast to the contract's types. Nothing downstream
sees a table that failed validation.

Public entry points
-------------------
- :func:`open_source` -> :class:`Source` with the raw (renamed, uncast) tables.
- :func:`check` -> list of :class:`~analysis.errors.Problem` for a params file.
- :func:`load` -> validated :class:`Source` (raises :class:`~analysis.errors.DataError`).
- :func:`fingerprint`, :func:`customer_ids` (:func:`customer_id_array`) for run provenance and privacy checks.
"""

from analysis.data.sources import MEMORY_ENV, THREADS_ENV, Source, connect, open_source
from analysis.data.study_data import StudyData, load_study_data
from analysis.data.validation import (
    EVENT_DATES,
    RECEIPT_ENV,
    check,
    customer_id_array,
    customer_ids,
    fingerprint,
    load,
    validate,
)

__all__ = [
    "EVENT_DATES",
    "MEMORY_ENV",
    "RECEIPT_ENV",
    "THREADS_ENV",
    "Source",
    "StudyData",
    "check",
    "connect",
    "customer_id_array",
    "customer_ids",
    "fingerprint",
    "load",
    "load_study_data",
    "open_source",
    "validate",
]
