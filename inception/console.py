"""What the console shows: our progress and messages and real warnings, not library noise."""

import os


def quiet(verbose=False):
    """Silences TensorFlow's C++ logs, absl INFO lines and deprecation notices (``verbose``
    keeps them). Call before TensorFlow is imported."""
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
