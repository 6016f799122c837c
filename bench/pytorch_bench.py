"""PyTorch on the configurations of `minibatch bench`, side by side with minibatch.

Install PyTorch first (the project never depends on it):  python3 -m pip install torch numpy
Run from the project root:                                python3 bench/pytorch_bench.py [--epochs 3]
The data loaders alone:                                   python3 bench/pytorch_bench.py --loader
Mixed precision:                                          python3 bench/pytorch_bench.py --precision bf16

For each configuration it trains the same model (nn.Sequential of Linear/ReLU, PyTorch's default
init, or the lessons' CNNs and xresnets; SGD, cross_entropy) on the first 50,000 MNIST training
images (the xresnets on the first 3,200, as `minibatch bench` times them), twice: with
DataLoader(TensorDataset, bs, shuffle=True) and with hand-sliced tensors in a shuffled order.
Each round times PyTorch on one configuration (median seconds per training epoch of each loop),
then runs `minibatch bench --json --configs NAME` (target/release/minibatch, built if missing)
right after it; every ratio pairs the two halves of one round, and the table prints the median
over rounds (--rounds, default 3): on a shared machine a core can be away for seconds at a time.

With --precision bf16, PyTorch's forward runs under torch.autocast("cpu", dtype=torch.bfloat16)
(lesson 10c's mixed precision: bf16 products, fp32 weights and SGD; the loss on fp32 logits) and
minibatch runs `bench --precision bf16`.
"""
import contextlib
import argparse, gzip, json, os, subprocess, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

# name: (layer sizes or the CNN's name, batch size, lr, momentum)
CONFIGS = {"notebook": ([784, 50, 10], 64, 0.5, 0.0), "wide": ([784, 1024, 10], 256, 0.1, 0.0),
           "deep": ([784, 512, 512, 512, 10], 128, 0.1, 0.0), "cnn": ("cnn", 128, 0.1, 0.9),
           "cnn-bn": ("cnn-bn", 128, 0.1, 0.9), "xresnet18": ("xresnet18", 64, 0.1, 0.9),
           "xresnet34": ("xresnet34", 64, 0.1, 0.9), "xresnet50": ("xresnet50", 64, 0.1, 0.9)}
# Configurations timed on the first N training images only, as `minibatch bench` times them.
TRAIN_IMAGES = {"xresnet18": 3200, "xresnet34": 3200, "xresnet50": 3200}


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def cnn(batch_norm):
    """The lesson's CNN as `minibatch train --model cnn|cnn-bn` builds it (same names)."""
    blocks = []
    for cin, cout, k in [(1, 8, 5), (8, 16, 3), (16, 32, 3), (32, 32, 3)]:
        conv = nn.Conv2d(cin, cout, k, stride=2, padding=k // 2, bias=not batch_norm)
        nn.init.kaiming_normal_(conv.weight)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)
        blocks.append(nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU()) if batch_norm
                      else nn.Sequential(conv, nn.ReLU()))
    return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(32, 10))


def xresnet(depth):
    """Lesson 11's XResNet for MNIST (1 channel, 10 classes): the one the golden values come from."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
    from make_golden import xresnet_module
    expansion, layers = {18: (1, [2, 2, 2, 2]), 34: (1, [3, 4, 6, 3]), 50: (4, [3, 4, 6, 3])}[depth]
    model = xresnet_module().create(expansion, layers, c_in=1, c_out=10)
    return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), model)


def model_for(sizes):
    if isinstance(sizes, str) and sizes.startswith("xresnet"):
        return xresnet(int(sizes[len("xresnet"):]))
    if isinstance(sizes, str):
        return cnn(sizes == "cnn-bn")
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        if i: layers.append(nn.ReLU())
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


AUTOCAST = False  # --precision bf16


def forward(model, xb):
    """The model's logits, as fp32, under bf16 autocast with --precision bf16."""
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if AUTOCAST else contextlib.nullcontext()
    with ctx:
        out = model(xb)
    return out.float()


def epoch_dataloader(model, opt, dl):
    for xb, yb in dl:
        loss = F.cross_entropy(forward(model, xb), yb)
        loss.backward(); opt.step(); opt.zero_grad()


def epoch_sliced(model, opt, x, y, bs):
    perm = torch.randperm(len(x))
    for i in range(0, len(x), bs):
        idx = perm[i:i + bs]
        loss = F.cross_entropy(forward(model, x[idx]), y[idx])
        loss.backward(); opt.step(); opt.zero_grad()


