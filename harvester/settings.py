"""Settings: command-line option > environment variable > config file > default.

The config file's shape is declared once in CONFIG_SCHEMA; anything else in
the file (an unknown section or key, a value of the wrong type) is reported
with the file, the key and the type expected, before any work starts.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from harvester.errors import ConfigError, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_CONFIG = Path("config/mbharvest.toml")
DEFAULT_DB = Path("data/musicbrainz.db")
DEFAULT_SERVER = "https://musicbrainz.org"
DEFAULT_RATE = 1.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 45.0
DEFAULT_OLDER_THAN_DAYS = 30.0
DEFAULT_IMPORT_MEMORY_MB = 2048

# type names used in messages: "string", "number", "integer", "boolean",
# "list of strings", "list of tables"
CONFIG_SCHEMA: dict[str, dict[str, str]] = {
    "client": {
        "contact": "string",
        "server": "string",
        "rate": "number",
        "connect_timeout": "number",
        "read_timeout": "number",
    },
    "database": {"path": "string"},
    "watch": {
        "artists": "list of strings",
        "labels": "list of strings",
        "release_groups": "list of strings",
        "releases": "list of strings",
        "recordings": "list of strings",
        "isrcs": "list of strings",
        "isrc_files": "list of strings",
        "searches": "list of tables",
    },
    "refresh": {
        "older_than": "number",
        "max_requests": "integer",
        "max_runtime": "number",
    },
    "licence": {"include_supplementary": "boolean"},
    "import": {"memory_mb": "integer", "temp_dir": "string"},
}

# keys of one [[watch.searches]] table
SEARCH_SCHEMA: dict[str, str] = {"entity": "string", "query": "string", "max_results": "integer"}

ENV = {
    "config": "MBHARVEST_CONFIG",
    "db": "MBHARVEST_DB",
    "server": "MBHARVEST_SERVER",
    "rate": "MBHARVEST_RATE",
    "contact": "MBHARVEST_CONTACT",
    "max_requests": "MBHARVEST_MAX_REQUESTS",
    "max_runtime": "MBHARVEST_MAX_RUNTIME",
    "connect_timeout": "MBHARVEST_CONNECT_TIMEOUT",
    "read_timeout": "MBHARVEST_READ_TIMEOUT",
    "include_supplementary": "MBHARVEST_INCLUDE_SUPPLEMENTARY",
    "import_memory_mb": "MBHARVEST_IMPORT_MEMORY_MB",
    "import_temp_dir": "MBHARVEST_IMPORT_TEMP_DIR",
}


@dataclass(frozen=True)
class WatchSearch:
    entity: str
    query: str
    max_results: int | None = None


@dataclass(frozen=True)
class Watchlist:
    artists: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    release_groups: tuple[str, ...] = ()
    releases: tuple[str, ...] = ()
    recordings: tuple[str, ...] = ()
    isrcs: tuple[str, ...] = ()
    isrc_files: tuple[str, ...] = ()
    searches: tuple[WatchSearch, ...] = ()

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in self.__dataclass_fields__)


@dataclass(frozen=True)
class Settings:
    db: Path = DEFAULT_DB
    server: str = DEFAULT_SERVER
    rate: float = DEFAULT_RATE
    contact: str | None = None
    max_requests: int | None = None
    max_runtime: float | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    include_supplementary: bool = False
    older_than_days: float = DEFAULT_OLDER_THAN_DAYS
    watch: Watchlist = field(default_factory=Watchlist)
    config_path: Path | None = None
    import_memory_mb: int = DEFAULT_IMPORT_MEMORY_MB  # import-dump's memory budget
    import_temp_dir: Path | None = None  # import-dump's staged runs (default: beside the database)


def _type_ok(value: Any, expected: str) -> bool:
    if expected == "string":
        return isinstance(value, str)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "list of strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if expected == "list of tables":
        return isinstance(value, list) and all(isinstance(v, dict) for v in value)
    raise AssertionError(expected)


def _a(type_name: str) -> str:
    return ("an " if type_name[0] in "aeiou" else "a ") + type_name


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def validate_config(data: Mapping[str, Any], path: Path) -> None:
    """Raise ConfigError naming the file and key of the first problem found."""
    for section, keys in data.items():
        if section not in CONFIG_SCHEMA:
            known = ", ".join(f"[{s}]" for s in CONFIG_SCHEMA)
            raise ConfigError(f"{path}: unknown section [{section}] (known: {known})")
        if not isinstance(keys, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        for key, value in keys.items():
            expected = CONFIG_SCHEMA[section].get(key)
            if expected is None:
                known = ", ".join(CONFIG_SCHEMA[section])
                raise ConfigError(f"{path}: unknown key {section}.{key} (known in [{section}]: {known})")
            if not _type_ok(value, expected):
                raise ConfigError(f"{path}: {section}.{key} must be {_a(expected)}, not {_describe(value)}")
    for index, search in enumerate(data.get("watch", {}).get("searches", [])):
        where = f"watch.searches[{index}]"
        for key, value in search.items():
            expected = SEARCH_SCHEMA.get(key)
            if expected is None:
                raise ConfigError(f"{path}: unknown key {where}.{key} (known: {', '.join(SEARCH_SCHEMA)})")
            if not _type_ok(value, expected):
                raise ConfigError(f"{path}: {where}.{key} must be {_a(expected)}, not {_describe(value)}")
        for key in ("entity", "query"):
            if key not in search:
                raise ConfigError(f"{path}: {where} needs a {key} ({SEARCH_SCHEMA[key]})")


def load_config(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    validate_config(data, path)
    return data


def _env_value(name: str, environ: Mapping[str, str], kind: type) -> Any:
    var = ENV[name]
    raw = environ.get(var)
    if raw is None or raw == "":
        return None
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError:
        raise UsageError(f"environment variable {var}={raw!r} is not a valid {kind.__name__}") from None


def resolve_settings(
    options: Mapping[str, Any], environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Settings:
    """Merge command-line options (None = not given), environment and config file."""
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd

    config_path: Path | None
    explicit = options.get("config") or environ.get(ENV["config"])
    if explicit:
        config_path = Path(explicit)
    elif (cwd / DEFAULT_CONFIG).exists():
        config_path = cwd / DEFAULT_CONFIG
    else:
        config_path = None
    config = load_config(config_path) if config_path else {}

    def pick(name: str, kind: type, section: str, key: str, default: Any) -> Any:
        if options.get(name) is not None:
            return options[name]
        env = _env_value(name, environ, kind)
        if env is not None:
            return env
        value = config.get(section, {}).get(key)
        return default if value is None else value

    watch = config.get("watch", {})
    searches = tuple(WatchSearch(s["entity"], s["query"], s.get("max_results")) for s in watch.get("searches", []))
    refresh = config.get("refresh", {})
    db_path = Path(pick("db", str, "database", "path", str(DEFAULT_DB)))
    settings = Settings(
        db=db_path,
        server=str(pick("server", str, "client", "server", DEFAULT_SERVER)).rstrip("/"),
        rate=float(pick("rate", float, "client", "rate", DEFAULT_RATE)),
        contact=pick("contact", str, "client", "contact", None),
        max_requests=pick("max_requests", int, "refresh", "max_requests", None),
        max_runtime=pick("max_runtime", float, "refresh", "max_runtime", None),
        connect_timeout=float(pick("connect_timeout", float, "client", "connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
        read_timeout=float(pick("read_timeout", float, "client", "read_timeout", DEFAULT_READ_TIMEOUT)),
        include_supplementary=bool(
            pick("include_supplementary", bool, "licence", "include_supplementary", False)
        ),
        older_than_days=float(refresh.get("older_than", DEFAULT_OLDER_THAN_DAYS)),
        watch=Watchlist(
            artists=tuple(watch.get("artists", ())),
            labels=tuple(watch.get("labels", ())),
            release_groups=tuple(watch.get("release_groups", ())),
            releases=tuple(watch.get("releases", ())),
            recordings=tuple(watch.get("recordings", ())),
            isrcs=tuple(watch.get("isrcs", ())),
            isrc_files=tuple(watch.get("isrc_files", ())),
            searches=searches,
        ),
        config_path=config_path,
        import_memory_mb=int(pick("import_memory_mb", int, "import", "memory_mb", DEFAULT_IMPORT_MEMORY_MB)),
        import_temp_dir=(lambda value: Path(value) if value else None)(
            pick("import_temp_dir", str, "import", "temp_dir", None)),
    )
    if settings.rate < 0:
        raise UsageError(f"--rate must be 0 (unlimited) or more, not {settings.rate}")
    if settings.import_memory_mb < 64:
        raise UsageError(f"the import's memory budget must be at least 64 MB, not {settings.import_memory_mb}")
    for name in ("max_requests", "max_runtime"):
        value = getattr(settings, name)
        if value is not None and value < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be 0 or more, not {value}")
    return settings
