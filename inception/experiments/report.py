"""The reproduction report: figures and a README.md generated from the run directories alone.

Each claim gets a verdict by a rule stated in the report ("reproduced", "not reproduced at this
scale" or "inconclusive"); nothing in it is written by hand.
"""

import io
import os

import numpy as np

from inception import fileio, networks

DIED_THRESHOLD = 0.99
# A scaled run "stays alive" only well below the died threshold: 97% zeros is not a healthy
# network even if it is under 99%.
ALIVE_THRESHOLD = 0.9
# Ten classes: chance is 90% top-1 error; a run learned when it does twice as well as chance.
LEARNED_ERROR = 0.8
# The networks' titles in the tables and figures (NetworkSpec.title), keyed as the runs and
# speed.NETWORKS key them: a network's name, "<name>_<variant>" for a variant not its default.
NAMES = {
    (s.name if s.variant == networks.DEFAULT_VARIANT[s.name] else f"{s.name}_{s.variant}"): (
        s.title if s.variant == networks.DEFAULT_VARIANT[s.name] else f"{s.title} ({s.variant})"
    )
    for s in networks.SPECS.values()
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir, name):
    """The figure as ``out_dir/name`` (PNG, 100 dpi, written atomically); returns ``name``."""
    plt = _pyplot()
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    fileio.write_bytes(os.path.join(out_dir, name), png.getvalue())
    return name


def _runs(ax, curves, x_key, y_key, label):
    """Every seed as its own line in one colour (runs stop at the target, so their lengths
    differ); the first seed carries the legend entry."""
    color = None
    for i, c in enumerate(curves):
        (line,) = ax.plot(
            c[x_key],
            np.asarray(c[y_key]) * 100,
            marker="o",
            markersize=3,
            color=color,
            alpha=0.8,
            label=f"{label} ({len(curves)} seeds)" if i == 0 else None,
        )
        color = line.get_color()


def speed_figures(curves, out_dir, target):
    """One row of panels (top-1, top-5) per training setting, against epochs and against time;
    the target top-1 error as a dashed line."""
    plt = _pyplot()
    paths = []
    for x_key, x_label, name in (
        ("epoch", "training epochs", "claim1_error_vs_epoch.png"),
        ("wall", "wall-clock time (s)", "claim1_error_vs_time.png"),
    ):
        fig, axes = plt.subplots(len(curves), 2, figsize=(11, 4 * len(curves)), squeeze=False)
        for row, (setting, by_network) in zip(axes, curves.items()):
            for ax, y_key, title in zip(row, ("top1_err", "top5_err"), ("top-1", "top-5")):
                for network, runs in by_network.items():
                    _runs(ax, runs, x_key, y_key, NAMES[network])
                if y_key == "top1_err":
                    ax.axhline(target * 100, color="grey", linestyle="--", label="target")
                ax.set(
                    title=f"Validation {title} error, {setting}",
                    xlabel=x_label,
                    ylabel=f"{title} error (%)",
                    ylim=(-2, 102),
                )
                ax.grid(alpha=0.3)
                ax.legend(fontsize=8)
        _save(fig, out_dir, name)
        paths.append(name)
    return paths


def died_figure(series, out_dir):
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for s in series.values():
        label = f"scales {s['labels']['residual_scales']}, lr {s['labels']['learning_rate']}"
        if s["state"] == "diverged":
            label += " (diverged)"
        if s["died"].size:
            axes[0].plot(s["step"], s["died"] * 100, marker="o", label=label)
        if s["loss"].size:
            axes[1].plot(s["loss_step"], s["loss"], label=label)
    axes[0].axhline(DIED_THRESHOLD * 100, color="grey", linestyle="--", label="died threshold")
    axes[0].set(
        title="Exact zeros before average pooling",
        xlabel="training step",
        ylabel="zero activations (%)",
    )
    axes[1].set(title="Training loss", xlabel="training step", ylabel="loss (cross-entropy)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, out_dir, "claim2_died.png")


def cost_figure(rows, out_dir):
    plt = _pyplot()
    keys = list(rows)
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(9, 4))
    for i, (field, label) in enumerate(
        (
            ("macs_ratio", "multiply-adds"),
            ("train_ratio", "training images/s"),
            ("infer_ratio", "inference images/s"),
        )
    ):
        ax.bar(x + (i - 1) * 0.27, [rows[k][field] for k in keys], width=0.27, label=label)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(x, [NAMES[k] for k in keys], fontsize=8)
    ax.set(title="Cost and speed relative to Inception-ResNet-v2", ylabel="ratio to IRv2 (release)")
    ax.legend()
    return _save(fig, out_dir, "claim3_cost_vs_speed.png")


def learned(curve):
    """Whether a run learned at all: its best validation top-1 error is below LEARNED_ERROR."""
    return float(np.min(curve["top1_err"])) < LEARNED_ERROR


def epochs_to_reach(curve, target):
    """(epochs, wall-clock seconds) at the first evaluation with top-1 error <= ``target``, or
    (None, None) when no evaluation got there."""
    hit = np.flatnonzero(curve["top1_err"] <= target)
    if not hit.size:
        return None, None
    return float(curve["epoch"][hit[0]]), float(curve["wall"][hit[0]])


