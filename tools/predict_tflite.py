"""On-device style inference: top-5 classes of image files with an exported .tflite model.

    python tools/predict_tflite.py --model=exports/irv2-artifacts/1/irv2-int8.tflite a.jpg b.png

The labels and the input size come from the .tflite file itself (its ``inception_export``
metadata); images go through the same guarded decoding and eval preprocessing as the SavedModel's
``serving_default`` signature, then through the LiteRT interpreter.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an exported .tflite file")
    parser.add_argument("--top_k", type=int, default=5, help="classes to print per image")
    parser.add_argument("--num_threads", type=int, default=None, help="interpreter threads")
    parser.add_argument("images", nargs="+", help="JPEG or PNG files")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.model):
        parser.error(f"--model {args.model}: no such file")
    missing = [p for p in args.images if not os.path.isfile(p)]
    if missing:
        parser.error(f"no such image file(s): {', '.join(missing)}")
    if args.top_k < 1:
        parser.error("--top_k must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    import numpy as np
    import tensorflow as tf

    from inception.export import decoding, tflite

    runner = tflite.LiteRTClassifier(args.model, num_threads=args.num_threads)
    meta = runner.metadata or {}
    labels = runner.labels
    if labels is None:
        print(f"warning: {args.model} has no label metadata; printing class indices", file=sys.stderr)
    fraction = meta.get("preprocessing", {}).get("central_fraction", 0.875)
    status = 0
    for path in args.images:
        with open(path, "rb") as f:
            encoded = f.read()
        try:
            image = decoding.decode_for_eval(tf.constant(encoded), runner.image_size,
                                             central_fraction=fraction).numpy()
        except tf.errors.InvalidArgumentError as err:
            print(f"{path}: cannot use this image: {err.message.strip().splitlines()[-1]}",
                  file=sys.stderr)
            status = 2
            continue
        probabilities = runner.predict(image[None])[0]
        top = np.argsort(-probabilities, kind="stable")[:args.top_k]
        print(path)
        for rank, index in enumerate(top, 1):
            name = labels[index] if labels else str(index)
            print(f"  {rank}. {name:<20} {probabilities[index]:.4f}   (class {index})")
    return status


if __name__ == "__main__":
    sys.exit(main())
