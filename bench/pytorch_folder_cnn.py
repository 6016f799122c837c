"""A small CNN on a 10-class folder of 32x32 pictures, minibatch beside PyTorch: the same model
(`cnn-bn` on 3 channels), pipeline (decode, resize and centre crop to 32, normalise by the
training pictures' channel statistics; batches of 128, shuffled, the last short one dropped),
optimizer (SGD, momentum 0.9, one-cycle to 0.4) and epochs; seconds per epoch (training and
validation) and validation accuracy after the last epoch.

Install PyTorch first (the project never depends on it):  python3 -m pip install torch torchvision numpy
Run from the project root:    python3 bench/pytorch_folder_cnn.py [--epochs 3] [--workers 1] [--rounds 2]

The folder (written once to --dir): MNIST's first 20,000 training digits and 4,000 of its
validation digits as coloured 32x32 PNG files (a foreground and a background colour per picture)
in `train/<digit>` and `valid/<digit>`. minibatch: `minibatch train --data-dir DIR --model cnn-bn
--size 32 --augment none` (target/release/minibatch, built if missing).
"""
import argparse, json, os, subprocess, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision import datasets
from torchvision.transforms import v2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_bench import read_idx  # noqa: E402


def make_folder(d, n_train=20000, n_valid=4000):
    from PIL import Image
    x = read_idx("data/mnist/train-images-idx3-ubyte.gz").reshape(-1, 28, 28)
    y = read_idx("data/mnist/train-labels-idx1-ubyte.gz")
    for split, idx in [("train", range(n_train)), ("valid", range(50000, 50000 + n_valid))]:
        for i in idx:
            t = x[i].astype(np.float64)[..., None] / 255.0
            fg = np.array([200, i * 37 % 200, 60 + (i % 3) * 60], np.float64)
            bg = np.array([i * 11 % 90, 20, 40], np.float64)
            img = Image.fromarray((bg * (1 - t) + fg * t).round().astype(np.uint8)).resize((32, 32), Image.BILINEAR)
            sub = os.path.join(d, split, str(y[i]))
            os.makedirs(sub, exist_ok=True)
            img.save(os.path.join(sub, f"{i}.png"))


def cnn_bn():
    blocks = []
    for cin, cout, k in [(3, 8, 5), (8, 16, 3), (16, 32, 3), (32, 32, 3)]:
        conv = nn.Conv2d(cin, cout, k, stride=2, padding=k // 2, bias=False)
        nn.init.kaiming_normal_(conv.weight)
        blocks.append(nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU()))
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def channel_stats(ds, n=512):
    """The mean and std of the pixels of n pictures spread evenly over the set (as minibatch's)."""
    take = min(n, len(ds.samples))
    px = np.concatenate([np.asarray(ds.loader(ds.samples[k * len(ds.samples) // take][0]), np.float64).reshape(-1, 3)
                         for k in range(take)]) / 255.0
    return px.mean(0).tolist(), np.sqrt(np.maximum((px ** 2).mean(0) - px.mean(0) ** 2, 0)).tolist()


def pytorch_run(d, epochs, workers, seed=0):
    torch.manual_seed(seed)
    mean, std = channel_stats(datasets.ImageFolder(os.path.join(d, "train")))
    tf = v2.Compose([v2.Resize(32), v2.CenterCrop(32), v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True),
                     v2.Normalize(mean, std)])
    train = datasets.ImageFolder(os.path.join(d, "train"), transform=tf)
    valid = datasets.ImageFolder(os.path.join(d, "valid"), transform=tf)
    kw = dict(num_workers=workers, persistent_workers=workers > 0)
    tdl = torch.utils.data.DataLoader(train, batch_size=128, shuffle=True, drop_last=True, **kw)
    vdl = torch.utils.data.DataLoader(valid, batch_size=256, **kw)
    model = cnn_bn()
    opt = torch.optim.SGD(model.parameters(), lr=0.4, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.4, total_steps=epochs * len(tdl))
    seconds = []
    for _ in range(epochs):
        t = time.perf_counter()
        model.train()
        for xb, yb in tdl:
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
            opt.zero_grad()
            sched.step()
        model.eval()
        right = 0
        with torch.no_grad():
            for xb, yb in vdl:
                right += (model(xb).argmax(1) == yb).sum().item()
        seconds.append(time.perf_counter() - t)
    return sum(seconds) / len(seconds), right / len(valid)


def minibatch_run(d, epochs, workers, seed=0):
    exe = "target/release/minibatch"
    args = [exe, "train", "--data-dir", d, "--model", "cnn-bn", "--size", "32", "--augment", "none",
            "--epochs", str(epochs), "--workers", str(workers), "--seed", str(seed), "--json"]
    lines = [json.loads(l) for l in subprocess.run(args, check=True, capture_output=True, text=True).stdout.splitlines()]
    return sum(l["seconds"] for l in lines) / len(lines), lines[-1]["valid_accuracy"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", default="/tmp/minibatch-digits32")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(os.cpu_count())
    if not os.path.isdir(os.path.join(a.dir, "valid")):
        make_folder(a.dir)
    if not os.path.exists("target/release/minibatch"):
        subprocess.run(["cargo", "build", "--release", "-p", "minibatch-cli"], check=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.workers} loader workers, {a.epochs} epochs")
    print("round  pytorch s/epoch  acc     minibatch s/epoch  acc     ratio")
    for r in range(a.rounds):
        pt, pa = pytorch_run(a.dir, a.epochs, a.workers, seed=r)
        mt, ma = minibatch_run(a.dir, a.epochs, a.workers, seed=r)
        print(f"{r:5}  {pt:15.2f}  {pa:.4f}  {mt:17.2f}  {ma:.4f}  {mt / pt:.2f}", flush=True)


if __name__ == "__main__":
    main()
