"""The same Ibis code on Spark: validation and derived tables equal the DuckDB run exactly.

Runs a local Spark session (``local[1]``, 1 GB driver, no UI, quiet logs) through Ibis's
PySpark backend. Needs the ``pyspark`` package and Java 17 (``bash .ci/services.sh``
installs Java); without them the tests FAIL with instructions, they are never skipped.

The DuckDB run of the same Parquet files is the reference: integer, text and date
columns must match exactly, floats to 1e-9 relative (sums may be added up in a
different order).

The last test runs the whole report suite (every notebook, through the runner) on Spark
from a params file with ``data.source: spark`` and compares every index headline with the
DuckDB run of the same data (issue 16 §2).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis import data, kpi
from analysis.config import load_params
from analysis.data.validation import _count
from analysis.errors import DataError
from tests.test_engine_stats import ENGINE_STATS_CASES, ENGINE_STATS_KEYS
from tests.test_fe_engine import revenue_link_numbers
from tests.test_loyalty_engine import loyalty_frame_numbers, same_frames

RTOL = 1e-9
ROOT = Path(__file__).resolve().parents[1]
# pyspark 4.0's toPandas passes copy= to astype, which pandas 3 deprecates (harmless).
# One xdist worker runs the whole module (with `--dist loadgroup`), so one Spark session
# and one validation serve every test.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    pytest.mark.xdist_group("spark"),
]

# Small and quiet: one core, 1 GB, no UI or progress bars, one shuffle partition. Interpreted
# expressions and client-only JIT because on a few thousand rows Spark spends its time
# compiling, not computing.
# Safe beside other test sessions on the same machine: no UI (so no port 4040), the driver
# and block manager on loopback ports the JVM picks itself, an in-memory catalog (no Derby
# metastore_db or derby.log in the working folder) and the warehouse, scratch and Java
# temporary files in this session's temporary folder (set per session below).
SPARK_CONF = {
    "spark.master": "local[1]",
    "spark.app.name": "analysis-tests",
    "spark.driver.memory": "1g",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "1",
    "spark.default.parallelism": "1",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
    "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.port": "0",
    "spark.blockManager.port": "0",
    "spark.sql.catalogImplementation": "in-memory",
    "spark.sql.warehouse.dir": "",  # set per session below
    "spark.local.dir": "",  # set per session below
}


def _require_spark():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.fail(
            "pyspark is not installed: pip install 'pyspark>=3.5,<4.1' into the venv "
            "(Ibis 12's PySpark backend needs that range)",
            pytrace=False,
        )
    java = shutil.which("java")
    if java is None:
        pytest.fail(
            "no Java runtime: Spark needs Java 17 (bash .ci/services.sh installs it)", pytrace=False
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    assert '"1.' not in out and " 11." not in out, f"Spark 4 needs Java 17+, found: {out}"


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """Start one local Spark session for the module; stop it afterwards."""
    _require_spark()
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # loopback only, as the conf says
    builder = SparkSession.builder
    base = tmp_path_factory.mktemp("spark")
    for sub in ("warehouse", "local", "java-tmp", "derby"):
        (base / sub).mkdir()
    conf = dict(
        SPARK_CONF,
        **{
            "spark.sql.warehouse.dir": str(base / "warehouse"),
            "spark.local.dir": str(base / "local"),
            "spark.driver.extraJavaOptions": SPARK_CONF["spark.driver.extraJavaOptions"]
            + f" -Djava.io.tmpdir={base / 'java-tmp'} -Dderby.system.home={base / 'derby'}",
        },
    )
    for k, v in conf.items():
        builder = builder.config(k, v)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _spark_params(params_file):
    p = load_params(params_file)
    return dataclasses.replace(p, data=dataclasses.replace(p.data, source="spark"))


@pytest.fixture(scope="session")
def studies(spark, tiny_world):
    """Return (Spark StudyData, DuckDB StudyData) of the tiny world, loaded once."""
    sp = _spark_params(tiny_world.params_file)
    spark_study = data.StudyData(sp, data.load(sp))
    return spark_study, data.load_study_data(tiny_world.params_file)


def _assert_same_frame(got: pd.DataFrame, want: pd.DataFrame, keys: list[str], what: str):
    assert list(got.columns) == list(want.columns), what
    got = got.sort_values(keys, kind="stable").reset_index(drop=True)
    want = want.sort_values(keys, kind="stable").reset_index(drop=True)
    assert len(got) == len(want), f"{what}: {len(got)} rows on Spark, {len(want)} on DuckDB"
    pd.testing.assert_frame_equal(
        got, want, check_dtype=True, check_exact=False, rtol=RTOL, atol=0, obj=what
    )
    for c in want.columns:  # exactness for everything that is not a float
        if not pd.api.types.is_float_dtype(want[c]):
            pd.testing.assert_series_equal(got[c], want[c], check_exact=True, obj=f"{what}.{c}")


def test_spark_source_uses_the_active_session(spark, studies):
    sp, duck = studies
    assert sp.source.con.name == "pyspark" and duck.source.con.name == "duckdb"
    assert sp.source.con._session is spark  # no second session was started
    assert spark.sparkContext.master == "local[1]"
    assert spark.sparkContext.uiWebUrl is None  # no UI: no port shared with other sessions


def test_validation_and_window_match_duckdb(studies):
    sp, duck = studies
    assert (sp.as_of, sp.window_start) == (duck.as_of, duck.window_start)
    assert [(p.table, p.column, p.rule, p.n_rows) for p in sp.problems] == [
        (p.table, p.column, p.rule, p.n_rows) for p in duck.problems
    ]
    assert sp.source.present == duck.source.present
    assert sp.source.attributes == duck.source.attributes
    for name in ("customers", "loyalty"):
        cols = list(duck.table(name).columns)
        _assert_same_frame(sp.table(name)[cols], duck.table(name), cols, name)


@pytest.mark.parametrize("definition", ["contractual", "inactivity"])
def test_lifetimes_match_duckdb(studies, definition):
    sp, duck = studies
    want = duck.lifetimes(definition, usable_only=False)
    assert len(want) == 400 and 0 < want.event.sum() < 400
    _assert_same_frame(
        sp.lifetimes(definition, usable_only=False),
        want,
        ["customer_id"],
        f"lifetimes[{definition}]",
    )


def test_panel_and_cohorts_match_duckdb(studies):
    sp, duck = studies
    want = duck.panel("month")
    assert want.surveys.sum() > 0 and want.member.sum() > 0 and want.churned.sum() > 0
    _assert_same_frame(sp.panel("month"), want, ["customer_id", "period"], "panel[month]")
    _assert_same_frame(
        sp.cohorts("month"), duck.cohorts("month"), ["cohort", "periods_since"], "cohorts[month]"
    )


@pytest.mark.parametrize("case", sorted(ENGINE_STATS_CASES))
def test_customer_stats_match_duckdb(studies, case):
    # The per-customer statistics of the value and retention studies, built on the engine.
    sp, duck = studies
    build = ENGINE_STATS_CASES[case]
    want = build(duck.source, duck).to_pandas()
    assert len(want) > 0, case
    got = build(sp.source, sp).to_pandas()
    _assert_same_frame(got, want, ENGINE_STATS_KEYS.get(case, ["customer_id"]), case)


def test_kpi_table_matches_duckdb(studies):
    sp, duck = studies
    want = kpi.kpi_table(duck)
    assert want.revenue.sum() > 0
    _assert_same_frame(kpi.kpi_table(sp), want, ["period"], "kpi_table")


def test_spark_refuses_csv_with_a_clear_message(spark, tmp_path):
    (tmp_path / "customers.csv").write_text("customer_id,signup_date\nA,2023-01-01\n")
    p = tmp_path / "p.yaml"
    p.write_text(f"data:\n  path: {tmp_path}\n")
    with pytest.raises(DataError) as err:
        data.open_source(_spark_params(p))
    assert err.value.problems[0].rule == "format"
    assert "Parquet" in str(err.value) and "customers" in err.value.problems[0].message


def test_catalog_tables_are_read_with_the_usual_mapping(spark, studies, tiny_world, tmp_path):
    # Without data.path a Spark source reads the session's catalog, mapped like a database.
    for name in ("customers", "transactions"):
        df = spark.read.parquet(str(tiny_world.data_dir / f"{name}.parquet"))
        if name == "transactions":
            df = df.withColumnRenamed("amount", "amount_eur")
        df.createOrReplaceTempView(f"crm_{name}")
    p = tmp_path / "p.yaml"
    p.write_text(
        "data:\n  source: duckdb\n  path: unused.duckdb\n"
        "  tables: {customers: crm_customers, transactions: crm_transactions}\n"
        "  columns: {transactions: {amount: amount_eur}}\n"
    )
    params = load_params(p)
    params = dataclasses.replace(
        params, data=dataclasses.replace(params.data, source="spark", path=None)
    )
    src = data.open_source(params)
    assert sorted(src.tables) == ["customers", "transactions"]
    assert "amount" in src.tables["transactions"].columns
    _, duck = studies
    for name in ("customers", "transactions"):
        assert _count(src.tables[name]) == len(duck.table(name))
    assert float(src.tables["transactions"].amount.sum().to_pyarrow().as_py()) == pytest.approx(
        duck.table("transactions").amount.sum(), rel=RTOL
    )


def _spark_submit_args(base) -> str:
    """PYSPARK_SUBMIT_ARGS for the report kernels: the tests' small, quiet local session."""
    conf = dict(
        SPARK_CONF,
        **{
            "spark.sql.warehouse.dir": str(base / "warehouse"),
            "spark.local.dir": str(base / "local"),
            "spark.driver.extraJavaOptions": SPARK_CONF["spark.driver.extraJavaOptions"]
            + f" -Djava.io.tmpdir={base / 'java-tmp'} -Dderby.system.home={base / 'derby'}",
        },
    )
    master = conf.pop("spark.master")
    memory = conf.pop("spark.driver.memory")
    conf.pop("spark.app.name")
    args = [f"--master {master}", f"--driver-memory {memory}"]
    args += [f'--conf "{k}={v}"' for k, v in conf.items()]
    return " ".join(args) + " pyspark-shell"


