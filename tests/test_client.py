"""WS2Client against the emulator: identity, validation before spending, retries, typed errors."""

from __future__ import annotations

import logging
import re
import socket

import pytest
import requests

from harvester.client import (
    MAX_REDIRECTS, RetryPolicy, WS2Client, check_contact, check_rate, normalize_isrc, parse_retry_after, user_agent,
)
from harvester.emulator import Emulator
from harvester.emulator.exchange import Reply, Request
from harvester.errors import BadRequest, NotFound, RequestFailed, ServiceUnavailable, UsageError
from harvester.ratelimit import RateLimiter
from harvester.settings import Settings

from tests.conftest import CONTACT, FakeTime


def client_for(emu: Emulator, fake_time: FakeTime, **options) -> WS2Client:
    options.setdefault("read_timeout", 0.5)
    return WS2Client(emu.url, CONTACT, 0, clock=fake_time.clock, sleep=fake_time.sleep, **options)


def first(mapping):
    return next(iter(mapping))


# ---- identity and rate checks ----


@pytest.mark.parametrize("contact", ["me@example.org", "https://example.org/me", "http://example.org"])
def test_good_contacts(contact):
    assert check_contact(f" {contact} ") == contact


@pytest.mark.parametrize("contact", [None, "", "   ", "me", "me@", "ftp://example.org", "https://", "example.org"])
def test_bad_contacts_explain_how_to_set_it(contact):
    with pytest.raises(UsageError) as raised:
        check_contact(contact)
    message = str(raised.value)
    assert "--contact" in message and "MBHARVEST_CONTACT" in message and "[client] contact" in message
    assert "\n" not in message


@pytest.mark.parametrize("server, rate", [
    ("https://musicbrainz.org", 2.0), ("https://musicbrainz.org", 0), ("https://beta.musicbrainz.org", 1.5),
    ("http://MusicBrainz.org/", 0), ("http://localhost:5000", -1), ("ftp://mirror", 1.0),
])
def test_refused_rates(server, rate):
    with pytest.raises(UsageError):
        check_rate(server, rate)


@pytest.mark.parametrize("server, rate", [
    ("https://musicbrainz.org", 1.0), ("https://musicbrainz.org", 0.5), ("http://localhost:5000", 0),
    ("http://localhost:5000", 50), ("https://notmusicbrainz.org", 5),
])
def test_allowed_rates(server, rate):
    check_rate(server, rate)


def test_constructor_refuses_without_contact_or_with_fast_rate(emulator, tmp_path):
    with pytest.raises(UsageError):
        WS2Client(emulator.url, None, 0)
    with pytest.raises(UsageError):
        WS2Client(emulator.url, "not a contact", 0)
    with pytest.raises(UsageError):
        WS2Client("https://musicbrainz.org", CONTACT, 2.0, cache_dir=str(tmp_path))
    with pytest.raises(UsageError):
        WS2Client("https://musicbrainz.org", CONTACT, 1.0, limiter=RateLimiter("musicbrainz.org", 5, cache_dir=tmp_path))
    assert emulator.requests == []


def test_user_agent_sent(emulator, corpus, fake_time):
    client_for(emulator, fake_time).lookup("artist", first(corpus.artists))
    (entry,) = emulator.requests
    assert entry["user_agent"] == user_agent(CONTACT) == f"mbharvest/0.2.0 ( {CONTACT} )"
    assert "fmt=json" in entry["path"]


def test_from_settings(emulator, corpus, tmp_path):
    settings = Settings(server=emulator.url, contact=CONTACT, rate=0, connect_timeout=3, read_timeout=7)
    client = WS2Client.from_settings(settings)
    assert client.timeout == (3, 7)
    assert client.lookup("label", first(corpus.labels))["id"] == first(corpus.labels)
    with pytest.raises(UsageError):
        WS2Client.from_settings(Settings(contact=None))


# ---- validation before spending a request ----


