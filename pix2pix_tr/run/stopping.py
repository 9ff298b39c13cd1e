"""Stop a training run cleanly on SIGINT (Ctrl-C) or SIGTERM (what clusters send before a kill).

The first signal raises a flag: the loop finishes its step, saves latest and exits with one line saying
how to resume. A second stops at once (KeyboardInterrupt); the checkpoint it may cut short stays whole
(atomic writes). DataLoader workers ignore both (`ignore_stop_signals`), since a terminal's Ctrl-C
reaches the whole process group and a dead worker would fail the step in flight.
"""
import signal
import sys
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """Context manager: while active, `requested` turns true on the first SIGINT/SIGTERM."""

    def __init__(self):
        self.signum = None
        self._previous = {}

    @property
    def requested(self):
        return self.signum is not None

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: stopping: finishing this step, then saving latest (Ctrl-C "
              "again to stop at once)", file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def exit(self, what):
        """Leave the program after a stop request was handled: one line, then the signal's exit status."""
        name = signal.Signals(self.signum).name if self.signum else "a signal"
        print(f"stopped by {name} {what}")
        raise SystemExit(128 + (self.signum or signal.SIGINT))

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        return False


def ignore_stop_signals(worker_id=None):
    """worker_init_fn for DataLoader workers: leave SIGINT/SIGTERM to the main process."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
