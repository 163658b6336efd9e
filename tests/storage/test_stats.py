"""``stats()``: the read-only view behind metrics and ``python -m bot status`` (both engines)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage import JobState


async def test_an_empty_queue_reads_zero_everywhere(queue):
    stats = await queue.stats()
    assert stats.counts == dict.fromkeys(JobState, 0)
    assert stats.depth == 0
    assert stats.oldest_queued_at is None and stats.oldest_queued_age_s is None
    assert stats.running == ()


async def test_counts_by_state_oldest_waiting_age_and_running_jobs(queue, add_job, clock):
    first = await add_job(queue, 1, 1)  # t=0; the read is at t=90
    clock.advance(30)
    await add_job(queue, 2, 1)
    await add_job(queue, 3, 1)
    await add_job(queue, 4, 1)
    clock.advance(10)
    claim = await queue.claim("gpu-a")  # the fair pick: user 1's job, the oldest
    assert claim.job_id == first.id
    clock.advance(20)
    await queue.progress(claim, 0.25)
    await queue.heartbeat(claim)
    done = await queue.claim("gpu-b")
    await queue.set_result(done, "/data/out/x.mp4")
    await queue.complete(done, 7)
    cancelled = await add_job(queue, 5, 1)
    await queue.cancel("telegram", 5, 5)
    clock.advance(30)

    stats = await queue.stats()
    assert stats.counts == {JobState.QUEUED: 2, JobState.RUNNING: 1, JobState.DONE: 1,
                            JobState.FAILED: 0, JobState.CANCELLED: 1}
    assert cancelled.id not in {job.job_id for job in stats.running}
    assert stats.depth == 2
    # Still waiting: users 3 and 4, enqueued at t=30 (user 1's job runs, user 2's is done).
    assert stats.oldest_queued_age_s == pytest.approx(60, abs=0.01)
    (running,) = stats.running
    assert running.job_id == first.id and running.worker_id == "gpu-a" and running.platform == "telegram"
    assert running.progress == pytest.approx(0.25)
    assert running.attempts == 1 and not running.cancel_requested
    # Claimed at t=40, heartbeat at t=60; the lease (30 s in these tests) ends at the read.
    assert (stats.read_at - running.last_heartbeat_at) == timedelta(seconds=30)
    assert running.lease_expires_at == stats.read_at
    assert running.started_at == stats.read_at - timedelta(seconds=50)


async def test_a_cancel_request_on_a_running_job_shows(queue, add_job):
    await add_job(queue, 1, 1)
    await queue.claim("gpu-a")
    await queue.cancel("telegram", 1, 1)
    (running,) = (await queue.stats()).running
    assert running.cancel_requested
