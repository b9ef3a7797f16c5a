"""What a run raises when it cannot go on (bad configs raise ValueError), and the exit status
``main.py`` gives each (README "Never losing work")."""

# Exit status of main.py. 1 is also absl's for a bad flag: both mean "fix the command". The
# others follow sysexits.h: 75 (EX_TEMPFAIL) "try again", 69 (EX_UNAVAILABLE) "a service is
# unavailable", so a scheduler can tell a restartable stop from a failure.
EXIT_ERROR = 1  # a bad flag or value, a diverged (NaN) or died run, a model_dir of another run
EXIT_INTERRUPTED = 75  # stopped by SIGTERM or SIGINT after saving a checkpoint: rerun to resume
EXIT_WORKER_LOST = 69  # another worker stopped answering: restart every worker to resume


class TrainingError(RuntimeError):
    """A run that cannot go on: diverged, died with stop_if_died, or a model_dir of another run."""


class Interrupted(Exception):
    """A run stopped by a signal after saving the checkpoint of ``step`` at ``path``; rerunning
    the same command resumes from it."""

    def __init__(self, step, path, message):
        super().__init__(message)
        self.step, self.path = step, path


class WorkerLost(Exception):
    """Another worker of a multi-worker run stopped answering (``worker``: its name, or None);
    the newest complete checkpoint is ``path`` at ``step`` (None: none yet)."""

    def __init__(self, worker, path, step, cause):
        who = worker or "another worker"
        where = (
            f"the last complete checkpoint is {path} (step {step})"
            if path
            else "no checkpoint was written yet"
        )
        super().__init__(
            f"{who} stopped answering; {where}. Restart every worker with the same "
            "command to resume from it (--verbose shows TensorFlow's error)."
        )
        self.worker, self.path, self.step, self.cause = worker, path, step, cause
