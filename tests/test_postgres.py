"""The same Ibis code on PostgreSQL: validation, derived tables and KPIs equal the DuckDB run.

A real PostgreSQL server on loopback is required (Debian package ``postgresql``;
``bash .ci/services.sh`` installs and starts one). The session fixture uses the
server that ``.ci/services.sh`` starts when it answers, and otherwise starts a
private throw-away server itself (``initdb`` + ``pg_ctl`` into a temporary
folder, as the ``postgres`` user when run as root). When the server programs are
not installed the tests FAIL with instructions: they are never skipped.

Each session loads the tiny sample world into its own schema, under different
table names and one renamed column, so that ``data.schema``, ``data.tables`` and
``data.columns`` are exercised; the URL reaches the code only through
``data.url_env``. The DuckDB run of the same files is the reference: integer,
text and date columns must match exactly, floats to 1e-9 relative (sums may be
added up in a different order).

Several test sessions (other clones, CI jobs) may share the server at once, so
nothing here has a fixed name: every schema is ``analysis_t_<pid>_<random>``,
created and dropped by the session that owns it. While it exists its owner holds a
session-level advisory lock on its name (on a connection kept open for the test
session); a schema whose lock is free belongs to a session that was killed before
it could clean up, and the next session drops it. The private server gets a free
port (another one if that port is taken before the server binds it) and its own
temporary folder.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import data, derive, kpi
from analysis.config import load_params
from tests.test_engine_stats import ENGINE_STATS_CASES, ENGINE_STATS_KEYS
from tests.test_fe_engine import revenue_link_numbers
from tests.test_loyalty_engine import loyalty_frame_numbers, same_frames

# Loopback server and role that .ci/services.sh creates (a throw-away test role on
# 127.0.0.1 only; not a secret).
SERVICES_URL = "postgresql://analysis_test:analysis_test@127.0.0.1:5432/analysis_test"
URL_ENV = "ANALYSIS_TEST_PG_URL"
# Tables live under other names in the database, and one column is renamed, so the
# params mapping is part of what is tested.
DB_TABLES = {
    "customers": "crm_customers",
    "transactions": "crm_orders",
    "loyalty": "crm_loyalty",
    "experience": "crm_feedback",
}
DB_COLUMNS = {"transactions": {"amount": "amount_eur"}}
RTOL = 1e-9
# Schemas this module creates (and sweeps when their owner is gone): never a fixed name.
SCHEMA_PREFIX = "analysis_t_"
# First key of the advisory locks that mark a schema as in use (second key: hash of its name).
LOCK_CLASS = 0x616E7473  # "ants"
# One xdist worker runs the whole module (with `--dist loadgroup`), so the world is loaded
# into Postgres once.
pytestmark = pytest.mark.xdist_group("postgres")


# --------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------


def _pg_bindir() -> Path:
    """Return the folder of the newest installed PostgreSQL server programs, or fail."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    pytest.fail(
        "PostgreSQL server programs (initdb, pg_ctl) not found. Install the Debian package "
        "'postgresql' (`bash .ci/services.sh` installs it and starts a server), then rerun.",
        pytrace=False,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _can_connect(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@dataclass
class PgServer:
    url: str
    private: bool


@contextlib.contextmanager
def _private_server():
    """Start a throw-away PostgreSQL server on 127.0.0.1 and yield its URL; stop it after."""
    bindir = _pg_bindir()
    root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="analysis-pg-"))
    datadir = base / "data"
    as_user: list[str] = []
    if root:  # the server refuses to run as root
        try:
            shutil.chown(base, "postgres", "postgres")
        except LookupError:
            pytest.fail(
                "running as root but there is no 'postgres' user to run the server as; "
                "install the Debian package 'postgresql'",
                pytrace=False,
            )
        as_user = ["runuser", "-u", "postgres", "--"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)

    def fail(res: subprocess.CompletedProcess, log: Path | None = None):
        logtext = log.read_text() if log is not None and log.exists() else ""
        pytest.fail(
            f"{res.args[len(as_user)]} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}\n"
            f"{logtext}",
            pytrace=False,
        )

    try:
        res = run(
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if res.returncode != 0:
            fail(res)
        # A free port can be taken by another process before the server binds it (other
        # test sessions start servers, kernels and browsers too): then take another one.
        for attempt in range(1, 6):
            port = _free_port()
            log = base / f"server-{attempt}.log"
            opts = (
                f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            res = run(
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-l",
                str(log),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            )
            if res.returncode == 0:
                break
            clash = log.exists() and "could not bind" in log.read_text()
            if not clash or attempt == 5:
                fail(res, log)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (datadir / "postmaster.pid").exists():
            subprocess.run(
                [*as_user, str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server():
    """Return a reachable PostgreSQL server: the CI one if it answers, else a private one."""
    _pg_bindir()  # the server package must be installed either way
    try:
        import psycopg  # noqa: F401  (Ibis's Postgres driver)
    except ImportError:
        pytest.fail(
            "the Postgres driver is not installed: pip install 'psycopg[binary]' into the venv",
            pytrace=False,
        )
    if _can_connect(SERVICES_URL):
        yield PgServer(SERVICES_URL, private=False)
        return
    with _private_server() as url:
        t0 = time.monotonic()
        while not _can_connect(url):
            if time.monotonic() - t0 > 30:
                pytest.fail(
                    f"the private PostgreSQL server at {url} does not answer", pytrace=False
                )
            time.sleep(0.2)
        yield PgServer(url, private=True)


# --------------------------------------------------------------------------------------
# Loading worlds into schemas
# --------------------------------------------------------------------------------------


def _read_folder(folder: Path) -> dict[str, pa.Table]:
    out = {}
    for name in DB_TABLES:
        f = folder / f"{name}.parquet"
        if f.exists():
            out[name] = pq.read_table(f)
    return out


class SchemaKeeper:
    """One connection held for the test session that owns this session's schemas.

    Before a schema is created its owner takes a session-level advisory lock on the
    name; the server releases it when the owner disconnects, also when the test
    process is killed. :meth:`sweep` drops the schemas left by such sessions: those
    under :data:`SCHEMA_PREFIX` whose lock nobody holds.
    """

    def __init__(self, url: str):
        import psycopg

        self.url = url
        self.conn = psycopg.connect(url, autocommit=True, application_name="analysis-tests")
        # Never wait forever for a lock at teardown: a schema left behind is swept later.
        self.conn.execute("SET lock_timeout = '30s'")

    def new_name(self) -> str:
        """Return a fresh schema name, locked for this session (create it after this)."""
        name = f"{SCHEMA_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:12]}"
        self.conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, name))
        return name

    def release(self, name: str) -> None:
        self.conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_CLASS, name))

    def create(self, name: str) -> None:
        from psycopg import sql

        self.conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))

    def drop(self, name: str, conn=None) -> None:
        # Not Ibis's drop_database: with Ibis 12 and sqlglot 30 it renders
        # "DROP SCHEMA IF EXISTS  CASCADE" (no name), which drops nothing and raises nothing.
        from psycopg import sql

        (conn or self.conn).execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
        )

    def sweep(self) -> list[str]:
        """Drop schemas of test sessions that are gone; return their names."""
        import psycopg

        dropped = []
        # A separate connection: advisory locks are re-entrant within one connection.
        with psycopg.connect(self.url, autocommit=True) as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)",
                    (SCHEMA_PREFIX,),
                )
            ]
            for name in names:
                free = conn.execute(
                    "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, name)
                ).fetchone()[0]
                if not free:  # its session is alive
                    continue
                try:
                    self.drop(name, conn)
                    dropped.append(name)
                except psycopg.Error:
                    pass  # not ours to drop (another role): leave it
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_CLASS, name))
        return dropped

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="session")
def schemas(pg_server):
    """Return this session's :class:`SchemaKeeper` (after sweeping schemas of dead sessions)."""
    keeper = SchemaKeeper(pg_server.url)
    keeper.sweep()
    yield keeper
    keeper.close()


