#!/usr/bin/env python3
"""The accuracy table of results/lean-state.md from tools/lean-state-accuracy.sh's output lines
(loss format seed test-error): mean and sample std of the final test error per loss and state
format, each lean format's difference from fp32 (paired by seed) and the criterion
|mean - mean fp32| <= max(0.2 points, 2 std of fp32)."""
import statistics
import sys

runs = {}
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) != 4:
        continue
    loss, fmt, seed, err = parts
    runs.setdefault((loss, fmt), {})[int(seed)] = float(err)

print("| loss | state | test error per seed (%) | mean | std | mean - fp32 | allowed | within |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for loss in ["predsim", "backprop"]:
    base = runs.get((loss, "fp32"), {})
    for fmt in ["fp32", "bf16", "int8"]:
        r = runs.get((loss, fmt), {})
        if not r:
            continue
        seeds = sorted(r)
        values = [r[s] for s in seeds]
        mean = statistics.mean(values)
        std = statistics.stdev(values) if len(values) > 1 else float("nan")
        per_seed = ", ".join(f"{r[s]:.2f}" for s in seeds)
        if fmt == "fp32":
            print(f"| {loss} | {fmt} | {per_seed} | {mean:.2f} | {std:.2f} | | | |")
            continue
        paired = [s for s in seeds if s in base]
        base_mean = statistics.mean(base[s] for s in paired)
        base_std = statistics.stdev([base[s] for s in paired]) if len(paired) > 1 else 0.0
        diff = statistics.mean(r[s] for s in paired) - base_mean
        allowed = max(0.2, 2 * base_std)
        print(f"| {loss} | {fmt} | {per_seed} | {mean:.2f} | {std:.2f} | {diff:+.2f} | {allowed:.2f} | {'yes' if abs(diff) <= allowed else 'no'} |")
