"""Calls from a channel handle to its hosting actor: waiting, salvaging abandoned gets, and
turning replies into items or errors."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, ObjectLostError, OwnerDiedError, RayActorError

from rlinf.channel._actor import Status
from rlinf.channel._errors import ChannelError
from rlinf.channel._payload import unpack_all, unpack_all_async
from rlinf.channel._replies import died_error, lost_error, raise_for_status

__all__ = ["ActorClient"]

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
        salvage: tuple[Hashable, str] | None = None,
    ) -> Any:
        try:
            return ray.get(ref, timeout=None if timeout is None else timeout + _REPLY_GRACE_S)
        except RayActorError as err:
            raise died_error(self._name, err) from err
        except GetTimeoutError as err:
            if salvage is not None:
                self._salvage(ref, *salvage)
            raise ChannelError(
                f"Channel {self._name!r} did not answer within {timeout}+{_REPLY_GRACE_S} s"
            ) from err
        except BaseException:
            if salvage is not None:
                self._salvage(ref, *salvage)
            raise

    async def _call_async(
        self,
        ref: ray.ObjectRef,
        timeout: float | None,
        salvage: tuple[Hashable, str] | None = None,
    ) -> Any:
        limit = None if timeout is None else timeout + _REPLY_GRACE_S
        try:
            return await asyncio.wait_for(asyncio.shield(ref), limit)
        except RayActorError as err:
            raise died_error(self._name, err) from err
        except (TimeoutError, asyncio.CancelledError):
            if salvage is not None:
                self._salvage(ref, *salvage)
            raise

    def _salvage(self, ref: ray.ObjectRef, key: Hashable, request_id: str) -> None:
        """Return to the queue whatever a get popped for a caller that stopped waiting.

        The actor ends the get without popping if it is still waiting; if it had already
        popped, its reply comes back here and the entries go back to the front of the key.
        """
        actor = self._actor
        actor.abandon.remote(key, request_id)

        def requeue(future: Any) -> None:
            try:
                reply = future.result()
            except (RayActorError, asyncio.CancelledError):
                return
            if reply[0] == Status.OK and reply[1]:
                actor.requeue_front.remote(key, reply[1], reply[2])

        ref.future().add_done_callback(requeue)

    def _fetch(self, reply: tuple[Any, ...], key: Hashable, timeout: float | None) -> list:
        raise_for_status(self._name, reply, key, timeout)
        try:
            return unpack_all(reply[1])
        except (OwnerDiedError, ObjectLostError) as err:
            raise lost_error(self._name, key, err) from err

    async def _fetch_async(
        self, reply: tuple[Any, ...], key: Hashable, timeout: float | None
    ) -> list:
        raise_for_status(self._name, reply, key, timeout)
        try:
            return await unpack_all_async(reply[1])
        except (OwnerDiedError, ObjectLostError) as err:
            raise lost_error(self._name, key, err) from err
