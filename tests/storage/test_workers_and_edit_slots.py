"""Both engines: the workers table (register, heartbeat, gone, stopped, the jobs each runs) and the
per-chat status-edit slot that several front-ends share (exactly one of concurrent callers wins)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storage import WorkerStatus

LEASE = 30  # the open_queue fixture's lease_seconds


def by_id(workers):
    return {worker.worker_id: worker for worker in workers}


async def test_registered_workers_show_idle_busy_gone_and_stopped(queue, add_job, clock):
    start = clock.now
    await queue.register_worker("gpu-a", host="box-1", pid=101)
    await queue.register_worker("gpu-b", host="box-2", pid=202)
    await queue.register_worker("gpu-c", host="box-2", pid=203)
    job = await add_job(queue, 1, 1)
    claim = await queue.claim("gpu-a")
    assert claim.job_id == job.id

    workers = by_id(await queue.workers())
    assert sorted(workers) == ["gpu-a", "gpu-b", "gpu-c"]
    a = workers["gpu-a"]
    assert (a.host, a.pid, a.status, a.jobs) == ("box-1", 101, WorkerStatus.BUSY, (job.id,))
    assert a.started_at.timestamp() == pytest.approx(start) and a.stopped_at is None
    assert workers["gpu-b"].status is WorkerStatus.IDLE and workers["gpu-b"].jobs == ()

    # gpu-a and gpu-b keep beating; gpu-c falls silent; gpu-b then shuts down cleanly.
    for _ in range(3):
        clock.advance(LEASE / 2)
        assert await queue.worker_heartbeat("gpu-a") is True
        assert await queue.worker_heartbeat("gpu-b") is True
        await queue.heartbeat(claim)
    await queue.unregister_worker("gpu-b")
    workers = by_id(await queue.workers())
    assert workers["gpu-a"].status is WorkerStatus.BUSY
    assert workers["gpu-a"].last_beat_at.timestamp() == pytest.approx(clock.now)
    assert workers["gpu-b"].status is WorkerStatus.STOPPED
    assert workers["gpu-b"].stopped_at.timestamp() == pytest.approx(clock.now)
    gone = workers["gpu-c"]
    assert gone.status is WorkerStatus.GONE
    assert clock.now - gone.last_beat_at.timestamp() == pytest.approx(1.5 * LEASE)

    # The job ends: gpu-a is idle again. stats() carries the same rows.
    await queue.set_result(claim, "/out/1.mp4")
    await queue.complete(claim, 9)
    stats = await queue.stats()
    assert {w.worker_id: (w.status, w.jobs) for w in stats.workers} == {
        "gpu-a": (WorkerStatus.IDLE, ()),
        "gpu-b": (WorkerStatus.STOPPED, ()),
        "gpu-c": (WorkerStatus.GONE, ()),
    }


async def test_a_heartbeat_without_a_row_asks_to_register_and_restart_resets_the_row(queue, clock):
    assert await queue.worker_heartbeat("never-registered") is False
    assert await queue.workers() == []
    await queue.register_worker("gpu-a", host="box-1", pid=1)
    await queue.unregister_worker("gpu-a")
    clock.advance(100)
    await queue.register_worker("gpu-a", host="box-9", pid=2)  # the same id started again elsewhere
    (worker,) = await queue.workers()
    assert (worker.host, worker.pid, worker.status, worker.stopped_at) == ("box-9", 2, WorkerStatus.IDLE, None)
    assert worker.started_at.timestamp() == pytest.approx(clock.now)


async def test_workers_silent_for_a_day_are_forgotten_at_the_next_registration(queue, clock):
    await queue.register_worker("old", host="h", pid=1)
    clock.advance(timedelta(days=1, minutes=1).total_seconds())
    await queue.register_worker("new", host="h", pid=2)
    assert [worker.worker_id for worker in await queue.workers()] == ["new"]


async def test_a_job_leased_to_an_unregistered_worker_stays_in_running_only(queue, add_job):
    await add_job(queue, 1, 1)
    await queue.claim("legacy-worker")
    stats = await queue.stats()
    assert stats.workers == ()
    assert [job.worker_id for job in stats.running] == ["legacy-worker"]


async def test_edit_slot_once_per_interval_per_chat(queue, clock):
    assert await queue.take_edit_slot("telegram", 1, 4.0) is True
    assert await queue.take_edit_slot("telegram", 1, 4.0) is False
    assert await queue.take_edit_slot("telegram", 2, 4.0) is True  # another chat has its own slot
    assert await queue.take_edit_slot("discord", 1, 4.0) is True  # and another platform
    clock.advance(3.9)
    assert await queue.take_edit_slot("telegram", 1, 4.0) is False
    clock.advance(0.1)
    assert await queue.take_edit_slot("telegram", 1, 4.0) is True
    assert await queue.take_edit_slot("telegram", 1, 0.0) is False  # the slot taken just now runs 4 s
    with pytest.raises(ValueError):
        await queue.take_edit_slot("telegram", 1, -1)


async def test_of_concurrent_front_ends_exactly_one_takes_the_slot(open_queue, clock):
    front_ends = [await open_queue() for _ in range(4)]
    for round_ in range(3):
        answers = await asyncio.gather(
            *(front_ends[n % 4].take_edit_slot("telegram", "busy-chat", 2.0) for n in range(16))
        )
        assert answers.count(True) == 1, f"round {round_}: {answers}"
        clock.advance(2.0)


async def test_cleanup_forgets_old_edit_slots(queue, clock):
    await queue.take_edit_slot("telegram", 1, 1.0)
    clock.advance(7200)
    await queue.cleanup(timedelta(hours=1))
    rows = await queue.dialect.read(lambda conn: conn.fetch("SELECT COUNT(*) AS n FROM edit_slots"))
    assert rows[0]["n"] == 0
