"""A thin, polite WS/2 JSON client: identified, rate-limited across processes, retrying.

Every argument is checked against musicbrainzngs' vocabulary before a
rate-limited request is spent on it. Every attempt (retries and redirect
hops included) first waits its turn at the shared limiter; ``requests_made``
counts the requests that reached a server (an attempt whose connection was
refused, whose host name did not resolve or whose TLS handshake failed sent
nothing). Transient failures (503/502/500/504, connection errors, timeouts,
cut or invalid JSON, HTML where JSON was expected) are retried with
exponential backoff and jitter, never sooner than the server's
``Retry-After``, each retry announced as a warning; 404 and 400 are answers,
not accidents, and are raised at once. Redirects (a merged MBID answers 301)
are never followed by the HTTP library: the client follows them itself,
through the limiter, to the same host only, at most ``MAX_REDIRECTS`` hops.
"""

from __future__ import annotations

import logging
import random
import re
import socket
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urljoin, urlsplit

import musicbrainzngs.musicbrainz as mbvocab
import orjson
import requests
import tenacity
import urllib3.exceptions

from harvester import __version__
from harvester.errors import BadRequest, NotFound, RequestFailed, ServiceUnavailable, UsageError
from harvester.normalize import MBID_PATTERN, normalize_isrc
from harvester.ratelimit import RateLimiter
from harvester.settings import Settings

log = logging.getLogger("harvester.client")

CONTACT_HOWTO = "set it with --contact, the MBHARVEST_CONTACT environment variable, or [client] contact in the config file"
EMAIL_RE = re.compile(r"^[^@\s<>()]+@[^@\s<>()]+\.[^@\s<>()]+$")
SEARCH_FIELD_RE = re.compile(r'(?<![\w"])([A-Za-z_-]+):')
QUOTED_RE = re.compile(r'"(?:[^"\\]|\\.)*"')
LOOKUP_ENTITIES = ("area", "artist", "event", "instrument", "label", "place", "recording", "release",
                   "release-group", "series", "work", "url")
