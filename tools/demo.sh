#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build in release, convert Debian's
# Fashion-MNIST to shards, train the paper's MLP locally (predsim) and by backprop for a short
# run each, print both test errors, and write the memory reports comparing the two modes: the
# MLP's (where the heads' weights and Adam state outweigh what local training frees) and vgg8b's
# at batch 128 (where the activations dominate), with the planner choosing local mode's chunk
# size for a 400 MiB budget.
# The paper's Fashion-MNIST recipe flips images (--augment crop,flip); it is passed explicitly,
# since train's default is a crop alone (right for any image, including digits and text).
#
#   EPOCHS=2 tools/demo.sh        # epochs per run (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${EPOCHS:-2}
tools/setup.sh
swift build -c release --product layerwise
bin=.build/release/layerwise
src=/usr/share/datasets/fashion-mnist
data=data/fashion-mnist

if [ ! -f "$data/manifest.json" ]; then
  $bin shards convert idx --images $src/train-images-idx3-ubyte.gz --labels $src/train-labels-idx1-ubyte.gz --split train --out $data
  $bin shards convert idx --images $src/t10k-images-idx3-ubyte.gz --labels $src/t10k-labels-idx1-ubyte.gz --split test --out $data
fi
$bin shards verify $data

echo
echo "== local training (predsim): each block learns from its own loss and frees its activations"
$bin train --data $data --run runs/demo-local --loss predsim --epochs "$epochs" --milestones "" --augment crop,flip
echo
echo "== backprop baseline, same model, same engine"
$bin train --data $data --run runs/demo-backprop --loss backprop --epochs "$epochs" --milestones "" --augment crop,flip
echo
echo "== test error"
$bin eval --run runs/demo-local
$bin eval --run runs/demo-backprop
if $bin profile --help >/dev/null 2>&1; then
  echo
  echo "== memory: the same model and batch, local vs backprop"
  $bin profile --model mlp --batch-size 128 --steps 3 --out reports/mlp
  echo
  echo "== memory: vgg8b, batch 128; local mode must fit 400 MiB (the planner picks the chunk size), backprop as it is"
  $bin profile --model vgg8b --batch-size 128 --steps 2 --memory-budget 400MiB --out reports/vgg8b-budget
fi
