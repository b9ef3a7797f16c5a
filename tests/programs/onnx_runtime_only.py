"""An exported .onnx file run by ONNX Runtime alone, as a user's service would run it, in a
fresh process that imports nothing from this project (tests/test_export_onnx.py runs it):

    python tests/programs/onnx_runtime_only.py MODEL.onnx IMAGES.npy RESULT.json

RESULT.json: whether this project or TensorFlow was imported, the input and output as ONNX
Runtime sees them, the file's metadata and the probabilities of IMAGES.npy (batches of 7).
"""

import json
import sys

import numpy as np
import onnxruntime


def main(path, images_npy, result_json):
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    images = np.load(images_npy)
    meta = session.get_modelmeta().custom_metadata_map
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    probabilities = np.concatenate(
        [session.run(None, {inp.name: images[i : i + 7]})[0] for i in range(0, len(images), 7)]
    )
    result = {
        "inception_imported": any(
            m == "inception" or m.startswith("inception.") for m in sys.modules
        ),
        "tensorflow_imported": "tensorflow" in sys.modules,
        "input": [inp.name, inp.type, [d if isinstance(d, int) else None for d in inp.shape]],
        "output": [out.name, out.type],
        "metadata": json.loads(meta["inception_export"]),
        "probabilities": probabilities.tolist(),
    }
    with open(result_json, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
