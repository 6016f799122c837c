"""Lesson 10b's recipes in PyTorch beside `minibatch train`: the same model (`cnn-bn`), data,
optimizer and schedule, plain, with label smoothing and with MixUp; validation accuracy after the
last epoch of each.

Install PyTorch first (the project never depends on it):  python3 -m pip install torch numpy
Run from the project root:    python3 bench/pytorch_recipes.py [--epochs 3] [--seeds 0,1]

PyTorch: SGD(momentum 0.9) under OneCycleLR(max_lr 0.4) over the run, batches of 128 (the last
short one dropped), the first 50,000 MNIST training images, validated on the last 10,000;
label smoothing is F.cross_entropy(label_smoothing=0.1); MixUp is the lesson's (Beta(0.4, 0.4)
per example, the larger of lambda and 1 - lambda, the batch against a shuffle of itself, the
loss mixed). minibatch: `minibatch train --model cnn-bn --epochs N --seed S --json` with
`--label-smoothing 0.1` or `--mixup 0.4` (target/release/minibatch, built if missing).
"""
import argparse, json, os, subprocess, sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_bench import cnn, read_idx  # noqa: E402

RECIPES = {"plain": [], "label-smoothing": ["--label-smoothing", "0.1"], "mixup": ["--mixup", "0.4"]}


def pytorch_run(recipe, epochs, seed, x, y):
    torch.manual_seed(seed)
    model = cnn(True)
    bs = 128
    steps = epochs * (50000 // bs)
    opt = torch.optim.SGD(model.parameters(), lr=0.4, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.4, total_steps=steps)
    beta = torch.distributions.Beta(torch.tensor([0.4]), torch.tensor([0.4]))
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(50000)
        for i in range(0, 50000 - bs + 1, bs):
            idx = perm[i:i + bs]
            xb, yb = x[idx], y[idx]
            if recipe == "mixup":
                lam = beta.sample((bs,)).squeeze(-1)
                lam = torch.stack([lam, 1 - lam], 1).max(1)[0]
                shuffle = torch.randperm(bs)
                xb = lam.view(-1, 1) * xb + (1 - lam.view(-1, 1)) * xb[shuffle]
                out = model(xb)
                loss = (lam * F.cross_entropy(out, yb, reduction="none")
                        + (1 - lam) * F.cross_entropy(out, yb[shuffle], reduction="none")).mean()
            else:
                smoothing = 0.1 if recipe == "label-smoothing" else 0.0
                loss = F.cross_entropy(model(xb), yb, label_smoothing=smoothing)
            loss.backward()
            opt.step()
            opt.zero_grad()
            sched.step()
    model.eval()
    with torch.no_grad():
        return (model(x[50000:]).argmax(1) == y[50000:]).float().mean().item()


def minibatch_run(recipe, epochs, seed):
    exe = os.path.join("target", "release", "minibatch")
    if not os.path.exists(exe):
        subprocess.run(["cargo", "build", "--release"], check=True)
    cmd = [exe, "train", "--model", "cnn-bn", "--epochs", str(epochs), "--seed", str(seed), "--json"] + RECIPES[recipe]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["valid_accuracy"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", default="0,1")
    a = ap.parse_args()
    x = torch.tensor(read_idx("data/mnist/train-images-idx3-ubyte.gz").reshape(-1, 784), dtype=torch.float32) / 255
    y = torch.tensor(read_idx("data/mnist/train-labels-idx1-ubyte.gz"), dtype=torch.int64)
    seeds = [int(s) for s in a.seeds.split(",")]
    print(f"cnn-bn, {a.epochs} epochs, validation accuracy (mean over seeds {seeds})")
    print(f"{'recipe':<16}{'pytorch':>9}{'minibatch':>11}{'difference':>12}")
    for recipe in RECIPES:
        p = sum(pytorch_run(recipe, a.epochs, s, x, y) for s in seeds) / len(seeds)
        m = sum(minibatch_run(recipe, a.epochs, s) for s in seeds) / len(seeds)
        print(f"{recipe:<16}{p:>9.4f}{m:>11.4f}{m - p:>+12.4f}", flush=True)


if __name__ == "__main__":
    main()
