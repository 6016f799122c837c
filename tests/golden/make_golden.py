"""Writes the reference values in this folder, computed by PyTorch.

Run from anywhere: python3 tests/golden/make_golden.py [path/to/mnist] (default: the bundled data/mnist)  (needs torch and numpy)
Each JSON file holds tensors as {"shape": [...], "data": [...flat, row-major...]}.
"""
import gzip, json, math, os, sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
OUT = os.path.dirname(os.path.abspath(__file__))


def t(x):
    x = x.detach().to(torch.float64) if x.is_floating_point() else x.detach()
    return {"shape": list(x.shape), "data": x.flatten().tolist()}


def t32(x):
    """`t`, each value written with the 9 digits that hold an f32 exactly (a smaller file)."""
    d = t(x)
    if x.is_floating_point():
        d["data"] = [float(f"{v:.9g}") for v in d["data"]]
    return d


def dump(name, obj, indent=1):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f, indent=indent)
        f.write("\n")


def losses():
    g = torch.Generator().manual_seed(1)
    cases = {
        "small": torch.randn(6, 10, generator=g),
        "large_logits": torch.randn(4, 10, generator=g) * 1000.0,  # exp overflows without LogSumExp
        "one_hot_like": torch.tensor([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0], [-50.0, 50.0, 0.0]]),
    }
    out = {}
    for name, logits in cases.items():
        logits = logits.clone().requires_grad_(True)
        n, c = logits.shape
        target = torch.arange(n) % c
        ce = F.cross_entropy(logits, target)
        ce.backward()
        out[name] = {
            "logits": t(logits),
            "target": t(target),
            "softmax": t(F.softmax(logits, -1)),
            "log_softmax": t(F.log_softmax(logits, -1)),
            "logsumexp": t(logits.logsumexp(-1)),
            "nll_of_log_softmax": float(F.nll_loss(F.log_softmax(logits, -1), target)),
            "cross_entropy": float(ce),
            "cross_entropy_grad": t(logits.grad),
            "accuracy": float((logits.argmax(-1) == target).float().mean()),
        }
    dump("losses.json", out)


def linear_and_reprs():
    torch.manual_seed(2)
    lin = nn.Linear(5, 3)
    x = torch.randn(4, 5, requires_grad=True)
    y = F.relu(lin(x))
    y.sum().backward()
    out = {
        "weight": t(lin.weight), "bias": t(lin.bias), "x": t(x), "relu_linear_out": t(y),
        "grad_weight": t(lin.weight.grad), "grad_bias": t(lin.bias.grad), "grad_x": t(x.grad),
        "init_note": "nn.Linear init: weight ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform a=sqrt(5)); bias the same bound",
    }
    dump("linear.json", out)

    class Model(nn.Module):
        def __init__(self, n_in, nh, n_out):
            super().__init__()
            self.l1, self.l2 = nn.Linear(n_in, nh), nn.Linear(nh, n_out)

    class Registered(nn.Module):
        def __init__(self, layers):
            super().__init__()
            for i, l in enumerate(layers): self.add_module(f"layer_{i}", l)

    class SequentialModel(nn.Module):
        def __init__(self, layers):
            super().__init__()
            self.layers = nn.ModuleList(layers)

    layers = lambda: [nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10)]
    seq = nn.Sequential(*layers())
    dump("reprs.json", {
        "linear": repr(nn.Linear(784, 50)),
        "linear_no_bias": repr(nn.Linear(3, 2, bias=False)),
        "relu": repr(nn.ReLU()),
        "model_l1_l2": repr(Model(784, 50, 10)),
        "registered_layers": repr(Registered(layers())),
        "module_list_model": repr(SequentialModel(layers())),
        "sequential": repr(seq),
        "sequential_named_parameters": [[n, list(p.shape)] for n, p in seq.named_parameters()],
        "model_named_children": [n for n, _ in Model(784, 50, 10).named_children()],
    })


