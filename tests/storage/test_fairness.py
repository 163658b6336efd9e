"""Fair claim order: round-robin across users (least recently served first), FIFO within a user;
``position`` predicts exactly that order."""

from __future__ import annotations

import random

import pytest


async def claim_all(queue) -> list[int]:
    order = []
    while (claim := await queue.claim("worker")) is not None:
        order.append(claim.job_id)
        await queue.complete(claim, None)
    return order


@pytest.fixture
async def uncapped(open_queue):
    return await open_queue(max_queued_per_user=None)


async def test_one_users_twenty_videos_do_not_starve_anothers_one(uncapped, add_job):
    flood = [await add_job(uncapped, "alice", n) for n in range(20)]
    single = await add_job(uncapped, "bob", 1)

    order = await claim_all(uncapped)
    assert order[1] == single.id
    assert order == [flood[0].id, single.id] + [job.id for job in flood[1:]]


async def test_three_users_interleave_round_robin_and_stay_fifo(uncapped, add_job):
    jobs = {user: [] for user in "abc"}
    for user, count in (("a", 4), ("b", 2), ("c", 3)):
        for n in range(count):
            jobs[user].append((await add_job(uncapped, user, n)).id)

    order = await claim_all(uncapped)
    a, b, c = jobs["a"], jobs["b"], jobs["c"]
    assert order == [a[0], b[0], c[0], a[1], b[1], c[1], a[2], c[2], a[3]]


async def test_a_returning_user_waits_behind_users_served_less_recently(uncapped, add_job):
    a1 = await add_job(uncapped, "a", 1)
    b1 = await add_job(uncapped, "b", 1)
    assert [(await uncapped.claim("w")).job_id for _ in range(2)] == [a1.id, b1.id]
    # b was served after a, so a's new job goes before b's, whatever the enqueue order.
    b2 = await add_job(uncapped, "b", 2)
    a2 = await add_job(uncapped, "a", 2)
    newcomer = await add_job(uncapped, "c", 1)  # never served: first in line
    assert await uncapped.positions() == {newcomer.id: 1, a2.id: 2, b2.id: 3}
    assert [(await uncapped.claim("w")).job_id for _ in range(3)] == [newcomer.id, a2.id, b2.id]


async def test_same_user_in_two_chats_is_one_user(uncapped):
    first = (await uncapped.enqueue("telegram", "group-1", "u", 1, "/in/1", {})).job
    second = (await uncapped.enqueue("telegram", "group-2", "u", 1, "/in/2", {})).job
    other = (await uncapped.enqueue("telegram", "group-1", "v", 2, "/in/3", {})).job
    assert await claim_all(uncapped) == [first.id, other.id, second.id]


async def test_position_matches_the_actual_claim_order(uncapped, add_job, clock):
    rng = random.Random(4)
    users = [f"user{n}" for n in range(6)]
    messages = iter(range(10_000))
    for _ in range(40):
        await add_job(uncapped, rng.choice(users), next(messages))
    claimed = []
    # Interleave: claims update who was served, new jobs arrive, a worker dies with one job.
    for round_number in range(12):
        predicted = await uncapped.positions()
        assert sorted(predicted.values()) == list(range(1, len(predicted) + 1))
        expected_next = min(predicted, key=predicted.get)
        claim = await uncapped.claim("worker")
        assert claim.job_id == expected_next
        claimed.append(claim.job_id)
        if round_number == 5:
            clock.advance(31)  # this worker dies; its job returns at its user's turn
        else:
            await uncapped.complete(claim, None)
        for _ in range(rng.randint(0, 3)):
            await add_job(uncapped, rng.choice(users), next(messages))

    predicted = await uncapped.positions()
    expected = sorted(predicted, key=predicted.get)
    actual = await claim_all(uncapped)
    assert actual == expected
    assert set(actual).isdisjoint(claimed[:5] + claimed[6:])
    for job_id in actual:
        assert await uncapped.position(job_id) is None  # done now


async def test_position_is_none_for_jobs_not_waiting(queue, add_job):
    running = await add_job(queue, "a", 1)
    waiting = await add_job(queue, "b", 1)
    await queue.claim("worker")
    assert await queue.position(running.id) is None
    assert await queue.position(waiting.id) == 1
    assert await queue.position(12345) is None
