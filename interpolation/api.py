"""The engine as a library: :func:`run` turns one input file into one smooth output.

decode → plan timestamps → model → encode, streaming, with a progress callback and a
cancellation check between frames and in every ffmpeg step after them (encoder drain, GIF
passes, size-fit re-encodes), up to the moment the output is published. Output appears atomically: it is written under a temporary
name next to the destination and renamed only on success.
"""

from __future__ import annotations

import functools
import queue
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from .analysis import SourceTimeline, scan
from .compare import Comparison, composed_size, labels_for
from .encoding import VideoFormat, container_for, resolve
from .errors import BadOptionsError, CancelledError, EngineError, LimitExceededError
from .fit import fit_video, make_gif
from .models import FrameInterpolator, create_model
from .models.blend import BlendInterpolator
from .options import GIF_MAX_FPS, AudioHandling, Options, OutputKind, Progress, Result, output_kind_for
from .probe import VideoInfo, probe
from .texts import Note
from .timeline import OutputFrame, Plan, plan
from .video_io import (FrameSink, PngDirectorySink, SourceTracks, decode, even_padded, lossless_sink, publish,
                       subtitle_codecs, video_sink)

ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]

#: Decoded frames read ahead of the model, so decoding overlaps with inference.
DECODE_READ_AHEAD = 4
#: In-between frames asked of the model at once (bounds memory for large slow-downs at 4K).
MODEL_BATCH = 8

T = TypeVar("T")


ModelSource = FrameInterpolator | Callable[[], FrameInterpolator] | None


def run(input_path: Path | str, output_path: Path | str, options: Options | None = None,
        progress: ProgressCallback | None = None, cancelled: CancelCheck | None = None,
        model: ModelSource = None) -> Result:
    """Smooth ``input_path`` into ``output_path`` (a video file such as ``.mp4`` or ``.webm``, a ``.gif``,
    or a directory ending in ``/``).

    ``model`` lets a long-running caller reuse a loaded model, or hand a function that gets one;
    otherwise ``options.model`` is built. A model that is not given loaded is got beside the probe and
    the scan (a fresh process spends about a second importing torch and loading weights, and the scan
    about a second decoding the clip: on 2 cores they overlap).
    Raises :class:`~interpolation.errors.EngineError` subclasses with one-line human messages.
    """
    options = options or Options()
    source_path = Path(input_path)
    kind = output_kind_for(output_path, options.output)
    destination = checked_destination(Path(output_path), kind)
    video_format = video_format_for(Path(output_path), kind, options)

    get_model: Callable[[], FrameInterpolator] | None = None  # None: ``model`` is a model (not callable)
    if model is None:
        get_model = functools.partial(create_model, options.model, options.weights, options.device, options.quality)
    elif callable(model):
        get_model = model
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-load") as loader:
        loading = loader.submit(get_model) if get_model is not None else None
        info = probe(source_path, options.limits)  # a bad input is reported first, whatever the model does
        source = scan(info, options.limits, options.scene, cancelled, loop=options.loop)
        interpolator = loading.result() if loading is not None else model
    fps_out = options.target_fps(source.fps)
    notes: list[str] = [source.cut_note] if source.cut_note else []
    if kind == "gif" and fps_out > GIF_MAX_FPS:
        notes.append(Note("GIF capped at {fps} fps (GIF viewers play faster rates slowly)", fps=GIF_MAX_FPS))
        fps_out = GIF_MAX_FPS
    schedule = plan(source, fps_out, loop=options.loop, max_duplicate_run=options.scene.max_duplicate_run,
                    slowmo=options.slowdown(), cut_mode=options.cut_mode)
    if schedule.frame_count > options.limits.max_output_frames:
        if schedule.slowmo != 1:
            raise LimitExceededError.said(
                "the result would have {frames} frames (limit {limit}); ask for less slow motion, a lower frame "
                "rate or a shorter clip", frames=schedule.frame_count, limit=options.limits.max_output_frames)
        raise LimitExceededError.said(
            "the result would have {frames} frames (limit {limit}); ask for a lower frame rate or a shorter clip",
            frames=schedule.frame_count, limit=options.limits.max_output_frames)

    interpolator = adapted_model(interpolator, options, info.path, source, notes, progress, cancelled)
    destination.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".smoothbot-", dir=destination.parent))
    try:
        finished, width, height, audio = render_to(kind, video_format, workdir, info, source, schedule,
                                                   interpolator, options, notes, progress, cancelled)
        if cancelled is not None and cancelled():  # came as the last step ended: nothing is published
            raise CancelledError("cancelled")
        publish(finished, destination)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    size = destination.stat().st_size if destination.is_file() else sum(
        p.stat().st_size for p in destination.iterdir())
    return Result(
        output_path=destination, kind=kind, input_fps=source.fps, output_fps=fps_out,
        frames_in=source.frame_count, frames_out=schedule.frame_count, duration_s=float(schedule.duration),
        size_bytes=size, width=width, height=height, has_audio=audio in ("kept", "slowed"), model=interpolator.name,
        model_display_name=interpolator.display_name, loop=options.loop, scene_cuts=schedule.scene_cuts,
        duplicates=schedule.duplicates, notes=tuple(notes),
        slowmo=schedule.slowmo if schedule.slowmo != 1 else None, audio=audio, cut_mode=schedule.cut_mode,
        compare=options.compare, codec=video_format.codec if video_format else None,
        container=video_format.container if video_format else None,
    )


