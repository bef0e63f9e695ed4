#!/usr/bin/env bash
# The accuracy runs of results/lean-state.md: the MLP 3x1024 (the paper's Fashion-MNIST recipe,
# shortened to EPOCHS epochs with the milestones scaled), predsim and backprop, seeds 1-3, every
# optimizer state format (crop and flip), two runs at a time with one BLAS thread each. Prints one line per run:
# loss, format, seed, final test error (%).
#   BIN=.build-rel/release/layerwise DATA=data/fashion-mnist OUT=runs/lean tools/lean-state-accuracy.sh
set -euo pipefail
bin=${BIN:-.build-rel/release/layerwise}
data=${DATA:-data/fashion-mnist}
out=${OUT:-runs/lean}
epochs=${EPOCHS:-2}
milestones=${MILESTONES:-1}
mkdir -p "$out"
jobs=()
for seed in 1 2 3; do
  for loss in predsim backprop; do
    for format in fp32 int8 bf16; do
      jobs+=("$loss $format $seed")
    done
  done
done
printf '%s\n' "${jobs[@]}" | xargs -P "${PARALLEL:-2}" -L 1 bash -c '
  loss=$0 format=$1 seed=$2 run='"$out"'/$0-$1-s$2
  if [ ! -f "$run/done" ]; then
    '"$bin"' train --data '"$data"' --model mlp --loss $loss --epochs '"$epochs"' --milestones '"$milestones"' \
      --augment crop,flip --seed $seed --optimizer-state $format --threads 1 --quiet --run "$run" > "$run.log" 2>&1 && touch "$run/done"
  fi
  echo "$loss $format $seed $(tail -1 "$run/metrics.jsonl" | python3 -c "import json,sys; print(json.load(sys.stdin)[\"testError\"])")"
'
