"""The hosting actor's record of consumers: what each waits for and what it was handed.

Acknowledged delivery works like this. Every consuming process attaches once per channel
with a *liveness token*: the reference to the reply of a ``watch`` call that the actor
never answers. The consumer owns that reference, so when its process dies Ray fails the
actor's wait on it with ``OwnerDiedError``, usually within seconds. Meanwhile each get
names its consumer; the entries it pops stay here, keyed by the get's request id, until the
consumer acknowledges that it received them. When a consumer is found dead its pending
gets end without popping, and every entry it was handed but never acknowledged goes back
to the front of its key. A slow consumer that is alive keeps what it was handed: there is
no lease to expire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Consumers", "Delivery"]


@dataclass(frozen=True)
class Delivery:
    """Entries handed to a consumer and not yet acknowledged.

    Attributes:
        key: the key they were popped from.
        entries: the popped entries, front of the queue first.
        weights: their weights, aligned with ``entries``.
    """

    key: Hashable
    entries: list[Any]
    weights: list[float]


@dataclass
class _Consumer:
    # request id -> key of each get still waiting in the actor
    pending: dict[str, Hashable] = field(default_factory=dict)
    # request id -> delivery, in the order they were handed out
    handed: dict[str, Delivery] = field(default_factory=dict)


class Consumers:
    """Consumers of one channel, by the id each attached with."""

    def __init__(self) -> None:
        self._live: dict[str, _Consumer] = {}
        self._dead: set[str] = set()
        # key -> unacknowledged deliveries from it, over all consumers
        self._unacked: dict[Hashable, int] = {}
        # Futures that keep each consumer's ``watch`` call (its liveness token) unanswered.
        self._tokens: dict[str, asyncio.Future] = {}

    def token(self, consumer: str) -> asyncio.Future:
        """The future that the consumer's ``watch`` call waits on, until it is found dead."""
        future = self._tokens.get(consumer)
        if future is None:
            future = self._tokens[consumer] = asyncio.get_running_loop().create_future()
        return future

    def attach(self, consumer: str) -> None:
        if consumer not in self._dead:
            self._live.setdefault(consumer, _Consumer())

    def is_dead(self, consumer: str | None) -> bool:
        return consumer is not None and consumer in self._dead

    def begin(self, consumer: str | None, request_id: str, key: Hashable) -> None:
        """A get of ``consumer`` starts waiting."""
        state = self._live.get(consumer) if consumer is not None else None
        if state is not None:
            state.pending[request_id] = key

    def end(self, consumer: str | None, request_id: str) -> None:
        """A get of ``consumer`` stopped waiting, whatever its outcome."""
        state = self._live.get(consumer) if consumer is not None else None
        if state is not None:
            state.pending.pop(request_id, None)

    def hand(self, consumer: str | None, request_id: str, delivery: Delivery) -> None:
        """Keep ``delivery`` until ``consumer`` acknowledges it (untracked gets are final)."""
        state = self._live.get(consumer) if consumer is not None else None
        if state is not None:
            state.handed[request_id] = delivery
            self._unacked[delivery.key] = self._unacked.get(delivery.key, 0) + 1

    def ack(self, consumer: str | None, request_id: str) -> Hashable | None:
        """Forget an acknowledged delivery; return its key (``None`` if it was not kept)."""
        delivery = self.take_back(consumer, request_id)
        return None if delivery is None else delivery.key

    def take_back(self, consumer: str | None, request_id: str) -> Delivery | None:
        """Remove and return an unacknowledged delivery (acknowledged, or given up on)."""
        state = self._live.get(consumer) if consumer is not None else None
        delivery = None if state is None else state.handed.pop(request_id, None)
        if delivery is not None:
            self._forget(delivery)
        return delivery

    def unacked_on(self, key: Hashable) -> int:
        """Deliveries from ``key`` that may still come back to it."""
        return self._unacked.get(key, 0)

    def _forget(self, delivery: Delivery) -> None:
        left = self._unacked[delivery.key] - 1
        if left:
            self._unacked[delivery.key] = left
        else:
            del self._unacked[delivery.key]

    def died(self, consumer: str) -> tuple[dict[str, Hashable], list[Delivery]]:
        """Forget a dead consumer; return its waiting gets and its unacknowledged deliveries."""
        self._dead.add(consumer)
        token = self._tokens.pop(consumer, None)
        if token is not None and not token.done():
            token.set_result(None)  # frees the concurrency slot its watch call held
        state = self._live.pop(consumer, None)
        if state is None:
            return {}, []
        for delivery in state.handed.values():
            self._forget(delivery)
        return state.pending, list(state.handed.values())

    def counts(self) -> tuple[int, int]:
        """``(live consumers, unacknowledged deliveries)``."""
        return len(self._live), sum(len(state.handed) for state in self._live.values())