def _missed(name, runs, target):
    """Why ``runs`` of network ``name`` cannot be timed to the target, or '' when they all got
    there."""
    missed = [c for c in runs if epochs_to_reach(c, target)[0] is None]
    if not missed:
        return ""
    best = ", ".join(
        f"seed {c['seed']}: {float(np.min(c['top1_err'])):.1%} after "
        f"{float(c['epoch'][-1]):g} epochs"
        for c in missed
    )
    why = (
        f" (it did not learn: best top-1 error >= {LEARNED_ERROR:.0%})"
        if not any(learned(c) for c in missed)
        else ""
    )
    return (
        f"{NAMES[name]} never reached {target:.0%} top-1 error on {len(missed)} of "
        f"{len(runs)} seeds ({best}){why}"
    )


def describe_setting(by_network, target):
    """One sentence per network: epochs and seconds to the target, seed by seed."""
    parts = []
    for name, runs in by_network.items():
        reached = [epochs_to_reach(c, target) for c in runs]
        parts.append(
            f"{NAMES[name]} "
            + ", ".join(
                f"seed {c['seed']}: "
                + ("not reached" if e is None else f"{e:g} epochs / {t:.0f} s")
                for c, (e, t) in zip(runs, reached)
            )
        )
    return "; ".join(parts)


def judge_speed(curves, target, setting="recipe"):
    """Inception-ResNet-v2 against Inception-v4 (similar cost) under the recipe, by the epochs each
    seed needs to reach ``target`` top-1 error. Reproduced only when both networks reach it on
    every seed and Inception-ResNet-v2 gets there in fewer epochs than Inception-v4 of the same
    seed, every seed; not reproduced when Inception-v4 gets there at least as early on every
    seed; inconclusive otherwise, and whenever a network misses the target (a network that does
    not learn says nothing about speed). The other settings are controls, reported only."""
    pair = ("inception_v4", "inception_resnet_v2")
    by_network = curves.get(setting, {})
    if not all(by_network.get(k) for k in pair):
        return "inconclusive", f"{setting}: a network of the pair has no finished run"
    missed = [m for m in (_missed(k, by_network[k], target) for k in pair) if m]
    detail = f"{setting}: " + describe_setting({k: by_network[k] for k in pair}, target)
    if missed:
        return "inconclusive", detail + ". " + "; ".join(missed)
    epochs = {k: {c["seed"]: epochs_to_reach(c, target)[0] for c in by_network[k]} for k in pair}
    seeds = sorted(set(epochs[pair[0]]) & set(epochs[pair[1]]))
    if seeds and all(epochs[pair[1]][s] < epochs[pair[0]][s] for s in seeds):
        return "reproduced", detail
    if seeds and all(epochs[pair[1]][s] >= epochs[pair[0]][s] for s in seeds):
        return "not reproduced at this scale", detail
    return "inconclusive", detail + " (the order differs between seeds)"


def judge_died(series):
    """Reproduced when an unscaled run dies while the scaled run at the same learning rate stays
    clearly alive (peak zeros under ALIVE_THRESHOLD) and no scaled run dies."""

    def peak(s):
        return float(np.nanmax(s["died"])) if s["died"].size else 0.0

    unscaled = {n: s for n, s in series.items() if s["labels"]["residual_scales"] == "1.0,1.0,1.0"}
    scaled = {n: s for n, s in series.items() if n not in unscaled}
    scaled_peak = {s["labels"]["learning_rate"]: peak(s) for s in scaled.values()}
    died_unscaled = [s for s in unscaled.values() if peak(s) > DIED_THRESHOLD]
    diverged = [n for n, s in series.items() if s["state"] == "diverged"]
    detail = (
        f"died (> {DIED_THRESHOLD:.0%} exact zeros): unscaled {len(died_unscaled)} of "
        f"{len(unscaled)}, scaled {sum(p > DIED_THRESHOLD for p in scaled_peak.values())} of "
        f"{len(scaled)}; diverged: {', '.join(diverged) or 'none'}"
    )
    if not died_unscaled and all(p <= DIED_THRESHOLD for p in scaled_peak.values()):
        return "not reproduced at this scale", detail
    if any(p > DIED_THRESHOLD for p in scaled_peak.values()):
        return "inconclusive", detail + " (a scaled run died too)"
    near = [
        lr
        for lr in (s["labels"]["learning_rate"] for s in died_unscaled)
        if scaled_peak.get(lr, 1.0) >= ALIVE_THRESHOLD
    ]
    if near:
        return "inconclusive", detail + (
            f" (at learning rate {', '.join(f'{lr:g}' for lr in near)} the scaled run also "
            f"reached {ALIVE_THRESHOLD:.0%} zeros or more: scaling delayed the collapse, it did "
            "not prevent it)"
        )
    return "reproduced", detail


def judge_cost(rows):
    v4 = rows.get("inception_v4")
    if v4 is None or "inception_resnet_v2" not in rows:
        return "inconclusive", "Inception-v4 or Inception-ResNet-v2 was not measured"
    detail = (
        f"Inception-v4 / Inception-ResNet-v2: multiply-adds {v4['macs_ratio']:.3f}, training "
        f"images/s {v4['train_ratio']:.3f}, inference images/s {v4['infer_ratio']:.3f}"
    )
    similar_cost = 0.8 <= v4["macs_ratio"] <= 1.25
    if similar_cost and v4["train_ratio"] < 0.9:
        return "reproduced", detail
    if v4["train_ratio"] >= 1.0:
        return "not reproduced at this scale", detail
    return "inconclusive", detail


def format_value(value, spec=".4f"):
    return (
        "-"
        if value is None or (isinstance(value, float) and np.isnan(value))
        else format(value, spec)
    )
