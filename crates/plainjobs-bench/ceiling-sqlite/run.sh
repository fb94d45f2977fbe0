#!/usr/bin/env bash
# The SQL ceiling of plainjobs' lifecycle on SQLite: no application, no enqueue cost. The
# SQLite counterpart of the shared harness's ceiling/run.sh.
#
#   N=20000 B=100 crates/plainjobs-bench/ceiling-sqlite/run.sh FILE
#
# FILE must hold the backend's tables (plainjobs-bench limits passes a file the library has
# just migrated). Pre-fills N requests, registers a worker, then the sqlite3 shell drives
# batches of B jobs through claim and completion (cycle.sql), two write transactions per batch,
# with the backend's settings (WAL, synchronous=NORMAL), until the queue is empty. Prints one
# JSON line like the PostgreSQL ceiling.
#
# uuid7() and now_us() stand for what the backend computes in Rust: a time-ordered uuid text and
# the time in microseconds; they are plain SQL expressions substituted below.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DB="${1:?usage: run.sh SQLITE-FILE}"
N="${N:-20000}" B="${B:-100}"
command -v sqlite3 >/dev/null || { echo "ceiling-sqlite: sqlite3 not found (apt-get install sqlite3)" >&2; exit 1; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT

NOW="CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"
MS="($NOW / 1000)"
UUID7="printf('%08x-%04x-7%03x-%04x-%012x', $MS / 65536, $MS % 65536, abs(random()) % 4096, 32768 + abs(random()) % 16384, abs(random()) % 281474976710656)"
PRAGMAS="PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 30000;"

sqlite3 -bail "$DB" >/dev/null <<SQL
$PRAGMAS
INSERT INTO plainjobs_workerheartbeat (worker_id, hostname, pid, queues, started_at, last_heartbeat_at)
  VALUES ('00000000-0000-7000-8000-000000000001', 'ceiling', 0, '["default"]', $NOW, $NOW);
WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < $N)
INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at, trace_id, span_id)
  SELECT $NOW, $UUID7, 'bench.Noop', '{"args":[],"kwargs":{"seq":' || i || '}}', 0, '', 'default', 0, 0, '', NULL, NULL, NULL FROM s;
SQL

cycles=$(( (N + B - 1) / B ))
{
  echo "$PRAGMAS"
  echo "CREATE TEMP TABLE picked (id INTEGER PRIMARY KEY);"
  cycle="$(grep -v '^--' "$HERE/cycle.sql")"
  cycle="${cycle//:B/"$B"}"
  cycle="${cycle//uuid7()/"$UUID7"}"
  cycle="${cycle//now_us()/"$NOW"}"
  for _ in $(seq 1 "$cycles"); do echo "$cycle"; done
} > "$tmp/cycles.sql"

t0=$(date +%s.%N)
sqlite3 -bail "$DB" < "$tmp/cycles.sql" >/dev/null
t1=$(date +%s.%N)
left=$(sqlite3 "$DB" "SELECT (SELECT count(*) FROM plainjobs_jobrequest) + (SELECT count(*) FROM plainjobs_jobprocess)")
done_=$(sqlite3 "$DB" "SELECT count(*) FROM plainjobs_jobresult WHERE status = 'SUCCESSFUL'")
python3 -c "import json,sys; n=int(sys.argv[3]); s=float(sys.argv[2])-float(sys.argv[1]); print(json.dumps({'system': 'SQL ceiling (SQLite): lifecycle, batch $B', 'concurrency': 1, 'jobs': n, 'left': int(sys.argv[4]), 'drain_s': round(s,3), 'jobs_per_s': round(n/s)}))" "$t0" "$t1" "$done_" "$left"
