#!/usr/bin/env bash
# The process-level memory proof: run local and backprop training of the same model and batch
# under a cgroup memory cap set between their measured peaks. Local finishes, backprop is killed.
#
#   sudo tools/memory-cap.sh                       # mlp 4x1024, pred, batch 4096, 2 steps
#   sudo tools/memory-cap.sh --batch-size 2048 --num-layers 6
#   LAYERWISE=.build/debug/layerwise sudo -E tools/memory-cap.sh
#   sudo tools/memory-cap.sh vgg8b                 # train vgg8b on Fashion-MNIST, batch 128
#   CAP=500MiB STEPS=4 sudo -E tools/memory-cap.sh vgg8b
#
# Arguments are passed to `layerwise profile` (model, loss, batch, steps, --data ...).
# vgg8b mode runs `layerwise train` instead: backprop once without a cap to measure its peak,
# then under one cap (CAP, default 60% of that peak) local predsim with `--memory-budget auto`
# (the planner reads the cap and picks the chunk size) and backprop without a budget.
# Needs root and a memory cgroup: v1 at /sys/fs/cgroup/memory (memory.limit_in_bytes,
# memory.max_usage_in_bytes, tasks) or v2 at /sys/fs/cgroup (memory.max, memory.peak,
# cgroup.procs). Swap should be off (or is disabled for the group where the kernel allows).
# Exit status: 0 when local fits and backprop is killed, 1 otherwise, 2 when it cannot run.
# The last line is machine-readable: RESULT local_exit=.. backprop_exit=.. cap=.. ...
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${LAYERWISE:-$ROOT/.build/release/layerwise}"
if [[ ! -x "$BIN" ]]; then
    echo "building the release binary ..." >&2
    (cd "$ROOT" && swift build -c release --product layerwise >&2)
