"""bench/scaleout.py: the busy-queue run claims and completes every job once; the scale-out runs say
plainly when they cannot run."""

from __future__ import annotations

import asyncpg

from bench import scaleout


async def test_the_mixed_run_completes_every_job_once(postgres_url):
    row = await scaleout.mixed_row(postgres_url, producers=5, jobs_each=3, workers=2)
    assert (row.producers, row.workers, row.jobs) == (5, 2, 15)
    assert row.enqueue_per_s > 0 and row.claim_complete_per_s > 0 and row.drain_after_last_enqueue_s >= 0
    conn = await asyncpg.connect(postgres_url)
    try:
        states = await conn.fetch("SELECT state, delivered, attempts, count(*) AS n FROM jobs GROUP BY 1, 2, 3")
    finally:
        await conn.close()
    assert [tuple(r) for r in states] == [("done", True, 1, 15)]
    table = scaleout.mixed_table([row]).splitlines()
    assert table[0].startswith("| producers | workers | jobs | enqueue while claiming (jobs/s) |")
    assert table[2].startswith("| 5 | 2 | 15 | ")


def test_the_run_table_reads_its_rows():
    row = scaleout.RunRow(engine="PostgreSQL", workers=2, jobs=6, seconds=30.0, jobs_per_min=12.0, job_median_s=9.5,
                          to_chat_median_s=0.41, to_chat_max_s=0.9, models=("rife",))
    assert scaleout.run_table([row]).splitlines()[2] == "| PostgreSQL | 2 | 6 | 30.0 | 12.0 | 9.5 | 0.41 / 0.90 |"
