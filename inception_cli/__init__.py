"""Command-line entry points: the only code that defines absl flags and turns them into
``inception.config`` dataclasses."""
