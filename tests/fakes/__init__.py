"""Fakes of the remote services the bot talks to, served over real protocols on 127.0.0.1."""

from tests.fakes.telegram_api import ApiCall, BotApiError, FakeTelegram, FileRef, Upload

__all__ = ["ApiCall", "BotApiError", "FakeTelegram", "FileRef", "Upload"]