def optimizers():
    g = torch.Generator().manual_seed(3)
    p0 = torch.randn(2, 3, generator=g)
    grads = [torch.randn(2, 3, generator=g) for _ in range(6)]
    configs = {
        "sgd": (torch.optim.SGD, dict(lr=0.1)),
        "sgd_momentum": (torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
        "sgd_momentum_dampening": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.5)),
        "sgd_nesterov_wd": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        "adam": (torch.optim.Adam, dict(lr=0.01)),
        "adam_wd": (torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
        "adamw": (torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
        "rmsprop": (torch.optim.RMSprop, dict(lr=0.01, alpha=0.9)),
    }
    out = {"p0": t(p0), "grads": [t(x) for x in grads], "runs": {}}
    for name, (cls, kw) in configs.items():
        p = nn.Parameter(p0.clone())
        opt = cls([p], **kw)
        traj = []
        for gr in grads:
            p.grad = gr.clone()
            opt.step()
            traj.append(t(p))
        out["runs"][name] = {"optimizer": cls.__name__, "kwargs": kw, "after_each_step": traj}
    dump("optimizers.json", out)


def schedules():
    out = {}
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.95)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100)
    lrs, moms = [], []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"]); moms.append(opt.param_groups[0]["momentum"])
        opt.step(); sched.step()
    out["one_cycle"] = {"kwargs": {"max_lr": 0.1, "total_steps": 100, "pct_start": 0.3, "div_factor": 25.0,
                                   "final_div_factor": 1e4, "anneal": "cos", "base_momentum": 0.85,
                                   "max_momentum": 0.95}, "lr": lrs, "momentum": moms}
    opt = torch.optim.SGD([p], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=50, eta_min=0.001)
    lrs = []
    for _ in range(60):
        lrs.append(opt.param_groups[0]["lr"]); opt.step(); sched.step()
    out["cosine"] = {"kwargs": {"lr": 0.1, "T_max": 50, "eta_min": 0.001}, "lr": lrs}
    dump("schedules.json", out)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mnist_steps(mnist_dir):
    """The notebook's model and SGD on the first 640 training images, in order: 10 steps of bs 64."""
    x = read_idx(os.path.join(mnist_dir, "train-images-idx3-ubyte.gz"))[:640].reshape(640, 784)
    y = read_idx(os.path.join(mnist_dir, "train-labels-idx1-ubyte.gz"))[:640]
    x = torch.tensor(x, dtype=torch.float32) / 255.0
    y = torch.tensor(y, dtype=torch.int64)
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))
    init = {n: t(p) for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses, accs = [], []
    for i in range(10):
        xb, yb = x[i * 64:(i + 1) * 64], y[i * 64:(i + 1) * 64]
        pred = model(xb)
        loss = F.cross_entropy(pred, yb)
        losses.append(float(loss)); accs.append(float((pred.argmax(1) == yb).float().mean()))
        loss.backward(); opt.step(); opt.zero_grad()
    final = {n: t(p) for n, p in model.named_parameters()}
    dump("mnist_sgd_steps.json", {
        "what": "nn.Sequential(Linear(784,50), ReLU(), Linear(50,10)), SGD lr 0.5, cross_entropy, "
                "first 640 training images / 255 in order, batches of 64; loss and accuracy before each step",
        "initial_parameters": init, "loss_before_step": losses, "batch_accuracy_before_step": accs,
        "final_parameters": final,
    })


def general_relu():
    """The lesson's GeneralRelu (06_cuda_cnn_hooks_init): leaky ReLU, then subtract, then clamp."""
    g = torch.Generator().manual_seed(2)
    x = (torch.randn(4, 6, generator=g) * 3.0)
    out = {"x": t(x), "cases": []}
    for leak, sub, maxv in [(None, None, None), (0.1, 0.4, 6.0), (0.2, None, 1.5), (None, 0.5, None)]:
        xg = x.clone().requires_grad_(True)
        y = F.leaky_relu(xg, leak) if leak is not None else F.relu(xg)
        if sub is not None:
            y = y - sub
        if maxv is not None:
            y = y.clamp_max(maxv)
        (y * torch.arange(1.0, 25.0).reshape(4, 6)).sum().backward()
        out["cases"].append({"leak": leak, "sub": sub, "maxv": maxv, "y": t(y), "grad_x": t(xg.grad)})
    dump("general_relu.json", out)


def conv():
    """nn.Conv2d with PyTorch's parameters on odd sizes, stride 2 with padding (the lesson's
    blocks), with and without bias, and groups, also strided on maps whose two sides leave
    different remainders, and 3x3 convolutions at stride 1 padded 1 (run directly, without
    unfolding) on non-square maps and a map of one row: output and gradients of sum(y * w)."""
    g = torch.Generator().manual_seed(3)
    cases = []
    for cin, cout, k, stride, pad, bias, groups, size in [
        (3, 4, 3, 2, 1, True, 1, 7),
        (1, 8, 5, 2, 2, True, 1, 9),
        (4, 6, 3, 1, 0, False, 2, 6),
        (6, 16, 1, 2, 1, True, 2, (2, 1)),
        (6, 9, 3, 2, 1, False, 3, (7, 6)),
        (4, 4, 3, 3, 0, True, 4, (8, 10)),
        (8, 10, 3, 1, 1, True, 1, (5, 7)),
        (3, 16, 3, 1, 1, False, 1, (1, 9)),
    ]:
        m = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=bias, groups=groups)
        with torch.no_grad():
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.3)
            if bias:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.3)
        h, w = size if isinstance(size, tuple) else (size, size)
        x = torch.randn(2, cin, h, w, generator=g).requires_grad_(True)
        y = m(x)
        w = torch.randn(y.shape, generator=g)
        (y * w).sum().backward()
        case = {"in": cin, "out": cout, "kernel": k, "stride": stride, "padding": pad, "groups": groups,
                "repr": repr(m), "weight": t(m.weight), "x": t(x), "y": t(y), "w": t(w),
                "grad_weight": t(m.weight.grad), "grad_x": t(x.grad)}
        if bias:
            case["bias"] = t(m.bias)
            case["grad_bias"] = t(m.bias.grad)
        cases.append(case)
    dump("conv.json", {"cases": cases})


