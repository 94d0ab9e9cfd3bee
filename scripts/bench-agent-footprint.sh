#!/usr/bin/env bash
# Measures the shipped agent's footprint over a run against a local collector on the shipped
# defaults, for the agent alone and for its whole process tree (the package managers and other
# tools it starts): resident memory (VmRSS at the end, VmHWM = peak, PSS), the tools' peak
# resident memory (their process trees sampled every 0.1 s), and CPU time (user + system; the
# tools' once reaped, cutime + cstime) at start-up and per second afterwards.
# Usage: scripts/bench-agent-footprint.sh [SECONDS] [WARMUP]   (defaults 180 and 30)
# The start-up figures cover the first WARMUP seconds (the first run of every probe); the
# steady figures the SECONDS after them.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-180}"
warmup="${2:-30}"
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
# Own CPU (utime + stime) and the reaped children's (cutime + cstime), in seconds.
own() { awk -v t="$ticks" '{sub(/.*\) /, ""); printf "%.3f", ($12+$13)/t}' "/proc/$apid/stat"; }
kids() { awk -v t="$ticks" '{sub(/.*\) /, ""); printf "%.3f", ($14+$15)/t}' "/proc/$apid/stat"; }
# The largest resident memory of the agent's descendants together, sampled every 0.1 s.
peak_file="$work/tool-peak"
echo 0 >"$peak_file"
(
  peak=0
  while kill -0 "$apid" 2>/dev/null; do
    rss=0
    todo=$(cat /proc/"$apid"/task/*/children 2>/dev/null || true)
    while [ -n "$todo" ]; do
      next=""
      for p in $todo; do
        r=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || true)
        rss=$((rss + ${r:-0}))
        next="$next $(cat /proc/"$p"/task/*/children 2>/dev/null || true)"
      done
      todo=$(echo $next)
    done
    if [ "$rss" -gt "$peak" ]; then peak=$rss; echo "$peak" >"$peak_file"; fi
    sleep 0.1
  done
) &
sampler=$!
sleep "$warmup"
own0=$(own); kids0=$(kids); startup_peak=$(cat "$peak_file")
sleep "$secs"
own1=$(own); kids1=$(kids)
kill "$sampler" 2>/dev/null || true
rss=$(awk '/VmRSS/{print $2}' "/proc/$apid/status")
hwm=$(awk '/VmHWM/{print $2}' "/proc/$apid/status")
pss=$(awk '/^Pss:/{print $2}' "/proc/$apid/smaps_rollup")
anon=$(awk '/^Anonymous:/{print $2}' "/proc/$apid/smaps_rollup")
steady_peak=$(cat "$peak_file")
awk -v w="$warmup" -v s="$secs" -v o0="$own0" -v k0="$kids0" -v o1="$own1" -v k1="$kids1" \
    -v r="$rss" -v h="$hwm" -v p="$pss" -v n="$anon" -v sp="$startup_peak" -v tp="$steady_peak" 'BEGIN {
  printf "agent alone: VmRSS=%.1f MiB VmHWM(peak)=%.1f MiB PSS=%.1f MiB anonymous=%.1f MiB\n", r/1024, h/1024, p/1024, n/1024
  printf "start-up (first %d s): agent cpu=%.3f s, tools cpu=%.3f s, tools peak RSS=%.1f MiB\n", w, o0, k0, sp/1024
  printf "steady over %d s: agent cpu=%.3f s (%.3f ms/s, %.0f ms per hour), whole tree cpu=%.3f s (%.3f ms/s, %.0f ms per hour), tools peak RSS since start=%.1f MiB\n", s, o1-o0, (o1-o0)*1000/s, (o1-o0)*3600000/s, (o1-o0)+(k1-k0), ((o1-o0)+(k1-k0))*1000/s, ((o1-o0)+(k1-k0))*3600000/s, tp/1024 }'
