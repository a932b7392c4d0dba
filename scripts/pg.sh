#!/usr/bin/env bash
# Local PostgreSQL for development, tests and CI: the system's PostgreSQL 15 binaries and a data
# folder of the project's own (.local/pg, ignored by git), on 127.0.0.1 only.
#
#   scripts/pg.sh start    start (or reuse) the server; prints nothing but errors
#   scripts/pg.sh url      start if needed, then print an Npgsql connection string for database "aigate"
#   scripts/pg.sh status   say whether it runs, and where
#   scripts/pg.sh stop     stop it cleanly (fast shutdown)
#   scripts/pg.sh psql     open psql on it (extra arguments go to psql)
#
# Port: AIGATE_PG_PORT if set, else the port used last time, else 55432; when that port is taken by
# something else, the first free one above it. PostgreSQL refuses to run as root, so as root the
# server runs as the `postgres` system user. Authentication is `trust` on loopback: this cluster is
# for local work only and never holds anything but test and demo data.
set -euo pipefail

root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state_dir="${AIGATE_PG_DIR:-$root_dir/.local/pg}"
db_user="aigate"
db_name="aigate"

log() { printf 'pg: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

pg_bin_dir() {
  local dir
  for dir in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }
  done
  return 1
}

ensure_binaries() {
  if ! bin=$(pg_bin_dir); then
    log "PostgreSQL binaries not found; installing the Debian package 'postgresql'"
    if [ "$(id -u)" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
      sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    bin=$(pg_bin_dir) || die "could not install PostgreSQL"
  fi
}

# As root, every server command runs as `postgres`; the data folder must then be reachable by that
# user. A checkout under a private home folder is not, so fall back to a folder under /var/tmp
# named after the checkout.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

resolve_state_dir() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' system user (install the 'postgresql' package)"
    mkdir -p "$state_dir"
    if ! runuser -u postgres -- test -x "$state_dir"; then
      local key
      key=$(printf '%s' "$root_dir" | sha256sum | cut -c1-12)
      state_dir="/var/tmp/aigate-pg-$key"
      mkdir -p "$state_dir"
    fi
    chown postgres:postgres "$state_dir"
  else
    mkdir -p "$state_dir"
  fi
  data_dir="$state_dir/data"
  sock_dir="$state_dir/run"
  port_file="$state_dir/port"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

is_running() { [ -f "$data_dir/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$data_dir" status >/dev/null 2>&1; }

current_port() { cat "$port_file"; }

init_cluster() {
  [ -f "$data_dir/PG_VERSION" ] && return 0
  log "creating a new cluster in $data_dir"
  as_owner mkdir -p "$data_dir" "$sock_dir"
  as_owner "$bin/initdb" -D "$data_dir" -U "$db_user" --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  # Tuned for a throwaway local cluster: durability traded for speed (tests create many databases).
  as_owner tee -a "$data_dir/postgresql.conf" >/dev/null <<'CONF'
listen_addresses = '127.0.0.1'
max_connections = 400
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
CONF
}

start() {
  ensure_binaries
  resolve_state_dir
  init_cluster
  if is_running; then return 0; fi
  local port="${AIGATE_PG_PORT:-}"
  if [ -z "$port" ]; then
    port=$( [ -f "$port_file" ] && cat "$port_file" || echo 55432 )
    while port_in_use "$port"; do port=$((port + 1)); done
  elif port_in_use "$port"; then
    die "port $port (AIGATE_PG_PORT) is already in use by another program"
  fi
  as_owner mkdir -p "$sock_dir"
  # A port can look free to a connect and still be bound (a server going away, another program starting):
  # on "Address already in use" try the next one, unless the port was chosen with AIGATE_PG_PORT.
  local attempt
  for attempt in 1 2 3 4 5; do
    echo "$port" > "$port_file"
    chmod 644 "$port_file"
    if as_owner "$bin/pg_ctl" -D "$data_dir" -l "$state_dir/server.log" -w -t 60 \
        -o "-p $port -k $sock_dir" start >/dev/null; then
      break
    fi
    if [ -z "${AIGATE_PG_PORT:-}" ] && [ "$attempt" -lt 5 ] && tail -n 20 "$state_dir/server.log" | grep -q "Address already in use"; then
      port=$((port + 1))
      while port_in_use "$port"; do port=$((port + 1)); done
      continue
    fi
    tail -n 20 "$state_dir/server.log" >&2 || true
    die "server did not start"
  done
  # The application database; tests create their own next to it.
  if ! as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U "$db_user" -d postgres -tAc \
      "select 1 from pg_database where datname = '$db_name'" | grep -q 1; then
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$db_user" "$db_name"
  fi
}

url() {
  start
  printf 'Host=127.0.0.1;Port=%s;Username=%s;Database=%s\n' "$(current_port)" "$db_user" "$db_name"
}

status() {
  ensure_binaries
  resolve_state_dir
  if is_running; then
    echo "running on 127.0.0.1:$(current_port), data in $data_dir"
  else
    echo "not running (data in $data_dir)"
    return 3
  fi
}

stop() {
  ensure_binaries
  resolve_state_dir
  if is_running; then
    as_owner "$bin/pg_ctl" -D "$data_dir" -m fast -w stop >/dev/null
    log "stopped"
  fi
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  start) start ;;
  url) url ;;
  status) status ;;
  stop) stop ;;
  psql) start; exec "$bin/psql" -h 127.0.0.1 -p "$(current_port)" -U "$db_user" -d "$db_name" "$@" ;;
  *) echo "usage: scripts/pg.sh start|url|status|stop|psql" >&2; exit 2 ;;
esac
