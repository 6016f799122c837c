"""PyTorch on lessons 06-07's CNN as the lessons write it, beside bench/user_crate's Rust port.

Install PyTorch first (the project never depends on it):  python3 -m pip install torch numpy
Run from the project root:    python3 bench/pytorch_lesson.py [--rounds 3] [--epochs 2]

Models (the program's `cnn` sizes: 8, 16, 32, 32 channels, stride 2, bs 128, SGD 0.1):
  cnn-relu    Conv2d, ReLU blocks
  cnn-grelu   Conv2d, GeneralRelu(leak=0.1, sub=0.4, maxv=6) blocks (lesson 06)
  cnn-own-bn  Conv2d(bias=False), GeneralRelu(), the lesson's own BatchNorm (lesson 07)
  cnn-lib-bn  the same with nn.BatchNorm2d
  cnn-own-bn-rows  PyTorch's cnn-own-bn, beside the Rust port that takes the statistics on the
              [channels, n*h*w] view (guide page 12)
Each round trains one model in PyTorch (DataLoader(TensorDataset, 128, shuffle=True), the
notebook's loop, validation on 128 images), then runs `bench/user_crate MODEL EPOCHS train-only`
(built if missing) right after; the ratio pairs the two halves of a round, and the table prints the
median seconds per epoch (median over epochs, then rounds) and the median ratio.
"""
import argparse, os, subprocess, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_bench import read_idx  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class GeneralRelu(nn.Module):
    def __init__(self, leak=None, sub=None, maxv=None):
        super().__init__()
        self.leak, self.sub, self.maxv = leak, sub, maxv

    def forward(self, x):
        x = F.leaky_relu(x, self.leak) if self.leak is not None else F.relu(x)
        if self.sub is not None: x.sub_(self.sub)
        if self.maxv is not None: x.clamp_max_(self.maxv)
        return x


class BatchNorm(nn.Module):
    """Lesson 07's hand-written batch norm, as the notebook writes it."""
    def __init__(self, nf, mom=0.1, eps=1e-5):
        super().__init__()
        self.mom, self.eps = mom, eps
        self.mults = nn.Parameter(torch.ones(nf, 1, 1))
        self.adds = nn.Parameter(torch.zeros(nf, 1, 1))
        self.register_buffer('vars', torch.ones(1, nf, 1, 1))
        self.register_buffer('means', torch.zeros(1, nf, 1, 1))

    def update_stats(self, x):
        m = x.mean((0, 2, 3), keepdim=True)
        v = x.var((0, 2, 3), keepdim=True)
        self.means.lerp_(m, self.mom)
        self.vars.lerp_(v, self.mom)
        return m, v

    def forward(self, x):
        if self.training:
            with torch.no_grad(): m, v = self.update_stats(x)
        else: m, v = self.means, self.vars
        x = (x - m) / (v + self.eps).sqrt()
        return x * self.mults + self.adds


def cnn(name):
    blocks = []
    for cin, cout, k in [(1, 8, 5), (8, 16, 3), (16, 32, 3), (32, 32, 3)]:
        name = "cnn-own-bn" if name == "cnn-own-bn-rows" else name
        bn = name in ("cnn-own-bn", "cnn-lib-bn")
        layers = [nn.Conv2d(cin, cout, k, stride=2, padding=k // 2, bias=not bn)]
        layers.append({"cnn-relu": nn.ReLU(), "cnn-grelu": GeneralRelu(0.1, 0.4, 6.0)}.get(name, GeneralRelu()))
        if name == "cnn-own-bn": layers.append(BatchNorm(cout))
        if name == "cnn-lib-bn": layers.append(nn.BatchNorm2d(cout))
        blocks.append(nn.Sequential(*layers))
    return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(32, 10))


def pytorch_epochs(name, epochs, x, y):
    torch.manual_seed(0)
    model = cnn(name)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train = DataLoader(TensorDataset(x[:50000], y[:50000]), 128, shuffle=True)
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        model.train()
        for xb, yb in train:
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()
        model.eval()
        with torch.no_grad():
            F.cross_entropy(model(x[50000:50128]), y[50000:50128])
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def rust_epochs(name, epochs):
    exe = os.path.join(ROOT, "bench/user_crate/target/release/user_crate")
    if not os.path.exists(exe):
        subprocess.run(["cargo", "build", "--release", "-q"], cwd=os.path.join(ROOT, "bench/user_crate"), check=True)
    out = subprocess.run([exe, name, str(epochs), "train-only"], check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--models", default="cnn-relu,cnn-grelu,cnn-own-bn,cnn-own-bn-rows,cnn-lib-bn")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("THREADS", os.cpu_count())))
    d = os.path.join(ROOT, "data/mnist")
    x = torch.tensor(read_idx(f"{d}/train-images-idx3-ubyte.gz").reshape(-1, 784), dtype=torch.float32) / 255
    y = torch.tensor(read_idx(f"{d}/train-labels-idx1-ubyte.gz"), dtype=torch.long)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; seconds per training epoch")
    print(f"{'model':<12}{'pytorch':>9}{'minibatch':>11}{'ratio':>8}")
    for name in a.models.split(","):
        rows = []
        for _ in range(a.rounds):
            p = pytorch_epochs(name, a.epochs, x, y)
            r = rust_epochs(name, a.epochs)
            rows.append((p, r, r / p))
        p, r, ratio = (float(np.median([row[i] for row in rows])) for i in range(3))
        print(f"{name:<12}{p:>9.3f}{r:>11.3f}{ratio:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
