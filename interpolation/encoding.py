"""Video codecs and containers: which encoder, which arguments, and which audio and subtitle formats.

Each codec has its own quality scale and speed knobs; callers speak one vocabulary (``crf`` on the
codec's own scale, an x264-style ``preset``) and this module translates. Nothing here runs ffmpeg
except the one question of which encoders the binary was built with.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from . import ffmpeg_binary
from .errors import BadOptionsError

Codec = Literal["h264", "h265", "vp9", "av1"]
Container = Literal["mp4", "mkv", "webm", "mov"]

#: x264's speed names, fastest first; other encoders get the matching step of their own scale.
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
#: The chat path's H.264 result (the bot): the platforms re-encode what they receive, so a faster preset
#: at a lower CRF (same look, somewhat larger file) leaves the CPU to the model. bench/REPORT.md,
#: "Result encoder", has the size/quality/CPU trade; the command line keeps medium CRF 18.
CHAT_PRESET = "veryfast"
CHAT_CRF = 16
#: SVT-AV1 preset for each of PRESETS. SVT's own scale runs 0 (slowest) … 13, but 10 and above are
#: "meant for automation tooling" and, at low crf, have written streams that dav1d refuses to decode.
SVT_AV1_PRESETS = (10, 10, 9, 9, 8, 8, 6, 5, 4)
#: Text subtitle codecs: they can be converted to whichever text format a container takes.
TEXT_SUBTITLES = frozenset({"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text", "microdvd", "subviewer",
                            "realtext", "sami", "mpl2", "pjs", "vplayer", "stl", "jacosub"})
#: Subtitle codecs Matroska stores as they are (pictures included).
MATROSKA_SUBTITLES = frozenset({"subrip", "ass", "ssa", "webvtt", "hdmv_pgs_subtitle", "dvd_subtitle",
                                "dvb_subtitle"})
#: Global metadata keys that locate the person who filmed: never carried into a result that gets shared.
PRIVATE_METADATA = ("location", "location-eng", "com.apple.quicktime.location.ISO6709")
#: Keys that describe the input's file format, not its content (wrong for any other container).
FORMAT_METADATA = ("major_brand", "minor_version", "compatible_brands")


@dataclass(frozen=True)
class CodecSpec:
    #: ffmpeg encoders that write this codec, preferred first.
    encoders: tuple[str, ...]
    #: Visually transparent on the codec's own CRF scale (x264 18 ≈ x265 22 ≈ VP9/AV1 32).
    default_crf: int
    max_crf: int
    containers: frozenset[str]


@dataclass(frozen=True)
class ContainerSpec:
    muxer: str
    default_codec: Codec
    #: ffmpeg audio encoder and bitrate for this container.
    audio_encoder: str
    audio_bitrate: str
    #: Moves the index to the front so playback starts before the download ends.
    faststart: bool


CODECS: dict[str, CodecSpec] = {
    "h264": CodecSpec(("libx264",), 18, 51, frozenset({"mp4", "mkv", "mov"})),
    "h265": CodecSpec(("libx265",), 22, 51, frozenset({"mp4", "mkv", "mov"})),
    "vp9": CodecSpec(("libvpx-vp9",), 32, 63, frozenset({"mp4", "mkv", "webm"})),
    "av1": CodecSpec(("libsvtav1", "libaom-av1"), 32, 63, frozenset({"mp4", "mkv", "webm"})),
}
CONTAINERS: dict[str, ContainerSpec] = {
    "mp4": ContainerSpec("mp4", "h264", "aac", "160k", faststart=True),
    "mov": ContainerSpec("mov", "h264", "aac", "160k", faststart=True),
    "mkv": ContainerSpec("matroska", "h264", "aac", "160k", faststart=False),
    "webm": ContainerSpec("webm", "vp9", "libopus", "128k", faststart=False),
}
SUFFIX_CONTAINERS: dict[str, Container] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "mkv",
                                           ".webm": "webm"}


@dataclass(frozen=True)
class VideoFormat:
    """A resolved choice: container, codec, the encoder that writes it, and its quality and speed."""

    container: Container
    codec: Codec
    encoder: str
    crf: int
    preset: str

    @property
    def container_spec(self) -> ContainerSpec:
        return CONTAINERS[self.container]

    @property
    def speed_step(self) -> int:
        """0 (ultrafast) … 8 (veryslow)."""
        return PRESETS.index(self.preset)

    def video_args(self, bitrate: int | None = None) -> list[str]:
        """ffmpeg output arguments for the video stream: constant quality, or ``bitrate`` bits/s."""
        args = ["-c:v", self.encoder]
        rate = ["-b:v", str(bitrate)] if bitrate is not None else None
        if self.encoder in ("libx264", "libx265"):
            args += ["-preset", self.preset] + (rate or ["-crf", str(self.crf)])
            if self.encoder == "libx265":
                args += ["-x265-params", "log-level=error"]
                if self.container in ("mp4", "mov"):
                    args += ["-tag:v", "hvc1"]  # what Apple players require to play HEVC
        elif self.encoder == "libvpx-vp9":
            # Constant quality needs -b:v 0. cpu-used 5 is libvpx's fastest "good" setting, 0 its best.
            args += (rate or ["-crf", str(self.crf), "-b:v", "0"]) + [
                "-deadline", "good", "-row-mt", "1", "-cpu-used", str(max(0, 5 - self.speed_step * 5 // 8))]
        elif self.encoder == "libsvtav1":
            args += (rate or ["-crf", str(self.crf)]) + ["-preset", str(SVT_AV1_PRESETS[self.speed_step])]
        elif self.encoder == "libaom-av1":
            args += (rate or ["-crf", str(self.crf), "-b:v", "0"]) + [
                "-row-mt", "1", "-cpu-used", str(max(0, 8 - self.speed_step))]
        return args

    def two_pass_args(self, passlog: Path, pass_number: int) -> list[str] | None:
        """Arguments for pass 1 or 2 of a bitrate-targeted encode; None where the encoder has no two-pass mode."""
        if self.encoder in ("libx264", "libvpx-vp9"):
            return ["-pass", str(pass_number), "-passlogfile", str(passlog)]
        if self.encoder == "libx265":
            return ["-x265-params", f"log-level=error:pass={pass_number}:stats={passlog}.x265"]
        return None

    def container_args(self) -> list[str]:
        return (["-movflags", "+faststart"] if self.container_spec.faststart else []) + ["-f", self.container_spec.muxer]

    def audio_args(self, bitrate: str | None = None) -> list[str]:
        spec = self.container_spec
        return ["-c:a", spec.audio_encoder, "-b:a", bitrate or spec.audio_bitrate]


def container_for(path: Path | str) -> Container | None:
    """The container a file name asks for (``.webm`` → webm); None when the suffix names none."""
    return SUFFIX_CONTAINERS.get(Path(path).suffix.lower())


def resolve(container: str | None, codec: str | None, crf: int | None, preset: str,
            available: Collection[str] | None = None) -> VideoFormat:
    """Check the combination and find an encoder this ffmpeg has; errors say what to choose instead.

    ``available`` is the set of encoder names to choose from (default: what the ffmpeg binary reports).
    """
    container = container or "mp4"
    if container not in CONTAINERS:
        raise BadOptionsError(f"unknown container {container!r}; choose one of: {', '.join(CONTAINERS)}")
    codec = codec or CONTAINERS[container].default_codec
    if codec not in CODECS:
        raise BadOptionsError(f"unknown codec {codec!r}; choose one of: {', '.join(CODECS)}")
    spec = CODECS[codec]
    if container not in spec.containers:
        raise BadOptionsError(f"{codec} cannot go in {container}; use {' or '.join(sorted(spec.containers))}")
    if preset not in PRESETS:
        raise BadOptionsError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    encoders = ffmpeg_binary.available_encoders() if available is None else available
    encoder = next((name for name in spec.encoders if name in encoders), None)
    if encoder is None:
        usable = [name for name, other in CODECS.items() if container in other.containers
                  and any(e in encoders for e in other.encoders)]
        raise BadOptionsError(
            f"this ffmpeg cannot encode {codec} (it has no {' or '.join(spec.encoders)} encoder); "
            f"choose another codec{': ' + ', '.join(usable) if usable else ''}"
        )
    audio_encoder = CONTAINERS[container].audio_encoder
    if audio_encoder not in encoders:
        raise BadOptionsError(f"this ffmpeg cannot encode {container} audio (it has no {audio_encoder} encoder); "
                              "choose another container or drop the audio")
    quality = spec.default_crf if crf is None else crf
    if not 0 <= quality <= spec.max_crf:
        raise BadOptionsError(f"crf for {codec} must be between 0 and {spec.max_crf}, got {quality}")
    return VideoFormat(container, codec, encoder, quality, preset)  # type: ignore[arg-type]


def subtitle_encoder(container: Container, source_codec: str) -> str | None:
    """How a subtitle stream of ``source_codec`` goes into ``container``: "copy", a text encoder,
    or None where the container cannot hold it (picture subtitles in MP4/MOV/WebM)."""
    if container == "mkv":
        if source_codec in MATROSKA_SUBTITLES:
            return "copy"
        return "srt" if source_codec in TEXT_SUBTITLES else None
    target = "webvtt" if container == "webm" else "mov_text"
    if source_codec == target:
        return "copy"
    return target if source_codec in TEXT_SUBTITLES else None


def retimed_subtitle_filter(slowdown: Fraction) -> str:
    """Bitstream filter that stretches subtitle times (start and duration) for slow motion."""
    factor = f"{float(slowdown):.9g}"
    return f"setts=pts=PTS*{factor}:dts=DTS*{factor}:duration=DURATION*{factor}"


def metadata_args(source_input: int) -> list[str]:
    """Carry the input's global metadata (title, date …) but not where it was filmed.

    Rotation is not metadata here: the frames are already upright, so no display matrix is written.
    """
    args = ["-map_metadata", str(source_input)]
    for key in PRIVATE_METADATA + FORMAT_METADATA:
        args += ["-metadata", f"{key}="]
    return args


#: atempo keeps its quality for tempos between 0.5 and 2; slower tempos are chained stages.
ATEMPO_MIN = 0.5
ATEMPO_MAX = 2.0
#: atempo drops its last partial window (about 15 ms of input, 60 ms of output at 4×); this much
#: silence after the input lets the real end through. The encoder's -t trims what is left over.
ATEMPO_TAIL_PAD_S = 0.1


def slowed_audio_filter(slowdown: Fraction) -> str:
    """Audio filter that plays ``slowdown`` times slower with the pitch kept, to the very end."""
    return f"apad=pad_dur={ATEMPO_TAIL_PAD_S},{atempo_chain(float(1 / slowdown))}"


def atempo_chain(tempo: float) -> str:
    """An ffmpeg ``atempo`` chain for any speed (pitch kept): ``0.25`` → ``atempo=0.5,atempo=0.5``."""
    if tempo <= 0:
        raise ValueError(f"tempo must be positive, got {tempo}")
    stages = []
    while tempo < ATEMPO_MIN:
        stages.append(ATEMPO_MIN)
        tempo /= ATEMPO_MIN
    while tempo > ATEMPO_MAX:
        stages.append(ATEMPO_MAX)
        tempo /= ATEMPO_MAX
    stages.append(tempo)
    return ",".join(f"atempo={stage:.9g}" for stage in stages)
