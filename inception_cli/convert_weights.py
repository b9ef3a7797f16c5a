"""``inception-convert-weights``: published ImageNet weights ->
this project's Keras model (.keras), through ``inception.weights.pretrained.convert``, or (with
``--preset``) a keras-hub preset directory, through ``inception.hub.convert``.

Prints the network, variant, classes, every tensor of the file and where it went, and the sha256
of the input and of the output; writes OUTPUT and OUTPUT's stem + ".labels.txt".
"""

import os
import sys

from absl import app, flags

from inception_cli import common

flags.DEFINE_string(
    "weights",
    None,
    "A weights file (TF-slim .tar.gz / .ckpt / V2 prefix, timm .safetensors, "
    "keras-applications .h5) or 'imagenet' (the official file, cached; needs --network).",
)
flags.DEFINE_string("output", None, "The .keras file to write.")
flags.DEFINE_string(
    "preset",
    None,
    "Instead of --output: the keras-hub preset directory to write, or a "
    "registered name (inception_v4_imagenet, inception_resnet_v2_imagenet: the local "
    "directory keras-hub's from_preset reads for it). Needs the [hub] extra.",
)
flags.DEFINE_enum(
    "network",
    None,
    ["inception_v4", "inception_resnet_v2"],
    "Network (default: read from the file).",
)
flags.DEFINE_bool(
    "keep_background",
    False,
    "Keep slim's 1001st 'background' class (class 0) instead of "
    "the 1000 ImageNet classes in TFDS order.",
)
flags.DEFINE_bool(
    "aux_logits", None, "Keep the auxiliary classifier (default: when the file has one)."
)
flags.DEFINE_bool("include_top", True, "Keep the classifier (--noinclude_top: features only).")
flags.DEFINE_string(
    "source", "slim", "With --weights=imagenet: slim, timm_tf_in1k, timm_tf_ens_adv_in1k or keras."
)
flags.DEFINE_string("sha256", None, "With --weights=imagenet: the checksum the download must have.")
flags.DEFINE_string(
    "url", None, "With --weights=imagenet: download from this address instead (a mirror)."
)
flags.DEFINE_string(
    "cache_dir",
    None,
    "With --weights=imagenet: the cache directory "
    "(default $INCEPTION_WEIGHTS_DIR or ~/.keras/models/inception).",
)
FLAGS = flags.FLAGS


def run(argv):
    common.check_no_arguments(argv)
    if not FLAGS.weights or not (FLAGS.output or FLAGS.preset):
        raise app.UsageError("--weights and --output (or --preset) are required")
    if FLAGS.output and FLAGS.preset:
        raise app.UsageError(
            "give --output (a .keras file) or --preset (a keras-hub preset), not both"
        )
    if FLAGS.weights == "imagenet" and not FLAGS.network and FLAGS.preset not in _REGISTERED:
        raise app.UsageError("--weights=imagenet needs --network")
    if FLAGS.preset and (FLAGS.aux_logits or not FLAGS.include_top):
        raise app.UsageError(
            "--preset writes keras-hub's ImageClassifier: no --aux_logits, no --noinclude_top"
        )
    try:
        _check_paths()
    except ValueError as err:
        sys.exit(common.error_line(err))
    if FLAGS.preset:
        return _write_preset()
    from inception.weights import WeightsError, assign, pretrained

    try:
        report = pretrained.convert(
            FLAGS.network,
            FLAGS.weights,
            FLAGS.output,
            keep_background=FLAGS.keep_background,
            aux_logits=FLAGS.aux_logits,
            include_top=FLAGS.include_top,
            cache_dir=FLAGS.cache_dir,
            source_name=FLAGS.source,
            file_hash=FLAGS.sha256,
            url=FLAGS.url,
        )
    except (OSError, ValueError, WeightsError) as err:
        sys.exit(common.error_line(err))
    for line in assign.format_report(report):
        print(line)
    print(
        f"variant: {report['variant']}; auxiliary head: {'yes' if report['aux_logits'] else 'no'}"
    )
    print(f"wrote {report['output']} (sha256 {report['output_sha256']})")
    if report["labels_file"]:
        print(f"wrote {report['labels_file']}")


def _check_paths():
    """Every path flag, for its kind and writability, before any file is read (inception/paths.py)."""
    from inception import paths

    if FLAGS.weights != "imagenet" and not os.path.exists(FLAGS.weights + ".index"):
        paths.input_file("weights", FLAGS.weights, "weights file")  # a V2 checkpoint is a prefix
    paths.output_file("output", FLAGS.output, ".keras file")
    if FLAGS.preset not in _REGISTERED:
        paths.output_dir("preset", FLAGS.preset, "preset directory")
    paths.output_dir("cache_dir", FLAGS.cache_dir, "cache directory")


# The preset names inception.hub registers (listed here: importing keras-hub takes seconds).
_REGISTERED = ("inception_v4_imagenet", "inception_resnet_v2_imagenet")


def _write_preset():
    try:
        from inception.hub import convert
    except ImportError as err:
        sys.exit(common.error_line(err))
    from inception.weights import WeightsError, assign

    try:
        report = convert.convert(
            FLAGS.network,
            FLAGS.weights,
            FLAGS.preset,
            keep_background=FLAGS.keep_background,
            cache_dir=FLAGS.cache_dir,
            source_name=FLAGS.source,
            file_hash=FLAGS.sha256,
            url=FLAGS.url,
        )
    except (OSError, ValueError, WeightsError) as err:
        sys.exit(common.error_line(err))
    for line in assign.format_report(report):
        print(line)
    print(f"wrote the keras-hub preset {report['output']}")


def main():
    common.start(run)


if __name__ == "__main__":
    main()
