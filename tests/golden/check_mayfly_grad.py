#!/usr/bin/python3
"""End-to-end check of bin/mayfly-grad against PyTorch with torch's OWN initial weights (not the
golden rule): saves a torchvision model's state_dict as a mayfly checkpoint with h5py, a random
batch, runs mayfly-grad, and compares loss, logits and every gradient with torch (float64).
It exercises the checkpoint format as torch users will write it (including num_batches_tracked).

Run by developers (needs torch):
    /usr/bin/python3 tests/golden/check_mayfly_grad.py [--seed S] [--batch B] [model ...]
(default: all three models, seed 1 for the weights and 7 for the batch, the batch sizes in
BATCH; --seed S draws both from S, so every S gives weights and a batch no test has seen)
Exit status 0 when every model is within the golden tolerances (loss 1e-5, logits 1e-4,
gradients 1e-4 relative per tensor, floored at 1e-3 x the largest gradient norm)."""
import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BATCH = {"vgg11": 2, "squeezenet1_1": 4, "mobilenet_v3_small": 16}


def check(name, tmp, seed=None, batch_size=None):
    torch.manual_seed(1 if seed is None else seed)
    model = getattr(torchvision.models, name)(num_classes=10)
    weights, batch, out = (os.path.join(tmp, n) for n in ("w.h5", "x.h5", "g.h5"))
    with h5py.File(weights, "w") as f:
        for k, v in model.state_dict().items():
            f[k] = v.numpy()
    B = batch_size or BATCH[name]
    rng = np.random.default_rng(7 if seed is None else seed + 1)
    x = rng.standard_normal((B, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, size=B).astype(np.int64)
    with h5py.File(batch, "w") as f:
        f["x"], f["y"] = x, y
    subprocess.run([os.path.join(ROOT, "bin", "mayfly-grad"), "--model", name, "--weights",
                    weights, "--batch-file", batch, "-o", out], check=True)
    model = model.double().train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    logits = model(torch.from_numpy(x).double())
    loss = F.cross_entropy(logits, torch.from_numpy(y))
    loss.backward()
    ok = True
    with h5py.File(out, "r") as f:
        dl = abs(float(f["loss"][()]) - loss.item())
        dlog = np.abs(f["logits"][()] - logits.detach().numpy()).max()
        ok &= dl <= 1e-5 * max(1, abs(loss.item()))
        ok &= dlog <= 1e-4 * max(1, np.abs(logits.detach().numpy()).max())
        grads = {k: p.grad.numpy() for k, p in model.named_parameters()}
        floor = 1e-3 * max(np.linalg.norm(g) for g in grads.values())
        worst, worst_name = 0.0, ""
        for k, g in grads.items():
            ours = f["grad/" + k][()]
            rel = np.linalg.norm(ours - g) / max(np.linalg.norm(g), floor)
            if rel > worst:
                worst, worst_name = rel, k
        ok &= worst <= 1e-4 and len(f["grad"]) == len(grads)
    print(f"{name}: B={B} seed {seed} loss {loss.item():.6f} |dloss| {dl:.2g} max|dlogit| {dlog:.2g} "
          f"worst grad rel err {worst:.2g} ({worst_name}) -> {'OK' if ok else 'FAIL'}")
    return ok


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="weights and batch seed (default: 1 and 7)")
    parser.add_argument("--batch", type=int, help="samples (default: per model, BATCH)")
    parser.add_argument("models", nargs="*", help=f"any of {', '.join(BATCH)} (default: all)")
    args = parser.parse_args()
    for n in args.models:
        if n not in BATCH:
            parser.error(f"unknown model {n!r} (choose from {', '.join(BATCH)})")
    with tempfile.TemporaryDirectory() as tmp:
        results = [check(n, tmp, args.seed, args.batch) for n in (args.models or list(BATCH))]
    sys.exit(0 if all(results) else 1)
