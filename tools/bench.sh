#!/usr/bin/env bash
# Builds in release and runs every benchmark: GEMM and ledger overhead, shard decoding and the
# loader, and training steps (mlp, local vs backprop; vgg8b at a quarter width).
# The machine is shared: figures are medians of several repeats; compare modes within one run.
#   tools/bench.sh            # all
#   tools/bench.sh quick      # fewer repeats
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
swift build -c release --product layerwise
bin=.build/release/layerwise
src=/usr/share/datasets/fashion-mnist
data=data/fashion-mnist
repeats=5
[ "${1:-}" = quick ] && repeats=2
if [ ! -f "$data/manifest.json" ]; then
  $bin shards convert idx --images $src/train-images-idx3-ubyte.gz --labels $src/train-labels-idx1-ubyte.gz --split train --out $data
  $bin shards convert idx --images $src/t10k-images-idx3-ubyte.gz --labels $src/t10k-labels-idx1-ubyte.gz --split test --out $data
fi
echo "== foundation";  $bin bench foundation --repeats $repeats
echo "== shards";      $bin shards bench $data
echo "== train mlp";   $bin bench train --data $data --repeats $repeats
echo "== train vgg8b"; $bin bench train --data $data --model vgg8b --feat-mult 0.25 --steps 3 --repeats 3
