"""DAIN on the CPU: parameter count, seconds per 640×480 frame and peak memory at 640×480 and 720p.

    .venv/bin/python bench/dain_cpu.py [--sizes 640x480 1280x720] [--threads N] [--strip-pixels N]

The published checkpoint cannot be downloaded here, so the network runs with random weights
saved to a temporary checkpoint: speed and memory do not depend on the weight values. Each size
runs in a fresh process so that its peak resident memory (``ru_maxrss``) is its own; the time is
one in-between frame (t = 0.5) of a new pair, i.e. everything a 2× job pays per input frame.
RIFE (the default model) runs on the same frames in the same process, so the DAIN/RIFE ratio
is comparable across machines where the seconds are not. Prints numbers only; CPU time depends
on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_SIZES = ("640x480", "1280x720")


def measure(size: str, checkpoint: Path, threads: int | None, strip_pixels: int | None) -> dict:
    """Run in the child process: load, interpolate one pair twice, report seconds and peak RSS."""
    import numpy as np
    import torch

    from interpolation.errors import WeightsError
    from interpolation.models import create_model
    from interpolation.models.dain import DainInterpolator
    from interpolation.models.dain.network import STRIP_PIXELS

    if threads:
        torch.set_num_threads(threads)
    width, height = (int(v) for v in size.split("x"))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(3)]
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = DainInterpolator(weights=checkpoint, device="cpu",
                             strip_pixels=STRIP_PIXELS if strip_pixels is None else strip_pixels or None)
    loaded_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    model.interpolate(frames[0], frames[1], [0.5])
    first_pair_s = time.perf_counter() - started
    started = time.perf_counter()
    model.interpolate(frames[1], frames[2], [0.5])  # frame 1's depth is reused
    next_pair_s = time.perf_counter() - started
    started = time.perf_counter()
    model.interpolate(frames[1], frames[2], [0.25])  # only the per-t part
    extra_t_s = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    del model
    rife_s = None
    try:
        rife = create_model("rife", device="cpu")
    except WeightsError:
        pass  # not fetched: no ratio
    else:
        rife.interpolate(frames[0], frames[1], [0.5])  # warm-up, as DAIN's first pair paid its own
        started = time.perf_counter()
        rife.interpolate(frames[1], frames[2], [0.5])
        rife_s = time.perf_counter() - started
    return {
        "size": size, "threads": torch.get_num_threads(), "rife_next_pair_s": rife_s,
        "first_pair_s": first_pair_s, "next_pair_s": next_pair_s, "extra_t_s": extra_t_s,
        "peak_rss_mib": peak_kib / 1024,
        "after_load_rss_mib": loaded_kib / 1024, "before_load_rss_mib": baseline_kib / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--strip-pixels", type=int, help="pixels per strip of the tail; 0 = whole frames")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.checkpoint, args.threads, args.strip_pixels)))
        return

    import torch

    from interpolation.models.dain import DAIN

    network = DAIN()
    parameters = sum(p.numel() for p in network.parameters())
    print(f"DAIN: {parameters:,} parameters, {len(network.state_dict())} state-dict entries")
    with tempfile.TemporaryDirectory(prefix="dain-bench-") as tmp:
        checkpoint = Path(tmp) / "random-best.pth"
        torch.save(network.state_dict(), checkpoint)
        del network
        for size in args.sizes:
            argv = [sys.executable, __file__, "--child", size, "--checkpoint", str(checkpoint)]
            if args.threads:
                argv += ["--threads", str(args.threads)]
            if args.strip_pixels is not None:
                argv += ["--strip-pixels", str(args.strip_pixels)]
            done = subprocess.run(argv, capture_output=True, text=True, check=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{row['size']:>9} ({row['threads']} threads): first pair {row['first_pair_s']:.1f} s, "
                  f"next pair {row['next_pair_s']:.1f} s, another t of the same pair {row['extra_t_s']:.1f} s; "
                  f"peak RSS {row['peak_rss_mib']:.0f} MiB (model loaded: {row['after_load_rss_mib']:.0f} MiB)")
            if row["rife_next_pair_s"]:
                print(f"{'':>9} RIFE on the same frames: {row['rife_next_pair_s']:.2f} s a pair; DAIN/RIFE = "
                      f"{row['next_pair_s'] / row['rife_next_pair_s']:.0f}×")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
