# shellcheck shell=bash
# PgBouncer (Debian's package) in front of the test PostgreSQL, for the pass of the lifecycle and
# failure tests through a pooler. Sourced by scripts/test after scripts/pg-lib.sh.
#
#   start_pgbouncer transaction   # sets PGBOUNCER_URL (no database in it) and PGBOUNCER_PID
#   stop_pgbouncer

ensure_pgbouncer() {
  [ -x /usr/sbin/pgbouncer ] || apt_install pgbouncer
}

# A loopback port no socket uses, below Linux's range of ports for outgoing connections
# (32768-60999): a port in that range can be bound by any client's connection, or held by one in
# TIME-WAIT, and PgBouncer then cannot listen on it although connecting to it is refused.
spare_port() {
  local port
  for port in $(seq 26400 26499); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    if have ss && [ -n "$(ss -Htan "( sport = :$port )" 2>/dev/null)" ]; then continue; fi
    echo "$port"
    return 0
  done
  echo "error: no spare port in 26400-26499" >&2
  return 1
}

# Starts PgBouncer in pool mode $1 in front of the server of $PG_SERVER_URL: every database
# name is passed through (the `*` entry), as a user deploying it for many databases would.
start_pgbouncer() {
  local mode="$1" dir port host server_port pool_size
  # Session mode holds a server connection per client session: the pool must be as large as
  # the most sessions one database's clients open at once (a test opens up to ~60). Transaction
  # mode shares a few among them.
  if [ "$mode" = session ]; then pool_size=60; else pool_size=20; fi
  ensure_pgbouncer
  dir="$(pwd)/target/pgbouncer-$mode"
  port="$(spare_port)"
  read -r host server_port < <(psql -X -A -t -F ' ' -c 'SELECT host(inet_server_addr()), inet_server_port()' "$PG_SERVER_URL")
  rm -rf "$dir" && mkdir -p "$dir"
  printf '"postgres" ""\n' >"$dir/userlist.txt"
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=${host:-127.0.0.1} port=${server_port:-5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = $mode
max_client_conn = 2000
default_pool_size = $pool_size
; sqlx sends extra_float_digits at connect; PgBouncer refuses startup parameters it does not know.
ignore_startup_parameters = extra_float_digits
; Every test has a database of its own: close the server connections of finished tests soon,
; or they pile up to the server's max_connections.
server_idle_timeout = 5
autodb_idle_timeout = 10
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$dir"; fi
  local as=()
  if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi
  "${as[@]}" /usr/sbin/pgbouncer -d "$dir/pgbouncer.ini"
  PGBOUNCER_URL="postgres://postgres@127.0.0.1:$port"
  local i
  for i in $(seq 1 50); do
    pg_ok "$PGBOUNCER_URL/postgres" && break
    sleep 0.1
  done
  pg_ok "$PGBOUNCER_URL/postgres" || { echo "error: pgbouncer did not start; see $dir/pgbouncer.log" >&2; return 1; }
  PGBOUNCER_PID="$(cat "$dir/pgbouncer.pid")"
  echo "scripts/test: pgbouncer ($mode mode) on $PGBOUNCER_URL" >&2
}

stop_pgbouncer() {
  if [ -n "${PGBOUNCER_PID:-}" ]; then
    kill "$PGBOUNCER_PID" 2>/dev/null || true
    PGBOUNCER_PID=
  fi
}

# Drops the per-test databases a pooler pass created (tests/common/pooler.rs names them).
drop_pooler_databases() {
  psql -X -q -A -t "$PG_SERVER_URL" -c "SELECT datname FROM pg_database WHERE datname LIKE 'pjpool\_%'" |
    while read -r db; do
      [ -n "$db" ] && psql -X -q "$PG_SERVER_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
    done
}
