"""What the emulator's HTTP servers share: listening on a free port, serving on
a thread of their own (tests) or in the calling thread (the command line),
and sending a reply's head."""

from __future__ import annotations

import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harvester.emulator.exchange import Reply


def send_head(handler: BaseHTTPRequestHandler, reply: Reply, cut: bool) -> bytes:
    """Send the reply's status and headers; returns the body to write: all
    of it, or, `cut`, its first half on a connection closed after it (a
    reply dropped midway, Content-Length still the whole body's)."""
    handler.send_response(reply.status)
    handler.send_header("Content-Type", reply.content_type)
    handler.send_header("Content-Length", str(len(reply.body)))
    for name, value in reply.headers:
        handler.send_header(name, value)
    if cut:
        handler.send_header("Connection", "close")
        handler.close_connection = True
    handler.end_headers()
    return reply.body[: len(reply.body) // 2] if cut else reply.body


class LocalServer:
    """An HTTP server bound at construction (port 0: any free port), started
    with `start()` or as a context manager, stopped with `stop()`."""

    thread_name = "local-server"

    def listen(self, handler: type[BaseHTTPRequestHandler], host: str, port: int) -> None:
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client hanging up is not news
        self.thread: threading.Thread | None = None

    def prepare(self) -> None:
        """Work to do before the first request is answered (nothing by default)."""

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self.prepare()
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name=self.thread_name, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.thread:
            self.thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread (the command-line entry points)."""
        self.prepare()
        try:
            self.server.serve_forever()
        finally:
            self.server.server_close()


def serve_until_stopped(server: LocalServer, url: str) -> int:
    """The command line's way to run a server: print its URL (the first line,
    for whoever started it), then serve until Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
