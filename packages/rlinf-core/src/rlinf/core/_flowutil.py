"""Small pieces of the apps' flows: weight sync from the actor to the rollout ranks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray

from ._group import WorkerGroup

__all__ = [
    "StagedWeights",
    "best_effort",
    "load_staged_weights",
    "stage_weights",
    "sync_weights",
]


@dataclass(frozen=True)
class StagedWeights:
    """A weight snapshot in the object store.

    Attributes:
        ref: object-store reference to the ``WeightSnapshot``.
        version: its weight version.
    """

    ref: ray.ObjectRef
    version: int


def sync_weights(actor: WorkerGroup, rollout: WorkerGroup, timeout: float) -> int:
    """Push the actor's weights to every rollout rank; returns the version now loaded.

    The actor's rank 0 answers ``export_weights()`` with a snapshot that has a ``version``;
    it goes into the object store once (``ray.put``) and every rollout rank fetches it in
    ``load_weights(ref)``, which returns the version it then holds. The two halves are
    :func:`stage_weights` and :func:`load_staged_weights`, for flows that export while the
    rollout ranks are still busy and load once they are idle.

    Raises:
        RuntimeError: a rollout rank holds another version than the snapshot's.
    """
    return load_staged_weights(rollout, stage_weights(actor, timeout), timeout)


def stage_weights(actor: WorkerGroup, timeout: float) -> StagedWeights:
    """Export the actor's weights (rank 0) into the object store, ready to load."""
    snapshot = actor.call("export_weights", ranks=0).wait(timeout)[0]
    return StagedWeights(ray.put(snapshot), int(snapshot.version))


def load_staged_weights(rollout: WorkerGroup, staged: StagedWeights, timeout: float) -> int:
    """Have every rank of ``rollout`` load ``staged``; returns its version.

    Raises:
        RuntimeError: a rollout rank holds another version than the snapshot's.
    """
    versions = rollout.call("load_weights", staged.ref).wait(timeout)
    if len(set(versions)) != 1 or versions[0] != staged.version:
        raise RuntimeError(f"rollout ranks hold versions {versions}, not {staged.version}")
    return staged.version


def best_effort(fn: Callable[[], Any]) -> None:
    """Call ``fn`` and ignore any error it raises.

    For shutdown paths: when a run already failed, its first error is the one to report,
    not a follow-up failure while closing what is left.
    """
    with contextlib.suppress(Exception):
        fn()
