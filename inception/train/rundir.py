"""The run directory: its identity (the run record, run_config.json), checkpoints, resume.

A ``model_dir`` holds one run, on any TensorFlow file system (a local path, ``gs://``, ...).
Rerunning resumes it from its newest complete checkpoint; a config that would make it another
run (``_RUN_IDENTITY``) is refused instead of overwriting it. Every file is written whole or not
at all (``inception.fileio``), so a crash never leaves a torn ``summary.json``,
``ema_model.keras`` or checkpoint behind.
"""

import os
import re
import shutil
import tempfile

import tensorflow as tf
from absl import logging

from inception import fileio, networks, runfiles
from inception.runfiles import CHECKPOINTS_DIR, LABELS_FILE, RUN_RECORD
from inception.train.errors import TrainingError

# Fields that must match for a model_dir to be resumed.
# precision: a run trains in one precision. Its checkpoints hold float32 variables either way, but
# a run continued in the other precision would be neither a float32 nor a bfloat16 run (and a
# --deterministic one no longer repeatable); evaluation (always float32) reads either.
# init_weights: a rerun with other initial weights is another run, not a resume (the checkpoint
# would silently win over the file).
_RUN_IDENTITY = (
    "model",
    "variant",
    "width_multiplier",
    "repeats",
    "image_size",
    "num_classes",
    "dataset",
    "batch_size",
    "steps_per_epoch",
    "ema_bn_statistics",
    "init_weights",
    "freeze_up_to",
    "bn_inference",
    "precision",
)
# Fields that also change what a checkpoint holds (ema_bn_statistics: the averaged moving
# statistics; freeze_up_to, bn_inference: which variables have optimizer slots and averages), so
# --mode=eval must match them too; and their values in runs written before the field existed.
_CHECKPOINT_LAYOUT = ("ema_bn_statistics", "freeze_up_to", "bn_inference")
_RUN_DEFAULTS = {
    "repeats": None,
    "ema_bn_statistics": False,
    "init_weights": "",
    "freeze_up_to": "",
    "bn_inference": False,
}
_RECIPE = (
    "learning_rate",
    "lr_reference_batch",
    "lr_scaling",
    "lr_decay_rate",
    "lr_decay_epochs",
    "warmup_epochs",
    "rmsprop_decay",
    "momentum",
    "rmsprop_epsilon",
    "clip_norm",
    "label_smoothing",
    "weight_decay",
    "ema_decay",
    "aux_loss_weight",
    "epochs",
    "seed",
    "deterministic",
    "mixed_precision",
)


def checkpoint_dir(model_dir):
    return fileio.join(model_dir, CHECKPOINTS_DIR)


def checkpoint_step(path):
    """The global step of a checkpoint path (``.../ckpt-<step>``), or None."""
    match = re.search(r"-(\d+)$", path or "")
    return int(match.group(1)) if match else None


def checkpoint_candidates(directory):
    """The checkpoint prefixes of ``directory``, newest step first: those the ``checkpoint``
    state file lists and any other ``ckpt-<step>.index`` there, each with its index file. A
    state file that is damaged or names a step whose files are gone (a copy cut short, a
    restore from a backup) then still finds the checkpoints that are there, where
    ``tf.train.latest_checkpoint`` answered None and the run started over from step 0."""
    if not fileio.isdir(directory):
        return []
    # One path per step, the directory's spelling (the state file's may be absolute).
    by_step = {
        checkpoint_step(name[: -len(".index")]): fileio.join(directory, name[: -len(".index")])
        for name in fileio.listdir(directory)
        if _CHECKPOINT_INDEX.fullmatch(name)
    }
    state = read_state(directory)
    listed = list(state.all_model_checkpoint_paths) + [state.model_checkpoint_path] if state else []
    for path in listed:
        if checkpoint_step(path) is not None and fileio.exists(path + ".index"):
            by_step.setdefault(checkpoint_step(path), path)
    return [by_step[step] for step in sorted(by_step, reverse=True)]


_CHECKPOINT_INDEX = re.compile(r"ckpt-\d+\.index")


def read_state(directory):
    """The ``checkpoint`` state file's CheckpointState, or None when it is missing or damaged
    (TensorFlow ignores a file that does not parse, but raises ValueError for one that is not
    UTF-8 or names no checkpoint)."""
    try:
        return tf.train.get_checkpoint_state(directory)
    except ValueError:
        return None


def describe(config, plan):
    """The run record of this run (run_config.json): its identity, build options and recipe."""
    m, flat = config.model, config.to_flat()
    train_options, infer_options = plan.train_options, plan.inference_options
    json_options = dict(infer_options, input_shape=list(infer_options["input_shape"]))
    return {
        "model": m.name,
        "variant": m.variant or networks.DEFAULT_VARIANT[m.name],
        "width_multiplier": m.width_multiplier,
        "image_size": m.image_size,
        "repeats": list(m.repeats) if m.repeats else None,
        "num_classes": plan.info.num_classes,
        "dataset": plan.info.name,
        "label_names": list(plan.info.label_names),
        "build_options": dict(json_options, name=m.name),
        "train_build_options": dict(train_options, input_shape=list(train_options["input_shape"])),
        "batch_size": config.recipe.batch_size,
        "steps_per_epoch": plan.steps_per_epoch,
        "peak_learning_rate": plan.peak_lr,
        "recipe": {k: flat[k] for k in _RECIPE},
        "ema_bn_statistics": bool(config.recipe.ema_bn_statistics),
        "init_weights": m.init_weights,
        "init_new_head": bool(m.init_new_head),
        "freeze_up_to": m.freeze_up_to,
        "bn_inference": bool(m.bn_inference),
        "precision": precision_name(config.run.mixed_precision),
    }


