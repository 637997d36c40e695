"""A device lock for components that run as threads of one process (no Ray)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence

from ._device_lock_errors import DeviceLockTimeout
from ._lock_turn import TurnTaking

__all__ = ["LocalDeviceLock"]


class LocalDeviceLock(TurnTaking):
    """The grant rules of :class:`DeviceLock` (a set of devices at once, first come first
    served among waiters that want a common device) for the threads of this process:
    its holders share the lock object itself, where processes share a named Ray actor.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._holders: dict[int, str] = {}
        self._queue: list[tuple[int, frozenset[int]]] = []
        self._tickets = itertools.count()
        self._cond = threading.Condition()

    def _grantable(self, ticket: int, devices: frozenset[int]) -> bool:
        if any(d in self._holders for d in devices):
            return False
        for t, want in self._queue:
            if t == ticket:
                return True
            if want & devices:
                return False
        return True

    def acquire(self, devices: Sequence[int], holder: str, timeout: float | None = None) -> None:
        """Block until every device in ``devices`` is granted to ``holder``.

        Raises:
            DeviceLockTimeout: not granted within ``timeout`` s, or ``holder`` already
                holds one of them (naming the holders).
        """
        want = frozenset(devices)
        with self._cond:
            mine = sorted(d for d, h in self._holders.items() if h == holder and d in want)
            if mine:
                raise DeviceLockTimeout(
                    f"{holder} could not lock devices {list(devices)}: "
                    f"{holder} already holds device(s) {mine}"
                )
            ticket = next(self._tickets)
            self._queue.append((ticket, want))
            deadline = None if timeout is None else time.monotonic() + timeout
            try:
                while not self._grantable(ticket, want):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        held = {d: self._holders[d] for d in sorted(want) if d in self._holders}
                        raise DeviceLockTimeout(
                            f"{holder} could not lock devices {list(devices)}: timed out "
                            f"after {timeout} s; held: {held}"
                        )
                    self._cond.wait(remaining)
            finally:
                self._queue = [q for q in self._queue if q[0] != ticket]
                self._cond.notify_all()
            for d in want:
                self._holders[d] = holder

    def release(self, devices: Sequence[int], holder: str) -> None:
        """Give ``devices`` back (no-op for devices ``holder`` does not hold)."""
        with self._cond:
            for d in devices:
                if self._holders.get(d) == holder:
                    del self._holders[d]
            self._cond.notify_all()

    def release_all(self, holder: str) -> list[int]:
        """Free everything ``holder`` holds; returns the devices."""
        with self._cond:
            freed = sorted(d for d, h in self._holders.items() if h == holder)
            for d in freed:
                del self._holders[d]
            self._cond.notify_all()
        return freed

    def holders(self) -> dict[int, str]:
        """Device -> current holder."""
        with self._cond:
            return dict(self._holders)
