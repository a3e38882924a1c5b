#!/usr/bin/python3
"""Figures and a summary table from a directory of mayfly-train results files.

Why it exists: a sweep (run_slurm.sh --sweep) leaves one HDF5 file per configuration and
repetition; the study's claims are comparisons across them (serverless vs baseline gradient
computation time, cost, scaling). This script reads every *.h5 under DIR (recursively), groups
the runs into configurations, and writes PNGs plus summary.md under DIR/figures/. Every number
shown is a median over repetitions with the interquartile range as error bar; a run's own
figure is the median over its measured rounds (warm-up rounds left out) of the per-round
maximum over peers (the slowest peer sets the pace), as results/SCHEMA.md describes.

Usage: python3 results/tools/figures.py [DIR]      (or: make figures RESULTS=DIR)
Needs Debian's python3-h5py, python3-matplotlib and numpy (/usr/bin/python3).
"""
import os
import sys
from collections import defaultdict

import numpy as np

try:
    import h5py
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
except ImportError as e:  # pragma: no cover - depends on the machine
    sys.exit(f"figures: error: {e} (apt-get install python3-h5py python3-matplotlib; "
             "run with /usr/bin/python3)")

SCHEMA_VERSIONS = (1, 2)  # 2 added task hosts and /pool/host_slots; nothing read here changed
STUDY_IMPROVEMENT_PERCENT = 97.34  # the study's reduction of gradient computation time
STUDY_COST_RATIO = 5.4  # the study's serverless cost relative to instances
# What makes two runs the same "setting" (comparable across modes), and what distinguishes
# the execution variants within one setting.
SETTING_KEYS = ("model", "dataset", "batch", "tasks", "peers", "rounds", "epochs",
                "peer-threads", "exchange")
VARIANT_KEYS = ("mode", "workers", "worker-threads")
PHASES = ("spawn", "dispatch", "compute", "exchange", "update", "eval", "teardown")
MODE_ORDER = {"baseline": 0, "cold": 1, "warm": 2}
MODE_COLORS = {"baseline": "#4C72B0", "cold": "#DD8452", "warm": "#55A868"}
PHASE_COLORS = {"spawn": "#DD8452", "dispatch": "#C44E52", "tasks": "#4C72B0",
                "exchange": "#8172B3", "update": "#937860", "eval": "#DA8BC3",
                "teardown": "#8C8C8C", "other": "#CCB974"}


def text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return text(value[()])
    return str(value)


def as_int(value, default=0):
    try:
        return int(text(value))
    except ValueError:
        return default


class Run:
    """One complete results file, reduced to what the figures need."""

    def __init__(self, path, f):
        self.path = path
        self.config = {k: text(v) for k, v in f["/config"].attrs.items()}
        env = f["/environment"].attrs if "/environment" in f else {}
        self.hosts = text(env.get("hostnames", "?"))
        self.revision = text(f.attrs.get("git_revision", "?"))
        timing = f["/timing"]
        self.warmup = as_int(timing.attrs.get("warmup_rounds", 0))
        self.phases = {name: timing[name][:] for name in timing
                       if isinstance(timing[name], h5py.Dataset) and timing[name].ndim == 2}
        self.loss = f["/train/loss"][:] if "/train/loss" in f else np.array([])
        self.accuracy = f["/train/test_accuracy"][:] if "/train/test_accuracy" in f else []
        self.eval_round = f["/train/eval_round"][:] if "/train/eval_round" in f else []
        self.cost = ({k: (text(v) if isinstance(v, (bytes, str)) else float(v))
                      for k, v in f["/cost"].attrs.items()} if "/cost" in f else None)
        # Workers per peer actually used: /pool/target (per round and peer) when the run has it
        # (`--workers auto` or a schedule A,B,C), else the configured count.
        self.pool_target = f["/pool/target"][:] if "/pool/target" in f else None
        self.mode = self.config.get("mode", "?")
        self.setting = tuple(self.config.get(k, "") for k in SETTING_KEYS)
        self.variant = tuple(self.config.get(k, "") for k in VARIANT_KEYS)
        if self.mode == "baseline":  # workers and worker threads do not apply
            self.variant = ("baseline", "", "")

    def workers(self):
        """Workers per peer: the median /pool/target over rounds and peers, else /config."""
        if self.pool_target is not None and self.pool_target.size:
            return max(1, int(round(float(np.median(self.pool_target)))))
        return max(1, as_int(self.config.get("workers", "1"), 1))

    def measured(self, phase, reduce=np.max):
        """Per-round values of a phase (reduced over peers), warm-up rounds left out."""
        values = self.phases.get(phase)
        if values is None or len(values) == 0:
            return None
        per_round = reduce(values, axis=1)
        if len(per_round) > self.warmup:
            per_round = per_round[self.warmup:]
        return per_round

    def median(self, phase, reduce=np.max):
        values = self.measured(phase, reduce)
        return float(np.median(values)) if values is not None else float("nan")


