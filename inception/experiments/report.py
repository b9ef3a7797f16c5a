"""The reproduction report: figures and a README.md generated from the run directories alone.

Each claim gets a verdict by a rule stated in the report ("reproduced", "not reproduced at this
scale" or "inconclusive"); nothing in it is written by hand.
"""

import json
import os

import numpy as np

from inception.experiments import results

DIED_THRESHOLD = 0.99
# A scaled run "stays alive" only well below the died threshold: 97% zeros is not a healthy
# network even if it is under 99%.
ALIVE_THRESHOLD = 0.9
# Ten classes: chance is 90% top-1 error; a run learned when it does twice as well as chance.
LEARNED_ERROR = 0.8
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
    """One row of panels (top-1, top-5) per training setting, against epochs and against time."""
    plt = _pyplot()
    paths = []
    for x_key, x_label, name in (("epoch", "training epochs", "claim1_error_vs_epoch.png"),
                                 ("wall", "wall-clock time (s)", "claim1_error_vs_time.png")):
        fig, axes = plt.subplots(len(curves), 2, figsize=(11, 4 * len(curves)), squeeze=False)
        for row, (setting, by_network) in zip(axes, curves.items()):
            for ax, y_key, title in zip(row, ("top1_err", "top5_err"), ("top-1", "top-5")):
                for network, runs in by_network.items():
                    _band(ax, runs, x_key, y_key, NAMES[network])
                ax.set(title=f"Validation {title} error, {setting}", xlabel=x_label,
                       ylabel=f"{title} error (%)", ylim=(-2, 102))
                ax.grid(alpha=0.3)
                ax.legend(fontsize=8)
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


def learned(curve):
    """Whether a run learned at all: its best validation top-1 error is below LEARNED_ERROR."""
    return float(np.min(curve["top1_err"])) < LEARNED_ERROR


def judge_speed(curves):
    """Inception-ResNet-v2 against Inception-v4 (similar cost) under each training setting, by
    each seed's mean top-1 error over the epochs (the area under its curve): every IRv2 seed
    below every v4 seed favours the claim, the reverse contradicts it, overlapping spreads are
    inconclusive. The claim is reproduced when every setting favours it."""
    pair = ("inception_v4", "inception_resnet_v2")
    outcomes, details = [], []
    for setting, by_network in curves.items():
        if not all(k in by_network for k in pair):
            outcomes.append("inconclusive")
            details.append(f"{setting}: a network of the pair has no finished run")
            continue
        area = {k: [float(np.mean(c["top1_err"])) for c in by_network[k]] for k in pair}
        detail = (f"{setting}: mean top-1 error over the epochs Inception-ResNet-v2 "
                  f"{_fmt_list(area[pair[1]])}, Inception-v4 {_fmt_list(area[pair[0]])}")
        silent = [NAMES[k] for k in pair if not any(learned(c) for c in by_network[k])]
        if silent:
            detail += f" ({' and '.join(silent)} did not learn: best top-1 error >= " \
                      f"{LEARNED_ERROR:.0%} in every seed)"
        if max(area[pair[1]]) < min(area[pair[0]]):
            outcomes.append("reproduced")
        elif max(area[pair[0]]) < min(area[pair[1]]):
            outcomes.append("not reproduced at this scale")
        else:
            outcomes.append("inconclusive")
            detail += " (the seeds' spreads overlap)"
        details.append(detail)
    if not outcomes:
        return "inconclusive", "no finished run"
    verdict = outcomes[0] if len(set(outcomes)) == 1 else "inconclusive"
    return verdict, "; ".join(details)


def judge_died(series):
    """Reproduced when an unscaled run dies while the scaled run at the same learning rate stays
    clearly alive (peak zeros under ALIVE_THRESHOLD) and no scaled run dies."""
    def peak(s):
        return float(np.nanmax(s["died"])) if s["died"].size else 0.0

    unscaled = {n: s for n, s in series.items()
                if s["labels"]["residual_scales"] == "1.0,1.0,1.0"}
    scaled = {n: s for n, s in series.items() if n not in unscaled}
    scaled_peak = {s["labels"]["learning_rate"]: peak(s) for s in scaled.values()}
    died_unscaled = [s for s in unscaled.values() if peak(s) > DIED_THRESHOLD]
    diverged = [n for n, s in series.items() if s["state"] == "diverged"]
    detail = (f"died (> {DIED_THRESHOLD:.0%} exact zeros): unscaled {len(died_unscaled)} of "
              f"{len(unscaled)}, scaled {sum(p > DIED_THRESHOLD for p in scaled_peak.values())} of "
              f"{len(scaled)}; diverged: {', '.join(diverged) or 'none'}")
    if not died_unscaled and all(p <= DIED_THRESHOLD for p in scaled_peak.values()):
        return "not reproduced at this scale", detail
    if any(p > DIED_THRESHOLD for p in scaled_peak.values()):
        return "inconclusive", detail + " (a scaled run died too)"
    near = [lr for lr in (s["labels"]["learning_rate"] for s in died_unscaled)
            if scaled_peak.get(lr, 1.0) >= ALIVE_THRESHOLD]
    if near:
        return "inconclusive", detail + (
            f" (at learning rate {', '.join(f'{lr:g}' for lr in near)} the scaled run also "
            f"reached {ALIVE_THRESHOLD:.0%} zeros or more: scaling delayed the collapse, it did "
            "not prevent it)")
    return "reproduced", detail


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