def adapted_model(model: FrameInterpolator, options: Options, path: Path, source: SourceTimeline, notes: list[str],
                  progress: ProgressCallback | None, cancelled: CancelCheck | None) -> FrameInterpolator:
    """In best mode, RIFE fine-tuned on this clip where that helps on its held-out frames (a note says so
    whenever it ran), else ``model``; progress reports the training steps as stage "adapting"."""
    if options.quality != "best" or not options.adapt or model.name != "rife":
        return model
    from .models import adapt as tta
    from .models.rife import RifeInterpolator, internal_scale

    settings = tta.SETTINGS
    starts = tta.chosen_starts(tta.usable_starts(source.duplicate, source.cut_before), settings.triplets)
    if not isinstance(model, RifeInterpolator) or len(starts) < settings.min_triplets:
        return model  # too short to teach anything
    started = time.monotonic()

    def step_done(done: int, total: int) -> None:
        if progress is not None:
            progress(Progress(done, total, time.monotonic() - started, stage="adapting"))

    step_done(0, settings.steps)
    frames = upright_frames(path, source)
    try:
        triplets = tta.collect_triplets(frames, starts, settings.seed)
    finally:
        frames.close()  # stops the decoder after the last triplet
    scale = model.scale or internal_scale(source.height, source.width, model.quality)
    adaptation = tta.adapt(model, triplets, scale, settings, step_done, cancelled)
    if adaptation is None:
        return model
    notes.append(adaptation.note)
    return adaptation.model if adaptation.kept else model


def video_format_for(output: Path, kind: OutputKind, options: Options) -> VideoFormat | None:
    """The container and codec of a video output: asked for, else from the file name (``.webm`` → VP9/Opus)."""
    if kind != "video":
        if options.codec or options.container or options.crf is not None:
            raise BadOptionsError(f"codec, container and crf apply to video files, not to {kind} output")
        return None
    named = container_for(output)
    if output.suffix and named is None and not options.container:
        raise BadOptionsError(f"unknown video file type {output.suffix!r}; "
                              "end the name in .mp4, .mkv, .webm or .mov (or .gif, or / for PNG frames)")
    if options.container and named and options.container != named:
        raise BadOptionsError(f"the output name ends in {output.suffix} but the container asked for is "
                              f"{options.container}; make them agree")
    return resolve(options.container or named, options.codec, options.crf, options.preset)


def checked_destination(output: Path, kind: OutputKind) -> Path:
    """Refuse destinations that would surprise: a GIF not named .gif, a non-empty frame folder."""
    if kind == "gif" and output.suffix.lower() != ".gif":
        if output.suffix:
            raise BadOptionsError(f"a GIF output must end in .gif, not {output.suffix}")
        output = output.with_suffix(".gif")
    if kind == "frames":
        if output.exists() and (not output.is_dir() or any(output.iterdir())):
            raise BadOptionsError(f"{output} must be a new or empty directory for PNG frames")
    elif output.is_dir():
        raise BadOptionsError(f"{output} is a directory; end the path with / to write PNG frames")
    return output


