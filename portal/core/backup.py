"""Backup and restore: one archive with the database and the files the database names.

``flask --app portal backup FILE`` writes a ``.tar.gz`` while the portal runs:
- ``database.sqlite``: SQLite's online backup API, a consistent copy taken page by page
  while writers go on (not a file copy, which a write in flight would tear);
- or ``database.dump``: ``pg_dump --format=custom`` (one consistent snapshot);
- ``literature/``: the uploaded literature PDFs (the rows name them; a restore without
  them would send packs with nothing in them);
- ``manifest.json``: backend, migration revision, when, and the row count of every table,
  which ``restore`` checks after loading.

``flask --app portal restore FILE`` loads an archive into the configured database, which
must be empty (a new SQLite file, a new PostgreSQL database): a restore never merges into
live data. The backend must be the one the archive was taken from. Queued jobs are not in
the archive: every job is a nudge whose row is the truth, and the sweepers pick the rows
up again.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from portal.core.errors import InvalidInput
from portal.extensions import db

FORMAT = 1


@dataclass
class Manifest:
    backend: str
    revision: str
    taken_at: str
    rows: dict[str, int]
    files: int
    format: int = FORMAT


def _literature_dir() -> Path:
    configured = current_app.config.get("LITERATURE_DIR")
    return Path(configured) if configured else Path(current_app.instance_path) / "literature"


def _row_counts(conn: sa.Connection) -> dict[str, int]:
    tables = sorted(sa.inspect(conn).get_table_names())
    return {name: int(conn.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one())
            for name in tables}


def _revision(conn: sa.Connection) -> str:
    if not sa.inspect(conn).has_table("alembic_version"):
        return ""
    return ",".join(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def _libpq(url: sa.URL) -> tuple[str, dict[str, str]]:
    """A libpq connection string for pg_dump/pg_restore, and the environment with the
    password (kept off the command line, where ``ps`` would show it)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(args: list[str], env: dict[str, str]) -> None:
    tool = shutil.which(args[0])
    if tool is None:
        raise InvalidInput(f"{args[0]} is not installed (Debian: apt-get install "
                           "postgresql-client, the same major version as the server or newer).")
    done = subprocess.run([tool, *args[1:]], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise InvalidInput(f"{args[0]} failed: {done.stderr.strip()[:2000]}")


def take(target: Path) -> Manifest:
    """Write a backup archive of the configured database and literature to ``target``."""
    engine = db.engine
    backend = engine.dialect.name
    with tempfile.TemporaryDirectory(prefix="portal-backup-") as work:
        folder = Path(work)
        if backend == "sqlite":
            database = engine.url.database
            assert database, "an in-memory database has nothing to back up"
            source = sqlite3.connect(database)
            copy = sqlite3.connect(folder / "database.sqlite")
            try:
                source.backup(copy)
            finally:
                copy.close()
                source.close()
            # The counts and revision of the copy itself, so they are what restore loads.
            counted = sa.create_engine(f"sqlite:///{folder / 'database.sqlite'}")
            with counted.connect() as conn:
                rows, revision = _row_counts(conn), _revision(conn)
            counted.dispose()
        elif backend == "postgresql":
            # pg_dump reads the snapshot this transaction exported, so the counts below
            # are of exactly what it dumps, however busy the portal is meanwhile.
            with engine.connect().execution_options(
                    isolation_level="REPEATABLE READ") as conn, conn.begin():
                snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
                dsn, env = _libpq(engine.url)
                _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
                      f"--snapshot={snapshot}", f"--file={folder / 'database.dump'}",
                      f"--dbname={dsn}"], env)
                rows, revision = _row_counts(conn), _revision(conn)
        else:
            raise InvalidInput(f"No backup for the {backend} backend.")
        files = _copy_literature(_literature_dir(), folder / "literature")
        manifest = Manifest(backend=backend, revision=revision, rows=rows, files=files,
                            taken_at=datetime.now(UTC).isoformat(timespec="seconds"))
        (folder / "manifest.json").write_text(json.dumps(vars(manifest), indent=2))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        with tarfile.open(partial, "w:gz") as archive:
            for path in sorted(folder.iterdir()):
                archive.add(path, arcname=path.name)
        partial.replace(target)  # a half-written archive never carries the final name
    return manifest


def _copy_literature(source: Path, target: Path) -> int:
    target.mkdir(parents=True, exist_ok=True)
    if not source.is_dir():
        return 0
    count = 0
    for path in sorted(source.rglob("*")):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
            count += 1
    return count


def _safe_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The archive's regular files and folders, refusing links and paths that leave it."""
    members = []
    for member in archive.getmembers():
        name = Path(member.name)
        if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
            raise InvalidInput(f"Not a portal backup: unexpected entry {member.name!r}.")
        members.append(member)
    return members


def restore(source: Path) -> Manifest:
    """Load the archive ``source`` into the configured, empty database; check the counts."""
    engine = db.engine
    backend = engine.dialect.name
    with tempfile.TemporaryDirectory(prefix="portal-restore-") as work:
        folder = Path(work)
        try:
            with tarfile.open(source, "r:gz") as archive:
                archive.extractall(folder, members=_safe_members(archive), filter="data")
            raw: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
            manifest = Manifest(**raw)
        except (OSError, tarfile.TarError, ValueError, TypeError) as error:
            raise InvalidInput(f"Not a portal backup: {error}") from error
        if manifest.format != FORMAT or manifest.backend != backend:
            raise InvalidInput(f"This is a {manifest.backend} backup; the configured database "
                               f"is {backend}. Restore into the same kind of database.")
        with engine.connect() as conn:
            if sa.inspect(conn).get_table_names():
                raise InvalidInput("The configured database is not empty: restore into a new "
                                   "database (a new SQLite file or an empty PostgreSQL "
                                   "database), then point DATABASE_URL at it.")
        literature = _literature_dir()
        if literature.is_dir() and any(literature.iterdir()):
            raise InvalidInput(f"{literature} is not empty: restore into a new instance "
                               "folder (PORTAL_INSTANCE_PATH) or set LITERATURE_DIR.")
        if backend == "sqlite":
            database = engine.url.database
            assert database
            engine.dispose()
            copy = sqlite3.connect(folder / "database.sqlite")
            target = sqlite3.connect(database)
            try:
                copy.backup(target)
            finally:
                target.close()
                copy.close()
        else:
            dsn, env = _libpq(engine.url)
            _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
                  "--single-transaction", f"--dbname={dsn}", str(folder / "database.dump")],
                 env)
        with engine.connect() as conn:
            rows = _row_counts(conn)
        if rows != manifest.rows:
            differ = sorted(name for name in set(rows) | set(manifest.rows)
                            if rows.get(name) != manifest.rows.get(name))
            raise InvalidInput(f"The restored database does not match the backup: {differ}.")
        _copy_literature(folder / "literature", _literature_dir())
    return manifest
