"""Throughput of the job queue (jobs/s): SQLite scenarios, and SQLite against PostgreSQL.

    .venv/bin/python -m bench.queue_throughput [--jobs-each 40] [--producers 50] [--postgres-url URL]

Engines (``engine_rows``, the report section ``section``): on each engine, 50 concurrent
producers (each a different user, sharing one queue object: one SQLite connection, or one
PostgreSQL pool of 10) enqueue; then 1 and 4 workers (each its own queue object) claim and
complete everything. PostgreSQL is the server ``--postgres-url`` names (a superuser URL; a
database is created per run), or a throw-away one started from the machine's binaries like the
tests do (tests/storage/servers.py).

SQLite scenarios:

Each producer is a different user sending ``--jobs-each`` videos one after another; all producers
run at once. Scenarios: the bot's shape (producers share one connection, as the adapters in one
process do), the same with durability relaxed to ``synchronous=NORMAL``, one connection per
producer (SQLite's file lock arbitrates, as separate processes would), and producers racing a
worker that claims and completes. Prints one line per scenario; never asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import report
from bench.report import markdown_table
from storage import JobQueue, SqliteJobQueue, open_queue


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


@dataclass(frozen=True)
class EngineRow:
    engine: str
    producers: int
    jobs: int
    enqueue_per_s: float
    drain_per_s: dict[int, float]  # workers -> claimed and completed jobs/s


async def enqueue_all(queue: JobQueue, producers: int, jobs_each: int, round_name: str) -> float:
    async def producer(n: int) -> None:
        for m in range(jobs_each):
            await queue.enqueue("telegram", n, n, f"{round_name}-{m}", f"/data/in/{n}-{m}.mp4", {"fps": 60})

    started = time.perf_counter()
    await asyncio.gather(*(producer(n) for n in range(producers)))
    return producers * jobs_each / (time.perf_counter() - started)


async def drain(queues: list[JobQueue], total: int) -> float:
    finished = 0

    async def worker(queue: JobQueue, name: str) -> None:
        nonlocal finished
        while (claim := await queue.claim(name)) is not None:
            await queue.complete(claim, claim.job_id)
            finished += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(queue, f"worker-{n}") for n, queue in enumerate(queues)))
    elapsed = time.perf_counter() - started
    if finished != total:
        raise RuntimeError(f"the workers finished {finished} jobs, expected {total}")
    return total / elapsed


async def engine_row(engine: str, url: str, producers: int, jobs_each: int, worker_counts: tuple[int, ...]) -> EngineRow:
    opened: list[JobQueue] = []

    async def open_one() -> JobQueue:
        queue = await open_queue(url, max_queued_per_user=None)
        opened.append(queue)
        return queue

    try:
        front_end = await open_one()
        workers = [await open_one() for _ in range(max(worker_counts))]
        rates: list[float] = []
        drains: dict[int, float] = {}
        for count in worker_counts:  # one enqueue round per worker count; enqueue rates are averaged
            rates.append(await enqueue_all(front_end, producers, jobs_each, f"w{count}"))
            drains[count] = await drain(workers[:count], producers * jobs_each)
        return EngineRow(engine, producers, producers * jobs_each, sum(rates) / len(rates), drains)
    finally:
        for queue in opened:
            await queue.close()


@asynccontextmanager
async def postgres_database(admin_url: str | None) -> AsyncIterator[str]:
    """A fresh database on ``admin_url``'s server, or on a throw-away server started here."""
    import asyncpg

    server = directory = None
    if admin_url is None:
        from tests.storage.servers import PostgresServer

        directory = Path(tempfile.mkdtemp(prefix="smoothbot-bench-pg-"))
        server = PostgresServer(directory)
        await asyncio.to_thread(server.start)
        admin_url = server.url("postgres")
    name = f"bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if server is not None:
            await asyncio.to_thread(server.stop)
            shutil.rmtree(directory, ignore_errors=True)


