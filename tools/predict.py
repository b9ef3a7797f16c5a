"""Top-k labels of image files with a run directory, a .keras model, a SavedModel or a .tflite file.

    python tools/predict.py --model=runs/demo a.jpg b.png
    python tools/predict.py --model=exports/irv2/1 --json a.jpg

Installed as ``inception-predict``; the code is ``inception_cli/predict.py``.
"""

import sys

from inception_cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
