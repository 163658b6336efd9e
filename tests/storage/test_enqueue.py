"""Enqueue: idempotent per platform message, ids as text, options kept verbatim, per-user cap."""

from __future__ import annotations

import pytest

from storage import JobState, QueueConfig, QueueFullError, open_queue


async def test_same_platform_message_twice_yields_one_job(queue):
    first = await queue.enqueue("telegram", 100, 7, 55, "/data/in/a.mp4", {"fps": 60})
    # Telegram re-delivers the update after a restart: ids may now arrive as strings.
    again = await queue.enqueue("telegram", "100", "7", "55", "/data/in/a-copy.mp4", {"fps": 30})

    assert first.created and not again.created
    assert again.job.id == first.job.id
    assert again.job.input_path == "/data/in/a.mp4"  # the first enqueue wins
    assert again.job.options == {"fps": 60}
    assert await queue.positions() == {first.job.id: 1}


async def test_same_message_id_in_other_chat_or_platform_is_another_job(queue):
    a = await queue.enqueue("telegram", 1, 7, 55, "/in/a", {})
    b = await queue.enqueue("telegram", 2, 7, 55, "/in/b", {})
    c = await queue.enqueue("discord", 1, 7, 55, "/in/c", {})
    assert a.created and b.created and c.created
    assert len({a.job.id, b.job.id, c.job.id}) == 3


async def test_job_fields_on_enqueue(queue, clock):
    snowflake = 1_234_567_890_123_456_789  # Discord ids exceed 2**53; text keeps them exact
    options = {"fps": 60, "loop": True, "output": "gif", "model": "rife", "slowmo": 2.5, "future": {"x": [1]}}
    result = await queue.enqueue("discord", snowflake, snowflake + 1, snowflake + 2, "/in/v.mp4", options)
    job = result.job

    assert (job.platform, job.chat_id, job.user_id, job.message_id) == (
        "discord", str(snowflake), str(snowflake + 1), str(snowflake + 2)
    )
    assert job.options == options
    assert job.state is JobState.QUEUED
    assert (job.attempts, job.max_attempts, job.progress) == (0, 3, 0.0)
    assert job.created_at.timestamp() == pytest.approx(clock.now)
    assert job.error is job.result_path is job.status_message_id is job.reply_message_id is None
    assert not job.delivered and not job.cancel_requested
    assert await queue.get(job.id) == job


async def test_status_message_is_recorded(queue, add_job):
    job = await add_job(queue, 7, 1)
    await queue.set_status_message(job.id, 9001)
    assert (await queue.get(job.id)).status_message_id == "9001"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("whatsapp", 1, 2, 3, "/in", {}), ValueError),
        (("telegram", 1.5, 2, 3, "/in", {}), TypeError),
        (("telegram", 1, True, 3, "/in", {}), TypeError),
        (("telegram", 1, 2, "", "/in", {}), ValueError),
        (("telegram", 1, 2, 3, "", {}), ValueError),
        (("telegram", 1, 2, 3, "/in", {"fps": float("nan")}), TypeError),
        (("telegram", 1, 2, 3, "/in", {"when": object()}), TypeError),
        (("telegram", 1, 2, 3, "/in", {1: "int key"}), TypeError),
        (("telegram", 1, 2, 3, "/in", ["not", "a", "dict"]), TypeError),
    ],
)
async def test_bad_arguments_are_refused_before_touching_the_db(queue, args, error):
    with pytest.raises(error):
        await queue.enqueue(*args)
    assert await queue.positions() == {}


async def test_per_user_cap_refuses_with_a_clear_message(open_queue, add_job):
    queue = await open_queue(max_queued_per_user=2)
    first = await add_job(queue, "alice", 1)
    await add_job(queue, "alice", 2)

    with pytest.raises(QueueFullError) as refusal:
        await add_job(queue, "alice", 3)
    assert (refusal.value.queued, refusal.value.limit) == (2, 2)
    assert str(refusal.value) == (
        "You already have 2 videos waiting in the queue (the limit is 2). "
        "Please wait until one of them is finished, or cancel one, before sending another."
    )

    # Another user is not affected; a re-delivered message at the cap is still answered idempotently.
    await add_job(queue, "bob", 1)
    assert (await add_job(queue, "alice", 1)).id == first.id

    # Once one of alice's jobs is running, it no longer counts as queued.
    claim = await queue.claim("worker")
    assert claim.job.id == first.id
    assert (await add_job(queue, "alice", 3)).state is JobState.QUEUED


@pytest.mark.parametrize(
    "bad",
    [{"lease_seconds": 0}, {"max_attempts": 0}, {"max_queued_per_user": 0}, {"progress_interval": -1}],
)
async def test_nonsense_settings_are_refused_before_opening(db_path, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        open_queue(f"sqlite:///{db_path}", **bad)
    assert not db_path.exists()
    with pytest.raises(ValueError, match=next(iter(bad))):  # before any connection is tried
        open_queue("postgresql://nobody@127.0.0.1:1/nothing", **bad)
    assert QueueConfig().heartbeat_interval == QueueConfig().lease_seconds / 3


async def test_enqueue_tells_the_place_the_job_took_even_if_a_worker_claims_it_at_once(queue):
    """The place is read in the enqueue's own transaction: a worker woken by the enqueue may claim
    the job before anyone could ask ``position`` (the "Queued — position 1" answer still holds)."""
    first = await queue.enqueue("telegram", 1, 7, 1, "/in/a", {})
    second = await queue.enqueue("telegram", 2, 8, 1, "/in/b", {})
    assert (first.position, second.position) == (1, 2)

    claim = await queue.claim("worker-a")
    assert claim is not None and claim.job.id == first.job.id
    assert await queue.position(first.job.id) is None  # what a second read would have said
    assert first.position == 1

    again = await queue.enqueue("telegram", 2, 8, 1, "/in/b-again", {})
    assert not again.created and again.position == 1  # the re-delivered message: its job's place now
    claimed = await queue.enqueue("telegram", 1, 7, 1, "/in/a-again", {})
    assert not claimed.created and claimed.position is None  # running: no longer waiting
