"""Copies a WeightsFile (file.py) into a model, refusing anything that does not fit exactly.

Every tensor of the file ends in exactly one of: copied into one of our variables, checked (a
unit BatchNorm gamma), ignored (a step counter), or not used because the model has no such part
(no auxiliary head, no top, or a new classifier for fine-tuning); anything else is an error that
names the tensor. The report says where each tensor went.
"""

import keras
import numpy as np

from inception.weights.file import WeightsError, file_checksums

CLASSIFIERS = {"predictions": "classifier", "aux_logits/fc": "auxiliary classifier"}
_SHOWN = 8


def _listing(items):
    items = list(items)
    more = f" (and {len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def _classifier_of(path):
    for prefix in CLASSIFIERS:
        if path.startswith(prefix + "/"):
            return prefix
    return None


def match(model, source, *, new_head=False, missing_aux_ok=False):
    """Checks everything and returns (copies, report) without touching the model.

    copies: [(variable, entry, transform)]; transform maps the loaded array to the variable's.
    new_head: a classifier whose class count differs from the file's is left as initialized
        (fine-tuning) instead of being an error.
    missing_aux_ok: an auxiliary head the file has no weights for is left as initialized.
    """
    _check_network(model, source)
    variables = {v.path: v for v in model.weights if "seed_generator" not in v.path}
    copies, fresh, unused = _pair(variables, source, new_head, missing_aux_ok)
    unused += _not_in_model(variables, source)
    return copies, _report(model, source, variables, copies, fresh, unused)


def _check_network(model, source):
    """The file must hold this network and nothing else."""
    if source.network != model.name:
        raise WeightsError(
            f"{source.path} holds the weights of {source.title} ({source.network}); the model is "
            f"{model.name!r}. Build the network the file was made for."
        )
    if source.unknown:
        raise WeightsError(
            f"{source.path}: extra variable(s) that are not part of {source.title}: "
            f"{_listing(source.unknown)}. A file of another network or a modified one?"
        )


def _pair(variables, source, new_head, missing_aux_ok):
    """Each of the model's variables with its entry of the file: (copies, left initialized,
    entries not used); raises WeightsError listing every missing variable and shape mismatch."""
    copies, fresh, unused, missing, shape_errors = [], [], [], [], []
    for path, variable in variables.items():
        entry = source.entries.get(path)
        if entry is None:
            if path.startswith("aux_logits/") and missing_aux_ok and not source.has_aux():
                fresh.append((path, "the file has no auxiliary head"))
            else:
                missing.append(f"{source.expected_key(path)} (for our {path})")
            continue
        want, have = tuple(variable.shape), tuple(entry.shape)
        if want == have:
            copies.append((variable, entry, None))
            continue
        head = _classifier_of(path)
        if not head or want[:-1] != have[:-1]:
            shape_errors.append(
                f"{entry.key} has shape {list(have)}, our {path} needs {list(want)}"
            )
        elif source.background and have[-1] == 1001 and want[-1] == 1000:
            copies.append((variable, entry, _drop_background))
        elif new_head:
            why = f"new {CLASSIFIERS[head]} for {want[-1]} classes (the file has {have[-1]})"
            fresh.append((path, why))
            unused.append((entry.key, f"not used: {why}"))
        else:
            shape_errors.append(
                f"{entry.key}: the file's {CLASSIFIERS[head]} has {have[-1]} classes, the model "
                f"{want[-1]} (build with num_classes={have[-1]}"
                + (" or 1000 to drop the background class" if source.background else "")
                + "; for another dataset use load_initial_weights(..., new_head=True))"
            )
    problems = []
    if missing:
        problems.append(f"missing variable(s) the model needs: {_listing(missing)}")
    if shape_errors:
        problems.append(f"shape mismatch: {_listing(shape_errors)}")
    if problems:
        raise WeightsError(f"{source.path}: " + "; ".join(problems))
    return copies, fresh, unused


def _not_in_model(variables, source):
    """The file's entries the model has no variable for: a head it was built without, or an error."""
    unused = []
    for path, entry in source.entries.items():
        if path in variables:
            continue
        if path.startswith("aux_logits/"):
            unused.append((entry.key, "not used: the model has no auxiliary head"))
        elif _classifier_of(path) == "predictions":
            unused.append((entry.key, "not used: the model has no classifier (include_top=False)"))
        else:
            raise WeightsError(
                f"{source.path}: extra variable {entry.key}: the model has no {path}"
            )
    return unused


