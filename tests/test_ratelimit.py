"""The shared limiter, driven by a fake clock so nothing sleeps for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvester.errors import UsageError
from harvester.ratelimit import RateLimiter, parse_record, record_name, wait_needed

from tests.conftest import FakeTime


def limiter(tmp_path: Path, fake: FakeTime, rate: float = 2.0, host: str = "example.org") -> RateLimiter:
    return RateLimiter(host, rate, cache_dir=tmp_path, clock=fake.clock, sleep=fake.sleep)


def test_spacing_is_one_over_rate(tmp_path):
    fake = FakeTime()
    lim = limiter(tmp_path, fake, rate=2.0)
    sent = []
    for _ in range(5):
        lim.acquire()
        sent.append(fake.now)
    gaps = [b - a for a, b in zip(sent, sent[1:])]
    assert gaps == pytest.approx([0.5] * 4)


def test_first_request_does_not_wait(tmp_path):
    fake = FakeTime()
    assert limiter(tmp_path, fake).acquire() == 0.0
    assert fake.sleeps == []


def test_no_wait_when_interval_already_passed(tmp_path):
    fake = FakeTime()
    lim = limiter(tmp_path, fake, rate=1.0)
    lim.acquire()
    fake.now += 5
    assert lim.acquire() == 0.0


def test_rate_zero_is_unlimited_and_touches_no_file(tmp_path):
    fake = FakeTime()
    lim = RateLimiter("example.org", 0, cache_dir=tmp_path / "never", clock=fake.clock, sleep=fake.sleep)
    for _ in range(100):
        assert lim.acquire() == 0.0
    assert fake.sleeps == []
    assert not (tmp_path / "never").exists()


def test_two_instances_on_one_dir_share_the_budget(tmp_path):
    fake = FakeTime()
    first, second = limiter(tmp_path, fake, rate=1.0), limiter(tmp_path, fake, rate=1.0)
    sent = []
    for lim in (first, second, first, second):
        lim.acquire()
        sent.append(fake.now)
    assert [b - a for a, b in zip(sent, sent[1:])] == pytest.approx([1.0, 1.0, 1.0])


def test_hosts_have_separate_budgets(tmp_path):
    fake = FakeTime()
    limiter(tmp_path, fake, host="a.example").acquire()
    assert limiter(tmp_path, fake, host="b.example").acquire() == 0.0


def test_record_in_the_far_future_costs_at_most_one_interval(tmp_path):
    fake = FakeTime()
    lim = limiter(tmp_path, fake, rate=1.0)
    lim.path.parent.mkdir(parents=True, exist_ok=True)
    lim.path.write_text(f"{fake.now + 3600}\n")  # written before the clock went back an hour
    assert lim.acquire() == pytest.approx(1.0)
    assert float(lim.path.read_text()) == pytest.approx(fake.now)


def test_stale_or_garbled_record_means_no_wait(tmp_path):
    fake = FakeTime()
    lim = limiter(tmp_path, fake)
    lim.path.parent.mkdir(parents=True, exist_ok=True)
    lim.path.write_text("not a time")
    assert lim.acquire() == 0.0
    lim.path.write_text(f"{fake.now - 86400}")
    assert lim.acquire() == 0.0


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MBHARVEST_CACHE_DIR", str(tmp_path / "env"))
    lim = RateLimiter("example.org", 1.0)
    assert lim.path.parent == tmp_path / "env"


def test_pure_helpers():
    assert wait_needed(0.0, 100.0, 1.0) == 0.0
    assert wait_needed(99.5, 100.0, 1.0) == pytest.approx(0.5)
    assert wait_needed(10_000.0, 100.0, 1.0) == 1.0
    assert parse_record("") == 0.0 and parse_record("12.5\n") == 12.5
    assert record_name("Beta.MusicBrainz.org") == "ratelimit-beta.musicbrainz.org.lock"
    assert "/" not in record_name("host/../x")


def test_negative_rate_refused(tmp_path):
    with pytest.raises(ValueError):
        RateLimiter("example.org", -1, cache_dir=tmp_path)


def test_unwritable_cache_dir_is_a_usage_error(tmp_path, fake_time):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    lim = RateLimiter("example.org", 1.0, cache_dir=blocker / "sub", clock=fake_time.clock, sleep=fake_time.sleep)
    with pytest.raises(UsageError, match="MBHARVEST_CACHE_DIR"):
        lim.acquire()