def load_runs(directory):
    runs, skipped = [], []
    for base, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d != "figures" and not d.startswith("."))
        for name in sorted(files):
            if not name.endswith(".h5"):
                continue
            path = os.path.join(base, name)
            try:
                with h5py.File(path, "r") as f:
                    if text(f.attrs.get("suite", "")) != "mayfly" or "/timing" not in f:
                        skipped.append((path, "not a mayfly-train results file"))
                    elif as_int(f.attrs.get("schema_version", -1)) not in SCHEMA_VERSIONS:
                        skipped.append((path, "schema_version %s, this script reads %s"
                                        % (text(f.attrs.get("schema_version")),
                                           " and ".join(map(str, SCHEMA_VERSIONS)))))
                    elif as_int(f.attrs.get("complete", 0)) != 1:
                        skipped.append((path, "incomplete (complete=0)"))
                    else:
                        runs.append(Run(path, f))
            except (OSError, KeyError) as e:
                skipped.append((path, "unreadable: %s" % e))
    return runs, skipped


def quartiles(values):
    values = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    return tuple(float(q) for q in np.percentile(values, [50, 25, 75]))


def errbar(values):
    """Median and the asymmetric interquartile error bar matplotlib wants."""
    med, q1, q3 = quartiles(values)
    return med, [[med - q1], [q3 - med]]


def setting_label(setting):
    c = dict(zip(SETTING_KEYS, setting))
    return "%s b%s p%s" % (c["model"], c["batch"], c["peers"])


def variant_label(variant, all_variants):
    mode, workers, threads = variant
    if mode == "baseline":
        return "baseline"
    same_mode = {v for v in all_variants if v[0] == mode}
    label = "%s w%s" % (mode, workers)
    if len({v[2] for v in same_mode}) > 1:
        label += " t%s" % threads
    return label


def variant_sort(variant):
    return (MODE_ORDER.get(variant[0], 9), as_int(variant[1]), as_int(variant[2]))


def setting_sort(setting):
    c = dict(zip(SETTING_KEYS, setting))
    return (c["model"], as_int(c["batch"]), as_int(c["peers"]), setting)


class Study:
    """Runs grouped by setting and variant, plus the caption text every figure carries."""

    def __init__(self, runs, directory):
        self.runs = runs
        self.groups = defaultdict(list)  # (setting, variant) -> [Run]
        for run in runs:
            self.groups[(run.setting, run.variant)].append(run)
        self.settings = sorted({s for s, _ in self.groups}, key=setting_sort)
        self.variants = sorted({v for _, v in self.groups}, key=variant_sort)
        hosts = sorted({r.hosts for r in runs})
        revisions = sorted({r.revision for r in runs})
        constant = []
        for key in ("dataset", "tasks", "rounds", "epochs", "peer-threads", "worker-threads",
                    "exchange", "lr", "seed", "warmup"):
            values = {r.config.get(key, "") for r in runs}
            if len(values) == 1 and values != {""}:
                constant.append("%s=%s" % (key, values.pop()))
        self.caption = ("%s: %d runs; machine: %s; git %s; %s"
                        % (os.path.normpath(directory), len(runs), ", ".join(hosts)[:80],
                           ", ".join(revisions)[:40], " ".join(constant)))

    def label(self, variant):
        return variant_label(variant, self.variants)

    def color(self, variant):
        base = MODE_COLORS.get(variant[0], "#777777")
        others = [v for v in self.variants if v[0] == variant[0]]
        if len(others) <= 1:
            return base
        # Shades of the mode's colour for its worker counts.
        i = others.index(variant)
        rgb = np.array(matplotlib.colors.to_rgb(base))
        return tuple(rgb * (0.55 + 0.45 * i / max(1, len(others) - 1)))

    def run_values(self, setting, variant, fn):
        return [fn(r) for r in self.groups.get((setting, variant), [])]


