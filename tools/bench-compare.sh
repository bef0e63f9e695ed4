#!/usr/bin/env bash
# Side-by-side training speed of two `layerwise` binaries (e.g. the previous main's and this
# tree's release builds) on one machine in one run: rounds alternate A and B so that load from
# elsewhere falls on both, and the table gives each binary's median samples/s and B / A.
#   tools/bench-compare.sh OLD_BIN NEW_BIN [ROUNDS]     (default 5 rounds)
# Cases: mlp 3x1024 predsim and backprop, vgg8b at a quarter width predsim (batch 128).
# Needs data/fashion-mnist (tools/bench.sh or tools/demo.sh converts it).
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1 b=$2 rounds=${3:-5}
data=${DATA:-data/fashion-mnist}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cases=("mlp|--losses predsim,backprop --steps 30 --repeats 1"
       "vgg8b|--model vgg8b --feat-mult 0.25 --losses predsim --steps 3 --repeats 1")
for ((r = 0; r < rounds; r++)); do
  for c in "${cases[@]}"; do
    name=${c%%|*} args=${c#*|}
    for side in A B; do
      bin=$a; [ $side = B ] && bin=$b
      # shellcheck disable=SC2086
      "$bin" bench train --data "$data" $args --json 2>/dev/null > "$out/$name-$side-$r.json"
    done
  done
done
python3 - "$out" "$rounds" "$a" "$b" <<'PY'
import json, statistics, sys, glob, os
out, rounds, a, b = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rates = {}
for path in glob.glob(os.path.join(out, "*.json")):
    name, side, _ = os.path.basename(path)[:-5].split("-")
    for entry in json.load(open(path)):
        rates.setdefault((name, entry["loss"]), {}).setdefault(side, []).append(entry["samplesPerSecond"])
print(f"A = {a}\nB = {b}\n{rounds} alternating rounds, median samples/s\n")
print(f"{'case':<22}{'A':>10}{'B':>10}{'B / A':>8}")
for (name, loss), sides in sorted(rates.items()):
    ma, mb = statistics.median(sides["A"]), statistics.median(sides["B"])
    print(f"{name + ' ' + loss:<22}{ma:>10.1f}{mb:>10.1f}{mb / ma:>8.3f}")
PY
