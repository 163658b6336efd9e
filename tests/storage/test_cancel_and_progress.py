"""Cancel (queued at once, running by flag) and throttled progress writes."""

from __future__ import annotations

import pytest

from storage import CancelStatus, JobState, LeaseLostError


async def test_cancel_a_queued_job_at_once(queue, add_job):
    job = await add_job(queue, 7, 1)
    outcome = await queue.cancel("telegram", 7, 7)
    assert outcome.status is CancelStatus.CANCELLED
    assert outcome.job.id == job.id and outcome.job.state is JobState.CANCELLED
    assert outcome.job.finished_at is not None
    assert str(outcome) == "Cancelled. That video was still waiting in the queue."
    assert await queue.claim("worker") is None
    assert await queue.position(job.id) is None


async def test_cancel_a_running_job_asks_the_worker_to_stop(queue, add_job):
    job = await add_job(queue, 7, 1)
    claim = await queue.claim("worker")
    assert not (await queue.heartbeat(claim)).cancel_requested

    outcome = await queue.cancel("telegram", "7", "7", job_id=job.id)
    assert outcome.status is CancelStatus.STOPPING
    assert outcome.job.state is JobState.RUNNING and outcome.job.cancel_requested
    assert (await queue.cancel("telegram", 7, 7)).status is CancelStatus.ALREADY_STOPPING

    beat = await queue.heartbeat(claim)
    assert beat.lease_ok and beat.cancel_requested
    stopped = await queue.mark_cancelled(claim)
    assert stopped.state is JobState.CANCELLED
    assert (await queue.cancel("telegram", 7, 7, job_id=job.id)).status is CancelStatus.FINISHED
    assert (await queue.cancel("telegram", 7, 7)).status is CancelStatus.NOTHING


async def test_cancel_without_id_takes_the_newest_job_not_already_stopping(queue, add_job):
    older = await add_job(queue, 7, 1)
    newer = await add_job(queue, 7, 2)
    assert (await queue.claim("worker")).job_id == older.id
    first = await queue.cancel("telegram", 7, 7)
    assert (first.status, first.job.id) == (CancelStatus.CANCELLED, newer.id)
    second = await queue.cancel("telegram", 7, 7)
    assert (second.status, second.job.id) == (CancelStatus.STOPPING, older.id)


async def test_cannot_cancel_someone_elses_job(queue, add_job):
    job = await add_job(queue, "alice", 1)
    outcome = await queue.cancel("telegram", "alice", "mallory", job_id=job.id)
    assert outcome.status is CancelStatus.NOT_FOUND and outcome.job is None
    assert (await queue.cancel("telegram", "mallory", "mallory")).status is CancelStatus.NOTHING
    assert (await queue.get(job.id)).state is JobState.QUEUED


async def test_job_whose_worker_died_after_a_cancel_request_ends_cancelled(queue, add_job, clock):
    job = await add_job(queue, 7, 1)
    await queue.claim("worker")
    await queue.cancel("telegram", 7, 7)
    clock.advance(31)
    report = await queue.recover()
    assert report.cancelled == (job.id,)
    assert (await queue.get(job.id)).state is JobState.CANCELLED


async def test_progress_writes_are_throttled(open_queue, add_job, clock):
    queue = await open_queue(progress_interval=2.0)
    job = await add_job(queue, 7, 1)
    claim = await queue.claim("worker")

    assert await queue.progress(claim, 0.1)  # the first value is always written
    clock.advance(0.5)
    assert not await queue.progress(claim, 0.2)  # too soon
    assert (await queue.get(job.id)).progress == pytest.approx(0.1)
    clock.advance(1.6)
    assert await queue.progress(claim, 0.3)
    assert (await queue.get(job.id)).progress == pytest.approx(0.3)
    assert await queue.progress(claim, 1.2)  # reaching the end is always written (and clamped)
    assert (await queue.get(job.id)).progress == 1.0
    with pytest.raises(ValueError):
        await queue.progress(claim, float("nan"))


async def test_progress_after_losing_the_lease_raises(queue, add_job, clock):
    await add_job(queue, 7, 1)
    claim = await queue.claim("worker")
    clock.advance(31)
    await queue.recover()
    with pytest.raises(LeaseLostError):
        await queue.progress(claim, 0.5)
