#!/usr/bin/env bash
# Verifies the Linux packages end to end (docs/packaging.md, "What the test checks"): builds
# the .deb and .rpm of firstline-agent and firstline-collector with
# deploy/linux/build-packages.sh, inspects them (dpkg-deb, lintian, rpm, rpmlint, shellcheck),
# then boots a Debian container under systemd-nspawn (its root file system made by mmdebstrap
# and cached in /var/cache/firstline-test/) and there: verifies the units with
# systemd-analyze, installs the collector, creates a token with its CLI, installs the agent
# with the enrollment values in the environment, sees the service enroll by itself and its
# report arrive, re-installs and upgrades both (config edit, identity and spool kept),
# removes and purges them.
#
# Runs as root on Debian or Ubuntu and installs the tools it lacks; it fails, never skips.
# Binaries: FIRSTLINE_AGENT_BIN and FIRSTLINE_COLLECTOR_BIN, else the release builds in
# $CARGO_TARGET_DIR (default target/), built here when missing.
# FIRSTLINE_TEST_KEEP=1 keeps the container's root and the packages after a failure.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then
        exec sudo -E env "PATH=$PATH" "$0" "$@"
    fi
    echo "deploy/linux/test-packages.sh needs root (dpkg in a container, systemd-nspawn)" >&2
    exit 1
fi

started=$(date +%s)
step() { printf '\n==> [%4ss] %s\n' "$(($(date +%s) - started))" "$*"; }
ok() { printf '    ok: %s\n' "$*"; }

# --- tools ---------------------------------------------------------------------------------

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
have dpkg-deb || missing+=(dpkg)
have dpkg-shlibdeps || missing+=(dpkg-dev)
have lintian || missing+=(lintian)
have rpmbuild || missing+=(rpm)
have rpmlint || missing+=(rpmlint)
have shellcheck || missing+=(shellcheck)
have mmdebstrap || missing+=(mmdebstrap)
have systemd-nspawn || missing+=(systemd-container)
have nsenter || missing+=(util-linux)
have systemd-analyze || missing+=(systemd)
have strip || missing+=(binutils)
# The checks of the collector's JSON run the host's Python.
[ -x /usr/bin/python3 ] || missing+=(python3)
if [ -z "$(ls /usr/share/keyrings/debian-archive-keyring.gpg 2>/dev/null)" ]; then
    missing+=(debian-archive-keyring)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    step "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- binaries ------------------------------------------------------------------------------

target="${CARGO_TARGET_DIR:-$repo/target}"
agent_bin="${FIRSTLINE_AGENT_BIN:-$target/release-agent/firstline-agent}"
collector_bin="${FIRSTLINE_COLLECTOR_BIN:-$target/release/firstline-collector}"
if [ ! -x "$agent_bin" ]; then
    step "building the agent (cargo build --profile release-agent -p firstline-agent)"
    (cd "$repo" && cargo build --locked --profile release-agent -p firstline-agent)
fi
if [ ! -x "$collector_bin" ]; then
    step "building the collector (cargo build --release -p firstline-collector)"
    (cd "$repo" && cargo build --locked --release -p firstline-collector)
fi

work="$(mktemp -d /var/tmp/firstline-packages.XXXXXX)"
ct_root=""
nspawn_pid=""
leader=""

# --- the container -------------------------------------------------------------------------

machine="fl-pkgtest"
in_ct() {
    nsenter --target "$leader" --all -- /usr/bin/env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive "$@"
}

stop_container() {
    [ -n "$nspawn_pid" ] || return 0
    if kill -0 "$nspawn_pid" 2>/dev/null; then
        # SIGTERM makes systemd-nspawn shut the container down cleanly.
        kill "$nspawn_pid" 2>/dev/null || true
        for _ in $(seq 1 300); do
            kill -0 "$nspawn_pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$nspawn_pid" 2>/dev/null; then
            echo "    the container did not shut down within 60 s; killing systemd-nspawn" >&2
            kill -KILL "$nspawn_pid" 2>/dev/null || true
        fi
    fi
    wait "$nspawn_pid" 2>/dev/null || true
    nspawn_pid=""
}

