"""The one error a run raises when it cannot go on (bad configs raise ValueError)."""


class TrainingError(RuntimeError):
    """A run that cannot go on: diverged, died with stop_if_died, or a model_dir of another run."""
