"""``make demo``: make a choppy sample clip with ffmpeg, smooth it with the CLI, say where it is."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from . import ffmpeg_binary

#: A 12 fps, 3-second sample with moving content and a tone: choppy enough to see the difference.
SAMPLE_FILTER = "testsrc2=s=480x270:r=12:d=3"
SAMPLE_AUDIO = "sine=frequency=330:duration=3"
TARGET_FPS = "60"


def make_sample(path: Path) -> Path:
    ffmpeg_binary.run(ffmpeg_binary.base_args() + [
        "-f", "lavfi", "-i", SAMPLE_FILTER, "-f", "lavfi", "-i", SAMPLE_AUDIO,
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], what="sample clip")
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
    code = subprocess.run(command).returncode
    if code == 0:
        print(f"\nOriginal: {sample}\nSmoothed: {result_path}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
