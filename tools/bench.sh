#!/usr/bin/env bash
# Builds in release and runs the benchmarks (tables by default; pass --json for JSON).
# The machine is shared: figures are medians of several repeats, compare modes within one run.
# Add a line per area (bench shards, bench train) below.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product layerwise
bin=.build/release/layerwise
$bin bench foundation "$@"
