"""Enqueue throughput of the SQLite job queue under 50 concurrent producers (jobs/s).

    .venv/bin/python bench/queue_throughput.py [--jobs-each 40] [--producers 50]

Each producer is a different user sending ``--jobs-each`` videos one after another; all producers
run at once. Scenarios: the bot's shape (producers share one connection, as the adapters in one
process do), the same with durability relaxed to ``synchronous=NORMAL``, one connection per
producer (SQLite's file lock arbitrates, as separate processes would), and producers racing a
worker that claims and completes. Prints one line per scenario; never asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from storage import SqliteJobQueue


@dataclass(frozen=True)
class Scenario:
    name: str
    synchronous: str = "FULL"
    connection_per_producer: bool = False
    with_worker: bool = False


SCENARIOS = (
    Scenario("shared connection, synchronous=FULL (default)"),
    Scenario("shared connection, synchronous=NORMAL", synchronous="NORMAL"),
    Scenario("connection per producer, synchronous=FULL", connection_per_producer=True),
    Scenario("shared connection + a worker claiming/completing", with_worker=True),
)


async def run_scenario(scenario: Scenario, db_path: Path, producers: int, jobs_each: int) -> tuple[float, int]:
    """Returns (enqueued jobs per second, jobs the worker finished meanwhile)."""
    connections = producers if scenario.connection_per_producer else 1
    queues = [
        await SqliteJobQueue.open(db_path, synchronous=scenario.synchronous, max_queued_per_user=None)
        for _ in range(connections)
    ]
    worker_queue = await SqliteJobQueue.open(db_path) if scenario.with_worker else None
    finished = 0
    producing = True

    async def producer(n: int) -> None:
        queue = queues[n % connections]
        for m in range(jobs_each):
            await queue.enqueue("telegram", n, n, m, f"/data/in/{n}-{m}.mp4", {"fps": 60})

    async def worker() -> None:
        nonlocal finished
        while producing:
            claim = await worker_queue.claim("bench-worker")
            if claim is None:
                await asyncio.sleep(0.001)
                continue
            await worker_queue.complete(claim, None)
            finished += 1

    worker_task = asyncio.create_task(worker()) if worker_queue else None
    started = time.perf_counter()
    await asyncio.gather(*(producer(n) for n in range(producers)))
    elapsed = time.perf_counter() - started
    producing = False
    if worker_task:
        await worker_task
    for queue in [*queues, *([worker_queue] if worker_queue else [])]:
        await queue.close()
    return producers * jobs_each / elapsed, finished


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producers", type=int, default=50)
    parser.add_argument("--jobs-each", type=int, default=40)
    parser.add_argument("--dir", type=Path, help="where to put the database (default: a temporary directory)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(f"{args.producers} concurrent producers x {args.jobs_each} jobs each, database under {tmp}")
        for index, scenario in enumerate(SCENARIOS):
            rate, finished = await run_scenario(scenario, Path(tmp) / f"bench-{index}.sqlite3", args.producers, args.jobs_each)
            extra = f"  (worker finished {finished} jobs meanwhile)" if scenario.with_worker else ""
            print(f"{scenario.name:<52} {rate:8.0f} jobs/s{extra}")


if __name__ == "__main__":
    asyncio.run(main())
