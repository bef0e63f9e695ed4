#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build in release and run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
swift build -c release --product layerwise
bin=.build/release/layerwise
$bin selfcheck
