"""Signals that stop a run (SIGINT, SIGTERM, SIGHUP) all stop it as Ctrl-C does."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from harvester.errors import Interrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """For the length of the block, SIGINT, SIGTERM and SIGHUP raise
    Interrupted in the main thread (where Python runs signal handlers), so
    whatever is running stops between two bytecodes: an open transaction is
    rolled back, the ledger records the run as interrupted, and the CLI
    prints one line. Without this, SIGTERM and SIGHUP end the process on the
    spot, leaving the ledger `running`. A signal the process was started
    ignoring (SIGHUP under nohup, SIGINT in a background job) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) != signal.SIG_IGN:
            previous[signum] = signal.signal(signum, _raise_interrupted)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
