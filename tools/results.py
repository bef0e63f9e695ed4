#!/usr/bin/env python3
"""Collects run folders into a results page: per-epoch test error side by side.

    tools/results.py --title "mlp on Fashion-MNIST" --out results/mlp-fashion-mnist.md \
        predsim=runs/mlp-predsim backprop=runs/mlp-backprop

Copies each run's config.json and metrics.jsonl next to the page (results/<name>/) and writes a
Markdown table (epoch, lr, test error and samples/s of every run), then the best and last errors.
Standard library only.
"""
import argparse, json, os, shutil


def load(folder):
    with open(os.path.join(folder, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--title", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--note", default="")
    p.add_argument("runs", nargs="+", help="name=run-folder")
    a = p.parse_args()
    runs = [r.split("=", 1) for r in a.runs]
    data = {name: load(folder) for name, folder in runs}
    base = os.path.dirname(a.out) or "."
    for name, folder in runs:
        dest = os.path.join(base, os.path.splitext(os.path.basename(a.out))[0], name)
        os.makedirs(dest, exist_ok=True)
        for f in ("config.json", "metrics.jsonl"):
            shutil.copy(os.path.join(folder, f), os.path.join(dest, f))
    epochs = max(len(v) for v in data.values())
    lines = [f"# {a.title}", ""]
    if a.note:
        lines += [a.note, ""]
    lines.append("| run | epochs done | best test error | last test error | median samples/s |")
    lines.append("| --- | --- | --- | --- | --- |")
    for name, rows in data.items():
        errors = [r["testError"] for r in rows if r.get("testError") is not None]
        rates = sorted(r["samplesPerSecond"] for r in rows)
        lines.append(f"| {name} | {len(rows)} | {min(errors):.2f}% | {errors[-1]:.2f}% | {rates[len(rates) // 2]:.0f} |")
    lines += ["", "| epoch | lr | " + " | ".join(f"{n} test error" for n in data) + " |",
              "| --- | --- | " + " | ".join("---" for _ in data) + " |"]
    for e in range(epochs):
        cells, lr = [], ""
        for rows in data.values():
            if e < len(rows):
                cells.append(f"{rows[e]['testError']:.2f}%")
                lr = f"{rows[e]['lr']:.3g}"
            else:
                cells.append("")
        lines.append(f"| {e + 1} | {lr} | " + " | ".join(cells) + " |")
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
