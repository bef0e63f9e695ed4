#!/usr/bin/env bash
# Proves that Layerwise can be depended upon by version, as another project would: copies this
# checkout's files (those git tracks or would track) into a new git repository, tags it 0.1.0,
# and builds Examples/ in release mode as a separate package whose manifest says
#     .package(url: "file://.../Layerwise", from: "0.1.0")
# then runs the example for one epoch on the tiny dataset it writes itself. A manifest with
# unsafe flags, a product that leaves out a module, or a dependency that does not resolve
# offline fails here. Called by tools/test.sh; works offline.
#   KEEP=1 tools/check-dependable.sh   keeps the temporary folder (printed) for a look
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/layerwise-dependable.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "check-dependable: keeping $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi
started=$SECONDS

# 1. The package, tagged 0.1.0 in a repository of its own.
package="$tmp/Layerwise"
mkdir -p "$package"
git ls-files -z --cached --others --exclude-standard \
  | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$package"
git -C "$package" init -q
git -C "$package" add -A
git -C "$package" -c user.name=check-dependable -c user.email=check-dependable@localhost commit -qm "Layerwise 0.1.0"
git -C "$package" tag 0.1.0

# 2. The example as a package of its own that asks for Layerwise by URL and version.
consumer="$tmp/Consumer"
mkdir -p "$consumer"
cp -R "$root/Examples/Sources" "$consumer/Sources"
cat > "$consumer/Package.swift" <<MANIFEST
// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Consumer",
    dependencies: [
        .package(url: "file://$package", from: "0.1.0"),
    ],
    targets: [
        .executableTarget(name: "TrainMLP", dependencies: [.product(name: "Layerwise", package: "Layerwise"),
                                                           // built without the MPI trait: the stub that refuses --stages
                                                           .product(name: "LayerwiseStages", package: "Layerwise")]),
    ],
    swiftLanguageModes: [.v5]
)
MANIFEST

build_started=$SECONDS
swift build -c release --package-path "$consumer" 2>&1 | grep -E "error|warning: .*unsafe|Compiling TrainMLP|Build complete|Resolved|Fetching|Computing" || true
[ -x "$consumer/.build/release/TrainMLP" ] || { echo "check-dependable: FAILED, the example did not build against Layerwise 0.1.0"; exit 1; }
build_seconds=$((SECONDS - build_started))
# The dependency resolved as the tagged version (not a branch or a bare revision).
resolved=$(sed -n '/"identity" : "layerwise"/,/}/p' "$consumer/Package.resolved" | grep -o '"version" : "[^"]*"' | cut -d'"' -f4 || true)
[ "$resolved" = 0.1.0 ] || { echo "check-dependable: FAILED, Layerwise resolved as '${resolved}', not version 0.1.0"; exit 1; }

# 3. A short run: one epoch on the synthetic dataset the example writes.
output=$(EPOCHS=1 "$consumer/.build/release/TrainMLP" 2>&1) || { echo "$output"; echo "check-dependable: FAILED, the example did not run"; exit 1; }
echo "$output" | tail -4
echo "$output" | grep -q "^epoch 1/1 " || { echo "$output"; echo "check-dependable: FAILED, no epoch finished"; exit 1; }
echo "$output" | grep -q "^ledger peak " || { echo "$output"; echo "check-dependable: FAILED, no memory summary"; exit 1; }
echo "check-dependable: ok, Layerwise $resolved as a versioned dependency (release build ${build_seconds}s, all $((SECONDS - started))s)"
