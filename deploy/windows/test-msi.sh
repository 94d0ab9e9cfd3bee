#!/bin/sh
# test-msi.sh: checks the tables of firstline-agent.msi with msiinfo (package msitools): the
# service (automatic, LocalSystem, `service` subcommand, failure actions), its control on
# install and uninstall, the major upgrade with the stable UpgradeCode, the enrollment
# properties and the service environment they go into, the config kept on upgrade, the data
# folder's ACL, and the payload (msiextract). Fails, naming every check that failed.
#
# Usage: deploy/windows/test-msi.sh [MSI]
#   Without MSI, builds one with build-msi.sh (the real executable when it is built, else a
#   placeholder) into a temporary folder.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

msi=${1:-}
if [ -z "$msi" ]; then
    msi=$work/firstline-agent.msi
    exe=${CARGO_TARGET_DIR:-$root/target}/x86_64-pc-windows-gnu/release-agent/firstline-agent.exe
    if [ -f "$exe" ]; then
        "$here/build-msi.sh" --exe "$exe" --out "$msi"
    else
        "$here/build-msi.sh" --placeholder --out "$msi"
    fi
fi
[ -f "$msi" ] || { echo "test-msi.sh: $msi does not exist" >&2; exit 1; }

failures=0
pass() { echo "ok: $1"; }
fail() { echo "FAILED: $1" >&2; failures=$((failures + 1)); }

# The rows of TABLE (header lines dropped), tab-separated, without the export's CRs.
rows() { msiinfo export "$msi" "$1" 2>/dev/null | tr -d '\r' | tail -n +4; }

# expect DESCRIPTION TABLE EXTENDED-REGEX: some row of TABLE matches.
expect() {
    if rows "$2" | grep -Eq -- "$3"; then pass "$1"; else
        fail "$1: no row of $2 matches /$3/"
        rows "$2" | sed 's/^/    /' >&2
    fi
}

tab=$(printf '\t')
upgrade_code=$(sed -n 's/.*UpgradeCode="\([0-9A-F-]*\)".*/\1/p' "$here/firstline-agent.wxs")
[ -n "$upgrade_code" ] || fail "no UpgradeCode in firstline-agent.wxs"

# ServiceType 16 own process, StartType 2 automatic, ErrorControl 1 normal.
expect "service installed: automatic, LocalSystem, runs 'service' with the ProgramData config" \
    ServiceInstall "^AgentService${tab}FirstlineAgent${tab}Firstline Agent${tab}16${tab}2${tab}1${tab}${tab}${tab}LocalSystem${tab}${tab}--config \"\\[DATADIR\\]agent.toml\" --state-dir \"\\[DATADIR\\]state\" service${tab}AgentExe"
# 163 = start on install (1) + stop on install (2) + stop on uninstall (32) + delete on uninstall (128).
expect "service started on install, stopped and removed on uninstall (event 163, wait)" \
    ServiceControl "^AgentServiceControl${tab}FirstlineAgent${tab}163${tab}${tab}1${tab}AgentExe$"
expect "failure actions: restart, restart, restart after 60 s, reset after a day" \
    MsiServiceConfigFailureActions "${tab}FirstlineAgent${tab}5${tab}86400${tab}${tab}${tab}1\\[~\\]1\\[~\\]1${tab}5000\\[~\\]5000\\[~\\]60000${tab}AgentExe$"
expect "failure actions also on a non-zero exit code" \
    MsiServiceConfig "${tab}FirstlineAgent${tab}5${tab}4${tab}1${tab}AgentExe$"
for action in InstallServices MsiConfigureServices StartServices StopServices DeleteServices RemoveExistingProducts; do
    expect "InstallExecuteSequence runs $action" InstallExecuteSequence "^${action}${tab}"
done

expect "stable UpgradeCode" Property "^UpgradeCode${tab}\\{${upgrade_code}\\}$"
expect "major upgrade: older versions detected and removed" \
    Upgrade "^\\{${upgrade_code}\\}${tab}${tab}[0-9.]+${tab}${tab}1${tab}${tab}WIX_UPGRADE_DETECTED$"
