#!/usr/bin/env bash
# Builds a database in a given starting state, upgrades it with upgrade_from_0_5.sql +
# target_tables.sql + extras_exclude.sql + plainmigrations.sql, then runs a Plain deploy
# (`plain postgres sync`) and reports what it changed and whether `sync --check` is clean.
#   verify_upgrade.sh rust-only   # plainjobs migrate (main) on an empty database
#   verify_upgrade.sh plain-first # plain sync, then plainjobs migrate (main), then plain sync
#   verify_upgrade.sh fresh       # empty database: the proposed DDL alone
# Needs: target/exp-bin/plainjobs (a build of main), the interop venv.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"; ROOT="$(cd "$HERE/../.." && pwd)"
PY="$ROOT/target/interop-venv/bin/python"; RUN="$ROOT/interop/run.py"; PJ="$ROOT/target/exp-bin/plainjobs"
SERVER="${PG_SERVER_URL:-postgres://postgres@127.0.0.1:5432}"
DB="interop_upgrade_${1//-/_}"
psql -X -q "$SERVER/postgres" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" 2>/dev/null
export DATABASE_URL="$SERVER/$DB"
case "$1" in
    rust-only) (cd /tmp && "$PJ" migrate >/dev/null) ;;
    plain-first) "$PY" "$RUN" sync >/dev/null; (cd /tmp && "$PJ" migrate >/dev/null); "$PY" "$RUN" sync >/dev/null ;;
    fresh) ;;
esac
if [[ "$1" != fresh ]]; then psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -f "$HERE/upgrade_from_0_5.sql"; fi
for f in target_tables.sql extras_exclude.sql plainmigrations.sql; do
    psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -f "$HERE/$f" 2>&1 | grep -v 'NOTICE\|already exists, skipping' || true
done
echo "== $1: plain postgres sync (a Plain deploy)"
"$PY" "$RUN" sync | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['output'])"
echo "== $1: plain postgres sync --check"
"$PY" "$RUN" sync-check | python3 -c "import json,sys; d=json.load(sys.stdin); print('clean' if d['clean'] else d['output'])"
echo "== $1: our objects"
psql -X -Atc "SELECT conrelid::regclass || ' ' || conname FROM pg_constraint WHERE contype = 'x' ORDER BY 1" \
    -c "SELECT tgrelid::regclass || ' trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal" \
    -c "SELECT 'plainmigrations: ' || app || ' ' || name FROM plainmigrations" "$DATABASE_URL"
pg_dump --schema-only --no-owner --no-privileges "$DATABASE_URL" | grep -v '^\\\(un\)\?restrict' >"/tmp/$DB.sql"
echo "== $1: pg_dump written to /tmp/$DB.sql"
