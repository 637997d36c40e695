"""The planner's view of an LLM RL flow (pure: no Ray, no torch): its profile from a
reference run's metrics, and the config block of a candidate placement.

A reference run places actor, rollout and reward on the same ``d`` devices, runs the
synchronous step (``runner.max_staleness=0``) and logs, per step (see
:class:`~rlinf.models.llm.AsyncStepPipeline`):

- rollout: ``time/generate`` (the slowest rollout rank's generation);
- reward: ``time/reward`` (the slowest reward rank's scoring);
- actor: ``time/update`` (log-probs, advantages and the update, without waiting for data);
- weight sync: ``time/weight_sync``;
- ``time/step`` minus all of these: channel transfers and driver calls, counted as the
  rollout's per-micro-batch overhead (the batch crosses a channel once per step).

So the one-stage collocated prediction of the profile is the measured ``time/step``.
The flow's chain is rollout -> reward; the update may overlap the next step's rollout
(``runner.max_staleness=1``, the steady state of :class:`AsyncStepPipeline` with k=1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rlinf.core import resolve_torch_threads
from rlinf.sched import ComponentProfile, FlowProfile, RankedPlacement

from ..planning import timed_medians

__all__ = [
    "AUTO",
    "LLM_COMPONENTS",
    "UNCHECKED_MEMORY",
    "is_auto_placement",
    "llm_plan_block",
    "llm_profile_from_metrics",
]

AUTO = "auto"
"""``placement: auto``: plan the placement (and ``runner.max_staleness``), then train."""
LLM_COMPONENTS = ("rollout", "reward", "actor")
"""The components the planner models, chain first (data order), update last."""
UNCHECKED_MEMORY = 2**62
"""Device bytes of a profile whose memory is not checked (each component holds 1 byte)."""
_KEYS = ("time/generate", "time/reward", "time/update", "time/weight_sync", "time/step")


def is_auto_placement(placement: Mapping[str, Any] | str) -> bool:
    """Whether a config's ``placement`` asks for planning.

    Raises:
        ValueError: a string other than ``"auto"``, or ``"auto"`` for one component
            (planning places every component at once), naming the key.
    """
    if isinstance(placement, str):
        if placement != AUTO:
            raise ValueError(
                f"placement: expected a mapping component -> devices or {AUTO!r}, got {placement!r}"
            )
        return True
    for name, spec in placement.items():
        if isinstance(spec, str) and spec.strip() == AUTO:
            raise ValueError(
                f"placement.{name}: {AUTO!r} plans every component at once: write "
                f"'placement: {AUTO}' (not per component, and without placement.* keys)"
            )
    return False


def llm_profile_from_metrics(
    rows: Sequence[Mapping[str, float]], devices: int = 1, *, overlap_update: bool = True
) -> FlowProfile:
    """The :class:`FlowProfile` of a reference run on ``devices`` shared devices from its
    per-step metrics rows: medians over the steps after the first (which pays for process
    warm-up). Memory is not checked (see :data:`UNCHECKED_MEMORY`).

    Args:
        rows: the reference run's step metrics, in order.
        devices: the devices every component shared in that run (the seconds' key).
        overlap_update: whether the config may run with ``runner.max_staleness=1``.

    Raises:
        ValueError: fewer than two rows, or a row without one of the ``time/*`` keys.
    """
    med = timed_medians(rows, _KEYS, "step")
    parts = {
        "rollout": med["time/generate"],
        "reward": med["time/reward"],
        "actor": med["time/update"],
    }
    sync = med["time/weight_sync"]
    rest = max(0.0, med["time/step"] - sum(parts.values()) - sync)

    def component(name: str, overhead: float = 0.0) -> ComponentProfile:
        # A zero reading (a scorer too fast for the timer) would not be a valid profile.
        return ComponentProfile(
            name, seconds={devices: max(parts[name], 1e-6)}, memory_bytes=1, overhead_s=overhead
        )

    return FlowProfile(
        components=(component("rollout", rest), component("reward"), component("actor")),
        update="actor",
        device_memory_bytes=UNCHECKED_MEMORY,
        weight_sync_s=sync,
        micro_batches=(1,),
        overlap_update=overlap_update,
    )


def llm_plan_block(candidate: RankedPlacement, cfg: Any = None) -> dict[str, Any]:
    """A candidate's config block: ``placement`` and ``runner.max_staleness`` (1 when the
    update overlaps the next step's rollout, else 0); with ``cfg`` (the planned config),
    also ``scheduler.dynamic`` (true for a lending candidate) when the app has a
    ``scheduler`` section, and ``runner.torch_threads`` (twice the run's) for the wide
    candidate.

    Raises:
        ValueError: a lending or wide candidate without ``cfg``.
    """
    if (candidate.lending or candidate.wide) and cfg is None:
        raise ValueError("a lending or wide candidate's block needs the planned config")
    runner: dict[str, Any] = {"max_staleness": 1 if candidate.overlap_update else 0}
    if candidate.wide:
        runner["torch_threads"] = 2 * resolve_torch_threads(cfg.runner, cfg.cluster)
    block: dict[str, Any] = {"placement": dict(candidate.specs), "runner": runner}
    if cfg is not None and hasattr(cfg, "scheduler"):
        block["scheduler"] = {"dynamic": candidate.lending}
    return block
