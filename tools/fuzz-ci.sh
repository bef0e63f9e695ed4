#!/usr/bin/env bash
# CI's fuzzing step: builds every libFuzzer harness (tools/fuzz.sh) and runs each for
# FUZZ_SECONDS (default 60) from the committed seeds. Fails on any crash, hang, leak or
# sanitizer report, printing the reproducer's path; copy it into a regression test.
# Takes 8 targets x FUZZ_SECONDS plus the build: the build from nothing measured 264 s wall (116 s
# of CPU, one core, with another fuzzer running), so about 10-12 minutes at 60 s a target and
# 6-8 minutes with FUZZ_SECONDS=30 on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export FUZZ_BUILD=${FUZZ_BUILD:-.build-fuzz}
start=$(date +%s)
nice -n 19 tools/fuzz.sh build
built=$(date +%s)
status=0
nice -n 19 tools/fuzz.sh all "${FUZZ_SECONDS:-60}" || status=$?
echo "fuzz-ci: build $((built - start)) s, runs $(( $(date +%s) - built )) s, status $status"
exit $status
