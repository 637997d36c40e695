"""GroupStart: the pending construction of a worker group's ranks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import WorkerError
from ._future import GroupFuture

if TYPE_CHECKING:
    from ._group import WorkerGroup

__all__ = ["GroupStart"]


class GroupStart:
    """What :meth:`WorkerGroup.start` returns: a failed or timed-out ``wait()`` kills the
    group before it raises, so a half-built group never outlives the error."""

    def __init__(self, group: WorkerGroup, future: GroupFuture) -> None:
        self._group = group
        self._future = future

    def wait(self, *timeout: float | None) -> list[Any]:
        """``GroupFuture.wait`` (``timeout`` defaults to the start's)."""
        try:
            return self._future.wait(*timeout)
        except (WorkerError, TimeoutError):
            self._group.kill()
            raise