@contextlib.contextmanager
def _schema_with(keeper: SchemaKeeper, tables: dict):
    """Load arrow tables into a fresh schema under the mapped names; drop it afterwards."""
    import ibis

    schema = keeper.new_name()
    try:
        keeper.create(schema)
        con = ibis.connect(keeper.url)
        try:
            for name, t in tables.items():
                mapping = DB_COLUMNS.get(name, {})
                t = t.rename_columns([mapping.get(col, col) for col in t.column_names])
                con.create_table(DB_TABLES[name], t, database=schema)
            yield schema
        finally:
            con.disconnect()
            try:
                keeper.drop(schema)
            except Exception as exc:  # noqa: BLE001 - the next session's sweep drops it
                warnings.warn(f"could not drop test schema {schema}: {exc}", stacklevel=1)
    finally:
        keeper.release(schema)


def _params_text(schema: str, extra: str = "") -> str:
    tables = "".join(f"    {k}: {v}\n" for k, v in DB_TABLES.items())
    cols = "".join(
        f"    {t}:\n" + "".join(f"      {c}: {u}\n" for c, u in m.items())
        for t, m in DB_COLUMNS.items()
    )
    return (
        f"data:\n  source: postgres\n  url_env: {URL_ENV}\n  schema: {schema}\n"
        f"  tables:\n{tables}  columns:\n{cols}{extra}"
    )


