#!/usr/bin/env bash
# Measures the collector's ingest at fleet scale: builds the collector and the load generator
# in release, starts a throwaway collector on its shipped defaults (SQLite in a temporary data
# directory, or PostgreSQL with BENCH_STORE=postgres) with one exception, `[limits]` off: the
# simulated fleet enrolls from one address, and agents with --interval 0 send far faster than
# a real agent's limit allows; the ingest path is what is measured. It creates an enrollment token, and runs
# firstline-loadgen against it with --measure-pid on the collector (and the PostgreSQL
# server), so the collector's CPU per 1000 reports is measured by the same tool. Arguments
# are passed to the load generator, e.g.
#   scripts/bench-ingest.sh --agents 2000 --interval 0 --duration 30s   # sustained maximum
#   scripts/bench-ingest.sh --agents 200 --mode flush                   # backlog drain
#   BENCH_STORE=postgres scripts/bench-ingest.sh --agents 500 --interval 0 --duration 20s
# Everything lives in a temporary directory that is removed on exit (BENCH_KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."

store="${BENCH_STORE:-sqlite}"
case "$store" in sqlite | postgres) ;; *)
  echo "BENCH_STORE must be sqlite or postgres, not $store" >&2
  exit 2
  ;;
esac

# BENCH_BIN_DIR: use binaries built elsewhere (e.g. an older commit's, for before/after).
if [ -n "${BENCH_BIN_DIR:-}" ]; then
  bin="$BENCH_BIN_DIR"
else
  echo "==> building (release)" >&2
  cargo build --release --locked -p firstline-collector -p firstline-loadgen >&2
  bin="$PWD/target/release"
fi

tmp="$(mktemp -d -t firstline-bench.XXXXXX)"
collector_pid=""
pg_bin=""
pg_data="$tmp/pg/data"

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
  if [ -n "$collector_pid" ]; then
    kill "$collector_pid" 2>/dev/null || true
    wait "$collector_pid" 2>/dev/null || true
  fi
  if [ -n "$pg_bin" ] && [ -f "$pg_data/postmaster.pid" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

measure=()
if [ "$store" = postgres ]; then
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
    echo "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2
    exit 1
  fi
  mkdir -p "$tmp/pg"
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$tmp/pg"; chmod 755 "$tmp"; fi
  as_postgres "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --lc-messages=C >/dev/null
  pg_port="$(free_port)"
  echo "==> starting PostgreSQL on 127.0.0.1:$pg_port (log: $tmp/pg/server.log)" >&2
  as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$tmp/pg/server.log" -w -t 60 \
    -o "-p $pg_port -k $tmp/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  as_postgres "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres firstline
  export FIRSTLINE_STORE_URL="postgres://postgres@127.0.0.1:$pg_port/firstline"
  measure+=(--measure-pid "$(head -1 "$pg_data/postmaster.pid")")
fi

# Many agents, many sockets: as root, lift the open files limit for both processes.
if [ "$(id -u)" = 0 ]; then
  ulimit -Hn 1048576 2>/dev/null || true
  ulimit -Sn 1048576 2>/dev/null || true
fi

port="$(free_port)"
export FIRSTLINE_DATA_DIR="$tmp/collector"
printf '[limits]\nagent_reports_per_minute = 0\nreports_per_second = 0\nenrollments_per_minute_per_ip = 0\n' \
  >"$tmp/collector.toml"
collector=("$bin/firstline-collector" --config "$tmp/collector.toml" --listen "127.0.0.1:$port")
echo "==> starting the collector on 127.0.0.1:$port, store $store (log: $tmp/collector.log)" >&2
"${collector[@]}" serve >"$tmp/collector.log" 2>&1 &
collector_pid=$!
for _ in $(seq 1 200); do
  if "${collector[@]}" hosts >/dev/null 2>&1; then break; fi
  if ! kill -0 "$collector_pid" 2>/dev/null; then
    echo "the collector exited; its log:" >&2
    cat "$tmp/collector.log" >&2
    exit 1
  fi
  sleep 0.1
done
measure+=(--measure-pid "$collector_pid")

token="$("${collector[@]}" token create --uses 100000 --ttl 1d --label bench-ingest)"
echo "==> running firstline-loadgen $*" >&2
status=0
"$bin/firstline-loadgen" --collector "https://127.0.0.1:$port" --ca-file "$FIRSTLINE_DATA_DIR/ca.crt" \
  --token "$token" "${measure[@]}" "$@" || status=$?
if grep -q -E ' (ERROR|WARN) ' "$tmp/collector.log"; then
  echo "==> the collector logged warnings or errors (first 5):" >&2
  grep -E ' (ERROR|WARN) ' "$tmp/collector.log" | head -5 >&2
fi
exit "$status"
