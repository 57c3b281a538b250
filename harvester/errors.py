"""Typed library errors. Each carries the exit code the contract gives it;
only the CLI edge turns them into messages and exit codes."""

import signal

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 75


class HarvesterError(Exception):
    """Base of every error mbharvest reports to the user without a traceback."""

    exit_code = EXIT_FAILED


class UsageError(HarvesterError):
    """Bad usage or input: a malformed key, a missing contact, a bad option."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """The config file is unreadable or holds an unknown key or a wrong type."""


class DatabaseError(HarvesterError):
    """The database cannot be opened or written (not SQLite, read-only, disk full)."""


class LockHeld(HarvesterError):
    """Another run holds the database's lock."""

    exit_code = EXIT_LOCKED


class NormalizeError(HarvesterError):
    """A document has a shape the normalizer cannot use.

    Names the document (its kind and, where known, its id) so the user can
    find it; raised instead of letting a KeyError escape from deep inside."""

    def __init__(self, message: str, *, document: str = "document"):
        super().__init__(f"{document}: {message}")
        self.document = document


class BadRequest(UsageError):
    """The server refused the request as malformed (HTTP 400); retrying cannot help."""

    def __init__(self, message: str, *, url: str = ""):
        super().__init__(f"{url}: server says bad request: {message}" if url else message)
        self.server_message = message
        self.url = url


class NotFound(HarvesterError):
    """The entity does not exist (HTTP 404): deleted, or never existed."""

    def __init__(self, url: str):
        super().__init__(f"{url}: not found (deleted or never existed)")
        self.url = url


class RequestFailed(HarvesterError):
    """A request still failed after every attempt the retry policy allows."""

    def __init__(self, url: str, attempts: int, reason: str):
        super().__init__(f"{url}: failed after {attempts} attempts ({reason})")
        self.url = url
        self.attempts = attempts
        self.reason = reason


class ServiceUnavailable(RequestFailed):
    """The server kept answering 503 (rate limit or overload) until attempts ran out."""


class MissingExtra(HarvesterError):
    """An optional dependency (a pip extra such as `parquet`) is not installed;
    the message names the extra to install."""


class Interrupted(KeyboardInterrupt):
    """Stopped by a signal: Ctrl-C (SIGINT), SIGTERM (cron, systemd,
    `timeout`, `kill`) or SIGHUP (the terminal went away).

    A KeyboardInterrupt, so every stop is handled wherever Ctrl-C is: the
    page in flight is rolled back, the ledger row closed as interrupted,
    one line printed. The exit code is the contract's 1 (the run did not
    finish; its state is saved and a rerun continues), not the shells' 128 +
    the signal's number: tools that drive mbharvest know only 0, 1, 2 and 75."""

    def __init__(self, signum: int = signal.SIGINT):
        self.signal_name = signal.Signals(signum).name
        self.exit_code = EXIT_FAILED
        super().__init__(self.signal_name)


def as_interrupted(exc: KeyboardInterrupt) -> Interrupted:
    """A plain KeyboardInterrupt (no handler of ours installed) is a SIGINT."""
    return exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
