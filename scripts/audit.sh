#!/usr/bin/env bash
# Checks Cargo.lock against the RustSec advisory database: known vulnerabilities, unmaintained
# and yanked crates (cargo audit; cargo deny's licence, ban and source checks run in
# scripts/test.sh). The database is fetched from GitHub, or read from a local clone of
# https://github.com/rustsec/advisory-db for machines that cannot reach GitHub.
#
#   scripts/audit.sh              fetch the database, then check
#   scripts/audit.sh --db DIR     check against the clone in DIR (no fetch); the date of its
#                                 last commit is printed, since a stale database misses
#                                 recent advisories
set -euo pipefail
cd "$(dirname "$0")/.."

db=""
while [ $# -gt 0 ]; do
  case "$1" in
    --db)
      [ $# -ge 2 ] || { echo "scripts/audit.sh: --db needs a directory" >&2; exit 2; }
      db="$2"
      shift
      ;;
    --db=*) db="${1#--db=}" ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "scripts/audit.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if ! command -v cargo-audit >/dev/null; then
  echo "==> cargo install --locked cargo-audit"
  cargo install --locked cargo-audit
fi

if [ -n "$db" ]; then
  if ! git -C "$db" rev-parse --git-dir >/dev/null 2>&1 || [ ! -d "$db/crates" ]; then
    echo "scripts/audit.sh: $db is not a clone of the RustSec advisory database" >&2
    exit 2
  fi
  echo "==> advisory database $db, last commit $(git -C "$db" log -1 --format=%cI)"
  # cargo audit opens the database as its own clone; a copy keeps the given one untouched.
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  git clone -q "$db" "$work/advisory-db"
  cargo audit --deny warnings --no-fetch --db "$work/advisory-db" --file Cargo.lock
else
  cargo audit --deny warnings --file Cargo.lock
fi