@pytest.mark.parametrize("call", [
    lambda c: c.lookup("artist", "not-an-mbid"),
    lambda c: c.lookup("artist", "5b11f4ce-a62d-471e-81fc-a69a8278c7d"),
    lambda c: c.lookup("artists", "5b11f4ce-a62d-471e-81fc-a69a8278c7da"),
    lambda c: c.lookup("artist", "5b11f4ce-a62d-471e-81fc-a69a8278c7da", ["bogus"]),
    lambda c: c.lookup("artist", "5b11f4ce-a62d-471e-81fc-a69a8278c7da", "recordings "),
    lambda c: c.browse("recording", "label", "5b11f4ce-a62d-471e-81fc-a69a8278c7da"),
    lambda c: c.browse("artist", "release", "5b11f4ce-a62d-471e-81fc-a69a8278c7da"),
    lambda c: c.browse("release", "artist", "5b11f4ce-a62d-471e-81fc-a69a8278c7da", ["ratings"]),
    lambda c: c.browse("release", "artist", "5b11f4ce-a62d-471e-81fc-a69a8278c7da", limit=101),
    lambda c: c.browse("release", "artist", "5b11f4ce-a62d-471e-81fc-a69a8278c7da", offset=-1),
    lambda c: c.browse("release", "artist", "5b11f4ce-a62d-471e-81fc-a69a8278c7da", release_type="lp"),
    lambda c: c.browse("release", "artist", "5b11f4ce-a62d-471e-81fc-a69a8278c7da", release_status="gone"),
    lambda c: c.browse("recording", "artist", "5b11f4ce-a62d-471e-81fc-a69a8278c7da", release_status="official"),
    lambda c: c.browse("release", "artist", "zz"),
    lambda c: c.search("recording", "bogusfield:x"),
    lambda c: c.search("recording", "   "),
    lambda c: c.search("cdstubs", "x"),
    lambda c: c.isrc("GB-AYE-06-0149"),
    lambda c: c.isrc("GBAYE0601498", ["recordings"]),
])
def test_invalid_arguments_spend_no_request(emulator, fake_time, call):
    client = client_for(emulator, fake_time)
    with pytest.raises(UsageError):
        call(client)
    assert client.requests_made == 0
    assert emulator.requests == []


def test_isrc_normalized_and_quoted_fields_ignored(emulator, corpus, fake_time):
    assert normalize_isrc("gb-aye-06-01498") == "GBAYE0601498"
    client = client_for(emulator, fake_time)
    assert client.search("recording", 'recording:"a: b" AND isrc:GBAYE0601498')["count"] == 0


# ---- answers ----


def test_lookup_browse_search_isrc(emulator, corpus, fake_time):
    client = client_for(emulator, fake_time)
    artist = first(corpus.artists)
    assert client.lookup("artist", artist.upper())["id"] == artist
    page = client.browse("release", "artist", artist, ["recordings", "isrcs"], limit=100, release_status="official")
    assert page["release-offset"] == 0 and page["releases"]
    assert all(r["status"] == "Official" for r in page["releases"])
    code = next(c for rec in corpus.recordings.values() for c in rec["isrcs"])
    assert any(code in rec["isrcs"] for rec in client.isrc(code, ["isrcs"])["recordings"])
    found = client.search("recording", f"isrc:{code}")
    assert found["count"] >= 1 and found["recordings"][0]["score"] == 100
    assert client.requests_made == len(emulator.requests) == 4


def test_merged_id_returns_survivor_as_is(emulator, corpus, fake_time):
    old, new = next(iter(corpus.redirects["artist"].items()))
    client = client_for(emulator, fake_time)
    assert client.lookup("artist", old, ["aliases"])["id"] == new
    assert [(e["status"], e["path"]) for e in emulator.requests] == [
        (301, f"/ws/2/artist/{old}?inc=aliases&fmt=json"), (200, f"/ws/2/artist/{new}?inc=aliases&fmt=json")]
    assert client.requests_made == 2


# ---- redirects: followed by the client, never by the HTTP library ----


