"""Exports a trained network for TF Serving (SavedModel) and devices (TFLite).

    python export.py --model_dir=runs/demo --export_dir=exports --name=irv2
    python export.py --keras_model=model.keras --labels=labels.txt --dataset=sklearn_digits \
        --export_dir=exports --formats=saved_model,tflite_fp16

Writes OUT/<name>/<version>/ (SavedModel) and OUT/<name>-artifacts/<version>/ (TFLite files and
export_report.json), each renamed into place only when complete, and prints the report: size,
top-1 agreement with the Keras model, largest probability difference and latency per variant.
Installed as ``inception-export``; the code is ``inception_cli/export.py`` (flags -> ExportConfig)
and ``inception/export/job.py``.
"""

from inception_cli.export import main

if __name__ == "__main__":
    main()
