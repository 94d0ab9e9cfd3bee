#!/usr/bin/env bash
# Checks Cargo.lock against the RustSec advisory database: known vulnerabilities, unmaintained
# and yanked crates, with both cargo deny (`check advisories`, the policy in deny.toml) and
# cargo audit. cargo deny's licence, ban and source checks run in scripts/test.sh. The
# database is fetched from GitHub, or read from a local clone of
# https://github.com/rustsec/advisory-db for machines that cannot reach GitHub.
#
#   scripts/audit.sh              fetch the database, then check
#   scripts/audit.sh --db DIR     check against the clone in DIR (with or without a work tree;
#                                 no fetch); the date of its last commit is printed, since a
#                                 stale database misses recent advisories
#   scripts/audit.sh --ci         what scripts/test.sh runs: the clone in $FIRSTLINE_ADVISORY_DB
#                                 if set; else the fetched database if GitHub answers; else the
#                                 copy kept in ~/.cargo/advisory-db. With none of them, a warning
#                                 says the advisories were NOT checked and why, and the script
#                                 exits 0 (FIRSTLINE_REQUIRE_ADVISORIES=1 makes that exit 1)
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

db=""
ci=0
while [ $# -gt 0 ]; do
  case "$1" in
    --db)
      [ $# -ge 2 ] || { echo "scripts/audit.sh: --db needs a directory" >&2; exit 2; }
      db="$2"
      shift
      ;;
    --db=*) db="${1#--db=}" ;;
    --ci) ci=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "scripts/audit.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

upstream=https://github.com/rustsec/advisory-db
is_db() { git -C "$1" cat-file -e HEAD:crates 2>/dev/null; }

if [ "$ci" = 1 ] && [ -z "$db" ]; then
  kept="${CARGO_HOME:-$HOME/.cargo}/advisory-db"
  if [ -n "${FIRSTLINE_ADVISORY_DB:-}" ]; then
    db="$FIRSTLINE_ADVISORY_DB"
  elif timeout 30 git ls-remote -q "$upstream" HEAD >/dev/null 2>&1; then
    db=""
  elif is_db "$kept"; then
    echo "==> $upstream is out of reach; using the copy kept in $kept"
    db="$kept"
  else
    echo "######################################################################"
    echo "# advisories NOT checked: $upstream is out of reach, FIRSTLINE_ADVISORY_DB"
    echo "# is not set, and there is no copy in $kept."
    echo "# Clone the database there (or anywhere, then set FIRSTLINE_ADVISORY_DB)."
    echo "######################################################################"
    [ "${FIRSTLINE_REQUIRE_ADVISORIES:-0}" = 1 ] && exit 1
    exit 0
  fi
fi

for tool in cargo-deny cargo-audit; do
  if ! command -v "$tool" >/dev/null; then
    echo "==> cargo install --locked $tool"
    cargo install --locked "$tool"
  fi
done
# The yanked check reads the crates.io index entries of every crate in Cargo.lock.
cargo fetch --locked --quiet

if [ -z "$db" ]; then
  echo "==> cargo deny --locked check advisories (fetching the database)"
  cargo deny --locked check --hide-inclusion-graph advisories
  echo "==> cargo audit (fetching the database)"
  cargo audit --deny warnings --file Cargo.lock
  exit 0
fi

if ! is_db "$db"; then
  echo "scripts/audit.sh: $db is not a clone of the RustSec advisory database" >&2
  exit 2
fi
last="$(git -C "$db" log -1 --format=%cI)"
age_days=$(( ($(date +%s) - $(git -C "$db" log -1 --format=%ct)) / 86400 ))
echo "==> advisory database $db, last commit $last ($age_days days old)"
[ "$age_days" -le 90 ] || echo "warning: the advisory database is $age_days days old; advisories since $last are missed"

# Both tools read their own clone; copies keep the given one untouched.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$db" "$work/advisory-db"

# cargo deny opens <db-path>/<name derived from the database URL>; a first offline run with an
# empty db-path names that directory, and the copy is put there.
{ cat deny.toml; printf '\n[advisories]\ndb-path = "%s/dbs"\n' "$work"; } >"$work/deny.toml"
mkdir -p "$work/dbs"
expected="$(cargo deny --offline --config "$work/deny.toml" check advisories 2>&1 |
  sed -n 's/.*"-C", "\([^"]*\)".*/\1/p' | head -n 1 || true)"
case "$expected" in
  "$work/dbs/"*) git clone -q "$work/advisory-db" "$expected" ;;
  *) echo "scripts/audit.sh: could not tell where cargo deny looks for its database" >&2; exit 1 ;;
esac
echo "==> cargo deny --offline check advisories"
cargo deny --offline --config "$work/deny.toml" check --hide-inclusion-graph advisories
echo "==> cargo audit --no-fetch"
cargo audit --deny warnings --no-fetch --db "$work/advisory-db" --file Cargo.lock
