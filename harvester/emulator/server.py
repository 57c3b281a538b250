"""The emulator's HTTP side: WS/2 routes, the per-IP rate limit, fault injection and a request log.

Run in-process (``with Emulator(corpus) as emu: emu.url``) or as its own
process (``python -m harvester.emulator``). Every request received is
numbered from 1; faults are keyed by that number, and refused requests
count against the rate limit exactly like accepted ones, as on the public
server.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import parse_qs, urlsplit


from harvester.emulator.corpus import Corpus
from harvester.emulator.ws2 import Reply, error_reply, route

RATE_LIMIT_MESSAGE = ("Your requests are exceeding the allowable rate limit. Please see "
                      "http://wiki.musicbrainz.org/XMLWebService for more information.")
FAULT_KINDS = ("503", "500", "502", "reset", "slow", "truncated", "html", "html502", "badjson")
HTML_ERROR_PAGE = (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
                   b"<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>")


def parse_fault(spec: str) -> tuple[str, int]:
    """``"503"`` or ``"503:N"`` (Retry-After N) -> (kind, retry_after)."""
    kind, _, arg = spec.partition(":")
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {spec!r} (known: {', '.join(FAULT_KINDS)})")
    return kind, int(arg) if arg else 1


class IpRateLimit:
    """The public server's rule: about ``rate`` requests per second per client IP.

    A generic cell-rate algorithm: each request (refused ones too) pushes the
    IP's theoretical arrival time on by 1/rate; a request arriving more than
    ``tolerance`` seconds before that time is refused."""

    def __init__(self, rate: float, tolerance: float):
        self.interval = 1.0 / rate if rate else 0.0
        self.tolerance = tolerance
        self.next_due: dict[str, float] = {}
        self.lock = threading.Lock()

    def allow(self, ip: str, now: float) -> bool:
        if not self.interval:
            return True
        with self.lock:
            due = self.next_due.get(ip, now)
            self.next_due[ip] = max(due, now) + self.interval
            return now >= due - self.tolerance



class RequestLog:
    """Every request received, in memory and optionally as JSON lines in a file."""

    def __init__(self, path: Path | None):
        self.entries: list[dict[str, Any]] = []
        self.path = path
        self.lock = threading.Lock()
        self.number = 0

    def next_number(self) -> int:
        with self.lock:
            self.number += 1
            return self.number

    def add(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.entries.append(entry)
            if self.path:
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry, ensure_ascii=False) + "\n")


class Emulator:
    """A WS/2 server on 127.0.0.1 (port 0: any free port) over ``corpus``.

    rate: requests per second allowed per client IP (0 = unlimited, as a
    mirror); faults: ``{request_number: kind}`` with kind one of
    FAULT_KINDS (``"503:N"`` sets Retry-After N); slow_seconds: how long a
    ``slow`` reply stalls (make it longer than the client's read timeout)."""

    def __init__(self, corpus: Corpus, *, rate: float = 0.0, faults: Mapping[int, str] | None = None,
                 slow_seconds: float = 2.0, tolerance: float = 0.05, log_path: Path | str | None = None,
                 host: str = "127.0.0.1", port: int = 0):
        self.corpus = corpus
        self.faults = {number: parse_fault(spec) for number, spec in (faults or {}).items()}
        self.slow_seconds = slow_seconds
        self.limit = IpRateLimit(rate, tolerance)
        self.log = RequestLog(Path(log_path) if log_path else None)
        self.server = ThreadingHTTPServer((host, port), make_handler(self))
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client hanging up is not news
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of the request log (dicts: n, time, monotonic, method, path, status, user_agent, remote, fault)."""
        with self.log.lock:
            return list(self.log.entries)

    def start(self) -> "Emulator":
        # corpus indexes are built now, so the first request is not slow
        self.corpus.index
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="ws2-emulator", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.thread:
            self.thread.join(timeout=5)

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread (the command-line entry point)."""
        self.corpus.index
        try:
            self.server.serve_forever()
        finally:
            self.server.server_close()


def make_handler(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to one emulator (http.server wants a class, not an instance)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "mbharvest-ws2-emulator"

        def setup(self) -> None:
            super().setup()
            # headers and body go out as separate writes: without this, Nagle plus delayed ACK adds 40 ms
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            arrived, arrived_mono = time.time(), time.monotonic()
            number = emulator.log.next_number()
            split = urlsplit(self.path)
            query = parse_qs(split.query, keep_blank_values=True)
            fault, retry_after = emulator.faults.get(number, ("", 1))
            if not emulator.limit.allow(self.client_address[0], arrived_mono):
                reply, fault = error_reply(503, RATE_LIMIT_MESSAGE), "rate-limit"
                reply = Reply(reply.status, reply.body, headers=(("Retry-After", "1"),))
            elif fault:
                reply = fault_reply(fault, retry_after, lambda: route(emulator.corpus, split.path, query))
            else:
                reply = route(emulator.corpus, split.path, query)
            status = 0 if fault == "reset" else reply.status
            emulator.log.add({
                "n": number, "time": arrived, "monotonic": arrived_mono, "method": "GET", "path": self.path,
                "status": status, "user_agent": self.headers.get("User-Agent", ""),
                "remote": self.client_address[0], "fault": fault,
            })
            if fault == "reset":
                self.reset_connection()
            elif fault == "slow":
                time.sleep(emulator.slow_seconds)
                self.send(reply)
            elif fault == "truncated":
                self.send(reply, cut=True)
            else:
                self.send(reply)

        def send(self, reply: Reply, cut: bool = False) -> None:
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers:
                    self.send_header(name, value)
                if cut:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(reply.body[: len(reply.body) // 2] if cut else reply.body)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def reset_connection(self) -> None:
            """Close without a word: SO_LINGER 0 makes the close send a TCP reset."""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True

    return Handler


def fault_reply(kind: str, retry_after: int, answer: Callable[[], Reply]) -> Reply:
    """The reply a fault produces; ``answer`` gives the normal reply that some faults spoil."""
    if kind == "503":
        return Reply(503, json.dumps({"error": "The MusicBrainz web server is currently busy. "
                                               "Please try again later."}).encode(),
                     headers=(("Retry-After", str(retry_after)),))
    if kind == "500":
        return error_reply(500, "Internal server error")
    if kind == "502":
        return error_reply(502, "Bad Gateway")
    if kind == "html":
        return Reply(200, HTML_ERROR_PAGE.replace(b"502 Bad Gateway", b"Service Maintenance"), content_type="text/html")
    if kind == "html502":
        return Reply(502, HTML_ERROR_PAGE, content_type="text/html")
    if kind == "badjson":
        return Reply(200, b'{"id": "5b11f4ce-a62d-471e-81fc-a69a8278c7da", "name": ')
    return answer()  # reset, slow, truncated: the real answer, spoiled in delivery
