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


class DeferredStops:
    """Stop signals received inside `stops_deferred()`, raised by `check()`."""

    def __init__(self) -> None:
        self.received: int | None = None

    def record(self, signum: int, _frame: object) -> None:
        if self.received is None:
            self.received = signum

    def check(self) -> None:
        """Raise the first stop signal received as Interrupted, if any (once)."""
        if self.received is not None:
            signum, self.received = self.received, None
            raise Interrupted(signum)


@contextmanager
def stops_deferred() -> Iterator[DeferredStops]:
    """For the length of the block, a stop signal that would raise (see
    stop_on_signals; Ctrl-C's default too) is only recorded, and raised by
    the block's own `check()` calls, made where stopping is safe. For work
    whose threads and shared SQLite connection an exception landing between
    any two bytecodes could break (a thread created but not started, a
    connection rolled back while another thread writes on it): the dump
    import checks between lines and between merge windows. A signal
    received and not yet raised when the block ends normally is given
    back to the handler it was kept from. Off the main thread (where no
    handler runs) nothing is deferred."""
    stops = DeferredStops()
    if threading.current_thread() is not threading.main_thread():
        yield stops
        return
    previous = {}
    for signum in STOP_SIGNALS:
        if callable(signal.getsignal(signum)):
            previous[signum] = signal.signal(signum, stops.record)
    try:
        yield stops
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if stops.received is not None:
        signal.raise_signal(stops.received)