expect "downgrades detected (and refused)" \
    Upgrade "^\\{${upgrade_code}\\}${tab}[0-9.]+${tab}${tab}${tab}2${tab}${tab}WIX_DOWNGRADE_DETECTED$"
expect "per-machine install" Property "^ALLUSERS${tab}1$"
expect "enrollment properties are secure (reach the elevated install)" \
    Property "^SecureCustomProperties${tab}.*COLLECTOR_URL;ENROLL_TOKEN;CA_FILE"
expect "the token is hidden from the installer log" Property "^MsiHiddenProperties${tab}ENROLL_TOKEN$"

# Root 2 = HKLM; "[~]" separates the strings of the REG_MULTI_SZ.
expect "enrollment properties go into the service's environment" \
    Registry "${tab}2${tab}SYSTEM\\\\CurrentControlSet\\\\Services\\\\FirstlineAgent${tab}Environment${tab}\\[~\\]FIRSTLINE_COLLECTOR_URL=\\[COLLECTOR_URL\\]\\[~\\]FIRSTLINE_ENROLL_TOKEN=\\[ENROLL_TOKEN\\]\\[~\\]FIRSTLINE_CA_FILE=\\[CA_FILE\\]\\[~\\]${tab}AgentEnvironment$"

expect "the executable goes to Program Files\\Firstline" Directory "^INSTALLDIR${tab}ProgramFiles64Folder${tab}Firstline$"
expect "the config goes to ProgramData\\Firstline" Directory "^DATADIR${tab}CommonAppDataFolder${tab}Firstline$"
expect "firstline-agent.exe is installed" File "^AgentExeFile${tab}AgentExe${tab}firstline-agent.exe${tab}"
expect "agent.toml is installed" File "^AgentTomlFile${tab}AgentConfig${tab}agent.toml${tab}"
# 400 = Win64 (256) + NeverOverwrite (128) + Permanent (16).
expect "agent.toml is never overwritten nor removed" Component "^AgentConfig${tab}\\{[0-9A-F-]+\\}${tab}DATADIR${tab}400${tab}"
expect "ProgramData\\Firstline: SYSTEM has full access" LockPermissions "^DATADIR${tab}CreateFolder${tab}${tab}SYSTEM${tab}268435456$"
expect "ProgramData\\Firstline: Administrators have full access" LockPermissions "^DATADIR${tab}CreateFolder${tab}${tab}Administrators${tab}268435456$"

if [ -z "$(rows CustomAction)" ]; then pass "no custom actions (enrollment is the service's own)"; else
    fail "unexpected custom actions:"
    rows CustomAction >&2
fi

# The payload: a real x86-64 Windows executable, unless this MSI was built with a placeholder.
mkdir -p "$work/extract"
(cd "$work/extract" && msiextract "$msi" >/dev/null)
exe=$(find "$work/extract" -name firstline-agent.exe | head -n 1)
toml=$(find "$work/extract" -name agent.toml | head -n 1)
if [ -n "$toml" ] && cmp -s "$toml" "$root/deploy/agent/agent.toml"; then
    pass "agent.toml is deploy/agent/agent.toml"
else
    fail "agent.toml in the MSI differs from deploy/agent/agent.toml (or is missing)"
fi
if [ -z "$exe" ]; then
    fail "firstline-agent.exe not extracted"
elif grep -q '^placeholder:' "$exe"; then
    echo "note: the payload is a placeholder (no Windows build of the agent)"
elif file "$exe" | grep -q 'PE32+ executable.*x86-64'; then
    pass "firstline-agent.exe is a PE32+ x86-64 executable ($(wc -c <"$exe") bytes)"
else
    fail "firstline-agent.exe is not a PE32+ x86-64 executable: $(file -b "$exe")"
fi

if [ "$failures" -gt 0 ]; then
    echo "test-msi.sh: $failures check(s) failed for $msi" >&2
    exit 1
fi
echo "test-msi.sh: all checks passed for $msi"
