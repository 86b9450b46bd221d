#!/usr/bin/env bash
# Install and start what the engine tests need (tests/test_postgres.py, tests/test_spark.py):
#   - a PostgreSQL server (Debian package `postgresql`) listening on 127.0.0.1:5432, with the
#     throw-away test role/database analysis_test (password analysis_test: loopback only,
#     used by nothing but the tests; not a secret);
#   - a Java runtime for Spark (pyspark itself comes from PyPI with the Python packages),
#     plus procps (`ps`), which Spark's launcher scripts call.
# Idempotent: installs only what is missing, starts the server only when it is down, creates
# the role and database only once. Needs root (CI runs as root). Exports nothing.
# tests/test_postgres.py does not depend on this script having run: without a server on
# 127.0.0.1:5432 it starts a private one itself (free port, own temporary folder) from the
# installed server programs.
# The server and the database are shared by every test session on the machine (clones, CI
# jobs running at once): each session loads its data into its own schema,
# analysis_t_<pid>_<random>, drops it at the end, and drops schemas left by killed sessions
# (tests/test_postgres.py, SchemaKeeper). Nothing here needs to be unique per session.
set -euo pipefail

ROLE=analysis_test
DB=analysis_test
PORT=5432

log() { echo ">> services: $*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "services.sh: must run as root (installs Debian packages, starts PostgreSQL)" >&2
  exit 1
fi

# ---- packages ---------------------------------------------------------------------------
java_ok() {
  command -v java >/dev/null 2>&1 || return 1
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  [ -n "$v" ] && [ "$v" -ge 17 ]  # Spark 4 needs Java 17 or later
}
missing=()
dpkg -s postgresql >/dev/null 2>&1 || missing+=(postgresql)
command -v ps >/dev/null 2>&1 || missing+=(procps)
java_ok || missing+=(default-jre-headless)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "packages present (postgresql, java $(java -version 2>&1 | head -n1 | sed 's/.*"\(.*\)".*/\1/'))"
fi

# ---- PostgreSQL cluster -----------------------------------------------------------------
version=$(ls /usr/lib/postgresql | sort -n | tail -n1)
if [ -z "$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main"')" ]; then
  log "creating cluster $version/main on port $PORT"
  pg_createcluster -p "$PORT" "$version" main >/dev/null
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
if [ "$port" != "$PORT" ]; then
  echo "services.sh: cluster $version/main uses port $port, the tests expect $PORT" >&2
  exit 1
fi
status=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}')
if [ "$status" != "online" ]; then
  log "starting cluster $version/main"
  pg_ctlcluster "$version" main start
fi
for _ in $(seq 60); do
  pg_isready -q -h 127.0.0.1 -p "$PORT" && break
  sleep 0.5
done
pg_isready -h 127.0.0.1 -p "$PORT"

# ---- test role and database -------------------------------------------------------------
psql_pg() { runuser -u postgres -- psql -p "$PORT" -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(psql_pg -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != "1" ]; then
  log "creating role $ROLE"
  psql_pg -c "CREATE ROLE $ROLE LOGIN PASSWORD '$ROLE'"
fi
if [ "$(psql_pg -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
  log "creating database $DB"
  psql_pg -c "CREATE DATABASE $DB OWNER $ROLE"
fi
PGPASSWORD=$ROLE psql -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d "$DB" -v ON_ERROR_STOP=1 -qtA \
  -c "SELECT 1" >/dev/null
log "PostgreSQL $version ready on 127.0.0.1:$PORT (role/database $ROLE)"
