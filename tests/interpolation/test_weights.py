"""Weights cache: the pinned file verifies, a corrupted or missing one is refused clearly."""

from pathlib import Path

import pytest

from interpolation.errors import WeightsError
from interpolation.models import weights


def test_cached_rife_weights_verify():
    # `make test` runs `make weights` first, so the cache holds the pinned file.
    path = weights.resolve(weights.RIFE)
    assert path.stat().st_size == weights.RIFE.size
    assert weights.sha256_of(path) == weights.RIFE.sha256


def test_corrupted_weights_are_rejected(tmp_path: Path):
    good = weights.resolve(weights.RIFE)
    corrupted = tmp_path / "flownet.pkl"
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one flipped byte
    corrupted.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="corrupt.*make weights"):
        weights.resolve(weights.RIFE, corrupted)


def test_missing_weights_say_how_to_fetch(tmp_path: Path):
    with pytest.raises(WeightsError, match="not found.*make weights"):
        weights.resolve(weights.RIFE, tmp_path / "nowhere.pkl")


def test_fetch_replaces_a_corrupt_cached_copy(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path))
    target = weights.default_path(weights.RIFE)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not the weights")
    fetched = weights.fetch(weights.RIFE)
    assert fetched == target
    weights.verify(weights.RIFE, fetched)