def test_a_redirect_hop_waits_its_turn_at_the_limiter_and_counts(corpus, fake_time, tmp_path):
    old, new = next(iter(corpus.redirects["recording"].items()))
    with Emulator(corpus) as emu:
        client = WS2Client(emu.url, CONTACT, 1.0, cache_dir=str(tmp_path), clock=fake_time.clock,
                           sleep=fake_time.sleep)
        assert client.lookup("recording", old)["id"] == new
        assert [e["status"] for e in emu.requests] == [301, 200]
    assert client.requests_made == 2
    assert fake_time.sleeps == [pytest.approx(1.0)]  # the hop paid a full interval, like any request


def redirecting_app(location: str):
    def app(request: Request) -> Reply:
        return Reply(301, b"{}", headers=(("Location", location),))
    return app


def test_a_redirect_to_another_host_is_refused(corpus, fake_time):
    with Emulator(corpus, apps={"/ws/2/artist/": redirecting_app("http://elsewhere.example/ws/2/artist/x")}) as emu:
        client = client_for(emu, fake_time)
        with pytest.raises(RequestFailed) as raised:
            client.lookup("artist", first(corpus.artists))
        assert len(emu.requests) == 1
    assert "to another host (http://elsewhere.example/ws/2/artist/x)" in str(raised.value)


def test_redirects_stop_after_a_few_hops(corpus, fake_time):
    artist = first(corpus.artists)
    with Emulator(corpus, apps={"/ws/2/artist/": redirecting_app(f"/ws/2/artist/{artist}?fmt=json")}) as emu:
        client = client_for(emu, fake_time)
        with pytest.raises(RequestFailed, match=f"more than {MAX_REDIRECTS} redirects"):
            client.lookup("artist", artist)
        assert len(emu.requests) == client.requests_made == MAX_REDIRECTS + 1


# ---- the two kinds of 503 ----


def test_both_kinds_of_503_are_recovered_from_with_the_waits_they_ask_for(corpus, fake_time, caplog):
    artist = first(corpus.artists)
    with Emulator(corpus, faults={1: "503", 2: "busy"}) as emu:
        client = client_for(emu, fake_time, retry=RetryPolicy(backoff_base=0.25, jitter=0))
        with caplog.at_level(logging.WARNING, logger="harvester.client"):
            assert client.lookup("artist", artist)["id"] == artist
        assert client.requests_made == 3 == len(emu.requests)
    # per IP: Retry-After 1 beats the 0.25 s backoff; load shedding: Retry-After 0, the backoff still waits
    assert fake_time.sleeps == [1.0, 0.5]
    first_retry, second_retry = [r.getMessage() for r in caplog.records if getattr(r, "retry", False)]
    assert "HTTP 503, rate limit for this IP (Retry-After 1 s): Your requests are exceeding" in first_retry
    assert "HTTP 503, server busy, shedding load (Retry-After 0 s): The MusicBrainz web server is currently busy" \
        in second_retry


def test_a_503_says_what_it_is_when_retries_run_out(corpus, fake_time):
    with Emulator(corpus, faults={n: "busy" for n in range(1, 5)}) as emu:
        client = client_for(emu, fake_time, retry=RetryPolicy(attempts=2, jitter=0))
        with pytest.raises(ServiceUnavailable) as raised:
            client.lookup("artist", first(corpus.artists))
    message = str(raised.value)
    assert "HTTP 503: HTTP 503" not in message
    assert "failed after 2 attempts (HTTP 503, server busy, shedding load (Retry-After 0 s): " \
           "The MusicBrainz web server is currently busy. Please try again later.)" in message


def test_an_empty_error_body_is_said_so(corpus, fake_time):
    def empty(request: Request) -> Reply:
        return Reply(503, b"", content_type="text/plain")

    with Emulator(corpus, apps={"/ws/2/artist/": empty}) as emu:
        with pytest.raises(ServiceUnavailable) as raised:
            client_for(emu, fake_time, retry=RetryPolicy(attempts=1)).lookup("artist", first(corpus.artists))
    assert "HTTP 503, service unavailable (no Retry-After): an empty body" in str(raised.value)


