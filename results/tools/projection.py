#!/usr/bin/python3
"""A calibrated PROJECTION of the gradient-computation time and cost to the study's scale.

Why it exists: the development box has 2 cores, so its serverless runs measure time-sharing
as much as offloading; the study (shared/notes/paper.md: up to 12 peers, one function per
minibatch, VGG11 ...) cannot be run here. This tool fits a small model to what WAS measured
here (per-task compute time, spawn cost, parent<->worker transfer, exchange alpha-beta),
checks the model against every measured run (prediction error per run), and only then
evaluates it at the study's scale. Everything it writes is labelled a projection.

The model (per peer and round, seconds; C = free cores, P peers, K tasks, W workers/peer):
  slow(n)    = max(1, n / C)                     n single-threaded processes time-share C cores
  task       = fetch(batch) + fb(model, batch) x slow(active)
  baseline   = K x task                          (active = P peers)
  warm       = xfer(W x bytes) + ceil(K/W) x task + K x xfer(bytes)     (active = P x W)
  cold       = spawn(P x W) + max(xfer(W x bytes), startup(model)) + ceil(K/W) x task
               + K x xfer(bytes)
with bytes = model parameters x 4 (weights out, gradients back, both serialised at the peer),
xfer(b) = alpha + b / beta (warm dispatch + ping-pong), spawn(n) = a + b n fitted on the cold
runs (n = children in flight on the box), startup(model) = the part of a fresh worker's
start-up (model build, data open) that outlasts the spawn call. Validation of a run leaves
its own configuration out of the spawn and start-up fits (they come from cold runs).
At the study's scale every worker has its own core (slow = 1) and the cold start of W
functions started in parallel is one cold start (--cold-start, default: our measured spawn of
1 child + the median start-up).

Usage: /usr/bin/python3 results/tools/projection.py RESULTS_DIR [--spawn F.h5 ...] [--exchange F.h5]
         [--kernels F.csv ...] [--out DIR] [--notes F.md] [more: --help]
Writes DIR/projection.md, validation.csv, projection.csv, validation.png, improvement.png and
cost_ratio.png (default DIR: results/projection). Bad input: one "projection: error:" line on
stderr, exit 1.
Needs Debian's python3-h5py, python3-matplotlib and numpy (/usr/bin/python3).
"""
import argparse
import csv
import glob
import math
import os
import re
import sys

import numpy as np

try:
    import h5py
except ImportError as e:  # pragma: no cover - depends on the machine
    sys.exit(f"projection: error: {e} (apt-get install python3-h5py; run with /usr/bin/python3)")

HERE = os.path.dirname(os.path.abspath(__file__))  # results/tools
RESULTS = os.path.dirname(HERE)  # results: prices/ and the default projection/ live there
# results/tools/figures.py (load_runs, Run: the one reader of results files) and matplotlib are
# imported by load_plotting() only after the cheap checks of the inputs, so a bad input fails
# fast; these names are bound there.
figures = matplotlib = plt = None
STUDY_IMPROVEMENT = STUDY_COST_RATIO = None


def load_plotting():
    global figures, matplotlib, plt, STUDY_IMPROVEMENT, STUDY_COST_RATIO
    try:
        import matplotlib as mpl

        mpl.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError as e:  # pragma: no cover - depends on the machine
        fail("%s (apt-get install python3-matplotlib; run with /usr/bin/python3)" % e)
    sys.path.insert(0, HERE)
    import figures as fig_module

    figures, matplotlib, plt = fig_module, mpl, pyplot
    STUDY_IMPROVEMENT = figures.STUDY_IMPROVEMENT_PERCENT  # 97.34 %
    STUDY_COST_RATIO = figures.STUDY_COST_RATIO  # 5.4x


# The study's models and parameter counts (shared/notes/paper.md; torchvision, 10 classes).
PAPER_MODELS = ("squeezenet1_1", "mobilenet_v3_small", "vgg11")
PAPER_PARAMETERS = {"squeezenet1_1": 727626, "mobilenet_v3_small": 1528106,
                    "vgg11": 128807306}
COST_FIELDS = ("invocations", "transitions", "worker_gb_seconds", "core_seconds",
               "peer_instance_hours", "usd_serverless", "usd_instances", "usd_total", "ratio")


class InputError(Exception):
    """A bad input file or option: reported as one line, exit 1."""


def fail(message):
    raise InputError(message)


# -------------------------------------------------------- cost (bench/harness/cost.c in Python)

