"""On-device style inference: top-5 classes of image files with an exported .tflite model.

    python tools/predict_tflite.py --model=exports/irv2-artifacts/1/irv2-int8.tflite a.jpg b.png
    python tools/predict_tflite.py --model=... --validation_images=4 --data_dir=data

Installed as ``inception-predict-tflite``; the code is ``inception_cli/predict_tflite.py``.
"""

import sys

from inception_cli.predict_tflite import main

if __name__ == "__main__":
    sys.exit(main())
