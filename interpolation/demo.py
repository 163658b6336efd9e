"""``make demo``: make a choppy sample clip with ffmpeg, smooth it with the CLI, say where it is."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from . import ffmpeg_binary
from .child_process import DEMO_RUN_TIMEOUT_S, work_timeout

#: A 12 fps, 3-second sample with moving content and a tone: choppy enough to see the difference.
SAMPLE_SIZE = (480, 270)
SAMPLE_FRAMES = 36
SAMPLE_FILTER = f"testsrc2=s={SAMPLE_SIZE[0]}x{SAMPLE_SIZE[1]}:r=12:d={SAMPLE_FRAMES // 12}"
SAMPLE_AUDIO = "sine=frequency=330:duration=3"
TARGET_FPS = "60"


def make_sample(path: Path) -> Path:
    ffmpeg_binary.run(ffmpeg_binary.base_args() + [
        "-f", "lavfi", "-i", SAMPLE_FILTER, "-f", "lavfi", "-i", SAMPLE_AUDIO,
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], what="sample clip encoder",
        timeout_s=work_timeout(SAMPLE_FRAMES, *SAMPLE_SIZE))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m interpolation.demo")
    parser.add_argument("--out-dir", type=Path, default=Path("out/demo"))
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    sample = make_sample(args.out_dir / "sample-12fps.mp4")
    result_path = args.out_dir / f"sample-smooth-{TARGET_FPS}fps.mp4"
    command = [sys.executable, "-m", "interpolation", str(sample), "-o", str(result_path), "--fps", TARGET_FPS]
    print("$ " + " ".join(["python", "-m", "interpolation", str(sample), "-o", str(result_path), "--fps", TARGET_FPS]))
    code = subprocess.run(command, timeout=DEMO_RUN_TIMEOUT_S).returncode
    if code == 0:
        print(f"\nOriginal: {sample}\nSmoothed: {result_path}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
