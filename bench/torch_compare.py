#!/usr/bin/python3
"""Times one training step of a model in PyTorch and in mayfly (bin/mayfly-kernels) with the same
batch size and thread count, and prints both medians and their ratio.

Why: "mayfly's step takes X ms" only means something next to what the framework the paper used
does on the same machine. Same step on both sides: train mode (batch statistics), dropout off,
mean cross-entropy, zeroed gradients, forward + backward; no optimizer.

    /usr/bin/python3 bench/torch_compare.py [--batch 64] [--threads 1] [--repeat 5]
                                            [--models squeezenet1_1,mobilenet_v3_small,...]
                                            [--kernels-bin PATH]
Output, one line per model:
    model  batch  threads  torch_ms  mayfly_ms  mayfly/torch
The two sides run back to back (torch first, then mayfly); on a shared box repeat the command
and compare ratios. Needs Debian's python3-torch (use /usr/bin/python3)."""
import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
import make_golden  # noqa: E402  (the model constructors, incl. mlp and cnn)


def torch_step_ms(name, batch, repeat, warmup):
    ctor, geometry, _, _ = make_golden.MODELS[name]
    model = ctor().train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    x = torch.randn((batch,) + geometry)
    y = torch.randint(0, 10, (batch,))
    times = []
    for i in range(warmup + repeat):
        start = time.perf_counter()
        model.zero_grad(set_to_none=False)
        F.cross_entropy(model(x), y).backward()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def mayfly_step_ms(binary, name, batch, threads, repeat, warmup):
    out = subprocess.run([binary, "--model", name, "--batch",
                          str(batch), "--threads", str(threads), "--iterations", str(repeat),
                          "--warmup", str(warmup), "--no-layers", "--csv"],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        fields = line.split(",")
        if fields[0] == name:
            return float(fields[1])
    raise RuntimeError(f"mayfly-kernels printed no row for {name}:\n{out}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--models", default="mlp,cnn,squeezenet1_1,mobilenet_v3_small,vgg11")
    p.add_argument("--kernels-bin", default=os.path.join(ROOT, "bin", "mayfly-kernels"),
                   help="mayfly-kernels binary (e.g. a copy, while others rebuild bin/)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"# torch {torch.__version__}, {a.threads} thread(s), batch {a.batch}, "
          f"median of {a.repeat} after {a.warmup} warm-up")
    print(f"{'model':<20} {'batch':>5} {'threads':>7} {'torch_ms':>10} {'mayfly_ms':>10} "
          f"{'mayfly/torch':>12}")
    for name in a.models.split(","):
        t = torch_step_ms(name, a.batch, a.repeat, a.warmup)
        m = mayfly_step_ms(a.kernels_bin, name, a.batch, a.threads, a.repeat, a.warmup)
        print(f"{name:<20} {a.batch:>5} {a.threads:>7} {t:>10.2f} {m:>10.2f} {m / t:>12.2f}",
              flush=True)


if __name__ == "__main__":
    main()
