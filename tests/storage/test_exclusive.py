"""``queue.exclusive(name)``: one holder at a time on PostgreSQL (advisory lock; standbys take over
when the holder releases, its connection breaks, or its process is killed); held at once on SQLite."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncpg

import storage

ROOT = Path(__file__).resolve().parents[2]
FAST = {"retry_s": 0.1, "check_s": 0.2}


async def test_sqlite_needs_no_lock(db_path):
    url = f"sqlite:///{db_path}"
    async with storage.open_queue(url) as first, storage.open_queue(url) as second:
        await check_no_lock(first, second)


async def check_no_lock(first, second) -> None:
    one, other = first.exclusive("telegram-polling:1"), second.exclusive("telegram-polling:1")
    await asyncio.wait_for(one.acquire(), 1)
    await asyncio.wait_for(other.acquire(), 1)  # one machine, one bot: nothing to exclude
    assert one.held and other.held
    await one.release()
    assert not one.held


async def test_one_holder_at_a_time_and_the_standby_takes_over(postgres_url):
    async with storage.open_queue(postgres_url) as first, storage.open_queue(postgres_url) as second:
        holder = first.exclusive("telegram-polling:1", **FAST)
        standby = second.exclusive("telegram-polling:1", **FAST)
        other_name = second.exclusive("telegram-polling:2", **FAST)
        await asyncio.wait_for(holder.acquire(), 5)
        waiting = asyncio.create_task(standby.acquire())
        await asyncio.wait_for(other_name.acquire(), 5)  # another name is another lock
        await asyncio.sleep(0.5)
        assert not waiting.done() and not standby.held
        await holder.release()
        await asyncio.wait_for(waiting, 5)
        assert standby.held and not holder.held
        # The standby-turned-holder loses its connection (a server restart, a network cut): it learns
        # of it, and the lock is free for the others.
        pid = await standby._conn.fetchval("SELECT pg_backend_pid()")
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await conn.close()
        await asyncio.wait_for(standby.wait_lost(), 5)
        assert not standby.held
        await asyncio.wait_for(holder.acquire(), 5)
        await holder.release()
        await other_name.release()
        await standby.release()


HOLDER = textwrap.dedent("""
    import asyncio, sys, storage
    async def main():
        async with storage.open_queue(sys.argv[1]) as queue:
            hold = queue.exclusive("telegram-polling:1", retry_s=0.1, check_s=0.2)
            await hold.acquire()
            print("held", flush=True)
            await asyncio.sleep(600)
    asyncio.run(main())
""")


async def test_a_killed_holder_process_is_replaced(postgres_url):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", HOLDER, postgres_url], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
        assert line.strip() == "held"
        async with storage.open_queue(postgres_url) as queue:
            standby = queue.exclusive("telegram-polling:1", **FAST)
            waiting = asyncio.create_task(standby.acquire())
            await asyncio.sleep(0.5)
            assert not waiting.done()
            process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(waiting, 10)
            assert standby.held
            await standby.release()
    finally:
        process.kill()
        process.wait(10)
        process.stdout.close()