@pytest.fixture(scope="session")
def pg_world(schemas, tiny_world, tmp_path_factory):
    """Yield (postgres params file, duckdb params file) for the tiny world.

    Transaction dates are stored as ``timestamp``, as many databases keep them, so
    validation's timestamp-to-date cast runs on the server.
    """
    tables = _read_folder(tiny_world.data_dir)
    tx = tables["transactions"]
    i = tx.schema.get_field_index("date")
    tables["transactions"] = tx.set_column(i, "date", tx.column(i).cast(pa.timestamp("us")))
    with _schema_with(schemas, tables) as schema:
        d = tmp_path_factory.mktemp("pg_world")
        p = d / "params.yaml"
        p.write_text(_params_text(schema))
        yield p, tiny_world.params_file


@pytest.fixture(autouse=True)
def _url_in_env(pg_server, monkeypatch):
    monkeypatch.setenv(URL_ENV, pg_server.url)


@pytest.fixture(scope="session")
def studies(pg_world, pg_server):
    """Return (Postgres StudyData, DuckDB StudyData) of the tiny world, loaded once."""
    pg_params, duck_params = pg_world
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(URL_ENV, pg_server.url)
        return data.load_study_data(pg_params), data.load_study_data(duck_params)


# --------------------------------------------------------------------------------------
# Comparison helpers
# --------------------------------------------------------------------------------------


def _assert_same_frame(got: pd.DataFrame, want: pd.DataFrame, keys: list[str], what: str):
    assert list(got.columns) == list(want.columns), what
    got = got.sort_values(keys, kind="stable").reset_index(drop=True)
    want = want.sort_values(keys, kind="stable").reset_index(drop=True)
    assert len(got) == len(want), f"{what}: {len(got)} rows on Postgres, {len(want)} on DuckDB"
    pd.testing.assert_frame_equal(
        got, want, check_dtype=True, check_exact=False, rtol=RTOL, atol=0, obj=what
    )
    for c in want.columns:  # exactness for everything that is not a float
        if not pd.api.types.is_float_dtype(want[c]):
            pd.testing.assert_series_equal(got[c], want[c], check_exact=True, obj=f"{what}.{c}")


def _problem_key(p):
    return (p.table, p.column or "", p.rule, p.severity, p.n_rows)


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------


def test_server_is_real_postgres(pg_server):
    import psycopg

    with psycopg.connect(pg_server.url) as conn:
        version = conn.execute("show server_version").fetchone()[0]
        addr = conn.execute("select inet_server_addr()").fetchone()[0]
    assert int(version.split(".")[0]) >= 12
    assert str(addr) == "127.0.0.1"


def _schema_exists(url: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(url) as conn:
        return bool(
            conn.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (name,)
            ).fetchone()[0]
        )


def test_a_session_drops_its_schemas(schemas):
    with _schema_with(schemas, {"customers": pa.table({"customer_id": ["A"]})}) as name:
        assert name.startswith(SCHEMA_PREFIX) and _schema_exists(schemas.url, name)
    assert not _schema_exists(schemas.url, name)