def pool():
    """nn.AdaptiveAvgPool2d on a 7x7 input, to sizes that divide it and that do not."""
    g = torch.Generator().manual_seed(4)
    x0 = torch.randn(2, 3, 7, 7, generator=g)
    cases = []
    for size in [(1, 1), (3, 3), (2, 4)]:
        x = x0.clone().requires_grad_(True)
        y = nn.AdaptiveAvgPool2d(size)(x)
        w = torch.randn(y.shape, generator=g)
        (y * w).sum().backward()
        cases.append({"size": list(size), "y": t(y), "w": t(w), "grad_x": t(x.grad)})
    dump("pool.json", {"x": t(x0), "cases": cases})


def max_pool():
    """nn.MaxPool2d where candle's backward is wrong or missing: 2x2 on 4x4 and 7x7 (a size it
    does not divide), kernel 3 stride 2 padding 1 (kernel != stride, overlapping windows)."""
    g = torch.Generator().manual_seed(5)
    cases = []
    for size, k, stride, pad in [(4, 2, 2, 0), (7, 2, 2, 0), (7, 3, 2, 1), (6, 3, 1, 0)]:
        x = torch.randn(2, 3, size, size, generator=g).requires_grad_(True)
        y = F.max_pool2d(x, k, stride, pad)
        w = torch.randn(y.shape, generator=g)
        (y * w).sum().backward()
        cases.append({"kernel": k, "stride": stride, "padding": pad, "x": t(x), "y": t(y), "w": t(w),
                      "grad_x": t(x.grad), "repr": repr(nn.MaxPool2d(k, stride, pad))})
    dump("max_pool.json", {"cases": cases})


