"""Multi-crop, multi-model evaluation under a tf.distribute strategy (the protocol of the paper's
Tables 2-5).

Per image: decoded once in the input pipeline, all distinct crops of the requested protocols cut
and resized to every member's input size (``crops.make_crops``). Per step and replica: each member
classifies its crops in one batch, the softmax probabilities are averaged per protocol with the
crop set's weights, the ensemble averages the members' protocol probabilities, and the top-1/3/5 hits
of every (member or ensemble, protocol) pair are summed over replicas. Only hit counts leave the
device.
"""

import math
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from inception import console, fileio, runfiles
from inception.data import preprocessing, reader, skipping
from inception.evaluation import crops as crops_lib
from inception.evaluation import members as members_lib
from inception.networks import EVAL_CENTRAL_FRACTION
from inception.runfiles import RUN_RECORD
from inception.train.steps import TOP_K

# Default forward-pass batch per replica, in crops; the number of images per step follows from it.
CROPS_PER_REPLICA = 256


def images_per_step(crop_set, num_replicas, batch_size=0):
    """Global images per step: ``batch_size``, or about CROPS_PER_REPLICA crops per replica."""
    if batch_size:
        if batch_size % num_replicas:
            raise ValueError(
                f"--batch_size={batch_size} (images per step, global) must divide "
                f"by the {num_replicas} replicas"
            )
        return int(batch_size)
    return num_replicas * max(1, CROPS_PER_REPLICA // crop_set.num_distinct)


class MultiCropEvaluation:
    """Builds the input pipeline and the distributed step for ``members`` on a dataset split.

    ``member_paths``: run directories or .keras files, loaded under ``strategy.scope()``.
    """

    def __init__(
        self,
        member_paths,
        protocols,
        dataset,
        *,
        strategy,
        data_dir=None,
        manual_dir=None,
        batch_size=0,
        max_images=0,
        central_fraction=EVAL_CENTRAL_FRACTION,
    ):
        self.strategy = strategy
        self.crop_set = crops_lib.crop_set(protocols)
        self.central_fraction = preprocessing.check_fraction(central_fraction)
        self.source = reader.open_split(
            dataset, "eval", data_dir=data_dir, manual_dir=manual_dir, limit=max_images or None
        )
        self.info, self.split = self.source.info, self.source.info.eval_split
        self.num_images = self.source.num_examples
        if self.num_images < 1:
            raise ValueError(f"{self.info.name}/{self.split} has no images to evaluate")
        self.replicas = strategy.num_replicas_in_sync
        self.batch_size = images_per_step(self.crop_set, self.replicas, batch_size)
        with strategy.scope():
            self.members = [members_lib.load(p) for p in member_paths]
        for m in self.members:
            members_lib.check_against_dataset(m, self.info)
        members_lib.unique_names(self.members)
        self.num_classes = self.info.num_classes
        self._skipped = skipping.SkipCounter()

    # ----------------------------------------------------------------------------- input --
    @property
    def num_steps(self):
        return math.ceil(self.num_images / self.batch_size)

    def input_fn(self, input_context=None):
        """One input pipeline: ((crops of member 0, crops of member 1, ...), labels), each crops
        tensor [B, U, S_m, S_m, 3], B images per replica, U = the crop set's distinct crops."""
        if input_context is not None:
            pipelines, pipeline_id = (
                input_context.num_input_pipelines,
                input_context.input_pipeline_id,
            )
            per_replica = input_context.get_per_replica_batch_size(self.batch_size)
        else:
            pipelines, pipeline_id, per_replica = 1, 0, self.batch_size
        # Each pipeline its own slice of the examples (a first-N split such as
        # 'validation[:3]' has no files of its own to share out).
        dataset, expected = self.source.read_counted(pipelines, pipeline_id, by_files=False)
        return crop_dataset(
            dataset,
            self.crop_set,
            [m.image_size for m in self.members],
            per_replica,
            self.central_fraction,
            counter=self._skipped,
            name=f"{self.info.name}/{self.split}[pipeline {pipeline_id}/{pipelines}]",
            expected=expected,
            files=self.source.files(),
        )

    # ------------------------------------------------------------------------------- run --
    def run(self, progress=True, log=None, keep_probabilities=False):
        """Evaluates; returns the result dict (written to eval.json; ``report.format_table`` prints it).

        ``keep_probabilities``: also return the per-image probabilities [N, rows, P, K] (members,
        then the ensemble) and labels, in split order (tests; memory grows with N).
        """
        log = log or (lambda message: print(message, flush=True))
        dataset = self.strategy.distribute_datasets_from_function(self.input_fn)
        step = make_step(
            self.strategy,
            self.members,
            self.crop_set,
            self.num_classes,
            keep_probabilities,
            element_spec=dataset.element_spec,
        )
        iterator = iter(dataset)
        crop_set, members = self.crop_set, self.members
        self._announce(log)

        totals, kept = None, []
        first = next(iterator)
        out, start = self._first_step(step, first, log)
        # A live bar on a terminal, one line at the end elsewhere (console.progress_style).
        bar = keras.utils.Progbar(
            self.num_images,
            stateful_metrics=["img/s", "crops/s"],
            verbose=console.progbar_verbosity(progress),
        )
        batch = first
        while True:
            if batch is not first:
                out = step(batch)
            result = {key: value.numpy() for key, value in out.items()}
            if keep_probabilities:
                kept.append((result.pop("probs"), result.pop("labels")))
            totals = result if totals is None else {k: totals[k] + result[k] for k in totals}
            done = int(totals["count"])
            seconds = max(time.perf_counter() - start, 1e-9)
            bar.update(
                min(done, self.num_images),
                [
                    ("img/s", done / seconds),
                    ("crops/s", done * crop_set.num_distinct * len(members) / seconds),
                ],
            )
            try:
                batch = next(iterator)
            except StopIteration:
                break
        if done < self.num_images:  # images skipped: the bar (or the line) still completes
            bar.update(done, finalize=True)
        wall = time.perf_counter() - start
        result = self._result(totals, wall, self._report_skipped())
        if keep_probabilities:
            result["probabilities"] = np.concatenate([p for p, _ in kept])
            result["labels"] = np.concatenate([lab for _, lab in kept])
        return result

    def _announce(self, log):
        """The pass in one line: images, protocols, distinct crops, models, forward passes."""
        crop_set, members = self.crop_set, self.members
        passes = self.num_images * crop_set.num_distinct * len(members)
        log(
            f"{self.info.name}/{self.split}: {self.num_images} images, protocols "
            f"{', '.join(str(p) for p in crop_set.protocols)} crop(s): {crop_set.num_distinct} distinct "
            f"crops per image per model, {len(members)} model(s): {passes:,} forward passes, "
            f"{self.batch_size} images per step on {self.replicas} replica(s)"
        )

    def _report_skipped(self):
        """The number of undecodable images the pass skipped, said on stderr when there are any."""
        skipped = self._skipped.value()
        if skipped:
            print(
                f"inception.evaluation: {skipped} undecodable image(s) skipped",
                file=sys.stderr,
                flush=True,
            )
        return skipped

    def _first_step(self, step, first, log):
        """Compiles ``step`` on the first batch, then runs it again timed: the estimate of the
        whole pass. Returns (that step's output, the start of the throughput clock)."""
        started = time.perf_counter()
        out = step(first)
        _ = out["count"].numpy()
        log(f"compiled in {time.perf_counter() - started:.1f} s")
        start = time.perf_counter()
        out = step(first)
        _ = out["count"].numpy()
        per_step = time.perf_counter() - start
        passes = self.batch_size * self.crop_set.num_distinct * len(self.members)
        log(
            f"estimated time: {_duration(per_step * self.num_steps)} for {self.num_steps} "
            f"step(s) ({self.batch_size / per_step:.1f} images/s, "
            f"{passes / per_step:.1f} forward passes/s on the first batch)"
        )
        return out, start

    def _result(self, totals, wall, skipped):
        n = int(totals["count"])
        names = [m.name for m in self.members]
        if len(names) > 1:
            names.append("ensemble")
        rows = []
        for r, name in enumerate(names):
            for p, protocol in enumerate(self.crop_set.protocols):
                row = {
                    "model": name,
                    "models": len(self.members) if name == "ensemble" else 1,
                    "crops": protocol,
                }
                for kk in TOP_K:
                    row[f"top{kk}_error"] = 1.0 - float(totals[f"top{kk}"][r][p]) / max(n, 1)
                rows.append(row)
        return {
            "dataset": self.info.name,
            "split": self.split,
            "num_images": n,
            "skipped_images": int(skipped),
            "protocols": list(self.crop_set.protocols),
            "distinct_crops_per_image": self.crop_set.num_distinct,
            "central_fraction": self.central_fraction,
            "members": [m.describe() for m in self.members],
            "results": rows,
            "strategy": type(self.strategy).__name__,
            "num_replicas": self.replicas,
            "images_per_step": self.batch_size,
            "wall_time_s": wall,
            "images_per_sec": n / wall if wall > 0 else None,
            "forward_passes_per_sec": (
                n * self.crop_set.num_distinct * len(self.members) / wall if wall > 0 else None
            ),
        }


def crop_dataset(
    source,
    crop_set,
    image_sizes,
    batch_size,
    central_fraction=EVAL_CENTRAL_FRACTION,
    counter=None,
    name="",
    expected=None,
    files=(),
):
    """(encoded image, label) dataset -> batches of ((crops per size...), labels).

    Each crops tensor is [B, U, S, S, 3] (B images, U = the crop set's distinct crops); an image that
    cannot be decoded is dropped and counted in ``counter`` (``skipping.map_skipping_errors``);
    a pass of other than ``expected`` records is an InvalidArgumentError naming the damaged ``files``.
    """

    def process(image_bytes, label, position):
        del position
        return crops_lib.make_crops(image_bytes, crop_set, image_sizes, central_fraction), label

    marker = (skipping.tiny_jpeg(), tf.constant(0, tf.int32))
    dataset = skipping.map_skipping_errors(
        source, process, marker, counter=counter, name=name, expected=expected, files=files
    )
    dataset = dataset.batch(batch_size, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(2)


def make_step(
    strategy, members, crop_set, num_classes, keep_probabilities=False, element_spec=None
):
    """The distributed evaluation step: batch -> summed top-1/3/5 hits [rows, P] and the count
    (rows: each member, then the ensemble if there are several members); with
    ``keep_probabilities`` also the per-image probabilities [B, rows, P, K] and labels.

    ``element_spec``: the distributed dataset's, whose batch dimension is unknown; the step is
    then traced once, not again for the last, smaller batch (a second trace of every member on
    every replica: 24.1 s -> 19.3 s for tests/test_multicrop.py's 2-replica evaluate.py run)."""
    weights = tf.constant(crop_set.weights, tf.float32)  # [P, U]
    u, k = crop_set.num_distinct, int(num_classes)

    def replica_step(crops, labels):
        n = tf.shape(labels)[0]
        # A replica can be handed no images in the last step; the networks then see one dummy
        # image (some kernels reject empty batches) whose results are dropped.
        pad = tf.maximum(1 - n, 0)
        per_member = []
        for member, x in zip(members, crops):
            size = member.image_size
            x = tf.concat([x, tf.zeros(tf.concat([[pad], tf.shape(x)[1:]], 0), x.dtype)], 0)
            probs = member.model(tf.reshape(x, [-1, size, size, 3]), training=False)
            probs = tf.cast(probs, tf.float32)
            if member.background:
                probs = probs[:, 1:]
                probs /= tf.maximum(tf.reduce_sum(probs, axis=-1, keepdims=True), 1e-12)
            probs = tf.reshape(probs, [n + pad, u, k])[:n]
            per_member.append(tf.einsum("pu,nuk->npk", weights, probs))
        rows = per_member + (
            [tf.add_n(per_member) / len(per_member)] if len(per_member) > 1 else []
        )
        probs = tf.stack(rows, axis=1)  # [n, rows, P, K]
        top = tf.math.top_k(probs, k=min(max(TOP_K), k)).indices
        hit = tf.equal(top, labels[:, None, None, None])
        out = {"count": tf.cast(n, tf.float32)}
        for kk in TOP_K:
            correct = tf.reduce_any(hit[..., : min(kk, k)], axis=-1)
            out[f"top{kk}"] = tf.reduce_sum(tf.cast(correct, tf.float32), axis=0)
        if keep_probabilities:
            out["probs"], out["labels"] = probs, labels
        return out

    def step(batch):
        per_replica = strategy.run(replica_step, args=batch)
        out = {}
        for key, value in per_replica.items():
            if key in ("probs", "labels"):
                out[key] = strategy.gather(value, axis=0)
            else:
                out[key] = strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
        return out

    if element_spec is None:
        return tf.function(step, reduce_retracing=True)
    return tf.function(step, input_signature=[element_spec])


def _duration(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def default_dataset(member_paths):
    """(dataset, data_dir) recorded by the first training run among ``member_paths``, if any."""
    for path in member_paths:
        record_path = fileio.join(path, RUN_RECORD)
        if fileio.isdir(path) and fileio.exists(record_path):  # any TF file system (gs://)
            run_record = runfiles.read_run_record(path)
            if run_record.get("dataset"):
                return run_record["dataset"], run_record.get("data_dir")
    return None, None
