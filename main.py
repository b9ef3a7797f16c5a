"""Train or evaluate Inception-v4 / Inception-ResNet-v1/v2 with the paper's recipe.

    python main.py --flagfile=configs/irv2.cfg                      # ImageNet, paper recipe
    python main.py --flagfile=configs/demo.cfg                      # embedded dataset, minutes
    python main.py --flagfile=configs/irv2.cfg --batch_size=512     # the command line wins
    python main.py --flagfile=configs/demo.cfg --mode=eval          # evaluate the last checkpoint
    python main.py --flagfile=configs/finetune_demo.cfg             # fine-tune the demo's model
    python main.py --mode=eval --model=inception_v4 --init_weights=inception_v4_2016_09_09.tar.gz \
        --dataset=imagenet2012 --model_dir=runs/eval_v4             # evaluate published weights

Rerunning a command resumes from the last checkpoint in --model_dir. See README "Training".
Errors (a bad --init_weights file included) print ``error: ...`` and exit with status 1;
SIGTERM or Ctrl-C saves a checkpoint and exits with 75; a lost worker exits with 69.
The flags are ``inception_cli/train_flags.py``; the work is ``inception_cli.train.run``.
"""

from inception_cli.train import main, run

__all__ = ["main", "run"]

if __name__ == "__main__":
    main()
