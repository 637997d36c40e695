"""The object store's two calls, ``put`` and ``get``, in one home.

Where Ray runs in this process (a driver that started or joined a cluster, or any Ray
worker), values go through Ray's object store, and a reference can be handed to any
process of the cluster. Without Ray (rlinf-core's in-process backend: every component in
the driver's process), ``put`` wraps the value itself in a :class:`LocalRef`: nothing is
copied or serialized, and nothing imports Ray.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["LocalRef", "get", "is_ref", "put"]


class LocalRef:
    """A reference to a value held in this process (what ``put`` returns without Ray)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"LocalRef({type(self.value).__name__})"


def _ray_running() -> Any:
    # Looked up, not imported: a process that never imported Ray cannot be connected to
    # a cluster, and the in-process backend must not pay Ray's import.
    ray = sys.modules.get("ray")
    return ray if ray is not None and ray.is_initialized() else None


def put(value: Any) -> Any:
    """Store ``value``: a ``ray.ObjectRef`` where Ray runs in this process, else a
    :class:`LocalRef` holding the value itself."""
    ray = _ray_running()
    return LocalRef(value) if ray is None else ray.put(value)


def is_ref(value: Any) -> bool:
    """Whether ``value`` is a reference that :func:`get` resolves."""
    if isinstance(value, LocalRef):
        return True
    ray = sys.modules.get("ray")
    return ray is not None and isinstance(value, ray.ObjectRef)


def get(refs: Any) -> Any:
    """The value behind one reference, or the values behind a list of them (in order;
    Ray fetches a list's objects concurrently)."""
    if isinstance(refs, LocalRef):
        return refs.value
    if isinstance(refs, Sequence) and not isinstance(refs, (str, bytes)):
        if all(isinstance(r, LocalRef) for r in refs):
            return [r.value for r in refs]
        if any(isinstance(r, LocalRef) for r in refs):
            return [get(r) for r in refs]
    import ray

    return ray.get(refs if not isinstance(refs, tuple) else list(refs))
