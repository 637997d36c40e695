"""Partial rollouts: weight versions that reach a rollout rank between decoding steps.

A rollout rank generates in chunks of ``update_interval_tokens`` new tokens. Between two
chunks it polls a channel (key ``("weights", rank)``) on which the driver publishes every
new version as soon as the actor has staged it (a :class:`~rlinf.models.StagedWeights`:
one snapshot in the object store, a reference per rank), and loads whatever has arrived,
in version order. Ray runs an actor's calls one at a time, so a weight update sent as a
call would queue behind the running rollout; polling a channel from inside the running
call needs neither a threaded actor nor a lock, and the weights never change under a
forward pass.

What happens to the sequences still generating when a new version arrives:

* ``continue``: they go on under the new weights (the KV cache of their earlier tokens is
  kept, as in NeMo-RL's in-flight updates and AReaL's partial rollouts); each token records
  the version that sampled it (``RolloutBatch.versions``) and its log-probability is the
  new weights', the behaviour policy an off-policy correction needs.
* ``abort``: they are dropped at the switch and their prompts run again once, whole, under
  the new weights (no further switch during that rerun), so no sequence mixes versions.

The staleness of a sample is the actor's version minus the *oldest* version among its
tokens (:func:`sample_staleness`), which the actor bounds by ``runner.max_staleness``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._batch import RolloutBatch

__all__ = [
    "PARTIAL_MODES",
    "InFlightUpdates",
    "PartialRolloutConfig",
    "check_sample_staleness",
    "partial_weight_sync",
    "sample_staleness",
]

PARTIAL_MODES = ("off", "continue", "abort")
"""Values of ``runner.partial_mode``."""


@dataclass(frozen=True)
class PartialRolloutConfig:
    """Whether and how new weights reach a rollout rank in the middle of a generation.

    Attributes:
        mode: ``off`` (a rank changes weights only between calls: today's flow),
            ``continue`` (unfinished sequences go on under the new weights, per-token
            versions recorded) or ``abort`` (unfinished sequences are dropped and their
            prompts rerun once under the new weights).
        update_interval_tokens: new tokens generated between two polls for new weights
            (>= 1); smaller picks a version up sooner at the cost of more polls.
    """

    mode: str = "off"
    update_interval_tokens: int = 16

    def __post_init__(self) -> None:
        if self.mode not in PARTIAL_MODES:
            raise ValueError(f"partial_mode must be one of {PARTIAL_MODES}, got {self.mode!r}")
        n = self.update_interval_tokens
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"update_interval_tokens must be an int >= 1, got {n!r}")

    @property
    def enabled(self) -> bool:
        """True unless ``mode`` is ``off``."""
        return self.mode != "off"


@dataclass(frozen=True)
class InFlightUpdates:
    """What :meth:`~rlinf.models.llm.HFGenerationBackend.generate` needs to take new
    weights between decoding steps.

    Attributes:
        mode: ``continue`` or ``abort`` (see the module doc).
        interval: new tokens between two calls of ``poll``.
        poll: loads every version that has arrived; returns True when the weights changed.
    """

    mode: str
    interval: int
    poll: Callable[[], bool]

    def __post_init__(self) -> None:
        if self.mode not in ("continue", "abort"):
            raise ValueError(f"InFlightUpdates.mode must be continue or abort, got {self.mode!r}")
        if self.interval < 1:
            raise ValueError(f"InFlightUpdates.interval must be >= 1, got {self.interval}")


def sample_staleness(batch: RolloutBatch, actor_version: int) -> torch.Tensor:
    """``[B]`` int64: ``actor_version`` minus the oldest version among each row's real
    response tokens (``batch.version`` for a batch without per-token versions)."""
    return actor_version - batch.oldest_versions()


def check_sample_staleness(
    batch: RolloutBatch, actor_version: int, max_staleness: int | None, where: str
) -> torch.Tensor:
    """:func:`sample_staleness`, after checking none exceeds ``max_staleness`` (None: no
    bound).

    Raises:
        RuntimeError: naming ``where``, the oldest version and the bound.
    """
    staleness = sample_staleness(batch, actor_version)
    worst = int(staleness.max()) if staleness.numel() else 0
    if max_staleness is not None and worst > max_staleness:
        raise RuntimeError(
            f"{where}: batch has tokens generated with weights version "
            f"{actor_version - worst}, {worst} versions behind the actor's {actor_version}, "
            f"more than max_staleness={max_staleness}"
        )
    return staleness


def partial_weight_sync(partial: PartialRolloutConfig, method: str, worker: type) -> str:
    """``runner.weight_sync`` as partial rollouts need it: the object store (a rank takes
    a snapshot between decoding steps; a collective transfer needs both groups in one
    call), ``auto`` resolved to it.

    Raises:
        ValueError: naming ``runner.partial_mode``: a collective sync was asked for, or
            the rollout worker cannot take weights between decoding steps.
    """
    if not partial.enabled:
        return method
    if not getattr(worker, "supports_partial", False):
        raise ValueError(
            f"runner.partial_mode={partial.mode}: {worker.__name__} does not take weights "
            "between decoding steps (use partial_mode=off)"
        )
    if method == "collective":
        raise ValueError(
            f"runner.partial_mode={partial.mode} needs runner.weight_sync=object_store (or "
            "auto): a rollout rank takes a snapshot between decoding steps"
        )
    return "object_store"
