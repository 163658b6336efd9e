"""Open the queue and the file store from the URLs in the configuration.

    queue = await open_queue("sqlite:///data/smoothbot.sqlite3")        # relative path
    queue = await open_queue("sqlite:////var/lib/smoothbot/q.sqlite3")  # absolute path (four slashes)
    queue = await open_queue("postgresql://bot:secret@db:5432/smoothbot")
    files = open_files("data")                                          # a directory (or file:///abs/dir)
    files = open_files("s3://bucket/prefix", endpoint_url="http://127.0.0.1:8333")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from storage.files import FileStore, LocalFileStore, S3FileStore
from storage.queue import OpeningQueue

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")


def sqlite_path(url: str) -> str:
    """``sqlite:///rel/path`` → ``rel/path``; ``sqlite:////abs/path`` → ``/abs/path`` (SQLAlchemy's rule)."""
    path = unquote(url[len(SQLITE_PREFIX):])
    if not path:
        raise ValueError(f"the SQLite URL {url!r} names no file; write sqlite:///path/to/file.sqlite3")
    return path


def open_queue(url: str, **options: Any) -> OpeningQueue:
    """The queue at ``url``: ``sqlite:///…`` or ``postgresql://…``. ``await`` it or ``async with`` it.

    ``options`` go to ``SqliteJobQueue.open`` / ``PostgresJobQueue.open`` (``lease_seconds``,
    ``max_attempts``, ``max_queued_per_user``, ``files``, …).
    """
    scheme = urlsplit(url).scheme.lower()
    if url.startswith(SQLITE_PREFIX):
        from storage.sqlite import SqliteJobQueue

        return SqliteJobQueue.open(sqlite_path(url), **options)
    if scheme in POSTGRES_SCHEMES:
        from storage.postgres import PostgresJobQueue  # asyncpg only where PostgreSQL is used

        return PostgresJobQueue.open(url, **options)
    raise ValueError(
        f"unsupported queue URL {url!r}: use sqlite:///path/file.sqlite3 or postgresql://user:password@host:5432/db"
    )


def open_files(url: str | os.PathLike[str], *, endpoint_url: str | None = None, **client_options: Any) -> FileStore:
    """The file store at ``url``: ``s3://bucket/prefix``, ``file:///dir`` or a plain directory path."""
    text = os.fspath(url)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"the S3 URL {text!r} names no bucket; write s3://bucket/prefix")
        return S3FileStore(parts.netloc, unquote(parts.path), endpoint_url=endpoint_url or None, **client_options)
    if scheme == "file":
        return LocalFileStore(Path(unquote(parts.path)))
    if scheme and len(scheme) > 1:  # "C:" style drive letters aside, another scheme is a mistake
        raise ValueError(f"unsupported file store URL {text!r}: use a directory, file:///dir or s3://bucket/prefix")
    return LocalFileStore(Path(text))
