"""smoothbot's interpolation engine: video in, smooth video (or GIF, or PNG frames) out.

The engine knows nothing about chats. Use it from the command line
(``python -m interpolation IN -o OUT --fps 60``) or as a library through
:func:`interpolation.api.run`.
"""
