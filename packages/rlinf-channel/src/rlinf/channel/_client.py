"""Calls from a channel handle to its hosting actor: waiting, salvaging abandoned gets,
acknowledging received ones, and turning replies into items or errors."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, ObjectLostError, OwnerDiedError, RayActorError

from rlinf.channel._errors import ChannelError
from rlinf.channel._identity import ConsumerIdentity, identity_for
from rlinf.channel._payload import unpack_all, unpack_all_async
from rlinf.channel._replies import died_error, lost_error, raise_for_status

__all__ = ["ActorClient", "Salvage"]

Salvage = tuple[Hashable, str, str]
"""What a get needs to hand its items back or acknowledge them: key, request id, consumer."""

# The actor enforces every timeout itself; the client waits this much longer before it
# declares the actor unresponsive, so that a slow reply is never mistaken for a lost one.
_REPLY_GRACE_S = 30.0


class ActorClient:
    """Base of :class:`~rlinf.channel.Channel`: the plumbing of one call to the actor.

    Subclasses set ``_name`` (the channel's name, for messages) and ``_actor`` (the handle).
    """

    _name: str
    _actor: ray.actor.ActorHandle

    def _call(
        self,
        ref: ray.ObjectRef,
        timeout: float | None,
        salvage: Salvage | None = None,
    ) -> Any:
        try:
            return ray.get(ref, timeout=None if timeout is None else timeout + _REPLY_GRACE_S)
        except RayActorError as err:
            raise died_error(self._name, err) from err
        except GetTimeoutError as err:
            if salvage is not None:
                self._salvage(*salvage)
            raise ChannelError(
                f"Channel {self._name!r} did not answer within {timeout}+{_REPLY_GRACE_S} s"
            ) from err
        except BaseException:
            if salvage is not None:
                self._salvage(*salvage)
            raise

    async def _call_async(
        self,
        ref: ray.ObjectRef,
        timeout: float | None,
        salvage: Salvage | None = None,
    ) -> Any:
        limit = None if timeout is None else timeout + _REPLY_GRACE_S
        try:
            return await asyncio.wait_for(asyncio.shield(ref), limit)
        except RayActorError as err:
            raise died_error(self._name, err) from err
        except (TimeoutError, asyncio.CancelledError):
            if salvage is not None:
                self._salvage(*salvage)
            raise

    def _consumer(self) -> ConsumerIdentity:
        """This process as a consumer of the channel, attached on first use."""
        identity = identity_for(self._actor)
        if not identity.ready:
            self._call(identity.attached, None)
            identity.ready = True
        return identity

    async def _consumer_async(self) -> ConsumerIdentity:
        identity = identity_for(self._actor)
        if not identity.ready:
            await self._call_async(identity.attached, None)
            identity.ready = True
        return identity

    def _salvage(self, key: Hashable, request_id: str, consumer: str) -> None:
        """Hand back whatever a get popped for a caller that stopped waiting.

        The actor ends the get without popping if it is still waiting; if it had already
        popped, the delivery is unacknowledged and goes back to the front of the key.
        """
        self._actor.abandon.remote(key, request_id, consumer)

    def _fetch(
        self, reply: tuple[Any, ...], key: Hashable, timeout: float | None, salvage: Salvage
    ) -> list:
        raise_for_status(self._name, reply, key, timeout)
        try:
            items = unpack_all(reply[1])
        except (OwnerDiedError, ObjectLostError) as err:
            self._ack(salvage)  # the payload is gone for every consumer: do not requeue it
            raise lost_error(self._name, key, err) from err
        except BaseException:
            self._salvage(*salvage)
            raise
        self._ack(salvage)
        return items

    async def _fetch_async(
        self, reply: tuple[Any, ...], key: Hashable, timeout: float | None, salvage: Salvage
    ) -> list:
        raise_for_status(self._name, reply, key, timeout)
        try:
            items = await unpack_all_async(reply[1])
        except (OwnerDiedError, ObjectLostError) as err:
            self._ack(salvage)
            raise lost_error(self._name, key, err) from err
        except BaseException:
            self._salvage(*salvage)
            raise
        self._ack(salvage)
        return items

    def _ack(self, salvage: Salvage) -> None:
        """Acknowledge a received delivery with the next get (or soon after, alone), so
        that a get stays one call."""
        identity_for(self._actor).add_ack(salvage[1])
