"""Export of trained networks for deployment.

- ``job``: one export from an ``ExportConfig`` (what ``export.py`` runs).
- ``exporter``: ``run_export``: every requested format written, measured against Keras, reported.
- ``formats``: the ``Format`` interface every format implements (its writer, its one runner,
  its extra, its console quieting), and the registry that finds one by name
  (``EXPORT_FORMATS``); the only place that knows the formats.
- ``config``: ``ExportOptions`` and ``ExportConfig``, checked before TensorFlow loads.
- ``versions``: version directories: the next number, stale temporaries, publishing one whole.
- ``agreement``: the images every format is compared on (``AgreementImages``); size, agreement
  with Keras and latency of every format; the report file and table.
- ``classifier``: the ``Classifier`` an export starts from: what a training run left (EMA Keras
  model, labels, image size) or a .keras file.
- The formats: ``saved_model`` (SavedModel for TF Serving, Keras ``ExportArchive``; with
  ``decoding``, the guarded image decoder of its graph, ``warmup``, its TF Serving warmup file,
  and ``session``, the session loader TF Serving uses; ``saved_model_bf16``, opt-in, the same
  computing in bfloat16, rebuilt by ``bfloat16``), ``tflite`` (fp32, fp16, dynamic-range and
  int8 files with the labels inside; ``litert`` runs them), ``onnx`` (for ONNX Runtime). Each
  format's runner is also what ``inception-predict`` (``inception.prediction``) runs.
- ``data``: the validation and calibration images an export reads from the dataset.
"""
