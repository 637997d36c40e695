"""A device lock for components that run as threads of one process (no Ray)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from ._device_lock_errors import DeviceLockTimeout
from ._grants import DeviceGrants
from ._lock_turn import TurnTaking

__all__ = ["LocalDeviceLock"]


class LocalDeviceLock(TurnTaking):
    """The grant rules of :class:`DeviceLock` (a set of devices at once, first come first
    served among waiters that want a common device) for the threads of this process:
    its holders share the lock object itself, where processes share a named Ray actor.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._grants = DeviceGrants()
        self._cond = threading.Condition()

    def acquire(self, devices: Sequence[int], holder: str, timeout: float | None = None) -> None:
        """Block until every device in ``devices`` is granted to ``holder``.

        Raises:
            DeviceLockTimeout: not granted within ``timeout`` s, or ``holder`` already
                holds one of them (naming the holders).
        """
        want = frozenset(devices)
        with self._cond:
            mine = self._grants.already_held(want, holder)
            if mine:
                raise DeviceLockTimeout(
                    f"{holder} could not lock devices {list(devices)}: "
                    f"{holder} already holds device(s) {mine}"
                )
            ticket = self._grants.enqueue(want)
            deadline = None if timeout is None else time.monotonic() + timeout
            try:
                while not self._grants.grantable(ticket, want):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise DeviceLockTimeout(
                            f"{holder} could not lock devices {list(devices)}: timed out "
                            f"after {timeout} s; held: {self._grants.held_by_others(want)}"
                        )
                    self._cond.wait(remaining)
            finally:
                self._grants.dequeue(ticket)
                self._cond.notify_all()
            self._grants.grant(want, holder)

    def release(self, devices: Sequence[int], holder: str) -> None:
        """Give ``devices`` back (no-op for devices ``holder`` does not hold)."""
        with self._cond:
            self._grants.release(devices, holder)
            self._cond.notify_all()

    def release_all(self, holder: str) -> list[int]:
        """Free everything ``holder`` holds; returns the devices."""
        with self._cond:
            freed = self._grants.release_all(holder)
            self._cond.notify_all()
        return freed

    def holders(self) -> dict[int, str]:
        """Device -> current holder."""
        with self._cond:
            return self._grants.holders()
