"""SQLite: schema versions applied on open (once), WAL mode. Both engines: per-chat settings that
persist. (PostgreSQL's migrations: tests/storage/test_postgres.py.)"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from storage import SchemaTooNewError, SqliteJobQueue, open_queue
from storage.migrations import MIGRATIONS, Migration, latest_version


def read_db(path, sql):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def test_migrations_are_applied_on_open_and_reopen_is_a_no_op(db_path, clock):
    async with SqliteJobQueue.open(db_path, clock=clock) as queue:
        await queue.enqueue("console", "term", "me", 1, "/in/a.mp4", {"fps": 24})
    assert read_db(db_path, "PRAGMA user_version") == [(latest_version(),)]
    assert read_db(db_path, "PRAGMA journal_mode") == [("wal",)]
    tables = {name for (name,) in read_db(db_path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"jobs", "user_turns", "chat_settings"} <= tables

    async with SqliteJobQueue.open(db_path, clock=clock) as queue:
        assert (await queue.get(1)).options == {"fps": 24}
    assert read_db(db_path, "PRAGMA user_version") == [(latest_version(),)]


async def test_a_new_migration_is_applied_once(db_path, clock):
    async with SqliteJobQueue.open(db_path, clock=clock):
        pass
    extra = Migration(
        latest_version() + 1,
        "test: remember notes",
        ("CREATE TABLE notes (text TEXT)", "INSERT INTO notes VALUES ('applied')"),
    )
    for _ in range(2):
        async with SqliteJobQueue.open(db_path, clock=clock, migrations=(*MIGRATIONS, extra)):
            pass
    assert read_db(db_path, "SELECT text FROM notes") == [("applied",)]
    assert read_db(db_path, "PRAGMA user_version") == [(extra.version,)]

    with pytest.raises(SchemaTooNewError, match="upgrade smoothbot"):
        await SqliteJobQueue.open(db_path, clock=clock)


async def test_a_failing_migration_leaves_the_previous_version(db_path, clock):
    broken = Migration(latest_version() + 1, "test: broken", ("CREATE TABLE ok (x)", "NOT SQL AT ALL"))
    with pytest.raises(sqlite3.OperationalError):
        await SqliteJobQueue.open(db_path, clock=clock, migrations=(*MIGRATIONS, broken))
    assert read_db(db_path, "PRAGMA user_version") == [(latest_version(),)]
    assert read_db(db_path, "SELECT name FROM sqlite_master WHERE name = 'ok'") == []


async def test_settings_merge_remove_and_persist_across_reopen(queue_url, clock):
    async with open_queue(queue_url, clock=clock) as queue:
        assert await queue.settings.get("telegram", 100) == {}
        assert await queue.settings.update("telegram", 100, {"fps": 60, "loop": True}) == {"fps": 60, "loop": True}
        merged = await queue.settings.update("telegram", "100", {"output": "gif", "loop": None, "slowmo": 2})
        assert merged == {"fps": 60, "output": "gif", "slowmo": 2}
        await queue.settings.update("discord", 100, {"model": "rife"})

    async with open_queue(queue_url, clock=clock) as queue:
        assert await queue.settings.get("telegram", 100) == {"fps": 60, "output": "gif", "slowmo": 2}
        assert await queue.settings.get("discord", "100") == {"model": "rife"}
        assert await queue.settings.get("telegram", 101) == {}
        with pytest.raises(TypeError):
            await queue.settings.update("telegram", 100, {"fps": {1, 2}})
        assert await queue.settings.get("telegram", 100) == {"fps": 60, "output": "gif", "slowmo": 2}


async def test_closed_queue_refuses_work(queue):
    from storage import QueueClosedError

    await queue.close()
    with pytest.raises(QueueClosedError):
        await queue.get(1)
    await queue.close()  # closing twice is harmless


async def test_concurrent_settings_updates_of_one_chat_lose_nothing(open_queue):
    queues = [await open_queue() for _ in range(3)]
    await asyncio.gather(
        *(queues[n % 3].settings.update("discord", "guild", {f"key{n}": n}) for n in range(30))
    )
    assert await queues[0].settings.get("discord", "guild") == {f"key{n}": n for n in range(30)}
