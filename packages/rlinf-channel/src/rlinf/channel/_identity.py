"""A process's identity as a consumer of a channel, and its pending acknowledgements.

Every handle to the same channel in one process shares one identity: the hosting actor
tracks consumers by process, because a process is what dies. The identity holds the
liveness token (see :mod:`rlinf.channel._deliveries`), which must stay referenced here for
as long as the process lives: Ray reports its owner's death only while it is borrowed.

Acknowledgements ride on the process's next get to the same channel, so a consumer that
keeps getting pays no extra call for them; a background thread sends those left waiting
longer than :data:`ACK_DELAY_S` (a consumer that stopped getting) in one call.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from dataclasses import dataclass, field

import ray

__all__ = ["ACK_DELAY_S", "ConsumerIdentity", "identity_for"]

ACK_DELAY_S = 0.05
"""Longest time an acknowledgement waits for a get to carry it before it is sent alone."""


@dataclass
class ConsumerIdentity:
    """This process as a consumer of one channel actor.

    Attributes:
        consumer: the id the actor knows this process by.
        actor: the channel's actor, for acknowledgements sent alone.
        token: the reference to the actor's never-answered ``watch`` call; owned here.
        attached: the reply of the ``attach`` call that hands the token to the actor; a get
            waits for it once, so that the actor tracks the process before its first get.
        ready: ``attached`` was received.
        acks: request ids of received deliveries not yet acknowledged to the actor.
        since: ``time.monotonic()`` when the oldest of ``acks`` was added.
    """

    consumer: str
    actor: ray.actor.ActorHandle
    token: ray.ObjectRef
    attached: ray.ObjectRef
    ready: bool = False
    acks: list[str] = field(default_factory=list)
    since: float = 0.0

    def add_ack(self, request_id: str) -> None:
        """Record a received delivery; the next get or the flusher acknowledges it."""
        with _lock:
            if not self.acks:
                self.since = time.monotonic()
            self.acks.append(request_id)
        _start_flusher()

    def take_acks(self) -> list[str]:
        """Remove and return the pending acknowledgements (for a get to carry)."""
        if not self.acks:  # unlocked peek: the common case of a get right after a get
            return []
        with _lock:
            acks, self.acks = self.acks, []
        return acks


_lock = threading.Lock()
_identities: dict[str, ConsumerIdentity] = {}
_flusher: threading.Thread | None = None


def identity_for(actor: ray.actor.ActorHandle) -> ConsumerIdentity:
    """Return this process's identity for ``actor``, sending the attach call the first time.

    The caller waits for ``attached`` (synchronously or not) before its first get.
    """
    actor_id = actor._actor_id.hex()
    identity = _identities.get(actor_id)
    if identity is not None:
        return identity
    with _lock:
        identity = _identities.get(actor_id)
        if identity is None:
            consumer = uuid.uuid4().hex
            token = actor.watch.remote(consumer)
            attached = actor.attach.remote(consumer, [token])
            identity = ConsumerIdentity(consumer, actor, token, attached)
            _identities[actor_id] = identity
        return identity


def _start_flusher() -> None:
    global _flusher
    if _flusher is not None:
        return
    with _lock:
        if _flusher is None:
            _flusher = threading.Thread(
                target=_flush_forever, name="rlinf-channel-acks", daemon=True
            )
            _flusher.start()


def _flush_forever() -> None:
    while True:
        time.sleep(ACK_DELAY_S)
        now = time.monotonic()
        for identity in list(_identities.values()):
            if identity.acks and now - identity.since >= ACK_DELAY_S:
                acks = identity.take_acks()
                # Calling an actor after ray.shutdown() would start a new cluster (Ray's
                # auto-init); with Ray down or the actor gone nothing is left to tell.
                if ray.is_initialized():
                    with contextlib.suppress(Exception):
                        identity.actor.ack.remote(identity.consumer, acks)