async def engine_rows(producers: int = 50, jobs_each: int = 20, worker_counts: tuple[int, ...] = (1, 4),
                      postgres_url: str | None = None, with_postgres: bool = True) -> list[EngineRow]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="smoothbot-bench-sqlite-") as tmp:
        rows.append(await engine_row("SQLite", f"sqlite:///{tmp}/queue.sqlite3", producers, jobs_each, worker_counts))
    if with_postgres:
        async with postgres_database(postgres_url) as url:
            rows.append(await engine_row("PostgreSQL", url, producers, jobs_each, worker_counts))
    return rows


def postgres_missing() -> str | None:
    """Why no throw-away PostgreSQL can be started here (its binaries are missing), or None."""
    from tests.storage.servers import ServerError, postgres_binary

    try:
        postgres_binary("initdb")
    except ServerError as error:
        return str(error)
    return None


def engine_table(rows: list[EngineRow]) -> str:
    """The Markdown table for bench/REPORT.md."""
    counts = sorted({count for row in rows for count in row.drain_per_s})
    header = ["engine", f"enqueue, {rows[0].producers} producers (jobs/s)",
              *(f"claim+complete, {c} worker{'s' if c > 1 else ''} (jobs/s)" for c in counts)]
    cells = [[row.engine, f"{row.enqueue_per_s:.0f}", *(f"{row.drain_per_s.get(c, float('nan')):.0f}" for c in counts)]
             for row in rows]
    return markdown_table(header, cells)


def section(full: bool, log: Callable[[str], None]) -> report.Section:
    """The report section (bench/__main__.py's CONTRIBUTED): SQLite against PostgreSQL."""
    jobs_each = 40 if full else 20
    missing = postgres_missing()
    rows = asyncio.run(engine_rows(jobs_each=jobs_each, with_postgres=missing is None))
    table = engine_table(rows)
    log(table)
    by_engine = {row.engine: row for row in rows}
    sqlite = by_engine["SQLite"]
    if missing is not None:
        return report.Section(
            key="queue_engines", title="Job queue: SQLite and PostgreSQL", tables=[table],
            notes=[f"queue on PostgreSQL: not run ({missing})"], data=[asdict(row) for row in rows],
        )
    postgres = by_engine["PostgreSQL"]
    return report.Section(
        key="queue_engines",
        title="Job queue: SQLite and PostgreSQL",
        intro=(
            f"`bench/queue_throughput.py`: {sqlite.producers} concurrent producers (one user each, sharing one queue "
            f"object: one SQLite connection or one PostgreSQL pool of 10) enqueue {sqlite.jobs} jobs; then 1 and 4 "
            "workers (one queue object each) claim and complete them all. PostgreSQL runs on this machine "
            "(fsync off when started by the bench), so these figures are CPU-bound, not disk-bound; both engines "
            "are far beyond a chat bot's needs, where a job costs seconds to minutes of model time."
        ),
        tables=[table],
        summary=[
            f"Queue: enqueue {postgres.enqueue_per_s:.0f} jobs/s on PostgreSQL, {sqlite.enqueue_per_s:.0f} on SQLite; "
            f"claim+complete {sqlite.drain_per_s[1]:.0f}/s on SQLite, {postgres.drain_per_s[1]:.0f}/s on PostgreSQL "
            f"(1 worker), {postgres.drain_per_s[4]:.0f}/s (4 workers)."
        ],
        data=[asdict(row) for row in rows],
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producers", type=int, default=50)
    parser.add_argument("--jobs-each", type=int, default=40)
    parser.add_argument("--dir", type=Path, help="where to put the database (default: a temporary directory)")
    parser.add_argument("--postgres-url", help="a PostgreSQL superuser URL (default: start a throw-away server)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(f"{args.producers} concurrent producers x {args.jobs_each} jobs each, database under {tmp}")
        for index, scenario in enumerate(SCENARIOS):
            rate, finished = await run_scenario(scenario, Path(tmp) / f"bench-{index}.sqlite3", args.producers, args.jobs_each)
            extra = f"  (worker finished {finished} jobs meanwhile)" if scenario.with_worker else ""
            print(f"{scenario.name:<52} {rate:8.0f} jobs/s{extra}")
    print()
    print(engine_table(await engine_rows(args.producers, args.jobs_each, postgres_url=args.postgres_url)))


if __name__ == "__main__":
    asyncio.run(main())
