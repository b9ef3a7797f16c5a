"""A SavedModel of this project loaded by TensorFlow's two loaders, in a fresh process that
imports nothing from this project (tests/test_export_saved_model.py runs it):

    python tests/programs/serve_saved_model.py SPEC.json

The object loader (``tf.saved_model.load``) answers a REST-style request; then what TF Serving's
C++ loader does, in Python: import the MetaGraph, run the saver's restore op and the init op
(``tf.compat.v1`` loader), run signatures by tensor names, replay the warmup file. SPEC.json names
the inputs and the result file (``_start_serving`` in the test writes it).
"""

import base64
import json
import os
import sys

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2


def object_loader(spec):
    model = tf.saved_model.load(spec["path"])
    images = np.load(spec["images_npy"])
    by_images = model.signatures["predict_images"](images=tf.constant(images))
    # What TF Serving's REST handler does with a row-format request: {"b64": ...} objects are
    # base64-decoded into the bytes of the string input (named with the _bytes suffix).
    with open(spec["request_json"]) as f:
        request = json.load(f)
    decoded = [base64.b64decode(row["b64"]) for row in request["instances"]]
    by_bytes = model.signatures["serving_default"](image_bytes=tf.constant(decoded))
    return {
        "signatures": sorted(model.signatures.keys()),
        "outputs": sorted(by_bytes.keys()),
        "inputs": {
            k: str(v)
            for k, v in model.signatures["serving_default"].structured_input_signature[1].items()
        },
        "by_images": by_images["probabilities"].numpy().tolist(),
        "by_bytes": by_bytes["probabilities"].numpy().tolist(),
        "labels": by_bytes["top_k_labels"].numpy().astype(str).tolist(),
        "ids": by_bytes["top_k_ids"].numpy().tolist(),
    }


def session_loader(spec):
    path = spec["path"]
    good = [base64.b64decode(x) for x in spec["good"]]
    bad = {k: base64.b64decode(v) for k, v in spec["bad"].items()}
    warmup = [
        prediction_log_pb2.PredictionLog.FromString(r)
        for r in tf.compat.v1.io.tf_record_iterator(
            os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
        )
    ]
    variables = os.path.join(path, "variables", "variables")
    checkpoint = [
        k for k, _ in tf.train.list_variables(variables) if k != "_CHECKPOINTABLE_OBJECT_GRAPH"
    ]
    result = {}
    with tf.Graph().as_default() as graph, tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        sigs = meta.signature_def

        def run(name, feeds):
            sig = sigs[name]
            keys = sorted(sig.outputs)
            values = sess.run(
                [sig.outputs[k].name for k in keys],
                {sig.inputs[k].name: v for k, v in feeds.items()},
            )
            return dict(zip(keys, values))

        handles = [op for op in graph.get_operations() if op.type == "VarHandleOp"]
        initialised = sess.run(
            [tf.raw_ops.VarIsInitializedOp(resource=op.outputs[0]) for op in handles]
        )
        result.update(
            variable_handles=len(handles),
            initialised=int(sum(initialised)),
            checkpoint_variables=len(checkpoint),
            assets=len(meta.asset_file_def),
            signatures=sorted(sigs),
        )
        by_images = run("predict_images", {"images": np.load(spec["images_npy"])})
        by_bytes = run("serving_default", {"image_bytes": good})
        result.update(
            by_images=by_images["probabilities"].tolist(),
            by_bytes=by_bytes["probabilities"].tolist(),
            ids=by_bytes["top_k_ids"].tolist(),
            labels=by_bytes["top_k_labels"].astype(str).tolist(),
        )
        one = run("serving_default", {"image_bytes": good[:1]})["probabilities"]
        result["bad"] = {}
        for case, data in bad.items():
            try:
                run("serving_default", {"image_bytes": [good[0], data]})
                answer = {"error": None}
            except tf.errors.OpError as err:
                answer = {"error": type(err).__name__, "message": err.message}
            after = run("serving_default", {"image_bytes": good[:1]})["probabilities"]
            answer["next_request_same"] = bool(np.array_equal(after, one))
            result["bad"][case] = answer
        result["warmup"] = []
        for log in warmup:  # replayed as the server does at load time, request by request
            request = log.predict_log.request
            name = request.model_spec.signature_name or "serving_default"
            feeds = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            out = run(name, feeds)
            result["warmup"].append(
                {
                    "model": request.model_spec.name,
                    "signature": name,
                    "inputs": sorted(feeds),
                    "batch": len(feeds["image_bytes"]),
                    "probabilities": list(out["probabilities"].shape),
                }
            )
    return result


def main(spec_json):
    with open(spec_json) as f:
        spec = json.load(f)
    result = {"object": object_loader(spec["object"]), "session": session_loader(spec["session"])}
    result["inception_imported"] = any(
        m == "inception" or m.startswith("inception.") for m in sys.modules
    )
    with open(spec["result"], "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
