"""Published weights in our models: ``build(name, weights, ...)`` (``models.build`` with the
weights loaded and the classes named) and the converter.

``weights`` is a path (format detected from the content, see detect.py) or ``"imagenet"`` (the
official TF-slim file of the network, see fetch.py). Classifiers of 1000 (or 1001) ImageNet classes
get the class names (labeled.py), so a saved ``.keras`` names its classes.
"""

import os

import keras

from inception import fileio
from inception.weights import assign, classes, detect, fetch, labeled, names
from inception.weights.file import WeightsError, sha256


def resolve(
    weights, network, *, cache_dir=None, source=fetch.DEFAULT_SOURCE, file_hash=None, url=None
):
    """A local path for ``weights``: the path itself, or the official file for "imagenet"."""
    if isinstance(weights, str) and weights == "imagenet":
        return fetch.official_file(
            network, source, cache_dir=cache_dir, file_hash=file_hash, url=url
        )
    if isinstance(weights, (str, os.PathLike)):
        return os.fspath(weights)
    raise TypeError(f"weights must be None, 'imagenet' or a path; got {type(weights).__name__}")


def load_weights(model, weights, *, cache_dir=None, new_head=False, aux_optional=False):
    """Loads a weights file into ``model`` in place and returns the report (see assign.py)."""
    net = names.network_of_model(model) if weights == "imagenet" else None
    path = resolve(weights, net.name if net else None, cache_dir=cache_dir)
    with detect.open_source(path) as source:
        report = assign.load_source(model, source, new_head=new_head, missing_aux_ok=aux_optional)
        source_ids, source_names = (
            labeled.class_names(source.model) if source.model is not None else (None, None)
        )
    report["class_ids"], report["class_names"] = source_ids, source_names
    return report


def name_classes(model, report):
    """The model with a LabeledDense classifier naming its classes, when they are known."""
    if report.get("model_classes") is None:
        return model
    ids, readable = report.get("class_ids"), report.get("class_names")
    if (
        ids is None
        and report["format"] != "Keras model (.keras) of this project"
        and report["model_classes"] in (1000, 1001)  # every published file is ImageNet
    ):
        ids, readable = classes.class_lists(report["model_classes"])
    if ids is None:
        return model
    return labeled.with_class_names(model, ids, readable)


def from_build(model, weights):
    """A freshly built ``model`` with ``weights`` loaded and its classes named (``build``, and
    the applications' ``weights=``)."""
    report = load_weights(model, weights)
    return name_classes(model, report)


def build(name, weights, **build_args):
    """``models.build(name, **build_args)`` with ``weights`` loaded: "imagenet" (the official
    released file, from the local cache or downloaded) or the path of published weights (a TF-slim
    checkpoint or its .tar.gz, a timm .safetensors, keras-applications' Inception-ResNet-v2 .h5,
    or a .keras of this project; README "Pretrained weights"). Published weights need the
    paper's block counts: ``repeats`` is refused before anything is built."""
    from inception import models, networks

    paper = networks.spec(name, build_args.get("variant"))
    repeats = build_args.get("repeats")
    if repeats is not None and tuple(repeats) != paper.repeats:
        raise ValueError(
            f"weights={weights!r} need the paper's block counts {paper.repeats}; leave repeats out"
        )
    return from_build(models.build(name, **build_args), weights)


def convert(
    network,
    weights,
    output,
    *,
    keep_background=False,
    aux_logits=None,
    include_top=True,
    cache_dir=None,
    source_name=fetch.DEFAULT_SOURCE,
    file_hash=None,
    url=None,
):
    """Converts a published file into our ``.keras`` model (plus ``<output stem>.labels.txt``).

    ``network`` may be None for a file: it is then read from the file. ``aux_logits`` None keeps
    the auxiliary head when the file has one. Returns the report; writes nothing if anything
    fails (the model is saved and loaded back in a scratch directory, then written with
    ``inception.fileio``: atomically, on any file system).
    """
    if not str(output).endswith(".keras"):
        raise ValueError(f"the output must be a .keras file; got {output}")
    if weights == "imagenet" and network is None:
        raise ValueError("weights='imagenet' needs the network")
    path = resolve(
        weights, network, cache_dir=cache_dir, source=source_name, file_hash=file_hash, url=url
    )
    model, report = load_published(
        network,
        path,
        keep_background=keep_background,
        aux_logits=aux_logits,
        include_top=include_top,
    )
    report["output"] = os.fspath(output)
    report["output_sha256"], report["labels_file"] = _write(model, output)
    return report


def load_published(network, path, *, keep_background=False, aux_logits=None, include_top=True):
    """(our model with the published file's weights and class names, the report): the network
    read from the file (``network`` None, or checked against it), 1000 classes or slim's 1001."""
    from inception import models

    with detect.open_source(path) as source:
        net = names.network_of_name(source.network)
        if net is None:
            raise WeightsError(
                f"{path} holds {source.title}, which has no published ImageNet weights"
            )
        if network is not None and network != net.name:
            raise WeightsError(
                f"{path} holds the weights of {net.title} ({net.name}), not {network}"
            )
        if aux_logits is None:
            aux_logits = source.has_aux() and include_top
        num_classes = 1001 if keep_background else 1000
        if keep_background and not source.background:
            raise WeightsError(
                f"{path} has no background class to keep ({source.format}: 1000 classes)"
            )
        model = models.build(
            net.name,
            num_classes=num_classes,
            aux_logits=aux_logits,
            variant=net.variant,
            include_top=include_top,
            classifier_activation="softmax",
        )
        report = assign.load_source(model, source)
    report["class_ids"], report["class_names"] = None, None
    report["aux_logits"] = bool(aux_logits)
    report["variant"] = net.variant
    return name_classes(model, report), report


def _write(model, output):
    """``output`` (and ``<stem>.labels.txt`` when the classes have names), written through
    ``inception.fileio`` once the model has loaded back in safe mode; returns (the model file's
    sha256, the labels file or None)."""
    labels_path = os.path.splitext(os.fspath(output))[0] + ".labels.txt"
    _, readable = labeled.class_names(model)
    with fileio.local_scratch() as scratch:
        local = os.path.join(scratch, "model.keras")
        model.save(local)
        keras.saving.load_model(
            local, compile=False, safe_mode=True
        )  # proves it loads in safe mode
        directory = os.path.dirname(os.fspath(output))
        if directory:
            fileio.makedirs(directory)
        if readable:
            fileio.write_text(labels_path, "\n".join(readable) + "\n")
        fileio.copy_file(local, output)
        return sha256(local), (labels_path if readable else None)