def finish(fig, study, path, note=""):
    caption = study.caption + (("\n" + note) if note else "")
    fig.text(0.01, 0.005, caption, fontsize=7, ha="left", va="bottom", wrap=True, color="#333333")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def variant_bars(ax, study, settings, variants, values_fn, reference=None,
                 reference_label=""):
    """One bar per (setting, variant) with values: median and interquartile error bar of
    values_fn(setting, variant) (None or empty: no bar), and the study's reference line
    when given."""
    width = 0.8 / max(1, len(variants))
    for j, variant in enumerate(variants):
        xs, meds, lo, hi = [], [], [], []
        for i, setting in enumerate(settings):
            values = values_fn(setting, variant)
            if not values:
                continue
            med, err = errbar(values)
            xs.append(i + (j - (len(variants) - 1) / 2) * width)
            meds.append(med)
            lo += err[0]
            hi += err[1]
        if xs:
            ax.bar(xs, meds, width, yerr=[lo, hi], capsize=2, label=study.label(variant),
                   color=study.color(variant), edgecolor="black", linewidth=0.4)
    if reference is None:
        return
    ax.axhline(reference, color="red", linestyle="--", linewidth=1)
    ax.text(0.01, reference, reference_label, transform=ax.get_yaxis_transform(), color="red",
            va="bottom", fontsize=8)


def grouped_bars(ax, study, settings, variants, value_fn, ylabel):
    """One group of bars per setting, one bar per variant; median with IQR error bars."""
    variant_bars(ax, study, settings, variants,
                 lambda setting, variant: study.run_values(setting, variant, value_fn))
    ax.set_xticks(range(len(settings)))
    ax.set_xticklabels([setting_label(s) for s in settings], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)


def wide_figure(n_groups, height=5.2):
    return plt.figure(figsize=(max(8.0, min(40.0, 3.5 + 0.55 * n_groups)), height))


def main_axes(fig, bottom, height):
    """Axes with fixed room in inches: 1 left for the y label, 2.3 right for the legend."""
    width_in = fig.get_size_inches()[0]
    left = 1.0 / width_in
    return fig.add_axes([left, bottom, 1.0 - left - 2.3 / width_in, height])


