#!/usr/bin/env bash
# Runs every test of the workspace, then the deployment checks: the deployment files
# (deploy/lint-deploy.sh) and the Linux packages, built from this run's binaries and tested in
# a container (deploy/linux/test-packages.sh). The end-to-end tests need root (they mount small tmpfs filesystems to fill) and PostgreSQL's
# server binaries (they start a throwaway server); this script installs what is missing on
# Debian/Ubuntu and refuses to run rather than skip tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then
    exec sudo -E env "PATH=$PATH" "$0" "$@"
  fi
  echo "scripts/test.sh needs root (tmpfs mounts in the end-to-end tests); run it as root" >&2
  exit 1
fi

apt_updated=0
need_pkg() {
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Real parts the probe tests use: clamd and sigtool (ClamAV), apt-ftparchive (a local apt
# repository), ip (network namespaces).
missing=()
command -v clamd >/dev/null || [ -x /usr/sbin/clamd ] || missing+=(clamav-daemon)
command -v sigtool >/dev/null || missing+=(clamav)
command -v apt-ftparchive >/dev/null || missing+=(apt-utils)
command -v dpkg-deb >/dev/null || missing+=(dpkg)
command -v ip >/dev/null || missing+=(iproute2)
[ -x /usr/sbin/ngircd ] || missing+=(ngircd)
[ -x /usr/bin/alertmanager-irc-relay ] || missing+=(alertmanager-irc-relay)
[ -x /usr/bin/prometheus ] || missing+=(prometheus)
[ -x /usr/sbin/nats-server ] || missing+=(nats-server)
[ -x /usr/bin/prometheus-alertmanager ] || missing+=(prometheus-alertmanager)
# The dashboard's browser test: Debian's chromium driven by playwright-core under Node
# (tests/browser/, its node_modules installed by the test when missing).
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing ${missing[*]}"
  need_pkg "${missing[@]}"
fi
# Request Tracker 5 for the help-desk sync tests (tests/src/request_tracker.rs): Debian's
# packages with the SQLite backend and RT's own server, preseeded so the install asks nothing,
# creates no database and starts no web server (each test makes its own RT in a temp dir).
if [ ! -x /usr/share/request-tracker5/libexec/rt-server ] || [ ! -x /usr/sbin/rt-setup-database-5 ]; then
  echo "==> installing request-tracker5 rt5-db-sqlite rt5-standalone"
  debconf-set-selections <<'PRESEED'
request-tracker5 request-tracker5/dbconfig-install boolean false
request-tracker5 request-tracker5/install-cronjobs boolean false
request-tracker5 request-tracker5/handle-siteconfig-permissions boolean false
request-tracker5 request-tracker5/rtname string rt.test
request-tracker5 request-tracker5/organization string rt.test
request-tracker5 request-tracker5/correspondaddress string rt@localhost
request-tracker5 request-tracker5/commentaddress string rt-comment@localhost
request-tracker5 request-tracker5/webbaseurl string http://127.0.0.1
exim4-config exim4/dc_eximconfig_configtype select local delivery only; not on a network
exim4-config exim4/dc_local_interfaces string 127.0.0.1
PRESEED
  need_pkg --no-install-recommends request-tracker5 rt5-db-sqlite rt5-standalone
fi
# Some nodejs packages (NodeSource's) ship npm themselves and conflict with Debian's npm: ask
# for it only when node came without it.
if ! command -v npm >/dev/null; then
  echo "==> installing npm"
  need_pkg npm
fi

# PostgreSQL server binaries for the throwaway test server.
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "==> installing PostgreSQL server binaries"
  need_pkg postgresql
fi
# `runuser` runs the PostgreSQL server as an unprivileged user (it refuses to run as root).
command -v runuser >/dev/null || need_pkg util-linux
id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres

# Python grpcio and grpcio-tools: the Feed/Watch test reads the feed with another gRPC stack
# (tests/python/watch_consumer.py, stubs generated from proto/ at run time).
command -v python3 >/dev/null || need_pkg python3
if ! python3 -c 'import grpc, grpc_tools' 2>/dev/null; then
  echo "==> installing grpcio and grpcio-tools for python3"
  python3 -m pip --version >/dev/null 2>&1 || need_pkg python3-pip
  # Debian 12+ and Ubuntu 23.04+ mark the system Python as externally managed (PEP 668).
  if ! python3 -m pip install -q grpcio grpcio-tools; then
    python3 -m pip install -q --break-system-packages grpcio grpcio-tools
  fi
  python3 -c 'import grpc, grpc_tools'
fi
# aiosmtpd: the SMTP server the e-mail test sends to (tests/python/smtp_sink.py).
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  echo "==> installing aiosmtpd for python3"
  if ! python3 -m pip install -q aiosmtpd; then
    python3 -m pip install -q --break-system-packages aiosmtpd
  fi
  python3 -c 'import aiosmtpd'
fi

echo "==> cargo test --workspace"
cargo test --workspace --locked "$@"

# The packages are built from the binaries `cargo test` just built (target/debug; the package
# build strips its copies), not from another optimised build: the release scripts package
# the release profiles, CI checks the packaging itself. The end-to-end tests build those
# binaries too (tests/src/bins.rs), from inside the test process; this build makes sure they
# match the tree also when arguments given to this script left those tests out (after a full
# run it has nothing to do). lint-deploy.sh and test-packages.sh install the tools they lack.
target="${CARGO_TARGET_DIR:-$PWD/target}"
echo "==> cargo build -p firstline-agent -p firstline-collector --bins"
cargo build --locked -p firstline-agent -p firstline-collector --bins
echo "==> deploy/lint-deploy.sh"
FIRSTLINE_COLLECTOR_BIN="$target/debug/firstline-collector" deploy/lint-deploy.sh
echo "==> deploy/linux/test-packages.sh"
FIRSTLINE_AGENT_BIN="$target/debug/firstline-agent" \
  FIRSTLINE_COLLECTOR_BIN="$target/debug/firstline-collector" deploy/linux/test-packages.sh

# The Windows installer: the agent cross-built for Windows (x86_64-pc-windows-gnu, which needs
# mingw for ring's C), the MSI made around it by wixl from deploy/windows/firstline-agent.wxs,
# and its tables checked with msiinfo. Then the macOS packaging files, which only a Mac can
# turn into a .pkg: plists parsed, scripts through shellcheck, distribution.xml well-formed.
missing=()
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
command -v wixl >/dev/null || missing+=(wixl)
command -v msiinfo >/dev/null || missing+=(msitools)
command -v shellcheck >/dev/null || missing+=(shellcheck)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing ${missing[*]}"
  need_pkg "${missing[@]}"
fi
rustup target list --installed | grep -qx x86_64-pc-windows-gnu ||
  rustup target add x86_64-pc-windows-gnu
echo "==> cargo build --target x86_64-pc-windows-gnu -p firstline-agent --bins"
cargo build --locked --target x86_64-pc-windows-gnu -p firstline-agent --bins
msi="$target/packages/firstline-agent.msi"
mkdir -p "$target/packages"
echo "==> deploy/windows/build-msi.sh and test-msi.sh"
deploy/windows/build-msi.sh --exe "$target/x86_64-pc-windows-gnu/debug/firstline-agent.exe" --out "$msi"
deploy/windows/test-msi.sh "$msi"
echo "==> deploy/macos/check-macos-files.sh"
deploy/macos/check-macos-files.sh

# The dependency policy (deny.toml): allowed licenses, banned crates (one TLS stack, rustls;
# one crypto provider, ring) and crates.io as the only source.
if ! command -v cargo-deny >/dev/null; then
  echo "==> cargo install --locked cargo-deny"
  cargo install --locked cargo-deny
fi
echo "==> cargo deny --locked check licenses bans sources"
cargo deny --locked check --hide-inclusion-graph licenses bans sources

# Known vulnerabilities, unmaintained and yanked crates (RustSec, cargo deny and cargo audit):
# the database fetched from GitHub, or a local copy where GitHub is out of reach; with neither,
# a warning block says the advisories were not checked (scripts/audit.sh --help).
echo "==> scripts/audit.sh --ci"
scripts/audit.sh --ci

# A minute of fuzzing: every parser and decoder of outside input (fuzz/, scripts/fuzz.sh).
echo "==> scripts/fuzz.sh --short"
scripts/fuzz.sh --short
