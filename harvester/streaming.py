"""Links to streaming services: MusicBrainz's URL relationships, classified
by the URL's host.

MusicBrainz links artists, releases and recordings (and release groups,
labels, works) to pages on other sites. Whether a page is on a streaming
service is read from its host alone, with the list below: the host itself
or any subdomain of one of its `hosts` (open.spotify.com is Spotify), or a
host starting with one of its `prefixes` (music.amazon.co.uk is Amazon
Music). The first service that matches wins, so YouTube Music
(music.youtube.com) is told apart from YouTube. Shops are not streaming:
www.amazon.* (mail-order and download purchases) and beatport.com are not
listed; itunes.apple.com is, as Apple Music (MusicBrainz's older Apple
links, which open in Apple Music).

The same list makes the SQL of the `entity_url` view and of the
`streaming_links` statistics, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    name: str
    hosts: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def matches(self, host: str) -> bool:
        return (any(host == h or host.endswith("." + h) for h in self.hosts)
                or any(host.startswith(p) for p in self.prefixes))


STREAMING_SERVICES: tuple[Service, ...] = (
    Service("Spotify", ("spotify.com",)),
    Service("Apple Music", ("music.apple.com", "itunes.apple.com")),
    Service("Deezer", ("deezer.com",)),
    Service("Tidal", ("tidal.com", "tidalhifi.com")),
    Service("YouTube Music", ("music.youtube.com",)),
    Service("YouTube", ("youtube.com", "youtu.be")),
    Service("Amazon Music", prefixes=("music.amazon.",)),
    Service("Bandcamp", ("bandcamp.com",)),
    Service("SoundCloud", ("soundcloud.com",)),
    Service("Qobuz", ("qobuz.com",)),
    Service("Napster", ("napster.com",)),
    Service("Audiomack", ("audiomack.com",)),
    Service("Pandora", ("pandora.com",)),
    Service("Anghami", ("anghami.com",)),
    Service("Boomplay", ("boomplay.com", "boomplaymusic.com")),
    Service("JioSaavn", ("jiosaavn.com", "saavn.com")),
    Service("Yandex Music", prefixes=("music.yandex.",)),
    Service("NetEase Cloud Music", ("music.163.com",)),
    Service("QQ Music", ("y.qq.com",)),
    Service("KKBOX", ("kkbox.com",)),
)
SERVICE_NAMES = tuple(service.name for service in STREAMING_SERVICES)


def classify_host(host: str | None) -> str | None:
    """The streaming service a URL host belongs to, or None."""
    if not host:
        return None
    host = host.lower()
    return next((service.name for service in STREAMING_SERVICES if service.matches(host)), None)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def service_sql(host: str) -> str:
    """SQL (SQLite and DuckDB alike): the service of the host column `host`, or NULL."""
    cases = []
    for service in STREAMING_SERVICES:
        tests = [f"{host} = {_sql_text(h)} OR {host} LIKE {_sql_text('%.' + h)}" for h in service.hosts]
        tests += [f"{host} LIKE {_sql_text(p + '%')}" for p in service.prefixes]
        cases.append(f"WHEN {' OR '.join(tests)} THEN {_sql_text(service.name)}")
    return f"CASE {' '.join(cases)} END"
