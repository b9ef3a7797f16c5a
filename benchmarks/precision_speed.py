"""Training and inference images/s of the full-size networks under float32 and bfloat16, XLA on
and off, one and ten training steps per host call: ours next to keras.applications'
Inception-ResNet-v2 under the same setting, every row measured in one run.

    .venv/bin/python benchmarks/precision_speed.py                      # the whole table
    .venv/bin/python benchmarks/precision_speed.py --rows=infer --models=ours_irv2,keras_irv2
    .venv/bin/python benchmarks/precision_speed.py --profile=ours_irv2 --precision=mixed_bfloat16

Each row runs in a process of its own (Keras' dtype policy is global, and XLA's compile caches
would favour later rows): full-size networks at 299x299 with random weights (speed does not
depend on their values), synthetic images in [-1, 1]. Inference: ``model(x, training=False)`` in
a ``tf.function`` (``jit_compile`` for XLA) at ``--infer_batch``, the median of ``--repeats``
calls after two warm-up calls. Training: one update of RMSProp on the softmax cross-entropy of
the logits (the same step for ours and keras.applications': the trainer's own EMA, died signal
and metrics are left out so the two networks are compared on the same work), N updates inside one
``tf.function`` call for ``steps per loop`` N; the steps/s of ``--train_steps`` timed updates
after one compiling call. GFLOP/s counts two FLOPs per multiply-add of the network
(``inception.compute.count_macs``), the backward pass as twice the forward.

``--profile=MODEL``: one inference batch under oneDNN's verbose log, the time by oneDNN primitive
kind (convolutions, reorders, pooling, ...) and the rest of the batch (TensorFlow's own kernels:
casts, concatenations, BatchNorm arithmetic, residual adds). This is a script, not a test:
timings depend on the machine and its load; run it with nothing else running.
"""

import argparse
import json
import os
import subprocess
import sys
import time

MODELS = {
    "ours_irv2": "Inception-ResNet-v2 (ours, release)",
    "ours_v4": "Inception-v4 (ours)",
    "keras_irv2": "keras.applications InceptionResNetV2",
}
PRECISIONS = ("float32", "mixed_bfloat16")


def _build(key, logits):
    import keras

    from inception import models

    activation = None if logits else "softmax"
    if key == "keras_irv2":
        return keras.applications.InceptionResNetV2(weights=None, classifier_activation=activation)
    name = {"ours_irv2": "inception_resnet_v2", "ours_v4": "inception_v4"}[key]
    return models.build(name, classifier_activation=activation)


def _infer(row, model, x):
    import numpy as np
    import tensorflow as tf

    fn = tf.function(lambda images: model(images, training=False), jit_compile=row["xla"])
    for _ in range(2):
        fn(x).numpy()
    times = []
    for _ in range(row["repeats"]):
        start = time.perf_counter()
        fn(x).numpy()
        times.append(time.perf_counter() - start)
    return len(x) / float(np.median(times))


def _train(row, model, x, y):
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.RMSprop(0.045, rho=0.9, momentum=0.9, epsilon=1.0)
    optimizer.build(model.trainable_variables)

    def step(num_steps):
        loss = tf.constant(0.0)
        for _ in tf.range(num_steps):
            with tf.GradientTape() as tape:
                logits = tf.cast(model(x, training=True), tf.float32)
                loss = tf.reduce_mean(
                    tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
                )
            optimizer.apply(
                tape.gradient(loss, model.trainable_variables), model.trainable_variables
            )
        return loss

    fn = tf.function(step, jit_compile=row["xla"])
    spl = row["steps_per_loop"]
    fn(tf.constant(1)).numpy()  # compiles
    calls = max(1, row["train_steps"] // spl)
    start = time.perf_counter()
    for _ in range(calls):
        fn(tf.constant(spl)).numpy()  # the host reads the loss once per call
    return calls * spl * len(x) / (time.perf_counter() - start)


def child(row):
    """One row, in this process: prints its images/s as JSON."""
    from inception_cli import common

    common.setup_script()
    import keras
    import numpy as np

    from inception import compute

    keras.mixed_precision.set_dtype_policy(row["precision"])
    model = _build(row["model"], logits=row["mode"] == "train")
    batch = row["batch"]
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch, 299, 299, 3)).astype("float32")
    y = rng.integers(0, 1000, (batch,)).astype("int32")
    started = time.perf_counter()
    rate = _infer(row, model, x) if row["mode"] == "infer" else _train(row, model, x, y)
    macs = compute.count_macs(model)
    flops = 2 * macs * (3 if row["mode"] == "train" else 1)
    print(
        json.dumps(
            dict(
                row,
                images_per_sec=rate,
                gflops=rate * flops / 1e9,
                seconds=time.perf_counter() - started,
            )
        ),
        flush=True,
    )