def _headlines(result) -> dict[tuple[str, str], dict]:
    return {(r.name, h["name"]): h for r in result.reports for h in r.headlines}


def test_the_whole_suite_on_spark_gives_the_duckdb_numbers(
    spark, tiny_world, tmp_path, monkeypatch
):
    """Every report on Spark (params file, source: spark) has the DuckDB run's headlines."""
    from analysis.report import runner

    for sub in ("warehouse", "local", "java-tmp", "derby"):
        (tmp_path / "spark" / sub).mkdir(parents=True)
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", _spark_submit_args(tmp_path / "spark"))
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    runs = {}
    for source in ("spark", "folder"):
        params = tmp_path / f"{source}.yaml"
        params.write_text(
            f"data:\n  source: {source}\n  path: {tiny_world.data_dir}\n  format: parquet\n"
            f"reports:\n  output_dir: {tmp_path / source}\n  jobs: 1\n  timeout_seconds: 1200\n"
        )
        runs[source] = runner.run(params, notebooks_dir=ROOT / "notebooks", kernel_name="python3")
        bad = {r.name: r.error for r in runs[source].reports if r.status != "ok"}
        assert bad == {}, f"{source}: {bad}"
    got, want = _headlines(runs["spark"]), _headlines(runs["folder"])
    assert len(want) >= 10 and got.keys() == want.keys()
    for key, w in want.items():
        g = got[key]
        if isinstance(w["value"], (int, float)) and isinstance(g["value"], (int, float)):
            # models fitted on the same rows: equal up to the order of floating-point sums
            assert g["value"] == pytest.approx(w["value"], rel=1e-6, abs=1e-9, nan_ok=True), key
        else:
            assert g["value"] == w["value"], key


def test_revenue_link_on_the_engine_matches_duckdb(studies):
    # the experience study's fixed-effects regressions, solved from sums built on the engine
    sp, duck = studies
    want = revenue_link_numbers(duck)
    got = revenue_link_numbers(sp)
    assert len(want) > 5
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=RTOL, atol=0)


def test_loyalty_frames_on_the_engine_match_duckdb(studies):
    # the trial frame, landmark frame and event-study panel, built from window sums on the engine
    sp, duck = studies
    want = loyalty_frame_numbers(duck)
    assert len(want["trials"]) > 1000 and want["trials"]["member"].sum() > 10
    same_frames(loyalty_frame_numbers(sp), want, rtol=RTOL)
