"""EmbodiedActorWorker: the policy being trained, its optimizer and weight export."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import ray
import torch

from rlinf.core import Trajectory, Worker

from .._actor_critic import build_policy
from .._config import PolicyConfig
from .._spec import ActionSpecLike, ObsSpecLike
from .._weight_sync import WeightStager
from ._config import UpdaterConfig
from ._updater import PolicyUpdater
from ._weights import WeightSnapshot

__all__ = ["EmbodiedActorWorker"]


class EmbodiedActorWorker(WeightStager, Worker):
    """Holds the trained :class:`~rlinf.models.ActorCritic` and its :class:`PolicyUpdater`.

    Weight sync goes through Ray's object store: ``stage_weights`` (from
    :class:`~rlinf.models.WeightStager`) puts a :class:`WeightSnapshot` (a few hundred KB
    for MLP policies) into the store from this process and returns only its reference,
    which the driver hands to every rollout rank. That needs no collective set-up between
    groups and works unchanged whether ranks share a device or not.

    Args:
        policy_config: :class:`~rlinf.models.PolicyConfig`.
        updater_config: :class:`UpdaterConfig`.
        obs_spec: the env's observation spec (key -> ``shape``/``dtype``).
        action_spec: the env's action spec.
        total_updates: updates of the whole run (learning-rate schedule).
        seed: torch seed of the initial weights and minibatch shuffling.
        torch_threads: intra-op threads (1 is fastest for small MLPs on shared cores).
    """

    def __init__(
        self,
        policy_config: PolicyConfig,
        updater_config: UpdaterConfig,
        obs_spec: ObsSpecLike,
        action_spec: ActionSpecLike,
        total_updates: int,
        seed: int = 0,
        torch_threads: int = 1,
    ) -> None:
        super().__init__()
        torch.set_num_threads(torch_threads)
        # Trajectories fetched from the object store are read-only zero-copy arrays; the
        # updater only reads them, so torch's warning about non-writable arrays is noise.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        torch.manual_seed(seed)
        self.policy = build_policy(policy_config, obs_spec, action_spec).to(self.device)
        self.updater = PolicyUpdater(self.policy, updater_config, total_updates)
        self.version = 0

    def get_version(self) -> int:
        """Version of the current weights (number of updates made)."""
        return self.version

    def update(
        self, trajectories: Trajectory | Sequence[Trajectory | ray.ObjectRef]
    ) -> dict[str, float]:
        """One PPO / GRPO update from a :class:`~rlinf.core.Trajectory` or a list of them,
        concatenated along the env axis; returns ``train/*`` metrics (and
        ``time/actor_update``, the update's own seconds) and bumps the weight version.

        List items may be object-store references to trajectories: env workers put their
        trajectory into the store themselves and the driver hands on only the references,
        so a trajectory goes env worker -> store -> here, never through the driver (Ray
        does not resolve references nested in a list argument: they are fetched here).
        """
        if isinstance(trajectories, Trajectory):
            batch = trajectories
        else:
            parts = list(trajectories)
            refs = [i for i, p in enumerate(parts) if isinstance(p, ray.ObjectRef)]
            for i, value in zip(refs, ray.get([parts[i] for i in refs]), strict=True):
                parts[i] = value
            batch = parts[0] if len(parts) == 1 else Trajectory.concat(parts)
        with self.device_turn():
            start = time.perf_counter()
            metrics = self.updater.update(batch)
            # The update's own compute; the driver's time/update adds the call around it.
            metrics["time/actor_update"] = time.perf_counter() - start
        self.version += 1
        metrics["train/weight_version"] = float(self.version)
        return metrics

    def export_weights(self) -> WeightSnapshot:
        """The current weights tagged with :attr:`version`."""
        return WeightSnapshot.of(self.policy, self.version)

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything needed to resume: policy (with normalizer), optimizer, update counter,
        weight version and the torch RNG state."""
        return {
            "policy": {k: v.detach().cpu() for k, v in self.policy.state_dict().items()},
            "updater": self.updater.state_dict(),
            "version": self.version,
            "torch_rng": torch.get_rng_state(),
        }

    def load_checkpoint_state(self, state: Mapping[str, Any]) -> int:
        """Restore :meth:`checkpoint_state`; returns the restored version."""
        self.policy.load_state_dict(state["policy"])
        self.updater.load_state_dict(state["updater"])
        self.version = int(state["version"])
        torch.set_rng_state(state["torch_rng"])
        return self.version
