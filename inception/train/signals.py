"""SIGTERM and SIGINT ask a training run to save and stop (README "Never losing work").

What schedulers send before they kill a job (Kubernetes, Slurm, spot and preemptible VMs: SIGTERM)
and Ctrl-C (SIGINT) set a flag; the loop hands it to the next training step, whose all-reduce
tells every worker, and all of them save the checkpoint of that step and stop
(``actions.PreemptionSave``). After the first SIGINT the default handler is back, so a second
Ctrl-C quits at once (whatever was half-written stays a temporary file: every write is atomic).
"""

import os
import signal
import threading

_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}


class StopSignals:
    """A context manager: while inside, SIGTERM and SIGINT request a stop instead of killing the
    process. Outside the main thread (where Python cannot handle signals) it does nothing."""

    def __init__(self):
        self.received = None
        self._previous = {}

    def requested(self):
        return self.received is not None

    def describe(self):
        """What stopped the run, for its last line."""
        if self.received is None:
            return "another worker received a stop signal"
        return f"{_NAMES.get(self.received, self.received)} received"

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in _NAMES:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        return False

    def _handle(self, signum, frame):
        del frame
        first = self.received is None
        if first:
            self.received = signum
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C quits at once
        if first:
            # os.write, not print: the handler may interrupt a print of the main thread.
            again = (
                " (Ctrl-C again quits at once, without saving)" if signum == signal.SIGINT else ""
            )
            os.write(
                2,
                f"\n{_NAMES[signum]} received: saving a checkpoint after this step, then "
                f"stopping{again}\n".encode(),
            )
