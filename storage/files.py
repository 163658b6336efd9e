"""Where job files live: ``FileStore``, on a local directory or an S3-compatible bucket.

A front-end puts the input in at enqueue (``put_input``: key ``in/<random>``), a worker fetches it
(``get``) and puts the result back (``put_result``: key ``out/<job id>``); retention deletes both
(``delete``, called by the queue's ``purge_files``/``cleanup``). Keys are made here from random
bytes and job ids only, never from names a user chose, so a file called ``../../etc/passwd`` or
``x?y#z`` cannot steer where anything is written. A suffix (``.mp4``) is kept when it is short and
plain, so tools and platforms recognise the file type.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from storage.errors import StorageError

_SUFFIX = re.compile(r"\.[a-z0-9]{1,8}")
_KEY = re.compile(r"(in/[0-9a-f]{32}|out/[0-9]+)(\.[a-z0-9]{1,8})?")


class FileMissingError(StorageError, FileNotFoundError):
    """The store has no file under this key (deleted by retention, or never stored)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"the stored file {key} does not exist (it may have been deleted after its retention time)")


def _suffix(source: str | os.PathLike[str]) -> str:
    suffix = Path(source).suffix.lower()
    return suffix if _SUFFIX.fullmatch(suffix) else ""


def input_key(source: str | os.PathLike[str]) -> str:
    """A fresh key for an input file: ``in/<32 random hex digits><suffix>``."""
    return f"in/{secrets.token_hex(16)}{_suffix(source)}"


def result_key(job_id: int, source: str | os.PathLike[str]) -> str:
    """The key of a job's result: ``out/<job id><suffix>``."""
    if isinstance(job_id, bool) or not isinstance(job_id, int) or job_id < 0:
        raise ValueError(f"job_id must be a non-negative int, got {job_id!r}")
    return f"out/{job_id}{_suffix(source)}"


def is_key(reference: str) -> bool:
    """Whether ``reference`` (a job's ``input_path``/``result_path``) is a key of this module, rather
    than a local path from before the file store (or from a queue opened without one)."""
    return isinstance(reference, str) and _KEY.fullmatch(reference) is not None


def checked_key(key: str) -> str:
    """Refuse anything that is not a key this module made (no paths, no user text)."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"not a file-store key: {key!r}")
    return key


class FileStore(ABC):
    """Job files by key. ``put_*`` return the key to store on the job."""

    async def put_input(self, source: str | os.PathLike[str]) -> str:
        key = input_key(source)
        await self._put(Path(source), key)
        return key

    async def put_result(self, job_id: int, source: str | os.PathLike[str]) -> str:
        key = result_key(job_id, source)
        await self._put(Path(source), key)
        return key

    async def get(self, key: str, destination: str | os.PathLike[str]) -> Path:
        """Copy the file to ``destination`` (its folder is created); ``FileMissingError`` if gone."""
        target = Path(destination)
        target.parent.mkdir(parents=True, exist_ok=True)
        await self._get(checked_key(key), target)
        return target

    async def delete(self, key: str) -> bool:
        """Delete the file; False if it was not there (deleting twice is harmless)."""
        return await self._delete(checked_key(key))

    @abstractmethod
    async def exists(self, key: str) -> bool: ...

    @abstractmethod
    async def _put(self, source: Path, key: str) -> None: ...

    @abstractmethod
    async def _get(self, key: str, target: Path) -> None: ...

    @abstractmethod
    async def _delete(self, key: str) -> bool: ...

    async def close(self) -> None:
        """Release connections (nothing to do for a directory)."""


class LocalFileStore(FileStore):
    """Files under one directory (the default: the bot's data directory)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """Where the file of ``key`` lies (a worker on the same machine may read it in place)."""
        return self.root / checked_key(key)

    async def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    async def _put(self, source: Path, key: str) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
        # Copy then rename: a crash mid-copy never leaves a truncated file under the key.
        await asyncio.to_thread(shutil.copyfile, source, partial)
        os.replace(partial, target)

    async def _get(self, key: str, target: Path) -> None:
        try:
            await asyncio.to_thread(shutil.copyfile, self.root / key, target)
        except FileNotFoundError:
            raise FileMissingError(key) from None

    async def _delete(self, key: str) -> bool:
        try:
            (self.root / key).unlink()
        except FileNotFoundError:
            return False
        return True


class S3FileStore(FileStore):
    """Files in an S3 bucket under ``prefix`` (AWS, or MinIO/SeaweedFS/Ceph via ``endpoint_url``).

    The client is boto3: the reference S3 SDK, well kept by AWS, with credentials, regions,
    profiles, retries and multipart transfers (s3transfer) handled the standard way
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_PROFILE``). It is
    synchronous, so every call runs in a thread (``asyncio.to_thread``); a video job makes a handful
    of calls, so a thread hop costs nothing that matters. aioboto3/aiobotocore lag botocore
    releases and pin it tightly; minio-py and obstore are smaller ecosystems with their own
    credential handling.
    """

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 client: Any | None = None, **client_options: Any) -> None:
        if not bucket:
            raise ValueError("an S3 file store needs a bucket name")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if client is None:
            import boto3  # only deployments with S3 pay for importing it

            client = boto3.client("s3", endpoint_url=endpoint_url, **client_options)
        self._client = client

    def object_name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._exists, self.object_name(checked_key(key)))

    def _exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    async def _put(self, source: Path, key: str) -> None:
        await asyncio.to_thread(self._client.upload_file, str(source), self.bucket, self.object_name(key))

    async def _get(self, key: str, target: Path) -> None:
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self._client.download_file, self.bucket, self.object_name(key), str(target))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileMissingError(key) from None
            raise

    async def _delete(self, key: str) -> bool:
        name = self.object_name(key)
        # S3's DELETE succeeds for a missing key too; ask first so callers learn what was deleted.
        if not await asyncio.to_thread(self._exists, name):
            return False
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=name)
        return True

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
