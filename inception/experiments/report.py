"""The reproduction report: figures and a README.md generated from the run directories alone.

Each claim gets a verdict by a rule stated in the report ("reproduced", "not reproduced at this
scale" or "inconclusive"); nothing in it is written by hand.
"""

import json
import os

import numpy as np

from inception.experiments import results

DIED_THRESHOLD = 0.99
NAMES = {"inception_v4": "Inception-v4", "inception_resnet_v1": "Inception-ResNet-v1",
         "inception_resnet_v2": "Inception-ResNet-v2", "inception_resnet_v2_paper":
         "Inception-ResNet-v2 (paper)"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _band(ax, curves, x_key, y_key, label):
    """Mean over seeds as a line, min-max over seeds as a band (epochs common to all seeds)."""
    n = min(len(c[y_key]) for c in curves)
    x = np.mean([c[x_key][:n] for c in curves], axis=0)
    y = np.array([c[y_key][:n] for c in curves]) * 100
    line, = ax.plot(x, y.mean(0), marker="o", label=f"{label} ({len(curves)} seeds)")
    ax.fill_between(x, y.min(0), y.max(0), color=line.get_color(), alpha=0.2)


def speed_figures(curves, out_dir):
    plt = _pyplot()
    paths = []
    for x_key, x_label, name in (("epoch", "training epochs", "claim1_error_vs_epoch.png"),
                                 ("wall", "wall-clock time (s)", "claim1_error_vs_time.png")):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, y_key, title in zip(axes, ("top1_err", "top5_err"), ("top-1", "top-5")):
            for network, runs in curves.items():
                _band(ax, runs, x_key, y_key, NAMES[network])
            ax.set(title=f"Validation {title} error", xlabel=x_label, ylabel=f"{title} error (%)")
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, name), dpi=100)
        plt.close(fig)
        paths.append(name)
    return paths


def died_figure(series, out_dir):
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, s in series.items():
        label = f"scales {s['labels']['residual_scales']}, lr {s['labels']['learning_rate']}"
        if s["state"] == "diverged":
            label += " (diverged)"
        if s["died"].size:
            axes[0].plot(s["step"], s["died"] * 100, marker="o", label=label)
        if s["loss"].size:
            axes[1].plot(s["loss_step"], s["loss"], label=label)
    axes[0].axhline(DIED_THRESHOLD * 100, color="grey", linestyle="--", label="died threshold")
    axes[0].set(title="Exact zeros before average pooling", xlabel="training step",
                ylabel="zero activations (%)")
    axes[1].set(title="Training loss", xlabel="training step", ylabel="loss (cross-entropy)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "claim2_died.png"), dpi=100)
    plt.close(fig)
    return "claim2_died.png"


def cost_figure(rows, out_dir):
    plt = _pyplot()
    keys = list(rows)
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(9, 4))
    for i, (field, label) in enumerate((("macs_ratio", "multiply-adds"),
                                        ("train_ratio", "training images/s"),
                                        ("infer_ratio", "inference images/s"))):
        ax.bar(x + (i - 1) * 0.27, [rows[k][field] for k in keys], width=0.27, label=label)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(x, [NAMES[k] for k in keys], fontsize=8)
    ax.set(title="Cost and speed relative to Inception-ResNet-v2", ylabel="ratio to IRv2 (release)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "claim3_cost_vs_speed.png"), dpi=100)
    plt.close(fig)
    return "claim3_cost_vs_speed.png"


def judge_speed(curves):
    """Inception-ResNet-v2 against Inception-v4 (similar cost), by each seed's mean top-1 error
    over the epochs (the area under its curve): every IRv2 seed below every v4 seed reproduces
    the claim, the reverse contradicts it, overlapping spreads are inconclusive."""
    if "inception_v4" not in curves or "inception_resnet_v2" not in curves:
        return "inconclusive", "a network of the pair has no finished run"
    area = {k: [float(np.mean(c["top1_err"])) for c in curves[k]]
            for k in ("inception_v4", "inception_resnet_v2")}
    detail = (f"mean top-1 error over the epochs: Inception-ResNet-v2 "
              f"{_fmt_list(area['inception_resnet_v2'])}, Inception-v4 {_fmt_list(area['inception_v4'])}")
    if max(area["inception_resnet_v2"]) < min(area["inception_v4"]):
        return "reproduced", detail
    if max(area["inception_v4"]) < min(area["inception_resnet_v2"]):
        return "not reproduced at this scale", detail
    return "inconclusive", detail + " (the seeds' spreads overlap)"


def judge_died(series):
    def died(s):
        return bool(s["died"].size) and bool(np.nanmax(s["died"]) > DIED_THRESHOLD)

    unscaled = [s for s in series.values() if s["labels"]["residual_scales"] == "1.0,1.0,1.0"]
    scaled = [s for s in series.values() if s not in unscaled]
    diverged = [n for n, s in series.items() if s["state"] == "diverged"]
    detail = (f"died (> {DIED_THRESHOLD:.0%} exact zeros): unscaled {sum(map(died, unscaled))} of "
              f"{len(unscaled)}, scaled {sum(map(died, scaled))} of {len(scaled)}; diverged: "
              f"{', '.join(diverged) or 'none'}")
    if any(map(died, unscaled)) and not any(map(died, scaled)):
        return "reproduced", detail
    if not any(map(died, unscaled + scaled)):
        return "not reproduced at this scale", detail
    return "inconclusive", detail


def judge_cost(rows):
    v4 = rows.get("inception_v4")
    if v4 is None or "inception_resnet_v2" not in rows:
        return "inconclusive", "Inception-v4 or Inception-ResNet-v2 was not measured"
    detail = (f"Inception-v4 / Inception-ResNet-v2: multiply-adds {v4['macs_ratio']:.3f}, training "
              f"images/s {v4['train_ratio']:.3f}, inference images/s {v4['infer_ratio']:.3f}")
    similar_cost = 0.8 <= v4["macs_ratio"] <= 1.25
    if similar_cost and v4["train_ratio"] < 0.9:
        return "reproduced", detail
    if v4["train_ratio"] >= 1.0:
        return "not reproduced at this scale", detail
    return "inconclusive", detail


def _fmt_list(values):
    return "[" + ", ".join(f"{v:.4f}" for v in values) + "]"


def _fmt(value, spec=".4f"):
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else format(value, spec)
