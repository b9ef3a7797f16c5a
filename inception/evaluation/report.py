"""The evaluation's table (laid out like the paper's Tables 2-5: one row per network and number
of crops, the ensemble with its number of models) and its ``eval.json``, written atomically."""

import io
import os

import numpy as np

from inception import fileio
from inception.train.steps import TOP_K

COLUMNS = ("Network", "Models", "Crops") + tuple(f"Top-{k} Error" for k in TOP_K)


def table_rows(result):
    """Rows grouped by protocol (Tables 2, 3, 4), members first, the ensemble last (Table 5)."""
    order = {p: i for i, p in enumerate(result["protocols"])}
    members = [m["name"] for m in result["members"]]
    names = {
        m["name"]: f"{m['name']} ({m['architecture']}, {m['image_size']}px)"
        for m in result["members"]
    }
    rank = {name: i for i, name in enumerate(members + ["ensemble"])}
    rows = sorted(result["results"], key=lambda r: (order[r["crops"]], rank[r["model"]]))
    out = []
    for r in rows:
        label = (
            "Ensemble of " + " + ".join(members) if r["model"] == "ensemble" else names[r["model"]]
        )
        out.append(
            (
                label,
                str(r["models"]),
                str(r["crops"]),
                *(f"{100.0 * r[f'top{k}_error']:.2f}%" for k in TOP_K),
            )
        )
    return out


def format_table(result):
    """The table as Markdown text (readable in a terminal and pasteable into notes)."""
    rows = table_rows(result)
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]

    def line(cells):
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
            )
            + " |"
        )

    rule = (
        "|" + "|".join("-" * (w + 1) + ("-" if i == 0 else ":") for i, w in enumerate(widths)) + "|"
    )
    title = f"{result['dataset']}/{result['split']}, {result['num_images']} images" + (
        f" ({result['skipped_images']} undecodable skipped)" if result.get("skipped_images") else ""
    )
    return "\n".join([title, line(COLUMNS), rule] + [line(r) for r in rows])


def write_json(result, path):
    """Writes ``result`` to ``path`` atomically (``inception.fileio``): a reader never sees a
    partial file."""
    _make_parent(path)
    fileio.write_json(path, result)


def write_probabilities(result, path):
    """Per-image probabilities to ``path`` (.npz, atomically): ``probabilities`` float32
    [N, rows, P, K] (rows: the members in order, then the ensemble if there are several; P: the
    protocols), ``labels`` [N], ``rows`` and ``protocols``."""
    names = [m["name"] for m in result["members"]]
    if len(names) > 1:
        names.append("ensemble")
    buffer = io.BytesIO()
    np.savez(
        buffer,
        probabilities=result["probabilities"].astype(np.float32),
        labels=result["labels"],
        rows=np.array(names),
        protocols=np.array(result["protocols"]),
    )
    _make_parent(path)
    fileio.write_bytes(path, buffer.getvalue())


def _make_parent(path):
    directory = os.path.dirname(os.fspath(path))
    if directory:
        fileio.makedirs(directory)
