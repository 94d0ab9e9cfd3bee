#!/bin/sh
# build-pkg.sh: builds firstline-agent.pkg on a macOS build machine (pkgbuild and productbuild
# come with the Xcode command line tools). A universal binary (x86_64 + arm64, joined with
# lipo) goes to /Library/Application Support/Firstline/bin, the default config to .../share
# (postinstall copies it once into place), the launchd daemon to /Library/LaunchDaemons.
# Signing: set PKG_SIGN_IDENTITY ("Developer ID Installer: ..."); notarize the result with
# `xcrun notarytool submit --wait` and `xcrun stapler staple` (docs/packaging-windows-macos.md).
#
# Usage: deploy/macos/build-pkg.sh [--out FILE]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
out=$root/dist/firstline-agent.pkg
[ "${1:-}" = --out ] && out=$2

[ "$(uname -s)" = Darwin ] || { echo "build-pkg.sh: needs macOS (pkgbuild, productbuild)" >&2; exit 1; }
version=$(sed -n 's/^version = "\([0-9.]*\)".*/\1/p' "$root/Cargo.toml" | head -n 1)

for target in x86_64-apple-darwin aarch64-apple-darwin; do
    (cd "$root" && cargo build --target "$target" --profile release-agent -p firstline-agent)
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
payload=$work/root
install -d "$payload/Library/Application Support/Firstline/bin" \
    "$payload/Library/Application Support/Firstline/share" "$payload/Library/LaunchDaemons"
lipo -create -output "$payload/Library/Application Support/Firstline/bin/firstline-agent" \
    "$target_dir/x86_64-apple-darwin/release-agent/firstline-agent" \
    "$target_dir/aarch64-apple-darwin/release-agent/firstline-agent"
install -m 0644 "$root/deploy/agent/agent.toml" "$payload/Library/Application Support/Firstline/share/agent.toml"
install -m 0644 "$here/com.firstline.agent.plist" "$payload/Library/LaunchDaemons/com.firstline.agent.plist"

pkgbuild --root "$payload" --scripts "$here/scripts" --identifier com.firstline.agent \
    --version "$version" --install-location / --ownership recommended \
    "$work/com.firstline.agent.pkg"
sed "s/version=\"0\"/version=\"$version\"/" "$here/distribution.xml" >"$work/distribution.xml"
mkdir -p "$(dirname "$out")"
if [ -n "${PKG_SIGN_IDENTITY:-}" ]; then
    productbuild --distribution "$work/distribution.xml" --package-path "$work" \
        --sign "$PKG_SIGN_IDENTITY" "$out"
else
    productbuild --distribution "$work/distribution.xml" --package-path "$work" "$out"
fi
echo "built $out (version $version)"
