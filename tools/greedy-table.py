#!/usr/bin/env python3
"""The greedy schedule's accuracy page: runs of the same model under backprop, the simultaneous
local schedule and the greedy one, paired by seed, at the same total epochs.

    tools/greedy-table.py --title "..." RUNS-DIR PREFIX [PREFIX ...]

reads RUNS-DIR/PREFIX-{backprop,simultaneous,greedy}-sS/metrics.jsonl for every seed found and
prints Markdown: the final test error per seed, mean and standard deviation, each local schedule's
mean difference from backprop and greedy's from simultaneous; then per-epoch test error (means over
seeds) and, for greedy, the training block's local error per epoch. Greedy epochs before the last
round have no test error: the output layer has not trained and the later blocks are untrained.
Standard library only.
"""
import glob, json, os, statistics, sys

MODES = ["backprop", "simultaneous", "greedy"]


def load(folder):
    with open(os.path.join(folder, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_error(m):
    if m.get("outputTrained") is False:
        return None
    return m.get("testError")


def main():
    args = sys.argv[1:]
    title = "greedy schedule"
    if args[:1] == ["--title"]:
        title, args = args[1], args[2:]
    runs_dir, prefixes = args[0], args[1:]
    print(f"## {title}\n")
    for prefix in prefixes:
        runs = {}
        for mode in MODES:
            for folder in sorted(glob.glob(os.path.join(runs_dir, f"{prefix}-{mode}-s*"))):
                if not os.path.isdir(folder) or not os.path.exists(os.path.join(folder, "done")):
                    continue
                seed = int(folder.rsplit("-s", 1)[1])
                runs.setdefault(mode, {})[seed] = load(folder)
        seeds = sorted(set.intersection(*[set(runs.get(m, {})) for m in MODES])) if all(m in runs for m in MODES) else []
        if not seeds:
            print(f"{prefix}: no seed finished in every mode\n")
            continue
        final = {m: [test_error(runs[m][s][-1]) for s in seeds] for m in MODES}
        print(f"### {prefix}: final test error, seeds {', '.join(map(str, seeds))}\n")
        print("| schedule | test error per seed (%) | mean | std | mean - backprop | mean - simultaneous |")
        print("| --- | --- | --- | --- | --- | --- |")
        mean = {m: statistics.mean(final[m]) for m in MODES}
        for m in MODES:
            std = statistics.stdev(final[m]) if len(final[m]) > 1 else float("nan")
            d_bp = "" if m == "backprop" else f"{mean[m] - mean['backprop']:+.2f}"
            d_sim = f"{mean[m] - mean['simultaneous']:+.2f}" if m == "greedy" else ""
            print(f"| {m} | {', '.join(f'{e:.2f}' for e in final[m])} | {mean[m]:.2f} | {std:.2f} | {d_bp} | {d_sim} |")
        epochs = len(runs["backprop"][seeds[0]])
        print(f"\n### {prefix}: per epoch (means over seeds)\n")
        print("| epoch | greedy round | backprop test err | simultaneous test err | greedy test err | greedy: training block's local train err |")
        print("| --- | --- | --- | --- | --- | --- |")
        for e in range(epochs):
            def cell(m):
                vals = [test_error(runs[m][s][e]) for s in seeds if e < len(runs[m][s])]
                vals = [v for v in vals if v is not None]
                return f"{statistics.mean(vals):.2f}" if vals else "-"
            g = [runs["greedy"][s][e] for s in seeds if e < len(runs["greedy"][s])]
            rnd = g[0].get("round", "") if g else ""
            local = [m["layers"][0]["error"] for m in g if m.get("layers")]
            local_cell = f"{statistics.mean(local):.2f} (block {g[0]['layers'][0]['layer']})" if local else "-"
            print(f"| {e + 1} | {rnd} | {cell('backprop')} | {cell('simultaneous')} | {cell('greedy')} | {local_cell} |")
        print()


if __name__ == "__main__":
    main()
