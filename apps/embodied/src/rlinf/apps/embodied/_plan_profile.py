"""The planner's profile of an embodied run, built from the reference run's metrics.

The reference run puts env, rollout and actor on device 0 with one pipeline stage and no
overlap (:func:`rlinf.apps.embodied._config.reference_config`), so each ``time/*`` metric of
an iteration is one component's cost alone on one device (see
``rlinf.models.embodied.EmbodiedFlow.iteration``):

- env: ``time/env_step`` (simulation only);
- rollout: ``time/rollout_infer`` (policy forward passes only);
- the exchange between them, ``time/rollout - time/env_step - time/rollout_infer`` (one
  round trip per env step and stage), is a cost per micro-batch (pipeline stage), half on
  each side of the link (``overhead_s``);
- actor: ``time/update``; weight sync: ``time/weight_sync``.

So the collocated one-stage prediction of the profile is the measured
``time/rollout + time/update + time/weight_sync`` of the reference run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rlinf.models.planning import timed_medians
from rlinf.sched import ComponentProfile, FlowProfile

__all__ = [
    "MAX_STAGES",
    "UNCHECKED_MEMORY",
    "MemoryFacts",
    "PlanFacts",
    "micro_batch_options",
    "node_memory_bytes",
    "peak_rss_bytes",
    "profile_from_metrics",
]

MAX_STAGES = 8
"""Most pipeline stages offered: each stage adds a round trip per env step, and beyond a few
stages the per-stage batches are too small to gain from overlap."""

_KEYS = (
    "time/env_step",
    "time/rollout_infer",
    "time/rollout",
    "time/update",
    "time/weight_sync",
)


@dataclass(frozen=True)
class MemoryFacts:
    """Memory the planner may check.

    Attributes:
        component_bytes: component -> peak bytes per device it held (CPU slots: the peak
            resident memory of its processes); empty when not measured.
        device_bytes: bytes one device holds (CPU slots: the node's RAM, which the slots
            share, so the check is an upper bound).
        note: how it was measured, or why memory is not checked.
    """

    component_bytes: Mapping[str, int]
    device_bytes: int
    note: str

    @property
    def checked(self) -> bool:
        """Whether the profile's memory figures are measurements."""
        return bool(self.component_bytes)


UNCHECKED_MEMORY = 2**62
"""Device bytes of a profile whose memory is not checked (each component then holds 1 byte):
no placement is ruled out for memory."""


@dataclass(frozen=True)
class PlanFacts:
    """What the planner takes from the config, besides the measured seconds.

    Attributes:
        micro_batches: pipeline stage counts the config allows (:func:`micro_batch_options`).
        overlap_update: whether ``runner.overlap_update`` is allowed (the algorithm's loss
            can be decoupled).
        memory: the measured memory, or why it is not checked.
    """

    micro_batches: tuple[int, ...]
    overlap_update: bool
    memory: MemoryFacts


def micro_batch_options(num_envs: int, max_stages: int = MAX_STAGES) -> tuple[int, ...]:
    """Pipeline stage counts that split ``num_envs`` envs evenly on one env worker, up to
    ``max_stages``: ``8`` -> ``(1, 2, 4, 8)``. Counts that do not also split over more env
    workers are dropped later, per candidate, by the app's own checks."""
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    return tuple(s for s in range(1, min(num_envs, max_stages) + 1) if num_envs % s == 0)


def profile_from_metrics(
    rows: Sequence[Mapping[str, float]], facts: PlanFacts, devices: int = 1
) -> FlowProfile:
    """The :class:`FlowProfile` of a reference run on ``devices`` shared devices (the
    seconds' key) from its ``metrics.jsonl`` rows.

    Each figure is the median over the iterations after the first (which pays for process
    warm-up and first-touch allocations). See the module docstring for what maps to what.

    Raises:
        ValueError: fewer than two rows, or a row without one of the ``time/*`` keys.
    """
    med = timed_medians(rows, _KEYS, "iteration")
    env = med["time/env_step"]
    infer = med["time/rollout_infer"]
    exchange = max(0.0, med["time/rollout"] - env - infer)
    mem = facts.memory

    def component(name: str, seconds: float, overhead: float = 0.0) -> ComponentProfile:
        # A zero reading (e.g. an env too fast for the timer) would not be a valid profile.
        return ComponentProfile(
            name,
            seconds={devices: max(seconds, 1e-6)},
            memory_bytes=mem.component_bytes.get(name, 1),
            overhead_s=overhead,
        )

    return FlowProfile(
        components=(
            component("env", env, exchange / 2),
            component("rollout", infer, exchange / 2),
            component("actor", med["time/update"]),
        ),
        update="actor",
        device_memory_bytes=mem.device_bytes if mem.checked else UNCHECKED_MEMORY,
        weight_sync_s=med["time/weight_sync"],
        micro_batches=facts.micro_batches,
        overlap_update=facts.overlap_update,
    )


def peak_rss_bytes(pid: int) -> int | None:
    """Peak resident memory of a local process (Linux ``VmHWM``), or None if unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def node_memory_bytes() -> int:
    """This machine's RAM in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
