"""On-device style inference: top-5 classes of image files with an exported .tflite model.

``tools/predict_tflite.py`` / ``inception-predict-tflite``:

    python tools/predict_tflite.py --model=exports/irv2-artifacts/1/irv2-int8.tflite a.jpg b.png
    python tools/predict_tflite.py --model=... --validation_images=4 --data_dir=data

``inception-predict`` for .tflite files (``inception_cli/predict.py``, the same options and
output): the labels and the input size come from the .tflite file itself (its
``inception_export`` metadata); images go through the same guarded decoding and eval
preprocessing as the SavedModel's ``serving_default`` signature, then through the LiteRT
interpreter.
"""

import sys

from inception_cli import predict


def main(argv=None):
    parser = predict.build_parser(__doc__.splitlines()[0], "an exported .tflite file")
    args = parser.parse_args(argv)
    if not args.model.endswith(".tflite"):
        parser.error(f"--model {args.model}: expected a .tflite file (inception-predict runs "
                     "the other formats)")
    return predict.main(argv, parser)


if __name__ == "__main__":
    sys.exit(main())
