"""Retention deletes files but keeps rows; /status listing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage import JobNotFoundError, JobState, JobStateError


async def test_purge_after_delivery_deletes_files_and_keeps_the_row(queue, tmp_path, clock):
    source = tmp_path / "in.mp4"
    result = tmp_path / "out.mp4"
    source.write_bytes(b"input")
    job = (await queue.enqueue("telegram", 1, 1, 1, source, {"fps": 60})).job
    claim = await queue.claim("worker")
    await queue.set_result(claim, result)
    result.write_bytes(b"result")
    await queue.complete(claim, 5)

    deleted = await queue.purge_files(job.id)
    assert sorted(deleted) == sorted([str(source), str(result)])
    assert not source.exists() and not result.exists()
    kept = await queue.get(job.id)
    assert kept.state is JobState.DONE and kept.delivered and kept.reply_message_id == "5"
    assert kept.input_path is None and kept.result_path is None
    assert kept.files_purged_at is not None
    assert await queue.purge_files(job.id) == []  # idempotent


async def test_purge_refuses_a_job_still_in_use(queue, tmp_path, add_job):
    job = await add_job(queue, 1, 1)
    with pytest.raises(JobStateError, match="queued"):
        await queue.purge_files(job.id)
    with pytest.raises(JobNotFoundError):
        await queue.purge_files(999)


async def test_cleanup_deletes_files_of_old_finished_jobs_only(queue, tmp_path, clock):
    def video(name: str):
        path = tmp_path / name
        path.write_bytes(b"x")
        return path

    old_done = (await queue.enqueue("telegram", 1, 1, 1, video("old.mp4"), {})).job
    claim = await queue.claim("w")
    await queue.complete(claim, 1)
    old_cancelled = (await queue.enqueue("telegram", 1, 1, 2, video("cancelled.mp4"), {})).job
    await queue.cancel("telegram", 1, 1)
    clock.advance(timedelta(days=2).total_seconds())
    recent_failed = (await queue.enqueue("telegram", 2, 2, 1, video("recent.mp4"), {})).job
    await queue.fail(await queue.claim("w"), "Not a video.")
    waiting = (await queue.enqueue("telegram", 3, 3, 1, video("waiting.mp4"), {})).job

    assert await queue.cleanup(timedelta(days=1)) == 2
    assert not (tmp_path / "old.mp4").exists() and not (tmp_path / "cancelled.mp4").exists()
    assert (tmp_path / "recent.mp4").exists() and (tmp_path / "waiting.mp4").exists()
    for job in (old_done, old_cancelled):
        assert (await queue.get(job.id)).input_path is None
    assert (await queue.get(recent_failed.id)).input_path is not None
    assert (await queue.get(waiting.id)).state is JobState.QUEUED
    assert await queue.cleanup(timedelta(days=1)) == 0


async def test_jobs_for_user_lists_active_or_recent_jobs(open_queue, add_job):
    queue = await open_queue(max_queued_per_user=None)
    jobs = [await add_job(queue, 7, n) for n in range(4)]
    await add_job(queue, 8, 1)  # another user
    await queue.complete(await queue.claim("w"), 1)  # jobs[0] done
    other_user = await queue.claim("w")  # fair order: user 8 is served before user 7's second job
    assert other_user.job.user_id == "8"
    await queue.complete(other_user, 2)
    await queue.claim("w")  # jobs[1] running

    active = await queue.jobs_for_user("telegram", 7, "7")
    assert [job.id for job in active] == [jobs[1].id, jobs[2].id, jobs[3].id]
    assert [job.state for job in active] == [JobState.RUNNING, JobState.QUEUED, JobState.QUEUED]
    recent = await queue.jobs_for_user("telegram", 7, 7, include_finished=True, limit=3)
    assert [job.id for job in recent] == [jobs[1].id, jobs[2].id, jobs[3].id]
    everything = await queue.jobs_for_user("telegram", 7, 7, include_finished=True)
    assert [job.id for job in everything] == [job.id for job in jobs]
    assert await queue.jobs_for_user("discord", 7, 7) == []