def figure_compute(study, out):
    """(a) Gradient computation time per mode, per model/batch/peers."""
    fig = wide_figure(len(study.settings) * max(1, len(study.variants)) / 2)
    ax = main_axes(fig, 0.30, 0.62)
    grouped_bars(ax, study, study.settings, study.variants, lambda r: r.median("compute"),
                 "gradient computation time per round [s]")
    values = [r.median("compute") for r in study.runs]
    if values and max(values) / max(1e-9, min(v for v in values if v > 0)) > 50:
        ax.set_yscale("log")
    ax.set_title("(a) Gradient computation time per round\n(median over rounds of the max over peers)", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return finish(fig, study, os.path.join(out, "a_compute_time.png"),
                  "bars: median over repetitions; error bars: interquartile range; "
                  "warm-up rounds excluded")


def improvements(study):
    """(setting, variant) -> improvement % per repetition against the setting's baseline."""
    result = {}
    for setting in study.settings:
        base = study.run_values(setting, ("baseline", "", ""), lambda r: r.median("compute"))
        if not base:
            continue
        base_median = float(np.median(base))
        for variant in study.variants:
            if variant[0] == "baseline":
                continue
            values = study.run_values(setting, variant, lambda r: r.median("compute"))
            if values and base_median > 0:
                result[(setting, variant)] = [100.0 * (1.0 - v / base_median) for v in values]
    return result


def figure_improvement(study, out, improvement):
    """(b) Improvement % of the gradient computation time against baseline, per configuration."""
    fig = wide_figure(len(improvement))
    ax = main_axes(fig, 0.30, 0.62)
    variants = [v for v in study.variants if v[0] != "baseline"]
    settings = [s for s in study.settings if any((s, v) in improvement for v in variants)]
    variant_bars(ax, study, settings, variants, lambda s, v: improvement.get((s, v)),
                 STUDY_IMPROVEMENT_PERCENT, "study: %.2f %%" % STUDY_IMPROVEMENT_PERCENT)
    ax.axhline(0, color="black", linewidth=0.8)
    lows = [min(v) for v in improvement.values() if v]
    if lows and min(lows) < -200:  # a much slower mode would squash the study's line
        ax.set_yscale("symlog", linthresh=100)
        ax.text(0.99, 0.01, "symmetric log scale (linear within +-100 %)", fontsize=7,
                transform=ax.transAxes, ha="right", va="bottom", color="#555555")
    ax.set_xticks(range(len(settings)))
    ax.set_xticklabels([setting_label(s) for s in settings], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("improvement over baseline [%]\n100 x (1 - t_mode / t_baseline)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("(b) Gradient computation time improvement per configuration")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return finish(fig, study, os.path.join(out, "b_improvement.png"),
                  "negative: slower than baseline; per repetition against the baseline median; "
                  "bars: median, error bars: interquartile range")


def figure_cost(study, out):
    """(c) Cost per run: serverless modes against the instance-only baseline, when /cost exists."""
    with_cost = [r for r in study.runs if r.cost is not None]
    if not with_cost:
        return None
    fig = wide_figure(len(study.settings) * max(1, len(study.variants)) / 2, height=8.0)
    ax = main_axes(fig, 0.62, 0.32)
    ax2 = main_axes(fig, 0.20, 0.32)
    currency = sorted({r.cost.get("currency", "USD") for r in with_cost})
    prices = sorted({r.cost.get("prices", "?") for r in with_cost})
    total = lambda r: r.cost["usd_total"] if r.cost else float("nan")
    settings = [s for s in study.settings
                if any(r.cost for v in study.variants for r in study.groups.get((s, v), []))]
    grouped_bars(ax, study, settings, study.variants, total,
                 "cost per run [%s]" % "/".join(currency))
    ax.set_xticklabels([])
    ax.set_title("(c) Cost per run (price table: %s)" % ", ".join(prices))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    # Ratio of each serverless run's cost to the median cost of the setting's baseline.
    def ratios(setting, variant):
        base = [total(r) for r in study.groups.get((setting, ("baseline", "", "")), []) if r.cost]
        mine = [total(r) for r in study.groups.get((setting, variant), []) if r.cost]
        if not base or not mine or np.median(base) <= 0:
            return None
        return [m / float(np.median(base)) for m in mine]
    variant_bars(ax2, study, settings, [v for v in study.variants if v[0] != "baseline"], ratios,
                 STUDY_COST_RATIO, "study: %.1fx" % STUDY_COST_RATIO)
    ax2.axhline(1.0, color="black", linewidth=0.8)
    ax2.set_xticks(range(len(settings)))
    ax2.set_xticklabels([setting_label(s) for s in settings], rotation=45, ha="right",
                        fontsize=8)
    ax2.set_ylabel("cost / baseline (instances) cost")
    ax2.grid(axis="y", alpha=0.3)
    return finish(fig, study, os.path.join(out, "c_cost.png"),
                  "top: total cost of a run (serverless part + peers' instances) from /cost; "
                  "bottom: ratio to the setting's baseline run; medians, IQR error bars")


def phase_breakdown(run):
    """Median over measured rounds of each phase (mean over peers), compute split into its
    parts: cold/warm compute includes spawn and dispatch (SCHEMA.md)."""
    parts = {}
    for phase in PHASES:
        parts[phase] = run.median(phase, reduce=np.mean) if phase in run.phases else 0.0
    parts["tasks"] = max(0.0, parts.pop("compute") - parts["spawn"] - parts["dispatch"])
    total = run.median("round", reduce=np.mean)
    parts["other"] = max(0.0, total - sum(parts.values())) if np.isfinite(total) else 0.0
    return parts


def figure_phases(study, out):
    """(d) Per-phase stacked breakdown of a round, per mode."""
    order = ["spawn", "dispatch", "tasks", "exchange", "update", "eval", "teardown", "other"]
    bars = []  # (label, {phase: median over repetitions})
    for setting in study.settings:
        for variant in study.variants:
            group = study.groups.get((setting, variant))
            if not group:
                continue
            per_run = [phase_breakdown(r) for r in group]
            bars.append(("%s\n%s" % (setting_label(setting), study.label(variant)),
                         {p: float(np.median([b[p] for b in per_run])) for p in order}))
    fig = wide_figure(len(bars))
    ax = main_axes(fig, 0.34, 0.58)
    bottom = np.zeros(len(bars))
    for phase in order:
        heights = np.array([b[1][phase] for b in bars])
        if not heights.any():
            continue
        ax.bar(range(len(bars)), heights, 0.7, bottom=bottom, label=phase,
               color=PHASE_COLORS[phase], edgecolor="black", linewidth=0.3)
        bottom += heights
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([b[0] for b in bars], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("time per round [s]")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("(d) Where a round goes, per mode\n(median over rounds of the mean over peers)", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return finish(fig, study, os.path.join(out, "d_phases.png"),
                  "tasks = compute - spawn - dispatch; other = round - sum of phases; "
                  "medians over repetitions")


def figure_scaling(study, out):
    """(e) Gradient computation time against peers and against workers."""
    fig = plt.figure(figsize=(12, 5.4))
    axes = [fig.add_axes([0.08, 0.25, 0.36, 0.65]), fig.add_axes([0.56, 0.25, 0.36, 0.65])]
    drawn = [0, 0]
    # Against peers: lines per (model, batch, variant) over the peer counts present.
    lines = defaultdict(dict)
    for (setting, variant), group in study.groups.items():
        c = dict(zip(SETTING_KEYS, setting))
        key = (c["model"], c["batch"], c["dataset"], c["tasks"], c["rounds"], c["epochs"], variant)
        lines[key][as_int(c["peers"])] = [r.median("compute") for r in group]
    for key in sorted(lines, key=lambda k: (k[0], as_int(k[1]), variant_sort(k[6]))):
        points = lines[key]
        if len(points) < 2:
            continue
        xs = sorted(points)
        meds, lo, hi = [], [], []
        for x in xs:
            med, err = errbar(points[x])
            meds.append(med)
            lo += err[0]
            hi += err[1]
        axes[0].errorbar(xs, meds, yerr=[lo, hi], marker="o", capsize=2,
                         color=study.color(key[6]),
                         label="%s b%s %s" % (key[0], key[1], study.label(key[6])))
        drawn[0] += 1
    axes[0].set_xlabel("peers")
    axes[0].set_title("(e) vs peers")
    # Against workers: serverless variants of one setting with several worker counts.
    by_setting = defaultdict(lambda: defaultdict(dict))
    for (setting, variant), group in study.groups.items():
        if variant[0] != "baseline":
            by_setting[setting][(variant[0], variant[2])][as_int(variant[1])] = \
                [r.median("compute") for r in group]
    for setting in sorted(by_setting, key=setting_sort):
        for (mode, threads), points in sorted(by_setting[setting].items()):
            if len(points) < 2:
                continue
            xs = sorted(points)
            meds, lo, hi = [], [], []
            for x in xs:
                med, err = errbar(points[x])
                meds.append(med)
                lo += err[0]
                hi += err[1]
            axes[1].errorbar(xs, meds, yerr=[lo, hi], marker="o", capsize=2,
                             color=MODE_COLORS.get(mode, "#777777"),
                             label="%s %s" % (setting_label(setting), mode))
            drawn[1] += 1
            base = study.run_values(setting, ("baseline", "", ""), lambda r: r.median("compute"))
            if base:
                axes[1].axhline(float(np.median(base)), color=MODE_COLORS["baseline"],
                                linestyle=":", linewidth=1)
    axes[1].set_xlabel("workers per peer")
    axes[1].set_title("(e) vs workers (dotted: that setting's baseline)")
    for ax, n in zip(axes, drawn):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_ylabel("gradient computation time per round [s]")
        ax.grid(alpha=0.3)
        if n:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no configuration varies this\nin these results",
                    transform=ax.transAxes, ha="center", va="center", color="#777777")
    return finish(fig, study, os.path.join(out, "e_scaling.png"),
                  "medians over repetitions, interquartile error bars")


def figure_training(study, out):
    """(f) Loss and test accuracy against wall time, one figure per model."""
    written = []
    models = sorted({r.config.get("model", "?") for r in study.runs})
    for model in models:
        fig = plt.figure(figsize=(12, 5.4))
        ax_loss = fig.add_axes([0.08, 0.22, 0.34, 0.68])
        ax_acc = fig.add_axes([0.50, 0.22, 0.28, 0.68])
        styles = {"baseline": "-", "cold": "--", "warm": ":"}
        settings = [s for s in study.settings if dict(zip(SETTING_KEYS, s))["model"] == model]
        palette = plt.get_cmap("tab10")
        for i, setting in enumerate(settings):
            for variant in study.variants:
                group = [r for r in study.groups.get((setting, variant), [])
                         if "round" in r.phases and len(r.phases["round"])]
                if not group:
                    continue
                # The repetition with the median total time stands for the group.
                totals = [float(np.sum(r.phases["round"].max(axis=1))) for r in group]
                run = group[int(np.argsort(totals)[len(totals) // 2])]
                wall = np.cumsum(run.phases["round"].max(axis=1))
                label = "%s %s" % (setting_label(setting), study.label(variant))
                kw = dict(color=palette(i % 10), linestyle=styles.get(variant[0], "-."))
                n = min(len(wall), len(run.loss))
                ax_loss.plot(wall[:n], run.loss[:n], label=label, **kw)
                if len(run.accuracy):
                    rounds = np.asarray(run.eval_round, dtype=int)
                    ok = rounds < len(wall)
                    ax_acc.plot(wall[rounds[ok]], 100 * np.asarray(run.accuracy)[ok],
                                marker="o", markersize=3, label=label, **kw)
        ax_loss.set_xlabel("wall time [s] (sum of rounds)")
        ax_loss.set_ylabel("training loss")
        ax_loss.set_title("(f) %s: training loss" % model)
        ax_acc.set_xlabel("wall time [s] (sum of rounds)")
        ax_acc.set_ylabel("test accuracy [%]")
        ax_acc.set_title("(f) %s: test accuracy" % model)
        for ax in (ax_loss, ax_acc):
            ax.grid(alpha=0.3)
        ax_acc.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7)
        written.append(finish(fig, study, os.path.join(out, "f_training_%s.png" % model),
                              "one run per setting and mode (the median-length repetition); "
                              "line style: mode (solid baseline, dashed cold, dotted warm)"))
    return written


def write_summary(study, out, figures, skipped, improvement):
    lines = ["# mayfly results summary", "", study.caption, "",
             "Per run: median over measured rounds of the per-round max over peers. Table: "
             "median [interquartile range] over repetitions.", "",
             "| setting | variant | runs | compute per round [s] | round [s] | improvement [%] |"
             " cost per run |", "|---|---|---|---|---|---|---|"]
    for setting in study.settings:
        for variant in study.variants:
            group = study.groups.get((setting, variant))
            if not group:
                continue
            comp = quartiles([r.median("compute") for r in group])
            rnd = quartiles([r.median("round") for r in group])
            imp = improvement.get((setting, variant))
            imp_text = "%.1f [%.1f, %.1f]" % quartiles(imp) if imp else "-"
            costs = [r.cost["usd_total"] for r in group if r.cost]
            cost_text = ("%.6f %s" % (float(np.median(costs)), group[0].cost.get("currency", ""))
                         if costs else "-")
            lines.append("| %s | %s | %d | %.4f [%.4f, %.4f] | %.4f [%.4f, %.4f] | %s | %s |"
                         % (setting_label(setting), study.label(variant), len(group),
                            comp[0], comp[1], comp[2], rnd[0], rnd[1], rnd[2], imp_text,
                            cost_text))
    lines += ["", "Study reference lines: %.2f %% improvement, %.1fx cost."
              % (STUDY_IMPROVEMENT_PERCENT, STUDY_COST_RATIO), "", "## Figures", ""]
    lines += ["- [%s](%s)" % (os.path.basename(p), os.path.basename(p)) for p in figures]
    if not any(r.cost for r in study.runs):
        lines.append("- (c) cost: skipped, no run has a /cost group")
    if skipped:
        lines += ["", "## Files left out", ""]
        lines += ["- %s: %s" % (p, why) for p, why in skipped]
    path = os.path.join(out, "summary.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__.strip())
        return 0 if len(argv) == 2 else 2
    directory = argv[1] if len(argv) == 2 else "results"
    if not os.path.isdir(directory):
        print("figures: error: %s: no such directory" % directory, file=sys.stderr)
        return 2
    runs, skipped = load_runs(directory)
    for path, why in skipped:
        print("figures: note: %s left out: %s" % (path, why), file=sys.stderr)
    if not runs:
        print("figures: error: no complete mayfly-train results under %s" % directory,
              file=sys.stderr)
        return 1
    out = os.path.join(directory, "figures")
    os.makedirs(out, exist_ok=True)
    study = Study(runs, directory)
    improvement = improvements(study)
    written = [figure_compute(study, out), figure_improvement(study, out, improvement),
               figure_cost(study, out), figure_phases(study, out), figure_scaling(study, out)]
    written += figure_training(study, out)
    written = [p for p in written if p]
    summary = write_summary(study, out, written, skipped, improvement)
    for path in written + [summary]:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
