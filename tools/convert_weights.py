"""Converts published ImageNet weights into this project's Keras model (.keras).

    python tools/convert_weights.py --weights=inception_v4_2016_09_09.tar.gz --output=inception_v4.keras
    python tools/convert_weights.py --weights=model.safetensors --output=irv2_timm.keras
    python tools/convert_weights.py --network=inception_resnet_v2 --weights=imagenet --output=irv2.keras
    python tools/convert_weights.py --weights=model.safetensors --preset=inception_resnet_v2_imagenet  # keras-hub

The file's format and network are read from the file. Prints the network, variant, classes,
every tensor of the file and where it went, and the sha256 of the input and of the output;
writes OUTPUT and OUTPUT's stem + ".labels.txt" (class names, one per line, for export.py --labels).
See README "Pretrained weights". Installed as ``inception-convert-weights``; the code is
``inception_cli/convert_weights.py``.
"""

from inception_cli.convert_weights import main

if __name__ == "__main__":
    main()
