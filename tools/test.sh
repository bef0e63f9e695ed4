#!/usr/bin/env bash
# Runs the whole test suite (installs dependencies first). Long checks are opt-in:
#   LAYERWISE_LONG_TESTS=1   longer end-to-end runs
#   LAYERWISE_CGROUP_TESTS=1 the cgroup memory-cap proof (needs root and a writable cgroup)
# setup.sh installs Fashion-MNIST, so a test that needs it fails here instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
export LAYERWISE_REQUIRE_DATA=1
swift build --build-tests
swift test --skip-build "$@"
