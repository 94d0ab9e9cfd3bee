#!/bin/sh
# build-msi.sh: builds firstline-agent.msi from firstline-agent.wxs with Debian's wixl
# (package wixl), around the agent built for Windows by the mingw-w64 toolchain
# (x86_64-pc-windows-gnu, profile release-agent). wixl ignores some WiX attributes and knows
# no failure-action or permission markup, so the same rows the full WiX toolset would write
# are added afterwards with msibuild (package msitools). deploy/windows/test-msi.sh checks the
# result; a Windows build machine builds and signs the MSI with the WiX toolset instead
# (docs/packaging-windows-macos.md).
#
# Usage: deploy/windows/build-msi.sh [--exe PATH] [--placeholder] [--out FILE]
#   --exe PATH      the agent executable (default: $CARGO_TARGET_DIR or target, then
#                   x86_64-pc-windows-gnu/release-agent/firstline-agent.exe, built if missing)
#   --placeholder   package a placeholder file instead of a real executable (table checks only)
#   --out FILE      where to write the MSI (default: dist/firstline-agent.msi)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
exe=""
placeholder=no
out=$root/dist/firstline-agent.msi

while [ $# -gt 0 ]; do
    case $1 in
        --exe) exe=$2; shift 2 ;;
        --placeholder) placeholder=yes; shift ;;
        --out) out=$2; shift 2 ;;
        *) echo "build-msi.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

for tool in wixl msibuild; do
    command -v "$tool" >/dev/null || {
        echo "build-msi.sh: $tool not found (apt-get install wixl msitools)" >&2
        exit 1
    }
done

# The MSI's ProductVersion: the workspace version (x.y.z).
version=$(sed -n 's/^version = "\([0-9.]*\)".*/\1/p' "$root/Cargo.toml" | head -n 1)
[ -n "$version" ] || { echo "build-msi.sh: no version in $root/Cargo.toml" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$placeholder" = yes ]; then
    exe=$work/firstline-agent.exe
    printf 'placeholder: not an executable; built by build-msi.sh --placeholder\n' >"$exe"
elif [ -z "$exe" ]; then
    exe=$target_dir/x86_64-pc-windows-gnu/release-agent/firstline-agent.exe
    if [ ! -f "$exe" ]; then
        (cd "$root" && cargo build --target x86_64-pc-windows-gnu --profile release-agent \
            -p firstline-agent)
    fi
fi
[ -f "$exe" ] || { echo "build-msi.sh: $exe does not exist" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
# wixl finds sources only by relative path: stage the payload next to each other.
mkdir -p "$work/stage"
cp "$exe" "$work/stage/firstline-agent.exe"
cp "$root/deploy/agent/agent.toml" "$work/stage/agent.toml"
(cd "$work/stage" && wixl -a x64 -D Wixl=1 -D "Version=$version" \
    -D AgentExe=firstline-agent.exe -D AgentToml=agent.toml \
    -o "$out" "$here/firstline-agent.wxs" 2>"$work/wixl.log") || {
    cat "$work/wixl.log" >&2
    exit 1
}
# wixl warns about every attribute it ignores; those are handled below, so only the rest shows.
grep -v -e "has no property named '\(Platform\|Secure\|Hidden\|NeverOverwrite\|Permanent\)'" \
    -e '^$' "$work/wixl.log" >&2 || true

# What the full WiX toolset writes from markup wixl ignores or lacks (see the file).
set --
while IFS= read -r query; do
    case $query in '' | --*) continue ;; esac
    set -- "$@" -q "$query"
done <"$here/wixl-additions.sql"
msibuild "$out" "$@"
# msibuild exits 0 even on a bad query: check the last table it should have made.
msiinfo tables "$out" | grep -qx LockPermissions || {
    echo "build-msi.sh: msibuild did not apply $here/wixl-additions.sql" >&2
    exit 1
}

echo "built $out (version $version, payload $exe)"
