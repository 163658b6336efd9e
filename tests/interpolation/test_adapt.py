"""Test-time adaptation in best mode (interpolation/models/adapt.py), with the real RIFE on tiny clips."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from interpolation import api
from interpolation.errors import CancelledError
from interpolation.models import adapt as tta
from interpolation.models.rife import RifeInterpolator
from interpolation.options import Options, Progress

from ..media import moving_square_frames, write_frames

#: Small enough for a unit test: a few steps on 64 px crops.
TINY = tta.AdaptSettings(steps=3, crop=64, triplets=8, guard_every=4, min_triplets=4)


def triplets_of(frames: list[np.ndarray]) -> list[tta.Triplet]:
    return [(frames[k], frames[k + 1], frames[k + 2]) for k in range(len(frames) - 2)]


def snapshot(model: RifeInterpolator) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.network.state_dict().items()}


def test_triplets_skip_cuts_and_repeats_and_are_spread_over_the_clip():
    duplicate = [False] * 12
    cut_before = [False] * 12
    duplicate[3] = True  # frame 3 repeats frame 2
    cut_before[8] = True  # frames 7 and 8 are different shots
    starts = tta.usable_starts(duplicate, cut_before)
    assert starts == [0, 3, 4, 5, 8, 9]
    assert tta.chosen_starts(list(range(100)), 5) == [0, 25, 50, 74, 99]
    assert tta.chosen_starts(starts, 10) == starts


def test_collected_triplets_are_windows_of_consecutive_frames_and_reading_stops_after_the_last():
    frames = [np.full((50, 900, 3), k, np.uint8) for k in range(20)]
    read = []

    def stream():
        for index, frame in enumerate(frames):
            read.append(index)
            yield frame

    triplets = tta.collect_triplets(stream(), [2, 9], window=320)
    assert [[int(f[0, 0, 0]) for f in triplet] for triplet in triplets] == [[2, 3, 4], [9, 10, 11]]
    assert all(f.shape == (50, 320, 3) for triplet in triplets for f in triplet)
    assert read[-1] == 11  # nothing decoded past the last triplet


@pytest.mark.slow
def test_adaptation_changes_a_copy_of_the_weights_and_leaves_the_shared_model_alone():
    shared = RifeInterpolator(device="cpu", quality="best")
    before = snapshot(shared)
    steps = []
    adaptation = tta.adapt(shared, triplets_of(moving_square_frames(10, width=96, height=64, step=4)), 1.0, TINY,
                           step_done=lambda done, total: steps.append((done, total)))
    assert adaptation is not None
    assert steps == [(1, 3), (2, 3), (3, 3)]
    after = snapshot(shared)
    assert all(torch.equal(before[name], after[name]) for name in before)  # the shared model is untouched
    adapted = adaptation.model.network.state_dict()
    changed = [name for name in before if not torch.equal(before[name], adapted[name])]
    assert len(changed) > len(before) // 2  # every layer trains
    assert adaptation.model is not shared and adaptation.model.quality == "best"
    assert adaptation.model.network is not shared.network


@pytest.mark.slow
def test_the_harm_guard_falls_back_when_the_adapted_weights_score_worse():
    shared = RifeInterpolator(device="cpu", quality="best")
    ruinous = replace(TINY, lr=0.05)  # steps this large wreck the network
    adaptation = tta.adapt(shared, triplets_of(moving_square_frames(10, width=96, height=64, step=4)), 1.0, ruinous)
    assert adaptation is not None
    assert adaptation.guard_adapted_db < adaptation.guard_published_db
    assert not adaptation.kept
    assert "did not help" in adaptation.note and "published weights used" in adaptation.note


def test_too_few_triplets_teach_nothing_and_nothing_is_trained():
    shared = RifeInterpolator(device="cpu", quality="best")
    frames = moving_square_frames(4, width=96, height=64)
    assert tta.adapt(shared, triplets_of(frames), 1.0, TINY) is None


@pytest.mark.slow
def test_cancel_during_adaptation_stops_it_between_steps():
    shared = RifeInterpolator(device="cpu", quality="best")
    steps = []
    with pytest.raises(CancelledError):
        tta.adapt(shared, triplets_of(moving_square_frames(10, width=96, height=64, step=4)), 1.0,
                  replace(TINY, steps=50), step_done=lambda done, total: steps.append(done),
                  cancelled=lambda: len(steps) >= 2)
    assert steps == [1, 2]


def clip(tmp_path: Path, count: int = 16) -> Path:
    return write_frames(tmp_path / "in.mkv", moving_square_frames(count, width=128, height=64, step=4), 25)


@pytest.mark.slow
def test_best_mode_adapts_says_so_and_reports_adapting_progress(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(tta, "SETTINGS", TINY)
    seen: list[Progress] = []
    result = api.run(clip(tmp_path), tmp_path / "out.mp4", Options(quality="best"), progress=seen.append)
    adapting = [p for p in seen if p.stage == "adapting"]
    assert [p.frames_done for p in adapting] == [0, 1, 2, 3] and all(p.frames_total == 3 for p in adapting)
    assert seen[-1].stage == "smoothing" and seen[-1].frames_done == result.frames_out
    assert sum("adapt" in note for note in result.notes) == 1
    assert result.output_path.is_file()


@pytest.mark.slow
def test_fast_mode_and_adapt_off_do_not_adapt(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(tta, "SETTINGS", TINY)
    for options in (Options(quality="fast"), Options(quality="best", adapt=False)):
        seen: list[Progress] = []
        result = api.run(clip(tmp_path), tmp_path / "out.mp4", options, progress=seen.append)
        assert not any(p.stage == "adapting" for p in seen)
        assert not any("adapt" in note for note in result.notes)


@pytest.mark.slow
def test_cancel_while_adapting_publishes_nothing(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(tta, "SETTINGS", replace(TINY, steps=50))
    seen: list[Progress] = []
    with pytest.raises(CancelledError):
        api.run(clip(tmp_path), tmp_path / "out.mp4", Options(quality="best"), progress=seen.append,
                cancelled=lambda: any(p.stage == "adapting" and p.frames_done >= 2 for p in seen))
    assert max(p.frames_done for p in seen if p.stage == "adapting") == 2
    assert not any(p.stage == "smoothing" for p in seen)
    assert not (tmp_path / "out.mp4").exists()


def test_a_clip_too_short_to_teach_anything_is_smoothed_without_adapting(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(tta, "SETTINGS", replace(TINY, min_triplets=20))
    seen: list[Progress] = []
    result = api.run(clip(tmp_path, 8), tmp_path / "out.mp4", Options(quality="best"), progress=seen.append)
    assert not any(p.stage == "adapting" for p in seen)
    assert not any("adapt" in note for note in result.notes)


def test_the_status_says_adapting_while_the_model_adapts():
    from bot.replies import progress_text

    assert progress_text(Progress(1, 4, 2.0, stage="adapting")) == "Adapting the model to this clip… 25%"
    assert progress_text(Progress(1, 4, 2.0)).startswith("Smoothing… 25%")
