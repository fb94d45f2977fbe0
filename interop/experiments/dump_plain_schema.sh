#!/usr/bin/env bash
# The schema plain.jobs gets from plain alone: `plain postgres sync` on an empty database, then
# pg_dump --schema-only. Output: plain_jobs_0.57.5_schema.sql.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SERVER="${PG_SERVER_URL:-postgres://postgres@127.0.0.1:5432}"
DB=interop_dump
psql -X -q "$SERVER/postgres" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" 2>/dev/null
DATABASE_URL="$SERVER/$DB" "$ROOT/target/interop-venv/bin/python" "$ROOT/interop/run.py" sync >/dev/null
# \restrict lines carry a random key; drop them so that dumps compare.
pg_dump --schema-only --no-owner --no-privileges "$SERVER/$DB" | grep -v '^\\\(un\)\?restrict' \
    >"$(dirname "$0")/plain_jobs_0.57.5_schema.sql"
psql -X -q "$SERVER/postgres" -c "DROP DATABASE $DB"
