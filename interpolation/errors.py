"""Typed errors of the engine.

Each carries a one-line ``message`` meant for a person (``str(error)``), safe to show in a chat: no
server paths, no environment variables, no tool output. What an operator needs to find the cause
(ffmpeg's last stderr lines, the command, file paths) goes in ``detail``, for logs and ``-v``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self


class EngineError(Exception):
    """Base class: ``str(error)`` is the one-line human ``message``; ``detail`` is server-side text or None.

    An error made with :meth:`said` also keeps its ``template`` (the English sentence with ``{name}``
    placeholders) and the ``values`` put in, so that a caller can say it in another language: the
    chat bot's catalogues hold the templates (``make messages`` extracts every ``said("…")``).
    """

    exit_code = 1

    def __init__(self, message: str, *, detail: str | None = None, template: str | None = None,
                 values: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.template = template
        self.values = dict(values or {})

    @classmethod
    def said(cls, template: str, /, **values: object) -> Self:
        """The error whose message is ``template`` with ``values`` put in (``str.format``)."""
        return cls(template.format(**values), template=template, values=values)

    def __str__(self) -> str:
        return self.message


class BadInputError(EngineError):
    """The input file cannot be used (not a video, corrupt, hostile, unsupported)."""

    exit_code = 2


class LimitExceededError(BadInputError):
    """The input is a valid video but larger/longer than the configured limits allow."""


class BadOptionsError(EngineError):
    """The requested options make no sense (e.g. a negative frame rate)."""

    exit_code = 2


class WeightsError(EngineError):
    """Model weights are missing, corrupt or do not match the model."""

    exit_code = 3


class EncoderError(EngineError):
    """ffmpeg failed to write the output."""


class EncoderTimeoutError(EncoderError):
    """A child process (ffmpeg) ran past the deadline its work allows and was killed."""


class CancelledError(EngineError):
    """The caller asked to stop (``cancelled()`` returned True)."""

    exit_code = 130
