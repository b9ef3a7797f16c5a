"""Classify image files with an exported model running in TF Serving (gRPC or REST).

``inception-serving-client``:

    # gRPC (port 8500), through tensorflow-serving-api's PredictionService
    inception-serving-client --server=localhost:8500 --model=irv2 cat.jpg dog.png
    # REST (port 8501): POST {"instances": [{"b64": ...}, ...]} to :predict
    inception-serving-client --rest=http://localhost:8501 --model=irv2 cat.jpg

Both send the encoded files unchanged to the ``serving_default`` signature (input
``image_bytes``): decoding and preprocessing happen inside the model.
"""

import argparse
import base64
import json
import sys
import urllib.request

from inception_cli import common


def grpc_request(model_name, encoded_images, signature="serving_default", version=None):
    """A PredictRequest carrying the encoded images as the ``image_bytes`` string tensor."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    request.inputs["image_bytes"].CopyFrom(
        tf.make_tensor_proto(list(encoded_images), dtype=tf.string, shape=[len(encoded_images)])
    )
    return request


def rest_body(encoded_images, signature="serving_default"):
    """The REST row-format body: binary strings travel base64-encoded under "b64"."""
    return {
        "signature_name": signature,
        "instances": [{"b64": base64.b64encode(b).decode("ascii")} for b in encoded_images],
    }


def predict_grpc(server, model_name, encoded_images, timeout=30.0, version=None):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(grpc_request(model_name, encoded_images, version=version), timeout)
    return {key: tf.make_ndarray(value).tolist() for key, value in response.outputs.items()}


def predict_rest(url, model_name, encoded_images, timeout=30.0, version=None):
    path = (
        f"/v1/models/{model_name}" + (f"/versions/{int(version)}" if version else "") + ":predict"
    )
    request = urllib.request.Request(
        url.rstrip("/") + path,
        data=json.dumps(rest_body(encoded_images)).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        rows = json.load(response)["predictions"]
    return {key: [row[key] for row in rows] for key in rows[0]} if rows else {}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--server", help="gRPC host:port of TF Serving (usually :8500)")
    target.add_argument("--rest", help="REST base URL of TF Serving (usually http://host:8501)")
    parser.add_argument("--model", required=True, help="model name (the directory under OUT)")
    parser.add_argument("--version", type=int, default=None, help="version (default: latest)")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("images", nargs="+", help="JPEG or PNG files")
    common.add_verbose_argument(parser)
    args = parser.parse_args(argv)
    common.setup_process(args.verbose)
    encoded = []
    for path in args.images:
        with open(path, "rb") as f:
            encoded.append(f.read())
    if args.server:
        outputs = predict_grpc(args.server, args.model, encoded, args.timeout, args.version)
    else:
        outputs = predict_rest(args.rest, args.model, encoded, args.timeout, args.version)
    for path, labels, scores in zip(args.images, outputs["top_k_labels"], outputs["top_k_scores"]):
        print(path)
        for rank, (label, score) in enumerate(zip(labels, scores), 1):
            label = label.decode("utf-8") if isinstance(label, bytes) else label
            print(f"  {rank}. {label:<20} {score:.4f}")


if __name__ == "__main__":
    sys.exit(main())
