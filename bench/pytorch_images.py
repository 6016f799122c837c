"""The image-folder loader beside torchvision's: `ImageFolder` + `transforms.v2` + `DataLoader`
against `minibatch bench images` on the same JPEG files.

Install PyTorch first (the project never depends on it):  python3 -m pip install torch torchvision numpy
Run from the project root:    python3 bench/pytorch_images.py [--dir /tmp/photos] [--rounds 3]

Without a folder of photos of your own (`--dir` an Imagenette-like folder), it writes 2,000
synthetic JPEG "photos" (smooth random colour fields, 320x240 to 500x375, 10 classes) to
--dir first. Each round times one pass of torchvision (RandomResizedCrop(128),
RandomHorizontalFlip, ToDtype(float32, scale=True), Normalize; DataLoader(bs 64, shuffle,
num_workers=W)) then one of `minibatch bench images --size 128 --augment standard --workers W`,
for W = 0 and 2; the ratio pairs the two of a round, and the table gives the medians.
"""
import argparse, json, os, subprocess, time

import numpy as np
import torch
from torchvision import datasets
from torchvision.transforms import v2


def make_photos(d, n=2000, classes=10):
    from PIL import Image
    rng = np.random.default_rng(0)
    sizes = [(320, 240), (375, 500), (500, 375), (400, 300), (333, 500)]
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        small = rng.integers(0, 256, (h // 16 + 2, w // 16 + 2, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((w, h), Image.BICUBIC)
        sub = os.path.join(d, "train", f"class{i % classes}")
        os.makedirs(sub, exist_ok=True)
        img.save(os.path.join(sub, f"{i}.jpg"), quality=90)


def torchvision_pass(d, workers):
    tf = v2.Compose([v2.RandomResizedCrop(128), v2.RandomHorizontalFlip(), v2.PILToTensor(),
                     v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.25] * 3)])
    ds = datasets.ImageFolder(os.path.join(d, "train"), transform=tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=workers)
    t = time.perf_counter()
    for xb, yb in dl:
        pass
    return len(ds) / (time.perf_counter() - t)


def minibatch_pass(d, workers):
    exe = os.path.join("target", "release", "minibatch")
    if not os.path.exists(exe):
        subprocess.run(["cargo", "build", "--release"], check=True)
    cmd = [exe, "bench", "images", "--data-dir", d, "--size", "128", "--augment", "standard", "--workers",
           str(workers), "--epochs", "1", "--json"]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["images_per_second"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/minibatch-photos")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if not os.path.isdir(os.path.join(a.dir, "train")):
        make_photos(a.dir)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}; pictures per second, one pass each, median of {a.rounds} rounds")
    print(f"{'workers':>7}{'torchvision':>13}{'minibatch':>11}{'minibatch / torchvision':>25}")
    for workers in (0, 2):
        rows = []
        for _ in range(a.rounds):
            t, m = torchvision_pass(a.dir, workers), minibatch_pass(a.dir, workers)
            rows.append((t, m, m / t))
        t, m, r = (float(np.median([row[i] for row in rows])) for i in range(3))
        print(f"{workers:>7}{t:>13.0f}{m:>11.0f}{r:>25.2f}", flush=True)


if __name__ == "__main__":
    main()
