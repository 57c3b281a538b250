"""A one-line progress display on a terminal's stderr; silent elsewhere (cron)."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

from harvester.harvest import ProgressEvent


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 request`, `2 requests`, `1,234 entities` (give `nouns` when +s is wrong)."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def describe(event: ProgressEvent) -> str:
    """`keys 4/20  pages 19/19+  entities 1,234  3.98 req/s  ETA ~1:20`: while
    keys remain unbegun their pages are unknown (`+`), and the ETA comes from
    the keys done so far (`~`), or is `-` until one is done."""
    rate = event.requests / event.elapsed if event.elapsed > 0 else 0.0
    discovering = event.keys_total is None or event.keys_started < event.keys_total
    keys = "" if event.keys_total is not None and event.keys_total <= 1 else (
        f"keys {event.keys_done}/{event.keys_total}  " if event.keys_total is not None else f"keys {event.keys_done}  ")
    if not discovering:
        pages_per_s = event.pages_done / event.elapsed if event.elapsed > 0 else 0.0
        left = event.pages_known - event.pages_done
        eta = format_duration(left / pages_per_s) if pages_per_s > 0 and left > 0 else "-"
    elif event.keys_total and event.keys_done:
        eta = "~" + format_duration(event.elapsed / event.keys_done * (event.keys_total - event.keys_done))
    else:
        eta = "-"
    return (f"{keys}pages {event.pages_done}/{event.pages_known}{'+' if discovering else ''}  "
            f"entities {event.entities_written:,}  {rate:.2f} req/s  ETA {eta}")


class ProgressLine:
    """Redraws one line at most a few times a second; only on a terminal.

    Called with whatever the work reports (a harvest's ProgressEvent, a dump
    import's Progress, an export's table and row count, a report's step);
    `render` turns that into the line."""

    def __init__(self, render: Callable[..., str] = describe, stream: TextIO = sys.stderr, interval: float = 0.2,
                 clock: Callable[[], float] = time.monotonic):
        self.render = render
        self.stream = stream
        self.enabled = stream.isatty()
        self.interval = interval
        self.clock = clock
        self.last = -interval
        self.width = 0

    def __call__(self, *event: Any) -> None:
        if not self.enabled or self.clock() - self.last < self.interval:
            return
        self.last = self.clock()
        text = self.render(*event)
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def __enter__(self) -> "ProgressLine":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Clear the line (before other output, or at the end)."""
        if self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0