BROWSE_LINKS: dict[str, tuple[str, ...]] = {
    "recording": ("artist", "release", "work", "collection"),
    "release": ("artist", "label", "recording", "release-group", "area", "collection", "track_artist"),
    "release-group": ("artist", "release", "collection"),
}
MAX_LIMIT = 100
RETRY_STATUSES = frozenset({500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 3
DEFAULT_ATTEMPTS = 6
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


# ---- checks made before any request ------------------------------------------


def check_contact(contact: str | None) -> str:
    """The contact, stripped; UsageError unless it is an email address or an http(s) URL."""
    value = (contact or "").strip()
    if not value:
        raise UsageError(f"MusicBrainz requires a contact (email or URL) in the User-Agent; {CONTACT_HOWTO}")
    if EMAIL_RE.match(value):
        return value
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc and not re.search(r"\s", value):
        return value
    raise UsageError(f"contact {value!r} is neither an email address nor an http(s) URL; {CONTACT_HOWTO}")


def is_musicbrainz_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "musicbrainz.org" or host.endswith(".musicbrainz.org")


def server_host(server: str) -> str:
    """The host of an http(s) server URL; UsageError for anything else."""
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"server {server!r} is not an http(s) URL (e.g. https://musicbrainz.org)")
    return parts.hostname


def check_rate(server: str, rate: float) -> None:
    """UsageError for a negative rate, or for musicbrainz.org above 1 req/s or unlimited (0)."""
    host = server_host(server)
    if rate < 0:
        raise UsageError(f"--rate must be 0 (unlimited) or more, not {rate}")
    if is_musicbrainz_host(host) and (rate == 0 or rate > 1.0):
        wanted = "unlimited (0)" if rate == 0 else f"{rate} req/s"
        raise UsageError(f"--rate {wanted} is refused for {host}: its limit is 1 request per second per IP; "
                         "use a mirror for more")


def user_agent(contact: str) -> str:
    return f"mbharvest/{__version__} ( {contact} )"


def check_mbid(mbid: str, what: str = "MBID") -> str:
    value = mbid.strip().lower() if isinstance(mbid, str) else ""
    if not MBID_PATTERN.match(value):
        raise UsageError(f"{what} {mbid!r} is not a valid MBID (a UUID like 5b11f4ce-a62d-471e-81fc-a69a8278c7da)")
    return value


def check_isrc(code: str) -> str:
    """The canonical ISRC (upper case, no hyphens or spaces); UsageError unless it has the shape CCXXXYYNNNNN."""
    value = normalize_isrc(code)
    if value is None:
        raise UsageError(f"ISRC {code!r} is not valid (12 characters: CC XXX YY NNNNN, e.g. GBAYE0601498)")
    return value


def check_includes(entity: str, includes: Iterable[str], vocabulary: Mapping[str, list[str]], what: str) -> list[str]:
    includes = [includes] if isinstance(includes, str) else list(includes)
    valid = vocabulary.get(entity, [])
    for inc in includes:
        if inc not in valid:
            raise UsageError(f"{inc!r} is not a valid include for {what} {entity} (valid: {', '.join(valid)})")
    return includes


def check_paging(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    if offset < 0:
        raise UsageError(f"offset must be 0 or more, not {offset}")


def check_choices(values: str | Iterable[str] | None, valid: list[str], what: str) -> list[str]:
    chosen = [] if values is None else [values] if isinstance(values, str) else list(values)
    for value in chosen:
        if value.lower() not in valid:
            raise UsageError(f"{value!r} is not a valid {what} (valid: {', '.join(valid)})")
    return [value.lower() for value in chosen]


def check_search(entity: str, query: str) -> None:
    fields = mbvocab.VALID_SEARCH_FIELDS.get(entity)
    if fields is None:
        raise UsageError(f"cannot search {entity!r} (searchable: {', '.join(mbvocab.VALID_SEARCH_FIELDS)})")
    if not query.strip():
        raise UsageError("the search query is empty")
    for field in SEARCH_FIELD_RE.findall(QUOTED_RE.sub('""', query)):
        if field.lower() not in fields:
            raise UsageError(f"{field!r} is not a search field for {entity} (valid: {', '.join(fields)})")


# ---- transient failures -------------------------------------------------------


class TransientFailure(Exception):
    """One attempt failed in a way another attempt may not (retried, never escapes the client).

    ``sent`` says whether the request reached a server (it is then counted)."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None, *,
                 sent: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.sent = sent


@dataclass(frozen=True)
class Redirect:
    """A 3xx answer: where it points (absolute) and its status."""

    location: str
    status: int


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def parse_body(response: requests.Response) -> dict[str, Any]:
    """The JSON object of a 200 reply; TransientFailure if it is HTML, cut, or not JSON."""
    content_type = response.headers.get("Content-Type", "")
    content = response.content
    if "html" in content_type or content.lstrip()[:1] == b"<":
        raise TransientFailure(f"HTML where JSON was expected (HTTP {response.status_code})", response.status_code)
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise TransientFailure(f"invalid or truncated JSON ({len(content)} bytes)", response.status_code) from None
    if not isinstance(body, dict):
        raise TransientFailure(f"JSON {type(body).__name__} where an object was expected", response.status_code)
    return body


def server_error_message(response: requests.Response) -> str | None:
    """What the body of an error answer says (its JSON "error", or its text), or None when it is empty."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())
        if text.startswith("<"):  # an HTML error page: its title says it
            title = re.search(r"<title>(.*?)</title>", response.text, re.IGNORECASE | re.DOTALL)
            text = " ".join(title.group(1).split()) if title else "an HTML page"
        return text[:200] or None
    return str(body.get("error", body)) if isinstance(body, dict) else str(body)


def describe_unavailable(response: requests.Response, retry_after: float | None) -> str:
    """A 503 in words: which of the front proxy's two kinds it is, what it said, and the wait it asked for.

    musicbrainz.org's proxy refuses either this IP (``X-RateLimit-Zone: ws
    ip=...``, Retry-After 1) or anyone while it sheds load (zone ``global``,
    Retry-After 0)."""
    zone = response.headers.get("X-RateLimit-Zone", "")
    if zone.startswith("ws ip"):
        kind = "rate limit for this IP"
    elif zone.startswith("global") or zone.startswith("search-global"):
        kind = "server busy, shedding load"
    else:
        kind = "service unavailable"
    wait = "no Retry-After" if retry_after is None else f"Retry-After {retry_after:g} s"
    said = server_error_message(response) or "an empty body"
    return f"HTTP 503, {kind} ({wait}): {said}"


def describe_network_failure(exc: requests.RequestException, url: str, timeout: tuple[float, float]
                             ) -> TransientFailure:
    """A failed connection in words, telling refused, unresolvable, TLS and timeouts apart.

    Refused, unresolved, TLS-failed and connect-timed-out attempts never sent
    the request (``sent=False``); a read timeout or a connection broken while
    answering did."""
    parts = urlsplit(url)
    host = parts.hostname or url
    where = f"{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    causes = _causes(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        detail = next((str(c) for c in causes if type(c).__module__ == "ssl"), str(exc))
        return TransientFailure(f"TLS handshake with {host} failed ({_short(detail)})", sent=False)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return TransientFailure(f"no connection to {where} within {timeout[0]:g} s (connect timeout)", sent=False)
    if isinstance(exc, requests.Timeout):
        return TransientFailure(f"{where} sent no answer within {timeout[1]:g} s (read timeout)")
    if any(isinstance(c, (urllib3.exceptions.NameResolutionError, socket.gaierror)) for c in causes):
        return TransientFailure(f"cannot resolve {host}", sent=False)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return TransientFailure(f"connection refused by {where}", sent=False)
    if any(isinstance(c, urllib3.exceptions.NewConnectionError) for c in causes):
        errno_error = next((c for c in causes if isinstance(c, OSError) and c.strerror), None)
        why = errno_error.strerror if errno_error else "no connection"
        return TransientFailure(f"cannot connect to {where} ({why})", sent=False)
    broken = next((c for c in reversed(causes) if isinstance(c, OSError) and not isinstance(
        c, (requests.RequestException, urllib3.exceptions.HTTPError))), None)
    why = type(broken).__name__ if broken else type(exc).__name__
    return TransientFailure(f"connection to {where} broken while answering ({why})")


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (cause, context, urllib3's ``reason``), outermost first."""
    found: list[BaseException] = []
    todo: list[object] = [exc]
    while todo:
        current = todo.pop(0)
        if not isinstance(current, BaseException) or any(current is seen for seen in found):
            continue  # (ssl.SSLError's ``reason`` is a string)
        found.append(current)
        todo += [getattr(current, "reason", None), current.__cause__, current.__context__]
        todo += [arg for arg in current.args if isinstance(arg, BaseException)]
    return found


def _short(text: str) -> str:
    return " ".join(text.split())[:160]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry: exponential backoff plus random jitter, at least Retry-After.

    A Retry-After of 0 (the proxy shedding load) still waits the backoff, so
    a busy server never meets a tight loop."""

    attempts: int = DEFAULT_ATTEMPTS
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    jitter: float = 1.0

    def wait(self, rng: random.Random) -> Callable[[tenacity.RetryCallState], float]:
        exponential = tenacity.wait_exponential(multiplier=self.backoff_base, max=self.backoff_max)

        def wait(state: tenacity.RetryCallState) -> float:
            backoff = exponential(state) + rng.uniform(0, self.jitter)
            failure = state.outcome.exception() if state.outcome else None
            retry_after = getattr(failure, "retry_after", None) or 0.0
            return max(backoff, retry_after)

        return wait


# ---- the client ------------------------------------------------------------------


class WS2Client:
    """WS/2 over one ``requests.Session``; methods return the parsed JSON object as the server sent it.

    A merged entity's lookup answers 301 to the survivor's URL; the client
    follows it and returns the survivor as-is: compare its ``id`` with the
    one asked for to record the redirect. ``requests_made`` counts requests
    that reached a server, ``attempts_made`` every attempt."""

    def __init__(
        self,
        server: str,
        contact: str | None,
        rate: float = 1.0,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 45.0,
        retry: RetryPolicy = RetryPolicy(),
        limiter: RateLimiter | None = None,
        cache_dir: str | Path | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self.contact = check_contact(contact)
        check_rate(server, rate)
        if limiter is not None:
            check_rate(server, limiter.rate)  # an injected limiter must obey the same ceiling
        self.server = server.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.retry = retry
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.limiter = limiter or RateLimiter(server_host(server), rate, cache_dir=cache_dir, clock=clock, sleep=sleep)
        self.session = session or requests.Session()
        self.session.headers.update({"User-Agent": user_agent(self.contact), "Accept": "application/json"})
        self.requests_made = 0
        self.attempts_made = 0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> "WS2Client":
        options: dict[str, Any] = {"connect_timeout": settings.connect_timeout, "read_timeout": settings.read_timeout}
        options.update(overrides)
        return cls(settings.server, settings.contact, settings.rate, **options)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "WS2Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- WS/2 calls ----

    def lookup(self, entity: str, mbid: str, includes: Iterable[str] = ()) -> dict[str, Any]:
        if entity not in LOOKUP_ENTITIES:
            raise UsageError(f"cannot look up {entity!r} (entities: {', '.join(LOOKUP_ENTITIES)})")
        mbid = check_mbid(mbid, f"{entity} MBID")
        incs = check_includes(entity, includes, mbvocab.VALID_INCLUDES, "a lookup of")
        return self.get(f"/ws/2/{entity}/{mbid}", {"inc": " ".join(incs)} if incs else {})

    def browse(
        self,
        entity: str,
        linked_entity: str,
        linked_mbid: str,
        includes: Iterable[str] = (),
        limit: int = 100,
        offset: int = 0,
        release_type: str | Iterable[str] | None = None,
        release_status: str | Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """One page; advance offset by the items returned (release pages with recordings are cut at 500 tracks)."""
        if entity not in BROWSE_LINKS:
            raise UsageError(f"cannot browse {entity!r} (browsable: {', '.join(BROWSE_LINKS)})")
        if linked_entity not in BROWSE_LINKS[entity]:
            raise UsageError(f"cannot browse {entity} by {linked_entity!r} (by: {', '.join(BROWSE_LINKS[entity])})")
        mbid = check_mbid(linked_mbid, f"{linked_entity} MBID")
        incs = check_includes(entity, includes, mbvocab.VALID_BROWSE_INCLUDES, "a browse of")
        check_paging(limit, offset)
        types = check_choices(release_type, mbvocab.VALID_RELEASE_TYPES, "release type")
        statuses = check_choices(release_status, mbvocab.VALID_RELEASE_STATUSES, "release status")
        if types and entity not in ("release", "release-group"):
            raise UsageError(f"release_type filters releases and release groups, not {entity}s")
        if statuses and entity != "release":
            raise UsageError(f"release_status filters releases, not {entity}s")
        params: dict[str, Any] = {linked_entity: mbid, "limit": limit, "offset": offset}
        if incs:
            params["inc"] = " ".join(incs)
        if types:
            params["type"] = "|".join(types)
        if statuses:
            params["status"] = "|".join(statuses)
        return self.get(f"/ws/2/{entity}", params)

    def search(self, entity: str, query: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        check_search(entity, query)
        check_paging(limit, offset)
        return self.get(f"/ws/2/{entity}", {"query": query, "limit": limit, "offset": offset})

    def isrc(self, code: str, includes: Iterable[str] = ()) -> dict[str, Any]:
        code = check_isrc(code)
        incs = check_includes("isrc", includes, mbvocab.VALID_INCLUDES, "an ISRC lookup, entity")
        return self.get(f"/ws/2/isrc/{code}", {"inc": " ".join(incs)} if incs else {})

    # ---- transport ----

    def get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """GET path with fmt=json, retrying transient failures and following
        redirects on the same host; raises typed errors only."""
        url: str | None = self.server + path
        query: Mapping[str, Any] | None = {**params, "fmt": "json"}
        for _hop in range(MAX_REDIRECTS + 1):
            answer = self._with_retries(url, query)
            if not isinstance(answer, Redirect):
                return answer
            url, query = self._redirect_target(self._full_url(url, query), answer), None
        raise RequestFailed(self._full_url(url, query), MAX_REDIRECTS + 1,
                            f"more than {MAX_REDIRECTS} redirects; not followed further")

    def _with_retries(self, url: str, query: Mapping[str, Any] | None) -> dict[str, Any] | Redirect:
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.attempts),
            wait=self.retry.wait(self.rng),
            retry=tenacity.retry_if_exception_type(TransientFailure),
            sleep=self.sleep,
            before_sleep=self._announce_retry,
            reraise=False,
        )
        try:
            return retrying(self.attempt, url, query)
        except tenacity.RetryError as exhausted:
            failure = exhausted.last_attempt.exception()
            attempts = exhausted.last_attempt.attempt_number
            error = ServiceUnavailable if getattr(failure, "status", None) == 503 else RequestFailed
            raise error(self._full_url(url, query), attempts, getattr(failure, "reason", str(failure))) from None

    def _announce_retry(self, state: tenacity.RetryCallState) -> None:
        """One warning per retry, as it happens (a terminal is not left silent for half a minute)."""
        failure = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        target = urlsplit(state.args[0]).path if state.args else ""
        log.warning("%s: %s [retry %d of %d in %.1f s]", target, getattr(failure, "reason", failure),
                    state.attempt_number, self.retry.attempts - 1, wait, extra={"retry": True})

    def _redirect_target(self, current: str, redirect: Redirect) -> str:
        """The absolute URL a redirect points to; RequestFailed if it leaves the server's host."""
        target = urljoin(current, redirect.location)
        parts = urlsplit(target)
        expected = urlsplit(self.server).hostname
        if parts.scheme not in ("http", "https") or (parts.hostname or "").lower() != (expected or "").lower():
            raise RequestFailed(current, 1, f"HTTP {redirect.status} to another host ({target}); "
                                            "not followed: mbharvest talks to the configured server only")
        return target

    @staticmethod
    def _full_url(url: str, query: Mapping[str, Any] | None) -> str:
        return requests.Request("GET", url, params=query).prepare().url or url

    def attempt(self, url: str, query: Mapping[str, Any] | None) -> dict[str, Any] | Redirect:
        """One request: wait for the shared limiter, send, classify the answer.

        Everything but the send is done before taking the slot: the limiter
        records the send time when it hands the slot over, and work done after
        that (preparing, reading proxy settings) would delay this request's
        arrival past the recorded time, bringing it closer to the next one."""
        request = self.session.prepare_request(requests.Request("GET", url, params=query))
        send_options = self.session.merge_environment_settings(request.url, {}, None, None, None)
        target = request.path_url
        self.limiter.acquire()
        self.attempts_made += 1
        started = time.monotonic()
        try:
            response = self.session.send(request, timeout=self.timeout, allow_redirects=False, **send_options)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:
            failure = describe_network_failure(exc, url, self.timeout)
            self.requests_made += int(failure.sent)
            log.info("GET %s -> %s after %.3fs", target, failure.reason, time.monotonic() - started)
            raise failure from None
        self.requests_made += 1
        status = response.status_code
        log.info("GET %s -> %d in %.3fs%s", target, status, time.monotonic() - started, rate_limit_note(response))
        if status == 200:
            return parse_body(response)
        if status == 404:
            raise NotFound(response.url)
        if status == 400:
            raise BadRequest(server_error_message(response) or "no reason given", url=response.url)
        if status in REDIRECT_STATUSES and response.headers.get("Location"):
            return Redirect(response.headers["Location"], status)
        if status == 503:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock())
            raise TransientFailure(describe_unavailable(response, retry_after), status, retry_after)
        said = server_error_message(response)
        reason = f"HTTP {status}: {said}" if said else f"HTTP {status} with an empty body"
        if status in RETRY_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock())
            raise TransientFailure(reason, status, retry_after)
        raise RequestFailed(response.url, 1, reason)


def rate_limit_note(response: requests.Response) -> str:
    """The X-RateLimit-* headers of an answer, for the -vv log (a shared pool on musicbrainz.org, not a budget)."""
    values = [(name.split("-")[-1].lower(), response.headers.get(name)) for name in RATE_LIMIT_HEADERS]
    shown = ", ".join(f"{name} {value}" for name, value in values if value is not None)
    return f" (X-RateLimit: {shown})" if shown else ""
