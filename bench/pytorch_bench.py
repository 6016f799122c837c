"""PyTorch on the configurations of `minibatch bench`, side by side with minibatch.

Install PyTorch first (the project never depends on it):  python3 -m pip install torch numpy
Run from the project root:                                python3 bench/pytorch_bench.py [--epochs 3]
The data loaders alone:                                   python3 bench/pytorch_bench.py --loader

For each configuration it trains the same model (nn.Sequential of Linear/ReLU, PyTorch's default
init, SGD, cross_entropy) on the first 50,000 MNIST training images, twice: with
DataLoader(TensorDataset, bs, shuffle=True) and with hand-sliced tensors in a shuffled order.
It reports the median seconds per training epoch of each, then runs `minibatch bench --json`
(target/release/minibatch, built if missing) in the same session and prints the ratios.
"""
import argparse, gzip, json, os, subprocess, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

CONFIGS = {"notebook": ([784, 50, 10], 64, 0.5), "wide": ([784, 1024, 10], 256, 0.1),
           "deep": ([784, 512, 512, 512, 10], 128, 0.1)}


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def model_for(sizes):
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        if i: layers.append(nn.ReLU())
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


def epoch_dataloader(model, opt, dl):
    for xb, yb in dl:
        loss = F.cross_entropy(model(xb), yb)
        loss.backward(); opt.step(); opt.zero_grad()


def epoch_sliced(model, opt, x, y, bs):
    perm = torch.randperm(len(x))
    for i in range(0, len(x), bs):
        idx = perm[i:i + bs]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward(); opt.step(); opt.zero_grad()


def median_time(fn, epochs):
    times = []
    for _ in range(epochs):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--configs", default="notebook,wide,deep")
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--loader", action="store_true", help="time the data loaders alone (minibatch bench data)")
    args = ap.parse_args()
    torch.manual_seed(0)
    x = torch.tensor(read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz"))[:50000].reshape(50000, 784),
                     dtype=torch.float32) / 255.0
    y = torch.tensor(read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz"))[:50000], dtype=torch.int64)
    if args.loader:
        return bench_loader(x, y, args.epochs)
    names = args.configs.split(",")
    torch_rows = {}
    for name in names:
        sizes, bs, lr = CONFIGS[name]
        model = model_for(sizes); opt = torch.optim.SGD(model.parameters(), lr=lr)
        dl = DataLoader(TensorDataset(x, y), bs, shuffle=True)
        t_dl = median_time(lambda: epoch_dataloader(model, opt, dl), args.epochs)
        model = model_for(sizes); opt = torch.optim.SGD(model.parameters(), lr=lr)
        t_sl = median_time(lambda: epoch_sliced(model, opt, x, y, bs), args.epochs)
        torch_rows[name] = (t_dl, t_sl)
        print(json.dumps({"pytorch": torch.__version__, "threads": torch.get_num_threads(), "config": name,
                          "dataloader_s_per_epoch": t_dl, "sliced_s_per_epoch": t_sl}), flush=True)

    exe = os.path.join("target", "release", "minibatch")
    if not os.path.exists(exe):
        subprocess.run(["cargo", "build", "--release"], check=True)
    out = subprocess.run([exe, "bench", "--json", "--epochs", str(args.epochs), "--configs", ",".join(names)],
                         check=True, capture_output=True, text=True).stdout
    ours = [json.loads(l) for l in out.splitlines() if l.strip()]
    print()
    print(f"{'config':<9} {'path':<5} {'minibatch s':>11} {'/ torch DataLoader':>18} {'/ torch sliced':>14} {'x floor':>8}")
    for r in ours:
        t_dl, t_sl = torch_rows[r["config"]]
        s = r["median_epoch_seconds"]
        print(f"{r['config']:<9} {r['path']:<5} {s:>11.3f} {s / t_dl:>18.2f} {s / t_sl:>14.2f} {r['ratio_to_floor']:>8.2f}")
    for name in names:
        print(f"{name:<9} torch {torch_rows[name][0]:>11.3f} (DataLoader), {torch_rows[name][1]:.3f} (sliced)")


def bench_loader(x, y, epochs):
    """Batches per second of DataLoader(TensorDataset(x, y), 64, shuffle=True), against minibatch's."""
    dl = DataLoader(TensorDataset(x, y), 64, shuffle=True)
    n = len(dl)
    t = median_time(lambda: [b for b in dl], epochs)
    torch_bps = n / t
    exe = os.path.join("target", "release", "minibatch")
    if not os.path.exists(exe):
        subprocess.run(["cargo", "build", "--release"], check=True)
    out = subprocess.run([exe, "bench", "data", "--json", "--epochs", str(epochs)], check=True, capture_output=True,
                         text=True).stdout
    print(f"PyTorch {torch.__version__} DataLoader(TensorDataset, 64, shuffle=True): {torch_bps:.0f} batches/s")
    for r in (json.loads(l) for l in out.splitlines() if l.strip()):
        bps = r["batches_per_second"]
        print(f"minibatch, {r['workers']} workers: {bps:.0f} batches/s = {bps / torch_bps:.1f} x PyTorch, "
              f"{bps / r['memcpy_batches_per_second']:.2f} of memcpy ({r['memcpy_batches_per_second']:.0f})")


if __name__ == "__main__":
    main()