def max_pool_ties():
    """nn.MaxPool2d's choice of the element its gradient goes to: the first maximum (row-major)
    on a tie, the last NaN where a window holds several."""
    nan = float("nan")
    inputs = [([[1., nan, 2., nan], [3., 3., 0., 1.], [2., 3., 3., 1.], [0., 0., 1., 1.]], 2, 2, 0),
              ([[1., 3., 3.], [3., 2., 1.], [0., 3., 3.]], 3, 2, 1),
              ([[nan, nan, 1.], [3., nan, 1.], [nan, 2., 2.]], 2, 1, 0)]
    cases = []
    for rows, k, stride, pad in inputs:
        x = torch.tensor([[rows]]).requires_grad_(True)
        y = F.max_pool2d(x, k, stride, pad)
        y.sum().backward()
        case = {"x": t(x), "y": t(y), "grad_x": t(x.grad)}
        for v in case.values():  # JSON has no NaN: null stands for it
            v["data"] = [None if math.isnan(d) else d for d in v["data"]]
        cases.append({"kernel": k, "stride": stride, "padding": pad, **case})
    dump("max_pool_ties.json", {"cases": cases}, indent=None)


def avg_pool_small():
    """nn.AvgPool2d(2, ceil_mode=True) (xresnet's shortcut pooling) on maps smaller than or not
    divided by its kernel: 1x1, 1x3 and 3x3, with the gradient of sum(y * w)."""
    g = torch.Generator().manual_seed(7)
    cases = []
    for h, w in [(1, 1), (1, 3), (3, 3)]:
        x = torch.randn(2, 3, h, w, generator=g).requires_grad_(True)
        y = F.avg_pool2d(x, 2, ceil_mode=True)
        wt = torch.randn(y.shape, generator=g)
        (y * wt).sum().backward()
        cases.append({"x": t(x), "y": t(y), "w": t(wt), "grad_x": t(x.grad)})
    dump("avg_pool_small.json", {"cases": cases}, indent=None)


def avg_pool():
    """nn.AvgPool2d: 2x2 on 7x7 (a size it does not divide), kernel 3 stride 2 padding 1 with and
    without count_include_pad, ceil_mode, kernel != stride."""
    g = torch.Generator().manual_seed(6)
    cases = []
    for size, k, stride, pad, include, ceil in [(4, 2, 2, 0, True, False), (7, 2, 2, 0, True, False),
                                                (7, 3, 2, 1, True, False), (7, 3, 2, 1, False, False),
                                                (6, 3, 1, 0, True, False), (7, 2, 2, 1, True, True)]:
        m = nn.AvgPool2d(k, stride, pad, ceil_mode=ceil, count_include_pad=include)
        x = torch.randn(2, 3, size, size, generator=g).requires_grad_(True)
        y = m(x)
        w = torch.randn(y.shape, generator=g)
        (y * w).sum().backward()
        cases.append({"kernel": k, "stride": stride, "padding": pad, "count_include_pad": include,
                      "ceil_mode": ceil, "x": t(x), "y": t(y), "w": t(w), "grad_x": t(x.grad),
                      "repr": repr(m)})
    dump("avg_pool.json", {"cases": cases})


def batch_norm():
    """nn.BatchNorm2d/1d: three training steps (outputs, gradients of sum(y * w) for the input,
    weight and bias, running statistics after each step), then evaluation mode on the running
    statistics; and nn.LayerNorm over the last one and two dimensions."""
    g = torch.Generator().manual_seed(7)
    cases = []
    for kind, shape in [("2d", (4, 3, 5, 5)), ("1d", (6, 4)), ("1d", (5, 3, 7))]:
        c = shape[1]
        m = nn.BatchNorm2d(c) if kind == "2d" else nn.BatchNorm1d(c)
        with torch.no_grad():
            m.weight.copy_(1 + 0.3 * torch.randn(c, generator=g))
            m.bias.copy_(0.3 * torch.randn(c, generator=g))
        case = {"kind": kind, "repr": repr(m), "weight": t(m.weight), "bias": t(m.bias), "steps": []}
        for _ in range(3):
            x = (2 * torch.randn(shape, generator=g) + 1).requires_grad_(True)
            m.zero_grad()
            y = m(x)
            w = torch.randn(y.shape, generator=g)
            (y * w).sum().backward()
            case["steps"].append({"x": t(x), "y": t(y), "w": t(w), "grad_x": t(x.grad),
                                  "grad_weight": t(m.weight.grad), "grad_bias": t(m.bias.grad),
                                  "running_mean": t(m.running_mean), "running_var": t(m.running_var),
                                  "num_batches_tracked": int(m.num_batches_tracked)})
        m.eval()
        x = torch.randn(shape, generator=g)
        case["eval"] = {"x": t(x), "y": t(m(x))}
        cases.append(case)
    norms = []
    for shape, normalized in [((4, 3, 5), (5,)), ((4, 3, 5), (3, 5))]:
        m = nn.LayerNorm(normalized)
        with torch.no_grad():
            m.weight.copy_(1 + 0.3 * torch.randn(normalized, generator=g))
            m.bias.copy_(0.3 * torch.randn(normalized, generator=g))
        x = (2 * torch.randn(shape, generator=g) + 1).requires_grad_(True)
        y = m(x)
        w = torch.randn(y.shape, generator=g)
        (y * w).sum().backward()
        norms.append({"normalized_shape": list(normalized), "repr": repr(m), "weight": t(m.weight),
                      "bias": t(m.bias), "x": t(x), "y": t(y), "w": t(w), "grad_x": t(x.grad),
                      "grad_weight": t(m.weight.grad), "grad_bias": t(m.bias.grad)})
    dump("norm.json", {"batch_norm": cases, "layer_norm": norms})