def test_sweep_drops_only_schemas_of_sessions_that_are_gone(schemas):
    import psycopg

    # A live session: its connection holds the lock of its schema. A killed one: its
    # schema is left behind and nobody holds the lock.
    live, dead = (f"{SCHEMA_PREFIX}0_{uuid.uuid4().hex[:12]}" for _ in range(2))
    with psycopg.connect(schemas.url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, live))
        for name in (live, dead):
            other.execute(f'CREATE SCHEMA "{name}"')
        try:
            dropped = schemas.sweep()
            left = {
                r[0]
                for r in other.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname IN (%s, %s)", (live, dead)
                )
            }
        finally:
            other.execute(f'DROP SCHEMA IF EXISTS "{live}"')
            other.execute(f'DROP SCHEMA IF EXISTS "{dead}"')
    # Another session's sweep (one starting right now) may have dropped the dead schema
    # first; what matters is that it is gone and the live one is not.
    assert live not in dropped
    assert left == {live}


def test_url_comes_from_the_environment(pg_world, monkeypatch):
    pg_params, _ = pg_world
    assert "postgresql://" not in pg_params.read_text()  # no URL (or password) in the file
    monkeypatch.delenv(URL_ENV)
    problems = data.check(load_params(pg_params))
    assert [p.rule for p in problems] == ["missing_url"]
    assert URL_ENV in problems[0].fix


def test_validation_and_window_match_duckdb(studies):
    pg, duck = studies
    assert (
        pg.source.con.table("crm_orders", database=pg.params.data.schema).date.type().is_timestamp()
    )
    assert pg.source.con.name == "postgres" and duck.source.con.name == "duckdb"
    assert (pg.as_of, pg.window_start) == (duck.as_of, duck.window_start)
    assert sorted(map(_problem_key, pg.problems)) == sorted(map(_problem_key, duck.problems))
    assert pg.source.present == duck.source.present
    assert pg.source.attributes == duck.source.attributes
    # Every contract table arrives with the same rows and contract types.
    for name in DB_TABLES:
        cols = list(duck.table(name).columns)
        _assert_same_frame(pg.table(name)[cols], duck.table(name), cols, name)


@pytest.mark.parametrize("definition", ["contractual", "inactivity"])
def test_lifetimes_match_duckdb(studies, definition):
    pg, duck = studies
    want = duck.lifetimes(definition, usable_only=False)
    got = pg.lifetimes(definition, usable_only=False)
    assert len(want) == 400
    _assert_same_frame(got, want, ["customer_id"], f"lifetimes[{definition}]")


@pytest.mark.parametrize("period", ["month", "quarter"])
def test_panel_and_cohorts_match_duckdb(studies, period):
    pg, duck = studies
    want, got = duck.panel(period), pg.panel(period)
    assert want.surveys.sum() > 0 and want.member.sum() > 0 and want.churned.sum() > 0
    _assert_same_frame(got, want, ["customer_id", "period"], f"panel[{period}]")
    want, got = duck.cohorts(period), pg.cohorts(period)
    _assert_same_frame(got, want, ["cohort", "periods_since"], f"cohorts[{period}]")


def test_week_panel_matches_duckdb(studies):
    pg, duck = studies
    # Week starts are computed from day_of_week, which engines number differently.
    want = derive.panel(duck.source, period="week").to_pandas()
    got = derive.panel(pg.source, period="week").to_pandas()
    assert (pd.to_datetime(want.period).dt.day_of_week == 0).all()
    _assert_same_frame(got, want, ["customer_id", "period"], "panel[week]")


@pytest.mark.parametrize("case", sorted(ENGINE_STATS_CASES))
def test_customer_stats_match_duckdb(studies, case):
    # The per-customer statistics of the value and retention studies, built on the engine.
    pg, duck = studies
    build = ENGINE_STATS_CASES[case]
    want = build(duck.source, duck).to_pandas()
    assert len(want) > 0, case
    got = build(pg.source, pg).to_pandas()
    _assert_same_frame(got, want, ENGINE_STATS_KEYS.get(case, ["customer_id"]), case)


def test_kpi_table_matches_duckdb(studies):
    pg, duck = studies
    want, got = kpi.kpi_table(duck), kpi.kpi_table(pg)
    assert want.revenue.sum() > 0
    _assert_same_frame(got, want, ["period"], "kpi_table")
    assert kpi.headline_values(got) == pytest.approx(
        kpi.headline_values(want), rel=RTOL, nan_ok=True
    )


