"""SIGTERM (what SLURM sends on preemption and timeouts, and ``kill``) and SIGINT (Ctrl-C) end
a run as an exception: the run's results.json records it failed on the way out, and the
command exits with 128 + the signal's number, as shells expect."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: The signals that interrupt a run, each with the handler Python starts with.
SIGNALS = {signal.SIGTERM: signal.SIG_DFL, signal.SIGINT: signal.default_int_handler}


class Interrupted(BaseException):
    """A termination signal arrived. Not an ``Exception``, so that a sweep's per-cell error
    handling does not take it for a failed cell and go on, and Lightning does not turn it
    into ``sys.exit(1)`` as it does Ctrl-C's KeyboardInterrupt. ``run_dir`` is the folder of
    the run it stopped, where one had started."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.run_dir: str | None = None
        super().__init__(f"interrupted by {self.name}")

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


@contextmanager
def interruptible() -> Iterator[None]:
    """While inside, SIGTERM and SIGINT raise ``Interrupted``; a signal whose handler is not
    Python's default (submitit's requeue handling in a cluster job, an enclosing
    ``interruptible``) is left as it is. A second signal acts at once, as it would by default."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    ours = [signum for signum, default in SIGNALS.items() if signal.getsignal(signum) == default]
    for signum in ours:
        signal.signal(signum, _interrupt)
    try:
        yield
    finally:
        for signum in ours:
            signal.signal(signum, SIGNALS[signum])


def _interrupt(signum: int, frame: FrameType | None) -> None:
    for number, default in SIGNALS.items():
        signal.signal(number, default)
    raise Interrupted(signum)
