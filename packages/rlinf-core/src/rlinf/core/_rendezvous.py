"""The rendezvous point for on-demand communicators: a TCPStore hosted by a named actor."""

from __future__ import annotations

import sys
from typing import Any

import ray

__all__ = ["RENDEZVOUS_NAME", "ensure_rendezvous", "rendezvous_address"]

RENDEZVOUS_NAME = "rlinf-p2p-rendezvous"


@ray.remote(num_cpus=0)
class _Rendezvous:
    """Hosts one TCPStore that every worker joins as a client.

    Each communicator (a pair or a broadcast set) uses its own key prefix in the store, so
    any two workers can build a process group at any time, without a global world and
    without both having been set up together beforehand.

    The store (and torch, which it needs: seconds of CPU) is created on the first
    :meth:`address` call, i.e. when some worker first communicates: a flow that never
    sends, receives or sets up a process group (a single-rank flow whose payloads go
    through the object store) pays only for an idle process while its workers start.
    """

    def __init__(self) -> None:
        self._ip = ray.util.get_node_ip_address()
        self._store: Any = None

    def address(self) -> tuple[str, int]:
        if self._store is None:
            # Calls run one at a time (max_concurrency 1): no second store can be made.
            import torch.distributed as dist

            self._store = dist.TCPStore(self._ip, 0, is_master=True, wait_for_workers=False)
        return self._ip, self._store.port

    def state(self) -> dict[str, bool]:
        """Whether the store exists and whether this process imported torch (tests)."""
        return {"store": self._store is not None, "torch": "torch" in sys.modules}


# namespace -> the handle this process holds. Ray destroys an actor once its creator drops
# the last handle, so holding it here keeps the store for the whole Ray session: a flow shut
# down before another no longer takes the second one's rendezvous with it. (Stale keys of dead
# groups cannot mislead a later group of the same name: store prefixes include actor ids.)
_HELD: dict[str | None, ray.actor.ActorHandle] = {}


def ensure_rendezvous(namespace: str | None = None) -> ray.actor.ActorHandle:
    """Start the rendezvous actor if absent (owned by the caller, normally the driver) and
    hold it in this process for the rest of the Ray session."""
    handle = _Rendezvous.options(
        name=RENDEZVOUS_NAME, namespace=namespace, get_if_exists=True
    ).remote()
    # A handle from an earlier ray.init (the same process may start Ray again) is replaced.
    _HELD[namespace] = handle
    return handle


def rendezvous_address(namespace: str | None = None, timeout: float = 60.0) -> tuple[str, int]:
    """Host and port of the store, looked up through the named actor."""
    handle = ray.get_actor(RENDEZVOUS_NAME, namespace=namespace)
    return ray.get(handle.address.remote(), timeout=timeout)
