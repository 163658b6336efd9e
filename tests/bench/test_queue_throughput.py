"""The queue benchmark runs on both engines and every job it enqueues is claimed and completed once."""

from __future__ import annotations

import asyncpg

from bench.queue_throughput import engine_rows, engine_table


async def test_engine_rows_cover_both_engines_and_leave_nothing_behind(postgres_admin_url):
    before = {r["datname"] for r in await _databases(postgres_admin_url)}
    rows = await engine_rows(producers=3, jobs_each=2, worker_counts=(1, 2), postgres_url=postgres_admin_url)
    assert [(row.engine, row.producers, row.jobs) for row in rows] == [("SQLite", 3, 6), ("PostgreSQL", 3, 6)]
    assert all(rate > 0 for row in rows for rate in (row.enqueue_per_s, *row.drain_per_s.values()))
    table = engine_table(rows).splitlines()
    assert table[0] == ("| engine | enqueue, 3 producers (jobs/s) | claim+complete, 1 worker (jobs/s) "
                        "| claim+complete, 2 workers (jobs/s) |")
    assert [line.split(" | ")[0] for line in table[2:]] == ["| SQLite", "| PostgreSQL"]
    assert {r["datname"] for r in await _databases(postgres_admin_url)} == before  # its database was dropped


async def _databases(url: str):
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch("SELECT datname FROM pg_database")
    finally:
        await conn.close()
