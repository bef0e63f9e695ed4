#!/usr/bin/env bash
# Measures what a process holds outside the ledger (peak RSS minus ledger peak) for the commands
# the memory budget plans for: each mode of `profile` and a short `train` (loader, test pass),
# on the mlp and vgg8b, as `MemoryBudget`'s `ProcessOverhead` figures assume.
#
#   tools/memory-overhead.sh                 # release binary, data/fashion-mnist
#   STEPS=3 tools/memory-overhead.sh
#
# Prints one line per run: command, model, mode, ledger peak without the loader's buffers (what the
# planner predicts), peak RSS, and the difference, which the budget's overhead must cover.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${LAYERWISE:-$ROOT/.build/release/layerwise}"
DATA="${DATA:-$ROOT/data/fashion-mnist}"
STEPS="${STEPS:-3}"
WORK="$(mktemp -d /tmp/layerwise-overhead.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
[[ -x "$BIN" ]] || (cd "$ROOT" && swift build -c release --product layerwise >&2)
[[ -f "$DATA/manifest.json" ]] || { echo "no dataset at $DATA (tools/demo.sh converts Fashion-MNIST)" >&2; exit 2; }

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
line() { awk -v c="$1" -v m="$2" -v l="$3" -v r="$4" 'BEGIN { printf "%-8s %-22s ledger without loader %8.1f MiB  peak RSS %8.1f MiB  above it %6.1f MiB\n", c, m, l/1048576, r/1048576, (r-l)/1048576 }'; }

for model in "mlp" "vgg8b --chunk 16"; do
    # shellcheck disable=SC2086
    "$BIN" profile --model $model --batch-size 128 --steps "$STEPS" --data "$DATA" --out "$WORK/profile" > /dev/null
    for mode in local backprop; do
        ledger=$(json "$WORK/profile/memory.json" "d['comparison']['$mode']['peak']['total'] - d['comparison']['$mode']['peak']['byCategory'][9]")
        rss=$(json "$WORK/profile/memory.json" "d['comparison']['$mode']['process']['peakRSS']")
        line profile "${model%% *} $mode" "$ledger" "$rss"
    done
    for loss in predsim backprop; do
        # shellcheck disable=SC2086
        /usr/bin/time -f "%M" -o "$WORK/rss" "$BIN" train --data "$DATA" --run "$WORK/run-$loss" --model $model --loss "$loss" \
            --batch-size 128 --epochs 1 --train-limit $((128 * STEPS)) --test-limit 1000 --milestones "" --quiet \
            --memory-report "$WORK/report-$loss" > /dev/null
        ledger=$(python3 -c "import json,sys; print(max(json.loads(l)['ledgerPeakTotal'] - json.loads(l)['ledgerPeak'].get('loader', 0) for l in open(sys.argv[1]) if l.strip()))" "$WORK/run-$loss/metrics.jsonl")
        rss=$(( $(tail -1 "$WORK/rss") * 1024 ))
        line train "${model%% *} $loss" "$ledger" "$rss"
    done
done