def median_time(fn, epochs):
    times = []
    for _ in range(epochs):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="PyTorch-then-minibatch rounds per configuration")
    ap.add_argument("--configs", default="notebook,wide,deep")
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--loader", action="store_true", help="time the data loaders alone (minibatch bench data)")
    ap.add_argument("--paths", default=None, help="minibatch's paths (default plain,fast; fast alone for the CNNs)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for PyTorch and minibatch's multiplies (default: each library's own choice)")
    ap.add_argument("--sliced-only", action="store_true", help="time PyTorch's hand-sliced loop alone")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                    help="bf16: PyTorch under torch.autocast(bfloat16), minibatch with --precision bf16")
    args = ap.parse_args()
    global AUTOCAST
    AUTOCAST = args.precision == "bf16"
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.tensor(read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz"))[:50000].reshape(50000, 784),
                     dtype=torch.float32) / 255.0
    y = torch.tensor(read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz"))[:50000], dtype=torch.int64)
    if args.loader:
        return bench_loader(x, y, args.epochs)
    names = args.configs.split(",")
    exe = os.path.join("target", "release", "minibatch")
    if not os.path.exists(exe):
        subprocess.run(["cargo", "build", "--release"], check=True)
    # The machine is shared: whole seconds where a core is lent elsewhere are common. Each round
    # times PyTorch and minibatch on one configuration back to back, and each ratio pairs the two
    # of one round; the table shows the median over rounds.
    rounds = []
    for r in range(args.rounds):
        for name in names:
            torch_dl, torch_sl = torch_epochs(name, x, y, args.epochs, args.sliced_only)
            # candle's conv backward is slow: the convolutional models run the fast path alone.
            paths = args.paths or ("fast" if name.startswith(("cnn", "xresnet")) else "plain,fast")
            cmd = [exe, "bench", "--json", "--epochs", str(args.epochs), "--configs", name, "--paths", paths,
                   "--precision", args.precision]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            for row in (json.loads(l) for l in out.splitlines() if l.strip()):
                row.update(round=r, torch_dataloader_s=torch_dl, torch_sliced_s=torch_sl, pytorch=torch.__version__,
                           torch_threads=torch.get_num_threads(), torch_precision=args.precision)
                print(json.dumps(row), flush=True)
                rounds.append(row)
    print()
    print(f"median over {args.rounds} rounds of {args.epochs} epochs; each ratio within one round")
    print(f"{'config':<9} {'path':<5} {'minibatch s':>11} {'ratio to DataLoader':>19} {'ratio to sliced':>15} {'x floor':>8}")
    num = lambda v, width: f"{v:>{width}.2f}" if v == v else f"{'-':>{width}}"  # '-' for not measured
    med = lambda v: sorted(v)[len(v) // 2]
    for name in names:
        for path in ("plain", "fast"):
            rows = [r for r in rounds if r["config"] == name and r["path"] == path]
            if not rows:
                continue
            s = med([r["median_epoch_seconds"] for r in rows])
            dl = med([r["median_epoch_seconds"] / (r["torch_dataloader_s"] or float("nan")) for r in rows])
            sl = med([r["median_epoch_seconds"] / r["torch_sliced_s"] for r in rows])
            fl = med([r["ratio_to_floor"] or float("nan") for r in rows])
            print(f"{name:<9} {path:<5} {s:>11.3f} {num(dl, 19)} {num(sl, 15)} {num(fl, 8)}")
    for name in names:
        rows = [r for r in rounds if r["config"] == name]
        dl = med([r['torch_dataloader_s'] or float('nan') for r in rows])
        dl = f"{dl:.3f} s (DataLoader), " if dl == dl else ""
        print(f"{name:<9} torch {dl}{med([r['torch_sliced_s'] for r in rows]):.3f} s (sliced)")


def torch_epochs(name, x, y, epochs, sliced_only=False):
    """Median seconds per epoch of PyTorch on configuration `name`: with its DataLoader (None when
    `sliced_only`), and sliced."""
    sizes, bs, lr, momentum = CONFIGS[name]
    if name in TRAIN_IMAGES:
        x, y = x[:TRAIN_IMAGES[name]], y[:TRAIN_IMAGES[name]]
    t_dl = None
    if not sliced_only:
        model = model_for(sizes); opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
        dl = DataLoader(TensorDataset(x, y), bs, shuffle=True)
        t_dl = median_time(lambda: epoch_dataloader(model, opt, dl), epochs)
    model = model_for(sizes); opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    t_sl = median_time(lambda: epoch_sliced(model, opt, x, y, bs), epochs)
    return t_dl, t_sl


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
