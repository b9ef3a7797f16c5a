"""Command-line entry points: the only code that defines absl flags and turns them into the
configs' dataclasses (``inception.train.config``, ``inception.export.config``,
``inception.evaluation.config``)."""
