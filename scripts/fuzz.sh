#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/, cargo-fuzz on the nightly toolchain) and runs each of them
# once, one after the other, starting from its seed corpus fuzz/corpus/<target>/.
#
#   scripts/fuzz.sh              each target for 10,000,000 runs (the long run)
#   scripts/fuzz.sh --runs N     each target for N runs
#   scripts/fuzz.sh --short      about a minute in all, split evenly between the targets
#                                (scripts/test.sh ends with this), on a debug build without
#                                AddressSanitizer: it builds in a fraction of the time, and
#                                its debug assertions catch overflows (the targets are safe
#                                Rust, which ASan has little to add to)
#   scripts/fuzz.sh ... TARGET…  only the targets named
#
# A crash (panic, overflow, out-of-bounds access…), a hang of one input beyond 10 s or more
# than 2 GiB of memory is a failure: the input is kept in fuzz/artifacts/<target>/ and the
# script exits non-zero after running the other targets. What libFuzzer finds new goes to a
# temporary directory, so the committed corpus stays as it is. One line per target tells its
# executions and result; the whole libFuzzer output is shown for a failed one.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
}

runs=10000000
short=0
short_total=60
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --short) short=1 ;;
    --runs)
      [ $# -ge 2 ] || { echo "scripts/fuzz.sh: --runs needs a number" >&2; exit 2; }
      runs="$2"
      shift
      ;;
    --runs=*) runs="${1#--runs=}" ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "scripts/fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) only+=("$1") ;;
  esac
  shift
done
case "$runs" in
  '' | *[!0-9]*) echo "scripts/fuzz.sh: --runs takes a whole number, not '$runs'" >&2; exit 2 ;;
esac

# cargo-fuzz needs the nightly toolchain (for -Zsanitizer and libFuzzer's instrumentation).
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "==> installing the nightly toolchain (cargo-fuzz needs it)"
  if ! rustup toolchain install nightly --profile minimal; then
    echo "scripts/fuzz.sh: the nightly Rust toolchain is missing and could not be installed;" \
      "install it with 'rustup toolchain install nightly --profile minimal'" >&2
    exit 1
  fi
fi
if ! command -v cargo-fuzz >/dev/null; then
  echo "==> cargo install --locked cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

# The long run: optimised, with AddressSanitizer (cargo-fuzz's defaults). The short one: a
# debug build, no sanitizer. `run` rebuilds when its flags differ, so both get the same.
if [ "$short" = 1 ]; then
  build_flags=(--dev --sanitizer none)
else
  build_flags=()
fi
echo "==> cargo +nightly fuzz build ${build_flags[*]}"
build_start=$SECONDS
cargo +nightly fuzz build "${build_flags[@]}"
echo "fuzz build: $((SECONDS - build_start)) s"

mapfile -t all < <(cargo +nightly fuzz list)
if [ "${#only[@]}" -gt 0 ]; then
  for t in "${only[@]}"; do
    printf '%s\n' "${all[@]}" | grep -qx -- "$t" ||
      { echo "scripts/fuzz.sh: no fuzz target '$t' (targets: ${all[*]})" >&2; exit 2; }
  done
  targets=("${only[@]}")
else
  targets=("${all[@]}")
fi

if [ "$short" = 1 ]; then
  per=$((short_total / ${#targets[@]}))
  [ "$per" -ge 1 ] || per=1
  limit=(-max_total_time="$per")
  echo "==> fuzzing ${#targets[@]} targets, ${per} s each"
else
  limit=(-runs="$runs")
  echo "==> fuzzing ${#targets[@]} targets, $runs runs each"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "fuzz/corpus/$t"
  log="$work/$t.log"
  start=$SECONDS
  # The first corpus directory takes what libFuzzer finds; the committed seeds are only read.
  set +e
  cargo +nightly fuzz run "${build_flags[@]}" "$t" "$work/$t" "fuzz/corpus/$t" -- \
    "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  secs=$((SECONDS - start))
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
  found="$(find "$work/$t" -type f | wc -l)"
  if [ "$rc" = 0 ]; then
    echo "fuzz $t: ok, ${execs:-?} executions in ${secs} s (${rate:-?}/s), ${found} new corpus inputs"
  else
    why="$(grep -m1 -oE 'ERROR: libFuzzer: [a-z -]+|panicked at [^:]+:[0-9]+' "$log" || true)"
    artifact="$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)"
    echo "fuzz $t: FAILED (${why:-exit $rc}), ${execs:-?} executions in ${secs} s${artifact:+, input in $artifact}"
    # From the panic or the sanitizer's report on (the log starts with the build and the run).
    first="$(grep -m1 -n -E 'panicked at|==[0-9]+==ERROR|ERROR: libFuzzer' "$log" | cut -d: -f1 || true)"
    echo "---- libFuzzer output of $t ----"
    tail -n +"$(( ${first:-1} > 5 ? ${first:-1} - 5 : 1 ))" "$log" | head -n 80
    echo "---- end of $t ----"
    failed+=("$t")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "scripts/fuzz.sh: ${#failed[@]} of ${#targets[@]} fuzz targets failed: ${failed[*]}" >&2
  echo "reproduce one with: cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/FILE" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets passed"
