"""What a caller can ask of the engine: :class:`Options` (with :class:`Limits`) and the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

from .errors import BadOptionsError

OutputKind = Literal["mp4", "gif", "frames"]

#: GIF frame delays are whole hundredths of a second and most viewers clamp delays under
#: 0.02 s, so anything above 50 fps plays slower than intended.
GIF_MAX_FPS = Fraction(50)

#: Denominator bound when turning a float rate such as 29.97 into an exact fraction.
FPS_DENOMINATOR_LIMIT = 1001


@dataclass(frozen=True)
class Limits:
    """What an input may be before it is refused (protects the service from huge jobs)."""

    max_pixels: int = 4096 * 2304  # a little above 4K UHD
    max_duration_s: float = 600.0
    max_input_frames: int = 36_000
    max_output_frames: int = 72_000
    min_fps: float = 0.5
    max_fps: float = 1000.0


@dataclass(frozen=True)
class SceneSettings:
    """How scene cuts and duplicate frames are recognised."""

    #: Bhattacharyya distance between colour histograms of neighbouring frames above which
    #: they belong to different shots. A pan keeps the colours; a cut changes them.
    cut_threshold: float = 0.45
    #: Mean absolute difference (0-255 scale, on a small thumbnail) under which a frame
    #: counts as a repeat of the previous one.
    duplicate_threshold: float = 0.6
    #: Longest run of repeats that is interpolated across (animation on twos, threes, fours).
    #: A longer run is a deliberate freeze and is kept.
    max_duplicate_run: int = 4


@dataclass(frozen=True)
class Options:
    """A frozen description of one job. Give ``fps`` or ``multi`` (default: ``multi=2``)."""

    fps: float | None = None
    multi: float | None = None
    loop: bool = False
    #: None: taken from the output path (".gif" → gif, trailing "/" → frames, else mp4).
    output: OutputKind | None = None
    model: str = "rife"
    weights: Path | None = None
    device: str | None = None
    #: Size budget for the final file; fps/scale/bitrate/colours shrink until it fits.
    max_bytes: int | None = None
    crf: int = 18
    preset: str = "medium"
    keep_audio: bool = True
    scene: SceneSettings = field(default_factory=SceneSettings)
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if self.fps is not None and self.multi is not None:
            raise BadOptionsError("give either a target fps or a multiplier, not both")
        if self.fps is not None and not 0 < self.fps <= self.limits.max_fps:
            raise BadOptionsError(f"target fps must be between 0 and {self.limits.max_fps:g}, got {self.fps:g}")
        if self.multi is not None and not 0 < self.multi <= 16:
            raise BadOptionsError(f"multiplier must be between 0 and 16, got {self.multi:g}")
        if self.max_bytes is not None and self.max_bytes < 10_000:
            raise BadOptionsError(f"size budget must be at least 10 kB, got {self.max_bytes} bytes")
        if not 0 <= self.crf <= 51:
            raise BadOptionsError(f"crf must be between 0 and 51, got {self.crf}")

    def target_fps(self, input_fps: Fraction) -> Fraction:
        """The exact output rate for an input of ``input_fps``."""
        if self.fps is not None:
            return as_fraction(self.fps)
        return input_fps * as_fraction(self.multi if self.multi is not None else 2)


def as_fraction(value: float | int | Fraction) -> Fraction:
    """An exact rate: 60 → 60, 29.97 → 2997/100, 59.94005994 → 60000/1001."""
    return Fraction(value).limit_denominator(FPS_DENOMINATOR_LIMIT)


def output_kind_for(path: Path | str, requested: OutputKind | None) -> OutputKind:
    """The output kind: explicit request, else from the path (``/`` → frames, ``.gif`` → gif)."""
    if requested is not None:
        return requested
    text = str(path)
    if text.endswith(("/", "\\")) or Path(text).is_dir():
        return "frames"
    if text.lower().endswith(".gif"):
        return "gif"
    return "mp4"


@dataclass(frozen=True)
class Progress:
    """Reported after every output frame (throttle on the receiving side if needed)."""

    frames_done: int
    frames_total: int
    elapsed_s: float

    @property
    def fraction(self) -> float:
        return self.frames_done / self.frames_total if self.frames_total else 1.0

    @property
    def eta_s(self) -> float | None:
        if self.frames_done == 0:
            return None
        return self.elapsed_s / self.frames_done * (self.frames_total - self.frames_done)

    @property
    def frames_per_second(self) -> float:
        return self.frames_done / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass(frozen=True)
class Result:
    """What was produced, for captions and logs."""

    output_path: Path
    kind: OutputKind
    input_fps: Fraction
    output_fps: Fraction
    frames_in: int
    frames_out: int
    duration_s: float
    size_bytes: int
    width: int
    height: int
    has_audio: bool
    model: str
    model_display_name: str
    loop: bool
    scene_cuts: int
    duplicates: int
    notes: tuple[str, ...] = ()
