# shellcheck shell=bash
# Helpers to find or start a PostgreSQL server. Sourced by scripts/test and scripts/demo.

redact() { sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#' <<<"$1"; }

have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
  if [ "$(id -u)" = 0 ] && have apt-get && [ "${NO_AUTO_INSTALL:-}" != 1 ]; then
    echo "installing $* with apt-get" >&2
    (apt-get update -qq >/dev/null 2>&1 || true)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "error: $* is needed; install it (or set DATABASE_URL to a running PostgreSQL)" >&2
    return 1
  fi
}

pg_ok() { psql -X -q -A -t -c 'select 1' "$1" >/dev/null 2>&1; }

# Sets PG_SERVER_URL to a server we can create databases on.
ensure_postgres() {
  have psql || apt_install postgresql-client
  if [ -n "${DATABASE_URL:-}" ]; then
    if pg_ok "$DATABASE_URL"; then PG_SERVER_URL="$DATABASE_URL"; return 0; fi
    echo "error: cannot connect to DATABASE_URL=$(redact "$DATABASE_URL")" >&2
    return 1
  fi
  local local_url="postgres://postgres@127.0.0.1:5432/postgres"
  if pg_ok "$local_url"; then PG_SERVER_URL="$local_url"; return 0; fi
  start_throwaway_cluster
}

# A private cluster in target/pg on port 55432, left running for the next run.
start_throwaway_cluster() {
  local bindir
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    apt_install postgresql
    bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
  fi
  local dir port=55432
  dir="$(pwd)/target/pg"
  local url="postgres://postgres@127.0.0.1:$port/postgres"
  if pg_ok "$url"; then PG_SERVER_URL="$url"; return 0; fi
  local as=()
  if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); id postgres >/dev/null 2>&1 || useradd -r postgres; fi
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    echo "starting a throwaway PostgreSQL cluster in $dir" >&2
    "${as[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust >/dev/null
  fi
  "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
  pg_ok "$url" || { echo "error: the throwaway cluster did not start; see $dir/log" >&2; return 1; }
  PG_SERVER_URL="$url"
}

# Prints the URL of database $2 on the server of URL $1, dropped and created anew.
fresh_database() {
  local server="$1" name="$2"
  psql -X -q -v ON_ERROR_STOP=1 "$server" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null
  python3 - "$server" "$name" <<'PY' 2>/dev/null || sed -E "s#/[^/?]*(\?|$)#/$name\1#" <<<"$server"
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))
PY
}

# The server binaries (initdb, pg_ctl), for the tests that start clusters of their own (the
# chaos suite restarts and crashes its cluster; the hosts test listens on test addresses).
ensure_server_binaries() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
}
