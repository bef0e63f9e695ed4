#!/usr/bin/env python3
"""Samples/s of the paper's PyTorch code on Fashion-MNIST, for tools/bench-vs-pytorch.sh.

    python3 tools/pytorch-reference-bench.py TRAIN_PY WORKDIR --steps 20 --warmup 3 --threads 2 -- ARGS

Runs TRAIN_PY (anokland/local-loss's train.py, unmodified, from a fetched copy) with runpy and the
given arguments, with torch.utils.data.DataLoader limited to WARMUP + STEPS training batches and one
test batch, and prints one line: "reference samples/s X". The timed span runs from the request for
the first batch after the warm-up to the request that ends the loop, so it holds loading,
augmentation, the forward and backward passes and the updates of STEPS batches, as `layerwise bench
train` times its steps. WORKDIR/run is the working directory; train.py reads Fashion-MNIST from
../data/FashionMNIST, which this script fills with the IDX files of Debian's dataset-fashion-mnist,
so nothing is downloaded.
"""
import argparse, gzip, os, runpy, shutil, sys, time


def prepare_data(workdir):
    raw = os.path.join(workdir, "data", "FashionMNIST", "FashionMNIST", "raw")
    os.makedirs(raw, exist_ok=True)
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]:
        out = os.path.join(raw, name)
        if not os.path.exists(out):
            with gzip.open(f"/usr/share/datasets/fashion-mnist/{name}.gz", "rb") as src, open(out + ".tmp", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(out + ".tmp", out)
    run = os.path.join(workdir, "run")
    os.makedirs(run, exist_ok=True)
    return run


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("train_py")
    parser.add_argument("workdir")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    own = sys.argv[1:]
    args = []
    if "--" in own:
        args = own[own.index("--") + 1:]
        own = own[:own.index("--")]
    a = parser.parse_args(own)
    run = prepare_data(os.path.abspath(a.workdir))

    import torch
    import torch.utils.data
    torch.set_num_threads(a.threads)
    # PyPI's torchvision wheels are built against CUDA torch: with the CPU torch wheel their C ops
    # do not load, and importing torchvision registers a fake kernel for torchvision::nms anyway.
    # train.py uses only torchvision's datasets and transforms (pure Python), so the two schemas
    # that import needs are defined here when missing; they are never called.
    for op in ["nms", "qnms"]:
        if not torch._C._dispatch_has_kernel(f"torchvision::{op}"):
            try:
                torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            except RuntimeError:
                pass
    stamps = []
    batch_sizes = []

    class LimitedLoader(torch.utils.data.DataLoader):
        def __iter__(self):
            training = getattr(self.dataset, "train", False)
            limit = a.warmup + a.steps if training else 1
            inner = super().__iter__()
            for i in range(limit):
                if training:
                    stamps.append(time.perf_counter())
                batch = next(inner)
                if training and i >= a.warmup:
                    batch_sizes.append(len(batch[1]))
                yield batch
            if training:
                stamps.append(time.perf_counter())

    torch.utils.data.DataLoader = LimitedLoader
    os.chdir(run)
    sys.argv = [a.train_py] + args + ["--epochs", "1", "--no-cuda", "--save-dir", os.path.join(run, "save")]
    try:
        runpy.run_path(a.train_py, run_name="__main__")
    except SystemExit:
        pass
    timed = stamps[-1] - stamps[a.warmup]
    print(f"reference samples/s {sum(batch_sizes) / timed:.3f}")


if __name__ == "__main__":
    main()
