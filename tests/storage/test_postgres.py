"""PostgreSQL only: migrations under an advisory lock, wake-ups by LISTEN/NOTIFY across processes'
pools, a server restart mid-run, and COMMITs whose answer is lost (nothing lost, nothing twice)."""

from __future__ import annotations

import asyncio
import sys

import asyncpg
import pytest

from storage import JobState, SchemaTooNewError, StorageUnavailableError
from storage.migrations import Migration, latest_version
from storage.postgres import MIGRATIONS, PostgresJobQueue, positional, redacted


async def fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def test_named_parameters_become_positional():
    assert positional("SELECT :a, :b::text, ':' || :a, x::int FROM t WHERE y = :b") == (
        "SELECT $1, $2::text, ':' || $1, x::int FROM t WHERE y = $2",
        ("a", "b"),
    )
    assert redacted("postgresql://bot:secret@db:5432/q") == "postgresql://bot:***@db:5432/q"


async def test_concurrent_openers_apply_each_migration_once(postgres_url, clock):
    queues = await asyncio.gather(*(PostgresJobQueue.open(postgres_url, clock=clock) for _ in range(5)))
    try:
        assert [row["version"] for row in await fetch(postgres_url, "SELECT version FROM schema_version")] == [
            migration.version for migration in MIGRATIONS]
        tables = {row["tablename"] for row in await fetch(postgres_url, "SELECT tablename FROM pg_tables "
                                                                         "WHERE schemaname = 'public'")}
        assert {"jobs", "user_turns", "chat_settings", "workers", "edit_slots", "schema_version"} <= tables
        assert (await queues[0].enqueue("console", "t", "me", 1, "/in", {})).created
    finally:
        for queue in queues:
            await queue.close()


async def test_new_failing_and_too_new_migrations(postgres_url, clock):
    known = latest_version(MIGRATIONS)
    extra = Migration(known + 1, "test: notes", ("CREATE TABLE notes (text text)", "INSERT INTO notes VALUES ('applied')"))
    for _ in range(2):
        async with PostgresJobQueue.open(postgres_url, clock=clock, migrations=(*MIGRATIONS, extra)):
            pass
    assert [tuple(row) for row in await fetch(postgres_url, "SELECT text FROM notes")] == [("applied",)]

    broken = Migration(known + 2, "test: broken", ("CREATE TABLE ok (x int)", "NOT SQL AT ALL"))
    with pytest.raises(asyncpg.PostgresSyntaxError):
        await PostgresJobQueue.open(postgres_url, clock=clock, migrations=(*MIGRATIONS, extra, broken))
    assert await fetch(postgres_url, "SELECT 1 FROM pg_tables WHERE tablename = 'ok'") == []

    with pytest.raises(SchemaTooNewError, match=f"version {known + 1}, but this smoothbot knows only up to version {known}"):
        await PostgresJobQueue.open(postgres_url, clock=clock)


@pytest.fixture
async def pg_queues(postgres_url, clock):
    opened = []

    async def open_one(**options):
        options.setdefault("clock", clock)
        queue = await PostgresJobQueue.open(postgres_url, **options)
        opened.append(queue)
        return queue

    yield open_one
    for queue in opened:
        await queue.close()


async def test_listen_notify_wakes_workers_and_front_ends_of_other_pools(pg_queues):
    worker, front_end, producer = await pg_queues(), await pg_queues(), await pg_queues(listen=False)
    await asyncio.wait_for(asyncio.gather(worker.dialect.listening.wait(), front_end.dialect.listening.wait()), 30)
    await asyncio.sleep(0)  # the listeners' first wake-up (after connecting) has fired
    woken = asyncio.create_task(worker.wait_for_work(60))
    changed = asyncio.create_task(front_end.wait_for_changes(60))
    await asyncio.sleep(0.05)
    assert not woken.done() and not changed.done()
    job = (await producer.enqueue("telegram", 1, 1, 1, "/in", {})).job
    # Only a NOTIFY can wake these: nothing in their own process enqueued (False would be the timeout).
    assert await asyncio.wait_for(woken, 30) is True
    assert await asyncio.wait_for(changed, 30) is True
    assert (await worker.claim("w")).job_id == job.id


