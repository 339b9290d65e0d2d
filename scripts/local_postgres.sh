#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback, for sweep tests and local multi-worker sweeps.
#   scripts/local_postgres.sh start DIR PORT   -> prints postgresql://postgres@127.0.0.1:PORT/postgres
#   scripts/local_postgres.sh stop DIR
# DIR is created (owned by the postgres user when run as root: the server refuses to run as root).
# Authentication is "trust" on 127.0.0.1 only: for tests and one-user machines, not for sharing.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?data folder}
bindir=$(dirname "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)")
[ -x "$bindir/initdb" ] || { echo "PostgreSQL server binaries not found (Debian: apt-get install postgresql)" >&2; exit 3; }
as_owner() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
  start)
    port=${3:?port}
    mkdir -p "$dir"
    [ "$(id -u)" = "0" ] && chown postgres: "$dir"
    chmod 700 "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off" start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
