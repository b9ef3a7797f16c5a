"""Top-k labels and scores of image files (JPEG or PNG, any size) with a trained or exported model.

``inception-predict``:

    inception-predict --model=runs/demo a.jpg b.png                # a training run directory
    inception-predict --model=inception_v4.keras cat.jpg           # a .keras model (converted)
    inception-predict --model=exports/irv2/1 --json a.jpg          # a SavedModel version
    inception-predict --model=exports/irv2-artifacts/1/irv2-int8.tflite a.jpg
    inception-predict --model=exports/irv2-artifacts/1/irv2.onnx a.jpg
    inception-predict --model=exports/irv2-artifacts/1/irv2-int8.tflite --validation_images=4 \
        --data_dir=data

Every format ``inception-export`` writes runs (``inception.export.formats``: each format's own
runner, the one the export's agreement check runs). Each image gets the eval preprocessing the
model was trained or exported with (central crop of 87.5% of each side, bilinear resize to the
model's input; a SavedModel runs its own from its graph, a .tflite or .onnx file's is in its
metadata). A directory stands for the files in it (not its
subdirectories), in name order. An image that cannot be used gets one line on stderr, ``PATH:
cannot use this image: REASON`` (printable ASCII), the others are still answered, and a last
line counts them. Exit status: 0 when every image was answered, 2 when at least one could not be
used (or the command line is wrong), 1 when the model cannot be loaded. The work is
``inception.prediction``.
"""

import argparse
import json
import os
import sys
import tempfile

from inception import console
from inception.export.config import EXPORT_TOP_K
from inception_cli import common

STATUS_BAD_IMAGE = 2


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        required=True,
        help=(
            "a training run directory, a .keras model, a SavedModel version directory (or its "
            "base directory: the newest version), a .tflite file or an .onnx file"
        ),
    )
    parser.add_argument(
        "--top_k", type=int, default=EXPORT_TOP_K, help="classes to print per image"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (model, preprocessing, one entry per image)",
    )
    parser.add_argument(
        "--labels", default=None, help="class names, one per line (default: the model's own)"
    )
    parser.add_argument(
        "--central_fraction",
        type=float,
        default=None,
        help="eval crop (default: the model's; 0.875 for .keras models)",
    )
    parser.add_argument(
        "--num_threads",
        type=int,
        default=None,
        help="threads of the TFLite interpreter or of ONNX Runtime",
    )
    parser.add_argument(
        "--validation_images",
        type=int,
        default=0,
        help="also classify the first N validation images of the model's dataset "
        "(written to --image_out_dir, shown with their true labels)",
    )
    parser.add_argument("--dataset", default=None, help="dataset (default: the model's)")
    parser.add_argument("--data_dir", default=None, help="TFDS data directory")
    parser.add_argument(
        "--image_out_dir",
        default=None,
        help="where --validation_images are written (default: a temporary dir)",
    )
    parser.add_argument("images", nargs="*", help="JPEG or PNG files, or directories of them")
    common.add_verbose_argument(parser)
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.images and args.validation_images < 1:
        parser.error("give image files and/or --validation_images=N")
    if args.validation_images < 0:
        parser.error("--validation_images must be >= 0")
    if args.top_k < 1:
        parser.error("--top_k must be at least 1")
    if args.central_fraction is not None and not 0.0 < args.central_fraction <= 1.0:
        parser.error("--central_fraction must be in (0, 1]")
    return args


def image_paths(arguments):
    """The image arguments with each directory replaced by its files, in name order."""
    paths = []
    for argument in arguments:
        if os.path.isdir(argument):
            paths += sorted(
                os.path.join(argument, name)
                for name in os.listdir(argument)
                if not os.path.isdir(os.path.join(argument, name))
            )
        else:
            paths.append(argument)
    return paths


def report_unusable(answers):
    """One stderr line per image that could not be used, then their count; returns it."""
    bad = [answer for answer in answers if answer.error is not None]
    for answer in bad:
        print(f"{answer.path}: cannot use this image: {answer.error}", file=sys.stderr)
    if bad:
        print(f"{len(bad)} of {len(answers)} image(s) could not be used", file=sys.stderr)
    return len(bad)


def validation_files(predictor, args):
    """(paths, true labels by path) of the first --validation_images of the model's dataset."""
    from inception import fileio
    from inception.export import data

    dataset = args.dataset or predictor.dataset
    if not dataset:
        raise ValueError(
            "--validation_images needs --dataset (the model does not name its dataset)"
        )
    encoded, classes = data.encoded_eval_images(dataset, args.validation_images, args.data_dir)
    out_dir = args.image_out_dir or tempfile.mkdtemp(prefix="validation-")
    fileio.makedirs(out_dir)
    paths, truth = [], {}
    for i, (blob, label) in enumerate(zip(encoded, classes)):
        path = os.path.join(out_dir, f"{dataset}-validation-{i}.jpg")
        fileio.write_bytes(path, blob)
        paths.append(path)
        truth[path] = predictor.labels[label] if predictor.labels else str(int(label))
    return paths, truth


def print_text(answers, truth):
    for answer in answers:
        if answer.error is not None:
            continue
        path = answer.path
        print(path + (f"   (true label: {truth[path]})" if path in truth else ""))
        for r in answer.top_k:
            print(f"  {r.rank}. {r.label:<20} {r.score:.4f}   (class {r.index})")


def print_json(predictor, answers, truth):
    images = []
    for answer in answers:
        entry = {"path": answer.path}
        if answer.path in truth:
            entry["true_label"] = truth[answer.path]
        if answer.error is None:
            entry["top_k"] = [
                {"rank": r.rank, "class": r.index, "label": r.label, "score": r.score}
                for r in answer.top_k
            ]
        else:
            entry["error"] = answer.error
        images.append(entry)
    print(json.dumps({**predictor.describe(), "images": images}, indent=1, ensure_ascii=False))


def main(argv=None):
    args = parse_args(argv)
    common.setup_process(args.verbose)
    from inception import prediction

    try:
        predictor = prediction.load(
            args.model, args.labels, args.central_fraction, args.num_threads
        )
        paths, truth = image_paths(args.images), {}
        if args.validation_images:
            extra, truth = validation_files(predictor, args)
            paths += extra
    except (ValueError, OSError) as err:
        print(common.error_line(err), file=sys.stderr)
        return 1
    if predictor.labels is None:
        print(f"warning: {args.model} has no class names; printing class indices", file=sys.stderr)
    with console.quiet_decoder_output():
        answers = prediction.classify_files(predictor, paths, args.top_k)
    unusable = report_unusable(answers)
    if args.json:
        print_json(predictor, answers, truth)
    else:
        print_text(answers, truth)
    return STATUS_BAD_IMAGE if unusable else 0


if __name__ == "__main__":
    sys.exit(main())
