"""The file store on a directory and on a real S3 server (SeaweedFS on loopback): keys made from
random bytes and job ids only, put/get/delete, retention through the queue, and the URL factories."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from storage import FileMissingError, LocalFileStore, S3FileStore, SqliteJobQueue, open_files, open_queue
from storage.files import checked_key, is_key
from storage.urls import sqlite_path


@pytest.fixture(params=["local", "s3"])
def files(request, tmp_path):
    if request.param == "local":
        return LocalFileStore(tmp_path / "store")
    seaweed = request.getfixturevalue("seaweed")
    return open_files("s3://smoothbot/test-run", endpoint_url=seaweed.endpoint_url, **seaweed.client_options())


@pytest.fixture
def video(tmp_path) -> Path:
    # A name a user chose: path tricks, spaces, a query string, upper case.
    directory = tmp_path / "upload"
    directory.mkdir()
    path = directory / "..%2F..%2Fetc passwd?x=1#frag.MP4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42 a real-ish video payload" * 1000)
    return path


async def test_put_get_delete_round_trip(files, video, tmp_path):
    key = await files.put_input(video)
    assert re.fullmatch(r"in/[0-9a-f]{32}\.mp4", key)  # nothing of the user's name but a plain suffix
    assert key != await files.put_input(video)  # every upload its own key
    assert await files.exists(key)
    fetched = await files.get(key, tmp_path / "work" / "input.mp4")
    assert fetched.read_bytes() == video.read_bytes()

    result = tmp_path / "result.gif"
    result.write_bytes(b"GIF89a result")
    out_key = await files.put_result(42, result)
    assert out_key == "out/42.gif"
    assert (await files.get(out_key, tmp_path / "back.gif")).read_bytes() == b"GIF89a result"

    assert await files.delete(key) is True
    assert await files.delete(key) is False  # twice is harmless
    assert not await files.exists(key)
    with pytest.raises(FileMissingError, match="does not exist"):
        await files.get(key, tmp_path / "gone.mp4")


@pytest.mark.parametrize("bad", ["../etc/passwd", "/abs/path", "in/../../x", "in/short", "out/12/../../x", "video.mp4"])
async def test_keys_not_made_here_are_refused(files, bad, tmp_path):
    with pytest.raises(ValueError, match="not a file-store key"):
        await files.get(bad, tmp_path / "x")
    with pytest.raises(ValueError):
        await files.delete(bad)


async def test_local_store_writes_only_under_its_root(video, tmp_path):
    store = LocalFileStore(tmp_path / "root")
    key = await store.put_input(video)
    assert store.path(key).parent == tmp_path / "root" / "in"
    assert [p.name for p in (tmp_path / "root" / "in").iterdir()] == [Path(key).name]  # no partial left


async def test_retention_deletes_input_and_result_from_the_store(files, video, tmp_path, clock):
    async with SqliteJobQueue.open(tmp_path / "q.sqlite3", clock=clock, files=files) as queue:
        job = (await queue.enqueue("telegram", 1, 1, 1, await files.put_input(video), {})).job
        claim = await queue.claim("worker")
        result = tmp_path / "result.mp4"
        result.write_bytes(b"result")
        await queue.set_result(claim, await files.put_result(job.id, result))
        await queue.complete(claim, 7)
        kept = await queue.get(job.id)
        clock.advance(timedelta(days=2).total_seconds())

        assert await queue.cleanup(timedelta(days=1)) == 1
        assert not await files.exists(kept.input_path) and not await files.exists(kept.result_path)
        assert (await queue.get(job.id)).files_purged_at is not None


def test_open_files_urls(tmp_path):
    assert isinstance(open_files(tmp_path), LocalFileStore)
    assert open_files(f"file://{tmp_path}").root == tmp_path
    s3 = open_files("s3://bucket/some/prefix/", endpoint_url="http://127.0.0.1:1",
                    aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
    assert isinstance(s3, S3FileStore) and (s3.bucket, s3.prefix) == ("bucket", "some/prefix")
    assert s3.object_name("out/3.mp4") == "some/prefix/out/3.mp4"
    with pytest.raises(ValueError, match="names no bucket"):
        open_files("s3:///prefix")
    with pytest.raises(ValueError, match="unsupported file store URL"):
        open_files("ftp://host/dir")
    assert checked_key("out/3.mp4") == "out/3.mp4"


async def test_open_queue_urls(tmp_path):
    assert sqlite_path("sqlite:///data/q.sqlite3") == "data/q.sqlite3"  # three slashes: relative
    assert sqlite_path("sqlite:////var/lib/q.sqlite3") == "/var/lib/q.sqlite3"
    async with open_queue(f"sqlite:///{tmp_path}/q.sqlite3") as queue:  # four slashes: absolute
        assert queue.path == f"{tmp_path}/q.sqlite3"
    with pytest.raises(ValueError, match="unsupported queue URL"):
        open_queue("mysql://host/db")
    with pytest.raises(ValueError, match="names no file"):
        open_queue("sqlite:///")


async def test_jobs_from_before_the_store_keep_local_paths_that_retention_still_deletes(video, tmp_path, clock):
    """A deployment that turns the file store on has jobs whose paths are local files: those are read
    and deleted as files, never handed to the store as keys."""
    files = LocalFileStore(tmp_path / "store")
    legacy = tmp_path / "inbox" / "telegram-1-1.mp4"
    legacy.parent.mkdir()
    legacy.write_bytes(video.read_bytes())
    async with SqliteJobQueue.open(tmp_path / "q.sqlite3", clock=clock) as before:
        job = (await before.enqueue("telegram", 1, 1, 1, legacy, {})).job
    assert not is_key(job.input_path) and is_key(await files.put_input(video))
    async with SqliteJobQueue.open(tmp_path / "q.sqlite3", clock=clock, files=files) as queue:
        claim = await queue.claim("worker")
        await queue.fail(claim, "That file is not a video.")
        assert await queue.purge_files(job.id) == [str(legacy)]
    assert not legacy.exists()
