"""What front-ends rely on, on both engines: the per-user cap under concurrent front-ends, the change
feed, wake-ups, and the delivery lease that lets exactly one front-end send a finished job."""

from __future__ import annotations

import asyncio

import pytest

from storage import JobState, LeaseLostError, QueueFullError

LEASE = 30


async def test_the_cap_holds_under_concurrent_front_ends(open_queue):
    # Four front-ends (four connections or pools) get the same user's eight videos at once.
    front_ends = [await open_queue(max_queued_per_user=3) for _ in range(4)]

    async def send(n: int):
        try:
            return await front_ends[n % 4].enqueue("telegram", "chat", "eager", n, f"/in/{n}", {})
        except QueueFullError as refusal:
            return refusal

    outcomes = await asyncio.gather(*(send(n) for n in range(8)))
    accepted = [outcome for outcome in outcomes if not isinstance(outcome, QueueFullError)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, QueueFullError)]
    assert len(accepted) == 3 and all(result.created for result in accepted)
    assert len(refused) == 5 and {(r.queued, r.limit) for r in refused} == {(3, 3)}
    assert len(await front_ends[0].jobs_for_user("telegram", "chat", "eager")) == 3


async def test_change_feed_shows_each_change_once_in_order(queue, add_job, clock):
    start = await queue.latest_change()
    before = await add_job(queue, "a", 1)
    first = await queue.changes_since(start)
    assert [job.id for job in first.jobs] == [before.id]
    assert (await queue.changes_since(first.cursor)).jobs == ()  # nothing new

    other = await add_job(queue, "b", 1)
    claim = await queue.claim("worker")  # before's user goes first
    assert claim.job_id == before.id
    await queue.progress(claim, 0.4)
    await queue.heartbeat(claim)  # a heartbeat is not a change anyone shows
    second = await queue.changes_since(first.cursor)
    assert [job.id for job in second.jobs] == [other.id, before.id]  # change order; each job once, as it is now
    assert second.jobs[1].state is JobState.RUNNING and second.jobs[1].progress == pytest.approx(0.4)

    await queue.cancel("telegram", "b", "b")
    await queue.set_result(claim, "/out/a")
    third = await queue.changes_since(second.cursor)
    assert [(job.id, job.state) for job in third.jobs] == [(other.id, JobState.CANCELLED), (before.id, JobState.RUNNING)]
    assert third.jobs[1].has_result

    later = await queue.latest_change()
    assert (await queue.changes_since(later)).jobs == ()


async def test_wake_ups_from_this_process(queue, add_job):
    listening = getattr(queue.dialect, "listening", None)
    if listening is not None:  # PostgreSQL wakes everyone once its LISTEN connection is up
        await asyncio.wait_for(listening.wait(), 30)
    assert await queue.wait_for_work(0.01) is False  # nothing happened: the poll's timeout
    woken = asyncio.create_task(queue.wait_for_work(60))
    changed = asyncio.create_task(queue.wait_for_changes(60))
    await asyncio.sleep(0.01)
    assert not woken.done() and not changed.done()
    await add_job(queue, "a", 1)
    assert await asyncio.wait_for(woken, 30) is True
    assert await asyncio.wait_for(changed, 30) is True


async def finished_job(queue, add_job, result: str | None = "/out/r.mp4"):
    job = await add_job(queue, "u", 1)
    claim = await queue.claim("gpu-worker")
    if result is not None:
        await queue.set_result(claim, result)
    return job, claim


async def test_a_worker_hands_over_and_exactly_one_front_end_delivers(open_queue, add_job, clock):
    queue = await open_queue()
    other_front_end = await open_queue()
    job, claim = await finished_job(queue, add_job)
    assert await queue.undelivered() == []  # still running
    handed = await queue.hand_over(claim)
    assert handed.state is JobState.DONE and not handed.delivered and handed.result_path == "/out/r.mp4"
    with pytest.raises(LeaseLostError):  # the worker's claim is over
        await queue.complete(claim, 1)

    assert [j.id for j in await queue.undelivered()] == [job.id]
    mine = await queue.claim_delivery(job.id, "front-end-1")
    assert mine is not None and mine.job.result_path == "/out/r.mp4"
    assert await other_front_end.claim_delivery(job.id, "front-end-2") is None  # exactly one sends
    assert await queue.undelivered() == []
    delivered = await queue.mark_delivered(mine, 555)
    assert delivered.delivered and delivered.reply_message_id == "555"
    assert await other_front_end.claim_delivery(job.id, "front-end-2") is None
    assert await queue.undelivered() == []


async def test_a_dead_front_ends_delivery_passes_to_another(open_queue, add_job, clock):
    queue = await open_queue()
    job, claim = await finished_job(queue, add_job)
    await queue.hand_over(claim)
    dead = await queue.claim_delivery(job.id, "front-end-1")
    clock.advance(LEASE + 1)  # it died while sending
    assert [j.id for j in await queue.undelivered()] == [job.id]
    alive = await queue.claim_delivery(job.id, "front-end-2")
    assert alive is not None
    with pytest.raises(LeaseLostError):
        await queue.mark_delivered(dead, 1)
    assert (await queue.mark_delivered(alive, 2)).reply_message_id == "2"

    # Giving a lease back makes the job due again at once.
    second, claim = await finished_job(queue, lambda q, u, m: add_job(q, "v", 2))
    await queue.hand_over(claim)
    lease = await queue.claim_delivery(second.id, "front-end-1")
    await queue.release_delivery(lease)
    assert await queue.claim_delivery(second.id, "front-end-2") is not None


