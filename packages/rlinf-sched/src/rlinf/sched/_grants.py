"""The device locks' bookkeeping: who holds which device, who waits, who goes next.

Pure state with no waiting of its own: the Ray lock server (an asyncio condition) and the
in-process lock (a threading condition) wrap it in their own way of blocking.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

__all__ = ["DeviceGrants"]


class DeviceGrants:
    """Sets of devices granted atomically, first come first served among waiters that
    want a common device: taking all devices at once and honouring queue order rule out
    both lock-order deadlocks and the starvation of a waiter that needs several devices."""

    def __init__(self) -> None:
        self._holders: dict[int, str] = {}
        self._queue: list[tuple[int, frozenset[int]]] = []
        self._tickets = itertools.count()

    def already_held(self, devices: Iterable[int], holder: str) -> list[int]:
        """Those of ``devices`` that ``holder`` holds already (asking again is an error)."""
        want = set(devices)
        return sorted(d for d, h in self._holders.items() if h == holder and d in want)

    def enqueue(self, devices: frozenset[int]) -> int:
        """Queue a request; returns its ticket."""
        ticket = next(self._tickets)
        self._queue.append((ticket, devices))
        return ticket

    def dequeue(self, ticket: int) -> None:
        """Take a request off the queue (granted or given up)."""
        self._queue = [q for q in self._queue if q[0] != ticket]

    def grantable(self, ticket: int, devices: frozenset[int]) -> bool:
        """Whether the request ``ticket`` for ``devices`` may be granted now."""
        if any(d in self._holders for d in devices):
            return False
        for t, want in self._queue:
            if t == ticket:
                return True
            if want & devices:
                return False
        return True

    def grant(self, devices: frozenset[int], holder: str) -> None:
        """Record ``holder`` as the holder of ``devices``."""
        for d in devices:
            self._holders[d] = holder

    def held_by_others(self, devices: Iterable[int]) -> dict[int, str]:
        """Device -> holder, for those of ``devices`` that are held (for timeout messages)."""
        return {d: self._holders[d] for d in sorted(devices) if d in self._holders}

    def release(self, devices: Iterable[int], holder: str) -> None:
        """Give back those of ``devices`` that ``holder`` holds."""
        for d in devices:
            if self._holders.get(d) == holder:
                del self._holders[d]

    def release_all(self, holder: str) -> list[int]:
        """Give back everything ``holder`` holds; returns the devices."""
        freed = sorted(d for d, h in self._holders.items() if h == holder)
        for d in freed:
            del self._holders[d]
        return freed

    def holders(self) -> dict[int, str]:
        """Device -> current holder."""
        return dict(self._holders)
