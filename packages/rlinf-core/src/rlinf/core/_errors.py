"""Exceptions raised in the driver when workers fail, die or time out."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CallTimeout", "CommError", "WorkerDied", "WorkerError"]


class WorkerError(RuntimeError):
    """A method raised inside a worker.

    Attributes:
        group: Name of the worker group.
        rank: Rank that failed.
        method: Method that was called.
        remote_type: Class name of the remote exception.
        remote_traceback: The traceback as formatted inside the worker.
    """

    def __init__(
        self, group: str, rank: int, method: str, remote_type: str, message: str, traceback: str
    ):
        self.group = group
        self.rank = rank
        self.method = method
        self.remote_type = remote_type
        self.remote_traceback = traceback
        super().__init__(
            f"worker group {group!r} rank {rank} failed in {method}(): {remote_type}: {message}\n"
            f"--- remote traceback (group {group!r}, rank {rank}) ---\n{traceback}"
        )


class WorkerDied(WorkerError):
    """A worker process died (killed, crashed, out of memory) before answering a call.

    ``method`` is None for a death found otherwise than by a call (e.g. at shutdown).
    """

    def __init__(self, group: str, rank: int, method: str | None, cause: str):
        self.group = group
        self.rank = rank
        self.method = method or ""
        self.remote_type = "WorkerDied"
        self.remote_traceback = ""
        during = f" during {method}()" if method else ""
        RuntimeError.__init__(self, f"worker group {group!r} rank {rank} died{during}: {cause}")


class CallTimeout(TimeoutError):
    """A group call did not finish in time; the workers may still be running it.

    Attributes:
        group: Name of the worker group.
        method: Method that was called.
        pending: Ranks that had not answered.
    """

    def __init__(self, group: str, method: str, pending: Sequence[int], timeout: float):
        self.group = group
        self.method = method
        self.pending = tuple(pending)
        super().__init__(
            f"worker group {group!r}: {method}() did not finish within {timeout:g} s on "
            f"rank(s) {list(pending)}"
        )


class CommError(RuntimeError):
    """A point-to-point transfer or broadcast failed (peer gone, timeout, bad payload)."""
