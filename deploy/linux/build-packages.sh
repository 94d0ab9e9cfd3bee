#!/usr/bin/env bash
# Builds the Linux packages of Firstline from binaries that are already built: .deb (with
# dpkg-deb) and .rpm (with rpmbuild and deploy/linux/rpm/*.spec) of firstline-agent and
# firstline-collector. Nothing is compiled here; the binaries come from
#   cargo build --locked --profile release-agent -p firstline-agent   (target/release-agent/)
#   cargo build --locked --release -p firstline-collector             (target/release/)
# or from any other build given with --agent-bin / --collector-bin (scripts/test.sh packages
# the test run's target/debug binaries). The packaged copies are stripped.
# The version is the workspace's (Cargo.toml [workspace.package]); --revision sets the
# package revision (Debian revision, RPM release). Used by deploy/linux/test-packages.sh;
# docs/packaging.md describes the packages.
#
# Usage: deploy/linux/build-packages.sh [--agent-bin PATH] [--collector-bin PATH]
#          [--out DIR] [--revision N] [--formats deb,rpm] [--fast]
# --fast compresses with xz level 1 instead of the tools' defaults (dpkg-deb: xz 6), for
#   test builds: the packages are the same but larger, and built in a fraction of the time.
# Environment: FIRSTLINE_AGENT_BIN, FIRSTLINE_COLLECTOR_BIN, FIRSTLINE_PACKAGE_OUT,
#   FIRSTLINE_PACKAGE_REVISION, FIRSTLINE_PACKAGE_MAINTAINER, SOURCE_DATE_EPOCH.
# Needs dpkg-deb and dpkg-shlibdeps (dpkg-dev) for .deb, rpmbuild (rpm) for .rpm, strip
# (binutils).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"

agent_bin="${FIRSTLINE_AGENT_BIN:-$target/release-agent/firstline-agent}"
collector_bin="${FIRSTLINE_COLLECTOR_BIN:-$target/release/firstline-collector}"
out="${FIRSTLINE_PACKAGE_OUT:-$target/packages}"
revision="${FIRSTLINE_PACKAGE_REVISION:-1}"
formats="deb,rpm"
fast=0
maintainer="${FIRSTLINE_PACKAGE_MAINTAINER:-Firstline developers <packages@firstline.dev>}"
homepage="https://github.com/firstline/firstline"

usage() {
    sed -n '/^# Usage:/,/^# Needs/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --agent-bin) agent_bin="$2"; shift 2 ;;
        --collector-bin) collector_bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --revision) revision="$2"; shift 2 ;;
        --formats) formats="$2"; shift 2 ;;
        --fast) fast=1; shift ;;
        -h | --help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done

die() {
    echo "build-packages: $*" >&2
    exit 1
}

for bin in "$agent_bin" "$collector_bin"; do
    [ -x "$bin" ] || die "no executable at $bin (build it first, see the top of this script)"
done
case "$revision" in
    '' | *[!0-9]*) die "--revision must be a number, got '$revision'" ;;
esac

version="$(sed -n '/^\[workspace\.package\]/,/^\[/ s/^version *= *"\([^"]*\)".*/\1/p' "$repo/Cargo.toml")"
[ -n "$version" ] || die "no version in [workspace.package] of $repo/Cargo.toml"

# File times and changelog dates: the last commit's, so a rebuild of the same tree gives the
# same packages.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH="$(git -C "$repo" log -1 --format=%ct 2>/dev/null || stat -c %Y "$repo/Cargo.toml")"
fi
export SOURCE_DATE_EPOCH

mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Stripped copies of the binaries: the release builds are stripped already (a no-op then); a
# debug build loses its debug information and symbols, as lintian wants of a package.
command -v strip >/dev/null || die "strip is missing (apt-get install binutils)"
mkdir -p "$work/bin"
for name in agent collector; do
    var="${name}_bin"
    cp "${!var}" "$work/bin/firstline-$name"
    strip --strip-all "$work/bin/firstline-$name"
    printf -v "$var" '%s' "$work/bin/firstline-$name"
done

want() {
    case ",$formats," in *",$1,"*) return 0 ;; *) return 1 ;; esac
}

