"""Typed settings of the service, read from the environment and ``.env`` (the environment wins).

Tokens are :class:`~pydantic.SecretStr`: they print as ``**********`` in logs and reprs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MB = 1000 * 1000
MIB = 1024 * 1024


#: What a self-hosted Bot API server in --local mode accepts per upload.
TELEGRAM_LOCAL_UPLOAD_LIMIT = 2000 * MB

QUEUE_URL_PREFIXES = ("sqlite:///", "postgresql://", "postgres://")
#: What Telegram accepts as a webhook's secret token.
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_prefix="SMOOTHBOT_", extra="ignore")

    telegram_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TELEGRAM_TOKEN", "SMOOTHBOT_TELEGRAM_TOKEN"))
    discord_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DISCORD_TOKEN", "SMOOTHBOT_DISCORD_TOKEN"))

    #: Downloads, results and the SQLite database live here.
    data_dir: Path = Path("data")
    #: Default: ``<data_dir>/smoothbot.sqlite3``.
    database_path: Path | None = None
    #: The job queue and chat settings: ``sqlite:///relative/file.sqlite3``, ``sqlite:////absolute/file``
    #: or ``postgresql://user:password@host:5432/db``. Default: the SQLite file above. Secret: the
    #: URL may carry a password.
    queue_url: SecretStr | None = None
    #: Where job files (inputs at enqueue, results) live: a directory (default: ``data_dir``), or
    #: ``s3://bucket/prefix`` with credentials from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
    #: ``AWS_REGION`` (or ``AWS_PROFILE``). Every front-end and worker must name the same store.
    files_url: str | None = None
    #: The S3 endpoint of a server other than AWS (MinIO, SeaweedFS, Ceph): ``http://host:8333``.
    s3_endpoint_url: str | None = None

    #: Bot API endpoints; point them at a self-hosted Bot API server (or a test double).
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    #: Seconds to wait for a Bot API answer, to send a request, and to send an upload (50 MB needs
    #: far more than PTB's 5 s default). A call past them fails as transient and is retried by the worker.
    telegram_read_timeout_s: float = 30.0
    telegram_write_timeout_s: float = 30.0
    telegram_upload_timeout_s: float = 300.0
    #: Webhook mode (several front-ends behind a load balancer): Telegram POSTs updates to this public
    #: HTTPS URL, carrying the secret in X-Telegram-Bot-Api-Secret-Token; each front-end serves the
    #: URL's path on telegram_webhook_listen:telegram_webhook_port. Unset: long polling (on PostgreSQL
    #: one front-end at a time polls, the others stand by; bot/telegram_failover.py).
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_webhook_listen: str = "127.0.0.1"
    telegram_webhook_port: int = Field(default=8443, ge=1, le=65535)
    #: Seconds between a standby front-end's tries to take over Telegram polling (PostgreSQL only).
    telegram_standby_retry_s: float = Field(default=2.0, gt=0)
    #: Cloud Bot API limits. In local mode (below) they default to the local server's: no download limit
    #: and 2000 MB uploads; setting either here still caps it.
    telegram_download_limit: int = 20 * MB
    telegram_upload_limit: int = 50 * MB
    #: A self-hosted ``telegram-bot-api --local`` server: getFile answers an absolute path on that server's
    #: disk, which the bot copies from (the directory must be readable here at the same path).
    telegram_local_mode: bool = False
    #: In local mode, send results as ``file://`` paths the server reads itself (it must see the data
    #: directory at the same path); off: upload the bytes as in cloud mode.
    telegram_local_upload_by_path: bool = True
    #: Discord's default per-file limit; boosted servers report more and that is used instead.
    discord_upload_limit: int = 10 * MIB
    #: Largest attachment fetched from Discord (members with Nitro may post up to 500 MiB; a long clip
    #: is refused by the duration and resolution limits anyway, so bigger files only cost bandwidth).
    discord_download_limit: int = 100 * MIB

    #: A message whose text is a link to a video becomes a job like an uploaded video (bot/links.py).
    links_enabled: bool = True
    #: Empty: links to any public host. Otherwise only these domains and their subdomains ("example.com").
    link_domains: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Also accept pages yt-dlp understands (needs the optional ``links`` extra: pip install .[links]).
    link_pages: bool = False
    #: The most a link may download, the whole fetch's time, and the least average rate it must keep.
    link_download_limit: int = Field(default=200 * MB, gt=0)
    link_timeout_s: float = Field(default=120.0, gt=0)
    link_min_rate: float = Field(default=50_000.0, ge=0)

    #: Input limits, checked before any expensive work.
    max_input_duration_s: float = 120.0
    max_input_pixels: int = 1920 * 1088
    max_output_frames: int = 7200
    max_fps: float = 240.0
    max_queued_per_user: int = 3
    #: Empty: everyone may use the bot. Otherwise only these chat ids (Telegram or Discord channel ids).
    allowed_chat_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)

    default_model: str = "rife"
    #: Weights of models that have no bundled default (DAIN's best.pth); RIFE uses the fetched cache.
    rife_weights: Path | None = None
    dain_weights: Path | None = None
    #: torch device for the worker ("cpu", "cuda"); empty: best available.
    device: str | None = None

    #: Seconds between edits of a status message (Telegram allows about one message per second per chat).
    progress_edit_interval_s: float = 4.0
    #: Seconds a worker's lease on a job lasts without a heartbeat.
    lease_seconds: float = 60.0
    max_attempts: int = 3
    #: A job whose engine run takes longer than this is stopped and failed (a hung ffmpeg, a huge
    #: clip on a slow machine): the one worker goes on with the next job.
    max_job_seconds: float = Field(default=1800.0, gt=0)
    #: Input and result files of finished jobs older than this are deleted.
    retention_hours: float = 24.0

    #: When set, Prometheus metrics are served at http://<metrics_address>:<metrics_port>/metrics.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    #: Loopback by default: open it (0.0.0.0) only where the scraper is trusted.
    metrics_address: str = "127.0.0.1"
    #: Seconds between reads of the queue's figures (jobs per state, oldest waiting job, workers).
    metrics_interval_s: float = Field(default=15.0, gt=0)

    @field_validator("telegram_token", "discord_token", "rife_weights", "dain_weights", "device", "queue_url",
                     "metrics_port", "telegram_webhook_url", "telegram_webhook_secret", "files_url",
                     "s3_endpoint_url", mode="before")
    @classmethod
    def blank_is_unset(cls, value: object) -> object:
        """``TELEGRAM_TOKEN=`` in .env means "not configured", not an empty token."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("queue_url")
    @classmethod
    def known_queue(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(QUEUE_URL_PREFIXES):
            raise ValueError("use sqlite:///path/file.sqlite3 or postgresql://user:password@host:5432/db")
        return value

    @field_validator("link_domains", mode="before")
    @classmethod
    def split_domains(cls, value: object) -> object:
        """Accept "example.com, videos.example.org" from the environment as well as a JSON list."""
        if isinstance(value, str):
            return [part.strip().lower() for part in value.strip("[] ").replace(";", ",").split(",") if part.strip()]
        return value

    @field_validator("telegram_webhook_url")
    @classmethod
    def webhook_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("use the public https:// URL that Telegram should POST updates to")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not WEBHOOK_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("use 1 to 256 characters A-Z, a-z, 0-9, _ and - (Telegram's rule for secret tokens)")
        return value

    @model_validator(mode="after")
    def webhook_needs_secret(self) -> Settings:
        if self.telegram_webhook_url is not None and self.telegram_webhook_secret is None:
            raise ValueError("SMOOTHBOT_TELEGRAM_WEBHOOK_URL needs SMOOTHBOT_TELEGRAM_WEBHOOK_SECRET, so that only "
                             "Telegram can post updates")
        return self

    @field_validator("files_url")
    @classmethod
    def known_files(cls, value: str | None) -> str | None:
        if value is not None and "://" in value and not value.startswith(("s3://", "file://")):
            raise ValueError("use a directory, file:///directory or s3://bucket/prefix")
        return value

    @field_validator("allowed_chat_ids", mode="before")
    @classmethod
    def split_ids(cls, value: object) -> object:
        """Accept "123,-456" from the environment as well as a JSON list."""
        if isinstance(value, str):
            return [int(part) for part in value.strip("[] ").replace(";", ",").split(",") if part.strip()]
        if isinstance(value, int):
            return [value]
        return value

    @property
    def database(self) -> Path:
        return self.database_path or self.data_dir / "smoothbot.sqlite3"

    @property
    def files_location(self) -> str:
        """The file store to open: ``files_url``, or the data directory."""
        return self.files_url or str(self.data_dir)

    @property
    def queue_location(self) -> str:
        """The queue URL to open: ``queue_url``, or the SQLite file ``database``."""
        return self.queue_url.get_secret_value() if self.queue_url else f"sqlite:///{self.database}"

    @property
    def telegram_download_cap(self) -> int | None:
        """Largest file fetched from Telegram: the cloud's 20 MB, or in local mode none unless one is set."""
        if self.telegram_local_mode and "telegram_download_limit" not in self.model_fields_set:
            return None
        return self.telegram_download_limit

    @property
    def telegram_upload_cap(self) -> int:
        """Largest result sent to Telegram: the cloud's 50 MB, or in local mode 2000 MB unless one is set."""
        if self.telegram_local_mode and "telegram_upload_limit" not in self.model_fields_set:
            return TELEGRAM_LOCAL_UPLOAD_LIMIT
        return self.telegram_upload_limit

    def chat_allowed(self, chat_id: int | str) -> bool:
        return not self.allowed_chat_ids or int(chat_id) in self.allowed_chat_ids


def setting_error(error: ValidationError) -> str:
    """The first bad setting in ``error``, as one line for the terminal."""
    first = error.errors()[0]
    where = ".".join(map(str, first["loc"]))
    if not where:  # a rule between settings
        return f"bad settings: {first['msg'].removeprefix('Value error, ')}"
    return f"bad setting {where}: {first['msg']}"
