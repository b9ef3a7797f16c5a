"""The classifier that carries its class names, under its former address.

``LabeledDense`` and the functions that read and swap it live in ``inception/heads.py`` (one
model, one head), so that ``inception.models`` registers it for safe-mode loading without
importing this package. These names stay for the callers that import them from here.
"""

from inception.heads import LabeledDense, class_names, with_class_names  # noqa: F401
