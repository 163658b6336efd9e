"""SMOOTHBOT_QUEUE_URL: the bot runs the same on a PostgreSQL queue (a real server the tests start),
and a queue URL it cannot use is a one-line setting error."""

from __future__ import annotations

import asyncpg
import pytest

from bot.__main__ import main
from bot.config import Settings
from tests.bot.test_telegram import JOB_TIMEOUT, add_clip, bot_settings, replying_to, running_bot
from tests.fakes import FakeTelegram
from tests.media import make_testsrc


@pytest.fixture
async def tg():
    async with FakeTelegram() as fake:
        yield fake


async def test_the_bot_queues_on_postgresql_when_told_to(tg, tmp_path, postgres_url):
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=0.4)
    settings = bot_settings(tg, tmp_path, queue_url=postgres_url)
    assert settings.queue_location == postgres_url
    assert "pw-s3kr1t" not in repr(Settings(_env_file=None, queue_url="postgresql://u:pw-s3kr1t@h/db"))
    async with running_bot(tg, settings):
        message_id = tg.send_user_message(42, 42, video=add_clip(tg, clip), caption="/fps 50")
        queued = await tg.wait_for("sendMessage", replying_to(message_id), timeout=10)
        assert queued.params["text"] == "Queued — position 1"
        sent = await tg.wait_for("sendVideo", lambda c: c.ok, timeout=JOB_TIMEOUT)
    assert replying_to(message_id)(sent)
    conn = await asyncpg.connect(postgres_url)
    try:
        rows = await conn.fetch("SELECT state, delivered, message_id, options FROM jobs")
    finally:
        await conn.close()
    assert [(r["state"], r["delivered"], r["message_id"]) for r in rows] == [("done", True, str(message_id))]
    assert not (tmp_path / "data" / "smoothbot.sqlite3").exists()  # nothing went to the default file


def test_default_queue_is_the_sqlite_file_in_the_data_dir(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    assert settings.queue_location == f"sqlite:///{tmp_path}/data/smoothbot.sqlite3"
    assert Settings(_env_file=None, queue_url="  ").queue_location.startswith("sqlite:///")


def test_an_unusable_queue_url_is_a_setting_error(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("SMOOTHBOT_QUEUE_URL", "mysql://host/db")
    monkeypatch.setenv("TELEGRAM_TOKEN", "123:abc")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "bad setting queue_url" in err and "postgresql://" in err and "Traceback" not in err


def test_the_file_store_is_the_data_dir_unless_a_url_says_otherwise(tmp_path):
    from bot.__main__ import open_files
    from storage import LocalFileStore, S3FileStore

    settings = Settings(_env_file=None, data_dir=tmp_path / "data", files_url=" ")
    store = open_files(settings)
    assert isinstance(store, LocalFileStore) and store.root == tmp_path / "data"
    on_s3 = settings.model_copy(update={"files_url": "s3://videos/smoothbot", "s3_endpoint_url": "http://127.0.0.1:9"})
    store = open_files(on_s3)
    assert isinstance(store, S3FileStore) and (store.bucket, store.prefix) == ("videos", "smoothbot")


def test_an_unusable_files_url_is_a_setting_error(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SMOOTHBOT_FILES_URL", "ftp://host/dir")
    assert main(["--role", "worker"]) == 2
    err = capsys.readouterr().err
    assert "bad setting files_url" in err and "s3://bucket/prefix" in err and "Traceback" not in err
