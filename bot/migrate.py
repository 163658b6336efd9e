"""``python -m bot migrate TARGET_URL``: move this deployment's queue to another one (SQLite → PostgreSQL).

The bot's own name for ``python -m storage.copy``: the source is the queue this bot is configured
with (``SMOOTHBOT_QUEUE_URL``, or the SQLite file in ``SMOOTHBOT_DATA_DIR``) unless ``--from`` names
another. Chat settings and queued or running jobs are copied (see storage/copy.py); finished jobs stay
behind; running it twice copies nothing twice. Stop the bot first, then start it on TARGET_URL.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from storage import copy
from storage.postgres import redacted
from storage.urls import SQLITE_PREFIX, sqlite_path

from .config import Settings, setting_error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot migrate",
        description="Copy this bot's chat settings and unfinished jobs into another queue (e.g. SQLite to "
                    "PostgreSQL). Stop the bot first; then start it with SMOOTHBOT_QUEUE_URL=TARGET_URL.")
    parser.add_argument("target", metavar="TARGET_URL", help="the queue to copy into, e.g. "
                        "postgresql://user:password@host:5432/db")
    parser.add_argument("--from", dest="source", metavar="SOURCE_URL",
                        help="the queue to copy from (default: this bot's SMOOTHBOT_QUEUE_URL or its SQLite file)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: {setting_error(error)}", file=sys.stderr)
        return 2
    source = args.source or settings.queue_location
    if source.startswith(SQLITE_PREFIX) and not Path(sqlite_path(source)).is_file():
        print(f"error: no queue at {sqlite_path(source)} to copy from (set SMOOTHBOT_DATA_DIR or --from)",
              file=sys.stderr)
        return 2
    if source == args.target:
        print("error: the target is the queue this bot already uses", file=sys.stderr)
        return 2
    print(f"copying {redacted(source)} -> {redacted(args.target)}")
    return copy.run(source, args.target)
