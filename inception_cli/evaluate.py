"""``evaluate.py`` / ``inception-evaluate``: absl flags -> ``EvaluateConfig`` ->
``inception.evaluation.job``.

Prints the estimated time before the pass over the data, a progress bar, then top-1/3/5 errors
per model and protocol (and of the ensemble of all models) as a table laid out like the paper's,
and writes them to --output.
"""

import os
import sys

from absl import flags

from inception.evaluation.config import PROTOCOLS, EvaluateConfig
from inception.networks import EVAL_CENTRAL_FRACTION
from inception.train.config import STRATEGIES
from inception_cli import common

flags.DEFINE_list(
    "models",
    [],
    "Models to evaluate: training run directories and/or .keras "
    "files, comma-separated. Two or more are also evaluated as an ensemble.",
)
flags.DEFINE_list(
    "crops",
    [str(p) for p in PROTOCOLS],
    "Crop protocols, any of 1 (central crop, the eval preprocessing), 10 (corners "
    "and centre, mirrored), 12 (10 plus the whole square, mirrored), 144 "
    "(GoogLeNet's 4 scales x 3 squares x 6 crops x 2).",
)
flags.DEFINE_string(
    "dataset",
    "",
    "TFDS dataset (default: the first run directory's, else "
    "imagenet2012); its validation (else test) split is evaluated.",
)
flags.DEFINE_string("data_dir", "", "TFDS data directory (default: the run's, else 'data').")
flags.DEFINE_string(
    "manual_dir",
    "",
    "Directory of the ILSVRC-2012 archives, if imagenet2012 "
    "is not prepared yet (default <data_dir>/downloads/manual).",
)
flags.DEFINE_string("output", "eval.json", "Where the results are written (JSON, atomically).")
flags.DEFINE_string(
    "save_probabilities",
    "",
    "Also write every image's probabilities per model "
    "and protocol to this .npz (memory and disk: images x rows x protocols x "
    "classes floats; 3.2 GB for ImageNet, 4 rows, 4 protocols).",
)
flags.DEFINE_integer(
    "batch_size",
    0,
    "GLOBAL images per step (each image brings all its crops "
    "for every model); 0: about 256 crops per replica.",
)
flags.DEFINE_integer("max_images", 0, "Evaluate only the first N images of the split (0: all).")
flags.DEFINE_float(
    "central_fraction",
    EVAL_CENTRAL_FRACTION,
    "Side fraction of the 1-crop protocol's central crop (the eval "
    "preprocessing's, as in the released code).",
)
flags.DEFINE_enum("strategy", "auto", list(STRATEGIES), "tf.distribute strategy, as in main.py.")
flags.DEFINE_string("tpu", "", "TPU name or grpc:// address for --strategy=tpu.")
flags.DEFINE_integer(
    "num_cpu_devices",
    0,
    "Split the host CPU into N logical devices (try --strategy=mirrored without GPUs).",
)
flags.DEFINE_bool(
    "progress",
    True,
    "Show progress: a live bar on a terminal, else one line at "
    "the end (INCEPTION_PROGRESS=bar or =line forces either).",
)
FLAGS = flags.FLAGS


def parse_protocols(values):
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        raise ValueError(
            f"--crops must be numbers from {PROTOCOLS}; got {','.join(values)}"
        ) from None


def run(argv):
    config = common.config_from_flags(
        argv, EvaluateConfig, protocols=lambda: parse_protocols(FLAGS.crops)
    )

    from inception.evaluation import job, report  # TensorFlow loads only after the checks

    try:
        strategy, evaluation = job.prepare(config)
    except (OSError, ValueError) as err:
        print(common.error_line(err), file=sys.stderr, flush=True)
        return 1
    result = job.evaluate(config, strategy, evaluation)
    print(report.format_table(result), flush=True)
    print(f"results: {os.path.abspath(config.output)}", flush=True)
    if config.save_probabilities:
        print(f"probabilities: {os.path.abspath(config.save_probabilities)}", flush=True)
    return 0


def main():
    common.start(run)


if __name__ == "__main__":
    main()
