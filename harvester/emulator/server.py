"""The emulator's HTTP side: applications mounted on path prefixes, behind a proxy like musicbrainz.org's.

Run in-process (``with Emulator(corpus) as emu: emu.url``) or as its own
process (``python -m harvester.emulator``). The WS/2 application is mounted
at ``/ws/2/``; another application (any ``Callable[[Request], Reply]``, see
``exchange.py``) mounts on its own prefix with ``apps=`` or ``mount()``, and
the longest matching prefix answers.

In front of every application sits what musicbrainz.org's front proxy
(openresty) does: a request without a User-Agent is refused (403); above
the per-IP rate the answer is the proxy's per-IP 503 (``X-RateLimit-Zone: ws
ip=...``, ``Retry-After: 1``); faults injected by request number, among them
the proxy's load-shedding 503 (``busy``: zone ``global``, ``Retry-After:
0``). Every request received is numbered from 1 and logged; refused requests
count against the rate limit exactly like accepted ones, as on the public
server.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qs, urlsplit

from harvester.emulator.corpus import Corpus
from harvester.emulator.exchange import App, Reply, Request, json_reply
from harvester.emulator.serving import LocalServer, send_head
from harvester.emulator.ws2 import WS2App, error_reply

PROXY = "openresty"
RATE_LIMIT_MESSAGE = ("Your requests are exceeding the allowable rate limit. Please see "
                      "http://wiki.musicbrainz.org/XMLWebService for more information.")
BUSY_MESSAGE = "The MusicBrainz web server is currently busy. Please try again later."
NO_USER_AGENT_MESSAGE = ("Your requests are being throttled by MusicBrainz because the application you are using "
                         "has not identified itself. Please update your application, and see "
                         "http://musicbrainz.org/doc/XML_Web_Service/Rate_Limiting for more information.")
FAULT_KINDS = ("503", "busy", "500", "502", "reset", "slow", "truncated", "html", "html502", "badjson")
HTML_ERROR_PAGE = (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
                   b"<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>")


def parse_fault(spec: str) -> tuple[str, int]:
    """``"503"`` or ``"503:N"`` (Retry-After N) -> (kind, retry_after)."""
    kind, _, arg = spec.partition(":")
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {spec!r} (known: {', '.join(FAULT_KINDS)})")
    return kind, int(arg) if arg else (0 if kind == "busy" else 1)


def ip_limited_reply(ip: str, retry_after: int = 1) -> Reply:
    """The proxy's 503 for one IP above its rate."""
    return json_reply(503, {"error": RATE_LIMIT_MESSAGE}, server=PROXY, headers=(
        ("Retry-After", str(retry_after)), ("X-RateLimit-Zone", f"ws ip={ip}"),
        ("X-RateLimit-Limit", "22"), ("X-RateLimit-Remaining", "0")))


def busy_reply(rng: random.Random, now: float, retry_after: int = 0) -> Reply:
    """The proxy's 503 when the whole service sheds load (nothing to do with this client's rate)."""
    return json_reply(503, {"error": BUSY_MESSAGE}, server=PROXY, headers=(
        ("Retry-After", str(retry_after)), ("X-RateLimit-Zone", "global"), ("X-RateLimit-Who", "global"),
        ("X-MB-Rate-Limiter", "lua"), ("X-RateLimit-Limit", "15"),
        ("X-RateLimit-Remaining", str(rng.randint(8, 14))), ("X-RateLimit-Reset", str(int(now) + 1))))


def no_user_agent_reply() -> Reply:
    return json_reply(403, {"error": NO_USER_AGENT_MESSAGE}, server=PROXY, headers=(
        ("X-RateLimit-Who", "ua-missing"), ("X-MB-Rate-Limiter", "lua")))


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


