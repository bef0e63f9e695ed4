#!/usr/bin/env bash
# Runs the whole test suite (installs dependencies first). Long checks are opt-in:
#   LAYERWISE_LONG_TESTS=1   longer end-to-end runs
#   LAYERWISE_CGROUP_TESTS=1 the cgroup memory-cap proof (needs root and a writable cgroup)
# setup.sh installs Fashion-MNIST, so a test that needs it fails here instead of skipping.
# With Open MPI present (setup.sh installs it) the one build has the MPI trait, and the staged
# training tests (mpirun) fail instead of skipping; the build without the trait is compiled by
# tools/check-dependable.sh (the library products, MessagePassing's stub included).
# Last, tools/check-dependable.sh builds Examples/ against a tagged copy of the package (about
# 2 minutes: a release build of the library).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
export LAYERWISE_REQUIRE_DATA=1
traits=()
if pkg-config --exists ompi-c && command -v mpirun >/dev/null; then
  traits=(--traits MPI)
  export LAYERWISE_REQUIRE_MPI=1
fi
swift build --build-tests "${traits[@]}"
swift test --skip-build "$@"
# The package as a versioned dependency: Examples/ built in release against a copy tagged 0.1.0
# (a run of chosen tests, `tools/test.sh --filter ...`, leaves it out).
if [ $# -eq 0 ]; then tools/check-dependable.sh; else echo "check-dependable: left out (test arguments given)"; fi
