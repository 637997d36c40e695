"""EmbodiedActorWorker: the policy being trained, its optimizer and weight export."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

import rlinf.channel as object_store
from rlinf.core import ThreadBorrower, ThreadLoans, Trajectory, Worker

from .._actor_critic import build_policy
from .._config import PolicyConfig
from .._spec import ActionSpecLike, ObsSpecLike
from .._weight_sync import WeightBroadcaster, WeightStager
from ..train import TrainingConfig
from ._config import UpdaterConfig
from ._process import import_optimizer_deps, setup_torch_process
from ._updater import PolicyUpdater
from ._weights import WeightSnapshot

__all__ = ["EmbodiedActorWorker"]


class EmbodiedActorWorker(ThreadBorrower, WeightStager, WeightBroadcaster, Worker):
    """Holds the trained :class:`~rlinf.models.ActorCritic` and its :class:`PolicyUpdater`.

    Weight sync goes through Ray's object store: ``stage_weights`` (from
    :class:`~rlinf.models.WeightStager`) puts a :class:`WeightSnapshot` (a few hundred KB
    for MLP policies) into the store from this process and returns only its reference,
    which the driver hands to every rollout rank. That needs no collective set-up between
    groups and works unchanged whether ranks share a device or not. Or by collectives:
    ``broadcast_weights`` (from :class:`~rlinf.models.WeightBroadcaster`, every rank calls
    it) sends the live, possibly sharded, state dict in buckets.

    Args:
        policy_config: :class:`~rlinf.models.PolicyConfig`.
        updater_config: :class:`UpdaterConfig`.
        obs_spec: the env's observation spec (key -> ``shape``/``dtype``).
        action_spec: the env's action spec.
        total_updates: updates of the whole run (learning-rate schedule).
        seed: torch seed of the initial weights and minibatch shuffling.
        torch_threads: intra-op threads (1 is fastest for small MLPs on shared cores).
        training: :class:`~rlinf.models.train.TrainingConfig`; default: ``torch`` for one
            rank, ``fsdp2`` when the actor group has several (``placement.actor="0-1"``).
        gather_full_state: several ranks: gather the full weights on every rank after each
            update, for ``stage_weights`` (the object-store path). The collective path
            gathers bucket by bucket while it sends, so it turns this off.

    Several ranks train data-parallel: the group becomes the default process group
    (:meth:`~rlinf.core.Worker.init_torch_distributed`), every rank is called with the
    same trajectories and trains its share of each mini-batch, and each update ends with
    the gathered full weights, which rank 0 exports (``stage_weights`` calls rank 0 only).
    """

    @classmethod
    def warm_up(cls) -> None:
        """The optimizer's imports, before the env's specs (this constructor's arguments)
        are known: off the critical path of the flow's start."""
        import_optimizer_deps()

    def __init__(
        self,
        policy_config: PolicyConfig,
        updater_config: UpdaterConfig,
        obs_spec: ObsSpecLike,
        action_spec: ActionSpecLike,
        total_updates: int,
        seed: int = 0,
        torch_threads: int = 1,
        training: TrainingConfig | None = None,
        gather_full_state: bool = True,
    ) -> None:
        super().__init__()
        setup_torch_process(torch_threads)
        torch.manual_seed(seed)
        if training is None:
            training = TrainingConfig(backend="fsdp2" if self.world_size > 1 else "torch")
        if training.backend != "torch":
            self.init_torch_distributed()
        self.policy = build_policy(policy_config, obs_spec, action_spec).to(self.device)
        self.updater = PolicyUpdater(
            self.policy,
            updater_config,
            total_updates,
            training,
            generator=torch.Generator(self.device).manual_seed(seed),
        )
        self.version = 0
        # Slots lent by the dynamic scheduler raise the update's threads by this
        # process's own count per slot (every worker of a flow runs the same count).
        self.loans = ThreadLoans(torch_threads, torch_threads)
        self._gather_full = gather_full_state
        self._full_state: dict[str, torch.Tensor] | None = None
        self._gather_weights()

    def _gather_weights(self) -> None:
        """Sharded policy: every rank gathers the full weights now (a collective), so that
        rank 0 alone can export them later."""
        if self.updater.backend.world_size > 1 and self._gather_full:
            self._full_state = self.updater.backend.full_state_dict()

    def get_version(self) -> int:
        """Version of the current weights (number of updates made)."""
        return self.version

    def update(
        self,
        trajectories: Trajectory | Sequence[Any],
        phase: int | None = None,
    ) -> dict[str, float]:
        """One PPO / GRPO update from a :class:`~rlinf.core.Trajectory` or a list of them,
        concatenated along the env axis; returns ``train/*`` metrics (and
        ``time/actor_update``, the update's own seconds) and bumps the weight version.

        List items may be object-store references to trajectories: env workers put their
        trajectory into the store themselves and the driver hands on only the references,
        so a trajectory goes env worker -> store -> here, never through the driver (Ray
        does not resolve references nested in a list argument: they are fetched here).

        ``phase``: the update accepts lent slots (:meth:`lend_slots` with this phase) and
        reports ``sched/actor_lent_s``, the seconds it ran with them.
        """
        if isinstance(trajectories, Trajectory):
            batch = trajectories
        else:
            parts = list(trajectories)
            refs = [i for i, p in enumerate(parts) if object_store.is_ref(p)]
            for i, value in zip(refs, object_store.get([parts[i] for i in refs]), strict=True):
                parts[i] = value
            batch = parts[0] if len(parts) == 1 else Trajectory.concat(parts)
        with self.device_turn():
            start = time.perf_counter()
            if phase is None:
                metrics = self.updater.update(batch)
            else:
                self.loans.begin(phase)
                try:
                    metrics = self.updater.update(batch, on_step=self.loans.apply)
                finally:
                    metrics_lent = self.loans.end()
                metrics["sched/actor_lent_s"] = metrics_lent
            # The update's own compute; the driver's time/update adds the call around it.
            metrics["time/actor_update"] = time.perf_counter() - start
        self._gather_weights()
        self.version += 1
        metrics["train/weight_version"] = float(self.version)
        return metrics

    def weight_state(self) -> tuple[int, dict[str, torch.Tensor]]:
        """:attr:`version` and the live state dict (DTensor shards under fsdp2), for
        ``broadcast_weights``."""
        return self.version, self.policy.state_dict()

    def export_weights(self) -> WeightSnapshot:
        """The current weights tagged with :attr:`version`."""
        if self.updater.backend.world_size > 1 and self._full_state is None:
            raise RuntimeError(
                "export_weights: this sharded actor was started with gather_full_state=False "
                "(collective weight sync); use broadcast_weights"
            )
        if self._full_state is not None:
            state = {k: v.clone() for k, v in self._full_state.items()}
            return WeightSnapshot(self.version, state)
        return WeightSnapshot.of(self.policy, self.version)

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything needed to resume: policy (with normalizer), optimizer, update counter,
        weight version and the torch RNG state. Several ranks: a collective (call every
        rank); unsharded, so any number of ranks can resume from it."""
        backend = self.updater.backend
        if backend.world_size > 1:
            model_sd, optim_sd = backend.full_train_state()
            return {
                "policy": model_sd,
                "full_optimizer": optim_sd,
                "num_updates": self.updater.num_updates,
                "version": self.version,
                "torch_rng": torch.get_rng_state(),
                "minibatch_rng": self.updater.generator.get_state(),
            }
        return {
            "policy": {k: v.detach().cpu() for k, v in self.policy.state_dict().items()},
            "updater": self.updater.state_dict(),
            "version": self.version,
            "torch_rng": torch.get_rng_state(),
            "minibatch_rng": self.updater.generator.get_state(),
        }

    def load_checkpoint_state(self, state: Mapping[str, Any]) -> int:
        """Restore :meth:`checkpoint_state`; returns the restored version."""
        if "full_optimizer" in state:
            self.updater.backend.load_full_train_state(state["policy"], state["full_optimizer"])
            self.updater.num_updates = int(state["num_updates"])
            self._gather_weights()
        elif self.updater.backend.world_size > 1:
            raise ValueError(
                "this checkpoint was written by a one-rank actor (rank-local optimizer "
                "state): resume it with placement.actor on one rank"
            )
        else:
            self.policy.load_state_dict(state["policy"])
            self.updater.load_state_dict(state["updater"])
        self.version = int(state["version"])
        torch.set_rng_state(state["torch_rng"])
        if "minibatch_rng" in state:  # absent from checkpoints of older versions
            self.updater.generator.set_state(state["minibatch_rng"])
        return self.version
