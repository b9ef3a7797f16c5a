"""Train or evaluate Inception-v4 / Inception-ResNet-v1/v2 with the paper's recipe.

    python main.py --flagfile=configs/irv2.cfg                      # ImageNet, paper recipe
    python main.py --flagfile=configs/demo.cfg                      # embedded dataset, minutes
    python main.py --flagfile=configs/irv2.cfg --batch_size=512     # the command line wins
    python main.py --flagfile=configs/demo.cfg --mode=eval          # evaluate the last checkpoint
    python main.py --flagfile=configs/finetune_demo.cfg             # fine-tune the demo's model
    python main.py --mode=eval --model=inception_v4 --init_weights=inception_v4_2016_09_09.tar.gz \
        --dataset=imagenet2012 --model_dir=runs/eval_v4             # evaluate published weights

Rerunning a command resumes from the last checkpoint in --model_dir. See README "Training".
Errors (a bad --init_weights file included) print ``error: ...`` and exit with status 1.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app, logging  # noqa: E402

from inception import flags as flags_lib  # noqa: E402,F401  (defines and validates the flags)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags start with --)")
    from inception import training  # TensorFlow is imported only after the flags are valid

    logging.set_verbosity(logging.INFO)
    config = training.config_from_flags()
    try:
        strategy = training.setup(config)
        training.run(config, strategy)
    except (ValueError, training.TrainingError) as err:
        logging.error("%s", err)
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    app.run(main)
