"""Typed errors of the storage layer. ``str(error)`` is one line a person can read."""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error that storage/ raises on purpose."""


class QueueFullError(StorageError):
    """A user already has as many queued jobs as the per-user cap allows.

    ``str()`` is the refusal the bot can show the user as it is.
    """

    def __init__(self, queued: int, limit: int) -> None:
        self.queued = queued
        self.limit = limit
        videos = "video" if queued == 1 else "videos"
        super().__init__(
            f"You already have {queued} {videos} waiting in the queue (the limit is {limit}). "
            "Please wait until one of them is finished, or cancel one, before sending another."
        )


class JobNotFoundError(StorageError, LookupError):
    """No job has this id."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        super().__init__(f"there is no job with id {job_id}")


class JobStateError(StorageError):
    """The job is in a state that does not allow the operation (e.g. purging files of a queued job)."""


class LeaseLostError(StorageError):
    """The worker's claim on a job is no longer valid, so its change was not saved.

    This happens when the lease expired and the job was handed back to the queue (and maybe to
    another worker), or when the job was released or finished by someone else.
    """

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        super().__init__(
            f"job {job_id} is no longer leased to this worker (the lease expired or the job moved on); "
            "the change was not saved"
        )


class QueueClosedError(StorageError):
    """The queue was used after ``close()``."""

    def __init__(self) -> None:
        super().__init__("the job queue is closed")


class SchemaTooNewError(StorageError):
    """The database was written by a newer smoothbot than this one."""

    def __init__(self, path: str, found: int, known: int) -> None:
        self.found = found
        self.known = known
        super().__init__(
            f"the database {path} has schema version {found}, but this smoothbot knows only up to "
            f"version {known}; upgrade smoothbot before opening it"
        )


class StorageUnavailableError(StorageError):
    """The database could not be reached for longer than the reconnect timeout."""

    def __init__(self, where: str, cause: BaseException) -> None:
        self.where = where
        super().__init__(f"the job database {where} is unreachable ({type(cause).__name__}: {cause}); gave up retrying")
