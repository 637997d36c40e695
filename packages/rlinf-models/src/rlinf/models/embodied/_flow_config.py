"""The embodied flow's configuration: where and how its groups run, and what it reads of the
app's env section (apart from the flow itself, which imports its workers)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol

from rlinf.core import ClusterSection
from rlinf.sched import SchedulerSection

from ._runner import EmbodiedRunnerSection

__all__ = ["EmbodiedFlowConfig", "EnvSectionLike", "inprocess_unsupported"]


class EnvSectionLike(Protocol):
    """What the flow reads of the app's env config (a frozen dataclass, e.g.
    ``rlinf.envs.EnvConfig``); each env worker gets a copy with its share of ``num_envs``."""

    @property
    def num_envs(self) -> int: ...

    @property
    def seed(self) -> int: ...

    @property
    def chunk_size(self) -> int: ...


@dataclasses.dataclass(frozen=True)
class EmbodiedFlowConfig:
    """Where and how the flow's groups run.

    Attributes:
        name: prefix of group names (``"embodied"`` -> ``embodied-actor-<tag>``).
        runner: run length, pipelining, overlap and limits.
        cluster: the Ray cluster to start or join.
        placement: component -> device spec as in ``rlinf.sched``.
        components: every placed component (``actor``, ``rollout``, ``env``).
        scheduler: ``dynamic``: lend the env / rollout slots to the actor's update once
            their part of the step is done (:class:`UpdateLending`).
    """

    name: str
    runner: EmbodiedRunnerSection
    cluster: ClusterSection
    placement: Mapping[str, str | int]
    components: tuple[str, ...] = ("actor", "rollout", "env")
    scheduler: SchedulerSection = dataclasses.field(default_factory=SchedulerSection)


def inprocess_unsupported(config: EmbodiedFlowConfig) -> str | None:
    """Why this flow's config cannot run on the in-process backend (None: it can)."""
    if config.runner.weight_sync == "collective":
        return "runner.weight_sync=collective broadcasts between worker processes"
    if config.scheduler.dynamic:
        return "scheduler.dynamic lends device slots between worker processes"
    return None
