#!/usr/bin/env bash
# Trains the same short runs with two `layerwise` binaries and compares the checkpoints' tensors
# byte for byte: a refactoring that must not change a single weight passes only if every tensor
# of every run is identical.
#
#   tools/check-bit-identity.sh OLD_BINARY NEW_BINARY [WORK_DIR]
#
# Runs (one thread, seed 1, one epoch of 512 training images, 4 steps of batch 128):
#   mlp: predsim, pred-bpf, sim-bpf, backprop, predsim --chunk 4
#   vgg8b --feat-mult 0.25: predsim, predsim-bpf, backprop, predsim --chunk 4
# The conv engine is the environment's (LAYERWISE_CONV_ENGINE), the same for both binaries.
# Data: Fashion-MNIST from /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist),
# converted once with OLD_BINARY. Exit status 0 when every run is bit-identical.
set -euo pipefail
if [ $# -lt 2 ]; then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
old=$(realpath "$1")
new=$(realpath "$2")
work=${3:-$(mktemp -d)}
mkdir -p "$work"
src=/usr/share/datasets/fashion-mnist
data=$work/fashion-mnist
limits=(--train-limit 512 --test-limit 256 --epochs 1 --threads 1 --seed 1 --checkpoint-every 0)

if [ ! -f "$data/manifest.json" ] && [ ! -d "$data/train" ]; then
    "$old" shards convert idx --images $src/train-images-idx3-ubyte.gz --labels $src/train-labels-idx1-ubyte.gz \
        --split train --out "$data" > /dev/null 2>&1
    "$old" shards convert idx --images $src/t10k-images-idx3-ubyte.gz --labels $src/t10k-labels-idx1-ubyte.gz \
        --split test --out "$data" > /dev/null 2>&1
fi

# Every tensor of two safetensors files: same names, dtypes, shapes and data bytes. The
# metadata (which holds timings) is not compared.
compare() {
    python3 - "$1" "$2" <<'PY'
import json, struct, sys
def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
if a.keys() != b.keys():
    print("  tensor names differ:", sorted(set(a) ^ set(b)))
    sys.exit(1)
differ = [k for k in sorted(a) if a[k] != b[k]]
for k in differ[:10]:
    print("  differs:", k)
print(f"  {len(a) - len(differ)} of {len(a)} tensors identical ({sum(len(v[2]) for v in a.values())} bytes)")
sys.exit(1 if differ else 0)
PY
}

failures=0
run() {
    local name=$1; shift
    for which in old new; do
        local bin=$old; [ $which = new ] && bin=$new
        rm -rf "$work/$name-$which"
        "$bin" train --data "$data" --run "$work/$name-$which" "${limits[@]}" "$@" > "$work/$name-$which.log" 2>&1 \
            || { echo "$name: $which binary failed (see $work/$name-$which.log)"; failures=$((failures + 1)); return; }
    done
    echo "$name ($*):"
    if compare "$work/$name-old/checkpoint.safetensors" "$work/$name-new/checkpoint.safetensors"; then
        echo "  bit-identical"
    else
        echo "  DIFFERENT"
        failures=$((failures + 1))
    fi
}

run mlp-predsim       --model mlp --loss predsim
run mlp-pred-bpf      --model mlp --loss pred-bpf
run mlp-sim-bpf       --model mlp --loss sim-bpf
run mlp-backprop      --model mlp --loss backprop
run mlp-predsim-chunk --model mlp --loss predsim --chunk 4
run vgg-predsim       --model vgg8b --feat-mult 0.25 --loss predsim
run vgg-predsim-bpf   --model vgg8b --feat-mult 0.25 --loss predsim-bpf
run vgg-backprop      --model vgg8b --feat-mult 0.25 --loss backprop
run vgg-predsim-chunk --model vgg8b --feat-mult 0.25 --loss predsim --chunk 4

if [ $failures -eq 0 ]; then echo "all runs bit-identical"; else echo "$failures run(s) differ or failed"; fi
exit $((failures > 0))