def _rows(args):
    """Inference: every model under each precision, XLA off and on. Training: the same for the
    two Inception-ResNet-v2s; Inception-v4 without XLA; ten steps per call for ours only (the
    step is the same function for every model, so what a longer call saves does not depend on
    the network)."""
    rows = []
    models = [m for m in args.models.split(",") if m]
    for mode in args.rows.split(","):
        for model in models:
            for precision in PRECISIONS:
                for xla in {"both": (False, True), "off": (False,), "on": (True,)}[args.xla]:
                    if mode == "train" and xla and model == "ours_v4":
                        continue
                    loops = (
                        (1, 10) if mode == "train" and not xla and model == "ours_irv2" else (1,)
                    )
                    for spl in loops:
                        rows.append(
                            dict(
                                model=model,
                                mode=mode,
                                precision=precision,
                                xla=xla,
                                steps_per_loop=spl,
                                repeats=args.repeats,
                                batch=args.infer_batch if mode == "infer" else args.train_batch,
                                train_steps=args.train_steps,
                            )
                        )
    return rows


def _run_row(row, timeout):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(row)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return dict(row, error=f"over {timeout} s")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return dict(row, error=(proc.stderr.strip().splitlines() or ["failed"])[-1][:120])
    return json.loads(lines[-1])


def format_table(results):
    base = {
        (r["model"], r["mode"]): r
        for r in results
        if r["precision"] == "float32"
        and not r["xla"]
        and r["steps_per_loop"] == 1
        and "error" not in r
    }
    keras_rows = {
        (r["mode"], r["precision"], r["xla"], r["steps_per_loop"]): r
        for r in results
        if r["model"] == "keras_irv2" and "error" not in r
    }
    lines = [
        "| mode | model | precision | XLA | steps/call | images/s | GFLOP/s | vs our "
        "float32 | ours / keras |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        setting = (
            f"| {r['mode']} | {r['model']} | {r['precision']} | {'on' if r['xla'] else 'off'} "
            f"| {r['steps_per_loop']} |"
        )
        if "error" in r:
            lines.append(f"{setting} {r['error']} | | | |")
            continue
        ref = base.get((r["model"], r["mode"]))
        speedup = f"{r['images_per_sec'] / ref['images_per_sec']:.2f}x" if ref else "-"
        other = keras_rows.get((r["mode"], r["precision"], r["xla"], r["steps_per_loop"]))
        versus = (
            f"{r['images_per_sec'] / other['images_per_sec']:.3f}"
            if other and r["model"] == "ours_irv2"
            else ""
        )
        lines.append(
            f"{setting} {r['images_per_sec']:.2f} | {r['gflops']:.0f} | {speedup} | {versus} |"
        )
    return "\n".join(lines)


def profile(args):
    """One inference batch of ``args.profile`` under ONEDNN_VERBOSE: time by primitive kind."""
    row = dict(
        model=args.profile,
        mode="infer",
        precision=args.precision,
        xla=False,
        steps_per_loop=1,
        repeats=1,
        batch=args.infer_batch,
        train_steps=0,
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", ONEDNN_VERBOSE="1")
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(row)],
        capture_output=True,
        text=True,
        env=env,
    )
    lines = proc.stdout.splitlines()
    result = json.loads([line for line in lines if line.startswith("{")][-1])
    # Each call logs every primitive it executes: the last call is the last 1/(2+repeats) of the
    # exec lines (two warm-up calls, then the timed one).
    # onednn_verbose,v1,primitive,exec,cpu,<kind>,<implementation>,...,<milliseconds>
    execs = [
        line.split(",") for line in lines if line.startswith("onednn_verbose,v1,primitive,exec,")
    ]
    last = execs[-(len(execs) // (2 + row["repeats"])) :]
    by_kind = {}
    for fields in last:
        kind = f"{fields[5]} ({fields[6].split(':')[-1]})"
        by_kind[kind] = by_kind.get(kind, 0.0) + float(fields[-1]) / 1e3
    batch_s = row["batch"] / result["images_per_sec"]
    print(f"{args.profile}, {args.precision}, batch {row['batch']}: {batch_s:.2f} s per batch")
    for kind, seconds in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"  oneDNN {kind:<36} {seconds:7.2f} s  {100 * seconds / batch_s:5.1f}%")
    rest = batch_s - sum(by_kind.values())
    print(
        f"  {'other kernels':<43} {rest:7.2f} s  {100 * rest / batch_s:5.1f}% (casts, concatenations,"
        " BatchNorm arithmetic, adds, TensorFlow's own overhead)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--rows", default="infer,train", help="infer, train or both")
    parser.add_argument("--models", default=",".join(MODELS), help=", ".join(MODELS))
    parser.add_argument("--infer_batch", type=int, default=32)
    parser.add_argument("--train_batch", type=int, default=8)
    parser.add_argument(
        "--train_steps",
        type=int,
        default=10,
        help="timed training steps per row (a multiple of 10)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed inference calls per row")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per row")
    parser.add_argument("--xla", default="both", choices=("both", "off", "on"))
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument(
        "--table", help="print the table of these --json files (comma-separated) and exit"
    )
    parser.add_argument("--profile", choices=list(MODELS))
    parser.add_argument("--precision", default="mixed_bfloat16", choices=PRECISIONS)
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))
    if args.profile:
        return profile(args)
    if args.table:
        results = []
        for path in args.table.split(","):
            with open(path) as f:
                results += json.load(f)
        return print(format_table(results))
    results = []
    for row in _rows(args):
        result = _run_row(row, args.timeout)
        results.append(result)
        print(json.dumps(result), flush=True)
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
