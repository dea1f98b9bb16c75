#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests, in a temporary directory, trust auth, superuser "postgres".
#
#   scripts/pg-test-cluster.sh start [PORT]   -> prints the URL, then the cluster directory
#   scripts/pg-test-cluster.sh stop DIR       -> stops that cluster and deletes DIR
#
# Uses Debian's `postgresql` package (installed with apt-get when initdb is missing and we are root).
# As root the server runs as the `postgres` OS user, since PostgreSQL refuses to run as root.
set -euo pipefail

find_bindir() {
    local initdb
    initdb=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n "$initdb" ]] && dirname "$initdb"
}

ensure_installed() {
    if [[ -z "$(find_bindir)" ]]; then
        [[ $(id -u) -eq 0 ]] || { echo "initdb not found; install the postgresql package" >&2; exit 1; }
        echo "installing postgresql with apt-get" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
    fi
}

# Run a command as the cluster's OS user: postgres when we are root, else ourselves.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_free_port() {
    local port
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 40000))
        port_in_use "$port" || { echo "$port"; return; }
    done
    echo "no free port found" >&2
    exit 1
}

start() {
    ensure_installed
    local bindir port dir
    bindir=$(find_bindir)
    port=${1:-$(pick_free_port)}
    if port_in_use "$port"; then echo "port $port is already in use" >&2; exit 1; fi
    dir=$(mktemp -d -t cloudd-pg.XXXXXX)
    chmod 755 "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
    # fsync off: the data is thrown away anyway, and tests run much faster.
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off" \
        start >/dev/null \
        || { cat "$dir/server.log" >&2; rm -rf "$dir"; exit 1; }
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    echo "$dir"
}

stop() {
    local dir=${1:?usage: $0 stop DIR}
    [[ -f "$dir/data/PG_VERSION" ]] || { echo "$dir is not a test cluster" >&2; exit 1; }
    as_owner "$(find_bindir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true
    rm -rf "$dir"
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    *) echo "usage: $0 start [PORT] | stop DIR" >&2; exit 2 ;;
esac