# --- .deb ------------------------------------------------------------------------------

# The shared-library dependencies of a binary, as dpkg-shlibdeps computes them.
shlibs_of() {
    local bin="$1" dir="$work/shlibs"
    mkdir -p "$dir/debian"
    printf 'Source: firstline\n\nPackage: firstline\nArchitecture: any\n' >"$dir/debian/control"
    (cd "$dir" && dpkg-shlibdeps -O -e "$bin" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
}

debian_changelog() {
    local pkg="$1" date
    date="$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
    cat <<EOF
$pkg ($version-$revision) unstable; urgency=medium

  * Package of Firstline $version.

 -- $maintainer  $date
EOF
}

# build_deb PACKAGE BINARY UNIT CONFIG_SOURCE CONFIG_NAME EXTRA_DEPENDS SUMMARY LONG_DESCRIPTION
build_deb() {
    local pkg="$1" bin="$2" unit="$3" conf_src="$4" conf_name="$5" extra_depends="$6"
    local summary="$7" long="$8"
    local root="$work/deb/$pkg" arch depends size
    arch="$(dpkg --print-architecture)"
    mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/firstline" \
        "$root/usr/share/doc/$pkg" "$root/usr/share/man/man1"
    install -m 0755 "$bin" "$root/usr/bin/$pkg"
    install -m 0644 "$unit" "$root/lib/systemd/system/$pkg.service"
    install -m 0644 "$conf_src" "$root/etc/firstline/$conf_name"
    install -m 0644 "$here/debian/copyright" "$root/usr/share/doc/$pkg/copyright"
    debian_changelog "$pkg" | gzip -9n >"$root/usr/share/doc/$pkg/changelog.Debian.gz"
    gzip -9n <"$here/${pkg#firstline-}/$pkg.1" >"$root/usr/share/man/man1/$pkg.1.gz"
    if [ -f "$here/debian/$pkg.lintian-overrides" ]; then
        mkdir -p "$root/usr/share/lintian/overrides"
        install -m 0644 "$here/debian/$pkg.lintian-overrides" "$root/usr/share/lintian/overrides/$pkg"
    fi

    for script in postinst prerm postrm; do
        # The enrollment fragment replaces its marker line (agent postinst only).
        awk -v fragment="$here/common/agent-enrollment-env.sh" '
            /^#FIRSTLINE_ENROLLMENT_ENV#$/ { while ((getline line < fragment) > 0) print line; next }
            { print }' "$here/debian/$pkg.$script" >"$root/DEBIAN/$script"
        chmod 0755 "$root/DEBIAN/$script"
    done
    echo "/etc/firstline/$conf_name" >"$root/DEBIAN/conffiles"

    depends="$(shlibs_of "$bin")"
    [ -n "$depends" ] || die "dpkg-shlibdeps found no dependencies of $bin"
    if [ -n "$extra_depends" ]; then depends="$depends, $extra_depends"; fi
    size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
    {
        echo "Package: $pkg"
        echo "Version: $version-$revision"
        echo "Architecture: $arch"
        echo "Maintainer: $maintainer"
        echo "Installed-Size: $size"
        echo "Depends: $depends"
        echo "Section: admin"
        echo "Priority: optional"
        echo "Homepage: $homepage"
        echo "Description: $summary"
        printf '%s\n' "$long" | fold -s -w 78 | sed 's/ *$//; s/^/ /'
    } >"$root/DEBIAN/control"
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z \
        | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
    chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
    find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

    local deb="$out/${pkg}_${version}-${revision}_${arch}.deb"
    local level=()
    if [ "$fast" = 1 ]; then level=(-z1); fi
    dpkg-deb --root-owner-group -Zxz "${level[@]}" --build "$root" "$deb" >/dev/null
    echo "$deb"
}

# --- .rpm ------------------------------------------------------------------------------

rpm_changelog() {
    local date
    date="$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %d %Y')"
    printf '* %s %s - %s-%s\n- Package of Firstline %s.\n' \
        "$date" "$maintainer" "$version" "$revision" "$version"
}

# build_rpm PACKAGE SOURCE_FILES...
build_rpm() {
    local pkg="$1"
    shift
    local top="$work/rpm/$pkg"
    mkdir -p "$top/SOURCES" "$top/BUILD" "$top/RPMS" "$top/SPECS" "$top/BUILDROOT"
    cp "$@" "$top/SOURCES/"
    rpm_changelog >"$top/SOURCES/changelog"
    local payload=()
    if [ "$fast" = 1 ]; then payload=(--define "_binary_payload w1.xzdio"); fi
    rpmbuild -bb --quiet "${payload[@]}" \
        --define "_topdir $top" \
        --define "_sourcedir $top/SOURCES" \
        --define "_rpmdir $top/RPMS" \
        --define "_build_id_links none" \
        --define "fl_version $version" \
        --define "fl_release $revision" \
        --define "fl_url $homepage" \
        --define "fl_packager $maintainer" \
        --define "use_source_date_epoch_as_buildtime 1" \
        --define "clamp_mtime_to_source_date_epoch 1" \
        "$here/rpm/$pkg.spec" >"$work/rpmbuild-$pkg.log" 2>&1 ||
        { cat "$work/rpmbuild-$pkg.log" >&2; die "rpmbuild of $pkg failed"; }
    local rpm
    rpm="$(find "$top/RPMS" -name "$pkg-$version-$revision.*.rpm" | head -n1)"
    [ -n "$rpm" ] || die "rpmbuild made no $pkg rpm (log: $(cat "$work/rpmbuild-$pkg.log"))"
    cp "$rpm" "$out/"
    echo "$out/$(basename "$rpm")"
}

agent_summary="Firstline endpoint agent: reports this machine's health"
agent_long="The Firstline agent measures disk usage, patch level, antivirus status and network connectivity of this machine and reports them over gRPC with mutual TLS to a Firstline collector, which turns problems into tickets. It runs as the systemd service firstline-agent and enrolls by itself with the values given at install time."
collector_summary="Firstline collector: fleet state and tickets from Firstline agents"
collector_long="The Firstline collector enrolls Firstline agents, receives their reports over gRPC with mutual TLS, keeps the fleet's state in SQLite or PostgreSQL and turns problems into tickets that deduplicate and resolve themselves. It runs as the systemd service firstline-collector under the system user firstline; its command line manages tokens, hosts and tickets."

if want deb; then
    command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (apt-get install dpkg)"
    command -v dpkg-shlibdeps >/dev/null || die "dpkg-shlibdeps is missing (apt-get install dpkg-dev)"
    build_deb firstline-agent "$agent_bin" "$here/agent/firstline-agent.service" \
        "$repo/deploy/agent/agent.toml" agent.toml "" "$agent_summary" "$agent_long"
    build_deb firstline-collector "$collector_bin" "$here/collector/firstline-collector.service" \
        "$repo/deploy/collector/collector.toml" collector.toml "adduser" \
        "$collector_summary" "$collector_long"
fi

if want rpm; then
    command -v rpmbuild >/dev/null || die "rpmbuild is missing (apt-get install rpm)"
    build_rpm firstline-agent "$agent_bin" "$here/agent/firstline-agent.service" \
        "$repo/deploy/agent/agent.toml" "$here/agent/firstline-agent.1" \
        "$here/common/agent-enrollment-env.sh" "$repo/LICENSE"
    build_rpm firstline-collector "$collector_bin" \
        "$here/collector/firstline-collector.service" "$here/collector/firstline-collector.sysusers" \
        "$repo/deploy/collector/collector.toml" "$here/collector/firstline-collector.1" \
        "$repo/LICENSE"
fi
