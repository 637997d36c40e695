"""Weight sync from a trainer group to generator groups, without the driver holding weights.

The trainer's rank 0 puts its :class:`~rlinf.models.WeightSnapshot` into Ray's object
store itself (:func:`put_weights`, called inside the worker by its ``stage_weights``
method) and answers the driver with a :class:`StagedWeights`: a reference and a version,
a few hundred bytes whatever the model's size. The driver hands the reference to every
generator rank, each fetches the snapshot straight from the store and loads it in version
order. The snapshot crosses the object store once and never the driver.

A trainer worker offers ``stage_weights() -> StagedWeights`` (e.g. through
:class:`WeightStager`); a generator worker offers ``load_weights(ref) -> int``, the version
it holds afterwards.

The collective path (``method="collective"``) moves the weights by ``rlinf.core``
broadcasts instead, in buckets (:mod:`rlinf.models._weight_buckets`): every trainer rank runs
``broadcast_weights`` (:class:`WeightBroadcaster`) and broadcasts the rows of the shards it
holds (rank 0 also the unsharded tensors) to every generator rank, which writes them into
its own tensors (``receive_weights``, :class:`WeightReceiver`). Nothing is gathered and
nothing goes through the object store. ``auto``
(:func:`choose_weight_sync`) picks it when the trainer is sharded over several ranks or the
two groups span several nodes, the object store otherwise (one node, one trainer rank:
staging can overlap a running rollout, and collocated ranks on one GPU cannot form an NCCL
group; on CPU the collective path measured faster there too, see ``benchmarks/README.md``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch

import rlinf.channel as object_store

from ._weight_buckets import broadcast_state, receive_state
from ._weights import VersionedWeights, WeightSnapshot

__all__ = [
    "DEFAULT_BUCKET_BYTES",
    "WEIGHT_SYNC_METHODS",
    "StagedWeights",
    "WeightBroadcaster",
    "WeightReceiver",
    "WeightStager",
    "choose_weight_sync",
    "load_staged_weights",
    "put_weights",
    "resolve_snapshot",
    "stage_weights",
    "sync_weights",
]


class _Group(Protocol):
    """What weight sync needs of a worker group (``rlinf.core.WorkerGroup``)."""

    def call(self, method: str, *args: Any, ranks: Any = None, **kwargs: Any) -> Any: ...


class _PlacedGroup(_Group, Protocol):
    """What the collective path and ``auto`` need besides ``call``."""

    @property
    def name(self) -> str: ...

    @property
    def world_size(self) -> int: ...

    @property
    def placement(self) -> Any: ...


WEIGHT_SYNC_METHODS = ("auto", "object_store", "collective")
"""Values of ``runner.weight_sync``."""

DEFAULT_BUCKET_BYTES = 64 * 1024**2
"""Bucket size of the collective path when the caller gives none."""


@dataclass(frozen=True)
class StagedWeights:
    """A weight snapshot in the object store, put there by the trainer's own process.

    Attributes:
        ref: object-store reference to the :class:`~rlinf.models.WeightSnapshot`.
        version: its weight version.
    """

    ref: Any
    version: int


def put_weights(snapshot: WeightSnapshot) -> StagedWeights:
    """Put ``snapshot`` into the object store from the calling (trainer) process."""
    return StagedWeights(object_store.put(snapshot), int(snapshot.version))


def resolve_snapshot(snapshot: Any) -> WeightSnapshot:
    """The snapshot itself, fetched from the object store when given a reference."""
    return object_store.get(snapshot) if object_store.is_ref(snapshot) else snapshot


class WeightStager:
    """Mixin for trainer workers; the worker class defines
    ``export_weights() -> WeightSnapshot``."""

    def stage_weights(self) -> StagedWeights:
        """Export the current weights into the object store; only the reference leaves."""
        return put_weights(self.export_weights())  # type: ignore[attr-defined]


def stage_weights(actor: _Group, timeout: float) -> StagedWeights:
    """Have the actor's rank 0 stage its weights; returns the reference and version."""
    staged = actor.call("stage_weights", ranks=0).wait(timeout)[0]
    if not isinstance(staged, StagedWeights):
        raise TypeError(f"stage_weights returned {type(staged).__name__}, not StagedWeights")
    return staged


def load_staged_weights(rollout: _Group, staged: StagedWeights, timeout: float) -> int:
    """Have every rank of ``rollout`` load ``staged``; returns its version.

    Raises:
        RuntimeError: a rollout rank holds another version than the snapshot's.
    """
    versions = rollout.call("load_weights", staged.ref).wait(timeout)
    if len(set(versions)) != 1 or versions[0] != staged.version:
        raise RuntimeError(f"rollout ranks hold versions {versions}, not {staged.version}")
    return staged.version


def choose_weight_sync(
    method: str, actor: _PlacedGroup, rollout: _PlacedGroup, device_type: str = "cpu"
) -> str:
    """``object_store`` or ``collective``: ``method`` itself, or for ``auto`` the rule of the
    module doc (collective when the actor has several ranks or the groups span nodes).

    ``device_type`` (the topology's, ``"cpu"`` or ``"gpu"``): on GPUs the collective path
    puts actor and rollout ranks in one NCCL group, which refuses two ranks on one GPU, so
    ``auto`` keeps the object store when the two groups share a GPU.

    Raises:
        ValueError: an unknown ``method``, or ``collective`` with actor and rollout ranks
            on the same GPU.
    """
    if method not in WEIGHT_SYNC_METHODS:
        raise ValueError(f"weight_sync must be one of {WEIGHT_SYNC_METHODS}, got {method!r}")
    shared = set(actor.placement.devices) & set(rollout.placement.devices)
    shared_gpus = sorted(shared) if device_type == "gpu" else []
    if method == "collective" and shared_gpus:
        raise ValueError(
            f"weight_sync=collective: actor and rollout share GPU(s) {shared_gpus}, and NCCL "
            "cannot put two ranks of one group on one GPU; use object_store (or auto)"
        )
    if method != "auto":
        return method
    if shared_gpus:
        return "object_store"
    nodes = set(actor.placement.nodes) | set(rollout.placement.nodes)
    return "collective" if actor.world_size > 1 or len(nodes) > 1 else "object_store"