async def test_failures_and_cancellations_are_due_for_delivery_too(queue, add_job):
    failed_job, claim = await finished_job(queue, add_job, result=None)
    await queue.fail(claim, "That file is not a video.")
    cancelled = await add_job(queue, "w", 1)
    await queue.cancel("telegram", "w", "w")
    assert [j.id for j in await queue.undelivered()] == [failed_job.id, cancelled.id]
    lease = await queue.claim_delivery(failed_job.id, "front-end")
    assert lease.job.error == "That file is not a video."
    await queue.mark_delivered(lease, 3)
    assert [j.id for j in await queue.undelivered()] == [cancelled.id]


async def test_hand_over_needs_a_result(queue, add_job):
    from storage import JobStateError

    _, claim = await finished_job(queue, add_job, result=None)
    with pytest.raises(JobStateError, match="set_result"):
        await queue.hand_over(claim)


async def test_the_worker_records_how_to_send_and_why_it_failed(queue, add_job):
    job, claim = await finished_job(queue, add_job, result=None)
    await queue.set_result(claim, "/out/r.mp4", {"kind": "video", "caption": "25 → 50 fps", "width": 96})
    handed = await queue.hand_over(claim)
    assert handed.outcome == {"kind": "video", "caption": "25 → 50 fps", "width": 96}
    lease = await queue.claim_delivery(job.id, "front-end")
    assert lease.job.outcome["caption"] == "25 → 50 fps"

    second, claim = await finished_job(queue, lambda q, u, m: add_job(q, "v", 2), result=None)
    failed = await queue.fail(claim, "Took longer than the limit.", kind="time_limit")
    assert failed.outcome == {"failure": "time_limit"} and failed.error == "Took longer than the limit."


async def test_a_made_but_unsent_result_can_still_be_cancelled(queue, add_job):
    job, claim = await finished_job(queue, add_job)
    await queue.hand_over(claim)
    lease = await queue.claim_delivery(job.id, "front-end")  # sending, when the user says /cancel
    outcome = await queue.cancel("telegram", job.chat_id, job.user_id)
    assert outcome.status.value == "stopping" and outcome.job.state is JobState.CANCELLED
    assert (await queue.cancel("telegram", job.chat_id, job.user_id)).status.value == "nothing"
    assert (await queue.cancel("telegram", job.chat_id, job.user_id, job.id)).status.value == "finished"
    assert (await queue.get(job.id)).state is JobState.CANCELLED  # what the front-end re-reads before a send
    await queue.mark_delivered(lease, None)  # the front-end said "Cancelled." instead
    assert await queue.undelivered() == []

    sent, claim = await finished_job(queue, lambda q, u, m: add_job(q, "v", 2))
    await queue.hand_over(claim)
    lease = await queue.claim_delivery(sent.id, "front-end")
    await queue.mark_delivered(lease, 9)
    assert (await queue.cancel("telegram", "v", "v")).status.value == "nothing"  # delivered is final


async def test_a_delivery_lease_is_kept_and_a_send_can_fail(open_queue, add_job, clock):
    queue = await open_queue()
    job, claim = await finished_job(queue, add_job)
    await queue.hand_over(claim)
    lease = await queue.claim_delivery(job.id, "front-end-1")
    clock.advance(LEASE - 1)
    assert await queue.extend_delivery(lease)
    clock.advance(LEASE - 1)  # past the first lease's end, inside the extended one
    assert await queue.claim_delivery(job.id, "front-end-2") is None
    failed = await queue.fail_delivery(lease, "Too large for this chat.", kind="too_large")
    assert failed.state is JobState.FAILED and failed.error == "Too large for this chat." and not failed.delivered
    assert failed.outcome == {"failure": "too_large"}
    assert (await queue.mark_delivered(lease, None)).delivered  # the same lease tells the user
    assert not await queue.extend_delivery(lease)  # delivered: nothing to keep

    second, claim = await finished_job(queue, lambda q, u, m: add_job(q, "v", 2))
    await queue.hand_over(claim)
    dead = await queue.claim_delivery(second.id, "front-end-1")
    clock.advance(LEASE + 1)
    taken = await queue.claim_delivery(second.id, "front-end-2")
    assert taken is not None and not await queue.extend_delivery(dead)
    with pytest.raises(LeaseLostError):
        await queue.fail_delivery(dead, "Too large.")


async def test_a_front_end_asks_only_for_its_own_platforms(queue):
    for message, platform in enumerate(["discord", "telegram", "discord", "console"]):
        await queue.enqueue(platform, "c", "u", message, f"/in/{message}", {})
        await queue.cancel(platform, "c", "u")
    assert [job.platform for job in await queue.undelivered()] == ["discord", "telegram", "discord", "console"]
    assert [job.platform for job in await queue.undelivered(limit=1, platforms=["telegram"])] == ["telegram"]
    assert [job.platform for job in await queue.undelivered(platforms=("telegram", "console"))] == [
        "telegram", "console"]
    assert await queue.undelivered(platforms=[]) == []
