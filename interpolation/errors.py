"""Typed errors of the engine. Each carries a one-line message meant for a person."""

from __future__ import annotations


class EngineError(Exception):
    """Base class: ``str(error)`` is a one-line, human message (no traceback needed)."""

    exit_code = 1


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


class CancelledError(EngineError):
    """The caller asked to stop (``cancelled()`` returned True)."""

    exit_code = 130
