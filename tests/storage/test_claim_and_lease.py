"""Claims: atomic, leased with a token; expired leases come back; stale workers cannot write."""

from __future__ import annotations

import asyncio

import pytest

from storage import JobState, LeaseLostError
from storage.queue import GAVE_UP_MESSAGE

LEASE = 30  # the open_queue fixture's lease_seconds


async def test_empty_queue_claims_nothing(queue):
    assert await queue.claim("worker") is None


async def test_claim_leases_the_job(queue, add_job, clock):
    job = await add_job(queue, 7, 1, fps=60)
    claim = await queue.claim("worker-1")

    assert claim.job_id == job.id
    assert claim.worker_id == "worker-1"
    assert claim.job.state is JobState.RUNNING
    assert claim.job.attempts == 1
    assert claim.job.options == {"fps": 60}
    assert claim.lease_expires_at.timestamp() == pytest.approx(clock.now + LEASE)
    assert await queue.claim("worker-2") is None  # nothing else waits


async def test_concurrent_claimers_never_get_the_same_job(open_queue, add_job):
    producer = await open_queue(max_queued_per_user=None)
    for user in range(10):
        for message in range(6):
            await add_job(producer, user, message)
    # Two processes' worth of connections, several coroutines on each.
    queues = [await open_queue(), await open_queue()]

    async def claimer(queue, name):
        claimed = []
        while (claim := await queue.claim(name)) is not None:
            claimed.append(claim.job_id)
        return claimed

    results = await asyncio.gather(*(claimer(queues[n % 2], f"w{n}") for n in range(6)))
    everything = [job_id for claimed in results for job_id in claimed]
    assert len(everything) == 60
    assert len(set(everything)) == 60


async def test_heartbeat_keeps_the_lease_alive(queue, add_job, clock):
    await add_job(queue, 7, 1)
    claim = await queue.claim("worker-1")
    for _ in range(5):
        clock.advance(LEASE * 0.6)
        beat = await queue.heartbeat(claim)
        assert beat.lease_ok and not beat.cancel_requested
        assert beat.lease_expires_at.timestamp() == pytest.approx(clock.now + LEASE)
    # 3 leases' worth of time went by, yet nobody else can take the job.
    assert await queue.claim("worker-2") is None


async def test_expired_lease_returns_the_job_and_counts_the_attempt(queue, add_job, clock):
    job = await add_job(queue, 7, 1)
    first = await queue.claim("worker-1")
    clock.advance(LEASE + 1)

    assert await queue.position(job.id) == 1  # the next claim will take it back
    second = await queue.claim("worker-2")
    assert second.job_id == job.id
    assert second.job.attempts == 2
    assert second.token != first.token
    # The first worker learns it lost the job; its writes are refused.
    beat = await queue.heartbeat(first)
    assert not beat.lease_ok


async def test_out_of_attempts_fails_with_a_clear_message(open_queue, add_job, clock):
    queue = await open_queue(max_attempts=2)
    job = await add_job(queue, 7, 1)
    for attempt in (1, 2):
        claim = await queue.claim("worker")
        assert claim.job.attempts == attempt
        clock.advance(LEASE + 1)  # the worker dies each time

    assert await queue.claim("worker") is None  # no endless loop
    failed = await queue.get(job.id)
    assert failed.state is JobState.FAILED
    assert failed.error == GAVE_UP_MESSAGE % 2
    assert "interrupted 2 times" in failed.error
    assert failed.finished_at is not None

    # Nobody told the user yet: the worker finds the failure and reports it exactly once.
    assert [j.id for j in await queue.unreported_failures()] == [job.id]
    reported = await queue.mark_reported(job.id, 321)
    assert reported.delivered and reported.reply_message_id == "321"
    assert await queue.unreported_failures() == []


