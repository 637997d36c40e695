"""The Ray actor that hosts one channel: keyed queues of entries and their weights.

Entries come from :mod:`rlinf.channel._payload`: large payloads arrive as object references
that the actor stores and hands back unresolved, so it never holds or copies them.

Methods answer with a small status tuple instead of raising, so that the client can turn
each outcome into the right exception without Ray's remote-traceback machinery on the hot
path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable, Sequence
from typing import Any

import ray

from rlinf.channel._deliveries import Consumers, Delivery
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

    Gets that name a ``consumer`` (every get made through :class:`~rlinf.channel.Channel`)
    are acknowledged deliveries, see :mod:`rlinf.channel._deliveries`.

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
        self._consumers = Consumers()
        self._watchers: set[asyncio.Task] = set()

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
        queue.notify()
        return (Status.OK,)

    async def get(
        self,
        key: Hashable,
        timeout: float | None,
        request_id: str,
        consumer: str | None = None,
        acks: Sequence[str] = (),
    ) -> tuple[Any, ...]:
        """Pop one entry; ``acks`` acknowledges the consumer's earlier deliveries."""
        self._ack(consumer, acks)
        return await self._take(key, timeout, request_id, consumer, None, False)

    async def get_batch(
        self,
        key: Hashable,
        target_weight: float,
        timeout: float | None,
        wait_for_target: bool,
        request_id: str,
        consumer: str | None = None,
        acks: Sequence[str] = (),
    ) -> tuple[Any, ...]:
        """Pop entries up to ``target_weight``; ``acks`` as for :meth:`get`."""
        self._ack(consumer, acks)
        return await self._take(key, timeout, request_id, consumer, target_weight, wait_for_target)

    async def _take(
        self,
        key: Hashable,
        timeout: float | None,
        request_id: str,
        consumer: str | None,
        target_weight: float | None,
        wait_for_target: bool,
    ) -> tuple[Any, ...]:
        """Pop one entry (``target_weight`` None) or a batch, and hand it to ``consumer``."""
        if self._consumers.is_dead(consumer):
            return (Status.ABANDONED,)
        queue = self._queue(key)
        if target_weight is not None and queue.entries and queue.entries[0][1] > target_weight:
            return (Status.OVERSIZED, queue.entries[0][1])

        def ready() -> bool:
            if wait_for_target:
                # A full queue can never reach the target, so waiting longer would deadlock
                # against producers blocked on maxsize.
                return queue.total_weight >= target_weight or queue.full()
            return len(queue) > 0

        def closed() -> bool:
            # After close a key is drained only once nothing handed out from it can come back
            # (acknowledgements arrive within a round trip; a dead consumer's items once its
            # death is noticed), or a requeued item would be stranded.
            drained = self._closed and not self._consumers.unacked_on(key)
            return drained or request_id in self._abandoned

        self._consumers.begin(consumer, request_id, key)
        try:
            outcome = await queue.wait_until(ready, closed, timeout)
        finally:
            self._consumers.end(consumer, request_id)
        if request_id in self._abandoned:
            self._abandoned.discard(request_id)
            return (Status.ABANDONED,)
        if outcome == WaitOutcome.CLOSED and len(queue) > 0 and target_weight is not None:
            # Closed before the target was reached: hand out what is left rather than strand it.
            outcome = WaitOutcome.READY
        if outcome != WaitOutcome.READY:
            return self._no_item(outcome, timeout)
        if target_weight is None:
            popped = [queue.pop()]
        elif queue.entries[0][1] > target_weight:
            return (Status.OVERSIZED, queue.entries[0][1])
        else:
            popped = queue.pop_within(target_weight)
        queue.notify()
        delivery = Delivery(key, [entry for entry, _ in popped], [w for _, w in popped])
        # No await from the pop to the return: the delivery is recorded before anything else
        # runs, so a consumer found dead meanwhile gets it requeued.
        self._consumers.hand(consumer, request_id, delivery)
        return (Status.OK, delivery.entries, delivery.weights)

    async def ack(self, consumer: str, request_ids: Sequence[str]) -> None:
        """``consumer`` received the entries of gets ``request_ids``: they are its now."""
        self._ack(consumer, request_ids)

    def _ack(self, consumer: str | None, request_ids: Sequence[str]) -> None:
        for request_id in request_ids:
            key = self._consumers.ack(consumer, request_id)
            if key is not None and self._closed and not self._consumers.unacked_on(key):
                self._queue(key).notify()  # gets waiting for the key to drain can end now

    async def abandon(self, key: Hashable, request_id: str, consumer: str | None = None) -> None:
        """The caller of get ``request_id`` stopped waiting: end it, or requeue what it popped.

        Ray's own task cancellation is not used for this because a cancelled call may
        still have popped its entry, and its reply (the only record of the entry) is lost.
        """
        delivery = self._consumers.take_back(consumer, request_id)
        if delivery is not None:
            self._requeue([delivery])
            return
        self._abandoned.add(request_id)
        self._queue(key).notify()

    async def watch(self, consumer: str) -> None:
        """Never answered while ``consumer`` lives: its reply is the consumer's liveness token.

        The consumer owns the reference to this reply, so Ray fails :meth:`attach`'s wait on
        it once the consumer's process is gone.
        """
        if not self._consumers.is_dead(consumer):
            await self._consumers.token(consumer)

    async def attach(self, consumer: str, token: list[ray.ObjectRef]) -> None:
        """Start tracking ``consumer``; ``token`` wraps its :meth:`watch` reference (a list,
        so that Ray passes the reference itself instead of waiting for its value)."""
        self._consumers.attach(consumer)
        task = asyncio.get_running_loop().create_task(self._outlive(consumer, token[0]))
        self._watchers.add(task)  # the loop keeps only a weak reference to tasks
        task.add_done_callback(self._watchers.discard)

    async def _outlive(self, consumer: str, token: ray.ObjectRef) -> None:
        # OwnerDiedError once the consumer's process is gone; any other failure of the
        # token means the same, and it is never answered while the consumer lives.
        with contextlib.suppress(Exception):
            await token
        pending, deliveries = self._consumers.died(consumer)
        for request_id, key in pending.items():
            self._abandoned.add(request_id)
            self._queue(key).notify()
        self._requeue(deliveries)

    def _requeue(self, deliveries: list[Delivery]) -> None:
        """Put entries handed out but never received back at the front of their keys."""
        for delivery in reversed(deliveries):  # the earliest delivery ends up in front
            queue = self._queue(delivery.key)
            queue.push_front(list(zip(delivery.entries, delivery.weights, strict=True)))
            queue.notify()

    def _no_item(self, outcome: str, timeout: float | None) -> tuple[str]:
        if outcome == WaitOutcome.CLOSED:
            return (Status.CLOSED,)
        if timeout is not None and timeout <= 0:
            return (Status.EMPTY,)
        return (Status.TIMEOUT,)

    async def close(self) -> None:
        self._closed = True
        for queue in self._queues.values():
            queue.notify()

    def qsize(self, key: Hashable) -> int:
        queue = self._queues.get(key)
        return 0 if queue is None else len(queue)

    def weight(self, key: Hashable) -> float:
        queue = self._queues.get(key)
        return 0.0 if queue is None else queue.total_weight

    def describe(self) -> dict[str, Any]:
        consumers, unacked = self._consumers.counts()
        return {
            "name": self._name,
            "maxsize": self._maxsize,
            "inline_limit": self._inline_limit,
            "closed": self._closed,
            "sizes": {key: len(queue) for key, queue in self._queues.items() if len(queue)},
            "consumers": consumers,
            "unacked": unacked,
        }
