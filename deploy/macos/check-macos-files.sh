#!/bin/sh
# check-macos-files.sh: checks the macOS packaging files on any machine (a .pkg itself can only
# be built on macOS, by build-pkg.sh): the launchd plist and the example MDM profile parse
# (Python's plistlib) and say what the daemon needs, the installer scripts pass shellcheck and
# `sh -n`, distribution.xml is well-formed and names the component package, and postinstall,
# run under a folder of its own with stand-ins for launchctl and plutil, writes [enrollment]
# from a managed preferences file or the environment, once (the built agent's check-config
# reads the result when `target/debug/firstline-agent` exists). Fails, naming every check
# that failed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
check() {
    what=$1
    shift
    if out=$("$@" 2>&1); then echo "ok: $what"; else
        echo "FAILED: $what" >&2
        printf '%s\n' "$out" | sed 's/^/    /' >&2
        failures=$((failures + 1))
    fi
}

check "com.firstline.agent.plist: a launchd daemon that keeps the agent running" python3 - "$here/com.firstline.agent.plist" <<'PY'
import plistlib, sys
with open(sys.argv[1], "rb") as f:
    p = plistlib.load(f)
assert p["Label"] == "com.firstline.agent", p["Label"]
assert p["RunAtLoad"] is True and p["KeepAlive"] is True, "RunAtLoad and KeepAlive"
args = p["ProgramArguments"]
assert args[0].endswith("/firstline-agent") and args[-1] == "run", args
assert "--config" in args and "--state-dir" in args, args
for key in ("StandardOutPath", "StandardErrorPath"):
    assert p[key].startswith("/Library/Logs/Firstline/"), (key, p[key])
PY
check "com.firstline.agent.mobileconfig: a profile with the keys postinstall reads" python3 - "$here/com.firstline.agent.mobileconfig" <<'PY'
import plistlib, sys
with open(sys.argv[1], "rb") as f:
    p = plistlib.load(f)
assert p["PayloadType"] == "Configuration"
payload = p["PayloadContent"][0]
assert payload["PayloadType"] == "com.firstline.agent", payload["PayloadType"]
for key in ("CollectorURL", "EnrollToken", "CACertificate"):
    assert isinstance(payload[key], str) and payload[key], key
PY
check "distribution.xml: well-formed, one hidden choice with the component package" python3 - "$here/distribution.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "installer-gui-script", root.tag
refs = [r.text for r in root.iter("pkg-ref") if r.text]
assert refs == ["com.firstline.agent.pkg"], refs
assert root.find("domains").get("enable_localSystem") == "true"
PY
for script in scripts/preinstall scripts/postinstall build-pkg.sh check-macos-files.sh; do
    check "$script: shellcheck" shellcheck "$here/$script"
    check "$script: sh -n" sh -n "$here/$script"
done
for script in scripts/preinstall scripts/postinstall; do
    check "$script: executable" test -x "$here/$script"
done

# Stand-ins: launchctl records its arguments; plutil -extract KEY raw -o - FILE via plistlib.
mkdir -p "$work/bin"
cat >"$work/bin/launchctl" <<'SH'
#!/bin/sh
echo "$*" >>"$FIRSTLINE_PKG_TEST_ROOT/launchctl.log"
SH
cat >"$work/bin/plutil" <<'SH'
#!/bin/sh
exec python3 -c 'import plistlib, sys
v = plistlib.load(open(sys.argv[2], "rb")).get(sys.argv[1])
sys.exit(1) if v is None else print(v)' "$2" "$6"
SH
chmod +x "$work/bin/launchctl" "$work/bin/plutil"