def distributed_sampler():
    """torch.utils.data.DistributedSampler's shares in order (shuffle=False; its shuffled order
    comes from torch's generator, which minibatch does not reproduce), padded and with drop_last,
    on lengths that divide by the world size and that do not, and on fewer items than processes."""
    from torch.utils.data import DistributedSampler
    cases = []
    for n, world in [(10, 3), (11, 4), (12, 4), (7, 8), (5000, 2)]:
        for drop_last in [False, True]:
            shares = [list(DistributedSampler(range(n), num_replicas=world, rank=r, shuffle=False,
                                              drop_last=drop_last)) for r in range(world)]
            cases.append({"n": n, "world": world, "drop_last": drop_last, "shares": shares})
    dump("distributed_sampler.json", {"cases": cases})


class LabelSmoothingCrossEntropy(nn.Module):
    """Lesson 10b's, as the notebook writes it."""
    def __init__(self, eps=0.1):
        super().__init__()
        self.eps = eps

    def forward(self, output, target):
        c = output.size()[-1]
        log_preds = F.log_softmax(output, dim=-1)
        loss = -log_preds.sum(dim=-1).mean()
        nll = F.nll_loss(log_preds, target)
        return self.eps * (loss / c) + (1 - self.eps) * nll


def label_smoothing_and_mixup():
    """Lesson 10b: label smoothing (the lesson's class and F.cross_entropy(label_smoothing=eps)),
    cross entropy of class probabilities (PyTorch's soft targets), and one MixUp step as the
    lesson computes it from given draws of lambda and a given shuffle."""
    g = torch.Generator().manual_seed(10)
    logits = (torch.randn(6, 5, generator=g) * 3).requires_grad_()
    target = torch.tensor([0, 4, 2, 2, 1, 3])
    smoothing = []
    for eps in [0.0, 0.1, 0.3]:
        logits.grad = None
        loss = F.cross_entropy(logits, target, label_smoothing=eps)
        lesson = LabelSmoothingCrossEntropy(eps)(logits, target)
        assert torch.allclose(loss, lesson, atol=1e-6), (loss, lesson)
        loss.backward()
        smoothing.append({"eps": eps, "loss": loss.item(), "grad": t(logits.grad)})
    probs = torch.softmax(torch.randn(6, 5, generator=g), dim=-1)
    soft = []
    for eps in [0.0, 0.1]:
        logits.grad = None
        loss = F.cross_entropy(logits, probs, label_smoothing=eps)
        loss.backward()
        soft.append({"eps": eps, "loss": loss.item(), "grad": t(logits.grad)})
    # MixUp (10b's MixUp callback): lambda per example from the given draws, the larger of
    # lambda and 1 - lambda, the batch against its shuffle; the loss mixed as the lesson mixes it.
    x = torch.randn(4, 1, 3, 3, generator=g)
    y = torch.tensor([2, 0, 1, 2])
    draws = torch.tensor([0.2, 0.7, 0.5, 0.95])
    shuffle = torch.tensor([3, 0, 2, 1])
    lam = torch.stack([draws, 1 - draws], 1).max(1)[0]
    xb1, yb1 = x[shuffle], y[shuffle]
    mixed = lam.view(-1, 1, 1, 1) * x + (1 - lam.view(-1, 1, 1, 1)) * xb1
    preds = torch.randn(4, 3, generator=g, requires_grad=True)
    loss1 = F.cross_entropy(preds, yb1, reduction="none")
    loss0 = F.cross_entropy(preds, y, reduction="none")
    loss = (lam * loss0 + (1 - lam) * loss1).mean()
    loss.backward()
    mixup = {"x": t(x), "y": t(y), "draws": t(draws), "shuffle": shuffle.tolist(), "lambda": t(lam),
             "mixed": t(mixed), "preds": t(preds), "loss": loss.item(), "grad": t(preds.grad)}
    dump("lesson10b.json", {"logits": t(logits), "target": t(target), "smoothing": smoothing,
                            "probs": t(probs), "soft": soft, "mixup": mixup})


