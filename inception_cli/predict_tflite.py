"""On-device style inference: top-5 classes of image files with an exported .tflite model.

``tools/predict_tflite.py`` / ``inception-predict-tflite``:

    python tools/predict_tflite.py --model=exports/irv2-artifacts/1/irv2-int8.tflite a.jpg b.png
    python tools/predict_tflite.py --model=... --validation_images=4 --data_dir=data

The labels and the input size come from the .tflite file itself (its ``inception_export``
metadata); images go through the same guarded decoding and eval preprocessing as the SavedModel's
``serving_default`` signature, then through the LiteRT interpreter.
"""

import argparse
import os
import sys
import tempfile

from inception import config
from inception_cli import common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an exported .tflite file")
    parser.add_argument("--top_k", type=int, default=config.EXPORT_TOP_K,
                        help="classes to print per image")
    parser.add_argument("--num_threads", type=int, default=None, help="interpreter threads")
    parser.add_argument("--validation_images", type=int, default=0,
                        help="also classify the first N validation images of the model's dataset "
                             "(written to --image_out_dir, shown with their true labels)")
    parser.add_argument("--dataset", default=None, help="dataset (default: the one in the file)")
    parser.add_argument("--data_dir", default=None, help="TFDS data directory")
    parser.add_argument("--image_out_dir", default=None,
                        help="where --validation_images are written (default: a temporary dir)")
    parser.add_argument("images", nargs="*", help="JPEG or PNG files")
    common.add_verbose_argument(parser)
    args = parser.parse_args(argv)
    if not args.images and args.validation_images < 1:
        parser.error("give image files and/or --validation_images=N")
    if args.validation_images < 0:
        parser.error("--validation_images must be >= 0")
    if not os.path.isfile(args.model):
        parser.error(f"--model {args.model}: no such file")
    missing = [p for p in args.images if not os.path.isfile(p)]
    if missing:
        parser.error(f"no such image file(s): {', '.join(missing)}")
    if args.top_k < 1:
        parser.error("--top_k must be at least 1")
    return args


def labels_of(runner, index):
    labels = runner.labels
    return labels[int(index)] if labels else str(int(index))


def main(argv=None):
    args = parse_args(argv)
    common.setup_process(args.verbose)
    import numpy as np
    import tensorflow as tf

    from inception.export import decoding, litert

    runner = litert.LiteRTClassifier(args.model, num_threads=args.num_threads)
    meta = runner.metadata or {}
    labels = runner.labels
    if labels is None:
        print(f"warning: {args.model} has no label metadata; printing class indices", file=sys.stderr)
    fraction = meta.get("preprocessing", {}).get("central_fraction", config.EVAL_CENTRAL_FRACTION)
    images, truth = list(args.images), {}
    if args.validation_images:
        dataset = args.dataset or meta.get("dataset")
        if not dataset:
            print("--validation_images needs --dataset (the file does not name its dataset)",
                  file=sys.stderr)
            return 1
        from inception.export import data
        encoded, classes = data.encoded_eval_images(dataset, args.validation_images, args.data_dir)
        out_dir = args.image_out_dir or tempfile.mkdtemp(prefix="validation-")
        os.makedirs(out_dir, exist_ok=True)
        for i, (blob, label) in enumerate(zip(encoded, classes)):
            path = os.path.join(out_dir, f"{dataset}-validation-{i}.jpg")
            with open(path, "wb") as f:
                f.write(blob)
            images.append(path)
            truth[path] = labels_of(runner, label)
    status = 0
    for path in images:
        with open(path, "rb") as f:
            encoded = f.read()
        try:
            image = decoding.decode_for_eval(tf.constant(encoded), runner.image_size,
                                             central_fraction=fraction).numpy()
        except tf.errors.InvalidArgumentError as err:
            lines = [l for l in err.message.splitlines() if "assertion failed" in l]
            reason = lines[0].split("assertion failed:", 1)[1] if lines else err.message
            print(f"{path}: cannot use this image:{reason.strip() and ' ' + reason.strip()}",
                  file=sys.stderr)
            status = 2
            continue
        probabilities = runner.predict(image[None])[0]
        top = np.argsort(-probabilities, kind="stable")[:args.top_k]
        print(path + (f"   (true label: {truth[path]})" if path in truth else ""))
        for rank, index in enumerate(top, 1):
            name = labels[index] if labels else str(index)
            print(f"  {rank}. {name:<20} {probabilities[index]:.4f}   (class {index})")
    return status


if __name__ == "__main__":
    sys.exit(main())
