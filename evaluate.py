"""The paper's evaluation protocol: 1, 10, 12 and 144 crops, single models and ensembles
(Tables 2-5 of Szegedy et al. 2016).

    python evaluate.py --models=runs/irv2 --data_dir=data
    python evaluate.py --models=runs/v4,runs/irv2_a,runs/irv2_b,runs/irv2_c --crops=144 \
        --dataset=imagenet2012 --data_dir=data --output=ensemble.json
    python evaluate.py --models=imported/inception_v4.keras --crops=1,10 --max_images=1000

Each --models entry is a training run directory (ema_model.keras, labels.txt, run_config.json)
or a .keras classifier; members may have different input sizes. Prints the estimated time before
the pass over the data, a progress bar, then top-1/3/5 errors per model and protocol (and of the
ensemble of all models: softmax probabilities averaged over models and crops) as a table laid out
like the paper's, and writes them to --output. See README "Evaluation protocols".
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app, flags  # noqa: E402

PROTOCOLS = (1, 10, 12, 144)  # inception.evaluation.crops.PROTOCOLS (importing it loads TF)
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
RUN_FILES = ("ema_model.keras", "labels.txt", "run_config.json")

flags.DEFINE_list("models", [], "Models to evaluate: training run directories and/or .keras "
                  "files, comma-separated. Two or more are also evaluated as an ensemble.")
flags.DEFINE_list("crops", [str(p) for p in PROTOCOLS],
                  "Crop protocols, any of 1 (central crop, the eval preprocessing), 10 (corners "
                  "and centre, mirrored), 12 (10 plus the whole square, mirrored), 144 "
                  "(GoogLeNet's 4 scales x 3 squares x 6 crops x 2).")
flags.DEFINE_string("dataset", "", "TFDS dataset (default: the first run directory's, else "
                    "imagenet2012); its validation (else test) split is evaluated.")
flags.DEFINE_string("data_dir", "", "TFDS data directory (default: the run's, else 'data').")
flags.DEFINE_string("manual_dir", "", "Directory of the ILSVRC-2012 archives, if imagenet2012 "
                    "is not prepared yet (default <data_dir>/downloads/manual).")
flags.DEFINE_string("output", "eval.json", "Where the results are written (JSON, atomically).")
flags.DEFINE_string("save_probabilities", "", "Also write every image's probabilities per model "
                    "and protocol to this .npz (memory and disk: images x rows x protocols x "
                    "classes floats; 3.2 GB for ImageNet, 4 rows, 4 protocols).")
flags.DEFINE_integer("batch_size", 0, "GLOBAL images per step (each image brings all its crops "
                     "for every model); 0: about 256 crops per replica.")
flags.DEFINE_integer("max_images", 0, "Evaluate only the first N images of the split (0: all).")
flags.DEFINE_float("central_fraction", 0.875, "Side fraction of the 1-crop protocol's central "
                   "crop (the eval preprocessing's; 0.875 as in the released code).")
flags.DEFINE_enum("strategy", "auto", STRATEGIES, "tf.distribute strategy, as in main.py.")
flags.DEFINE_string("tpu", "", "TPU name or grpc:// address for --strategy=tpu.")
flags.DEFINE_integer("num_cpu_devices", 0, "Split the host CPU into N logical devices (try "
                     "--strategy=mirrored without GPUs).")
flags.DEFINE_bool("progress", True, "Show the progress bar.")
FLAGS = flags.FLAGS


def _fail(message):
    raise app.UsageError(message)


def parse_protocols(values):
    try:
        protocols = [int(v) for v in values]
    except ValueError:
        _fail(f"--crops must be numbers from {PROTOCOLS}; got {','.join(values)}")
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad or not protocols:
        _fail(f"--crops: unknown protocol(s) {bad}; choose from {', '.join(map(str, PROTOCOLS))}")
    if len(set(protocols)) != len(protocols):
        _fail(f"--crops lists a protocol twice: {','.join(values)}")
    return protocols


def check_model_path(path):
    if os.path.isdir(path):
        missing = [n for n in RUN_FILES if not os.path.isfile(os.path.join(path, n))]
        if missing:
            _fail(f"--models: {path} is a directory but not a finished training run (missing "
                  f"{', '.join(missing)})")
    elif not path.endswith(".keras"):
        _fail(f"--models: {path} is neither a training run directory nor a .keras file")
    elif not os.path.isfile(path):
        _fail(f"--models: no such .keras file: {path}")


def validate():
    """Every check that needs no TensorFlow; returns the protocols."""
    if not FLAGS.models:
        _fail("--models is required: training run directories and/or .keras files")
    for path in FLAGS.models:
        check_model_path(path)
    protocols = parse_protocols(FLAGS.crops)
    for flag in ("batch_size", "max_images", "num_cpu_devices"):
        if getattr(FLAGS, flag) < 0:
            _fail(f"--{flag} must be >= 0; got {getattr(FLAGS, flag)}")
    if not 0.0 < FLAGS.central_fraction <= 1.0:
        _fail(f"--central_fraction must be in (0, 1]; got {FLAGS.central_fraction}")
    if FLAGS.strategy == "tpu" and not FLAGS.tpu:
        _fail("--strategy=tpu needs --tpu=NAME")
    if FLAGS.num_cpu_devices > 1 and FLAGS.strategy not in ("mirrored", "auto"):
        _fail("--num_cpu_devices > 1 only makes sense with --strategy=mirrored")
    if not FLAGS.output.strip() or os.path.isdir(FLAGS.output):
        _fail(f"--output must be a file path; got {FLAGS.output!r}")
    if FLAGS.save_probabilities and not FLAGS.save_probabilities.endswith(".npz"):
        _fail(f"--save_probabilities must name a .npz file; got {FLAGS.save_probabilities!r}")
    return protocols


def main(argv):
    if len(argv) > 1:
        _fail(f"unexpected arguments: {' '.join(argv[1:])} (flags start with --)")
    protocols = validate()

    # TensorFlow loads only after the checks above.
    from inception.train import devices as train_setup
    from inception.evaluation import report, runner

    train_setup.split_cpu(FLAGS.num_cpu_devices)
    try:
        strategy = train_setup.make_strategy(
            train_setup.resolve_strategy_name(FLAGS.strategy, FLAGS.tpu), FLAGS.tpu)
        run_dataset, run_data_dir = runner.default_dataset(FLAGS.models)
        dataset = FLAGS.dataset or run_dataset or "imagenet2012"
        data_dir = FLAGS.data_dir or run_data_dir or "data"
        evaluation = runner.Evaluation(
            FLAGS.models, protocols, dataset, strategy=strategy, data_dir=data_dir,
            manual_dir=FLAGS.manual_dir or None, batch_size=FLAGS.batch_size,
            max_images=FLAGS.max_images, central_fraction=FLAGS.central_fraction)
    except (OSError, ValueError) as err:
        print(f"evaluate.py: error: {err}", file=sys.stderr, flush=True)
        return 1
    keep = bool(FLAGS.save_probabilities)
    result = evaluation.run(progress=FLAGS.progress, keep_probabilities=keep)
    if train_setup.is_chief(strategy):
        if keep:
            report.write_probabilities(result, FLAGS.save_probabilities)
            result = {k: v for k, v in result.items() if k not in ("probabilities", "labels")}
        report.write_json(result, FLAGS.output)
    print(report.format_table(result), flush=True)
    print(f"results: {os.path.abspath(FLAGS.output)}", flush=True)
    if keep:
        print(f"probabilities: {os.path.abspath(FLAGS.save_probabilities)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    app.run(main)