def render_to(kind: OutputKind, video_format: VideoFormat | None, workdir: Path, info: VideoInfo,
              source: SourceTimeline, schedule: Plan, model: FrameInterpolator, options: Options, notes: list[str],
              progress: ProgressCallback | None, cancelled: CancelCheck | None) -> tuple[Path, int, int, AudioHandling]:
    """Run the model into the sink for ``kind`` and finish the file. Returns (path, width, height, audio)."""
    width, height = source.width, source.height
    comparison = None
    if options.compare is not None:
        comparison = Comparison(options.compare, labels_for(source.fps, schedule.fps), schedule.fps)
        width, height = composed_size(width, height, options.compare)
    duration_s = schedule.frame_count / float(schedule.fps)
    if kind == "frames":
        sink: FrameSink = PngDirectorySink(workdir / "frames")
        render(info.path, source, schedule, model, sink, progress, cancelled, comparison=comparison)
        return workdir / "frames", width, height, "none"
    if kind == "gif":
        master = workdir / "master.mkv"
        render(info.path, source, schedule, model, lossless_sink(master, width, height, schedule.fps, cancelled),
               progress, cancelled, comparison=comparison)
        gif = workdir / "out.gif"
        settings, gif_notes = make_gif(master, gif, width, height, schedule.fps, options.max_bytes, workdir,
                                       frames=schedule.frame_count, cancelled=cancelled)
        notes.extend(gif_notes)
        return (gif, *settings.size(width, height), "none")
    assert video_format is not None
    has_audio = info.has_audio and options.keep_audio
    audio: AudioHandling = ("slowed" if schedule.slowmo != 1 else "kept") if has_audio else (
        "dropped" if info.has_audio else "none")
    tracks = SourceTracks(info.path, source.first_frame_offset_s, audio=has_audio,
                          subtitles=subtitle_codecs(info.path), slowdown=schedule.slowmo)
    encoded = workdir / f"encoded.{video_format.container}"
    sink, sink_notes = video_sink(encoded, width, height, schedule.fps, video_format, source=tracks,
                                  duration_s=duration_s, cancelled=cancelled)
    notes.extend(sink_notes)
    render(info.path, source, schedule, model, sink, progress, cancelled, pad_even=True, comparison=comparison)
    even_width, even_height = width + width % 2, height + height % 2
    if options.max_bytes is not None and encoded.stat().st_size > options.max_bytes:
        fitted = workdir / f"fitted.{video_format.container}"
        notes.extend(fit_video(encoded, fitted, video_format, max_bytes=options.max_bytes, duration_s=duration_s,
                               width=even_width, height=even_height, fps=schedule.fps, has_audio=has_audio,
                               workdir=workdir, cancelled=cancelled))
        return fitted, width, height, audio
    return encoded, even_width, even_height, audio


def render(path: Path, source: SourceTimeline, schedule: Plan, model: FrameInterpolator, sink: FrameSink,
           progress: ProgressCallback | None, cancelled: CancelCheck | None, pad_even: bool = False,
           comparison: Comparison | None = None) -> None:
    """Decode ``path`` again at full size and write every planned output frame into ``sink``.

    With ``comparison``, a second decode supplies the original as it would be on screen at each
    output moment, and the two are composed into one before/after frame.
    """
    started = time.monotonic()
    done = 0
    frames = produce(schedule, upright_frames(path, source), model, model.lanes_for(source.height, source.width))
    if comparison is not None:
        frames = comparison.frames(held_frames(schedule, upright_frames(path, source)), frames)
    try:
        for frame in frames:
            if cancelled is not None and cancelled():
                raise CancelledError("cancelled")
            sink.write(even_padded(frame) if pad_even else frame)
            done += 1
            if progress is not None:
                progress(Progress(done, schedule.frame_count, time.monotonic() - started))
        sink.finish()
    except BaseException:
        sink.abort()
        raise


