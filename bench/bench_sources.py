"""Time validation and every derived table on DuckDB, PostgreSQL and Spark (same Ibis code).

Usage::

    bash .ci/services.sh        # PostgreSQL on 127.0.0.1:5432 (or set ANALYSIS_BENCH_PG_URL)
    .venv/bin/python bench/bench_sources.py --world data/sample --engines duckdb postgres spark

Each engine reads the same Parquet world: DuckDB directly, Spark through
``data.source: spark`` (local[2], 2 GB driver), Postgres after a COPY into a fresh
schema (the load is timed separately and the schema dropped afterwards). Every step pulls
its result to pandas, as the notebooks do. Prints a markdown table of seconds per step,
plus the row counts, and checks that every engine's results equal DuckDB's
(rel. 1e-9 for floats).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import platform
import time
import uuid
from pathlib import Path

import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

SERVICES_URL = "postgresql://analysis_test:analysis_test@127.0.0.1:5432/analysis_test"
STEPS = ["load_validate", "lifetimes", "lifetimes_inactivity", "panel_month", "cohorts", "kpi"]


def _pg_load(url: str, world: Path) -> tuple[str, float]:
    """COPY the world's Parquet tables into a new schema; return (schema, seconds)."""
    import ibis
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    con = ibis.connect(url)
    con.create_database(schema)
    for f in sorted(world.glob("*.parquet")):
        t = pq.read_table(f)
        con.create_table(f.stem, schema=ibis.Schema.from_pyarrow(t.schema), database=schema)
        buf = io.BytesIO()
        pacsv.write_csv(t, buf)
        with psycopg.connect(url) as pg, pg.cursor() as cur:
            with cur.copy(
                f'COPY "{schema}"."{f.stem}" FROM STDIN WITH (FORMAT csv, HEADER true)'
            ) as cp:
                cp.write(buf.getvalue())
    con.disconnect()
    return schema, time.perf_counter() - t0


def _pg_drop(url: str, schema: str) -> None:
    # not ibis' drop_database: with sqlglot 30 it emits "DROP SCHEMA IF EXISTS  CASCADE"
    # without the name, which drops nothing and raises nothing
    import psycopg
    from psycopg import sql

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True) as con:
        con.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _spark_session():
    from pyspark.sql import SparkSession

    b = SparkSession.builder
    for k, v in {
        "spark.master": "local[2]",
        "spark.driver.memory": "2g",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "4",
    }.items():
        b = b.config(k, v)
    s = b.getOrCreate()
    s.sparkContext.setLogLevel("ERROR")
    return s


def _run(params) -> tuple[dict, dict]:
    from analysis import data, kpi

    times, frames = {}, {}
    t = time.perf_counter()
    study = data.StudyData(params, data.load(params))
    times["load_validate"] = time.perf_counter() - t
    for step, fn in (
        ("lifetimes", lambda: study.lifetimes("contractual", usable_only=False)),
        ("lifetimes_inactivity", lambda: study.lifetimes("inactivity", usable_only=False)),
        ("panel_month", lambda: study.panel("month")),
        ("cohorts", lambda: study.cohorts("month")),
        ("kpi", lambda: kpi.kpi_table(study)),
    ):
        t = time.perf_counter()
        frames[step] = fn()
        times[step] = time.perf_counter() - t
    return times, frames


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    keys = [c for c in ("customer_id", "cohort", "period", "periods_since") if c in a.columns]
    a = a.sort_values(keys).reset_index(drop=True)
    b = b.sort_values(keys).reset_index(drop=True)
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=0)
        return True
    except AssertionError:
        return False


def main() -> None:
    from analysis.config import params_from_dict

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", default="data/sample")
    ap.add_argument("--engines", nargs="+", default=["duckdb", "postgres", "spark"])
    a = ap.parse_args()
    world = Path(a.world).resolve()
    rows = {f.stem: pq.ParquetFile(f).metadata.num_rows for f in sorted(world.glob("*.parquet"))}
    results, ref = {}, None
    for engine in a.engines:
        extra = ""
        if engine == "duckdb":
            params = params_from_dict({"data": {"path": str(world)}})
            times, frames = _run(params)
        elif engine == "spark":
            spark = _spark_session()
            p = params_from_dict({"data": {"path": str(world)}})
            params = dataclasses.replace(p, data=dataclasses.replace(p.data, source="spark"))
            times, frames = _run(params)
            spark.stop()
        else:
            url = os.environ.get("ANALYSIS_BENCH_PG_URL", SERVICES_URL)
            schema, load_s = _pg_load(url, world)
            os.environ["ANALYSIS_BENCH_PG_URL"] = url
            try:
                params = params_from_dict(
                    {
                        "data": {
                            "source": "postgres",
                            "url_env": "ANALYSIS_BENCH_PG_URL",
                            "schema": schema,
                        }
                    }
                )
                times, frames = _run(params)
            finally:
                _pg_drop(url, schema)
            extra = f"COPY into Postgres: {load_s:.1f} s"
        if ref is None:
            ref = frames
        same = all(_same(frames[k], ref[k]) for k in ref)
        results[engine] = (times, same, extra)
    print(
        f"World: {world.name}, rows {rows}; {platform.node()} ({os.cpu_count()} cores), "
        f"load average at end {os.getloadavg()[0]:.1f}\n"
    )
    print("| step | " + " | ".join(f"{e} (s)" for e in results) + " |")
    print("|---|" + "---:|" * len(results))
    for step in STEPS:
        print(f"| {step} | " + " | ".join(f"{results[e][0][step]:.1f}" for e in results) + " |")
    print("| total | " + " | ".join(f"{sum(results[e][0].values()):.1f}" for e in results) + " |")
    print(
        "| equal to DuckDB | "
        + " | ".join("yes" if results[e][1] else "**NO**" for e in results)
        + " |"
    )
    for e, (_, _, extra) in results.items():
        if extra:
            print(f"\n{e}: {extra}")


if __name__ == "__main__":
    main()
