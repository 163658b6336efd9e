"""``make demo``: the main job end to end on a fresh machine, without any chat account.

Makes a choppy sample clip with ffmpeg, sends it through the console adapter (queue → worker →
engine → reply) with "/fps 60", and says where the smooth result is.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from interpolation.demo import TARGET_FPS, make_sample

from .config import Settings
from .console_adapter import run_console


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.demo")
    parser.add_argument("--out-dir", type=Path, default=Path("out/demo"))
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    sample = make_sample(args.out_dir / "sample-12fps.mp4")
    settings = Settings(data_dir=args.out_dir / "data", progress_edit_interval_s=2.0)
    code = asyncio.run(run_console(settings, sample, f"/fps {TARGET_FPS}", args.out_dir))
    if code == 0:
        results = sorted(args.out_dir.glob("job-*-smooth.mp4"), key=lambda p: p.stat().st_mtime)
        print(f"\nOriginal (12 fps): {sample}\nSmoothed ({TARGET_FPS} fps): {results[-1]}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
