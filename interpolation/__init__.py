"""smoothbot's interpolation engine: video in, smooth video (or GIF, or PNG frames) out.

The engine knows nothing about chats. Use it from the command line
(``python -m interpolation IN -o OUT --fps 60``) or as a library through
:func:`interpolation.api.run`.
"""

import os

#: OpenMP threads that spin while waiting for each other stall badly when another process (the
#: ffmpeg decoder and encoder of the same job, on a 2-core machine) holds a core: measured here on
#: a 2 s 480p 30→60 job, 2.7× the wall time and 2.7× the CPU time of sleeping waits. Read by
#: libgomp when torch loads, so it is set before any torch import; a value set by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