def precision_name(mixed_precision):
    """The Keras dtype policy a run trains under."""
    return "mixed_bfloat16" if mixed_precision else "float32"


def check_identity(run, current, chief):
    """Refuses a model_dir of another run; returns the run record to write (or None).

    ``run`` is the config's RunConfig, ``current`` this run's record (``describe``)."""
    path = fileio.join(run.model_dir, RUN_RECORD)
    eval_mode = run.mode == "eval"
    if fileio.exists(path):
        previous = dict(_RUN_DEFAULTS, **runfiles.read_run_record(run.model_dir))
        previous.setdefault(
            "precision", precision_name((previous.get("recipe") or {}).get("mixed_precision"))
        )
        keys = _CHECKPOINT_LAYOUT if eval_mode else _RUN_IDENTITY
        diffs = "; ".join(
            f"{k}: {previous.get(k)!r} there, {current[k]!r} now"
            for k in keys
            if previous.get(k) != current[k]
        )
        if diffs and eval_mode:
            raise TrainingError(
                f"--model_dir={run.model_dir!r} was trained with flags that decide what "
                f"its checkpoints hold ({diffs}); evaluate it with those flags (e.g. "
                "--noema_bn_statistics for a run that did not average the BatchNorm "
                "statistics, the run's --freeze_up_to and --bn_inference)."
            )
        if diffs:
            raise TrainingError(
                f"--model_dir={run.model_dir!r} holds a different run ({diffs}). "
                "Resume it with its own flags, or pass a new --model_dir."
            )
        if eval_mode:
            return None
    return current if chief and not eval_mode else None


def write_start(model_dir, run_record, label_names):
    """The run directory with its run record (when given) and ``labels.txt``."""
    fileio.makedirs(model_dir)
    if run_record:
        fileio.write_json(fileio.join(model_dir, RUN_RECORD), run_record)
        fileio.write_text(fileio.join(model_dir, LABELS_FILE), "\n".join(label_names) + "\n")


class Checkpoints:
    """Atomic, rotating checkpoints of the training state.

    tf.train.Checkpoint writes the data and index files of a new checkpoint under temporary names
    and renames them into place, and only then does ``CheckpointManager`` rewrite the
    ``checkpoint`` state file (atomically: temp file + rename). A crash mid-write therefore
    leaves at most unreferenced temporary files; the state file keeps naming the previous,
    complete checkpoint. On object stores (``gs://``) the rename is a copy, but the index is
    still written after the data and the state file last. Restore takes the newest checkpoint
    with an index (``checkpoint_candidates``) that reads back; a damaged one (a file cut short
    from outside) is skipped for the next older one, and left as it is.

    Under ``MultiWorkerMirroredStrategy`` every worker must take part in saving; non-chief
    workers write to a private local temporary directory that is deleted right after.
    """

    def __init__(self, directory, chief, worker_name, max_to_keep, **trackables):
        self.directory = directory
        self.chief = chief
        self.checkpoint = tf.train.Checkpoint(**trackables)
        if chief:
            target = directory
        else:
            target = os.path.join(
                tempfile.gettempdir(), f"inception_ckpt_{worker_name}_{os.getpid()}"
            )
        self._target, self._keep = target, max_to_keep
        self.manager = self._manager()
        # Non-chief workers resume from what the chief wrote.
        self.candidates = checkpoint_candidates(directory)
        self.latest = self.candidates[0] if self.candidates else None
        self.saved_step = checkpoint_step(self.latest)

    def restore(self):
        """Restores the newest checkpoint that reads back whole, newest first; returns its path
        or None (no checkpoint at all). A damaged one is reported and left as it is; when every
        one is damaged, TrainingError: starting from step 0 would overwrite them."""
        damaged = []
        for path in self.candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            # A cut index: OpError ("not an sstable"); a cut data shard: IndexError ("Read
            # less bytes than requested", reading the object graph) or DataLossError.
            except (tf.errors.OpError, IndexError) as err:
                damaged.append(f"{path} ({type(err).__name__}: {str(err).splitlines()[0][:160]})")
                continue
            if damaged:
                print(
                    f"Warning: checkpoint {'; '.join(damaged)} cannot be read; resuming from "
                    f"the newest complete one instead, {path}",
                    flush=True,
                )
                logging.warning("damaged checkpoints skipped: %s", "; ".join(damaged))
            self.latest, self.saved_step = path, checkpoint_step(path)
            return path
        if damaged:
            raise TrainingError(
                f"no checkpoint in {self.directory} can be read: {'; '.join(damaged)}. Nothing was "
                "changed. Put back good copies of these files; or, to start the run over from "
                f"step 0, move {self.directory} aside first."
            )
        return None

    def _manager(self):
        # A damaged state file makes CheckpointManager raise: then it is made at the first save,
        # after the state file is written again from the checkpoints there.
        try:
            return tf.train.CheckpointManager(self.checkpoint, self._target, max_to_keep=self._keep)
        except ValueError:
            return None

    def save(self, step):
        """Writes the checkpoint of ``step``; returns its path (the chief's, on every worker)."""
        if self.manager is None:
            if self.candidates:
                tf.compat.v1.train.update_checkpoint_state(
                    self._target, self.candidates[0], list(reversed(self.candidates))
                )
            else:  # it names no checkpoint that is there
                tf.io.gfile.remove(fileio.join(self._target, "checkpoint"))
            self.manager = self._manager()
        path = self.manager.save(checkpoint_number=int(step))
        if not self.chief:
            shutil.rmtree(self._target, ignore_errors=True)
            path = fileio.join(self.directory, os.path.basename(path))
        else:
            logging.info("checkpoint written: %s", path)
        self.latest, self.saved_step = path, int(step)
        return path