def _report(model, source, variables, copies, fresh, unused):
    """Where each tensor of the file went; every one is accounted for exactly once."""
    model_classes = (
        int(variables["predictions/bias"].shape[0]) if "predictions/bias" in variables else None
    )
    report = {
        "network": source.title,
        "model": model.name,
        "format": source.format,
        "detail": source.detail,
        "path": source.path,
        "source_classes": source.classes(),
        "model_classes": model_classes,
        "background": (
            "dropped"
            if any(t is _drop_background for _, _, t in copies)
            else "kept"
            if source.background and model_classes == 1001
            else None
        ),
        "copied": [(e.key, v.path) for v, e, _ in copies],
        "checked": list(source.checked),
        "ignored": list(source.ignored),
        "not_used": unused,
        "left_initialized": fresh,
        "source_tensors": source.num_keys,
    }
    accounted = (
        len(report["copied"]) + len(report["checked"]) + len(report["ignored"]) + len(unused)
    )
    if accounted != source.num_keys or len({k for k, _ in report["copied"]}) != len(
        report["copied"]
    ):
        raise AssertionError(
            f"internal: {accounted} tensors accounted for, the file has {source.num_keys}"
        )
    return report


def _drop_background(array):
    """slim's 1001 classes -> the 1000 ImageNet classes: class 0 is "background"."""
    return array[..., 1:]


def _read(entry, transform, variable, path):
    """The value of one copy, checked: WeightsError naming ``path`` and the tensor when the file
    cannot give it (truncated, corrupt), gives another shape, or holds NaN or infinity."""
    try:
        value = entry.load()
    except WeightsError:
        raise
    except Exception as err:  # each library raises its own kind for a damaged file
        raise WeightsError(
            f"{path}: cannot read {entry.key} ({type(err).__name__}: "
            f"{str(err)[:300]}); the file is truncated or damaged"
        ) from err
    if transform is not None:
        value = transform(value)
    if tuple(value.shape) != tuple(variable.shape):
        raise WeightsError(
            f"{path}: {entry.key}: read shape {tuple(value.shape)}, expected "
            f"{tuple(variable.shape)} for our {variable.path}"
        )
    bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
    if bad:
        raise WeightsError(
            f"{path}: {entry.key} holds {bad} NaN or infinite value(s); the file is damaged"
        )
    return value


def apply(copies, path="the weights file"):
    """Reads and checks every value first, then assigns: a file that fails part way leaves the
    model as it was."""
    values = [_read(entry, transform, variable, path) for variable, entry, transform in copies]
    for (variable, _, _), value in zip(copies, values):
        variable.assign(np.asarray(value, dtype=keras.backend.standardize_dtype(variable.dtype)))


def load_source(model, source, *, new_head=False, missing_aux_ok=False, checksums=True):
    """match + apply; returns the report (with the files' sha256 when ``checksums``)."""
    copies, report = match(model, source, new_head=new_head, missing_aux_ok=missing_aux_ok)
    apply(copies, source.path)
    report["sha256"] = file_checksums(source.files) if checksums else {}
    return report


def format_report(report):
    """Human-readable lines: network, classes, every source tensor and where it went."""
    lines = [
        f"network: {report['network']} (model {report['model']})",
        f"source: {report['path']} [{report['format']}: {report['detail']}]",
        f"classes: file {report['source_classes']}, model {report['model_classes']}"
        + (f", background class {report['background']}" if report["background"] else ""),
        f"tensors in the file: {report['source_tensors']}: {len(report['copied'])} copied, "
        f"{len(report['checked'])} checked, {len(report['ignored'])} ignored, {len(report['not_used'])} not used",
    ]
    lines += [f"  {key} -> {path}" for key, path in report["copied"]]
    lines += [
        f"  {key}: {why}" for key, why in report["checked"] + report["ignored"] + report["not_used"]
    ]
    lines += [f"  left as initialized: {path} ({why})" for path, why in report["left_initialized"]]
    lines += [f"sha256 {name}: {digest}" for name, digest in report.get("sha256", {}).items()]
    return lines
