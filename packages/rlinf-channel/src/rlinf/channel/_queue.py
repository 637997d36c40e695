"""The per-key FIFO queue that the channel actor keeps, with asyncio waiting.

It holds opaque entries (object references wrapped by the caller) and their weights; it
never sees a payload. All methods run on the actor's single event loop, so no locking is
needed: a check followed by a pop or push with no ``await`` in between is atomic.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["KeyQueue", "WaitOutcome"]


class WaitOutcome:
    """Why a wait ended: the predicate became true, the channel closed, or time ran out."""

    READY = "ready"
    CLOSED = "closed"
    TIMEOUT = "timeout"


class KeyQueue:
    """FIFO of ``(entry, weight)`` pairs with a bounded length.

    Args:
        maxsize: most entries held at once; ``0`` means unbounded.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.entries: deque[tuple[Any, float]] = deque()
        self.total_weight = 0.0
        # One future shared by every waiter of this key, resolved (and replaced) on each
        # change; cheaper than a Condition and needs no lock since everything runs on one loop.
        self._changed: asyncio.Future | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def full(self) -> bool:
        return self.maxsize > 0 and len(self.entries) >= self.maxsize

    def push(self, entry: Any, weight: float) -> None:
        self.entries.append((entry, weight))
        self.total_weight += weight

    def push_front(self, entries: list[tuple[Any, float]]) -> None:
        """Give back entries that a consumer was handed but never received, keeping order.

        This may exceed ``maxsize`` for a moment: the entries were admitted once already.
        """
        for entry, weight in reversed(entries):
            self.entries.appendleft((entry, weight))
            self.total_weight += weight

    def pop(self) -> tuple[Any, float]:
        entry, weight = self.entries.popleft()
        self.total_weight -= weight
        if not self.entries:
            # Floating-point drift would otherwise leave a tiny phantom weight behind.
            self.total_weight = 0.0
        return entry, weight

    def pop_within(self, target_weight: float) -> list[tuple[Any, float]]:
        """Pop from the front while the popped weights sum to at most ``target_weight``."""
        popped: list[tuple[Any, float]] = []
        total = 0.0
        while self.entries and total + self.entries[0][1] <= target_weight:
            entry, weight = self.pop()
            popped.append((entry, weight))
            total += weight
        return popped

    def notify(self) -> None:
        """Wake every waiter of this key so that it re-checks its condition.

        Synchronous on purpose: a call that popped an entry must return without an
        ``await``, or a cancellation delivered there would drop the entry.
        """
        changed = self._changed
        if changed is not None:
            self._changed = None
            if not changed.done():
                changed.set_result(None)

    async def wait_until(
        self, ready: Callable[[], bool], closed: Callable[[], bool], timeout: float | None
    ) -> str:
        """Wait until ``ready()`` or ``closed()`` holds, at most ``timeout`` seconds.

        ``ready`` wins over ``closed`` so that queued items stay gettable after close. The
        outcome is decided on the same loop iteration that returns it, so a caller that acts
        on ``READY`` without awaiting finds the queue as checked. A wake-up is only a hint:
        another call may have taken the item or the room first (a newcomer served at once,
        or an earlier waiter), and the wait simply resumes. Mapping such a lost race to
        ``CLOSED`` was the cause of spurious ``ChannelClosed`` errors on an open channel.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if ready():
                return WaitOutcome.READY
            if closed():
                return WaitOutcome.CLOSED
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return WaitOutcome.TIMEOUT
            if self._changed is None:
                self._changed = loop.create_future()
            # Shielded: a waiter that times out or is cancelled must not cancel the future
            # the other waiters share.
            try:
                async with asyncio.timeout(remaining):
                    await asyncio.shield(self._changed)
            except TimeoutError:
                pass  # re-checked above: an item that arrived at the deadline still counts
