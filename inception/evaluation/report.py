"""The evaluation's table (laid out like the paper's Tables 2-5: one row per network and number
of crops, the ensemble with its number of models) and its ``eval.json``, written atomically."""

import json
import os
import tempfile

import numpy as np

COLUMNS = ("Network", "Models", "Crops", "Top-1 Error", "Top-3 Error", "Top-5 Error")


def table_rows(result):
    """Rows grouped by protocol (Tables 2, 3, 4), members first, the ensemble last (Table 5)."""
    order = {p: i for i, p in enumerate(result["protocols"])}
    members = [m["name"] for m in result["members"]]
    names = {m["name"]: f"{m['name']} ({m['architecture']}, {m['image_size']}px)"
             for m in result["members"]}
    rank = {name: i for i, name in enumerate(members + ["ensemble"])}
    rows = sorted(result["results"], key=lambda r: (order[r["crops"]], rank[r["model"]]))
    out = []
    for r in rows:
        label = "Ensemble of " + " + ".join(members) if r["model"] == "ensemble" else names[r["model"]]
        out.append((label, str(r["models"]), str(r["crops"]),
                    *(f"{100.0 * r[f'top{k}_error']:.2f}%" for k in (1, 3, 5))))
    return out


def format_table(result):
    """The table as Markdown text (readable in a terminal and pasteable into notes)."""
    rows = table_rows(result)
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]

    def line(cells):
        return "| " + " | ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ("-" if i == 0 else ":")
                          for i, w in enumerate(widths)) + "|"
    title = (f"{result['dataset']}/{result['split']}, {result['num_images']} images"
             + (f" ({result['skipped_images']} undecodable skipped)"
                if result.get("skipped_images") else ""))
    return "\n".join([title, line(COLUMNS), rule] + [line(r) for r in rows])


def write_json(result, path):
    """Writes ``result`` to ``path`` through a temporary file in the same directory and a rename,
    so a reader never sees a partial file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_probabilities(result, path):
    """Per-image probabilities to ``path`` (.npz, atomically): ``probabilities`` float32
    [N, rows, P, K] (rows: the members in order, then the ensemble if there are several; P: the
    protocols), ``labels`` [N], ``rows`` and ``protocols``."""
    names = [m["name"] for m in result["members"]]
    if len(names) > 1:
        names.append("ensemble")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, probabilities=result["probabilities"].astype(np.float32),
                     labels=result["labels"], rows=np.array(names),
                     protocols=np.array(result["protocols"]))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
