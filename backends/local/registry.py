"""A model registry on SQLite plus artifact folders, safe for several processes.

Layout under ``root``: ``registry.sqlite`` (versions, tags, aliases) and
``artifacts/<name>/<version>/`` (a copy of each registered folder).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from backends.local import _sqlite
from core.interfaces import BackendError, IntegrityError, ModelVersion, NotFoundError
from training.artifacts import sha256_file

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class LocalModelRegistry:
    """``ModelRegistry`` kept in ``root`` (a folder; created on first use).

    Args:
        root: Folder holding ``registry.sqlite`` and ``artifacts/``.
        busy_timeout: Seconds a call waits for another process's write lock.
    """

    def __init__(self, root: Path, busy_timeout: float = 30.0) -> None:
        self.root = root
        self.db_path = root / "registry.sqlite"
        self.artifacts = root / "artifacts"
        self._busy_timeout = busy_timeout

    # ------------------------------------------------------------------ writes
    def register(
        self, name: str, artifact_dir: Path, model_file: str, tags: dict[str, str]
    ) -> ModelVersion:
        """Store a copy of ``artifact_dir`` as the next version of ``name``.

        Args:
            name: Model name (letters, digits, ``.``, ``_``, ``-``).
            artifact_dir: Folder to copy.
            model_file: The model file, relative to ``artifact_dir``; its sha256 is recorded.
            tags: Tags of the new version.

        Returns:
            The new version ("1", "2", ...).
        """
        return self._register(name, artifact_dir, model_file, tags, None)

    def register_output(
        self, name: str, output_uri: str, model_file: str, sha256: str, tags: dict[str, str]
    ) -> ModelVersion:
        """Store a copy of a local job's model folder (a ``file://`` URI) as the next version.

        Raises:
            IntegrityError: The copied model file's digest is not ``sha256`` (nothing is
                registered).
        """
        return self._register(name, local_folder(output_uri), model_file, tags, sha256)

    def _register(
        self,
        name: str,
        artifact_dir: Path,
        model_file: str,
        tags: dict[str, str],
        expected: str | None,
    ) -> ModelVersion:
        check_name(name, "model name")
        check_tags(tags)
        source = artifact_dir / model_file
        if Path(model_file).is_absolute() or ".." in Path(model_file).parts:
            raise ValueError(f"model_file must be relative to the artifact folder: {model_file!r}")
        if not source.is_file():
            raise NotFoundError(f"model file {source} does not exist")
        # Copy outside the lock (it can be slow), then move it into place under the lock.
        staging = self.artifacts / ".staging" / uuid.uuid4().hex
        shutil.copytree(artifact_dir, staging)
        try:
            digest = sha256_file(staging / model_file)
            if expected is not None and digest != expected:
                raise IntegrityError(
                    f"{artifact_dir / model_file} has sha256 {digest}; the job recorded {expected}"
                )
            created = datetime.now(UTC)
            with _sqlite.write(self.db_path, self._busy_timeout) as db:
                row = db.execute(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE name = ?", (name,)
                ).fetchone()
                version = int(row[0])
                target = self.artifacts / name / str(version)
                # A leftover from a crash between move and commit: no row points at it.
                shutil.rmtree(target, ignore_errors=True)
                target.parent.mkdir(parents=True, exist_ok=True)
                staging.rename(target)
                try:
                    db.execute(
                        "INSERT INTO versions VALUES (?, ?, ?, ?, ?)",
                        (name, version, model_file, digest, created.isoformat()),
                    )
                    db.executemany(
                        "INSERT INTO tags VALUES (?, ?, ?, ?)",
                        [(name, version, k, v) for k, v in tags.items()],
                    )
                except BaseException:
                    shutil.rmtree(target, ignore_errors=True)
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.get(name, str(version))

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (moving it from any other version, atomically)."""
        check_name(alias, "alias")
        with _sqlite.write(self.db_path, self._busy_timeout) as db:
            number = self._existing(db, name, version)
            db.execute(
                "INSERT INTO aliases VALUES (?, ?, ?) "
                "ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
                (name, alias, number),
            )

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` from ``name``; a no-op if it is not set."""
        with _sqlite.write(self.db_path, self._busy_timeout) as db:
            db.execute("DELETE FROM aliases WHERE name = ? AND alias = ?", (name, alias))

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        """Add tags to a version, replacing the values of keys it already has."""
        check_tags(tags)
        with _sqlite.write(self.db_path, self._busy_timeout) as db:
            number = self._existing(db, name, version)
            db.executemany(
                "INSERT INTO tags VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
                [(name, number, k, v) for k, v in tags.items()],
            )

    # ------------------------------------------------------------------ reads
    def get(self, name: str, version: str) -> ModelVersion:
        """One version (``NotFoundError`` if it does not exist)."""
        with _sqlite.read(self.db_path, self._busy_timeout) as db:
            number = self._existing(db, name, version)
            return self._load(db, name, [number])[0]

    def list_versions(self, name: str) -> list[ModelVersion]:
        """All versions of ``name``, oldest first (empty for an unknown name)."""
        return self.find(name, {})

    def find(self, name: str, tags: dict[str, str]) -> list[ModelVersion]:
        """Versions of ``name`` whose tags include every given key/value, oldest first."""
        with _sqlite.read(self.db_path, self._busy_timeout) as db:
            if tags:
                # A version qualifies when it matches as many tag rows as tags were asked for.
                match = " OR ".join(["(key = ? AND value = ?)"] * len(tags))
                rows = db.execute(
                    f"SELECT version FROM tags WHERE name = ? AND ({match}) "
                    "GROUP BY version HAVING COUNT(*) = ? ORDER BY version",
                    [name, *[x for kv in tags.items() for x in kv], len(tags)],
                )
            else:
                rows = db.execute(
                    "SELECT version FROM versions WHERE name = ? ORDER BY version", (name,)
                )
            return self._load(db, name, [r[0] for r in rows])

    def get_alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version ``alias`` points at, or None."""
        with _sqlite.read(self.db_path, self._busy_timeout) as db:
            row = db.execute(
                "SELECT version FROM aliases WHERE name = ? AND alias = ?", (name, alias)
            ).fetchone()
            return self._load(db, name, [row[0]])[0] if row else None

    def download(self, name: str, version: str, dest: Path) -> Path:
        """Copy the version's folder to ``dest/<name>/<version>`` and verify the model's sha256.

        Raises:
            NotFoundError: No such version.
            IntegrityError: The stored folder is missing or its model file was changed.
        """
        with _sqlite.read(self.db_path, self._busy_timeout) as db:
            number = self._existing(db, name, version)
            model_file, expected = db.execute(
                "SELECT model_file, sha256 FROM versions WHERE name = ? AND version = ?",
                (name, number),
            ).fetchone()
        stored = self.artifacts / name / str(number)
        if not stored.is_dir():
            raise IntegrityError(f"{name} v{number}: artifact folder {stored} is missing")
        target = dest / name / str(number)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(stored, target)
        verify(target, model_file, expected, f"{name} v{number}")
        return target

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _existing(db: sqlite3.Connection, name: str, version: str) -> int:
        number = int(version) if str(version).isdigit() else -1
        row = db.execute(
            "SELECT 1 FROM versions WHERE name = ? AND version = ?", (name, number)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"model {name!r} has no version {version!r}")
        return number

    def _load(self, db: sqlite3.Connection, name: str, numbers: list[int]) -> list[ModelVersion]:
        found = []
        for number in numbers:
            sha, created = db.execute(
                "SELECT sha256, created_at FROM versions WHERE name = ? AND version = ?",
                (name, number),
            ).fetchone()
            tags = db.execute(
                "SELECT key, value FROM tags WHERE name = ? AND version = ? ORDER BY key",
                (name, number),
            ).fetchall()
            aliases = db.execute(
                "SELECT alias FROM aliases WHERE name = ? AND version = ? ORDER BY alias",
                (name, number),
            ).fetchall()
            found.append(
                ModelVersion(
                    name=name,
                    version=str(number),
                    uri=(self.artifacts / name / str(number)).resolve().as_uri(),
                    sha256=sha,
                    tags=dict(tags),
                    aliases=tuple(a for (a,) in aliases),
                    created_at=datetime.fromisoformat(created),
                )
            )
        return found


def verify(folder: Path, model_file: str, expected: str, label: str) -> None:
    """Check ``folder/model_file`` against its recorded sha256; remove ``folder`` if it fails.

    Raises:
        IntegrityError: The file is missing or its digest differs.
    """
    try:
        actual = sha256_file(folder / model_file)
    except FileNotFoundError:
        actual = "(missing)"
    if actual != expected:
        # Never leave a file that failed the check where someone might load it.
        shutil.rmtree(folder, ignore_errors=True)
        raise IntegrityError(f"{label}: {model_file} sha256 is {actual}, expected {expected}")


def check_name(value: str, what: str) -> None:
    """Refuse names that are not safe folder names (the Azure ML registry applies the same
    rule, so a name works alike in both): no separators, no "..", no leading dot."""
    if not _NAME.match(value) or ".." in value:
        raise ValueError(f"invalid {what} {value!r}: use letters, digits, '.', '_' and '-'")


def check_tags(tags: dict[str, str]) -> None:
    """Refuse tags that are not non-empty strings mapped to strings."""
    for key, value in tags.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise ValueError(f"tags must map non-empty strings to strings: {key!r}: {value!r}")


def local_folder(uri: str) -> Path:
    """The folder a ``file://`` URI names (``BackendError`` for any other scheme)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise BackendError(f"a local job reads models from file:// URIs, not {uri!r}")
    folder = Path(url2pathname(parsed.path))
    if not folder.is_dir():
        raise NotFoundError(f"model folder {folder} does not exist")
    return folder