def test_404_is_not_found_and_not_retried(emulator, fake_time):
    client = client_for(emulator, fake_time)
    with pytest.raises(NotFound) as raised:
        client.lookup("recording", "5b11f4ce-a62d-471e-81fc-a69a8278c7da")
    assert "5b11f4ce-a62d-471e-81fc-a69a8278c7da" in str(raised.value)
    assert client.requests_made == 1 and len(emulator.requests) == 1
    assert fake_time.sleeps == []


def test_400_is_bad_request_with_server_message(emulator, fake_time):
    client = client_for(emulator, fake_time)
    with pytest.raises(BadRequest) as raised:
        client.get("/ws/2/artist/not-an-mbid", {})  # the raw transport, past the client's own checks
    assert raised.value.server_message == "Invalid mbid."
    assert raised.value.exit_code == 2
    assert client.requests_made == 1


# ---- faults and retries ----


@pytest.mark.parametrize("fault", ["503", "500", "502", "reset", "slow", "truncated", "html", "html502", "badjson"])
def test_each_fault_is_recovered_from(corpus, fake_time, fault):
    artist = first(corpus.artists)
    with Emulator(corpus, faults={1: fault}, slow_seconds=1.0) as emu:
        client = client_for(emu, fake_time, read_timeout=0.3)
        assert client.lookup("artist", artist)["id"] == artist
        assert client.requests_made == 2
        assert [e["fault"] for e in emu.requests] == [fault, ""]
    assert len(fake_time.sleeps) == 1


def test_waits_at_least_retry_after(corpus, fake_time):
    with Emulator(corpus, faults={1: "503:7"}) as emu:
        client = client_for(emu, fake_time, retry=RetryPolicy(backoff_base=0.01, jitter=0.01))
        client.lookup("artist", first(corpus.artists))
    assert fake_time.sleeps and fake_time.sleeps[0] >= 7


def test_waits_retry_after_for_real(corpus):
    with Emulator(corpus, faults={1: "503:1"}) as emu:
        client = WS2Client(emu.url, CONTACT, 0, retry=RetryPolicy(backoff_base=0.01, jitter=0.01))
        client.lookup("artist", first(corpus.artists))
        arrivals = [e["monotonic"] for e in emu.requests]
    assert arrivals[1] - arrivals[0] >= 1.0


def test_backoff_grows(corpus, fake_time):
    faults = {n: "500" for n in range(1, 5)}
    with Emulator(corpus, faults=faults) as emu:
        client_for(emu, fake_time, retry=RetryPolicy(jitter=0)).lookup("artist", first(corpus.artists))
    assert fake_time.sleeps == [1, 2, 4, 8]


def test_exhausted_retries_raise_typed_error(corpus, fake_time):
    with Emulator(corpus, faults={n: "503" for n in range(1, 10)}) as emu:
        client = client_for(emu, fake_time, retry=RetryPolicy(attempts=3))
        with pytest.raises(ServiceUnavailable) as raised:
            client.lookup("artist", first(corpus.artists))
    assert raised.value.attempts == 3 and client.requests_made == 3
    assert "3 attempts" in str(raised.value) and "/ws/2/artist/" in str(raised.value)
    with Emulator(corpus, faults={n: "reset" for n in range(1, 10)}) as emu:
        client = client_for(emu, fake_time, retry=RetryPolicy(attempts=2))
        with pytest.raises(RequestFailed) as raised:
            client.lookup("artist", first(corpus.artists))
    assert not isinstance(raised.value, ServiceUnavailable)
    assert "2 attempts" in str(raised.value) and "broken while answering" in str(raised.value)


def test_every_attempt_pays_the_limiter(corpus, fake_time, tmp_path):
    with Emulator(corpus, faults={1: "500", 2: "500"}) as emu:
        client = WS2Client(emu.url, CONTACT, 1.0, cache_dir=str(tmp_path), clock=fake_time.clock,
                           sleep=fake_time.sleep, retry=RetryPolicy(backoff_base=0.01, jitter=0))
        client.lookup("artist", first(corpus.artists))
    assert client.requests_made == 3
    # each retry's backoff (0.01 s, 0.02 s) is topped up by the limiter to a full second
    assert sum(fake_time.sleeps) == pytest.approx(2.0)


