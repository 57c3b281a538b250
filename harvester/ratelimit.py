"""A request-rate limiter shared by every process on this machine, per server host.

MusicBrainz limits each source IP to about 1 request per second, so all
harvester processes behind one IP must share one budget. The shared state is
a small file per host under the user's cache directory holding the wall-clock
time of the last request; an exclusive ``fcntl.flock`` on it serialises the
processes. The holder of the lock waits out the interval, records its send
time and releases, so the stored time is never legitimately in the future.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from pathlib import Path
from typing import Callable

import platformdirs

from harvester.errors import UsageError

CACHE_DIR_ENV = "MBHARVEST_CACHE_DIR"
APP_NAME = "mbharvest"


def default_cache_dir() -> Path:
    """The directory holding the shared records: $MBHARVEST_CACHE_DIR, else the user cache dir."""
    override = os.environ.get(CACHE_DIR_ENV)
    return Path(override) if override else Path(platformdirs.user_cache_dir(APP_NAME))


def record_name(host: str) -> str:
    """A file name for a host, safe on any filesystem (``beta.musicbrainz.org`` stays readable)."""
    return "ratelimit-" + re.sub(r"[^A-Za-z0-9.-]", "_", host.lower() or "default") + ".lock"


def parse_record(text: str) -> float:
    """The stored send time, or 0.0 (no previous request) if the file is empty or garbled."""
    try:
        return float(text.strip() or 0.0)
    except ValueError:
        return 0.0


def wait_needed(last_sent: float, now: float, interval: float) -> float:
    """Seconds to wait before sending, given the last recorded send time.

    A record further in the future than one interval can only come from a
    clock jump (the clock went back, or another machine wrote it): waiting
    for it could mean hours, so the wait is capped at one interval."""
    if last_sent - now > interval:
        return interval
    return max(0.0, last_sent + interval - now)


class RateLimiter:
    """Blocks until this process may send one request to ``host``, then records it.

    rate is in requests per second; 0 means unlimited (no file is touched).
    ``clock`` must be wall-clock time (the record is shared across
    processes); ``clock`` and ``sleep`` are injectable so tests need not sleep."""

    def __init__(
        self,
        host: str,
        rate: float,
        *,
        cache_dir: Path | str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate < 0:
            raise ValueError(f"rate must be 0 (unlimited) or more, not {rate}")
        self.host = host
        self.rate = rate
        self.interval = 1.0 / rate if rate else 0.0
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.path = self.cache_dir / record_name(host)
        self.clock = clock
        self.sleep = sleep

    def acquire(self) -> float:
        """Wait for this process's turn and record the send time; returns the seconds waited."""
        if not self.rate:
            return 0.0
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            return self._wait_and_record()
        except OSError as exc:
            raise UsageError(f"cannot use the rate-limit record {self.path} ({exc.strerror}); "
                             f"set {CACHE_DIR_ENV} to a writable directory") from None

    def _wait_and_record(self) -> float:
        # a fresh open file per call: flock then also excludes other threads of this process
        with open(self.path, "a+", encoding="ascii", errors="replace") as record:
            fcntl.flock(record, fcntl.LOCK_EX)
            try:
                record.seek(0)
                last_sent = parse_record(record.read())
                # one sleep of a computed length (time.sleep never wakes early), not a loop
                # re-reading the wall clock: a clock jump during the wait cannot stretch it
                waited = wait_needed(last_sent, self.clock(), self.interval)
                if waited > 0:
                    self.sleep(waited)
                record.seek(0)
                record.truncate()
                record.write(f"{self.clock():.6f}\n")
                record.flush()
            finally:
                fcntl.flock(record, fcntl.LOCK_UN)
        return waited