def held_frames(schedule: Plan, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """The original at each output moment: every input frame held until the next one is due."""
    stream = enumerate(frames)
    index, image = -1, None
    for entry in schedule.frames:
        while index < entry.held:
            try:
                index, image = next(stream)
            except StopIteration:
                raise EngineError("the video ended earlier on the second read than on the first") from None
        yield image


def upright_frames(path: Path, source: SourceTimeline) -> Iterator[np.ndarray]:
    """Full-size frames, all of the first frame's size (a mid-stream size change is resized)."""
    for frame in read_ahead(decode(path), DECODE_READ_AHEAD):
        image = frame.image
        if image.shape[:2] != (source.height, source.width):
            image = cv2.resize(image, (source.width, source.height), interpolation=cv2.INTER_AREA)
        yield image


def produce(schedule: Plan, frames: Iterable[np.ndarray], model: FrameInterpolator, lanes: int = 1
            ) -> Iterator[np.ndarray]:
    """Turn the stream of input frames into the stream of output frames the plan asks for.

    Only frames that some later output still needs are kept, so memory stays flat. With several
    ``lanes`` the model gets that many pairs at once, from as many threads; the output keeps its order.
    """
    if lanes <= 1:
        for group, needed in pair_groups(schedule, frames):
            yield from frames_for(group, needed, model)
        return
    def jobs() -> Iterator[Callable[[], list[np.ndarray]]]:
        for group, needed in pair_groups(schedule, frames):
            head = group[0]
            if not (head.is_copy or head.fade):
                model.expect(needed[head.left], needed[head.right])  # in order, before a lane has it
            yield functools.partial(list, frames_for(group, needed, model))

    for outputs in in_lanes(model, lanes, jobs()):
        yield from outputs


def in_lanes(model: FrameInterpolator, lanes: int, jobs: Iterable[Callable[[], T]]) -> Iterator[T]:
    """Each job's result, in order, the jobs run ``lanes`` at a time in the model's lane threads."""
    pool = ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="model-lane", initializer=model.start_lane,
                              initargs=(lanes,))
    try:
        in_flight: deque[Future[T]] = deque()
        for job in jobs:
            in_flight.append(pool.submit(job))
            # One job waiting beyond those running: no lane idles, and memory stays bounded.
            while len(in_flight) > lanes:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        model.end_lanes()


def pair_jobs(model: FrameInterpolator, pairs: Iterable[tuple[np.ndarray, np.ndarray]], times: Sequence[float]
              ) -> Iterator[Callable[[], list[np.ndarray]]]:
    """For :func:`in_lanes`: each pair's frames at ``times``, the pair announced to the model
    (:meth:`~.models.FrameInterpolator.expect`) as its job is made, in order (what :func:`produce` does)."""
    for frame0, frame1 in pairs:
        model.expect(frame0, frame1)
        yield functools.partial(model.interpolate, frame0, frame1, list(times))


def pair_groups(schedule: Plan, frames: Iterable[np.ndarray]
                ) -> Iterator[tuple[tuple[OutputFrame, ...], dict[int, np.ndarray]]]:
    """Consecutive output frames between the same two input frames, with those input frames.

    Input frames are read as the groups need them and dropped after their last use.
    """
    last_use: dict[int, int] = {}
    for position, entry in enumerate(schedule.frames):
        last_use[entry.left] = position
        if entry.right is not None:
            last_use[entry.right] = position
    kept: dict[int, np.ndarray] = {}
    position = 0
    entries = schedule.frames
    frame_iter = iter(enumerate(frames))
    while position < len(entries):
        group_end = position + 1
        head = entries[position]
        while (group_end < len(entries) and not head.is_copy and entries[group_end].left == head.left
               and entries[group_end].right == head.right):
            group_end += 1
        needed = [head.left] if head.is_copy else [head.left, head.right]
        while any(index not in kept for index in needed):
            try:
                index, image = next(frame_iter)
            except StopIteration:
                raise EngineError("the video ended earlier on the second read than on the first") from None
            if index in last_use and last_use[index] >= position:
                kept[index] = image
        yield entries[position:group_end], {index: kept[index] for index in needed}
        position = group_end
        for index in [i for i in kept if last_use[i] < position]:
            del kept[index]


def frames_for(group: tuple[OutputFrame, ...], kept: dict[int, np.ndarray],
               model: FrameInterpolator) -> Iterator[np.ndarray]:
    head = group[0]
    if head.is_copy:
        yield kept[head.left]
        return
    if head.fade:  # across a scene cut in fade mode: a plain mix, no motion invented
        yield from BlendInterpolator().interpolate(kept[head.left], kept[head.right], [e.t for e in group])
        return
    for start in range(0, len(group), MODEL_BATCH):
        times = [entry.t for entry in group[start:start + MODEL_BATCH]]
        yield from model.interpolate(kept[head.left], kept[head.right], times)


def read_ahead(items: Iterator[T], depth: int) -> Iterator[T]:
    """Iterate ``items`` in a background thread, ``depth`` items ahead; errors re-raise here."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    finished = object()
    stop = threading.Event()

    def offer(item: object) -> bool:
        """Put ``item`` unless the consumer has gone; False when it has."""
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(finished)
        except BaseException as error:  # handed to the consumer, which re-raises it
            offer(error)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=pump, name="decode-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is finished:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def describe_fps(rate: Fraction) -> str:
    """"60", "29.97", "23.976" — a rate as people write it."""
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")
