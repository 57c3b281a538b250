"""Settings: command-line option > environment variable > config file > default.

The config file's shape is declared once in CONFIG_SCHEMA; anything else in
the file (an unknown section or key, a value of the wrong type) is reported
with the file, the key and the type expected, before any work starts.
"""

from __future__ import annotations

import math
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
DEFAULT_DUMP_SERVER = "https://data.metabrainz.org/pub/musicbrainz/data/json-dumps"
DEFAULT_DUMP_DIR = Path("data/dumps")
DEFAULT_DUMP_KEEP = 1
DEFAULT_IMPORT_MEMORY_MB = 2048
# Two staging processes halve staging (the half of an import that parses);
# the summed memory stays within the budget (benchmarks/README.md).
DEFAULT_IMPORT_PROCESSES = min(2, os.cpu_count() or 1)

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
    # who makes archive packages (bag-info Source-Organization, Contact-Name, Contact-Email)
    "archive": {"organization": "string", "contact_name": "string", "contact_email": "string"},
    "dumps": {"server": "string", "dir": "string", "keep": "integer"},
    "import": {"memory_mb": "integer", "temp_dir": "string", "processes": "integer"},
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
    "dump_server": "MBHARVEST_DUMP_SERVER",
    "dump_dir": "MBHARVEST_DUMP_DIR",
    "dump_keep": "MBHARVEST_DUMP_KEEP",
    "import_memory_mb": "MBHARVEST_IMPORT_MEMORY_MB",
    "import_temp_dir": "MBHARVEST_IMPORT_TEMP_DIR",
    "import_processes": "MBHARVEST_IMPORT_PROCESSES",
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
    archive: dict[str, str] = field(default_factory=dict)  # the config's [archive] section
    dump_server: str = DEFAULT_DUMP_SERVER
    dump_dir: Path = DEFAULT_DUMP_DIR
    dump_keep: int = DEFAULT_DUMP_KEEP
    import_memory_mb: int = DEFAULT_IMPORT_MEMORY_MB  # import-dump's memory budget
    import_temp_dir: Path | None = None  # import-dump's staged runs (default: beside the database)
    import_processes: int = DEFAULT_IMPORT_PROCESSES  # import-dump's staging processes


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
    """The config file, checked. TOML is UTF-8; a byte-order mark (as some
    Windows editors write) is dropped; anything else is a ConfigError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
                          "TOML files must be saved as UTF-8") from None
    try:
        data = tomllib.loads(text)
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

    where: dict[str, str] = {}  # setting -> where its value came from, for messages

    def pick(name: str, kind: type, section: str, key: str, default: Any) -> Any:
        if options.get(name) is not None:
            where[name] = f"--{name.replace('_', '-')}"
            return options[name]
        env = _env_value(name, environ, kind)
        if env is not None:
            where[name] = ENV[name]
            return env
        value = config.get(section, {}).get(key)
        where[name] = f"{config_path}: [{section}] {key}"
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
        archive=dict(config.get("archive", {})),
        dump_server=str(pick("dump_server", str, "dumps", "server", DEFAULT_DUMP_SERVER)).rstrip("/"),
        dump_dir=Path(pick("dump_dir", str, "dumps", "dir", str(DEFAULT_DUMP_DIR))),
        dump_keep=int(pick("dump_keep", int, "dumps", "keep", DEFAULT_DUMP_KEEP)),
        import_memory_mb=int(pick("import_memory_mb", int, "import", "memory_mb", DEFAULT_IMPORT_MEMORY_MB)),
        import_temp_dir=(lambda value: Path(value) if value else None)(
            pick("import_temp_dir", str, "import", "temp_dir", None)),
        import_processes=int(pick("import_processes", int, "import", "processes", DEFAULT_IMPORT_PROCESSES)),
    )
    where["older_than_days"] = f"{config_path}: [refresh] older_than"
    for name, lowest, lowest_allowed, allowed in NUMBER_RULES:
        value = getattr(settings, name)
        if value is not None and (not math.isfinite(value) or value < lowest
                                  or (value == lowest and not lowest_allowed)):
            raise UsageError(f"{where[name]} must be {allowed}, not {value}")
    for index, search in enumerate(searches):
        if search.max_results is not None and search.max_results < 1:
            raise UsageError(f"{config_path}: [watch] searches[{index}].max_results must be 1 or more, "
                             f"not {search.max_results}")
    return settings


# What each numeric setting accepts: (name, lowest, whether the lowest itself is allowed, in words).
NUMBER_RULES = (
    ("rate", 0, True, "0 (unlimited) or more requests per second"),
    ("max_requests", 0, True, "0 or more requests"),
    ("max_runtime", 0, True, "0 or more seconds"),
    ("connect_timeout", 0, False, "more than 0 seconds"),
    ("read_timeout", 0, False, "more than 0 seconds"),
    ("older_than_days", 0, True, "0 or more days"),
    ("dump_keep", 0, True, "0 or more downloaded dumps"),
    ("import_memory_mb", 64, True, "at least 64 MB"),
    ("import_processes", 1, True, "at least 1 process"),
)