# A machine root with the package's files laid down; $2: the managed preferences (or none).
lay_down() {
    r=$1
    mkdir -p "$r/Library/Application Support/Firstline/share" "$r/Library/LaunchDaemons"
    cp "$repo/deploy/agent/agent.toml" "$r/Library/Application Support/Firstline/share/agent.toml"
    cp "$here/com.firstline.agent.plist" "$r/Library/LaunchDaemons/"
    if [ "$2" = managed ]; then
        mkdir -p "$r/Library/Managed Preferences"
        python3 - "$r/Library/Managed Preferences/com.firstline.agent.plist" <<'PY'
import plistlib, sys
values = {"CollectorURL": "https://mdm.example:7443", "EnrollToken": "flt_from_mdm",
          "CACertificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"}
with open(sys.argv[1], "wb") as f:
    plistlib.dump(values, f)
PY
    fi
}
postinstall() {
    FIRSTLINE_PKG_TEST_ROOT=$1 PATH="$work/bin:$PATH" sh "$here/scripts/postinstall"
}
support="Library/Application Support/Firstline"

lay_down "$work/mdm" managed
check "postinstall: runs with a managed preferences file" postinstall "$work/mdm"
check "postinstall: [enrollment] from the managed preferences" python3 - "$work/mdm/$support" <<'PY'
import sys, tomllib
d = sys.argv[1]
e = tomllib.load(open(d + "/agent.toml", "rb"))["enrollment"]
assert e == {"collector_url": "https://mdm.example:7443", "token": "flt_from_mdm",
             "ca_file": "/Library/Application Support/Firstline/ca.crt"}, e
assert open(d + "/ca.crt").read().startswith("-----BEGIN CERTIFICATE-----\nMIIB\n")
PY
check "postinstall: the daemon is bootstrapped" grep -qx "bootstrap system $work/mdm/Library/LaunchDaemons/com.firstline.agent.plist" "$work/mdm/launchctl.log"
cp "$work/mdm/$support/agent.toml" "$work/first.toml"
check "postinstall: a second run (upgrade) keeps the config" sh -c "
    FIRSTLINE_PKG_TEST_ROOT='$work/mdm' PATH='$work/bin:$PATH' sh '$here/scripts/postinstall' | grep -q 'already has \[enrollment\]' &&
    cmp '$work/first.toml' '$work/mdm/$support/agent.toml'"
agent=${CARGO_TARGET_DIR:-$repo/target}/debug/firstline-agent
if [ -x "$agent" ]; then
    check "postinstall: the agent reads the config it wrote" sh -c "
        '$agent' --config '$work/mdm/$support/agent.toml' --state-dir '$work/mdm/state' check-config |
        grep -q 'enrollment.collector_url = https://mdm.example:7443 (from enrollment.collector_url)'"
else
    echo "note: no $agent; the written config is checked with Python's tomllib only"
fi

lay_down "$work/env" none
check "postinstall: [enrollment] from the installer's environment" sh -c "
    FIRSTLINE_COLLECTOR_URL=https://env.example:7443 FIRSTLINE_ENROLL_TOKEN=flt_from_env \
    FIRSTLINE_CA_FILE=/etc/ca.crt FIRSTLINE_PKG_TEST_ROOT='$work/env' PATH='$work/bin:$PATH' \
    sh '$here/scripts/postinstall' >/dev/null &&
    grep -qx 'token = \"flt_from_env\"' '$work/env/$support/agent.toml' &&
    grep -qx 'ca_file = \"/etc/ca.crt\"' '$work/env/$support/agent.toml'"

lay_down "$work/enrolled" managed
mkdir -p "$work/enrolled/$support/state"
touch "$work/enrolled/$support/state/identity.toml"
check "postinstall: nothing written once enrolled" sh -c "
    FIRSTLINE_PKG_TEST_ROOT='$work/enrolled' PATH='$work/bin:$PATH' sh '$here/scripts/postinstall' | grep -q 'already enrolled' &&
    ! grep -q '^\\[enrollment\\]' '$work/enrolled/$support/agent.toml'"

if [ "$failures" -gt 0 ]; then
    echo "check-macos-files.sh: $failures check(s) failed" >&2
    exit 1
fi
echo "check-macos-files.sh: all checks passed"
