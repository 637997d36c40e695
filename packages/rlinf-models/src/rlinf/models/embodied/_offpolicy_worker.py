"""OffPolicyLearnerWorker: the :class:`OffPolicyLearner` (and its replay buffer) in a worker."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import rlinf.channel as object_store
from rlinf.core import Worker

from .._config import PolicyConfig
from .._spec import ActionSpecLike, ObsSpecLike
from .._weight_sync import StagedWeights, put_weights
from ._offpolicy_config import OffPolicyConfig
from ._offpolicy_learner import OffPolicyLearner
from ._process import import_optimizer_deps, setup_torch_process
from ._weights import WeightSnapshot

__all__ = ["BUFFER_FILE", "OffPolicyLearnerWorker"]

BUFFER_FILE = "replay_buffer.npz"
"""The buffer's file name inside a checkpoint's ``model/`` directory."""


class OffPolicyLearnerWorker(Worker):
    """Adds collected trajectories to the buffer and makes the updates they are owed.

    Trajectories arrive as object-store references put there by the env workers; the
    driver forwards only the references (and the weight version that collected them).
    Weights leave as a :class:`WeightSnapshot` that this process puts into the store.

    Args:
        config: :class:`OffPolicyConfig`.
        policy_config: the actor's trunk.
        obs_spec: the env's observation spec.
        action_spec: the env's action spec.
        seed: torch seed.
        torch_threads: intra-op threads.
    """

    @classmethod
    def warm_up(cls) -> None:
        """The optimizers' imports, while the driver still waits for the env's specs."""
        import_optimizer_deps()

    def __init__(
        self,
        config: OffPolicyConfig,
        policy_config: PolicyConfig,
        obs_spec: ObsSpecLike,
        action_spec: ActionSpecLike,
        seed: int = 0,
        torch_threads: int = 1,
    ) -> None:
        super().__init__()
        setup_torch_process(torch_threads)
        self.learner = OffPolicyLearner(config, policy_config, obs_spec, action_spec, seed)
        self.next_version = 0
        # weight version -> learner updates when it was exported (for staleness)
        self.exported_at: dict[int, int] = {}

    def step(
        self, trajectories: Sequence[Any], version: int, update: bool = True
    ) -> dict[str, float]:
        """Add the trajectories collected with weights ``version``, then (unless
        ``update`` is False) make the updates now due (``utd_ratio``); returns ``train/*``
        metrics.

        ``train/staleness``: updates the learner had made beyond the collecting weights when
        this data entered the buffer (0 on-policy; grows with ``weight_push_every`` and with
        the updates that overlap collection).
        """
        start = time.perf_counter()
        added = sum(self.learner.add(t) for t in object_store.get(list(trajectories)))
        due = self.learner.updates_due() if update else 0
        metrics = self.learner.update(due)
        if trajectories:
            metrics["train/staleness"] = float(
                self.learner.updates - due - self.exported_at.get(version, 0)
            )
        metrics.update(
            {
                "train/updates_made": float(due),
                "train/transitions_added": float(added),
                "train/buffer_size": float(len(self.learner.buffer)),
                "train/updates": float(self.learner.updates),
                "time/actor_update": time.perf_counter() - start,
            }
        )
        return metrics

    def pretrain(self, num_updates: int) -> dict[str, float]:
        """IQL's offline phase: up to ``num_updates`` updates on the offline data alone
        (never past ``offline_steps``); returns ``train/*`` metrics with
        ``train/offline_updates`` (the phase is over when it equals ``offline_steps``)."""
        start = time.perf_counter()
        metrics = self.learner.pretrain(num_updates)
        metrics.update(
            {
                "train/offline_updates": float(self.learner.offline_updates),
                "train/updates": float(self.learner.updates),
                "time/actor_update": time.perf_counter() - start,
            }
        )
        return metrics

    def updates(self) -> int:
        """Gradient updates made so far."""
        return self.learner.updates

    def export_weights(self) -> WeightSnapshot:
        """The actor's weights as the next version (collectors load versions in order)."""
        snap = WeightSnapshot.of(self.learner.actor, self.next_version)
        self.exported_at[self.next_version] = self.learner.updates
        self.next_version += 1
        return snap

    def stage_weights(self) -> StagedWeights:
        """Export into the object store; only the reference leaves this process."""
        return put_weights(self.export_weights())

    def checkpoint_state(self) -> dict[str, Any]:
        """Networks, optimizers, temperature, counters, RNGs and the weight version."""
        return {"learner": self.learner.state_dict(), "next_version": self.next_version}

    def load_checkpoint_state(self, state: Mapping[str, Any]) -> int:
        """Restore :meth:`checkpoint_state`; returns the learner's update count."""
        self.learner.load_state_dict(state["learner"])
        self.next_version = int(state["next_version"])
        return self.learner.updates

    def save_buffer(self, directory: str) -> str:
        """Write the buffer to ``<directory>/replay_buffer.npz`` from this process (the
        buffer never passes through the driver); returns the path."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, BUFFER_FILE)
        self.learner.save_buffer(path)
        return path

    def load_buffer(self, path: str) -> int:
        """Refill the buffer from :meth:`save_buffer`'s file; returns its size."""
        return self.learner.load_buffer(path)
