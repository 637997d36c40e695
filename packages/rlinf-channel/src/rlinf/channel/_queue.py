"""The per-key FIFO queue that the channel actor keeps, with asyncio waiting.

It holds opaque entries (object references wrapped by the caller) and their weights; it
never sees a payload. All methods run on the actor's single event loop, so no locking is
needed beyond the conditions used for waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque
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
        self.changed = asyncio.Condition()
        self._waiters = 0
        self._wakeups: set[asyncio.Task] = set()

    def __len__(self) -> int:
        return len(self.entries)

    def full(self) -> bool:
        return self.maxsize > 0 and len(self.entries) >= self.maxsize

    def push(self, entry: Any, weight: float) -> None:
        self.entries.append((entry, weight))
        self.total_weight += weight

    def push_front(self, entries: list[tuple[Any, float]]) -> None:
        """Give back entries that a cancelled consumer had popped, keeping their order."""
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

    def notify_soon(self) -> None:
        """Wake the waiters from a separate task, without an await point in the caller.

        A consumer's call that already popped an entry must return without yielding: a
        cancellation delivered at an await after the pop would drop the entry.
        """
        if self._waiters:
            task = asyncio.get_running_loop().create_task(self.notify())
            self._wakeups.add(task)  # the loop keeps only a weak reference to tasks
            task.add_done_callback(self._wakeups.discard)

    async def notify(self) -> None:
        # Skipping the lock when nobody waits keeps the uncontended put/get path cheap.
        if self._waiters:
            async with self.changed:
                self.changed.notify_all()

    async def wait_until(self, ready: Any, closed: Any, timeout: float | None) -> str:
        """Wait until ``ready()`` or ``closed()`` holds, at most ``timeout`` seconds.

        ``ready`` wins over ``closed`` so that queued items stay gettable after close.
        """
        if ready():
            return WaitOutcome.READY
        if closed():
            return WaitOutcome.CLOSED
        if timeout is not None and timeout <= 0:
            return WaitOutcome.TIMEOUT
        self._waiters += 1
        try:
            async with self.changed:
                await asyncio.wait_for(self.changed.wait_for(lambda: ready() or closed()), timeout)
        except TimeoutError:
            return WaitOutcome.TIMEOUT
        finally:
            self._waiters -= 1
        return WaitOutcome.READY if ready() else WaitOutcome.CLOSED
