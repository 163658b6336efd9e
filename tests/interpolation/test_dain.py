"""DAIN: the original checkpoint layout loads strictly, bad checkpoints get one clear line, any
size runs end to end, and ``--model dain --weights`` goes through the engine like any model.

The published ``best.pth`` cannot be downloaded here, so checkpoints are generated from a
randomly initialised network under the original key names (``torch.save(state_dict)``, as the
original training script saves them).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from interpolation.errors import WeightsError
from interpolation.models import MODEL_NAMES, create_model
from interpolation.models.dain import DAIN, DainInterpolator, load_dain
from interpolation.models.dain.interpolator import demo_padding
from tests.media import make_testsrc, read_video, textured

#: The published checkpoint's layout (issue 6): entries, of which parameters and buffers, and weights.
CHECKPOINT_ENTRIES, PARAMETER_TENSORS, BUFFER_TENSORS, PARAMETER_COUNT = 954, 489, 465, 24_031_656
#: A sample of key names and shapes of ``networks/DAIN.py``'s state dict, one or more per sub-network.
ORIGINAL_KEYS = {
    "initScaleNets_filter.0.weight": (16, 6, 3, 3),
    "initScaleNets_filter.32.weight": (16, 32, 3, 3),
    "initScaleNets_filter2.2.weight": (16, 16, 3, 3),
    "ctxNet.block3.conv1.weight": (64, 64, 3, 3),
    "rectifyNet.block1.0.weight": (128, 437, 7, 7),
    "flownets.conv6aa.0.weight": (196, 128, 3, 3),
    "flownets.conv6_0.0.weight": (128, 81, 3, 3),
    "flownets.predict_flow2.weight": (2, 565, 3, 3),
    "flownets.upfeat3.weight": (597, 2, 4, 4),
    "flownets.dc_conv5.0.weight": (64, 96, 3, 3),
    "depthNet.1.running_var": (128,),
    "depthNet.3.0.1.0.3.3.weight": (16, 64, 11, 11),
    "depthNet.3.0.0.3.0.0.3.0.0.1.2.3.weight": (64, 64, 7, 7),
    "depthNet.3.0.0.3.0.0.3.0.0.1.2.4.running_mean": (64,),
    "depthNet.4.weight": (1, 64, 3, 3),
}
TIMES = [0.25, 0.5, 0.75]


@pytest.fixture(scope="module")
def random_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(6)
    state = DAIN().state_dict()
    # Give the batch-norm statistics values of their own so a load that skipped them would show.
    for key, value in state.items():
        if key.endswith("running_mean"):
            value.normal_(0.0, 0.05)
        elif key.endswith("running_var"):
            value.uniform_(0.8, 1.2)
    return state


@pytest.fixture(scope="module")
def checkpoint(random_state: dict[str, torch.Tensor], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dain") / "best.pth"
    torch.save(random_state, path)
    return path


@pytest.fixture(scope="module")
def dain(checkpoint: Path) -> DainInterpolator:
    return DainInterpolator(weights=checkpoint, device="cpu")


def assert_same_state(network: DAIN, expected: dict[str, torch.Tensor]) -> None:
    loaded = network.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in expected.items())


# -- checkpoint layout ------------------------------------------------------------------------

def test_the_network_has_the_published_checkpoint_layout():
    network = DAIN()
    state = network.state_dict()
    assert len(state) == CHECKPOINT_ENTRIES
    assert len(list(network.parameters())) == PARAMETER_TENSORS
    assert len(list(network.buffers())) == BUFFER_TENSORS
    assert sum(p.numel() for p in network.parameters()) == PARAMETER_COUNT
    assert {key: tuple(state[key].shape) for key in ORIGINAL_KEYS} == ORIGINAL_KEYS


def test_a_checkpoint_with_the_original_names_loads_strictly(checkpoint: Path, random_state):
    assert_same_state(load_dain(checkpoint, torch.device("cpu")), random_state)
    network = DAIN()
    network.load_state_dict(torch.load(checkpoint, weights_only=True), strict=True)  # the one-liner
    assert_same_state(network, random_state)


def test_a_data_parallel_checkpoint_without_batch_counters_loads_strictly(tmp_path: Path, random_state):
    """``module.`` prefixes (DataParallel) are stripped; ``num_batches_tracked`` may be absent."""
    state = {f"module.{key}": value for key, value in random_state.items() if "num_batches_tracked" not in key}
    assert len(state) == CHECKPOINT_ENTRIES - 155
    path = tmp_path / "module.pth"
    torch.save(state, path)
    assert_same_state(load_dain(path, torch.device("cpu")), {k.removeprefix("module."): v for k, v in state.items()})


def test_a_checkpoint_that_does_not_fit_names_the_first_keys(tmp_path: Path, random_state):
    state = dict(random_state)
    del state["rectifyNet.block5.0.bias"]
    state["rectifyNet.block6.0.bias"] = torch.zeros(3)
    state["flownets.conv1a.0.weight"] = torch.zeros(16, 3, 5, 5)
    path = tmp_path / "other.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as caught:
        DainInterpolator(weights=path)
    message = str(caught.value)
    assert "\n" not in message and "do not fit the DAIN network" in message
    assert "1 missing keys (rectifyNet.block5.0.bias)" in message
    assert "1 unexpected keys (rectifyNet.block6.0.bias)" in message
    assert "flownets.conv1a.0.weight (16, 3, 5, 5) instead of (16, 3, 3, 3)" in message


def test_files_that_are_not_checkpoints_are_refused(tmp_path: Path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read DAIN weights"):
        DainInterpolator(weights=junk)
    listing = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listing)
    with pytest.raises(WeightsError, match="not a state dict"):
        DainInterpolator(weights=listing)
    with pytest.raises(WeightsError, match="not found.*best.pth") as caught:
        DainInterpolator(weights=tmp_path / "missing.pth")
    assert str(tmp_path) not in str(caught.value) and str(tmp_path / "missing.pth") in caught.value.detail


def test_without_a_checkpoint_the_error_says_where_to_get_it_and_the_detail_how_to_pass_it():
    assert "dain" in MODEL_NAMES
    with pytest.raises(WeightsError) as caught:
        create_model("dain")
    message, detail = str(caught.value), caught.value.detail
    for expected in ("best.pth", "github.com/baowenbo/DAIN"):
        assert expected in message
    # The message may reach a chat: no environment variables or server paths; the operator's how-to is the detail.
    assert "SMOOTHBOT_" not in message and "=" not in message and "/home" not in message
    for expected in ("--weights PATH", "SMOOTHBOT_DAIN_WEIGHTS"):
        assert expected in detail
    assert caught.value.exit_code == 3


# -- forward ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "expected"), [(64, (32, 32)), (128, (32, 32)), (97, (15, 16)), (130, (63, 63)),
                                                (480, (16, 16)), (720, (24, 24)), (1280, (32, 32))])
def test_frames_are_padded_as_the_original_demo_pads_them(size: int, expected: tuple[int, int]):
    assert demo_padding(size) == expected
    assert (size + sum(expected)) % 64 == 0


def test_the_network_refuses_sizes_it_cannot_take():
    with pytest.raises(ValueError, match="multiples of 64"):
        DAIN()(torch.zeros(1, 3, 64, 96), torch.zeros(1, 3, 64, 96))


def record_synthesis(dain: DainInterpolator, monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """Keep every unclipped frame the network synthesises during the next calls."""
    produced: list[torch.Tensor] = []
    original = dain.network.synthesise

    def recording(*args, **kwargs):
        frame = original(*args, **kwargs)
        produced.append(frame)
        return frame

    monkeypatch.setattr(dain.network, "synthesise", recording)
    return produced


@pytest.mark.parametrize(("height", "width"), [
    (64, 64),
    pytest.param(97, 130, marks=pytest.mark.slow),
])
def test_any_size_gives_finite_frames_of_its_own_size(dain: DainInterpolator, monkeypatch: pytest.MonkeyPatch,
                                                     height: int, width: int):
    produced = record_synthesis(dain, monkeypatch)
    first, second = textured(height, width, seed=1), textured(height, width, seed=2)
    frames = dain.interpolate(first, second, TIMES)
    assert [frame.shape for frame in frames] == [(height, width, 3)] * len(TIMES)
    assert all(frame.dtype == np.uint8 and frame.flags.c_contiguous for frame in frames)
    padded = (height + sum(demo_padding(height)), width + sum(demo_padding(width)))
    assert [tuple(frame.shape) for frame in produced] == [(1, 3, *padded)] * len(TIMES)
    assert all(torch.isfinite(frame).all() for frame in produced)
    assert not torch.equal(produced[0], produced[-1])  # t matters


@pytest.mark.slow
def test_row_strips_give_the_same_depth_and_frame_as_whole_frames(dain: DainInterpolator):
    """Strips recompute their receptive-field halo, so they change nothing but memory."""
    network = dain.network
    generator = torch.Generator().manual_seed(3)
    frame0, frame1 = torch.rand(2, 1, 3, 64, 128, generator=generator)
    with torch.inference_mode():
        whole = [network.analyse_frame(frame) for frame in (frame0, frame1)]
        strips = [network.analyse_frame(frame, strip_pixels=128 * 22) for frame in (frame0, frame1)]
        assert all(torch.allclose(a.log_depth, b.log_depth, atol=1e-5) for a, b in zip(whole, strips))
        pair = network.analyse_pair(frame0, frame1)
        expected = network.synthesise(frame0, frame1, *whole, pair, 0.3)
        got = network.synthesise(frame0, frame1, *strips, pair, 0.3, strip_pixels=128 * 20)
    assert torch.allclose(got, expected, atol=1e-4)


@pytest.mark.slow
def test_work_reused_across_pairs_gives_the_frames_of_a_fresh_model(dain: DainInterpolator, checkpoint: Path):
    a, b, c = (textured(64, 64, seed=k) for k in (4, 5, 6))
    dain.interpolate(a, b, [0.5])
    reused = dain.interpolate(b, c, [0.5])  # b's depth comes from the previous pair
    fresh = DainInterpolator(weights=checkpoint, device="cpu").interpolate(b.copy(), c.copy(), [0.5])
    assert np.array_equal(reused[0], fresh[0])


def test_a_new_picture_in_the_same_buffer_is_not_taken_from_the_cache(dain: DainInterpolator):
    frame = textured(64, 64, seed=8)
    with torch.inference_mode():
        before = dain.prepared(frame).analysis.log_depth
        assert dain.prepared(frame).analysis.log_depth is before  # same picture: reused
        frame[:] = textured(64, 64, seed=9)
        assert not torch.equal(dain.prepared(frame).analysis.log_depth, before)


# -- through the engine ---------------------------------------------------------------------------

def run_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "interpolation", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_the_cli_runs_dain_with_a_user_checkpoint_like_any_model(tmp_path: Path, checkpoint: Path):
    source = make_testsrc(tmp_path / "in.mp4", size="48x32", fps="10", seconds=0.3)
    dain_run = run_cli(source, "-o", tmp_path / "dain.mp4", "--model", "dain", "--weights", checkpoint, cwd=tmp_path)
    assert dain_run.returncode == 0, dain_run.stderr
    assert "DAIN" in dain_run.stdout
    blend_run = run_cli(source, "-o", tmp_path / "blend.mp4", "--model", "blend", cwd=tmp_path)
    assert blend_run.returncode == 0, blend_run.stderr
    dain_times, dain_frames = read_video(tmp_path / "dain.mp4")
    blend_times, _ = read_video(tmp_path / "blend.mp4")
    assert dain_times == blend_times and len(dain_times) >= 5  # same plan, same timing
    assert dain_frames[0].shape == (32, 48, 3)


def test_the_cli_without_dain_weights_exits_3_with_one_line(tmp_path: Path):
    source = make_testsrc(tmp_path / "in.mp4", size="48x32", fps="10", seconds=0.3)
    result = run_cli(source, "-o", tmp_path / "out.mp4", "--model", "dain", cwd=tmp_path)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "best.pth" in lines[0]
    assert not (tmp_path / "out.mp4").exists()
