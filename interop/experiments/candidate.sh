#!/usr/bin/env bash
# Tests one candidate way of keeping an object of ours across a Plain deploy:
#   candidate.sh NAME "SQL creating it" "SQL query listing what is there"
# On a fresh database that plain alone migrated (plain postgres sync), creates the object, then
# prints what `plain postgres sync --check` says, what `plain postgres sync` (a deploy) does,
# and what is left afterwards.
set -u
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
V="$ROOT/target/interop-venv/bin"
SERVER="${PG_SERVER_URL:-postgres://postgres@127.0.0.1:5432}"
NAME=$1; SQL=$2; PROBE=$3
DB=interop_cand
psql -X -q "$SERVER/postgres" -c "drop database if exists $DB" -c "create database $DB" 2>/dev/null
export DATABASE_URL="$SERVER/$DB"
cd "$ROOT/interop"
"$V/plain" postgres sync >/dev/null
echo "=== $NAME"
echo "--- create: $SQL"
psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "$SQL" 2>&1 || { echo "CREATE FAILED"; exit 0; }
echo "--- before the deploy: $(psql -X -Atc "$PROBE" "$DATABASE_URL" | tr '\n' ' ')"
echo "--- plain postgres sync --check:"; "$V/plain" postgres sync --check 2>&1 | sed 's/^/    /'; echo "    rc=${PIPESTATUS[0]}"
echo "--- plain postgres sync:"; "$V/plain" postgres sync 2>&1 | sed 's/^/    /'
echo "--- after the deploy: $(psql -X -Atc "$PROBE" "$DATABASE_URL" | tr '\n' ' ')"
echo "--- plain postgres sync --check after:"; "$V/plain" postgres sync --check 2>&1 | sed 's/^/    /'; echo "    rc=${PIPESTATUS[0]}"
psql -X -q "$SERVER/postgres" -c "drop database $DB"
