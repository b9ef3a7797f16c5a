"""The models an evaluation scores: training run directories or .keras files (trained here or
imported), each with its own input size, checked against the dataset's classes."""

import dataclasses
import os

from inception import fileio
from inception.export import classifier


@dataclasses.dataclass
class Member:
    """One model of the evaluation (an ensemble member).

    ``background``: the model has one output more than the dataset has classes, index 0 being
    the background class of the released 1001-class checkpoints; that column is dropped and the
    rest renormalised before averaging.
    """

    name: str
    path: str
    model: object
    image_size: int
    num_outputs: int
    architecture: str
    run_record: dict
    labels: list | None
    background: bool = False

    def describe(self):
        return {
            "name": self.name,
            "path": self.path,
            "architecture": self.architecture,
            "image_size": self.image_size,
            "num_outputs": self.num_outputs,
            "background_class_dropped": self.background,
        }


def load(path):
    """Loads one member (call under the strategy's scope so its variables are distributed)."""
    if fileio.isdir(path):  # a run directory, on any TensorFlow file system
        src = classifier.from_run_dir(path)
        labels = src.labels
        name = os.path.basename(os.path.normpath(path))
    else:
        src = classifier.from_keras_file(path, flag="models")
        labels = None  # a bare .keras file has no class names
        name = os.path.splitext(os.path.basename(path))[0]
    architecture = src.run_record.get("model") or src.model.name
    outputs = int(src.model.outputs[0].shape[-1])
    return Member(
        name=name,
        path=path,
        model=src.model,
        image_size=src.image_size,
        num_outputs=outputs,
        architecture=architecture,
        run_record=src.run_record,
        labels=labels,
    )


def check_against_dataset(member, info):
    """Sets ``member.background``; ValueError if the model cannot be scored on ``info``'s classes."""
    k = info.num_classes
    if member.num_outputs == k + 1:
        member.background = True
    elif member.num_outputs != k:
        raise ValueError(
            f"{member.path}: the model has {member.num_outputs} outputs but dataset "
            f"{info.name!r} has {k} classes (a model with {k + 1} outputs is taken to have a "
            "background class at index 0)"
        )
    if member.labels is not None and list(member.labels) != list(info.label_names):
        raise ValueError(
            f"{member.path}: its labels.txt does not list dataset {info.name!r}'s classes in the "
            f"same order (first labels: {member.labels[:3]} vs {list(info.label_names)[:3]})"
        )


def unique_names(members):
    """Makes display names unique (a model given twice, or two runs with one basename)."""
    seen = {}
    for m in members:
        seen[m.name] = seen.get(m.name, 0) + 1
    counts = {}
    for m in members:
        if seen[m.name] > 1:
            counts[m.name] = counts.get(m.name, 0) + 1
            m.name = f"{m.name}#{counts[m.name]}"
