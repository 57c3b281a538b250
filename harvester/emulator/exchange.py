"""What the emulator's server hands an application and what it gets back.

An application is any ``Callable[[Request], Reply]`` mounted on a path
prefix (``Emulator(..., apps={"/ws/2/": ...})`` or ``emulator.mount``); the
server puts the proxy's behaviour (rate limit, faults, the request log) in
front of every one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Request:
    method: str  # GET or HEAD
    path: str  # the URL's path, still percent-encoded
    query: Mapping[str, list[str]]  # parse_qs of the query string, blank values kept
    raw_query: str
    headers: Mapping[str, str]
    base: str  # scheme://host:port as the client addressed the server (for Location headers)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: Headers = ()
    server: str = "Plack::Handler::Starlet"  # the Server header: the application's, or the proxy's (openresty)


App = Callable[[Request], Reply]


def json_reply(status: int, body: Any, headers: Headers = (), server: str = Reply.server) -> Reply:
    return Reply(status, json.dumps(body, ensure_ascii=False).encode("utf-8"), headers=headers, server=server)
