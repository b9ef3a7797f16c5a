"""A published file (TF-slim checkpoint or archive, timm safetensors, ...) -> a keras-hub preset
directory of the network's ImageClassifier, through the same importer as ``weights.build``.

The importer fills our model (every check of ``inception.weights.assign``: network, names, shapes,
classes); its blocks and classifier are then copied into the keras-hub classifier, whose layers
are the same blocks. The directory is published whole or not at all (``fileio.publish_dir``) and
holds keras-hub's files plus ``labels.txt`` (the class names) and ``source.json`` (the file, its
sha256, the licence).
"""

import json
import os

from inception import fileio, models
from inception.hub import presets
from inception.hub.backbone import InceptionResNetV2Backbone, InceptionV4Backbone
from inception.hub.image_classifier import (
    InceptionResNetV2ImageClassifier,
    InceptionV4ImageClassifier,
)
from inception.hub.preprocessor import (
    InceptionResNetV2ImageClassifierPreprocessor,
    InceptionV4ImageClassifierPreprocessor,
)
from inception.weights import fetch, labeled, names, pretrained

# The networks with published weights: (backbone, classifier, preprocessor) classes.
CLASSES = {
    "inception_v4": (
        InceptionV4Backbone,
        InceptionV4ImageClassifier,
        InceptionV4ImageClassifierPreprocessor,
    ),
    "inception_resnet_v2": (
        InceptionResNetV2Backbone,
        InceptionResNetV2ImageClassifier,
        InceptionResNetV2ImageClassifierPreprocessor,
    ),
}


def destination(preset):
    """(directory, the network it must hold or None) of a registered preset name or a path."""
    if preset in presets.RELEASED:
        return presets.preset_directory(preset), presets.RELEASED[preset].network
    return os.fspath(preset), None


def convert(
    network,
    weights,
    preset,
    *,
    keep_background=False,
    cache_dir=None,
    source_name=fetch.DEFAULT_SOURCE,
    file_hash=None,
    url=None,
):
    """Writes the preset ``preset`` (a directory, or a registered name: its local directory) from
    ``weights`` (a file, or "imagenet": the official file, downloaded once into the weights cache).
    Returns the importer's report plus "output". Refuses an existing directory before any work."""
    directory, expected = destination(preset)
    if network is not None and expected is not None and network != expected:
        raise ValueError(f"the preset {preset!r} holds {expected}, not {network}")
    network = network or expected
    if weights == "imagenet" and network is None:
        raise ValueError("weights='imagenet' needs the network (or a registered preset name)")
    if fileio.exists(directory):
        raise FileExistsError(f"{directory} already exists; remove it to write the preset again")
    path = pretrained.resolve(
        weights, network, cache_dir=cache_dir, source=source_name, file_hash=file_hash, url=url
    )
    model, report = pretrained.load_published(
        network, path, keep_background=keep_background, aux_logits=False
    )
    classifier = classifier_from(model)
    fileio.publish_dir(directory, lambda tmp: _write(classifier, model, report, tmp, preset))
    report["output"] = directory
    return report


def classifier_from(model):
    """The keras-hub ImageClassifier computing ``model`` (a models.build classifier with the
    paper's block counts, of a network that has published weights; no aux head), same weights."""
    net = names.network_of_model(model)
    backbone_cls, classifier_cls, preprocessor_cls = CLASSES[net.name]
    variant = {"variant": net.variant} if net.name == "inception_resnet_v2" else {}
    backbone = backbone_cls(**variant)
    blocks = models.block_names(model)
    for name in blocks:
        backbone.get_layer(name).set_weights(model.get_layer(name).get_weights())
    dense = model.get_layer("predictions")
    # keras-hub's preprocessor does nothing without a converter: give it the evaluation crop.
    preprocessor = preprocessor_cls(preprocessor_cls.image_converter_cls())
    classifier = classifier_cls(
        backbone,
        num_classes=dense.units,
        preprocessor=preprocessor,
        activation=dense.get_config()["activation"],
        dropout=model.get_layer("dropout").rate,
    )
    classifier.output_dense.set_weights(dense.get_weights())
    copied = sum(len(model.get_layer(name).weights) for name in blocks) + len(dense.weights)
    if copied != len(classifier.weights) or len(model.weights) != copied:
        raise RuntimeError(
            f"copied {copied} variables of {len(model.weights)} into {len(classifier.weights)}"
        )
    return classifier


def _write(classifier, model, report, directory, preset):
    classifier.save_to_preset(directory)
    _, readable = labeled.class_names(model)
    if readable:
        with open(os.path.join(directory, "labels.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(readable) + "\n")
    released = presets.RELEASED.get(preset)
    source = {
        "file": report["path"],
        "format": report["format"],
        "sha256": report.get("sha256", {}),
        "network": report["network"],
        "classes": report["model_classes"],
        "background": report["background"],
        "license": presets.LICENCE,
        "origin": released.source if released else None,
    }
    with open(os.path.join(directory, "source.json"), "w", encoding="utf-8") as f:
        json.dump(source, f, indent=2)
