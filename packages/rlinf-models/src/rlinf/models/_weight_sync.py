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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import ray

from ._weights import WeightSnapshot

__all__ = [
    "StagedWeights",
    "WeightStager",
    "load_staged_weights",
    "put_weights",
    "resolve_snapshot",
    "stage_weights",
    "sync_weights",
]


class _Group(Protocol):
    """What weight sync needs of a worker group (``rlinf.core.WorkerGroup``)."""

    def call(self, method: str, *args: Any, ranks: Any = None, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class StagedWeights:
    """A weight snapshot in the object store, put there by the trainer's own process.

    Attributes:
        ref: object-store reference to the :class:`~rlinf.models.WeightSnapshot`.
        version: its weight version.
    """

    ref: ray.ObjectRef
    version: int


def put_weights(snapshot: WeightSnapshot) -> StagedWeights:
    """Put ``snapshot`` into the object store from the calling (trainer) process."""
    return StagedWeights(ray.put(snapshot), int(snapshot.version))


def resolve_snapshot(snapshot: WeightSnapshot | ray.ObjectRef) -> WeightSnapshot:
    """The snapshot itself, fetched from the object store when given a reference."""
    return ray.get(snapshot) if isinstance(snapshot, ray.ObjectRef) else snapshot


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


def sync_weights(actor: _Group, rollout: _Group, timeout: float) -> int:
    """Push the actor's weights to every rollout rank; returns the version now loaded.

    The two halves are :func:`stage_weights` and :func:`load_staged_weights`, for flows that
    stage while the rollout ranks are still busy and load once they are idle.

    Raises:
        RuntimeError: a rollout rank holds another version than the snapshot's.
    """
    return load_staged_weights(rollout, stage_weights(actor, timeout), timeout)
