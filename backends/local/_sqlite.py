"""SQLite plumbing of the local model registry: schema, and one connection per call.

WAL mode lets readers run while a writer commits; writes take the lock up front
(``BEGIN IMMEDIATE``) so that read-then-insert sequences cannot interleave across
processes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL, version INTEGER NOT NULL, model_file TEXT NOT NULL,
    sha256 TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS tags (
    name TEXT NOT NULL, version INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (name, version, key),
    FOREIGN KEY (name, version) REFERENCES versions (name, version));
CREATE TABLE IF NOT EXISTS aliases (
    name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES versions (name, version));
"""


@contextmanager
def connect(path: Path, busy_timeout: float) -> Iterator[sqlite3.Connection]:
    """A new autocommit connection to ``path`` (schema created on first use), closed after.

    Args:
        path: The database file; its folder is created if missing.
        busy_timeout: Seconds to wait for another process's lock before failing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # One connection per call: nothing is shared between threads or processes.
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    with closing(conn):
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            _create_schema(conn)
        yield conn


def _create_schema(conn: sqlite3.Connection) -> None:
    # WAL: readers never block the writer, and the setting sticks to the file.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def write(path: Path, busy_timeout: float) -> Iterator[sqlite3.Connection]:
    """A connection inside a write transaction: committed on success, rolled back on error."""
    with connect(path, busy_timeout) as conn:
        # IMMEDIATE takes the write lock up front: two processes cannot both read the
        # same MAX(version) and then both insert it.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


@contextmanager
def read(path: Path, busy_timeout: float) -> Iterator[sqlite3.Connection]:
    """A connection inside a read transaction: one consistent snapshot for several queries."""
    with connect(path, busy_timeout) as conn:
        conn.execute("BEGIN")  # one snapshot for the whole read
        try:
            yield conn
        finally:
            conn.execute("ROLLBACK")