class Emulator(LocalServer):
    """A MusicBrainz-like server on 127.0.0.1 (port 0: any free port): WS/2 over ``corpus`` at /ws/2/.

    rate: requests per second allowed per client IP (0 = unlimited, as a
    mirror); faults: ``{request_number: kind}`` with kind one of FAULT_KINDS
    (``"503:N"`` sets Retry-After N); slow_seconds: how long a ``slow`` reply
    stalls (make it longer than the client's read timeout); shift: items a
    browse moves between its first and later pages (see ``ws2.py``); apps:
    more applications by path prefix."""

    thread_name = "ws2-emulator"

    def __init__(self, corpus: Corpus, *, rate: float = 0.0, faults: Mapping[int, str] | None = None,
                 slow_seconds: float = 2.0, tolerance: float = 0.05, log_path: Path | str | None = None,
                 host: str = "127.0.0.1", port: int = 0, shift: int = 0, apps: Mapping[str, App] | None = None):
        self.corpus = corpus
        self.faults = {number: parse_fault(spec) for number, spec in (faults or {}).items()}
        self.slow_seconds = slow_seconds
        self.limit = IpRateLimit(rate, tolerance)
        self.log = RequestLog(Path(log_path) if log_path else None)
        self.rng = random.Random(0)
        self.apps: dict[str, App] = {"/ws/2/": WS2App(corpus, shift=shift)}
        for prefix, app in (apps or {}).items():
            self.mount(prefix, app)
        self.listen(make_handler(self), host, port)

    def mount(self, prefix: str, app: App) -> None:
        """Answer requests whose path starts with ``prefix`` with ``app`` (the longest prefix wins)."""
        if not prefix.startswith("/"):
            raise ValueError(f"a mount prefix starts with /, not {prefix!r}")
        self.apps[prefix] = app

    def app_for(self, path: str) -> App | None:
        matching = [prefix for prefix in self.apps if path.startswith(prefix) or path == prefix.rstrip("/")]
        return self.apps[max(matching, key=len)] if matching else None

    def answer(self, request: Request) -> Reply:
        """The answer of the application the path belongs to (no proxy behaviour)."""
        app = self.app_for(request.path)
        return app(request) if app else error_reply(404, "Not Found")

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of the request log (dicts: n, time, monotonic, method, path, status, user_agent, remote, fault)."""
        with self.log.lock:
            return list(self.log.entries)

    def prepare(self) -> None:
        self.corpus.index  # built now, so the first request is not slow


def make_handler(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to one emulator (http.server wants a class, not an instance)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        reply_server = PROXY

        def setup(self) -> None:
            super().setup()
            # headers and body go out as separate writes: without this, Nagle plus delayed ACK adds 40 ms
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass

        def version_string(self) -> str:
            return self.reply_server  # the Server header: the proxy's or the application's

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.handle_request("GET")

        def do_HEAD(self) -> None:  # noqa: N802 - the stdlib's name
            self.handle_request("HEAD")

        def handle_request(self, method: str) -> None:
            arrived, arrived_mono = time.time(), time.monotonic()
            number = emulator.log.next_number()
            split = urlsplit(self.path)
            host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
            request = Request(method, split.path, parse_qs(split.query, keep_blank_values=True), split.query,
                              self.headers, f"http://{host}")
            fault, retry_after = emulator.faults.get(number, ("", 1))
            ip = self.client_address[0]
            if not self.headers.get("User-Agent", "").strip():
                reply, fault = no_user_agent_reply(), "no-user-agent"
            elif not emulator.limit.allow(ip, arrived_mono):
                reply, fault = ip_limited_reply(ip), "rate-limit"
            elif fault:
                reply = fault_reply(fault, retry_after, ip, emulator, request)
            else:
                reply = emulator.answer(request)
            status = 0 if fault == "reset" else reply.status
            emulator.log.add({
                "n": number, "time": arrived, "monotonic": arrived_mono, "method": method, "path": self.path,
                "status": status, "user_agent": self.headers.get("User-Agent", ""), "remote": ip, "fault": fault,
            })
            if fault == "reset":
                self.reset_connection()
            elif fault == "slow":
                time.sleep(emulator.slow_seconds)
                self.send(reply, head=method == "HEAD")
            else:
                self.send(reply, cut=fault == "truncated", head=method == "HEAD")

        def send(self, reply: Reply, cut: bool = False, head: bool = False) -> None:
            try:
                self.reply_server = reply.server
                body = send_head(self, reply, cut)
                if not head:
                    self.wfile.write(body)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def reset_connection(self) -> None:
            """Close without a word: SO_LINGER 0 makes the close send a TCP reset."""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True

    return Handler


def fault_reply(kind: str, retry_after: int, ip: str, emulator: Emulator, request: Request) -> Reply:
    """The reply a fault produces; some faults spoil the normal answer in delivery."""
    if kind == "503":
        return ip_limited_reply(ip, retry_after)
    if kind == "busy":
        return busy_reply(emulator.rng, time.time(), retry_after)
    if kind == "500":
        return error_reply(500, "Internal server error")
    if kind == "502":
        return Reply(502, json.dumps({"error": "Bad Gateway"}).encode(), server=PROXY)
    if kind == "html":
        return Reply(200, HTML_ERROR_PAGE.replace(b"502 Bad Gateway", b"Service Maintenance"), content_type="text/html",
                     server=PROXY)
    if kind == "html502":
        return Reply(502, HTML_ERROR_PAGE, content_type="text/html", server=PROXY)
    if kind == "badjson":
        return Reply(200, b'{"id": "5b11f4ce-a62d-471e-81fc-a69a8278c7da", "name": ')
    return emulator.answer(request)  # reset, slow, truncated: the real answer, spoiled in delivery
