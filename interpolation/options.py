"""What a caller can ask of the engine: :class:`Options` (with :class:`Limits`) and the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

from .encoding import CODECS, CONTAINERS, PRESETS
from .errors import BadOptionsError

#: "video": an encoded video file (MP4 unless the container or the path's suffix says otherwise).
OutputKind = Literal["video", "gif", "frames"]
#: What happens at a scene cut: a hard cut (nearer frame) or a short cross-fade (never a morph).
CutMode = Literal["cut", "fade"]
CUT_MODES: tuple[CutMode, ...] = ("cut", "fade")
#: Before/after layouts: a moving split line, side by side, or one above the other.
CompareMode = Literal["split", "side", "stack"]
COMPARE_MODES: tuple[CompareMode, ...] = ("split", "side", "stack")
#: What became of the input's audio: copied in sync, slowed with the pitch kept, dropped on request,
#: or none (the input had none, or the output kind cannot carry sound).
AudioHandling = Literal["kept", "slowed", "dropped", "none"]

#: Slow-motion factors offered: below 2× the effect is hardly visible; above 8× even a good
#: model invents most of what is seen (and the job's frame count explodes).
MIN_SLOWMO = 2.0
MAX_SLOWMO = 8.0

#: GIF frame delays are whole hundredths of a second and most viewers clamp delays under
#: 0.02 s, so anything above 50 fps plays slower than intended.
GIF_MAX_FPS = Fraction(50)

#: Denominator bound when turning a float rate such as 29.97 into an exact fraction.
FPS_DENOMINATOR_LIMIT = 1001


#: "fast": one forward pass per frame. "best": test-time averaging of plain, reversed and mirrored
#: views (measured +1.1 dB on the bench's ground truth at about 4× the model time).
QUALITY_MODES = ("fast", "best")

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

    #: TransNetV2's confidence (0-1) above which a proposed cut between neighbouring frames is kept
    #: (see :mod:`interpolation.shots`); lower finds more. Without the network's weights it scales the
    #: adaptive detector's threshold instead.
    cut_threshold: float = 0.5
    #: Mean absolute difference (0-255 scale, on a small thumbnail) under which a frame
    #: counts as a repeat of the previous one.
    duplicate_threshold: float = 0.6
    #: Longest run of repeats that is interpolated across (animation on twos, threes, fours).
    #: A longer run is a deliberate freeze and is kept.
    max_duplicate_run: int = 4

    def __post_init__(self) -> None:
        if not 0 < self.cut_threshold <= 1:
            raise BadOptionsError(f"the cut threshold must be above 0 and at most 1, got {self.cut_threshold:g}")


@dataclass(frozen=True)
class Options:
    """A frozen description of one job. Give ``fps`` or ``multi`` (default: ``multi=2``)."""

    fps: float | None = None
    multi: float | None = None
    loop: bool = False
    #: None: taken from the output path (".gif" → gif, trailing "/" → frames, else video).
    #: "mp4" is accepted for "video" in an MP4 container (what callers wrote before containers).
    output: OutputKind | Literal["mp4"] | None = None
    model: str = "rife"
    #: "fast" (one pass) or "best" (RIFE averages four views of each pair: ~4× the time, sharper).
    quality: str = "fast"
    #: With ``quality="best"`` and RIFE: first fine-tune a copy of the network on the clip's own frames
    #: (:mod:`interpolation.models.adapt`), kept only where it beats the published weights on held-out frames.
    adapt: bool = True
    weights: Path | None = None
    device: str | None = None
    #: Size budget for the final file; fps/scale/bitrate/colours shrink until it fits.
    max_bytes: int | None = None
    #: Quality on the codec's own scale, lower is better (None: the codec's default, e.g. 18 for H.264).
    crf: int | None = None
    #: x264-style speed/size trade-off, translated for the other encoders.
    preset: str = "medium"
    #: h264, h265, vp9 or av1 (None: the container's default, H.264 except VP9 in WebM).
    codec: str | None = None
    #: mp4, mkv, webm or mov (None: from the output path's suffix, else MP4).
    container: str | None = None
    keep_audio: bool = True
    #: Play the result this many times slower (every new frame interpolated); None: real time.
    slowmo: float | None = None
    #: A before/after video (original at its own timing beside the result) instead of the result alone.
    compare: CompareMode | None = None
    cut_mode: CutMode = "cut"
    scene: SceneSettings = field(default_factory=SceneSettings)
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if self.output == "mp4":  # the older spelling of "an MP4 video"
            object.__setattr__(self, "output", "video")
            object.__setattr__(self, "container", self.container or "mp4")
        if self.output not in (None, "video", "gif", "frames"):
            raise BadOptionsError(f"unknown output kind {self.output!r}; choose video, gif or frames")
        if self.fps is not None and self.multi is not None:
            raise BadOptionsError("give either a target fps or a multiplier, not both")
        if self.fps is not None and not 0 < self.fps <= self.limits.max_fps:
            raise BadOptionsError(f"target fps must be between 0 and {self.limits.max_fps:g}, got {self.fps:g}")
        if self.multi is not None and not 0 < self.multi <= 16:
            raise BadOptionsError(f"multiplier must be between 0 and 16, got {self.multi:g}")
        if self.max_bytes is not None and self.max_bytes < 10_000:
            raise BadOptionsError(f"size budget must be at least 10 kB, got {self.max_bytes} bytes")
        if self.crf is not None and self.crf < 0:
            raise BadOptionsError(f"crf must be 0 or more, got {self.crf}")
        if self.preset not in PRESETS:
            raise BadOptionsError(f"unknown preset {self.preset!r}; choose one of: {', '.join(PRESETS)}")
        if self.codec is not None and self.codec not in CODECS:
            raise BadOptionsError(f"unknown codec {self.codec!r}; choose one of: {', '.join(CODECS)}")
        if self.container is not None and self.container not in CONTAINERS:
            raise BadOptionsError(f"unknown container {self.container!r}; choose one of: {', '.join(CONTAINERS)}")
        if self.slowmo is not None and not MIN_SLOWMO <= self.slowmo <= MAX_SLOWMO:
            raise BadOptionsError(f"slow motion must be between {MIN_SLOWMO:g}× and {MAX_SLOWMO:g}×, got {self.slowmo:g}")
        if self.quality not in QUALITY_MODES:
            raise BadOptionsError(f"unknown quality {self.quality!r}; choose one of: {', '.join(QUALITY_MODES)}")
        if self.compare is not None and self.compare not in COMPARE_MODES:
            raise BadOptionsError(f"unknown comparison {self.compare!r}; choose one of: {', '.join(COMPARE_MODES)}")
        if self.cut_mode not in CUT_MODES:
            raise BadOptionsError(f"unknown cut mode {self.cut_mode!r}; choose one of: {', '.join(CUT_MODES)}")

    def target_fps(self, input_fps: Fraction) -> Fraction:
        """The exact output rate for an input of ``input_fps``."""
        if self.fps is not None:
            return as_fraction(self.fps)
        return input_fps * as_fraction(self.multi if self.multi is not None else 2)

    def slowdown(self) -> Fraction:
        """The exact slow-motion factor (1 for real time)."""
        return as_fraction(self.slowmo) if self.slowmo is not None else Fraction(1)


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
    return "video"


@dataclass(frozen=True)
class Progress:
    """Reported after every output frame (throttle on the receiving side if needed)."""

    frames_done: int
    frames_total: int
    elapsed_s: float
    #: "smoothing" (frames_* count output frames) or "adapting" (they count training steps, best mode).
    stage: str = "smoothing"

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
    slowmo: Fraction | None = None
    audio: AudioHandling = "none"
    cut_mode: CutMode = "cut"
    compare: CompareMode | None = None
    #: The video codec and container written ("h264", "mp4"); None for GIF and PNG frames.
    codec: str | None = None
    container: str | None = None

    def highlights(self) -> list[str]:
        """What a caption should say beyond the rates: slow motion and its audio, comparison, cuts, repeats."""
        lines = []
        if self.slowmo is not None:
            factor = f"{float(self.slowmo):g}×"
            sound = {"slowed": f"audio slowed {factor}, pitch kept", "dropped": "audio dropped",
                     "kept": "audio kept", "none": "no audio"}[self.audio]
            lines.append(f"{factor} slow motion, {sound}")
        if self.compare is not None:
            layout = {"split": "moving split", "side": "side by side", "stack": "stacked"}[self.compare]
            lines.append(f"before/after comparison ({layout})")
        found = []
        if self.scene_cuts:
            hard = "kept as a hard cut" if self.scene_cuts == 1 else "kept as hard cuts"
            treatment = "cross-faded" if self.cut_mode == "fade" else hard
            found.append(f"{self.scene_cuts} scene cut{'s' * (self.scene_cuts != 1)} {treatment}")
        if self.duplicates:
            found.append(f"{self.duplicates} duplicate frame{'s' * (self.duplicates != 1)} found")
        if found:
            lines.append(", ".join(found))
        return lines
