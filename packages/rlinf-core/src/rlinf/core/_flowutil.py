"""Small pieces of the apps' flows: weight sync from the actor to the rollout ranks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import ray

from ._group import WorkerGroup

__all__ = ["best_effort", "sync_weights"]


def sync_weights(actor: WorkerGroup, rollout: WorkerGroup, timeout: float) -> int:
    """Push the actor's weights to every rollout rank; returns the version now loaded.

    The actor's rank 0 answers ``export_weights()`` with a snapshot that has a ``version``;
    it goes into the object store once (``ray.put``) and every rollout rank fetches it in
    ``load_weights(ref)``, which returns the version it then holds.

    Raises:
        RuntimeError: a rollout rank holds another version than the snapshot's.
    """
    snapshot = actor.call("export_weights", ranks=0).wait(timeout)[0]
    ref = ray.put(snapshot)
    versions = rollout.call("load_weights", ref).wait(timeout)
    if len(set(versions)) != 1 or versions[0] != snapshot.version:
        raise RuntimeError(f"rollout ranks hold versions {versions}, not {snapshot.version}")
    return snapshot.version


def best_effort(fn: Callable[[], Any]) -> None:
    """Call ``fn`` and ignore any error it raises.

    For shutdown paths: when a run already failed, its first error is the one to report,
    not a follow-up failure while closing what is left.
    """
    with contextlib.suppress(Exception):
        fn()
