#!/usr/bin/python3
"""Times one training step of a model in PyTorch and in mayfly (bin/mayfly-kernels) with the same
batch size and thread count, and prints both medians and their ratio.

Why: "mayfly's step takes X ms" only means something next to what the framework the paper used
does on the same machine. Same step on both sides: train mode (batch statistics), dropout off,
mean cross-entropy, zeroed gradients, forward + backward; no optimizer.

    /usr/bin/python3 bench/scripts/torch_compare.py [--batch 64] [--threads 1] [--repeat 5]
                                            [--models squeezenet1_1,mobilenet_v3_small,...]
                                            [--torch-malloc stock|tuned|both]
                                            [--kernels-bin PATH]
Output, one line per model:
    model  batch  threads  torch_ms  [torch_tuned_ms]  mayfly_ms  mayfly/torch  [mayfly/tuned]

PyTorch's CPU step time depends on glibc's malloc thresholds: it frees and re-allocates its large
tensors every step, and with glibc's defaults many of those come from fresh mmap()s whose pages
fault in again each step (SqueezeNet at batch 64: ~50 ms in a fresh process, ~25 ms once a
bigger model has run in the same process and pushed the dynamic thresholds up). So each model's
PyTorch step runs in a fresh process of its own (the order of --models does not matter), with
glibc's defaults ("stock": what a user gets) and/or with MALLOC_MMAP_THRESHOLD_=32 MiB (glibc's
maximum) and MALLOC_TRIM_THRESHOLD_=1 GiB ("tuned": PyTorch at its best; default "both").
mayfly allocates nothing per step, so its time does not depend on them. The sides run back to
back; on a shared box repeat the command and compare ratios. Needs Debian's python3-torch (use
/usr/bin/python3)."""
import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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


TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def torch_step_ms_fresh(name, batch, threads, repeat, warmup, tuned):
    """torch_step_ms in a new Python process, with glibc's malloc defaults or TUNED_MALLOC."""
    env = dict(os.environ)
    for key in TUNED_MALLOC:
        env.pop(key, None)
    if tuned:
        env.update(TUNED_MALLOC)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-only", name,
                          "--batch", str(batch), "--threads", str(threads), "--repeat",
                          str(repeat), "--warmup", str(warmup)],
                         check=True, capture_output=True, text=True, env=env).stdout
    return float(out.split()[-1])


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
    p.add_argument("--torch-malloc", choices=("stock", "tuned", "both"), default="both",
                   help="PyTorch with glibc's malloc defaults, with raised thresholds, or both")
    p.add_argument("--kernels-bin", default=os.path.join(ROOT, "bin", "mayfly-kernels"),
                   help="mayfly-kernels binary (e.g. a copy, while others rebuild bin/)")
    p.add_argument("--torch-only", metavar="MODEL", help=argparse.SUPPRESS)
    a = p.parse_args()
    for option in ("batch", "threads", "repeat"):
        if getattr(a, option) < 1:
            p.error(f"--{option} must be at least 1, not {getattr(a, option)}")
    if a.warmup < 0:
        p.error(f"--warmup must be at least 0, not {a.warmup}")
    for name in ([a.torch_only] if a.torch_only else a.models.split(",")):
        if name not in make_golden.MODELS:
            p.error(f"unknown model {name!r} (choose from {', '.join(make_golden.MODELS)})")
    if not a.torch_only and not os.access(a.kernels_bin, os.X_OK):
        p.error(f"{a.kernels_bin}: not an executable mayfly-kernels (run make first)")
    torch.set_num_threads(a.threads)
    if a.torch_only:  # child process of torch_step_ms_fresh
        print(f"{torch_step_ms(a.torch_only, a.batch, a.repeat, a.warmup):.4f}")
        return
    settings = {"stock": [False], "tuned": [True], "both": [False, True]}[a.torch_malloc]
    print(f"# torch {torch.__version__}, {a.threads} thread(s), batch {a.batch}, "
          f"median of {a.repeat} after {a.warmup} warm-up, each torch model in a fresh process; "
          f"malloc: {a.torch_malloc}")
    names = {False: ("torch_ms", "mayfly/torch"), True: ("torch_tuned_ms", "mayfly/tuned")}
    print(f"{'model':<20} {'batch':>5} {'threads':>7} "
          + "".join(f"{names[t][0]:>15}" for t in settings) + f" {'mayfly_ms':>10}"
          + "".join(f"{names[t][1]:>13}" for t in settings))
    for name in a.models.split(","):
        try:
            torch_ms = [torch_step_ms_fresh(name, a.batch, a.threads, a.repeat, a.warmup, t)
                        for t in settings]
            m = mayfly_step_ms(a.kernels_bin, name, a.batch, a.threads, a.repeat, a.warmup)
        except subprocess.CalledProcessError as e:
            last = (e.stderr or "").strip().splitlines()[-1:] or ["no error output"]
            sys.exit(f"torch_compare.py: error: {name}: {os.path.basename(e.cmd[0])} failed "
                     f"(exit {e.returncode}): {last[0]}")
        print(f"{name:<20} {a.batch:>5} {a.threads:>7} "
              + "".join(f"{t:>15.2f}" for t in torch_ms) + f" {m:>10.2f}"
              + "".join(f"{m / t:>13.2f}" for t in torch_ms), flush=True)


if __name__ == "__main__":
    main()