fi
MODE=profile
if [[ "${1:-}" == vgg8b ]]; then MODE=vgg8b; shift; fi
ARGS=("$@")
if [[ $MODE == profile && ${#ARGS[@]} -eq 0 ]]; then
    ARGS=(--model mlp --loss pred --num-layers 4 --num-hidden 1024 --batch-size 4096 --steps 2)
fi

# Which cgroup version?
if [[ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]]; then
    VERSION=1; BASE=/sys/fs/cgroup/memory; LIMIT=memory.limit_in_bytes; PEAK=memory.max_usage_in_bytes; PROCS=tasks
elif [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
    VERSION=2; BASE=/sys/fs/cgroup; LIMIT=memory.max; PEAK=memory.peak; PROCS=cgroup.procs
else
    echo "no memory cgroup controller found (v1 /sys/fs/cgroup/memory or v2 /sys/fs/cgroup)" >&2; exit 2
fi

WORK="$(mktemp -d /tmp/layerwise-cap.XXXXXX)"
GROUPS_MADE=()
cleanup() {
    for g in "${GROUPS_MADE[@]}"; do rmdir "$g" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

[[ $MODE == profile ]] && "$BIN" profile "${ARGS[@]}" --save-request "$WORK/request.json"

# run_in_group NAME LIMIT MODE [ARGS...]: runs `profile-mode` for MODE (or, in vgg8b mode, `train`
# with ARGS) in a new cgroup with LIMIT bytes ("max" for none); sets EXIT and GROUP_PEAK.
run_in_group() {
    local group="$BASE/layerwise-cap-$$-$1"
    mkdir "$group" || { echo "cannot create $group (not root, or cgroups not writable)" >&2; exit 2; }
    GROUPS_MADE+=("$group")
    if [[ $VERSION == 1 ]]; then
        [[ "$2" == max ]] && echo -1 > "$group/$LIMIT" || echo "$2" > "$group/$LIMIT"
        [[ -f "$group/memory.memsw.limit_in_bytes" && "$2" != max ]] && echo "$2" > "$group/memory.memsw.limit_in_bytes" 2>/dev/null || true
        echo 0 > "$group/memory.swappiness" 2>/dev/null || true
    else
        echo "$2" > "$group/$LIMIT"
        echo 0 > "$group/memory.swap.max" 2>/dev/null || true
    fi
    set +e
    # The shell moves itself into the group, then becomes the training process.
    if [[ $MODE == profile ]]; then
        sh -c 'echo $$ > "$1"; shift; exec "$@"' sh "$group/$PROCS" \
            "$BIN" profile-mode --request "$WORK/request.json" --mode "$3" --result "$WORK/$1.json" > "$WORK/$1.log" 2>&1
    else
        local name=$1; shift 3
        sh -c 'echo $$ > "$1"; shift; exec "$@"' sh "$group/$PROCS" \
            "$BIN" train --data "$DATA" --run "$WORK/run-$name" --model vgg8b --batch-size 128 --epochs 1 \
            --train-limit $((128 * STEPS)) --test-split none --milestones "" --quiet "$@" > "$WORK/$name.log" 2>&1
    fi
    EXIT=$?
    set -e
    GROUP_PEAK=$(cat "$group/$PEAK" 2>/dev/null || echo 0)
}

ledger_peak() {  # ledger peak bytes from a ModeProfile JSON
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["peak"]["total"])' "$1" 2>/dev/null || echo "-"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

echo "cgroup v$VERSION at $BASE; binary $BIN"
describe() { [[ $1 == 0 ]] && echo "finished" || { [[ $1 == 137 ]] && echo "KILLED by the cap (exit 137, SIGKILL)" || echo "failed (exit $1)"; }; }

if [[ $MODE == vgg8b ]]; then
    DATA="${DATA:-$ROOT/data/fashion-mnist}"
    STEPS="${STEPS:-3}"
    if [[ ! -f "$DATA/manifest.json" ]]; then
        src=/usr/share/datasets/fashion-mnist
        "$BIN" shards convert idx --images $src/train-images-idx3-ubyte.gz --labels $src/train-labels-idx1-ubyte.gz --split train --out "$DATA"
    fi
    echo "1. backprop vgg8b, batch 128, $STEPS steps, in an uncapped group ..."
    run_in_group measure-backprop max - --loss backprop; [[ $EXIT == 0 ]] || { cat "$WORK/measure-backprop.log"; exit 2; }
    BACKPROP_PEAK=$GROUP_PEAK
    printf "   backprop: cgroup peak %s\n" "$(mib "$BACKPROP_PEAK")"
    if [[ -n "${CAP:-}" ]]; then
        CAP_BYTES=$(python3 -c 'import re,sys; m=re.fullmatch(r"([0-9.]+)\s*(MiB|GiB|MB|GB)?", sys.argv[1]); u={"MiB":2**20,"GiB":2**30,"MB":10**6,"GB":10**9,None:1}[m.group(2)]; print(int(float(m.group(1))*u)//4096*4096)' "$CAP")
    else
        CAP_BYTES=$(( BACKPROP_PEAK * 6 / 10 / 4096 * 4096 ))
    fi
    echo "2. cap $(mib "$CAP_BYTES") ($CAP_BYTES bytes): local predsim with --memory-budget auto, then backprop without a budget"
    run_in_group capped-local "$CAP_BYTES" - --loss predsim --memory-budget auto; LOCAL_EXIT=$EXIT; LOCAL_CAPPED=$GROUP_PEAK
    grep -E "memory budget|memory plan|predicted ledger peak|expected step time|\+ .* of process overhead|refus|does not fit|over --memory-budget" "$WORK/capped-local.log" | sed 's/^/   | /' || true
    run_in_group capped-backprop "$CAP_BYTES" - --loss backprop; BACKPROP_EXIT=$EXIT; BACKPROP_CAPPED=$GROUP_PEAK
    printf "   local:    %s, cgroup peak %s\n" "$(describe "$LOCAL_EXIT")" "$(mib "$LOCAL_CAPPED")"
    printf "   backprop: %s, cgroup peak %s\n" "$(describe "$BACKPROP_EXIT")" "$(mib "$BACKPROP_CAPPED")"
    [[ $LOCAL_EXIT == 0 ]] || tail -5 "$WORK/capped-local.log"
    echo "RESULT model=vgg8b local_exit=$LOCAL_EXIT backprop_exit=$BACKPROP_EXIT cap=$CAP_BYTES local_peak=$LOCAL_CAPPED backprop_peak_uncapped=$BACKPROP_PEAK backprop_peak_capped=$BACKPROP_CAPPED"
    [[ $LOCAL_EXIT == 0 && $BACKPROP_EXIT == 137 ]]
    exit
fi

echo "1. measuring each mode's peak in its own uncapped group ..."
run_in_group measure-local max local;       [[ $EXIT == 0 ]] || { cat "$WORK/measure-local.log"; exit 2; }
LOCAL_PEAK=$GROUP_PEAK;   LOCAL_LEDGER=$(ledger_peak "$WORK/measure-local.json")
run_in_group measure-backprop max backprop; [[ $EXIT == 0 ]] || { cat "$WORK/measure-backprop.log"; exit 2; }
BACKPROP_PEAK=$GROUP_PEAK; BACKPROP_LEDGER=$(ledger_peak "$WORK/measure-backprop.json")
printf "   local:    cgroup peak %s, ledger peak %s\n" "$(mib "$LOCAL_PEAK")" "$(mib "$LOCAL_LEDGER")"
printf "   backprop: cgroup peak %s, ledger peak %s\n" "$(mib "$BACKPROP_PEAK")" "$(mib "$BACKPROP_LEDGER")"
if (( BACKPROP_PEAK <= LOCAL_PEAK )); then
    echo "backprop does not need more than local for this model and batch; pick one whose activations dominate (e.g. --loss pred, a larger --batch-size)" >&2
    echo "RESULT local_exit=- backprop_exit=- cap=0 local_peak=$LOCAL_PEAK backprop_peak=$BACKPROP_PEAK local_ledger=$LOCAL_LEDGER backprop_ledger=$BACKPROP_LEDGER"
    exit 1
fi
CAP=$(( (LOCAL_PEAK + BACKPROP_PEAK) / 2 / 4096 * 4096 ))
echo "2. cap $(mib "$CAP") ($CAP bytes), between the two peaks"
run_in_group capped-local "$CAP" local;       LOCAL_EXIT=$EXIT; LOCAL_CAPPED=$GROUP_PEAK
run_in_group capped-backprop "$CAP" backprop; BACKPROP_EXIT=$EXIT; BACKPROP_CAPPED=$GROUP_PEAK
printf "   local:    %s, cgroup peak %s\n" "$(describe "$LOCAL_EXIT")" "$(mib "$LOCAL_CAPPED")"
printf "   backprop: %s, cgroup peak %s\n" "$(describe "$BACKPROP_EXIT")" "$(mib "$BACKPROP_CAPPED")"
echo "RESULT local_exit=$LOCAL_EXIT backprop_exit=$BACKPROP_EXIT cap=$CAP local_peak=$LOCAL_PEAK backprop_peak=$BACKPROP_PEAK local_ledger=$LOCAL_LEDGER backprop_ledger=$BACKPROP_LEDGER"
[[ $LOCAL_EXIT == 0 && $BACKPROP_EXIT == 137 ]]
