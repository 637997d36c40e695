"""A cluster-wide lock over devices, so collocated processes take turns on them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import ray

from ._device_lock_errors import DeviceLockTimeout
from ._grants import DeviceGrants
from ._lock_turn import TurnTaking

__all__ = ["DeviceLock", "DeviceLockTimeout"]


@ray.remote(num_cpus=0)
class _DeviceLockServer:
    """Grants sets of devices atomically (:class:`DeviceGrants`) to the processes of one
    placement."""

    def __init__(self) -> None:
        self._grants = DeviceGrants()
        self._cond = asyncio.Condition()

    async def acquire(self, devices: list[int], holder: str, timeout: float | None) -> dict:
        want = frozenset(devices)
        mine = self._grants.already_held(want, holder)
        if mine:
            return {"ok": False, "error": f"{holder} already holds device(s) {mine}"}
        async with self._cond:
            ticket = self._grants.enqueue(want)
            try:
                await asyncio.wait_for(
                    self._cond.wait_for(lambda: self._grants.grantable(ticket, want)), timeout
                )
            except TimeoutError:
                held = self._grants.held_by_others(want)
                return {"ok": False, "error": f"timed out after {timeout} s; held: {held}"}
            finally:
                self._grants.dequeue(ticket)
                self._cond.notify_all()
            self._grants.grant(want, holder)
        return {"ok": True}

    async def release(self, devices: list[int], holder: str) -> None:
        async with self._cond:
            self._grants.release(devices, holder)
            self._cond.notify_all()

    async def release_all(self, holder: str) -> list[int]:
        async with self._cond:
            freed = self._grants.release_all(holder)
            self._cond.notify_all()
        return freed

    def holders(self) -> dict[int, str]:
        return self._grants.holders()


class DeviceLock(TurnTaking):
    """Client of a named lock server shared by every process of one placement.

    The driver calls ``DeviceLock.create(name)`` (the server lives as long as the driver);
    processes call ``DeviceLock(name)`` and ``with lock.turn(devices, holder, worker): ...``.
    """

    def __init__(self, name: str, namespace: str | None = None):
        self.name = name
        self._namespace = namespace
        self._server: ray.actor.ActorHandle | None = None

    @classmethod
    def create(cls, name: str, namespace: str | None = None) -> DeviceLock:
        """Start the lock server (or reuse one of that name) and return a client."""
        lock = cls(name, namespace)
        lock._server = _DeviceLockServer.options(
            name=name, namespace=namespace, get_if_exists=True
        ).remote()
        return lock

    @property
    def server(self) -> ray.actor.ActorHandle:
        """Handle of the lock server (looked up by name on first use)."""
        if self._server is None:
            self._server = ray.get_actor(self.name, namespace=self._namespace)
        return self._server

    def acquire(self, devices: Sequence[int], holder: str, timeout: float | None = None) -> None:
        """Block until every device in ``devices`` is granted to ``holder``."""
        reply = ray.get(self.server.acquire.remote(list(devices), holder, timeout))
        if not reply["ok"]:
            raise DeviceLockTimeout(
                f"{holder} could not lock devices {list(devices)}: {reply['error']}"
            )

    def release(self, devices: Sequence[int], holder: str) -> None:
        """Give ``devices`` back (no-op for devices ``holder`` does not hold)."""
        ray.get(self.server.release.remote(list(devices), holder))

    def release_all(self, holder: str) -> list[int]:
        """Free everything ``holder`` holds (used when a process died); returns the devices."""
        return ray.get(self.server.release_all.remote(holder))

    def holders(self) -> dict[int, str]:
        """Device -> current holder."""
        return ray.get(self.server.holders.remote())
