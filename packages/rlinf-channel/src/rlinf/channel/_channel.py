"""The client side of a channel: a small picklable handle around the hosting actor."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Hashable
from typing import Any

import ray

from rlinf.channel._actor import ChannelActor
from rlinf.channel._client import ActorClient, Salvage
from rlinf.channel._errors import (
    ChannelExists,
    ChannelNotFound,
)
from rlinf.channel._identity import ConsumerIdentity
from rlinf.channel._payload import INLINE_LIMIT_BYTES, pack
from rlinf.channel._replies import (
    check_target,
    check_timeout,
    check_weight,
    raise_for_status,
)

__all__ = ["DEFAULT_KEY", "Channel"]

DEFAULT_KEY: Hashable = "default"
"""The key used when a call names none."""

# Enough concurrent calls for thousands of blocked producers and consumers on one channel.
_MAX_CONCURRENCY = 4096


@functools.cache
def _remote_actor_class() -> Any:
    return ray.remote(ChannelActor)


class Channel(ActorClient):
    """A named set of FIFO queues, one per key, shared by every process of a Ray cluster.

    Items travel producer -> Ray object store -> consumer; the hosting actor stores only
    object references and weights. A ``Channel`` pickles to a few bytes, so it can be passed
    to any actor or task, which can also reach it by name with :meth:`connect`.

    Ordering and delivery: each key is FIFO in the order the actor received the puts (so one
    producer's items keep their order); keys are independent. Delivery is acknowledged and
    at-least-once: the actor keeps each item it hands out until the consumer's process
    acknowledges it (right after receiving it, without a second round trip). A get whose
    caller gives up (async cancellation, interrupt) after the actor popped the item, or whose
    process dies before receiving it, puts it back at the front of its key; a dead process's
    blocked gets end without taking anything. Consumers that stay alive never receive the
    same item twice.

    Closing: :meth:`close` wakes every blocked call. Blocked and later puts raise
    :class:`ChannelClosed`; gets keep returning what is queued until the key is drained, and
    only then raise :class:`ChannelClosed`.

    Example:
        >>> import ray
        >>> from rlinf.channel import Channel
        >>> _ = ray.init(num_cpus=1, include_dashboard=False)  # doctest: +SKIP
        >>> ch = Channel.create("rollouts", maxsize=64)  # doctest: +SKIP
        >>> ch.put({"obs": [1, 2]}, key="env-0", weight=2)  # doctest: +SKIP
        >>> ch.get(key="env-0", timeout=1.0)  # doctest: +SKIP
        {'obs': [1, 2]}
    """

    def __init__(
        self,
        name: str,
        namespace: str | None,
        actor: ray.actor.ActorHandle,
        inline_limit: int = INLINE_LIMIT_BYTES,
    ) -> None:
        self._name = name
        self._namespace = namespace
        self._actor = actor
        self._inline_limit = inline_limit

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def create(
        cls,
        name: str,
        *,
        maxsize: int = 0,
        namespace: str | None = None,
        detached: bool = False,
        inline_limit: int = INLINE_LIMIT_BYTES,
    ) -> Channel:
        """Start the actor hosting a new channel and return a handle to it.

        Args:
            name: unique within ``namespace``; other processes :meth:`connect` with it.
            maxsize: most items queued per key; a put on a full key blocks (back-pressure).
                ``0`` means unbounded.
            namespace: Ray namespace of the actor; ``None`` uses the current one.
            detached: keep the channel alive after the creating process exits; it then
                lives until :meth:`kill` or the cluster stops.
            inline_limit: items estimated below this many bytes travel by value inside the
                call (cheaper for small items); larger ones, and anything whose size is
                unknown (tensors, arbitrary objects), go through the object store. ``0``
                sends every payload through the store.

        Raises:
            ChannelExists: a channel of that name is already running.
            ValueError: ``maxsize`` is negative or ``name`` is empty.
        """
        if not name:
            raise ValueError("Channel name must be a non-empty string")
        if maxsize < 0:
            raise ValueError(f"Channel {name!r}: maxsize must be >= 0, got {maxsize}")
        if inline_limit < 0:
            raise ValueError(f"Channel {name!r}: inline_limit must be >= 0, got {inline_limit}")
        options: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "num_cpus": 0,
            "max_concurrency": _MAX_CONCURRENCY,
            "max_restarts": 0,
        }
        if detached:
            options["lifetime"] = "detached"
        try:
            actor = _remote_actor_class().options(**options).remote(name, maxsize, inline_limit)
        except ValueError as err:
            if "already" in str(err):
                raise ChannelExists(f"A channel named {name!r} already exists") from err
            raise
        channel = cls(name, namespace, actor, inline_limit)
        # Fail here, not at the first put, if the actor cannot start.
        channel._call(actor.qsize.remote(DEFAULT_KEY), None)
        return channel

    @classmethod
    def connect(cls, name: str, *, namespace: str | None = None) -> Channel:
        """Return a handle to an existing channel.

        Raises:
            ChannelNotFound: no channel of that name runs in ``namespace``.
        """
        try:
            actor = ray.get_actor(name, namespace=namespace)
        except ValueError as err:
            raise ChannelNotFound(
                f"No channel named {name!r} in namespace {namespace or '<current>'!r}"
            ) from err
        probe = cls(name, namespace, actor)
        return cls(name, namespace, actor, probe.describe()["inline_limit"])

    def close(self) -> None:
        """Refuse further puts and wake every blocked call (see the class docstring)."""
        self._call(self._actor.close.remote(), None)

    def kill(self) -> None:
        """Stop the hosting actor at once; queued items are discarded."""
        ray.kill(self._actor, no_restart=True)

    @property
    def name(self) -> str:
        return self._name

    def __reduce__(self) -> tuple[Any, ...]:
        return (Channel, (self._name, self._namespace, self._actor, self._inline_limit))

    def __repr__(self) -> str:
        return f"Channel({self._name!r})"

    # ------------------------------------------------------------------ put

    def put(
        self,
        item: Any,
        *,
        key: Hashable = DEFAULT_KEY,
        weight: float = 1.0,
        timeout: float | None = None,
    ) -> None:
        """Queue ``item`` under ``key``, blocking while the key holds ``maxsize`` items.

        Args:
            item: any object Ray can serialize; numpy arrays come back zero-copy.
            key: the queue to use; keys are independent FIFOs.
            weight: the item's share of a :meth:`get_batch` target (e.g. its sample count).
            timeout: seconds to wait for room; ``None`` waits indefinitely.

        Raises:
            ChannelTimeout: no room within ``timeout``; the item was not queued.
            ChannelClosed: the channel is closed.
        """
        check_weight(self._name, weight)
        check_timeout(self._name, timeout)
        reply = self._call(self._put_remote(item, key, weight, timeout), timeout)
        raise_for_status(self._name, reply, key, timeout)

    def put_nowait(self, item: Any, *, key: Hashable = DEFAULT_KEY, weight: float = 1.0) -> None:
        """Like :meth:`put`, but raise :class:`ChannelFull` instead of waiting for room."""
        check_weight(self._name, weight)
        reply = self._call(self._put_remote(item, key, weight, 0.0), 0.0)
        raise_for_status(self._name, reply, key, 0.0)

    async def put_async(
        self,
        item: Any,
        *,
        key: Hashable = DEFAULT_KEY,
        weight: float = 1.0,
        timeout: float | None = None,
    ) -> None:
        """Awaitable :meth:`put` for code running in an event loop."""
        check_weight(self._name, weight)
        check_timeout(self._name, timeout)
        reply = await self._call_async(self._put_remote(item, key, weight, timeout), timeout)
        raise_for_status(self._name, reply, key, timeout)

    def _put_remote(
        self, item: Any, key: Hashable, weight: float, timeout: float | None
    ) -> ray.ObjectRef:
        return self._actor.put.remote(key, pack(item, self._inline_limit), float(weight), timeout)

    # ------------------------------------------------------------------ get

    def get(self, *, key: Hashable = DEFAULT_KEY, timeout: float | None = None) -> Any:
        """Remove and return the oldest item under ``key``, waiting for one if needed.

        Raises:
            ChannelTimeout: nothing arrived within ``timeout``.
            ChannelClosed: the channel is closed and ``key`` is drained.
            ChannelItemLost: the producer of the item died before it could be fetched.
        """
        check_timeout(self._name, timeout)
        ref, salvage = self._get_remote(key, timeout, self._consumer())
        return self._fetch(self._call(ref, timeout, salvage), key, timeout, salvage)[0]

    def get_nowait(self, *, key: Hashable = DEFAULT_KEY) -> Any:
        """Like :meth:`get`, but raise :class:`ChannelEmpty` instead of waiting."""
        ref, salvage = self._get_remote(key, 0.0, self._consumer())
        return self._fetch(self._call(ref, 0.0, salvage), key, 0.0, salvage)[0]

    async def get_async(self, *, key: Hashable = DEFAULT_KEY, timeout: float | None = None) -> Any:
        """Awaitable :meth:`get`; cancelling it never loses an item."""
        check_timeout(self._name, timeout)
        ref, salvage = self._get_remote(key, timeout, await self._consumer_async())
        reply = await self._call_async(ref, timeout, salvage)
        return (await self._fetch_async(reply, key, timeout, salvage))[0]

    def get_batch(
        self,
        target_weight: float,
        *,
        key: Hashable = DEFAULT_KEY,
        timeout: float | None = None,
    ) -> list[Any]:
        """Wait until ``key`` holds at least ``target_weight``, then pop greedily.

        Items are popped from the front while their summed weight stays within
        ``target_weight`` (FIFO order is kept, so the sum may fall short when the next item
        does not fit). If the key reaches ``maxsize`` items or the channel closes before the
        target is reached, what fits is returned rather than waiting forever.

        Raises:
            ValueError: the item at the front weighs more than ``target_weight`` on its own.
            ChannelTimeout: the target was not reached within ``timeout``; nothing was popped.
            ChannelClosed: the channel is closed and ``key`` is drained.
        """
        check_target(self._name, target_weight)
        check_timeout(self._name, timeout)
        ref, salvage = self._get_batch_remote(key, target_weight, timeout, True, self._consumer())
        return self._fetch(self._call(ref, timeout, salvage), key, timeout, salvage)

    def get_batch_nowait(self, target_weight: float, *, key: Hashable = DEFAULT_KEY) -> list[Any]:
        """Pop greedily what is queued now, up to ``target_weight``; never waits.

        Raises:
            ChannelEmpty: nothing is queued under ``key``.
        """
        check_target(self._name, target_weight)
        ref, salvage = self._get_batch_remote(key, target_weight, 0.0, False, self._consumer())
        return self._fetch(self._call(ref, 0.0, salvage), key, 0.0, salvage)

    async def get_batch_async(
        self,
        target_weight: float,
        *,
        key: Hashable = DEFAULT_KEY,
        timeout: float | None = None,
    ) -> list[Any]:
        """Awaitable :meth:`get_batch`; cancelling it never loses an item."""
        check_target(self._name, target_weight)
        check_timeout(self._name, timeout)
        consumer = await self._consumer_async()
        ref, salvage = self._get_batch_remote(key, target_weight, timeout, True, consumer)
        reply = await self._call_async(ref, timeout, salvage)
        return await self._fetch_async(reply, key, timeout, salvage)

    # ------------------------------------------------------------------ inspection

    def qsize(self, key: Hashable = DEFAULT_KEY) -> int:
        """Number of items queued under ``key``."""
        return self._call(self._actor.qsize.remote(key), None)

    def weight(self, key: Hashable = DEFAULT_KEY) -> float:
        """Summed weight of the items queued under ``key``."""
        return self._call(self._actor.weight.remote(key), None)

    def empty(self, key: Hashable = DEFAULT_KEY) -> bool:
        return self.qsize(key) == 0

    def full(self, key: Hashable = DEFAULT_KEY) -> bool:
        info = self.describe()
        return info["maxsize"] > 0 and info["sizes"].get(key, 0) >= info["maxsize"]

    def describe(self) -> dict[str, Any]:
        """``{"name", "maxsize", "inline_limit", "closed", "sizes", "consumers", "unacked"}``.

        ``sizes`` maps each non-empty key to its item count; ``consumers`` counts the live
        consuming processes; ``unacked`` counts deliveries not yet acknowledged.
        """
        return self._call(self._actor.describe.remote(), None)

    # ------------------------------------------------------------------ internals

    def _get_remote(
        self, key: Hashable, timeout: float | None, consumer: ConsumerIdentity
    ) -> tuple[ray.ObjectRef, Salvage]:
        request_id = uuid.uuid4().hex
        acks = consumer.take_acks()
        ref = self._actor.get.remote(key, timeout, request_id, consumer.consumer, acks)
        return ref, (key, request_id, consumer.consumer)

    def _get_batch_remote(
        self,
        key: Hashable,
        target_weight: float,
        timeout: float | None,
        wait: bool,
        consumer: ConsumerIdentity,
    ) -> tuple[ray.ObjectRef, Salvage]:
        request_id = uuid.uuid4().hex
        acks = consumer.take_acks()
        ref = self._actor.get_batch.remote(
            key, float(target_weight), timeout, wait, request_id, consumer.consumer, acks
        )
        return ref, (key, request_id, consumer.consumer)
