"""Typed, frozen configuration of everything the library runs: model, data, recipe, run, export.

The library reads only these dataclasses; the command-line entry points (``inception_cli``) turn
absl flags into them, and a Python user builds them directly.
"""

import dataclasses

# ---------------------------------------------------------------------------------------------
# Training: model, data, recipe, run.
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Export and evaluation.
# ---------------------------------------------------------------------------------------------