def test_requests_are_logged_with_the_rate_limit_headers(emulator, corpus, fake_time, caplog):
    with caplog.at_level(logging.INFO, logger="harvester.client"):
        client_for(emulator, fake_time).lookup("artist", first(corpus.artists))
    (record,) = [r for r in caplog.records if r.name == "harvester.client"]
    assert "GET /ws/2/artist/" in record.getMessage() and "-> 200 in" in record.getMessage()
    assert re.search(r"\(X-RateLimit: limit 1200, remaining \d+, reset \d+\)$", record.getMessage())


def test_parse_retry_after():
    assert parse_retry_after("3", 0) == 3.0
    assert parse_retry_after(None, 0) is None and parse_retry_after("soon", 0) is None
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", 90.0) == pytest.approx(10.0)


# ---- network failures: told apart, retried visibly, not counted as requests ----


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def offline_client(server: str, fake_time: FakeTime, attempts: int = 3) -> WS2Client:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment between the test and its target
    return WS2Client(server, CONTACT, 0, clock=fake_time.clock, sleep=fake_time.sleep, session=session,
                     retry=RetryPolicy(attempts=attempts, jitter=0), connect_timeout=2, read_timeout=2)


def test_connection_refused_is_named_retried_visibly_and_not_counted(fake_time, caplog):
    port = closed_port()
    client = offline_client(f"http://127.0.0.1:{port}", fake_time)
    with caplog.at_level(logging.WARNING, logger="harvester.client"), pytest.raises(RequestFailed) as raised:
        client.lookup("artist", "5b11f4ce-a62d-471e-81fc-a69a8278c7da")
    assert f"connection refused by 127.0.0.1:{port}" in str(raised.value)
    assert "3 attempts" in str(raised.value)
    assert client.requests_made == 0 and client.attempts_made == 3
    retries = [r.getMessage() for r in caplog.records if getattr(r, "retry", False)]
    assert len(retries) == 2 == len(fake_time.sleeps)
    assert all(f"connection refused by 127.0.0.1:{port}" in line for line in retries)
    assert "[retry 1 of 2 in 1.0 s]" in retries[0] and "[retry 2 of 2 in 2.0 s]" in retries[1]


def test_unresolvable_host_is_named_and_not_counted(fake_time, monkeypatch):
    def no_dns(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    client = offline_client("http://mirror.example.invalid:5000", fake_time, attempts=2)
    with pytest.raises(RequestFailed) as raised:
        client.lookup("artist", "5b11f4ce-a62d-471e-81fc-a69a8278c7da")
    assert "cannot resolve mirror.example.invalid" in str(raised.value)
    assert client.requests_made == 0 and client.attempts_made == 2


def test_tls_failure_is_named_and_not_counted(emulator, fake_time):
    plain = emulator.url.replace("http://", "https://")  # TLS spoken to a plain HTTP server
    client = offline_client(plain, fake_time, attempts=2)
    with pytest.raises(RequestFailed) as raised:
        client.lookup("artist", "5b11f4ce-a62d-471e-81fc-a69a8278c7da")
    assert "TLS handshake with 127.0.0.1 failed (" in str(raised.value)
    assert client.requests_made == 0 and emulator.requests == []


def test_a_broken_answer_was_sent_and_counts(corpus, fake_time):
    with Emulator(corpus, faults={1: "reset"}) as emu:
        client = client_for(emu, fake_time)
        client.lookup("artist", first(corpus.artists))
    assert client.requests_made == 2 == len(emu.requests)


@pytest.mark.usefixtures("isolated")
def test_the_final_error_is_printed_once_at_vv(tmp_path):
    from click.testing import CliRunner

    from harvester.cli import cli

    result = CliRunner().invoke(cli, ["harvest", "recording", "5b11f4ce-a62d-471e-81fc-a69a8278c7da", "-vv",
                                      "--server", "ftp://mirror.example", "--contact", CONTACT,
                                      "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2
    assert result.output.count("is not an http(s) URL") == 1, result.output
