"""DuckDB with its SQLite extension, as a researcher runs it: `ATTACH 'db' (TYPE sqlite)`.

The extension normally downloads from DuckDB's extension server, which
tests never reach; the test extra installs it from the package registry
(`duckdb-extension-sqlite-scanner`, one wheel per DuckDB version), and this
loads it from there. Where it cannot be had the caller is skipped, saying why.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def extension_file() -> Path:
    duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed: pip install -e '.[test]'")
    try:
        import duckdb_extension_sqlite_scanner as package
    except ImportError:
        pytest.skip("DuckDB's SQLite extension is not installed (pip package duckdb-extension-sqlite-scanner, "
                    "in the test extra); DuckDB cannot download it here")
    wanted = Path(package.__file__).parent / "extensions" / f"v{duckdb.__version__}" / "sqlite_scanner.duckdb_extension"
    if not wanted.is_file():
        found = sorted(p.parent.name for p in Path(package.__file__).parent.rglob("*.duckdb_extension"))
        pytest.skip(f"the installed SQLite extension is built for DuckDB {', '.join(found) or 'nothing'}, "
                    f"not {duckdb.__version__}: install matching duckdb and duckdb-extension-sqlite-scanner")
    return wanted


def attach(db_path: Path, alias: str = "mb"):
    """A DuckDB connection with the SQLite file attached read-only as `alias`."""
    import duckdb

    connection = duckdb.connect(config={"autoinstall_known_extensions": False})
    connection.execute(f"LOAD '{extension_file()}'")
    connection.execute(f"ATTACH '{db_path}' AS {alias} (TYPE sqlite, READ_ONLY)")
    return connection
