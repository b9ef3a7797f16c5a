"""``export.py`` / ``inception-export``: absl flags -> ``ExportConfig`` -> ``inception.export.job``.

Writes OUT/<name>/<version>/ (SavedModel) and OUT/<name>-artifacts/<version>/ (TFLite and ONNX
files and export_report.json), with the opt-in saved_model_bf16 also OUT/<name>-bf16/<version>/
(the bfloat16 SavedModel, a servable of its own), each renamed into place only when complete, and
prints the report:
size, top-1 agreement with the Keras model, largest probability difference and latency per format.
"""

import sys

from absl import flags

from inception.export import formats
from inception.export.config import ExportConfig
from inception_cli import common


def _default(field):
    """The config's default: the flags repeat none."""
    return ExportConfig.__dataclass_fields__[field].default


flags.DEFINE_string(
    "model_dir", None, "Training run directory (ema_model.keras, labels.txt, run_config.json)."
)
flags.DEFINE_string("keras_model", None, "A .keras classifier file (instead of --model_dir).")
flags.DEFINE_string(
    "labels", None, "With --keras_model: class names, one per line (default '0'..'N-1')."
)
flags.DEFINE_string("export_dir", None, "Output directory OUT.")
flags.DEFINE_string(
    "name",
    None,
    "Model name: the directory under OUT that TF Serving serves "
    "(default: the run's model name or the .keras file's stem).",
)
flags.DEFINE_integer(
    "version", None, "Version number (default: one more than the highest present)."
)
_OPT_IN = [f for f in formats.EXPORT_FORMATS if f not in _default("formats")]
flags.DEFINE_list(
    "formats",
    list(_default("formats")),
    f"Any of {', '.join(formats.EXPORT_FORMATS)} (default: all but the opt-in "
    f"{', '.join(_OPT_IN)}).",
)
flags.DEFINE_enum(
    "int8_io",
    _default("int8_io"),
    list(formats.INT8_IO),
    "Input/output type of the int8 TFLite model.",
)
flags.DEFINE_string("dataset", None, "Dataset for calibration and the report (default: the run's).")
flags.DEFINE_string(
    "data_dir", None, "TFDS data directory (default: the run's, else TFDS's default)."
)
flags.DEFINE_integer(
    "calibration_images", _default("calibration_images"), "Training images that calibrate int8."
)
flags.DEFINE_integer(
    "eval_images", _default("eval_images"), "Validation images the report compares on (0: none)."
)
flags.DEFINE_integer("top_k", _default("top_k"), "Classes in the top-k outputs of the SavedModel.")
flags.DEFINE_integer(
    "max_pixels",
    _default("max_pixels"),
    "Largest width*height the SavedModel decodes (checked from the header).",
)
flags.DEFINE_integer(
    "latency_repeats", _default("latency_repeats"), "Timed batch-1 runs per format in the report."
)
FLAGS = flags.FLAGS


def run(argv):
    config = common.config_from_flags(argv, ExportConfig)

    from inception.export import agreement, job  # TensorFlow loads only after the checks

    try:
        src, name = job.load_classifier(config)
    except (OSError, ValueError) as err:
        sys.exit(common.error_line(err))
    rep = job.export(config, src, name, log=lambda m: print(m, flush=True))
    print(agreement.format_table(rep))
    print(f"report: {rep['report_path']}")


def main():
    common.start(run)


if __name__ == "__main__":
    main()
