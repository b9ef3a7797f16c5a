"""Export of trained networks for deployment.

- ``source``: loads what a training run left (EMA Keras model, labels, image size) or a .keras file.
- ``decoding``: the guarded image decoder of the serving graph (format, header size limit).
- ``saved_model``: SavedModel for TF Serving (Keras ``ExportArchive``), written atomically into
  ``OUT/<name>/<version>``.
- ``session``: runs a SavedModel through the session loader, as TF Serving and
  ``saved_model_cli`` do.
- ``warmup``: ``assets.extra/tf_serving_warmup_requests`` from tensorflow-serving-api protos.
- ``tflite``: fp32, fp16, dynamic-range and int8 TFLite files with the labels inside, and a
  runner on the LiteRT interpreter.
- ``report``: size, agreement with Keras and latency of every exported variant.
"""
