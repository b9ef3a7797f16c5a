"""Classify image files with an exported model running in TF Serving (gRPC or REST).

    python tools/serving_client.py --server=localhost:8500 --model=irv2 cat.jpg dog.png
    python tools/serving_client.py --rest=http://localhost:8501 --model=irv2 cat.jpg

Installed as ``inception-serving-client``; the code is ``inception_cli/serving_client.py``.
"""

import sys

from inception_cli.serving_client import main

if __name__ == "__main__":
    sys.exit(main())
