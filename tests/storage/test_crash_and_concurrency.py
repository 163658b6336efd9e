"""Real processes and real concurrency, on both engines: a worker killed with SIGKILL loses nothing;
producer processes and a worker share the database (SQLite: without "database is locked"); worker
processes claiming at once never get the same job; every job is accounted for exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import JobState, open_queue

HELPER = Path(__file__).with_name("queue_process.py")
HELPER_LEASE = 30  # queue_process.LEASE_SECONDS
STARTUP_TIMEOUT = 30


def start_helper(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(HELPER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


async def read_line(process: subprocess.Popen[str]) -> str:
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), STARTUP_TIMEOUT)
    if not line:
        raise AssertionError(f"helper exited early: {process.wait()} {process.stderr.read()}")
    return line.strip()


@pytest.mark.parametrize("with_result", [False, True], ids=["mid-computation", "result-ready"])
async def test_sigkill_of_a_worker_process_loses_nothing(queue_url, tmp_path, with_result):
    source = tmp_path / "input.mp4"
    source.write_bytes(b"a video")
    async with open_queue(queue_url, lease_seconds=HELPER_LEASE) as producer:
        job = (await producer.enqueue("telegram", 5, 6, 7, source, {"fps": 60, "loop": True})).job

    result_args = ["--with-result", str(tmp_path / "result.mp4")] if with_result else []
    worker = start_helper("hold", queue_url, "doomed-worker", *result_args)
    try:
        assert await read_line(worker) == f"claimed {job.id}"
        await asyncio.sleep(0.05)  # let it heartbeat: the kill may land inside a transaction
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        worker.stdout.close()
        worker.stderr.close()
    assert worker.returncode == -signal.SIGKILL

    # Later: the lease has run out (a clock ahead by more than the lease; no sleeping).
    later = time.time() + HELPER_LEASE + 5
    async with open_queue(queue_url, lease_seconds=HELPER_LEASE, clock=lambda: later) as queue:
        running = await queue.get(job.id)
        assert running.state is JobState.RUNNING  # the dead worker still "holds" it
        claim = await queue.claim("new-worker")
        assert claim is not None and claim.job_id == job.id
        assert claim.job.attempts == 2
        assert claim.job.options == {"fps": 60, "loop": True}
        assert Path(claim.job.input_path).read_bytes() == b"a video"
        assert claim.job.has_result is with_result
        done = await queue.complete(claim, 42)
        assert done.state is JobState.DONE and done.delivered
        assert await queue.claim("new-worker") is None


async def test_producer_processes_and_a_worker_share_the_database(queue_url, clock):
    per_process, processes = 150, 3
    # All four processes create and migrate the fresh database at about the same time.
    producers = [start_helper("produce", queue_url, f"user{n}", str(per_process)) for n in range(processes)]
    async with open_queue(queue_url, clock=clock) as worker_queue:
        finished: list[int] = []
        try:
            while len(finished) < per_process * processes:
                claim = await worker_queue.claim("worker")
                if claim is None:
                    assert all(p.poll() in (None, 0) for p in producers), "a producer failed"
                    await asyncio.sleep(0.01)
                    continue
                finished.append((await worker_queue.complete(claim, None)).id)
        finally:
            outputs = [p.communicate(timeout=STARTUP_TIMEOUT) for p in producers]
        for process, (stdout, stderr) in zip(producers, outputs):
            assert process.returncode == 0 and stdout.strip() == "done", stderr
        assert len(finished) == len(set(finished)) == per_process * processes


async def test_worker_processes_claiming_at_once_never_share_a_job(open_queue, add_job):
    producer = await open_queue(max_queued_per_user=None)
    jobs = [(await add_job(producer, f"user{n % 15}", n)).id for n in range(150)]
    workers = [start_helper("drain", producer_url(producer), f"worker-{n}") for n in range(3)]
    outputs = [await asyncio.to_thread(worker.communicate, timeout=120) for worker in workers]
    claimed: list[int] = []
    for worker, (stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr
        claimed += [int(job_id) for job_id in stdout.split()]
    assert sorted(claimed) == sorted(jobs)  # each job exactly once, none left
    assert [(await producer.get(job_id)).attempts for job_id in jobs[:10]] == [1] * 10


def producer_url(queue) -> str:
    return f"sqlite:///{queue.path}" if hasattr(queue, "path") else queue.dialect.dsn


async def test_fifty_concurrent_producers_and_a_worker_account_for_every_job(open_queue):
    producers_count, jobs_each = 50, 20
    total = producers_count * jobs_each
    # Producers share 5 connections (10 coroutines on each); the worker has its own.
    producer_queues = [await open_queue(max_queued_per_user=None) for _ in range(5)]
    worker_queue = await open_queue()
    enqueued: list[int] = []
    delivered: list[int] = []
    producers_done = asyncio.Event()

    async def producer(n: int) -> None:
        queue = producer_queues[n % len(producer_queues)]
        for m in range(jobs_each):
            result = await queue.enqueue("discord", f"guild-{n % 7}", f"user-{n}", f"{n}:{m}", f"/in/{n}-{m}", {"n": m})
            enqueued.append(result.job.id)
            if m % 5 == 0:  # a re-delivered platform message must not become a second job
                again = await queue.enqueue("discord", f"guild-{n % 7}", f"user-{n}", f"{n}:{m}", "/dup", {})
                assert not again.created and again.job.id == result.job.id

    async def worker() -> None:
        while True:
            claim = await worker_queue.claim("worker")
            if claim is None:
                if producers_done.is_set():
                    return
                await asyncio.sleep(0)
                continue
            await worker_queue.progress(claim, 0.5)
            await worker_queue.set_result(claim, f"/out/{claim.job_id}")
            delivered.append((await worker_queue.complete(claim, claim.job_id)).id)

    async def produce_all() -> None:
        await asyncio.gather(*(producer(n) for n in range(producers_count)))
        producers_done.set()

    await asyncio.gather(produce_all(), worker())

    assert len(enqueued) == len(set(enqueued)) == total
    assert sorted(delivered) == sorted(enqueued)
    for job_id in (enqueued[0], enqueued[-1]):
        job = await worker_queue.get(job_id)
        assert job.state is JobState.DONE and job.delivered and job.attempts == 1


async def test_cancelled_callers_never_leave_a_transaction_open(open_queue):
    queue = await open_queue(max_queued_per_user=None)
    for round_number in range(20):
        tasks = [
            asyncio.create_task(queue.enqueue("console", "term", f"u{n}", f"{round_number}:{n}", "/in", {}))
            for n in range(5)
        ]
        await asyncio.sleep(0.0005 * round_number)  # cancel at different points of the transactions
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # Another connection gets the write lock (SQLite) or the user's row (PostgreSQL) at once:
    # nothing was left half-open.
    other = await open_queue(busy_timeout=0.5, max_queued_per_user=None)
    assert (await other.enqueue("console", "term", "other", "after-1", "/in", {})).created
    assert (await queue.enqueue("console", "term", "me", "after-2", "/in", {})).created
