"""Checks that PyTorch loads minibatch's saved weights into the same nn.Sequential and computes the
same test loss and accuracy as `minibatch eval`, for the notebook's MLP and for the lesson's CNN
with batch norm (its running statistics included; needs torch, safetensors and numpy).

Run from the project root:  python3 bench/pytorch_load_check.py
"""
import json, os, subprocess, tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

from pytorch_bench import cnn, read_idx


def check(exe, flags, model):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.safetensors")
        subprocess.run([exe, "train", "--epochs", "1", "--json", "--save", path, *flags], check=True,
                       capture_output=True)
        ours = json.loads(subprocess.run([exe, "eval", "--load", path, "--json"], check=True, capture_output=True,
                                         text=True).stdout)
        model.load_state_dict(load_file(path))  # strict: every name and shape must match
    model.eval()
    x = torch.tensor(read_idx("data/mnist/t10k-images-idx3-ubyte.gz").reshape(10000, 784), dtype=torch.float32) / 255.0
    y = torch.tensor(read_idx("data/mnist/t10k-labels-idx1-ubyte.gz"), dtype=torch.int64)
    with torch.no_grad():
        out = model(x)
    loss, acc = float(F.cross_entropy(out, y)), float((out.argmax(1) == y).float().mean())
    print(f"{' '.join(flags) or 'mlp'}: minibatch eval loss {ours['loss']:.6f} accuracy {ours['accuracy']:.4f}; "
          f"PyTorch loss {loss:.6f} accuracy {acc:.4f}")
    assert abs(loss - ours["loss"]) < 1e-4 and abs(acc - ours["accuracy"]) < 1e-6, "PyTorch disagrees"


def main():
    exe = os.path.join("target", "release", "minibatch")
    if not os.path.exists(exe):
        subprocess.run(["cargo", "build", "--release"], check=True)
    check(exe, [], nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10)))
    check(exe, ["--model", "cnn-bn"], cnn(True))
    print("PyTorch loads the weights into the same nn.Sequential and agrees.")


if __name__ == "__main__":
    main()
