#!/usr/bin/env bash
# Runs a queue of long training runs (the accuracy runs of results/), PARALLEL at a time, each
# resumable: a run folder with a checkpoint continues with --resume, a finished one is skipped, so
# the queue can be stopped and started again. One line per run in QUEUE:
#   NAME  ARGUMENTS-OF-layerwise-train (without --run)
# Each run writes OUT/NAME/ (the run folder) and OUT/NAME.log; a finished run gets OUT/NAME/done.
#   BIN=.build-rel/release/layerwise OUT=runs/acc PARALLEL=2 tools/run-queue.sh queue.txt
set -euo pipefail
queue=${1:?usage: tools/run-queue.sh QUEUE-FILE}
export BIN=${BIN:-.build-rel/release/layerwise} OUT=${OUT:-runs/acc}
mkdir -p "$OUT"
grep -v -e '^#' -e '^[[:space:]]*$' "$queue" | xargs -P "${PARALLEL:-2}" -d '\n' -n 1 bash -c '
  set -u
  name=${0%% *} args=${0#* } run=$OUT/$name
  [ -f "$run/done" ] && exit 0
  resume=""
  [ -f "$run/checkpoint.safetensors" ] && resume="--resume"
  if $BIN train $args --quiet --run "$run" $resume >> "$run.log" 2>&1; then
    touch "$run/done"; echo "done $name"
  else
    echo "FAILED $name (see $run.log)"
  fi
'