diagnose() {
    echo >&2
    echo "==== diagnostics ====" >&2
    if [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null; then
        in_ct systemctl --no-pager status firstline-collector firstline-agent >&2 || true
        echo "---- journal of firstline-collector and firstline-agent ----" >&2
        in_ct journalctl --no-pager -b -o short-monotonic \
            -u firstline-collector -u firstline-agent >&2 || true
        echo "---- failed units ----" >&2
        in_ct systemctl --no-pager --failed >&2 || true
    fi
    if [ -f "$work/console.log" ]; then
        echo "---- container console (last 40 lines) ----" >&2
        tail -n 40 "$work/console.log" >&2
    fi
}

finish() {
    local rc=$?
    if [ "$rc" != 0 ]; then
        diagnose
    fi
    stop_container
    if [ "$rc" != 0 ] && [ "${FIRSTLINE_TEST_KEEP:-}" = 1 ]; then
        echo "kept: $work (packages, container root in $ct_root)" >&2
    else
        rm -rf "$work"
    fi
    if [ "$rc" = 0 ]; then
        step "all package checks passed"
    else
        echo "FAILED (exit $rc)" >&2
    fi
}
trap finish EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# wait_for SECONDS WHAT COMMAND...: runs COMMAND every 0.2 s until it succeeds.
wait_for() {
    local seconds="$1" what="$2"
    shift 2
    local deadline=$(($(date +%s) + seconds))
    until "$@" >"$work/wait.out" 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            cat "$work/wait.out" >&2
            fail "$what: not within ${seconds}s (last try: $*; its output above)"
        fi
        sleep 0.2
    done
    ok "$what"
}

# expect WHAT ACTUAL EXPECTED
expect() {
    if [ "$2" != "$3" ]; then
        fail "$1: expected '$3', got '$2'"
    fi
    ok "$1: $2"
}

# --- build ---------------------------------------------------------------------------------

version="$(sed -n '/^\[workspace\.package\]/,/^\[/ s/^version *= *"\([^"]*\)".*/\1/p' "$repo/Cargo.toml")"
arch="$(dpkg --print-architecture)"
rpm_arch="$(uname -m)"

step "building the packages (revision 1, and revision 2 for the upgrade)"
t0=$(date +%s)
# --fast: xz level 1; compressing a debug build at the default level takes minutes.
"$here/build-packages.sh" --agent-bin "$agent_bin" --collector-bin "$collector_bin" \
    --out "$work/v1" --revision 1 --fast
"$here/build-packages.sh" --agent-bin "$agent_bin" --collector-bin "$collector_bin" \
    --out "$work/v2" --revision 2 --formats deb --fast
ok "built in $(($(date +%s) - t0))s"
agent_deb="$work/v1/firstline-agent_${version}-1_${arch}.deb"
collector_deb="$work/v1/firstline-collector_${version}-1_${arch}.deb"
agent_deb2="$work/v2/firstline-agent_${version}-2_${arch}.deb"
collector_deb2="$work/v2/firstline-collector_${version}-2_${arch}.deb"
agent_rpm="$work/v1/firstline-agent-${version}-1.${rpm_arch}.rpm"
collector_rpm="$work/v1/firstline-collector-${version}-1.${rpm_arch}.rpm"
for f in "$agent_deb" "$collector_deb" "$agent_deb2" "$collector_deb2" "$agent_rpm" "$collector_rpm"; do
    [ -f "$f" ] || fail "build-packages.sh made no $f"
done

# --- inspect the .deb ----------------------------------------------------------------------

# check_deb DEB PACKAGE CONFFILE: prints dpkg-deb -I and -c, checks fields and contents.
check_deb() {
    local deb="$1" pkg="$2" conffile="$3" listing
    dpkg-deb -I "$deb"
    listing="$(dpkg-deb -c "$deb")"
    printf '%s\n' "$listing"
    expect "$pkg: Package" "$(dpkg-deb -f "$deb" Package)" "$pkg"
    expect "$pkg: Version" "$(dpkg-deb -f "$deb" Version)" "$version-1"
    expect "$pkg: Architecture" "$(dpkg-deb -f "$deb" Architecture)" "$arch"
    dpkg-deb -f "$deb" Depends | grep 'libc6' >/dev/null || fail "$pkg: Depends lacks libc6"
    ok "$pkg: Depends: $(dpkg-deb -f "$deb" Depends)"
    for path in "./usr/bin/$pkg" "./lib/systemd/system/$pkg.service" "./etc/firstline/$conffile" \
        "./usr/share/doc/$pkg/copyright" "./usr/share/doc/$pkg/changelog.Debian.gz" \
        "./usr/share/man/man1/$pkg.1.gz"; do
        printf '%s\n' "$listing" | awk '{print $6}' | grep -xF "$path" >/dev/null || fail "$pkg: no $path in the .deb"
    done
    ok "$pkg: binary, unit, config, copyright, changelog and manual page are in place"
    if printf '%s\n' "$listing" | awk '{print $2}' | grep -vxF root/root >/dev/null; then
        fail "$pkg: files not owned by root/root"
    fi
    printf '%s\n' "$listing" | grep '^-rwxr-xr-x .*\./usr/bin/' >/dev/null || fail "$pkg: binary not 0755"
    expect "$pkg: conffiles" "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" "/etc/firstline/$conffile"
    # The maintainer scripts, as shipped, pass shellcheck.
    mkdir -p "$work/ctrl/$pkg"
    dpkg-deb -e "$deb" "$work/ctrl/$pkg"
    shellcheck -s sh "$work/ctrl/$pkg/postinst" "$work/ctrl/$pkg/prerm" "$work/ctrl/$pkg/postrm"
    ok "$pkg: postinst, prerm, postrm pass shellcheck"
}

step "dpkg-deb -I / -c firstline-collector"
check_deb "$collector_deb" firstline-collector collector.toml
step "dpkg-deb -I / -c firstline-agent"
check_deb "$agent_deb" firstline-agent agent.toml

step "lintian (fails on any error or warning; overrides: deploy/linux/debian/*.lintian-overrides)"
lintian --version
# (--show-overrides would make overridden warnings fail the run; the overrides are listed below.)
lintian --fail-on error,warning --display-info "$agent_deb" "$collector_deb"
ok "lintian: no errors, no warnings"
grep -h '^firstline-' "$here"/debian/*.lintian-overrides | sed 's/^/    overridden: /'

# --- inspect the .rpm ----------------------------------------------------------------------

# check_rpm RPM PACKAGE CONFFILE
check_rpm() {
    local rpm="$1" pkg="$2" conffile="$3" files
    rpm -qip "$rpm"
    files="$(rpm -qlp "$rpm")"
    printf '%s\n' "$files"
    rpm -qp --scripts "$rpm"
    expect "$pkg: rpm version" "$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$rpm")" "$version-1"
    expect "$pkg: rpm licence" "$(rpm -qp --qf '%{LICENSE}' "$rpm")" "Apache-2.0"
    for path in "/usr/bin/$pkg" "/usr/lib/systemd/system/$pkg.service" "/etc/firstline/$conffile" \
        "/usr/share/man/man1/$pkg.1.gz" "/usr/share/licenses/$pkg/LICENSE"; do
        printf '%s\n' "$files" | grep -xF "$path" >/dev/null || fail "$pkg: no $path in the .rpm"
    done
    ok "$pkg: binary, unit, config, licence and manual page are in place"
    rpm -qcp "$rpm" | grep -xF "/etc/firstline/$conffile" >/dev/null || fail "$pkg: $conffile is not %config"
    ok "$pkg: /etc/firstline/$conffile is %config(noreplace)"
    rpm -qp --requires "$rpm" | grep '^libc.so.6' >/dev/null || fail "$pkg: no automatic libc requirement"
    # Each scriptlet, as shipped, passes shellcheck.
    local tag
    for tag in PREIN POSTIN PREUN POSTUN; do
        rpm -qp --qf "%{$tag}" "$rpm" >"$work/$pkg.$tag"
        if [ "$(cat "$work/$pkg.$tag")" != "(none)" ]; then
            shellcheck -s sh "$work/$pkg.$tag"
        fi
    done
    ok "$pkg: scriptlets pass shellcheck"
}

step "rpm -qip / -qlp / --scripts firstline-collector"
check_rpm "$collector_rpm" firstline-collector collector.toml
rpm -qlp "$collector_rpm" | grep -xF /usr/lib/sysusers.d/firstline-collector.conf >/dev/null ||
    fail "firstline-collector: no sysusers.d entry in the .rpm"
step "rpm -qip / -qlp / --scripts firstline-agent"
check_rpm "$agent_rpm" firstline-agent agent.toml

step "rpmlint --strict (config: deploy/linux/rpm/rpmlint.toml)"
rpmlint --strict -c "$here/rpm/rpmlint.toml" "$agent_rpm" "$collector_rpm" | tee "$work/rpmlint.out"
grep -q ' 0 errors, 0 warnings' "$work/rpmlint.out" || fail "rpmlint reported problems"
ok "rpmlint: no errors, no warnings"

# --- the container's root file system ------------------------------------------------------

suite="${FIRSTLINE_TEST_SUITE:-bookworm}"
mirror="${FIRSTLINE_TEST_MIRROR:-http://deb.debian.org/debian}"
ct_packages=(systemd systemd-sysv dbus adduser procps man-db sqlite3)
cache=/var/cache/firstline-test
key="$(printf '%s\n' "$suite" "$mirror" "${ct_packages[@]}" | sha256sum | cut -c1-16)"
tarball="$cache/rootfs-$suite-$key.tar"

step "container root file system ($suite: ${ct_packages[*]})"
mkdir -p "$cache"
if [ -f "$tarball" ]; then
    ok "cached: $tarball"
else
    t0=$(date +%s)
    mmdebstrap --quiet --variant=apt --include="$(IFS=,; echo "${ct_packages[*]}")" \
        --format=tar "$suite" "$tarball.tmp" "$mirror"
    mv "$tarball.tmp" "$tarball"
    ok "made $tarball in $(($(date +%s) - t0))s"
fi
ct_root="$work/root"
mkdir "$ct_root"
tar -C "$ct_root" -xf "$tarball"
echo "$machine" >"$ct_root/etc/hostname"
mkdir -p "$ct_root/root/pkgs"
cp "$agent_deb" "$collector_deb" "$agent_deb2" "$collector_deb2" "$ct_root/root/pkgs/"

step "booting the container (systemd-nspawn --boot, private network)"
# No systemd-machined and no host systemd here to register with: --register=no --keep-unit.
systemd-nspawn --quiet --boot --directory="$ct_root" --machine="$machine" \
    --register=no --keep-unit --private-network --console=pipe \
    </dev/null >"$work/console.log" 2>&1 &
nspawn_pid=$!
container_leader() {
    leader="$(ps -o pid= --ppid "$nspawn_pid" | head -n1 | tr -d ' ')"
    [ -n "$leader" ] && [ "$(ps -o comm= -p "$leader")" = systemd ]
}
wait_for 30 "container init started" container_leader
wait_for 60 "the container's systemd is listening" in_ct test -S /run/systemd/private
state="$(timeout 120 nsenter --target "$leader" --all -- systemctl is-system-running --wait || true)"
case "$state" in
    running) ok "container system state: running" ;;
    degraded)
        ok "container system state: degraded (failed units below; none is ours)"
        in_ct systemctl --no-pager --failed
        ;;
    *) fail "container did not boot: system state '$state'" ;;
esac
expect "container host name" "$(in_ct hostname)" "$machine"

# --- the collector -------------------------------------------------------------------------

pkgs=/root/pkgs
data=/var/lib/firstline-collector
state_dir=/var/lib/firstline-agent

step "installing firstline-collector $version-1"
in_ct dpkg -i "$pkgs/$(basename "$collector_deb")" </dev/null
wait_for 30 "firstline-collector is active" in_ct systemctl is-active --quiet firstline-collector
in_ct systemctl is-enabled --quiet firstline-collector || fail "firstline-collector is not enabled"
ok "firstline-collector is enabled"
uid="$(in_ct id -u firstline)" || fail "no user firstline"
[ "$uid" -lt 1000 ] || fail "user firstline is not a system user (uid $uid)"
ok "system user firstline (uid $uid)"
collector_pid="$(in_ct systemctl show -P MainPID firstline-collector)"
expect "collector process runs as" "$(in_ct ps -o user= -p "$collector_pid")" firstline
wait_for 30 "the collector's CLI reaches the service (hosts, no flags)" in_ct firstline-collector hosts
expect "data directory owner and mode" "$(in_ct stat -c '%U %a' "$data")" "firstline 700"
in_ct test -f "$data/ca.crt" || fail "no CA in $data"

step "systemd-analyze verify (stderr must be empty)"
in_ct dpkg -i "$pkgs/$(basename "$agent_deb")" </dev/null >/dev/null
for unit in firstline-collector firstline-agent; do
    if ! in_ct systemd-analyze verify "/lib/systemd/system/$unit.service" 2>"$work/verify.err"; then
        cat "$work/verify.err" >&2
        fail "systemd-analyze verify $unit.service failed"
    fi
    if [ -s "$work/verify.err" ]; then
        cat "$work/verify.err" >&2
        fail "systemd-analyze verify $unit.service wrote to stderr"
    fi
    ok "systemd-analyze verify /lib/systemd/system/$unit.service: exit 0, empty stderr"
done
# Back to a machine without the agent, for the install with enrollment values below.
in_ct dpkg -P firstline-agent </dev/null >/dev/null

step "token create (the CLI finds the packaged data directory without flags)"
token="$(in_ct firstline-collector token create --label package-test --ttl 10m)"
case "$token" in flt_*) ok "token created" ;; *) fail "token create printed '$token'" ;; esac
foreign="$(in_ct find "$data" ! -user firstline)"
[ -z "$foreign" ] || fail "files in $data not owned by firstline after the CLI ran as root: $foreign"
ok "every file in $data is still owned by firstline"
in_ct cp "$data/ca.crt" /root/collector-ca.crt

# --- the agent -----------------------------------------------------------------------------

step "installing firstline-agent $version-1 with FIRSTLINE_COLLECTOR_URL, FIRSTLINE_ENROLL_TOKEN, FIRSTLINE_CA_FILE"
in_ct env FIRSTLINE_COLLECTOR_URL=https://127.0.0.1:7443 FIRSTLINE_ENROLL_TOKEN="$token" \
    FIRSTLINE_CA_FILE=/root/collector-ca.crt dpkg -i "$pkgs/$(basename "$agent_deb")" </dev/null
expect "agent.env owner and mode" "$(in_ct stat -c '%U %a' /etc/firstline/agent.env)" "root 600"
expect "agent.env" "$(in_ct grep -v '^#' /etc/firstline/agent.env)" \
    "$(printf 'FIRSTLINE_COLLECTOR_URL="https://127.0.0.1:7443"\nFIRSTLINE_ENROLL_TOKEN="%s"\nFIRSTLINE_CA_FILE="/etc/firstline/collector-ca.crt"' "$token")"
in_ct cmp /root/collector-ca.crt /etc/firstline/collector-ca.crt || fail "CA not copied to /etc/firstline"
ok "CA copied to /etc/firstline/collector-ca.crt"
in_ct systemctl is-enabled --quiet firstline-agent || fail "firstline-agent is not enabled"
ok "firstline-agent is enabled"

# Nobody runs `enroll`: the service enrolls with the values the package wrote.
wait_for 60 "the service enrolled by itself from agent.env" in_ct test -f "$state_dir/identity.toml"
wait_for 30 "firstline-agent is active" in_ct systemctl is-active --quiet firstline-agent
hosts_has_machine() { in_ct firstline-collector hosts | grep -w "$machine" >/dev/null; }
wait_for 60 "the agent's report arrived: 'firstline-collector hosts' lists $machine" hosts_has_machine
in_ct firstline-collector hosts
# What the service's probes report under the unit's sandbox, as the collector stored it.
host_facts() {
    in_ct firstline-collector hosts --json | /usr/bin/python3 -c '
import json, sys
machine, want = sys.argv[1], sys.argv[2:]
hosts = [h for h in json.load(sys.stdin) if h["hostname"] == machine]
if not hosts:
    sys.exit(f"{machine} not among the hosts")
h = hosts[0]
mounts = {f["mount_point"]: f["used_percent"] for f in h["filesystems"]}
problems = []
for path in want:
    path, _, minimum = path.partition(">=")
    if path not in mounts:
        problems.append(f"filesystem {path} not reported (reported: {sorted(mounts)})")
    elif minimum and mounts[path] < float(minimum):
        problems.append(f"filesystem {path} at {mounts[path]:.1f}%, expected >= {minimum}%")
patches = h.get("patches") or {}
if patches.get("package_manager") != "apt":
    problems.append(f"patch probe did not report apt: {patches}")
failing = h.get("probe_status")
if failing:
    problems.append(f"probes failing: {failing}")
if problems:
    sys.exit("; ".join(problems))
print(f"filesystems {sorted(mounts)}, package manager apt, no probe failing")
' "$machine" "$@"
}
# The service's view is read-only (ProtectSystem=strict; /home, on the same filesystem here,
# with it): / says "ro" in its namespace, its state directory "rw", and the probes report
# anyway.
agent_pid="$(in_ct systemctl show -P MainPID firstline-agent)"
# shellcheck disable=SC2016 # $5 and $6 are awk's fields
mount_options() { in_ct awk -v m="$2" '$5 == m { o = $6 } END { print o }' "/proc/$1/mountinfo"; }
expect "/ is read-only in the service's view" "$(mount_options "$agent_pid" / | cut -d, -f1)" ro
expect "$state_dir is writable in the service's view" \
    "$(mount_options "$agent_pid" "$state_dir" | cut -d, -f1)" rw
wait_for 30 "the service reports / and /tmp, apt's simulation and no probe failure" host_facts / /tmp
host_facts / /tmp

step "firstline-agent status without flags (the packaged config and state directory)"
in_ct firstline-agent status
status_json="$(in_ct firstline-agent status --json)"
status_field() { printf '%s' "$status_json" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
expect "status: state directory" "$(status_field state_dir)" "$state_dir"
expect "status: collector" "$(status_field collector_url)" "https://127.0.0.1:7443"
expect "status: agent id" "$(status_field agent_id)" \
    "$(in_ct sed -n 's/^agent_id = "\(.*\)"$/\1/p' "$state_dir/identity.toml")"

step "re-install firstline-agent $version-1 with a fresh token: the same identity, no second host"
identity_sums="$(in_ct sh -c "cd $state_dir && sha256sum agent.key agent.crt ca.crt identity.toml")"
agent_pid="$(in_ct systemctl show -P MainPID firstline-agent)"
token2="$(in_ct firstline-collector token create --label package-test-reinstall --ttl 10m)"
in_ct env FIRSTLINE_ENROLL_TOKEN="$token2" dpkg -i "$pkgs/$(basename "$agent_deb")" </dev/null
in_ct grep -qxF "FIRSTLINE_ENROLL_TOKEN=\"$token2\"" /etc/firstline/agent.env ||
    fail "agent.env does not hold the new token"
in_ct grep -qxF 'FIRSTLINE_COLLECTOR_URL="https://127.0.0.1:7443"' /etc/firstline/agent.env ||
    fail "agent.env lost the collector URL the re-install did not give"
ok "agent.env: the new token, the other values kept"
wait_for 30 "firstline-agent is active after the re-install" in_ct systemctl is-active --quiet firstline-agent
new_pid="$(in_ct systemctl show -P MainPID firstline-agent)"
[ "$new_pid" != "$agent_pid" ] || fail "agent not restarted by the re-install"
already_enrolled() {
    in_ct journalctl --no-pager _PID="$new_pid" | grep 'already enrolled; the enrollment values are ignored' >/dev/null
}
wait_for 30 "the restarted agent logs that it is already enrolled" already_enrolled
expect "identity files (sha256) after the re-install" \
    "$(in_ct sh -c "cd $state_dir && sha256sum agent.key agent.crt ca.crt identity.toml")" "$identity_sums"
hosts_named() { in_ct firstline-collector hosts --json | /usr/bin/python3 -c '
import json, sys
print(sum(h["hostname"] == sys.argv[1] for h in json.load(sys.stdin)))' "$machine"; }
expect "hosts named $machine" "$(hosts_named)" 1

step "SQLite online backup of the running collector (docs/operations.md)"
in_ct sqlite3 "$data/firstline.db" ".backup /root/firstline-backup.db"
expect "integrity of the backup" "$(in_ct sqlite3 /root/firstline-backup.db 'PRAGMA integrity_check')" ok
foreign="$(in_ct find "$data" ! -user firstline)"
[ -z "$foreign" ] || fail "files in $data not owned by firstline after the backup: $foreign"

# --- upgrade -------------------------------------------------------------------------------

step "upgrade to $version-2 with the collector down: config edit, identity and spool kept"
in_ct sed -i 's/^max_snapshots = 20000$/max_snapshots = 20001/' /etc/firstline/agent.toml
in_ct grep -qx 'max_snapshots = 20001' /etc/firstline/agent.toml || fail "config edit not made"
in_ct sed -i 's/^heartbeat = "1m"$/heartbeat = "2m"/' /etc/firstline/collector.toml
in_ct grep -qx 'heartbeat = "2m"' /etc/firstline/collector.toml || fail "collector config edit not made"
in_ct systemctl stop firstline-collector
# A filesystem past the thresholds under /home: the agent (ProtectHome=read-only) must see
# the new mount and report it at once, into its spool while the collector is down.
fill=/home/firstline-test-fill
in_ct mkdir -p "$fill"
in_ct mount -t tmpfs -o size=4m tmpfs "$fill"
in_ct dd if=/dev/zero of="$fill/blob" bs=64k count=61 status=none
spooled() { [ "$(in_ct firstline-agent status --json | sed -n 's/.*"spooled_snapshots": *\([0-9]*\).*/\1/p')" -ge "$1" ]; }
wait_for 30 "the agent spools while the collector is down" spooled 1
in_ct firstline-agent status
identity_sums="$(in_ct sh -c "cd $state_dir && sha256sum agent.key agent.crt ca.crt identity.toml")"
spool_sums="$(in_ct sh -c "cd $state_dir && find spool -name '*.pb' -exec sha256sum {} + | sort")"
[ -n "$spool_sums" ] || fail "no spooled snapshot files"
ca_sum="$(in_ct sha256sum "$data/ca.crt" "$data/ca.key")"
agent_pid="$(in_ct systemctl show -P MainPID firstline-agent)"

in_ct dpkg -i "$pkgs/$(basename "$agent_deb2")" </dev/null
expect "installed agent version" "$(in_ct dpkg-query -W -f "\${Version}" firstline-agent)" "$version-2"
wait_for 30 "firstline-agent is active after the upgrade" in_ct systemctl is-active --quiet firstline-agent
[ "$(in_ct systemctl show -P MainPID firstline-agent)" != "$agent_pid" ] || fail "agent not restarted by the upgrade"
ok "the agent was restarted onto the new package"
in_ct grep -qx 'max_snapshots = 20001' /etc/firstline/agent.toml || fail "the config edit was lost"
ok "config edit in /etc/firstline/agent.toml kept"
expect "identity files (sha256) after the upgrade" \
    "$(in_ct sh -c "cd $state_dir && sha256sum agent.key agent.crt ca.crt identity.toml")" "$identity_sums"
after="$(in_ct sh -c "cd $state_dir && find spool -name '*.pb' -exec sha256sum {} + | sort")"
missing_spool="$(comm -23 <(printf '%s\n' "$spool_sums") <(printf '%s\n' "$after"))"
[ -z "$missing_spool" ] || fail "spooled snapshots lost or changed by the upgrade: $missing_spool"
ok "all $(printf '%s\n' "$spool_sums" | wc -l) spooled snapshots kept, byte for byte"

in_ct dpkg -i "$pkgs/$(basename "$collector_deb2")" </dev/null
expect "installed collector version" "$(in_ct dpkg-query -W -f "\${Version}" firstline-collector)" "$version-2"
wait_for 30 "firstline-collector is active after the upgrade" in_ct systemctl is-active --quiet firstline-collector
in_ct grep -qx 'heartbeat = "2m"' /etc/firstline/collector.toml || fail "the collector config edit was lost"
ok "config edit in /etc/firstline/collector.toml kept"
expect "collector CA (sha256) after the upgrade" "$(in_ct sha256sum "$data/ca.crt" "$data/ca.key")" "$ca_sum"
spooled_none() { [ "$(in_ct firstline-agent status --json | sed -n 's/.*"spooled_snapshots": *\([0-9]*\).*/\1/p')" = 0 ]; }
wait_for 90 "the spool drains into the upgraded collector" spooled_none
ticket_for_fill() { in_ct firstline-collector tickets | grep " new .*$fill" >/dev/null; }
wait_for 60 "a disk ticket for $fill is open" ticket_for_fill
in_ct firstline-collector tickets
wait_for 30 "the upgraded agent still reports $fill past 95%" host_facts / "$fill>=95"
in_ct umount "$fill"

# --- remove and purge ----------------------------------------------------------------------

step "remove firstline-agent: service stopped, config and state kept"
in_ct dpkg -r firstline-agent </dev/null
expect "firstline-agent state" "$(in_ct systemctl is-active firstline-agent || true)" inactive
in_ct test ! -e /usr/bin/firstline-agent || fail "binary still there"
in_ct grep -qx 'max_snapshots = 20001' /etc/firstline/agent.toml || fail "config not kept on remove"
in_ct test -f "$state_dir/identity.toml" || fail "identity not kept on remove"
ok "binary gone; /etc/firstline/agent.toml (with the edit) and $state_dir kept"
expect "dpkg status" "$(in_ct dpkg-query -W -f "\${Status}" firstline-agent)" "deinstall ok config-files"

step "purge firstline-agent: state and config gone"
in_ct dpkg -P firstline-agent </dev/null
for path in /etc/firstline/agent.toml /etc/firstline/agent.env /etc/firstline/collector-ca.crt "$state_dir"; do
    in_ct test ! -e "$path" || fail "$path still there after purge"
done
ok "/etc/firstline/agent.toml, agent.env, collector-ca.crt and $state_dir gone"

step "remove and purge firstline-collector"
in_ct dpkg -r firstline-collector </dev/null
expect "firstline-collector state" "$(in_ct systemctl is-active firstline-collector || true)" inactive
in_ct test -f /etc/firstline/collector.toml || fail "collector config not kept on remove"
in_ct test -f "$data/ca.key" || fail "collector data not kept on remove"
ok "config and $data kept on remove"
in_ct dpkg -P firstline-collector </dev/null
for path in /etc/firstline "$data"; do
    in_ct test ! -e "$path" || fail "$path still there after purge"
done
ok "/etc/firstline and $data gone after purge"
