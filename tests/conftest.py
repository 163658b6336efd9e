"""Real servers shared by the whole suite, started once per session on 127.0.0.1 (tests/storage/servers.py).

- ``postgres_url``: a fresh, empty database for one test, on the session's own PostgreSQL (started from
  the machine's binaries) or on the server ``SMOOTHBOT_TEST_POSTGRES_URL`` names.
- ``seaweed``: SeaweedFS's S3 endpoint (bucket ``smoothbot``) with its test credentials.
Nothing starts unless a test asks for it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.storage.servers import POSTGRES_URL_VARIABLE, PostgresServer, SeaweedServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    """The session's own PostgreSQL (None when SMOOTHBOT_TEST_POSTGRES_URL names one)."""
    if os.environ.get(POSTGRES_URL_VARIABLE):
        yield None
        return
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    directory = Path(tempfile.mkdtemp(prefix="smoothbot-pg-"))
    server = PostgresServer(directory).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_admin_url(postgres_server: PostgresServer | None) -> str:
    return os.environ.get(POSTGRES_URL_VARIABLE) or postgres_server.url("postgres")


def database_url(admin_url: str, database: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture
async def postgres_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test."""
    name = f"test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield database_url(postgres_admin_url, name)
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedServer]:
    directory = Path(tempfile.mkdtemp(prefix="smoothbot-weed-"))
    server = SeaweedServer(directory).start(buckets=("smoothbot",))
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
