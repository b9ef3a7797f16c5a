"""The paper's networks as data: names, variants and the defaults every other module reads.

One place for each constant; ``models``, ``inception.config``, the command-line flags and the docs
read them from here.
"""

NAMES = ("inception_v4", "inception_resnet_v1", "inception_resnet_v2")
VARIANTS = {
    "inception_v4": ("paper",),
    "inception_resnet_v1": ("paper",),
    "inception_resnet_v2": ("release", "paper"),
}
DEFAULT_VARIANT = {"inception_v4": "paper", "inception_resnet_v1": "paper",
                   "inception_resnet_v2": "release"}
# The released code's residual scales for the A, B and C blocks (paper section 3.3 says 0.1-0.3).
RESIDUAL_SCALES = (0.17, 0.10, 0.20)
IMAGE_SIZE = 299
# The stem and two reductions (all 'V' padding) need at least 75x75 to leave a 1x1 map.
MIN_IMAGE_SIZE = 75
BN_MOMENTUM = 0.9997
BN_EPSILON = 0.001
