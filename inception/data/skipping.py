"""Undecodable records: dropped, counted and reported, never fatal. Damaged TFRecord files:
fatal, named.

``map_skipping_errors`` is the parallel map every reader of encoded images runs its decoding in
(the input pipeline, the multi-crop evaluation, the benchmark); ``SkipCounter`` holds the count
all of one reader's input pipelines share. A record TensorFlow's TFRecord reader cannot read (a
corrupt length or checksum, a truncated file) ends the reading of its file: the rest of that file
is lost, not one image, so a pass that yields fewer records than the split lists stops with an
InvalidArgumentError naming the damaged file(s) (``check_count``).
"""

import sys

import tensorflow as tf


class SkipCounter:
    """Counts records dropped because they could not be decoded (shared by all input pipelines)."""

    def __init__(self):
        with tf.init_scope(), tf.device("/cpu:0"):
            self._count = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="undecodable_records"
            )

    def add(self, amount):
        return self._count.assign_add(tf.cast(amount, tf.int64))

    def read(self):
        return self._count.read_value()

    def value(self):
        return int(self._count.numpy())


def tiny_jpeg():
    """A valid 8x8 JPEG: the end-of-epoch marker that flows through the preprocessing."""
    return tf.io.encode_jpeg(tf.fill([8, 8, 3], tf.constant(128, tf.uint8)))


def check_count(read, expected, files, name):
    """At the end of a pass: ``read`` (records that came out of the reader, skipped ones
    included) must equal ``expected``; otherwise an InvalidArgumentError naming the damaged
    files (found by reading them again, only then)."""

    @tf.autograph.experimental.do_not_convert
    def describe(read):
        from inception.data import reader  # the reader imports nothing from here

        damaged = reader.damaged_files(files) or "none found on a second reading"
        return (
            f"inception.data: {name}: a pass over the data gave {int(read)} of the "
            f"{expected} records its TFDS metadata lists: a TFRecord file is damaged (after "
            f"a corrupt or truncated record TensorFlow cannot read the rest of that file). "
            f"Damaged: {damaged}. Prepare the dataset again."
        )

    def fail():
        message = tf.py_function(describe, [read], Tout=tf.string)
        with tf.control_dependencies([tf.debugging.Assert(False, [message], summarize=1)]):
            return tf.constant(False)

    return tf.cond(tf.equal(read, expected), lambda: tf.constant(True), fail)


def _keep_and_report(counter, name):
    """The filter after ``map_skipping_errors``'s gap scan: reports (and counts) the records
    dropped before each element, keeps every element but the end-of-epoch markers, and prints
    the running total at each marker once it is non-zero."""

    def keep(outputs, is_marker, dropped, position):
        def report_drop():
            ops = [
                tf.print(
                    "inception.data:",
                    name,
                    "skipped",
                    dropped,
                    "undecodable record(s) just before stream position",
                    position,
                    output_stream=sys.stderr,
                )
            ]
            if counter is not None:
                ops.append(counter.add(dropped))
            with tf.control_dependencies(ops):
                return tf.identity(is_marker)

        is_marker = tf.cond(dropped > 0, report_drop, lambda: tf.identity(is_marker))
        if counter is not None:

            def report_epoch():
                with tf.control_dependencies(
                    [
                        tf.print(
                            "inception.data:",
                            name,
                            "end of epoch:",
                            counter.read(),
                            "undecodable record(s) skipped so far",
                            output_stream=sys.stderr,
                        )
                    ]
                ):
                    return tf.constant(False)

            return tf.cond(
                is_marker,
                lambda: tf.cond(counter.read() > 0, report_epoch, lambda: tf.constant(False)),
                lambda: tf.constant(True),
            )
        return tf.logical_not(is_marker)

    return keep


def map_skipping_errors(
    dataset, fn, marker, *, repeat=False, counter=None, name="", expected=None, files=()
):
    """Parallel map of ``fn`` over ``dataset``; an element whose ``fn`` raises (an undecodable
    image) is dropped, counted in ``counter`` and reported on stderr, and the pipeline goes on.

    How failures are seen: every element gets its position in the stream; the parallel map keeps
    stream order and ``ignore_errors`` drops failures, so a gap in the positions that come out is
    exactly the number of elements dropped there. ``marker`` (an element ``fn`` processes without
    error, e.g. ``(tiny_jpeg(), 0)``) is appended to every epoch so a failure at the very end of a
    finite stream is counted too, and serves as the end-of-epoch point where the running total is
    reported; markers are removed from the output.

    Args:
      dataset: one epoch of elements (tuples); ``fn(*element, position)`` maps one element to a
        tuple of tensors. ``position`` (int64) grows across epochs; use it for per-element seeds.
      repeat: repeat the epoch (marker included) indefinitely.
      counter: a ``SkipCounter``.
      name: names the stream in the reports.
      expected: the records one pass of ``dataset`` holds (``reader.Split.read_counted``);
        given, a pass that yields another number fails with an InvalidArgumentError naming
        the damaged ones of ``files`` ((path, records it holds): ``Split.files``) instead of
        going on with part of the data.
    """
    tagged = dataset.map(lambda *element: (element, False)).concatenate(
        tf.data.Dataset.from_tensors((tuple(marker), True))
    )
    if repeat:
        tagged = tagged.repeat()
    tagged = tf.data.Dataset.zip((tagged, tf.data.Dataset.counter()))

    def apply(tagged_element, position):
        element, is_marker = tagged_element
        return tuple(fn(*element, position)), position, is_marker

    # deterministic=True: output order must follow the positions for the gap count to be exact.
    mapped = tagged.map(apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    mapped = mapped.ignore_errors(log_warning=True)

    def find_gaps(state, item):
        last_position, pass_start = state
        outputs, position, is_marker = item
        # A marker ends a pass: the next one starts after it.
        next_start = tf.where(is_marker, position + 1, pass_start)
        return (position, next_start), (
            outputs,
            is_marker,
            position - last_position - 1,
            position,
            position - pass_start,
        )

    mapped = mapped.scan((tf.constant(-1, tf.int64), tf.constant(0, tf.int64)), find_gaps)
    keep = _keep_and_report(counter, name)

    def keep_checked(outputs, is_marker, dropped, position, read):
        kept = keep(outputs, is_marker, dropped, position)
        if expected is None:
            return kept
        return tf.cond(
            is_marker,
            lambda: tf.logical_and(
                kept, check_count(read, expected, [tuple(f) for f in files], name)
            ),
            lambda: kept,
        )

    def strip(outputs, is_marker, dropped, position, read):
        return outputs

    return mapped.filter(keep_checked).map(strip)