async def test_a_server_restart_mid_run_loses_nothing_and_does_nothing_twice(
    postgres_server, postgres_url, pg_queues, clock
):
    producer = await pg_queues(max_queued_per_user=None, reconnect_timeout=60)
    worker = await pg_queues(reconnect_timeout=60)
    messages = 120
    created: list[int] = []
    done: list[int] = []
    produced = asyncio.Event()

    async def produce() -> None:
        for m in range(messages):
            result = await producer.enqueue("discord", "guild", f"user{m % 6}", m, f"/in/{m}", {})
            if result.created:
                created.append(result.job.id)
            await asyncio.sleep(0.005)
        produced.set()

    async def work() -> None:
        while not (produced.is_set() and len(done) == messages):
            claim = await worker.claim("worker")
            if claim is None:
                await worker.wait_for_work(0.2)
                continue
            await worker.progress(claim, 0.5)
            done.append((await worker.complete(claim, claim.job_id)).id)

    async def interrupt() -> None:
        while len(created) < messages // 3:
            await asyncio.sleep(0.01)
        if postgres_server is not None:  # our own server: a real restart (fast shutdown cuts every connection)
            await asyncio.to_thread(postgres_server.pg_ctl, "restart")
        else:  # someone else's server: cut our connections instead
            await fetch(postgres_url.rsplit("/", 1)[0] + "/postgres",
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE datname = '{postgres_url.rsplit('/', 1)[1]}' AND pid <> pg_backend_pid()")

    tasks = [asyncio.create_task(step(), name=step.__name__) for step in (produce, work, interrupt)]
    finished, pending = await asyncio.wait(tasks, timeout=180, return_when=asyncio.FIRST_EXCEPTION)
    for task in pending:  # say where it hung before failing
        task.print_stack(file=sys.stderr)
        task.cancel()
    assert not pending, f"still running after 180 s: {[task.get_name() for task in pending]}, done {len(done)}"
    for task in finished:
        task.result()
    assert len(created) == len(set(created)) == messages  # every message became one job, reported created once
    assert sorted(done) == sorted(created)  # every job finished exactly once
    states = await fetch(postgres_url, "SELECT state, delivered, attempts, count(*) FROM jobs "
                                       "GROUP BY state, delivered, attempts")
    assert [tuple(row) for row in states] in ([("done", True, 1, messages)],)
    # The LISTEN connection came back too.
    await asyncio.wait_for(worker.dialect.listening.wait(), 30)


class LostAnswer:
    """Replaces COMMIT: ``after`` commits and then loses the answer; ``before`` cuts the connection
    instead of committing (the server rolls back). Once, for the next write."""

    def __init__(self, queue: PostgresJobQueue, when: str) -> None:
        self.dialect = queue.dialect
        self.when = when
        self.real = self.dialect._commit
        self.fired = 0
        self.dialect._commit = self.commit

    async def commit(self, transaction) -> None:
        self.dialect._commit = self.real
        self.fired += 1
        if self.when == "after":
            await transaction.commit()
        transaction._connection.terminate()
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")


@pytest.mark.parametrize("when", ["after", "before"])
async def test_a_lost_commit_answer_neither_loses_nor_repeats(pg_queues, postgres_url, when):
    queue = await pg_queues()
    lost = LostAnswer(queue, when)
    result = await queue.enqueue("telegram", 5, 5, 77, "/in/77", {"fps": 60})
    assert lost.fired == 1
    assert result.created  # the first answer to this message, whatever happened to the COMMIT
    assert [row["id"] for row in await fetch(postgres_url, "SELECT id FROM jobs")] == [result.job.id]

    LostAnswer(queue, when)
    claim = await queue.claim("worker")
    assert claim is not None and claim.job_id == result.job.id
    assert (await queue.heartbeat(claim)).lease_ok  # the token handed out is the one stored

    LostAnswer(queue, when)
    done = await queue.complete(claim, 9)
    assert done.state is JobState.DONE and done.reply_message_id == "9"
    assert (await queue.get(done.id)).attempts == 1


async def test_an_unreachable_server_is_a_clear_error_after_the_reconnect_timeout(unused_tcp_port):
    with pytest.raises(StorageUnavailableError, match=r"postgresql://bot:\*\*\*@127.0.0.1.*unreachable"):
        await PostgresJobQueue.open(f"postgresql://bot:pw@127.0.0.1:{unused_tcp_port}/q", reconnect_timeout=0.5)


async def test_an_error_releasing_the_connection_after_commit_does_not_repeat_the_operation(pg_queues, monkeypatch):
    queue = await pg_queues()
    first = (await queue.enqueue("telegram", 1, 1, 1, "/in/1", {})).job
    second = (await queue.enqueue("telegram", 2, 2, 1, "/in/2", {})).job
    pool = queue.dialect.pool
    real_release = type(pool).release
    failures = []

    async def release_then_fail(self, conn, *args, **kwargs):
        await real_release(self, conn, *args, **kwargs)
        if self is pool and not failures:  # the server went away just after answering the COMMIT
            failures.append(conn)
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    monkeypatch.setattr(type(pool), "release", release_then_fail)
    claim = await queue.claim("worker")
    assert failures and claim.job_id == first.id
    assert await queue.positions() == {second.id: 1}  # not claimed as well
    assert (await queue.heartbeat(claim)).lease_ok
