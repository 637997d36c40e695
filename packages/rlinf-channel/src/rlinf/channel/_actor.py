"""The Ray actor that hosts one channel: keyed queues of entries and their weights.

Entries come from :mod:`rlinf.channel._payload`: large payloads arrive as object references
that the actor stores and hands back unresolved, so it never holds or copies them.

Methods answer with a small status tuple instead of raising, so that the client can turn
each outcome into the right exception without Ray's remote-traceback machinery on the hot
path.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from rlinf.channel._queue import KeyQueue, WaitOutcome

__all__ = ["ChannelActor", "Status"]


class Status:
    """First element of every reply from the actor."""

    OK = "ok"
    CLOSED = "closed"
    TIMEOUT = "timeout"
    FULL = "full"
    EMPTY = "empty"
    OVERSIZED = "oversized"
    ABANDONED = "abandoned"


class ChannelActor:
    """Keyed FIFO queues of ``(entry, weight)``; wrapped with ``ray.remote`` by the client.

    Args:
        name: the channel's name, kept for error messages and ``describe()``.
        maxsize: per-key bound on queued items; ``0`` means unbounded.
        inline_limit: the channel's by-value size limit, kept for clients that connect.
    """

    def __init__(self, name: str, maxsize: int, inline_limit: int) -> None:
        self._name = name
        self._maxsize = maxsize
        self._inline_limit = inline_limit
        self._queues: dict[Hashable, KeyQueue] = {}
        self._closed = False
        # Ids of gets whose caller stopped waiting; such a get returns without popping.
        self._abandoned: set[str] = set()

    def _queue(self, key: Hashable) -> KeyQueue:
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = KeyQueue(self._maxsize)
        return queue

    async def put(
        self, key: Hashable, entry: tuple[str, Any], weight: float, timeout: float | None
    ) -> tuple[str]:
        if self._closed:
            return (Status.CLOSED,)
        queue = self._queue(key)
        outcome = await queue.wait_until(lambda: not queue.full(), lambda: self._closed, timeout)
        if outcome == WaitOutcome.CLOSED:
            return (Status.CLOSED,)
        if outcome == WaitOutcome.TIMEOUT:
            return (Status.FULL,) if timeout is not None and timeout <= 0 else (Status.TIMEOUT,)
        queue.push(entry, weight)
        await queue.notify()
        return (Status.OK,)

    async def get(self, key: Hashable, timeout: float | None, request_id: str) -> tuple[Any, ...]:
        queue = self._queue(key)
        outcome = await queue.wait_until(
            lambda: len(queue) > 0, lambda: self._closed or request_id in self._abandoned, timeout
        )
        if request_id in self._abandoned:
            self._abandoned.discard(request_id)
            return (Status.ABANDONED,)
        if outcome == WaitOutcome.READY:
            entry, weight = queue.pop()
            queue.notify_soon()
            # Same shape as a batch so that the client handles both alike.
            return (Status.OK, [entry], [weight])
        return self._no_item(outcome, timeout)

    async def get_batch(
        self,
        key: Hashable,
        target_weight: float,
        timeout: float | None,
        wait_for_target: bool,
        request_id: str,
    ) -> tuple[Any, ...]:
        queue = self._queue(key)
        if queue.entries and queue.entries[0][1] > target_weight:
            return (Status.OVERSIZED, queue.entries[0][1])

        def ready() -> bool:
            if wait_for_target:
                # A full queue can never reach the target, so waiting longer would deadlock
                # against producers blocked on maxsize.
                return queue.total_weight >= target_weight or queue.full()
            return len(queue) > 0

        outcome = await queue.wait_until(
            ready, lambda: self._closed or request_id in self._abandoned, timeout
        )
        if request_id in self._abandoned:
            self._abandoned.discard(request_id)
            return (Status.ABANDONED,)
        if outcome == WaitOutcome.CLOSED and len(queue) > 0:
            # Closed before the target was reached: hand out what is left rather than strand it.
            outcome = WaitOutcome.READY
        if outcome != WaitOutcome.READY:
            return self._no_item(outcome, timeout)
        if queue.entries[0][1] > target_weight:
            return (Status.OVERSIZED, queue.entries[0][1])
        popped = queue.pop_within(target_weight)
        queue.notify_soon()
        return (Status.OK, [entry for entry, _ in popped], [weight for _, weight in popped])

    async def abandon(self, key: Hashable, request_id: str) -> None:
        """The caller of get ``request_id`` stopped waiting: end it without popping.

        Ray's own task cancellation is not used for this because a cancelled call may
        still have popped its entry, and its reply (the only record of the entry) is lost.
        """
        self._abandoned.add(request_id)
        await self._queue(key).notify()

    async def requeue_front(
        self, key: Hashable, entries: list[tuple[str, Any]], weights: list[float]
    ) -> None:
        """Put back entries whose consumer gave up after they were popped (no loss)."""
        queue = self._queue(key)
        queue.push_front(list(zip(entries, weights, strict=True)))
        await queue.notify()

    def _no_item(self, outcome: str, timeout: float | None) -> tuple[str]:
        if outcome == WaitOutcome.CLOSED:
            return (Status.CLOSED,)
        if timeout is not None and timeout <= 0:
            return (Status.EMPTY,)
        return (Status.TIMEOUT,)

    async def close(self) -> None:
        self._closed = True
        for queue in self._queues.values():
            await queue.notify()

    def qsize(self, key: Hashable) -> int:
        queue = self._queues.get(key)
        return 0 if queue is None else len(queue)

    def weight(self, key: Hashable) -> float:
        queue = self._queues.get(key)
        return 0.0 if queue is None else queue.total_weight

    def describe(self) -> dict[str, Any]:
        return {
            "name": self._name,
            "maxsize": self._maxsize,
            "inline_limit": self._inline_limit,
            "closed": self._closed,
            "sizes": {key: len(queue) for key, queue in self._queues.items() if len(queue)},
        }
