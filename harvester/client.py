"""A thin, polite WS/2 JSON client: identified, rate-limited across processes, retrying.

Every argument is checked against musicbrainzngs' vocabulary before a
rate-limited request is spent on it. Every attempt (retries included) first
waits its turn at the shared limiter and is counted in ``requests_made``.
Transient failures (503/502/500/504, connection errors, timeouts, cut or
invalid JSON, HTML where JSON was expected) are retried with exponential
backoff and jitter, never sooner than the server's ``Retry-After``; 404 and
400 are answers, not accidents, and are raised at once.
"""

from __future__ import annotations

import logging
import random
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

import musicbrainzngs.musicbrainz as mbvocab
import orjson
import requests
import tenacity

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
DEFAULT_ATTEMPTS = 6


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
    """One attempt failed in a way another attempt may not (retried, never escapes the client)."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


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


def server_error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or f"HTTP {response.status_code}"
    return str(body.get("error", body)) if isinstance(body, dict) else str(body)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry: exponential backoff plus random jitter, at least Retry-After."""

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

    A merged entity's lookup returns the survivor as-is: compare its ``id``
    with the one asked for to record the redirect."""

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
        """GET path with fmt=json, retrying transient failures; raises typed errors only."""
        url = self.server + path
        query = {**params, "fmt": "json"}
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.attempts),
            wait=self.retry.wait(self.rng),
            retry=tenacity.retry_if_exception_type(TransientFailure),
            sleep=self.sleep,
            reraise=False,
        )
        try:
            return retrying(self.attempt, url, query)
        except tenacity.RetryError as exhausted:
            failure = exhausted.last_attempt.exception()
            attempts = exhausted.last_attempt.attempt_number
            where = requests.Request("GET", url, params=query).prepare().url or url
            error = ServiceUnavailable if getattr(failure, "status", None) == 503 else RequestFailed
            raise error(where, attempts, getattr(failure, "reason", str(failure))) from None

    def attempt(self, url: str, query: Mapping[str, Any]) -> dict[str, Any]:
        """One request: wait for the shared limiter, send, classify the answer."""
        self.limiter.acquire()
        self.requests_made += 1
        started = time.monotonic()
        target = requests.Request("GET", url, params=query).prepare().path_url
        try:
            response = self.session.get(url, params=query, timeout=self.timeout)
        except requests.Timeout as exc:
            log.info("GET %s -> timeout after %.3fs", target, time.monotonic() - started)
            raise TransientFailure(f"timed out ({type(exc).__name__})") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:
            log.info("GET %s -> connection failed after %.3fs", target, time.monotonic() - started)
            raise TransientFailure(f"connection failed ({type(exc).__name__})") from None
        status = response.status_code
        log.info("GET %s -> %d in %.3fs", target, status, time.monotonic() - started)
        if status == 200:
            return parse_body(response)
        if status == 404:
            raise NotFound(response.url)
        if status == 400:
            raise BadRequest(server_error_message(response), url=response.url)
        if status in RETRY_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock())
            raise TransientFailure(f"HTTP {status}: {server_error_message(response)}", status, retry_after)
        raise RequestFailed(response.url, 1, f"HTTP {status}: {server_error_message(response)}")
