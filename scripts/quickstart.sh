#!/usr/bin/env bash
# Builds Firstline, starts a collector on its embedded defaults (SQLite file, its own CA, gRPC on
# loopback), enrolls an agent for this machine, runs both, and says where to look. Ctrl-C stops
# both. State is kept in ./firstline-quickstart, so a second run reuses the same CA and agent.
set -euo pipefail
cd "$(dirname "$0")/.."

port="${FIRSTLINE_PORT:-7443}"
root="${FIRSTLINE_QUICKSTART_DIR:-$PWD/firstline-quickstart}"
profile="${FIRSTLINE_PROFILE:-release}"

echo "==> building ($profile)"
if [ "$profile" = release ]; then
  cargo build --release --locked -p firstline-collector -p firstline-agent
else
  cargo build --locked -p firstline-collector -p firstline-agent
fi
bin="$PWD/target/$profile"
collector=("$bin/firstline-collector" --data-dir "$root/collector" --listen "127.0.0.1:$port")
agent=("$bin/firstline-agent" --state-dir "$root/agent")

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

mkdir -p "$root"
echo "==> starting the collector on 127.0.0.1:$port (log: $root/collector.log)"
"${collector[@]}" serve >"$root/collector.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  if "${collector[@]}" hosts >/dev/null 2>&1; then break; fi
  if ! kill -0 "${pids[0]}" 2>/dev/null; then
    echo "the collector exited; its log:" >&2
    cat "$root/collector.log" >&2
    exit 1
  fi
  sleep 0.1
done

if ! "${agent[@]}" status >/dev/null 2>&1; then
  echo "==> enrolling this machine"
  token="$("${collector[@]}" token create --label quickstart --ttl 10m)"
  "${agent[@]}" enroll --collector "https://127.0.0.1:$port" --token "$token" --ca-file "$root/collector/ca.crt"
fi
echo "==> starting the agent (log: $root/agent.log)"
"${agent[@]}" run >"$root/agent.log" 2>&1 &
pids+=($!)
sleep 2

echo
"${collector[@]}" hosts
echo
# The commands below work as printed once these are set (the CLI reads them).
collector_flag=""
if [ "$port" != 7443 ]; then collector_flag=" --collector https://127.0.0.1:$port"; fi
cat <<TXT
Firstline is running. Any filesystem of this machine at or above 90% opens a ticket within a
second; it resolves itself under 85%.

In another terminal:
  export PATH="$bin:\$PATH" FIRSTLINE_DATA_DIR="$root/collector" FIRSTLINE_AGENT_STATE_DIR="$root/agent"
  firstline-collector tickets$collector_flag
  firstline-collector hosts$collector_flag       (add --json for scripts)
  firstline-collector ticket show ID$collector_flag
  firstline-agent status

Press Ctrl-C to stop both.
TXT
wait