async def test_recover_at_start_up(queue, add_job, clock):
    expired = await add_job(queue, 1, 1)
    mine = await add_job(queue, 2, 1)
    other = await add_job(queue, 3, 1)
    claims = {c.job_id: c for c in [await queue.claim("old"), await queue.claim("me"), await queue.claim("other")]}
    assert set(claims) == {expired.id, mine.id, other.id}

    nothing = await queue.recover()
    assert nothing.total == 0

    # "old"'s lease is renewed by nobody; "other" keeps heartbeating; "me" restarts.
    clock.advance(LEASE - 1)
    await queue.heartbeat(claims[other.id])
    clock.advance(2)
    report = await queue.recover(worker_id="me")

    assert set(report.requeued) == {expired.id, mine.id}
    assert report.failed == report.cancelled == ()
    assert (await queue.get(other.id)).state is JobState.RUNNING
    assert (await queue.heartbeat(claims[other.id])).lease_ok


async def test_release_gives_the_job_back_without_spending_an_attempt(queue, add_job):
    job = await add_job(queue, 7, 1)
    claim = await queue.claim("worker")
    released = await queue.release(claim)
    assert released.state is JobState.QUEUED and released.attempts == 0
    again = await queue.claim("worker")
    assert again.job_id == job.id and again.job.attempts == 1


async def test_stale_worker_cannot_write_after_its_job_was_reclaimed(queue, add_job, clock):
    job = await add_job(queue, 7, 1)
    stale = await queue.claim("slow-worker")
    clock.advance(LEASE + 1)
    fresh = await queue.claim("new-worker")
    assert fresh.job_id == stale.job_id

    for write in (
        lambda: queue.complete(stale, 1),
        lambda: queue.fail(stale, "boom"),
        lambda: queue.set_result(stale, "/out/stale.mp4"),
        lambda: queue.mark_cancelled(stale),
        lambda: queue.release(stale),
        lambda: queue.progress(stale, 0.5),
    ):
        with pytest.raises(LeaseLostError, match=f"job {job.id} is no longer leased"):
            await write()

    still = await queue.get(job.id)
    assert still.state is JobState.RUNNING and still.result_path is None and not still.delivered
    done = await queue.complete(fresh, 2)
    assert done.state is JobState.DONE and done.reply_message_id == "2"


async def test_finished_claim_cannot_be_finished_again(queue, add_job):
    await add_job(queue, 7, 1)
    claim = await queue.claim("worker")
    await queue.complete(claim, 10)
    with pytest.raises(LeaseLostError):
        await queue.fail(claim, "late failure")
    with pytest.raises(LeaseLostError):
        await queue.complete(claim, 11)


async def test_worker_failure_waits_for_reporting(queue, add_job):
    job = await add_job(queue, 7, 1)
    claim = await queue.claim("worker")
    failed = await queue.fail(claim, "That file is not a video.")
    assert failed.state is JobState.FAILED and failed.error == "That file is not a video."
    assert not failed.delivered
    assert [j.id for j in await queue.unreported_failures()] == [job.id]
    await queue.mark_reported(job.id, None)
    assert await queue.unreported_failures() == []


async def test_a_failure_needs_a_message_for_the_user(queue, add_job):
    await add_job(queue, 7, 1)
    claim = await queue.claim("worker")
    with pytest.raises(ValueError):
        await queue.fail(claim, "  ")
    assert (await queue.get(claim.job_id)).state is JobState.RUNNING


async def test_result_ready_then_crash_is_redelivered_exactly_once(queue, add_job, clock):
    job = await add_job(queue, 7, 1)
    first = await queue.claim("worker")
    await queue.progress(first, 0.5)
    await queue.set_result(first, "/data/out/result.mp4")
    clock.advance(LEASE + 1)  # crash after the result was written, before it was sent

    second = await queue.claim("worker")
    assert second.job_id == job.id
    assert second.job.has_result and second.job.result_path == "/data/out/result.mp4"
    assert second.job.progress == 1.0  # nothing to compute again
    delivered = await queue.complete(second, 77)
    assert delivered.delivered and delivered.state is JobState.DONE

    clock.advance(10 * LEASE)  # any later crash or restart never brings it back
    assert (await queue.recover()).total == 0
    assert await queue.claim("worker") is None
    assert (await queue.get(job.id)).reply_message_id == "77"