def test_survival_headline_matches_duckdb(studies):
    from analysis import survival

    pg, duck = studies
    kw = dict(duration="duration_months", event="event", group="segment", entry="entry_months")
    want = survival.kaplan_meier(duck.lifetimes(), **kw)
    got = survival.kaplan_meier(pg.lifetimes(), **kw)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=RTOL)


# Offending customer ids recorded by the generator, per validation rule.
_DIRT_IDS = {
    "duplicate": "duplicate_customer_ids",
    "orphan": "orphan_transaction_customer_ids",
    "out_of_window": "future_transaction_customer_ids",
    "negative": "negative_amount_customer_ids",
    "range": "out_of_range_customer_ids",
}


@pytest.fixture(scope="session")
def dirty_worlds(schemas, tmp_path_factory):
    """Yield {kind: (parquet folder, postgres schema, dirt record)} for two dirty worlds.

    ``range``: the generator's dirty world (out-of-range scores, which stop validation
    before the relational checks); ``relational``: the same with clean experience rows,
    so duplicates, orphans, post-window and negative transactions are all checked.
    """
    from analysis import synth

    dirty = synth.generate(n_customers=300, seed=5, dirty=True)
    clean_experience = synth.generate(n_customers=300, seed=5).tables["experience"]
    variants = {
        "range": dirty.tables,
        "relational": dict(dirty.tables, experience=clean_experience),
    }
    out = {}
    with contextlib.ExitStack() as stack:
        for kind, frames in variants.items():
            tables = {k: pa.Table.from_pandas(v, preserve_index=False) for k, v in frames.items()}
            folder = tmp_path_factory.mktemp(f"dirty_{kind}")
            for name, t in tables.items():
                pq.write_table(t, folder / f"{name}.parquet")
            schema = stack.enter_context(_schema_with(schemas, tables))
            out[kind] = (folder, schema, dirty.truth["dirt"])
        yield out


@pytest.mark.parametrize(
    ("kind", "policy"), [("range", "error"), ("relational", "error"), ("relational", "drop")]
)
def test_validation_problems_match_duckdb_on_dirty_data(dirty_worlds, tmp_path, kind, policy):
    folder, schema, dirt = dirty_worlds[kind]
    # as_of set to the generator's window end, so its post-window transactions are flagged.
    extra = f"  as_of: 2025-12-31\n  orphan_rows: {policy}\n  out_of_window_rows: {policy}\n"
    duck_params = tmp_path / "duck.yaml"
    duck_params.write_text(f"data:\n  path: {folder}\n{extra}")
    pg_params = tmp_path / "pg.yaml"
    pg_params.write_text(_params_text(schema, extra))
    want = data.check(load_params(duck_params))
    got = data.check(load_params(pg_params))
    rules = {p.rule for p in want}
    assert rules == (
        {"range"} if kind == "range" else {"duplicate", "orphan", "out_of_window", "negative"}
    )
    assert {p.severity for p in want if p.rule in ("orphan", "out_of_window")} <= {
        "warning" if policy == "drop" else "error"
    }
    assert sorted(map(_problem_key, got)) == sorted(map(_problem_key, want))
    # Engines may pick different example rows, but they must be offending ones.
    for p in got:
        assert p.examples and set(p.examples) <= set(dirt[_DIRT_IDS[p.rule]]), p


def test_revenue_link_on_the_engine_matches_duckdb(studies):
    # the experience study's fixed-effects regressions, solved from sums built on the engine
    pg, duck = studies
    want = revenue_link_numbers(duck)
    got = revenue_link_numbers(pg)
    assert len(want) > 5
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=RTOL, atol=0)


def test_loyalty_frames_on_the_engine_match_duckdb(studies):
    # the trial frame, landmark frame and event-study panel, built from window sums on the engine
    pg, duck = studies
    want = loyalty_frame_numbers(duck)
    assert len(want["trials"]) > 1000 and want["trials"]["member"].sum() > 10
    same_frames(loyalty_frame_numbers(pg), want, rtol=RTOL)
