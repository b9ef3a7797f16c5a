"""Exports a trained network for TF Serving (SavedModel) and devices (TFLite).

    python export.py --model_dir=runs/demo --export_dir=exports --name=irv2
    python export.py --keras_model=model.keras --labels=labels.txt --dataset=sklearn_digits \
        --export_dir=exports --formats=saved_model,tflite_fp16

Writes OUT/<name>/<version>/ (SavedModel) and OUT/<name>-artifacts/<version>/ (TFLite files and
export_report.json), each renamed into place only when complete, and prints the report: size,
top-1 agreement with the Keras model, largest probability difference and latency per variant.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app, flags  # noqa: E402

FORMATS = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8")

flags.DEFINE_string("model_dir", None, "Training run directory (ema_model.keras, labels.txt, run_config.json).")
flags.DEFINE_string("keras_model", None, "A .keras classifier file (instead of --model_dir).")
flags.DEFINE_string("labels", None, "With --keras_model: class names, one per line (default '0'..'N-1').")
flags.DEFINE_string("export_dir", None, "Output directory OUT.")
flags.DEFINE_string("name", None, "Model name: the directory under OUT that TF Serving serves "
                    "(default: the run's model name or the .keras file's stem).")
flags.DEFINE_integer("version", None, "Version number (default: one more than the highest present).")
flags.DEFINE_list("formats", list(FORMATS), f"Any of {', '.join(FORMATS)}.")
flags.DEFINE_enum("int8_io", "float", ["float", "int8"], "Input/output type of the int8 TFLite model.")
flags.DEFINE_string("dataset", None, "Dataset for calibration and the report (default: the run's).")
flags.DEFINE_string("data_dir", None, "TFDS data directory (default: the run's, else TFDS's default).")
flags.DEFINE_integer("calibration_images", 200, "Training images that calibrate int8.")
flags.DEFINE_integer("eval_images", 1000, "Validation images the report compares on (0: none).")
flags.DEFINE_integer("top_k", 5, "Classes in the top-k outputs of the SavedModel.")
flags.DEFINE_integer("max_pixels", 64 * 1024 * 1024,
                     "Largest width*height the SavedModel decodes (checked from the header).")
flags.DEFINE_integer("latency_repeats", 20, "Timed batch-1 runs per variant in the report.")
FLAGS = flags.FLAGS


def _fail(message):
    raise app.UsageError(message)


def main(argv):
    if len(argv) > 1:
        _fail(f"unexpected arguments: {' '.join(argv[1:])} (flags start with --)")
    if bool(FLAGS.model_dir) == bool(FLAGS.keras_model):
        _fail("give exactly one of --model_dir (a training run) or --keras_model (a .keras file)")
    if not FLAGS.export_dir:
        _fail("--export_dir is required")
    unknown = [f for f in FLAGS.formats if f not in FORMATS]
    if unknown or not FLAGS.formats:
        _fail(f"unknown --formats {unknown}; choose from {', '.join(FORMATS)}")
    for flag in ("calibration_images", "eval_images", "top_k", "max_pixels", "latency_repeats"):
        if getattr(FLAGS, flag) < (0 if flag == "eval_images" else 1):
            _fail(f"--{flag} must be positive; got {getattr(FLAGS, flag)}")
    if FLAGS.version is not None and FLAGS.version < 1:
        _fail(f"--version must be a positive integer; got {FLAGS.version}")

    from inception.export import data, exporter, source  # TensorFlow loads only after the checks

    try:
        if FLAGS.model_dir:
            src = source.from_run_dir(FLAGS.model_dir)
            default_name = src.config.get("model") or "model"
        else:
            src = source.from_keras_file(FLAGS.keras_model, FLAGS.labels)
            default_name = os.path.splitext(os.path.basename(FLAGS.keras_model))[0]
        name = exporter.check_name(FLAGS.name or default_name)
    except (OSError, ValueError) as err:
        sys.exit(f"export.py: error: {err}")
    dataset = FLAGS.dataset or src.config.get("dataset")
    data_dir = FLAGS.data_dir or src.config.get("data_dir")
    calibration = eval_images = eval_labels = encoded = None
    if dataset:
        if FLAGS.eval_images:
            print(f"reading up to {FLAGS.eval_images} validation images of {dataset}", flush=True)
            encoded, eval_labels = data.encoded_eval_images(dataset, FLAGS.eval_images, data_dir)
            eval_images = data.preprocess(encoded, src.image_size)
        if "tflite_int8" in FLAGS.formats:
            print(f"reading {FLAGS.calibration_images} calibration images of {dataset}", flush=True)
            calibration = data.calibration_images(dataset, src.image_size,
                                                  FLAGS.calibration_images, data_dir)
    else:
        print("no --dataset: the report will have sizes and latencies only", flush=True)
    rep = exporter.run_export(
        src, FLAGS.export_dir, name, version=FLAGS.version, formats=FLAGS.formats,
        int8_io=FLAGS.int8_io, calibration_images=calibration, eval_images=eval_images,
        eval_labels=eval_labels, eval_encoded=encoded, dataset=dataset, top_k=FLAGS.top_k,
        max_pixels=FLAGS.max_pixels, latency_repeats=FLAGS.latency_repeats,
        log=lambda m: print(m, flush=True))
    from inception.export import report
    print(report.format_table(rep))
    print(f"report: {rep['report_path']}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    app.run(main)
