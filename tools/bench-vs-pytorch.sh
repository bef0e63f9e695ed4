#!/usr/bin/env bash
# Layerwise against the paper's PyTorch code (anokland/local-loss's train.py, run unmodified from a
# fetched copy), side by side on this machine: the same model, loss, batch 128 and thread count,
# Fashion-MNIST, ROUNDS rounds alternating which goes first, medians of samples/s. Run it on a quiet
# machine (nothing else running), from a release build.
#   REF=/path/to/local-loss/train.py PY=/path/to/venv/bin/python BIN=.build-rel/release/layerwise \
#     tools/bench-vs-pytorch.sh vgg8b predsim
# PY needs torch and torchvision (the CPU wheel and `pip install --no-deps torchvision`).
# OURS_ARGS adds flags to our side (e.g. OURS_ARGS="--sim-output keep"; the reference, PyTorch's
# autograd, keeps every activation). VARIANTS="recompute keep" measures several settings of
# --sim-output in the same rounds (each round runs every variant and the reference); a variant
# may add "+bf16" (--precision bf16), "+direct" (LAYERWISE_CONV_ENGINE=dnnl: oneDNN's direct
# convolutions, no Winograd) or "+winograd" (LAYERWISE_CONV_ENGINE=dnnl-winograd), e.g.
# VARIANTS="keep+direct keep keep+bf16".
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-vgg8b} loss=${2:-predsim}
ref=${REF:?set REF to local-loss/train.py} py=${PY:-python3} bin=${BIN:-.build-rel/release/layerwise}
rounds=${ROUNDS:-5} steps=${STEPS:-20} threads=${THREADS:-2} data=${DATA:-data/fashion-mnist}
work=${WORK:-$(mktemp -d)}
read -r -a ours_args <<< "${OURS_ARGS:-}"
read -r -a variants <<< "${VARIANTS:-}"
case "$model/$loss" in
  mlp/backprop)  ref_args=(--model mlp --num-layers 3 --dropout 0.025 --backprop) ;;
  mlp/*)         ref_args=(--model mlp --num-layers 3 --dropout 0.025 --nonlin leakyrelu --loss-sup "$loss") ;;
  vgg8b/backprop) ref_args=(--model vgg8b --dropout 0.1 --backprop) ;;
  vgg8b/*)       ref_args=(--model vgg8b --dropout 0.1 --nonlin leakyrelu --dim-in-decoder 1024 --loss-sup "$loss") ;;
  *) echo "model mlp or vgg8b" >&2; exit 2 ;;
esac
ours() {  # $1: a variant (a --sim-output choice with +bf16, +direct or +winograd), or nothing
  local flags=() engine=()
  if [ -n "${1:-}" ]; then
    IFS=+ read -r -a parts <<< "$1"
    flags=(--sim-output "${parts[0]}")
    for p in "${parts[@]:1}"; do
      case $p in
        bf16) flags+=(--precision bf16) ;;
        direct) engine=(LAYERWISE_CONV_ENGINE=dnnl) ;;
        winograd) engine=(LAYERWISE_CONV_ENGINE=dnnl-winograd) ;;
        *) echo "unknown variant part $p in $1" >&2; exit 2 ;;
      esac
    done
  fi
  env ${engine[@]+"${engine[@]}"} "$bin" bench train ${flags[@]+"${flags[@]}"} --data "$data" --model "$model" --losses "$loss" --steps "$steps" --repeats 1 --threads "$threads" --json ${ours_args[@]+"${ours_args[@]}"} \
    | python3 -c 'import json, sys; print("%.3f" % json.load(sys.stdin)[0]["samplesPerSecond"])'
}
theirs() {
  OMP_NUM_THREADS=$threads "$py" tools/pytorch-reference-bench.py "$ref" "$work" --steps "$steps" --warmup 3 --threads "$threads" \
    -- "${ref_args[@]}" --dataset FashionMNIST --batch-size 128 --lr 5e-4 | awk '/^reference samples\/s/ { print $3 }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
if [ ${#variants[@]} -eq 0 ]; then
  o=() t=()
  for r in $(seq "$rounds"); do
    if [ $((r % 2)) -eq 1 ]; then o+=("$(ours)"); t+=("$(theirs)"); else t+=("$(theirs)"); o+=("$(ours)"); fi
    echo "round $r: layerwise ${o[-1]}  reference ${t[-1]} samples/s"
  done
  mo=$(median "${o[@]}") mt=$(median "${t[@]}")
  echo "$model $loss${OURS_ARGS:+ ($OURS_ARGS)}, batch 128, $threads threads, $steps steps, $rounds rounds: layerwise median $mo, reference median $mt samples/s, ratio $(awk -v a="$mo" -v b="$mt" 'BEGIN { printf "%.2f", a / b }')x"
  exit 0
fi
declare -A rates
t=()
for r in $(seq "$rounds"); do
  line="round $r:"
  if [ $((r % 2)) -eq 0 ]; then t+=("$(theirs)"); fi
  for v in "${variants[@]}"; do x=$(ours "$v"); rates[$v]+="$x "; line+=" layerwise $v $x"; done
  if [ $((r % 2)) -eq 1 ]; then t+=("$(theirs)"); fi
  echo "$line  reference ${t[-1]} samples/s"
done
mt=$(median "${t[@]}")
for v in "${variants[@]}"; do
  # shellcheck disable=SC2086
  mo=$(median ${rates[$v]})
  echo "$model $loss $v${OURS_ARGS:+ ($OURS_ARGS)}, batch 128, $threads threads, $steps steps, $rounds rounds: layerwise median $mo, reference median $mt samples/s, ratio $(awk -v a="$mo" -v b="$mt" 'BEGIN { printf "%.2f", a / b }')x"
done