def xresnet_module(widths=(64, 128, 256, 512)):
    """Lesson 11's XResNet as the notebook writes it; `widths` (the lesson's 64..512) is the one
    addition, so that a small one can be checked value by value."""
    act_fn = nn.ReLU(inplace=True)

    def init_cnn(m):
        if getattr(m, 'bias', None) is not None: nn.init.constant_(m.bias, 0)
        if isinstance(m, (nn.Conv2d, nn.Linear)): nn.init.kaiming_normal_(m.weight)
        for l in m.children(): init_cnn(l)

    def conv(ni, nf, ks=3, stride=1, bias=False):
        return nn.Conv2d(ni, nf, kernel_size=ks, stride=stride, padding=ks // 2, bias=bias)

    def noop(x): return x

    def conv_layer(ni, nf, ks=3, stride=1, zero_bn=False, act=True):
        bn = nn.BatchNorm2d(nf)
        nn.init.constant_(bn.weight, 0. if zero_bn else 1.)
        layers = [conv(ni, nf, ks, stride=stride), bn]
        if act: layers.append(act_fn)
        return nn.Sequential(*layers)

    class ResBlock(nn.Module):
        def __init__(self, expansion, ni, nh, stride=1):
            super().__init__()
            nf, ni = nh * expansion, ni * expansion
            layers = [conv_layer(ni, nh, 3, stride=stride), conv_layer(nh, nf, 3, zero_bn=True, act=False)
                      ] if expansion == 1 else [
                conv_layer(ni, nh, 1), conv_layer(nh, nh, 3, stride=stride), conv_layer(nh, nf, 1, zero_bn=True, act=False)]
            self.convs = nn.Sequential(*layers)
            self.idconv = noop if ni == nf else conv_layer(ni, nf, 1, act=False)
            self.pool = noop if stride == 1 else nn.AvgPool2d(2, ceil_mode=True)

        def forward(self, x): return act_fn(self.convs(x) + self.idconv(self.pool(x)))

    class XResNet(nn.Sequential):
        @classmethod
        def create(cls, expansion, layers, c_in=3, c_out=1000):
            nfs = [c_in, (c_in + 1) * 8, widths[0], widths[0]]
            stem = [conv_layer(nfs[i], nfs[i + 1], stride=2 if i == 0 else 1) for i in range(3)]
            nfs = [widths[0] // expansion] + list(widths)
            res_layers = [cls._make_layer(expansion, nfs[i], nfs[i + 1], n_blocks=l, stride=1 if i == 0 else 2)
                          for i, l in enumerate(layers)]
            res = cls(*stem, nn.MaxPool2d(kernel_size=3, stride=2, padding=1), *res_layers,
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(nfs[-1] * expansion, c_out))
            init_cnn(res)
            return res

        @staticmethod
        def _make_layer(expansion, ni, nf, n_blocks, stride):
            return nn.Sequential(*[ResBlock(expansion, ni if i == 0 else nf, nf, stride if i == 0 else 1)
                                   for i in range(n_blocks)])
    return XResNet


def xresnet():
    """Lesson 11's XResNet: the state_dict names and shapes of xresnet18/34/50, and two small ones
    (basic and bottleneck blocks, narrow widths) with their weights, an input, the output in
    training mode, the gradients of sum(y * w) w.r.t. the input and every parameter, and the
    running statistics after that forward."""
    full = xresnet_module()
    names = {}
    for name, expansion, layers in [("xresnet18", 1, [2, 2, 2, 2]), ("xresnet34", 1, [3, 4, 6, 3]),
                                     ("xresnet50", 4, [3, 4, 6, 3])]:
        sd = full.create(expansion, layers, c_in=3, c_out=10).state_dict()
        names[name] = [[k, list(v.shape)] for k, v in sd.items()]
    small = xresnet_module(widths=(8, 16))
    cases = {}
    g = torch.Generator().manual_seed(11)
    for name, expansion, layers, c_in in [("basic", 1, [1, 2], 1), ("bottleneck", 4, [2, 1], 3)]:
        torch.manual_seed(11)
        model = small.create(expansion, layers, c_in=c_in, c_out=5)
        # Non-trivial batch norm weights, so that the zero-initialised ones are not all the test sees.
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=g))
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
        state = {k: t32(v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
        x = torch.randn(2, c_in, 10, 10, generator=g).requires_grad_()
        w = torch.randn(2, 5, generator=g)
        model.train()
        y = model(x)
        (y * w).sum().backward()
        grads = {k: t32(p.grad) for k, p in model.named_parameters()}
        after = {k: t32(v) for k, v in model.state_dict().items() if "running" in k}
        cases[name] = {"expansion": expansion, "layers": layers, "c_in": c_in, "widths": [8, 16], "state": state,
                       "x": t32(x), "w": t32(w), "y": t32(y), "x_grad": t32(x.grad), "grads": grads, "running": after}
    dump("xresnet.json", {"names": names, "cases": cases}, indent=None)


def images():
    """torchvision's transforms (v2) on a 30x20 RGB picture whose pixel (x, y) is (x, y, 9):
    the horizontal flip, the centre crop to 20, Resize(12) then CenterCrop(12) (bilinear,
    antialiased, on uint8), and ToDtype(scale) then Normalize."""
    import torchvision
    from torchvision.transforms.v2 import functional as TF
    w, h = 30, 20
    pic = torch.zeros(3, h, w, dtype=torch.uint8)
    pic[0] = torch.arange(w, dtype=torch.uint8).view(1, w).expand(h, w)
    pic[1] = torch.arange(h, dtype=torch.uint8).view(h, 1).expand(h, w)
    pic[2] = 9
    resized = TF.center_crop(TF.resize(pic, [12], antialias=True), [12])
    # 31 wide: the long side becomes int(12 * 31 / 20) = 18 (18.6 truncated).
    odd = torch.cat([pic, pic[:, :, -1:]], dim=2)
    odd_resized = TF.center_crop(TF.resize(odd, [12], antialias=True), [12])
    mean, std = [0.5, 0.25, 0.1], [0.2, 0.3, 0.4]
    normalized = TF.normalize(TF.to_dtype(pic, torch.float32, scale=True), mean, std)
    dump("images.json", {"torchvision": torchvision.__version__, "width": w, "height": h, "shade": 9,
                         "flip": t(TF.horizontal_flip(pic)), "centre_crop_20": t(TF.center_crop(pic, [20])),
                         "resize_crop_12": t(resized), "resize_crop_12_of_31x20": t(odd_resized), "mean": mean, "std": std, "normalized": t32(normalized)},
         indent=None)


if __name__ == "__main__":
    losses()
    linear_and_reprs()
    optimizers()
    schedules()
    general_relu()
    conv()
    pool()
    max_pool()
    max_pool_ties()
    avg_pool()
    avg_pool_small()
    batch_norm()
    distributed_sampler()
    label_smoothing_and_mixup()
    xresnet()
    images()
    mnist_steps(sys.argv[1] if len(sys.argv) > 1 else os.path.join(OUT, "..", "..", "data", "mnist"))
    print("torch", torch.__version__)
