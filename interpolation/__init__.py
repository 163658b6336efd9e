"""smoothbot's interpolation engine: video in, smooth video (or GIF, or PNG frames) out.

The engine knows nothing about chats. Use it from the command line
(``python -m interpolation IN -o OUT --fps 60``) or as a library through
:func:`interpolation.api.run`.
"""

import os

#: How many times an idle OpenMP thread polls for work before it sleeps. libgomp's default, 300,000,
#: is milliseconds of spinning after every parallel region: a core kept from the RIFE kernels' own
#: threads and from the job's ffmpeg processes. Sleeping at once (OMP_WAIT_POLICY=PASSIVE, the earlier
#: setting here) makes every convolution wake its threads. Measured on 2 cores, one 480p pair on two
#: threads, alternating runs: median 220 ms per frame sleeping, 195 ms with this count; a 2 s 480p
#: 30→60 job with one pair at a time: 16.9 s sleeping, 16.1 s at the default (and 25 % more CPU
#: time), 14.4 s with this count. Read by libgomp when torch loads, so it is set before any torch
#: import; a value set by the user (or an OMP_WAIT_POLICY) wins.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")


def keep_large_buffers_allocated() -> None:
    """Let glibc reuse freed tensor buffers instead of returning them to the kernel each time.

    A RIFE forward allocates and frees dozens of frame-sized tensors; with glibc's defaults each
    one is a fresh mmap whose pages the kernel must zero again. Measured on a 2 s 480p 30→60 job:
    system time 18.3 s → 11.1 s, wall time −12 %, peak memory +13 %. No effect off glibc.

    One arena for all threads: the engine's two model lanes are threads, and glibc gives each thread
    its own arena, made of heaps of at most 64 MB that it unmaps when they empty, so large tensors a
    lane freed could be faulted in afresh. Measured on the 10 s 480p 30→60 job: with per-thread
    arenas, 4 runs of 6 took 1.3–3.3 million page faults and 4–10 s of system time; with one arena,
    6 runs of 6 took 0.14 million and about 1 s. Python's own small objects have their own allocator,
    so the shared arena is rarely contended.
    """
    import ctypes
    import ctypes.util

    # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD and M_ARENA_MAX in <malloc.h>
    mmap_threshold, trim_threshold, arena_max = -3, -1, -8
    library = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(library)
        libc.mallopt(mmap_threshold, 64 * 1024 * 1024)
        libc.mallopt(trim_threshold, 256 * 1024 * 1024)
        if "MALLOC_ARENA_MAX" not in os.environ:  # the user's setting wins
            libc.mallopt(arena_max, 1)
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS): nothing to tune
        return


keep_large_buffers_allocated()
