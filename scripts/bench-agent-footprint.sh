#!/usr/bin/env bash
# Measures the shipped agent's footprint over a run against a local collector on the shipped
# defaults: resident memory (VmRSS at the end, VmHWM = peak) and CPU time (user + system) per
# minute. Usage: scripts/bench-agent-footprint.sh [SECONDS]   (default 180)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-180}"
# The agent as packages ship it (size-optimised profile); the collector as usual.
cargo build --release --locked -q -p firstline-collector
cargo build --profile release-agent --locked -q -p firstline-agent
bin="$PWD/target/release"
agent_bin="$PWD/target/release-agent/firstline-agent"
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
collector=("$bin/firstline-collector" --data-dir "$work/c" --listen "127.0.0.1:$port")
agent=("$agent_bin" --state-dir "$work/a")
"${collector[@]}" serve 2>"$work/c.log" &
cpid=$!
trap 'kill $cpid ${apid:-} 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do "${collector[@]}" hosts >/dev/null 2>&1 && break; sleep 0.1; done
"${agent[@]}" enroll --collector "https://127.0.0.1:$port" --token "$("${collector[@]}" token create)" --ca-file "$work/c/ca.crt" >/dev/null
"${agent[@]}" run 2>"$work/a.log" &
apid=$!
ticks=$(getconf CLK_TCK)
cpu() { awk -v t="$ticks" '{printf "%.3f", ($14+$15)/t}' "/proc/$apid/stat"; }
sleep 5
cpu0=$(cpu)
sleep "$secs"
cpu1=$(cpu)
rss=$(awk '/VmRSS/{print $2}' "/proc/$apid/status")
hwm=$(awk '/VmHWM/{print $2}' "/proc/$apid/status")
pss=$(awk '/^Pss:/{print $2}' "/proc/$apid/smaps_rollup")
anon=$(awk '/^Anonymous:/{print $2}' "/proc/$apid/smaps_rollup")
awk -v s="$secs" -v a="$cpu0" -v b="$cpu1" -v r="$rss" -v h="$hwm" -v p="$pss" -v n="$anon" 'BEGIN {
  printf "agent over %d s: VmRSS=%.1f MiB VmHWM(peak)=%.1f MiB PSS=%.1f MiB anonymous=%.1f MiB cpu=%.3f s (%.1f ms per minute)\n", s, r/1024, h/1024, p/1024, n/1024, b-a, (b-a)*1000*60/s }'
