#!/usr/bin/python3
"""Writes tests/golden/<model>.h5: PyTorch reference results for one training step of each
mayfly model, checked by tests/test_models_golden.c (which does not need torch).

Run by developers after changing a model, with Debian's python3-torch:
    /usr/bin/python3 tests/golden/make_golden.py [model ...]

Why the weights are not stored: VGG11 alone has 128.8M parameters (515 MB), MobileNetV3 and
SqueezeNet several MB each. Instead both sides fill every tensor from the same stateless rule
(GOLDEN_RULE below, reimplemented in golden_fill() of the C test), exact in float32, so the files
hold only the batch and the results. Gradients of tensors with more than SAMPLE elements are
stored at SAMPLE fixed indices plus the full tensor's L2 norm.

The reference runs in float64 (weights and input are the float32 values, widened), so the C
float32 result is compared against the exact result, not against another float32 rounding.
Training mode (batch statistics), dropout modules in eval mode (= mayfly's dropout-off step).
`eval_logits` are the logits of model.eval() (running statistics) on the same batch, before it.
Each file also holds the running statistics after PyTorch's one update (running/<name>), which
the test reproduces with kn_model_update_buffers(m, m->batch_stats, kind->bn_momentum).

The weight rule (v1), for tensor number t in state_dict order (parameters and buffers counted
separately) and flat element i:
    h = splitmix64_finalize(t << 40 | i + 0x9E3779B97F4A7C15)
    u = (h >> 40) / 2^24 * 2 - 1                  in [-1, 1), exact in float32
    rank >= 2 parameters (weights)  u * sqrt(6 / fan_in)    fan_in = prod(shape[1:])
    rank-1 names ending ".bias"     0.1 u
    other rank-1 parameters (BN)    1 + 0.25 u
    running_mean                    0.1 u
    running_var                     1 + 0.5 u
computed in double and rounded to float32 once.
"""
import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

SAMPLE = 1024
HERE = os.path.dirname(os.path.abspath(__file__))
MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def rule_uniform(t, count):
    """u in [-1, 1) for elements 0..count-1 of tensor t (float64 array)."""
    out = np.empty(count, dtype=np.float64)
    step = 1 << 22
    with np.errstate(over="ignore"):
        for start in range(0, count, step):
            i = np.arange(start, min(count, start + step), dtype=np.uint64)
            z = (np.uint64(t) << np.uint64(40)) | i
            z = z + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            out[start:start + len(i)] = (z >> np.uint64(40)).astype(np.float64) / 16777216.0 * 2.0 - 1.0
    return out


def rule_tensor(t, name, shape, is_buffer):
    count = int(np.prod(shape)) if len(shape) else 1
    u = rule_uniform(t, count)
    if is_buffer:
        if name.endswith("running_mean"):
            v = 0.1 * u
        else:
            v = 1.0 + 0.5 * u
    elif len(shape) >= 2:
        v = u * math.sqrt(6.0 / float(np.prod(shape[1:])))
    elif name.endswith(".bias"):
        v = 0.1 * u
    else:
        v = 1.0 + 0.25 * u
    return v.astype(np.float32).reshape(shape)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1, self.fc2 = nn.Linear(3136, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


MODELS = {
    # name: (constructor, input shape (C,H,W), batch, BN momentum)
    "mlp": (Mlp, (1, 28, 28), 3, None),
    "cnn": (Cnn, (1, 28, 28), 2, None),
    "vgg11": (lambda: torchvision.models.vgg11(num_classes=10), (3, 32, 32), 2, None),
    "squeezenet1_1": (lambda: torchvision.models.squeezenet1_1(num_classes=10), (3, 32, 32), 3, None),
    "mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(num_classes=10),
                           (3, 32, 32), 16, 0.01),
}


def sample_indices(count):
    if count <= SAMPLE:
        return np.arange(count, dtype=np.int64)
    # evenly spread, offset by a fixed odd stride so rows/channels are not all hit at column 0
    k = np.arange(SAMPLE, dtype=np.int64)
    return (k * count) // SAMPLE + (k * 7919) % max(1, count // SAMPLE)


def make(name):
    ctor, geometry, batch, momentum = MODELS[name]
    torch.manual_seed(0)
    model = ctor()
    sd = model.state_dict()
    params = dict(model.named_parameters())
    param_names = [k for k in sd if k in params]
    buffer_names = [k for k in sd if k not in params and not k.endswith("num_batches_tracked")]
    new_sd = {}
    for t, k in enumerate(param_names):
        new_sd[k] = torch.from_numpy(rule_tensor(t, k, tuple(sd[k].shape), False))
    for t, k in enumerate(buffer_names):
        new_sd[k] = torch.from_numpy(rule_tensor(t, k, tuple(sd[k].shape), True))
    for k in sd:
        if k.endswith("num_batches_tracked"):
            new_sd[k] = sd[k]
    model.load_state_dict(new_sd)
    model = model.double()
    rng = np.random.default_rng(12345)
    x = rng.standard_normal((batch,) + geometry).astype(np.float32)
    y = rng.integers(0, 10, size=batch).astype(np.int64)
    model.eval()  # inference with the rule's running statistics, before any update
    with torch.no_grad():
        eval_logits = model(torch.from_numpy(x).double()).numpy()
    model.train()
    for mod in model.modules():
        if isinstance(mod, nn.Dropout):
            mod.eval()

    logits = model(torch.from_numpy(x).double())
    loss = F.cross_entropy(logits, torch.from_numpy(y))
    loss.backward()

    path = os.path.join(HERE, name + ".h5")
    with h5py.File(path, "w") as f:
        f.attrs["model"] = name
        f.attrs["rule"] = "v1"
        f.attrs["sample"] = SAMPLE
        if momentum is not None:
            f.attrs["bn_momentum"] = momentum
        f["x"] = x
        f["y"] = y
        f["loss"] = np.float64(loss.item())
        f["logits"] = logits.detach().numpy()
        f["eval_logits"] = eval_logits
        for k in param_names:
            g = params[k].grad.detach().numpy().reshape(-1)
            idx = sample_indices(g.size)
            f["grad_norm/" + k] = np.float64(np.linalg.norm(g))
            f["grad_index/" + k] = idx
            f["grad/" + k] = g[idx]
        for k in buffer_names:
            f["running/" + k] = model.state_dict()[k].numpy()
    print(f"{path}: loss {loss.item():.6f}, {len(param_names)} parameter tensors, "
          f"{sum(p.numel() for p in params.values())} parameters, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    torch.set_num_threads(2)
    for name in sys.argv[1:] or list(MODELS):
        make(name)