def load_prices(path):
    """Reads a price table (results/prices/README.md format), like mf_prices_load."""
    p = {"instances": {}, "kind": None}
    seen_function, seen_core, peer = set(), False, None
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        fail("%s: cannot open the price table (%s)" % (path, e.strerror))
    for number, line in enumerate(lines, 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        key, args = words[0], words[1:]
        try:
            if key in ("name", "currency", "peer_instance") and len(args) == 1:
                p[key] = args[0]
            elif key == "instance" and len(args) == 2:
                p["instances"][args[0]] = float(args[1])
            elif key == "function_gb_second" and len(args) == 1:
                p["gb_second"] = float(args[0]); seen_function.add(key)
            elif key == "function_requests_per_million" and len(args) == 1:
                p["request"] = float(args[0]) / 1e6; seen_function.add(key)
            elif key == "transitions_per_1000" and len(args) == 1:
                p["transition"] = float(args[0]) / 1e3; seen_function.add(key)
            elif key == "core_hour" and len(args) == 1:
                p["core_hour"] = float(args[0]); seen_core = True
            else:
                fail("%s:%d: unknown key or wrong value count: %s" % (path, number, line.strip()))
        except ValueError:
            fail("%s:%d: not a number: %s" % (path, number, line.strip()))
        if key == "peer_instance":
            peer = args[0]
    if seen_core:
        p["kind"] = "core-hour"
    elif len(seen_function) == 3 and peer in p["instances"]:
        p["kind"] = "cloud"
        p["hourly"] = p["instances"][peer]
    else:
        fail("%s: incomplete price table (see results/prices/README.md)" % path)
    p["path"] = path
    return p


def resolve_prices(value):
    if os.path.isfile(value):
        return value
    path = os.path.join(RESULTS, "prices", value + ".txt")
    if os.path.isfile(path):
        return path
    fail("--prices: no price table '%s' (not a file, not %s)" % (value, path))


def cost_compute(prices, peers, peer_threads, worker_threads, worker_memory_mb, wall_seconds,
                 worker_seconds, invocations):
    """mf_cost_compute of bench/harness/cost.c, operation for operation (same rounding)."""
    c = {"invocations": invocations, "transitions": 2 * invocations}
    c["worker_gb_seconds"] = worker_seconds * worker_memory_mb / 1024.0
    worker_core_seconds = worker_seconds * worker_threads
    peer_core_seconds = peers * wall_seconds * peer_threads
    c["core_seconds"] = worker_core_seconds + peer_core_seconds
    c["peer_instance_hours"] = peers * wall_seconds / 3600.0
    if prices["kind"] == "core-hour":
        c["usd_serverless"] = worker_core_seconds / 3600.0 * prices["core_hour"]
        c["usd_instances"] = peer_core_seconds / 3600.0 * prices["core_hour"]
    else:
        c["usd_serverless"] = (c["worker_gb_seconds"] * prices["gb_second"] +
                               float(c["invocations"]) * prices["request"] +
                               float(c["transitions"]) * prices["transition"])
        c["usd_instances"] = c["peer_instance_hours"] * prices["hourly"]
    c["usd_total"] = c["usd_serverless"] + c["usd_instances"]
    c["ratio"] = (c["usd_serverless"] / c["usd_instances"] if c["usd_instances"] > 0
                  else float("nan"))
    return c


def cost_check(run):
    """Max relative difference between /cost of a run and the Python formulas on its inputs."""
    if run.cost is None:
        return float("nan"), "no /cost"
    a = run.cost
    name = a.get("prices", "")
    path = a.get("prices_file", "")
    if not os.path.isfile(path):
        path = os.path.join(RESULTS, "prices", "%s.txt" % name)
    prices = load_prices(path)
    c = cost_compute(prices, int(run.config["peers"]), int(run.config.get("peer-threads", 1)),
                     int(run.config.get("worker-threads", 1)), float(a["worker_memory_mb"]),
                     float(a["train_seconds"]), float(a["worker_seconds"]),
                     int(a["invocations"]))
    worst = 0.0
    for key in COST_FIELDS:
        want, got = float(a[key]), float(c[key])
        if math.isnan(want) and math.isnan(got):
            continue
        err = abs(got - want) / max(abs(want), 1e-300) if want != 0 else abs(got)
        worst = max(worst, err)
    return worst, prices["path"]


# ---------------------------------------------------------------- calibration

def fit_line(x, y):
    """Least squares y = a + b x (b >= 0 when the data allow); a single point: a = 0."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(set(x.tolist())) < 2:
        return 0.0, float(np.median(y / x)) if len(x) else float("nan")
    b, a = np.polyfit(x, y, 1)
    if a < 0:  # a negative intercept is noise: refit through the origin
        a, b = 0.0, float(np.sum(x * y) / np.sum(x * x))
    return float(a), float(b)


def hwloc_cores(run_path):
    with h5py.File(run_path, "r") as f:
        if "/environment/hwloc_topology" not in f:
            return None
        xml = figures.text(f["/environment/hwloc_topology"][()])
    cores = len(re.findall(r'type="Core"', xml)) or len(re.findall(r'type="PU"', xml))
    return cores or None


def task_rows(run):
    with h5py.File(run.path, "r") as f:
        rows = f["/timing/tasks"][:]
    rows = rows[(rows["status"] == 0) & (rows["round"] >= run.warmup)]
    return rows


def weights_bytes(run):
    return 4 * int(run.config["model_parameters"])


class Calibration:
    """Every fitted input of the model, each with the files it came from."""

    def __init__(self, runs, args):
        self.sources = []  # (what, value text, files)
        self.cores = args.cores or hwloc_cores(runs[0].path)
        if not self.cores:
            fail("%s: no hwloc topology to count cores; pass --cores" % runs[0].path)
        self.sources.append(("free cores C", "%d" % self.cores,
                             "--cores" if args.cores else "/environment/hwloc_topology of %s"
                             % os.path.basename(runs[0].path)))
        self._per_task(runs, args.kernels)
        self._fetch(runs)
        self._spawn(runs, args.spawn)
        self._transfer(runs)
        self._startup(runs)
        self._exchange(args.exchange)
        self._update(runs)

    # per-task forward+backward time, single thread, one core to itself
    def _per_task(self, runs, kernel_files):
        self.fb_points = {}  # model -> {batch: seconds}
        self.fb_source = {}
        self.fb_runs = {}  # model -> {batch: seconds} from baseline runs (cross-check)
        self.fb_gflops = {}  # (model, batch) -> GFLOP/s of the kernel row used
        for path in kernel_files:
            m = re.search(r"b(\d+)", os.path.basename(path))
            if not m:
                fail("%s: kernels CSV name must contain the batch as b<N> (e.g. "
                     "kernels-vgg11-b64.csv)" % path)
            batch = int(m.group(1))
            try:
                with open(path, newline="") as f:
                    rows = list(csv.DictReader(f))
            except OSError as e:
                fail("%s: %s" % (path, e.strerror))
            if not rows or "median_ms" not in rows[0]:
                fail("%s: not a `mayfly-kernels --csv` output (no median_ms column)" % path)
            for row in rows:
                if row["name"] == "sgemm_peak" or "/" in row["name"]:
                    continue
                # Repeated measurements of one model and batch: the fastest median is the
                # one least disturbed by other load on a shared machine.
                pts = self.fb_points.setdefault(row["name"], {})
                seconds = float(row["median_ms"]) / 1e3
                if seconds < pts.get(batch, float("inf")):
                    pts[batch] = seconds
                    self.fb_gflops[(row["name"], batch)] = float(row.get("gflops") or "nan")
                self.fb_source.setdefault(row["name"], set()).add(os.path.basename(path))
        per = {}
        for run in runs:
            if run.mode != "baseline":
                continue
            rows = task_rows(run)
            rows = rows[rows["worker"] < 0]
            if len(rows) == 0:
                continue
            slow = max(1.0, int(run.config["peers"]) / self.cores)
            per.setdefault((run.config["model"], int(run.config["batch"])), []).append(
                float(np.median(rows["forward_backward"])) / slow)
        for (model, batch), values in per.items():
            self.fb_runs.setdefault(model, {})[batch] = float(np.median(values))
            if batch not in self.fb_points.get(model, {}):
                self.fb_points.setdefault(model, {})[batch] = float(np.median(values))
                self.fb_source.setdefault(model, set()).add("baseline runs /timing/tasks")
        for model, pts in sorted(self.fb_points.items()):
            self.sources.append(("fb(%s) single-thread step" % model,
                                 ", ".join("b%d %.4g s%s" % (b, pts[b], (
                                     " (%.0f GFLOP/s)" % self.fb_gflops[(model, b)])
                                     if (model, b) in self.fb_gflops else "")
                                     for b in sorted(pts)),
                                 ", ".join(sorted(self.fb_source[model]))))

    def fb(self, model, batch):
        """Seconds of one forward+backward step; linear in the batch beyond measured points."""
        pts = self.fb_points.get(model)
        if not pts:
            fail("no per-task time for model %s (give --kernels CSVs or baseline runs)" % model)
        if batch in pts:
            return pts[batch], False
        xs = sorted(pts)
        if len(xs) == 1:
            return pts[xs[0]] * batch / xs[0], True
        if xs[0] < batch < xs[-1]:
            return float(np.interp(batch, xs, [pts[x] for x in xs])), False
        a, b = fit_line(xs, [pts[x] for x in xs])
        return a + b * batch, True

    def _fetch(self, runs):
        xs, ys = [], []
        for run in runs:
            rows = task_rows(run)
            if len(rows):
                xs.append(int(run.config["batch"]))
                ys.append(float(np.median(rows["fetch"])))
        self.fetch_a, self.fetch_b = fit_line(xs, ys)
        self.sources.append(("fetch(batch) = a + b batch", "a %.3g s, b %.3g s/sample"
                             % (self.fetch_a, self.fetch_b), "/timing/tasks fetch, %d runs"
                             % len(xs)))

    def fetch(self, batch):
        return self.fetch_a + self.fetch_b * batch

    def _transfer(self, runs):
        """alpha + bytes/beta from the warm rounds' dispatch (W copies of the weights to idle,
        ready workers) and, when the spawn file has it, its parent<->child ping-pong (one-way
        8 B and 1 MiB). The per-task result send is not used: it overlaps other workers'
        compute on a busy box and measures time-sharing more than the link."""
        xs, ys, where = [], [], []
        for run in runs:
            if run.mode == "warm" and "dispatch" in run.phases and "spawn" in run.phases:
                d, s = run.phases["dispatch"], run.phases["spawn"]
                warm_rounds = d[(s.max(axis=1) == 0)]
                if len(warm_rounds):
                    xs.append(weights_bytes(run) * run.workers())
                    ys.append(float(np.median(warm_rounds.max(axis=1))))
        if xs:
            where.append("warm rounds' /timing/dispatch (%d runs)" % len(xs))
        if self.pingpong:
            for nbytes, seconds in self.pingpong:
                xs.append(nbytes)
                ys.append(seconds)
            where.append("ping-pong of " + self.spawn_file_name)
        if not xs:
            fail("no warm runs and no ping-pong in a --spawn file: cannot fit the "
                 "parent<->worker transfer")
        self.xfer_alpha, slope = fit_line(xs, ys)
        self.xfer_beta = 1.0 / slope if slope > 0 else float("inf")
        self.sources.append(("transfer alpha + bytes/beta", "alpha %.3g s, beta %.3g GB/s (%d "
                             "points, %.3g-%.3g MB)" % (self.xfer_alpha, self.xfer_beta / 1e9,
                                                        len(xs), min(xs) / 1e6, max(xs) / 1e6),
                             " + ".join(where)))

    def xfer(self, nbytes):
        return self.xfer_alpha + nbytes / self.xfer_beta

    def _spawn(self, runs, spawn_files):
        """Two sources, used for different things. The cold runs give spawn time against the
        children in flight on the box (P peers spawn W each at once): spawn(n) = a + b n, which
        predicts the measured runs (validated leaving the run's own configuration out). The
        mayfly-spawn file gives one parent's spawn of 1, 2, 4, 8 children: its 1-child median is
        the analogue of one function's cold start at the study's scale."""
        self.file_spawn, self.pingpong, self.spawn_file_name = {}, [], ""
        if spawn_files:
            # Repeated files: per children count (and ping-pong size) the fastest median, the
            # one least disturbed by other load on a shared machine.
            self.spawn_file_name = ", ".join(os.path.basename(f) for f in spawn_files)
            pingpong = {}
            for spawn_file in spawn_files:
                try:
                    with h5py.File(spawn_file, "r") as f:
                        children = f["/spawn/children"][:]
                        seconds = f["/spawn/spawn_seconds"][:]
                        if "/pingpong" in f and int(f["/pingpong"].attrs.get("round_trips", 0)):
                            pp = f["/pingpong"].attrs
                            for nbytes, key in ((8, "intercomm_8B_seconds"),
                                                (1 << 20, "intercomm_1MiB_seconds")):
                                pingpong[nbytes] = min(pingpong.get(nbytes, float("inf")),
                                                       float(pp[key]))
                except (OSError, KeyError) as e:
                    fail("%s: not a mayfly-spawn results file (%s)" % (spawn_file, e))
                for n, row in zip(children, seconds):
                    self.file_spawn[int(n)] = min(self.file_spawn.get(int(n), float("inf")),
                                                  float(np.median(row)))
            self.pingpong = sorted(pingpong.items())
            self.sources.append(("one parent's spawn(children)", ", ".join(
                "%d: %.3f s" % (n, self.file_spawn[n]) for n in sorted(self.file_spawn)),
                self.spawn_file_name + " /spawn/spawn_seconds medians (fastest file)"))
        self.spawn_runs = []  # (children in flight, median spawn, configuration key)
        for run in runs:
            if run.mode == "cold" and "spawn" in run.phases:
                n = int(run.config["peers"]) * run.workers()
                self.spawn_runs.append((n, run.median("spawn"), (run.setting, run.variant)))
        if self.spawn_runs:
            a, b = self.spawn_fit()
            self.sources.append(("spawn(n children in flight) = a + b n", "a %.3f s, b %.3f "
                                 "s/child (%d runs, n = %s)" % (a, b, len(self.spawn_runs),
                                 ",".join(map(str, sorted({x[0] for x in self.spawn_runs})))),
                                 "cold runs' /timing/spawn, n = peers x workers"))
        elif not self.file_spawn:
            fail("no spawn measurement (give --spawn FILE.h5 or cold runs)")

    def spawn_fit(self, exclude=None):
        pts = [(n, v) for n, v, key in self.spawn_runs if key != exclude]
        if not pts:
            pts = [(n, v) for n, v, _ in self.spawn_runs]
        return fit_line([p[0] for p in pts], [p[1] for p in pts])

    def spawn(self, children, exclude=None):
        if self.spawn_runs:
            a, b = self.spawn_fit(exclude)
            return a + b * children
        xs = sorted(self.file_spawn)
        ys = [self.file_spawn[x] for x in xs]
        if len(xs) == 1:
            return ys[0] * children / xs[0]
        if children <= xs[-1]:
            return float(np.interp(children, xs, ys))
        return ys[-1] + (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]) * (children - xs[-1])

    def cloud_cold_start(self):
        """One function's cold start: one parent spawning 1 child, plus worker start-up."""
        one = self.file_spawn.get(1, self.spawn(1))
        return one + self.startup_default

    def _startup(self, runs):
        """A fresh worker's start-up beyond the spawn call (model build, data open): the cold
        dispatch waits for it. Per model, from the cold runs' dispatch minus the transfer."""
        self.startup_runs = []  # (model, seconds, configuration key)
        for run in runs:
            if run.mode == "cold" and "dispatch" in run.phases:
                w = run.workers()
                extra = run.median("dispatch") - self.xfer(w * weights_bytes(run))
                self.startup_runs.append((run.config["model"], max(0.0, extra),
                                          (run.setting, run.variant)))
        per = {}
        for model, value, _ in self.startup_runs:
            per.setdefault(model, []).append(value)
        self.startup_default = (float(np.median([v for _, v, _ in self.startup_runs]))
                                if self.startup_runs else 0.0)
        self.sources.append(("worker start-up beyond spawn", ", ".join(
            "%s %.3f s" % (m, np.median(v)) for m, v in sorted(per.items())) or "none",
            "cold runs: median /timing/dispatch - transfer"))

    def startup(self, model, exclude=None):
        """Median over the cold runs of this model (other configurations than `exclude`), else
        over all other cold runs."""
        same = [v for m, v, key in self.startup_runs if m == model and key != exclude]
        if same:
            return float(np.median(same))
        other = [v for _, v, key in self.startup_runs if key != exclude]
        return float(np.median(other)) if other else self.startup_default

    def _exchange(self, exchange_file):
        self.exchange = None
        if not exchange_file:
            return
        try:
            with h5py.File(exchange_file, "r") as f:
                peers = int(f.attrs["peers"])
                fits = {name: (float(g.attrs["alpha_s"]), float(g.attrs["beta_s_per_byte"]))
                        for name, g in f["/algorithms"].items()}
        except (OSError, KeyError) as e:
            fail("%s: not a mayfly-exchange results file (%s)" % (exchange_file, e))
        self.exchange = {"peers": peers, "fits": fits, "file": os.path.basename(exchange_file)}
        self.sources.append(("exchange alpha-beta (%d peers)" % peers, ", ".join(
            "%s %.3g s + %.3g GB/s" % (n, a, 1e-9 / b) for n, (a, b) in sorted(fits.items())),
            os.path.basename(exchange_file) + " /algorithms/*/alpha_s, beta_s_per_byte"))

    def exchange_time(self, nbytes, peers, algorithm="ring"):
        """Ring cost model 2(p-1) alpha' + 2(p-1)/p bytes beta', alpha' and beta' from the
        measured fit at its peer count; NaN without an exchange file."""
        if not self.exchange:
            return float("nan")
        fits = self.exchange["fits"]
        alpha, beta = fits.get(algorithm) or next(iter(fits.values()))
        p0 = self.exchange["peers"]
        step_alpha = alpha / (2 * (p0 - 1)) if p0 > 1 else alpha
        byte_beta = beta / (2 * (p0 - 1) / p0) if p0 > 1 else beta
        if peers < 2:
            return 0.0
        return 2 * (peers - 1) * step_alpha + 2 * (peers - 1) / peers * nbytes * byte_beta

    def _update(self, runs):
        xs, ys = [], []
        for run in runs:
            if "update" in run.phases:
                xs.append(int(run.config["model_parameters"]))
                ys.append(run.median("update"))
        self.update_a, self.update_b = fit_line(xs, ys) if xs else (0.0, 0.0)
        self.sources.append(("SGD update(params)", "a %.3g s, b %.3g s/param"
                             % (self.update_a, self.update_b), "/timing/update, %d runs"
                             % len(xs)))

    def update(self, params):
        return self.update_a + self.update_b * params


# ---------------------------------------------------------------- the model

def predict(cal, model, batch, peers, tasks, workers, mode, params, cores=None,
            cold_start=None, dispatch="serial", exclude=None):
    """Gradient-phase seconds per round for one peer, and its parts."""
    cores = cores if cores is not None else cal.cores
    fb, extrapolated = cal.fb(model, batch)
    nbytes = 4 * params
    if mode == "baseline":
        slow = max(1.0, peers / cores)
        t = tasks * (cal.fetch(batch) + fb * slow)
        return t, {"tasks": t, "extrapolated": extrapolated}
    workers = max(1, min(workers, tasks))
    slow = max(1.0, peers * workers / cores)
    waves = math.ceil(tasks / workers)
    out_copies = workers if dispatch == "serial" else 1
    send = cal.xfer(nbytes) * (tasks if dispatch == "serial" else 1)
    parts = {"dispatch": cal.xfer(out_copies * nbytes),
             "tasks": waves * (cal.fetch(batch) + fb * slow) + send, "extrapolated": extrapolated}
    if mode == "cold":
        if cold_start is None:
            parts["spawn"] = cal.spawn(peers * workers, exclude)
            parts["dispatch"] = max(parts["dispatch"], cal.startup(model, exclude))
        else:  # cloud: W functions start in parallel, one cold start each
            parts["spawn"] = cold_start
    else:
        parts["spawn"] = 0.0
    t = parts["spawn"] + parts["dispatch"] + parts["tasks"]
    return t, parts


def project_cost(cal, prices, mode, t_compute, peers, tasks, workers, params, memory_mb,
                 teardown):
    """Cost of one round at the projected times (bench/harness/cost.c's accounting): cold workers live
    from spawn to close, warm workers the whole round; peers hold instances the whole round."""
    exchange = cal.exchange_time(4 * params, peers)
    exchange = 0.0 if math.isnan(exchange) else exchange
    round_s = t_compute + exchange + cal.update(params)
    if mode == "baseline":
        lifetime, invocations = 0.0, 0
    else:
        workers = max(1, min(workers, tasks))
        lifetime = t_compute + teardown if mode == "cold" else round_s
        invocations = peers * tasks
    c = cost_compute(prices, peers, 1, 1, memory_mb, round_s, peers * workers * lifetime,
                     invocations)
    c["round_seconds"] = round_s
    return c


# ---------------------------------------------------------------- validation

def median_over_rounds(run, phase):
    return run.median(phase) if phase in run.phases else float("nan")


def validate(cal, runs):
    rows = []
    for run in sorted(runs, key=lambda r: os.path.basename(r.path)):
        c = run.config
        peers, tasks = int(c["peers"]), int(c["tasks_per_round"])
        workers = run.workers()
        predicted, parts = predict(cal, c["model"], int(c["batch"]), peers, tasks, workers,
                                   run.mode, int(c["model_parameters"]),
                                   exclude=(run.setting, run.variant))
        measured = median_over_rounds(run, "compute")
        cost_err, _ = cost_check(run)
        rows.append({"file": os.path.basename(run.path), "model": c["model"],
                     "batch": int(c["batch"]), "peers": peers, "tasks": tasks,
                     "workers": workers if run.mode != "baseline" else 0, "mode": run.mode,
                     "measured_s": measured, "predicted_s": predicted,
                     "error_pct": 100.0 * (predicted - measured) / measured,
                     "spawn_pred": parts.get("spawn", 0.0),
                     "spawn_meas": median_over_rounds(run, "spawn"),
                     "cost_max_rel_err": cost_err})
    return rows


# ---------------------------------------------------------------- outputs

def fmt(v, digits=3):
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, (int, np.integer)):
        return str(v)
    return ("%%.%dg" % digits) % v


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def tasks_all(train_samples, peers, batch):
    """mayfly's --tasks all: whole minibatches of a peer's equal shard (floor)."""
    return (train_samples // peers) // batch


def model_parameters(model, runs):
    if model in PAPER_PARAMETERS:
        return PAPER_PARAMETERS[model]
    for run in runs:
        if run.config.get("model") == model:
            return int(run.config["model_parameters"])
    fail("model %s: parameter count unknown (not a paper model and not in the runs)" % model)


def study_projection(cal, prices, args, runs):
    cold_start = args.cold_start
    if cold_start is None:
        cold_start = cal.cloud_cold_start()
    rows = []
    for model in args.models:
        params = model_parameters(model, runs)
        for peers in args.peers:
            for batch in args.batches:
                k = tasks_all(args.train_samples, peers, batch)
                if k < 1:
                    continue
                base, bparts = predict(cal, model, batch, peers, k, 1, "baseline", params,
                                       cores=float("inf"))
                bcost = project_cost(cal, prices, "baseline", base, peers, k, 1, params,
                                     args.worker_memory, 0.0)
                for dispatch in ("serial", "parallel"):
                    row = {"model": model, "batch": batch, "peers": peers, "tasks": k,
                           "workers": k, "dispatch": dispatch, "baseline_s": base,
                           "extrapolated": bparts["extrapolated"],
                           "baseline_usd": bcost["usd_total"]}
                    for mode in ("cold", "warm"):
                        t, _ = predict(cal, model, batch, peers, k, k, mode, params,
                                       cores=float("inf"), cold_start=cold_start,
                                       dispatch=dispatch)
                        c = project_cost(cal, prices, mode, t, peers, k, k, params,
                                         args.worker_memory, 0.0)
                        row[mode + "_s"] = t
                        row[mode + "_improvement"] = 100.0 * (1.0 - t / base)
                        row[mode + "_usd"] = c["usd_total"]
                        row[mode + "_cost_ratio"] = c["usd_total"] / bcost["usd_total"]
                        row[mode + "_orchestration_share"] = (
                            c["transitions"] * prices.get("transition", 0.0) /
                            c["usd_serverless"] if c["usd_serverless"] > 0 else 0.0)
                    rows.append(row)
    return rows, cold_start


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        for row in rows:
            w.writerow({k: (("%.9g" % v) if isinstance(v, float) else v) for k, v in row.items()})


def figure_validation(cal, runs, vrows, out):
    """Measured points on top of the model's curves at the measured settings."""
    settings = sorted({(r["model"], r["peers"], r["tasks"]) for r in vrows})
    fig, axes = plt.subplots(1, len(settings) + 1, figsize=(4.2 * (len(settings) + 1), 4.4),
                             squeeze=False)
    colors = figures.MODE_COLORS
    batches = np.array([32, 64, 128, 256, 512, 1024])
    for ax, (model, peers, tasks) in zip(axes[0], settings):
        mine = [r for r in vrows if (r["model"], r["peers"], r["tasks"]) == (model, peers, tasks)]
        params = next(int(x.config["model_parameters"]) for x in runs
                      if x.config["model"] == model)
        for mode in ("baseline", "cold", "warm"):
            ws = sorted({r["workers"] for r in mine if r["mode"] == mode}) or (
                [0] if mode == "baseline" else [2])
            for w in ws:
                ys = [predict(cal, model, int(b), peers, tasks, w or 1, mode, params)[0]
                      for b in batches]
                label = "%s%s model" % (mode, " w%d" % w if w else "")
                ax.plot(batches, ys, color=colors[mode], linestyle="-" if w <= 2 else ":",
                        label=label)
            pts = [r for r in mine if r["mode"] == mode]
            ax.scatter([r["batch"] for r in pts], [r["measured_s"] for r in pts],
                       color=colors[mode], edgecolor="black", zorder=5, s=28)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch")
        ax.set_ylabel("gradient phase per round [s]")
        ax.set_title("PROJECTION model vs measured\n%s, %d peers, K=%d, C=%d cores"
                     % (model, peers, tasks, cal.cores), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    ax = axes[0][-1]
    for mode in ("baseline", "cold", "warm"):
        pts = [r for r in vrows if r["mode"] == mode]
        ax.scatter([r["measured_s"] for r in pts], [r["predicted_s"] for r in pts],
                   color=colors[mode], edgecolor="black", label=mode, s=28)
    lo = min(min(r["measured_s"], r["predicted_s"]) for r in vrows) / 2
    hi = max(max(r["measured_s"], r["predicted_s"]) for r in vrows) * 2
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8)
    ax.set_xscale("log"); ax.set_yscale("log")
    ax.set_xlabel("measured [s] (median over rounds)")
    ax.set_ylabel("predicted [s]")
    ax.set_title("PROJECTION model: predicted vs measured,\n%d runs" % len(vrows), fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.text(0.01, 0.01, "dots: measured runs; lines: the calibrated model at the measured "
             "settings. Projection, not a measurement.", fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path = os.path.join(out, "validation.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def figure_study(prows, key, ylabel, line, line_label, out, name, title, measured=None,
                 cores=None):
    order = lambda m: (PAPER_MODELS.index(m) if m in PAPER_MODELS else len(PAPER_MODELS), m)
    models = sorted({r["model"] for r in prows}, key=order)
    panels = len(models) + (1 if measured else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels + 1.5, 4.8), squeeze=False)
    peers_list = sorted({r["peers"] for r in prows})
    shades = {p: 0.35 + 0.65 * i / max(1, len(peers_list) - 1) for i, p in enumerate(peers_list)}
    for ax, model in zip(axes[0], models):
        for mode, color in (("cold", figures.MODE_COLORS["cold"]),
                            ("warm", figures.MODE_COLORS["warm"])):
            for dispatch, style in (("serial", "-"), ("parallel", "--")):
                for peers in peers_list:
                    rs = sorted((r for r in prows if r["model"] == model and r["peers"] == peers
                                 and r["dispatch"] == dispatch), key=lambda r: r["batch"])
                    if not rs:
                        continue
                    rgb = np.array(matplotlib.colors.to_rgb(color)) * shades[peers]
                    ax.plot([r["batch"] for r in rs], [r["%s_%s" % (mode, key)] for r in rs],
                            linestyle=style, color=tuple(rgb), marker=".",
                            label="%s %s p%d" % (mode, dispatch, peers))
                    ext = [r for r in rs if r["extrapolated"]]
                    ax.scatter([r["batch"] for r in ext], [r["%s_%s" % (mode, key)] for r in ext],
                               facecolor="none", edgecolor="black", s=40, zorder=4)
        ax.axhline(line, color="red", linestyle="--", linewidth=1)
        ax.text(0.01, line, line_label, transform=ax.get_yaxis_transform(), color="red",
                fontsize=8, va="bottom")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch (workers = minibatches per peer)")
        ax.set_ylabel(ylabel)
        ax.set_title("PROJECTION: %s\n%s" % (title, model), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][len(models) - 1].legend(fontsize=6, loc="best")
    if measured:
        ax = axes[0][-1]
        cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, (label, xs, ys, points) in enumerate(measured):
            color = cycle[i % len(cycle)]
            ax.plot(xs, ys, color=color, label=label + " model")
            ax.scatter([p[0] for p in points], [p[1] for p in points], color=color,
                       edgecolor="black", zorder=5, s=30)
        study = (1 - line / 100.0) if key == "improvement" else line
        ax.axhline(study, color="red", linestyle="--", linewidth=1)
        ax.text(0.01, study, line_label + (" = %.4fx" % study if key == "improvement" else ""),
                transform=ax.get_yaxis_transform(), color="red", fontsize=8, va="bottom")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch")
        ax.set_ylabel("gradient phase: serverless / baseline time" if key == "improvement"
                      else ylabel)
        ax.set_title("PROJECTION model at the MEASURED settings (%s cores)\n"
                     "dots: measured medians on this box" % cores, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.text(0.01, 0.01, "Projection from a model calibrated on a 2-core box (see "
             "projection.md); solid: weights/gradients serialised at the peer (mayfly's MPI "
             "design), dashed: in parallel (cloud store). Open circles: VGG11 per-task time "
             "extrapolated linearly in the batch.", fontsize=7)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def measured_scale(cal, prices, runs, key):
    """The model at the measured settings (this box's cores) against the measured runs: per
    setting and serverless variant, predicted improvement % (or cost ratio) over batch, and
    the measured medians. Returns [(label, xs, predicted, [(batch, measured)])]."""
    base = {}
    for r in runs:
        if r.mode == "baseline":
            base.setdefault(r.setting, []).append(r)
    groups = {}
    for r in runs:
        if r.mode in ("cold", "warm") and r.setting in base:
            c = r.config
            label = (c["model"], int(c["peers"]), int(c["tasks_per_round"]), r.mode,
                     int(c["workers"]))
            groups.setdefault(label, []).append(r)
    out = []
    batches = [32, 64, 128, 256, 512, 1024]
    for (model, peers, tasks, mode, workers), mine in sorted(groups.items()):
        params = int(mine[0].config["model_parameters"])
        xs, ys = [], []
        for b in batches:
            t_base = predict(cal, model, b, peers, tasks, 1, "baseline", params)[0]
            t = predict(cal, model, b, peers, tasks, workers, mode, params)[0]
            if key == "improvement":  # as a time ratio: spans 0.01x-100x here
                ys.append(t / t_base)
            else:
                cb = project_cost(cal, prices, "baseline", t_base, peers, tasks, 1, params,
                                  float(mine[0].config.get("worker-memory", 1769)), 0.0)
                cs = project_cost(cal, prices, mode, t, peers, tasks, workers, params,
                                  float(mine[0].config.get("worker-memory", 1769)), 0.0)
                ys.append(cs["usd_total"] / cb["usd_total"])
            xs.append(b)
        points = []
        for batch in sorted({int(r.config["batch"]) for r in mine}):
            rs = [r for r in mine if int(r.config["batch"]) == batch]
            bs = base[rs[0].setting]
            if key == "improvement":
                m = (np.median([r.median("compute") for r in rs]) /
                     np.median([r.median("compute") for r in bs]))
            else:
                if any(r.cost is None for r in rs + bs):
                    continue
                m = (np.median([r.cost["usd_total"] for r in rs]) /
                     np.median([r.cost["usd_total"] for r in bs]))
            points.append((batch, float(m)))
        out.append(("%s %s p%d K%d w%d" % (model, mode, peers, tasks, workers), xs, ys, points))
    return out


def regimes(prows):
    lines = []
    for mode in ("cold", "warm"):
        for dispatch in ("serial", "parallel"):
            sel = [r for r in prows if r["dispatch"] == dispatch]
            hit = [r for r in sel if r[mode + "_improvement"] >= STUDY_IMPROVEMENT]
            best = max(sel, key=lambda r: r[mode + "_improvement"])
            lines.append("- %s, %s transfers: improvement >= %.2f %% in %d of %d settings%s; "
                         "best %.2f %% (%s b%d p%d, %d workers/peer)."
                         % (mode, dispatch, STUDY_IMPROVEMENT, len(hit), len(sel),
                            (" (" + ", ".join("%s b%d p%d" % (r["model"], r["batch"], r["peers"])
                                              for r in hit[:12])
                             + (" ..." if len(hit) > 12 else "") + ")") if hit else "",
                            best[mode + "_improvement"], best["model"], best["batch"],
                            best["peers"], best["workers"]))
            near = sorted(sel, key=lambda r: abs(r[mode + "_cost_ratio"] - STUDY_COST_RATIO))[:3]
            lines.append("  cost ratio (serverless run / instance-only run) range %.2f-%.2fx; "
                         "closest to %.1fx: %s." % (
                             min(r[mode + "_cost_ratio"] for r in sel),
                             max(r[mode + "_cost_ratio"] for r in sel), STUDY_COST_RATIO,
                             ", ".join("%s b%d p%d %.2fx" % (r["model"], r["batch"], r["peers"],
                                                             r[mode + "_cost_ratio"])
                                       for r in near)))
            shares = [r[mode + "_orchestration_share"] for r in sel]
            lines.append("  orchestration (2 state transitions per invocation) is %.0f-%.0f %% "
                         "of the serverless spend." % (100 * min(shares), 100 * max(shares)))
    return "\n".join(lines)


def write_markdown(path, args, cal, prices, vrows, prows, cold_start, pngs, skipped):
    errs = [abs(r["error_pct"]) for r in vrows]
    by_mode = {}
    for r in vrows:
        by_mode.setdefault(r["mode"], []).append(abs(r["error_pct"]))
    mode_err = ", ".join("%s %.0f %% (max %.0f %%)" % (m, np.median(by_mode[m]),
                                                       max(by_mode[m]))
                         for m in ("baseline", "cold", "warm") if m in by_mode)
    cost_worst = max((r["cost_max_rel_err"] for r in vrows
                      if not math.isnan(r["cost_max_rel_err"])), default=float("nan"))
    L = []
    L.append("# PROJECTION to the study's scale (a model, not a measurement)\n")
    L.append("Written by `results/tools/projection.py`. Every number in the study-scale tables is "
             "**predicted** by a model calibrated on a %d-core machine from the measured files "
             "listed under *Calibration inputs*; read it as a what-if. Where the model could be "
             "checked (the %d measured runs below) its median error is %.0f %% (%s).\n"
             % (cal.cores, len(vrows), np.median(errs), mode_err))
    L.append("## Where the study's regimes fall (projection)\n")
    L.append("The study: gradient computation time improved by up to %.2f %%, serverless cost "
             "up to %.1fx the instance-based P2P cost. Improvement = 100 x (1 - t_serverless / "
             "t_baseline) of the gradient phase; cost ratio = total cost of the serverless "
             "configuration (functions + orchestration + the peers' instances) / total cost of "
             "the instance-only baseline (figures.py's figure (c) ratio).\n"
             % (STUDY_IMPROVEMENT, STUDY_COST_RATIO))
    L.append(regimes(prows) + "\n")
    L.append("## Study-scale assumptions\n")
    L.append("Peers %s, batch %s, models %s; tasks K = mayfly's `--tasks all` = "
             "floor(floor(%d / peers) / batch) minibatches per peer (the paper's \"12 peers, "
             "batch 1024, 5 functions per peer\" counts a last partial minibatch; mayfly and "
             "this table do not, so that cell has K = 4); one worker (function) per minibatch "
             "(W = K), each on its own core (slow = 1); one core per peer; per-task time = this "
             "machine's single-thread step (`mayfly-kernels`). Worker memory %d MB (1 vCPU on "
             "Lambda), prices `%s` (%s). Cold start per round: %.3f s (%s). Per-round cost "
             "follows bench/harness/cost.c: cold workers are billed from spawn to close (teardown "
             "taken as 0), warm workers for the whole round, every task is one invocation with "
             "2 state transitions; peers hold their instances for compute + exchange (ring "
             "model) + update.\n"
             % (",".join(map(str, args.peers)), ",".join(map(str, args.batches)),
                ", ".join(args.models), args.train_samples, args.worker_memory,
                prices.get("name", "?"), os.path.relpath(prices["path"], os.path.dirname(RESULTS)),
                cold_start, "--cold-start" if args.cold_start is not None else
                "default: one parent's measured spawn of 1 child + the median worker start-up "
                "beyond spawn; paper.md has no published Lambda cold-start figure - pass one "
                "with --cold-start SECONDS"))
    for dispatch in ("serial", "parallel"):
        L.append("## Projected gradient phase, improvement %% and cost ratio: %s transfers\n"
                 % dispatch)
        L.append({"serial": "mayfly's MPI design: the peer sends W weight copies and receives "
                            "K gradients over its one link.\n",
                  "parallel": "cloud-like: every function fetches the weights and stores its "
                              "gradient on its own link, and the gradients are averaged in the "
                              "store (SPIRT-style), so one transfer time each way.\n"}
                 [dispatch])
        L.append(md_table(["model", "batch", "peers", "K=W", "baseline s", "cold s", "cold %",
                           "warm s", "warm %", "cold cost x", "warm cost x"],
                          [[r["model"], "%d%s" % (r["batch"], "*" if r["extrapolated"] else ""),
                            r["peers"], r["tasks"], r["baseline_s"], r["cold_s"],
                            "%.2f" % r["cold_improvement"], r["warm_s"],
                            "%.2f" % r["warm_improvement"], "%.2f" % r["cold_cost_ratio"],
                            "%.2f" % r["warm_cost_ratio"]]
                           for r in prows if r["dispatch"] == dispatch]) + "\n")
    L.append("`*`: per-task time extrapolated linearly in the batch (least squares over the "
             "measured batches; VGG11 was measured at 64-256 only).\n")
    L.append("## Validation: predicted vs measured gradient phase (`/timing/compute`)\n")
    L.append("Measured = median over the rounds after warm-up of the per-round maximum over "
             "peers; predicted = the model at the run's own P, K, W and C = %d cores. What is "
             "in-sample: fetch, update and the transfer fit use these runs; the spawn and "
             "start-up fits leave the run's own configuration (all its repetitions) out; the "
             "per-task time comes from `mayfly-kernels` where given (a different program), "
             "else from the baseline runs. Median |error| %.0f %% over %d runs: %s. "
             "`cost rel err`: the Python re-implementation of bench/harness/cost.c applied to the run's "
             "own consumption (worker_seconds, invocations, train_seconds, peers, threads, "
             "worker memory, its price table) against its /cost attributes: worst %.1e "
             "(required: <= 1e-9).\n"
             % (cal.cores, np.median(errs), len(vrows), mode_err, cost_worst))
    L.append(md_table(["file", "mode", "model", "b", "P", "K", "W", "measured s",
                       "predicted s", "error %", "spawn meas", "spawn pred", "cost rel err"],
                      [[r["file"], r["mode"], r["model"], r["batch"], r["peers"], r["tasks"],
                        r["workers"], r["measured_s"], r["predicted_s"], "%+.0f" % r["error_pct"],
                        r["spawn_meas"], r["spawn_pred"], "%.1e" % r["cost_max_rel_err"]]
                       for r in vrows]) + "\n")
    L.append("The right-hand panels of `improvement.png` and `cost_ratio.png` draw the model at "
             "the measured settings with the measured medians on top. Measured cost ratios "
             "include evaluation rounds (test accuracy), which the per-round cost model leaves "
             "out; for the tiny mlp, whose evaluation takes several times its gradient phase, "
             "the model's cost ratio is therefore several times the measured one.\n")
    if skipped:
        L.append("Files left out: " + "; ".join("%s (%s)" % s for s in skipped) + "\n")
    L.append("## Calibration inputs\n")
    L.append(md_table(["input", "value", "from"], cal.sources) + "\n")
    if cal.fb_runs:
        rows = []
        for model, pts in sorted(cal.fb_runs.items()):
            for b, v in sorted(pts.items()):
                k = cal.fb_points.get(model, {}).get(b)
                rows.append([model, b, v, k, (v / k) if k else float("nan")])
        L.append("Cross-check of the per-task time: the baseline runs' forward_backward "
                 "(divided by the run's slow-down) against what the model uses:\n")
        L.append(md_table(["model", "batch", "runs s", "model uses s", "runs / used"], rows)
                 + "\n")
    L.append("## The model\n")
    L.append("```\n" + __doc__.split("The model", 1)[1].split("Usage:", 1)[0].strip()
             + "\n```\n")
    L.append("## Limits of the model\n")
    L.append(
        "- Per-task time is one core's single-thread step on this machine (AMD EPYC, AVX-512), "
        "measured while the machine was shared (see the load averages below); a Lambda vCPU "
        "or a t2 instance is slower or faster by an unknown factor, which scales baseline and "
        "tasks alike (the improvement barely moves, the cost does). Repeated kernel "
        "measurements are combined by taking the fastest median.\n"
        "- Transfers are fitted on TCP loopback inside one VM (~GB/s); a function pulling "
        "VGG11's 491 MiB of weights from an object store gets ~0.1 GB/s, which this model "
        "does not know: VGG11's projected serverless times are optimistic.\n"
        "- Minibatch fetch is timed from a local file (`/timing/tasks` fetch); a function "
        "reading its minibatch from an object store pays a request latency per task.\n"
        "- Cold start at scale is one parameter; here the spawn cost grows with the children in "
        "flight on the box (time-sharing), which does not happen when every function has its "
        "own machine.\n"
        "- The exchange uses the 2-peer alpha-beta fit of `mayfly-exchange` scaled with the "
        "ring formula and extrapolated beyond the measured 64 MiB for VGG11; it only enters "
        "the cost (the peers' instance time), not the gradient phase.\n"
        "- A fresh worker's first steps (page faults, allocator and OpenBLAS warm-up) are not "
        "modelled; neither are evaluation rounds, retries or stragglers.\n"
        "- Time-sharing is modelled as max(1, busy processes / cores); waiting peers and MPI "
        "progress also take CPU here.\n")
    L.append("## Commands\n")
    L.append("This file was written by:\n")
    L.append("```\n%s\n```\n" % " ".join(["/usr/bin/python3"] + [
        ("'%s'" % a) if any(ch in a for ch in "*?[ ") else a for a in sys.argv]))
    if args.notes:
        L.append(open(args.notes).read().strip() + "\n")
    L.append("## Files\n")
    L += ["- `%s`" % os.path.basename(p) for p in pngs]
    L.append("- `validation.csv`, `projection.csv`: the tables above, full precision\n")
    with open(path, "w") as f:
        f.write("\n".join(L))
    return path


def parse_list(text, kind=int):
    try:
        return [kind(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError("'%s' is not a comma-separated list" % text)


def main(argv):
    ap = argparse.ArgumentParser(
        prog="projection.py", description="Calibrated PROJECTION of gradient-phase time and "
        "cost to the study's scale (see the module docstring).")
    ap.add_argument("results", help="directory of mayfly-train *.h5 results (recursive)")
    ap.add_argument("--spawn", nargs="*", default=[], help="mayfly-spawn -o files "
                    "(/spawn/children, spawn_seconds, /pingpong); repeated files: fastest "
                    "median per children count")
    ap.add_argument("--exchange", help="mayfly-exchange -o file (alpha-beta per algorithm)")
    ap.add_argument("--kernels", nargs="*", default=[], help="mayfly-kernels --csv outputs, "
                    "batch in the name as b<N> (globs allowed)")
    ap.add_argument("--out", default=os.path.join(RESULTS, "projection"),
                    help="output directory [default: results/projection]")
    ap.add_argument("--cores", type=int, help="free cores of the measuring machine "
                    "[default: from the runs' hwloc topology]")
    ap.add_argument("--prices", default="aws-us-east-1",
                    help="price table name or file (results/prices/) [default: aws-us-east-1]")
    ap.add_argument("--peers", type=parse_list, default=[4, 8, 12],
                    help="study peers [default: 4,8,12; paper.md: 4 default, 12 appears]")
    ap.add_argument("--batches", type=parse_list, default=[64, 128, 256, 512, 1024])
    ap.add_argument("--models", type=lambda s: parse_list(s, str), default=list(PAPER_MODELS))
    ap.add_argument("--train-samples", type=int, default=60000, help="training samples split "
                    "over the peers [default: 60000, (Fashion-)MNIST's training set]")
    ap.add_argument("--worker-memory", type=float, default=1769.0, help="function size in MB "
                    "[default: 1769 = 1 vCPU on Lambda; mayfly-train's --worker-memory default]")
    ap.add_argument("--cold-start", type=float, help="cloud cold start per round in seconds "
                    "[default: our spawn of 1 child + median worker start-up]")
    ap.add_argument("--notes", help="a markdown file included verbatim in projection.md (how "
                    "the calibration files were measured: commands, machine load)")
    args = ap.parse_args(argv[1:])
    kernels = []
    for pattern in args.kernels:
        found = sorted(glob.glob(pattern))
        if not found:
            fail("--kernels: %s: no such file" % pattern)
        kernels += found
    args.kernels = kernels
    if not os.path.isdir(args.results):
        fail("%s: no such directory" % args.results)
    if args.notes and not os.path.isfile(args.notes):
        fail("--notes: %s: no such file" % args.notes)
    for opt, path in [("spawn", p) for p in args.spawn] + [("exchange", args.exchange)]:
        if path and not os.path.isfile(path):
            fail("--%s: %s: no such file" % (opt, path))
        if path and not h5py.is_hdf5(path):
            fail("--%s: %s: not an HDF5 file" % (opt, path))
    candidates = [os.path.join(b, n) for b, _, files in os.walk(args.results) for n in files
                  if n.endswith(".h5")]
    if not candidates:
        fail("no *.h5 results files under %s" % args.results)
    if not any(h5py.is_hdf5(c) for c in candidates):
        fail("no HDF5 file among the %d *.h5 files under %s (e.g. %s)"
             % (len(candidates), args.results, candidates[0]))
    load_plotting()
    runs, skipped = figures.load_runs(args.results)
    runs = [r for r in runs if os.path.realpath(os.path.dirname(r.path)) !=
            os.path.realpath(args.out)]
    if not runs:
        why = "; ".join("%s: %s" % s for s in skipped)
        fail("no complete mayfly-train results under %s%s" % (args.results,
                                                               (" (" + why + ")") if why else ""))
    prices = load_prices(resolve_prices(args.prices))
    cal = Calibration(runs, args)
    vrows = validate(cal, runs)
    prows, cold_start = study_projection(cal, prices, args, runs)
    if not prows:
        fail("no study setting has at least one minibatch per peer")
    os.makedirs(args.out, exist_ok=True)
    write_csv(os.path.join(args.out, "validation.csv"), vrows)
    write_csv(os.path.join(args.out, "projection.csv"), prows)
    pngs = [figure_validation(cal, runs, vrows, args.out),
            figure_study(prows, "improvement", "improvement of the gradient phase [%]",
                         STUDY_IMPROVEMENT, "study: %.2f %%" % STUDY_IMPROVEMENT, args.out,
                         "improvement.png", "improvement over the peer computing alone",
                         measured=measured_scale(cal, prices, runs, "improvement"),
                         cores=cal.cores),
            figure_study(prows, "cost_ratio", "cost / instance-only cost", STUDY_COST_RATIO,
                         "study: %.1fx" % STUDY_COST_RATIO, args.out, "cost_ratio.png",
                         "serverless cost relative to instances",
                         measured=measured_scale(cal, prices, runs, "cost_ratio"),
                         cores=cal.cores)]
    md = write_markdown(os.path.join(args.out, "projection.md"), args, cal, prices, vrows, prows,
                        cold_start, pngs, skipped)
    bad = [r for r in vrows if not r["cost_max_rel_err"] <= 1e-9 and r["cost_max_rel_err"] == r[
        "cost_max_rel_err"]]
    for r in bad:
        print("projection: warning: %s: /cost not reproduced by the Python formulas (rel err "
              "%.2e)" % (r["file"], r["cost_max_rel_err"]), file=sys.stderr)
    for path in pngs + [md, os.path.join(args.out, "validation.csv"),
                        os.path.join(args.out, "projection.csv")]:
        print(path)
    print("projection: %d runs validated, median |error| %.0f %%; %d study settings projected "
          "(PROJECTION, not measurements)" % (len(vrows), np.median([abs(r["error_pct"])
                                                                      for r in vrows]),
                                               len(prows)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except InputError as e:
        print("projection: error: %s" % e, file=sys.stderr)
        sys.exit(1)
