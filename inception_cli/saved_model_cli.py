"""TensorFlow's ``saved_model_cli`` (its session loader is the path TF Serving takes) behind the
quiet console of our commands, as ``make demo`` runs it:

    python -m inception_cli.saved_model_cli run --dir exports/irv2/1 --tag_set serve \
        --signature_def predict_images --inputs images=zeros.npy [--verbose]
"""

import sys

from inception_cli import common


def main():
    verbose = "--verbose" in sys.argv[1:]
    sys.argv = [a for a in sys.argv if a != "--verbose"]  # saved_model_cli does not know it
    common.setup_process(verbose)
    from tensorflow.python.tools import saved_model_cli

    return saved_model_cli.main()


if __name__ == "__main__":
    sys.exit(main())