def sync_weights(
    actor: _Group,
    rollout: _Group,
    timeout: float,
    method: str = "object_store",
    bucket_bytes: int = DEFAULT_BUCKET_BYTES,
) -> int:
    """Push the actor's weights to every rollout rank; returns the version now loaded.

    ``method``: ``object_store`` (the actor's rank 0 puts one snapshot, every rollout rank
    fetches it; the actor offers ``stage_weights``, the rollout ``load_weights``; the two
    halves are :func:`stage_weights` and :func:`load_staged_weights`, for flows that stage
    while the rollout ranks are still busy and load once they are idle), ``collective``
    (bucketed broadcasts of ``bucket_bytes``; every actor rank offers
    ``broadcast_weights``, every rollout rank ``receive_weights``) or ``auto``
    (:func:`choose_weight_sync`; needs ``rlinf.core.WorkerGroup``\\ s).

    Raises:
        RuntimeError: a rollout rank holds another version than the actor's.
        rlinf.core.WorkerError: a rank failed, e.g. ``StaleWeightsError`` on a rollout rank
            given a version out of order.
    """
    if method != "object_store":
        method = choose_weight_sync(method, actor, rollout)  # type: ignore[arg-type]
    if method == "object_store":
        return load_staged_weights(rollout, stage_weights(actor, timeout), timeout)
    return _sync_collective(actor, rollout, timeout, bucket_bytes)  # type: ignore[arg-type]


def _sync_collective(
    actor: _PlacedGroup, rollout: _PlacedGroup, timeout: float, bucket_bytes: int
) -> int:
    if bucket_bytes < 1024:
        raise ValueError(f"bucket_bytes must be >= 1024, got {bucket_bytes}")
    send = actor.call(
        "broadcast_weights", rollout.name, rollout.world_size, int(bucket_bytes), timeout
    )
    recv = rollout.call("receive_weights", actor.name, timeout)
    versions, sent = _wait_pair(recv, send, timeout)
    if len(set(versions)) != 1 or versions[0] != sent[0]:
        raise RuntimeError(f"rollout ranks hold versions {versions}, not {sent[0]}")
    return int(sent[0])


def _wait_pair(first: Any, second: Any, timeout: float) -> tuple[list[Any], list[Any]]:
    """Both futures' results; whichever side fails first raises at once (a failed sender
    would otherwise leave the receivers waiting for their transfer timeout)."""
    from rlinf.core import CallTimeout

    deadline = time.monotonic() + timeout
    while True:
        try:
            results = first.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            break
        except CallTimeout:
            if second.done():
                second.wait()  # raises the other side's error, if it failed
            if time.monotonic() >= deadline:
                raise
    return results, second.wait(max(1.0, deadline - time.monotonic()))


def _bucket_cache(worker: Any) -> dict[str, Any]:
    cache = worker.__dict__.get("_weight_bucket_cache")
    if cache is None:
        cache = worker.__dict__["_weight_bucket_cache"] = {}
    return cache


class WeightBroadcaster:
    """Mixin for trainer workers (``rlinf.core.Worker`` subclasses) on the collective path;
    the worker class defines ``weight_state() -> (version, state)``: its live state dict
    (DTensor shards allowed; not copied) and the version it holds."""

    def broadcast_weights(
        self, dst_group: str, dst_world_size: int, bucket_bytes: int, comm_timeout: float
    ) -> int:
        """Send the current weights to ranks ``0..dst_world_size-1`` of ``dst_group``.
        Every rank of this group must call it: each sends the rows of the dim-0 shards it
        holds, rank 0 also the unsharded tensors. Returns the version sent."""
        version, state = self.weight_state()  # type: ignore[attr-defined]
        send = functools.partial(
            self.broadcast,  # type: ignore[attr-defined]
            src=(self.group_name, self.rank),  # type: ignore[attr-defined]
            dsts=[(dst_group, r) for r in range(dst_world_size)],
            timeout=comm_timeout,
        )
        rank, world = self.rank, self.world_size  # type: ignore[attr-defined]
        with torch.no_grad():
            broadcast_state(state, version, rank, world, bucket_bytes, send, _bucket_cache(self))
        return int(version)


class WeightReceiver:
    """Mixin for generator workers on the collective path; the worker class defines
    ``weight_targets() -> (VersionedWeights, targets)``: the version tracker and the tensors
    to write into, by state-dict name (e.g. its model's ``state_dict()``, whose tensors
    share the parameters' memory)."""

    def receive_weights(self, src_group: str, comm_timeout: float) -> int:
        """Receive the weights that rank 0 of ``src_group`` broadcasts to this group;
        returns the version now held (``StaleWeightsError`` when out of order)."""
        weights, targets = self.weight_targets()  # type: ignore[attr-defined]
        if not isinstance(weights, VersionedWeights) or not isinstance(targets, Mapping):
            raise TypeError("weight_targets() must return (VersionedWeights, a mapping)")
        dsts = [(self.group_name, r) for r in range(self.world_size)]  # type: ignore[attr-defined]

        def recv(src: int, out: Any = None) -> Any:
            return self.broadcast(  # type: ignore[attr-defined]
                None, (src_group, src), dsts, timeout=comm_timeout, out=out
            )

        with torch.no_grad():
            return receive_state(weights, targets, recv, _bucket_cache(self))
