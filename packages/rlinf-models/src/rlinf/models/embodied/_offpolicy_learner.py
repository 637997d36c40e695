"""OffPolicyLearner: SAC / CrossQ / RLPD / IQL updates from a replay buffer it owns (plain
torch, no Ray).

The buffer lives inside the learner (no buffer worker): collectors' trajectories reach it
through the object store (see :class:`~rlinf.models.embodied.OffPolicyLearnerWorker`), so a
sampled batch never crosses a process boundary, and one update step is local tensor work.
With ``offline_data`` a second, fixed buffer holds the offline file (read in this process)
and every batch mixes ``offline_ratio`` of it with online data (RLPD's symmetric sampling).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rlinf.algos import (
    CriticEnsemble,
    ReplayBuffer,
    crossq_critic_loss,
    polyak_update,
    rlpd_actor_loss,
    rlpd_critic_target,
    sac_actor_loss,
    sac_critic_loss,
    sac_critic_target,
    sac_temperature_loss,
    sample_mixed,
)
from rlinf.core import Trajectory

from .._config import PolicyConfig
from .._spec import ActionSpecLike, ObsSpecLike
from ._offline_data import load_offline_data
from ._offpolicy_actor import SquashedGaussianActor, flat_obs, vector_obs_dim
from ._offpolicy_config import OffPolicyConfig
from ._offpolicy_iql import IQLValue

__all__ = ["NEXT_OBS_RECORD", "OffPolicyLearner", "transitions"]

NEXT_OBS_RECORD = "next_obs"
"""The record (``[N, T, D]`` flat float32) the collectors' policy adds to a trajectory: the
state each step reached, *before* any auto-reset (so truncated episodes bootstrap from the
true last state)."""


def transitions(traj: Trajectory) -> dict[str, torch.Tensor]:
    """A ``[N, T]`` trajectory -> ``N*T`` transitions ``{"obs" [M, D], "actions" [M, A],
    "rewards" [M], "next_obs" [M, D], "terminated" [M]}`` (float32; terminated 0/1).

    Only termination stops bootstrapping; a truncated step keeps ``gamma * V(next_obs)``.
    """
    if NEXT_OBS_RECORD not in traj.records:
        raise ValueError(
            f"trajectory has no {NEXT_OBS_RECORD!r} record (records: {sorted(traj.records)}); "
            "collect it with the off-policy responder"
        )
    n, t = np.asarray(traj.rewards).shape
    obs = flat_obs({k: np.asarray(v).reshape(n * t, *np.shape(v)[2:]) for k, v in traj.obs.items()})
    actions = torch.as_tensor(np.asarray(traj.actions)).float().reshape(n * t, -1)
    return {
        "obs": obs,
        "actions": actions,
        "rewards": torch.as_tensor(np.asarray(traj.rewards)).float().reshape(-1),
        "next_obs": torch.as_tensor(np.asarray(traj.records[NEXT_OBS_RECORD]))
        .float()
        .reshape(n * t, -1),
        "terminated": torch.as_tensor(np.asarray(traj.terminated)).float().reshape(-1),
    }


class OffPolicyLearner:
    """Actor, critics (and target critics unless CrossQ), temperature, optimizers, replay
    buffer; RLPD's LayerNorm ensemble, IQL's value network, the offline buffer.

    Args:
        config: :class:`OffPolicyConfig`.
        policy_config: the actor's trunk (``hidden_sizes``, ``activation``,
            ``log_std_min``/``log_std_max``).
        obs_spec: the env's observation spec (vector keys only).
        action_spec: continuous with finite bounds.
        seed: seeds torch (initial weights, sampling) and the buffer's draws.
    """

    def __init__(
        self,
        config: OffPolicyConfig,
        policy_config: PolicyConfig,
        obs_spec: ObsSpecLike,
        action_spec: ActionSpecLike,
        seed: int = 0,
    ) -> None:
        self.config = config
        torch.manual_seed(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.obs_dim = vector_obs_dim(obs_spec)
        self.action_dim = math.prod(tuple(action_spec.shape))
        self.actor = SquashedGaussianActor(
            self.obs_dim,
            action_spec,
            policy_config.hidden_sizes,
            policy_config.activation,
            policy_config.log_std_min,
            policy_config.log_std_max,
        )  # the same construction as the collectors' (_offpolicy_responder.build_actor)
        self.critic = CriticEnsemble(
            self.obs_dim,
            self.action_dim,
            config.critic_hidden_sizes,
            config.num_critics,
            config.critic_norm,
        )
        self.target = (
            copy.deepcopy(self.critic).requires_grad_(False) if config.uses_target else None
        )
        self.log_alpha = torch.tensor(math.log(config.init_alpha), requires_grad=True)
        self.target_entropy = (
            float(-self.action_dim) if config.target_entropy is None else config.target_entropy
        )
        betas = (config.adam_beta1, 0.999)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), config.actor_lr, betas=betas)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), config.critic_lr, betas=betas)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], config.alpha_lr, betas=betas)
        self.buffer = ReplayBuffer(config.buffer_size)
        self.offline: ReplayBuffer | None = None
        if config.offline_data:
            data, _ = load_offline_data(
                config.offline_data,
                obs_dim=self.obs_dim,
                action_dim=self.action_dim,
                min_transitions=max(1, config.offline_batch),
            )
            self.offline = ReplayBuffer(int(data["rewards"].shape[0]))
            self.offline.add(data)
        self.value = IQLValue(config, self.obs_dim) if config.name == "iql" else None
        self.updates = 0
        self.offline_updates = 0  # IQL's offline phase (part of ``updates``)
        self.added = 0

    @property
    def alpha(self) -> torch.Tensor:
        """``[]`` current temperature (detached)."""
        return self.log_alpha.detach().exp()

    def add(self, traj: Trajectory) -> int:
        """Append a trajectory's transitions; returns how many."""
        batch = transitions(traj)
        if batch["obs"].shape[1] != self.obs_dim:
            raise ValueError(f"obs has {batch['obs'].shape[1]} features, expected {self.obs_dim}")
        self.buffer.add(batch)
        n = batch["rewards"].shape[0]
        self.added += n
        return n

    def updates_due(self) -> int:
        """Updates owed under ``utd_ratio`` for the data added past ``learning_starts``."""
        c = self.config
        if len(self.buffer) < c.learning_starts:
            return 0
        owed = math.floor(c.utd_ratio * (self.added - c.learning_starts + 1))
        return max(0, owed - (self.updates - self.offline_updates))

    def _sample(self, offline_only: bool = False) -> dict[str, torch.Tensor]:
        c = self.config
        if offline_only:
            assert self.offline is not None
            return self.offline.sample(c.batch_size, self.generator)
        if self.offline is None:
            return self.buffer.sample(c.batch_size, self.generator)
        return sample_mixed(
            self.offline,
            self.buffer,
            c.batch_size,
            ratio=c.offline_batch / c.batch_size,
            generator=self.generator,
        )

    def _critic_step(self, b: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        alpha = self.alpha
        if self.config.name == "rlpd":
            assert self.target is not None
            with torch.no_grad():
                next_a, next_logp = self.actor(b["next_obs"])
                target, _ = rlpd_critic_target(
                    b["rewards"],
                    b["terminated"],
                    self.target(b["next_obs"], next_a),
                    next_logp if self.config.backup_entropy else None,
                    gamma=self.config.gamma,
                    alpha=alpha,
                    subset_size=self.config.subset_size,
                    generator=self.generator,
                )
            loss, metrics = sac_critic_loss(self.critic(b["obs"], b["actions"]), target)
        elif self.target is not None:
            with torch.no_grad():
                next_a, next_logp = self.actor(b["next_obs"])
                target = sac_critic_target(
                    b["rewards"],
                    b["terminated"],
                    self.target(b["next_obs"], next_a),
                    next_logp,
                    gamma=self.config.gamma,
                    alpha=alpha,
                )
            loss, metrics = sac_critic_loss(self.critic(b["obs"], b["actions"]), target)
        else:
            with torch.no_grad():
                next_a, next_logp = self.actor(b["next_obs"])
            self.critic.train()
            loss, metrics = crossq_critic_loss(
                self.critic,
                b["obs"],
                b["actions"],
                b["rewards"],
                b["next_obs"],
                b["terminated"],
                next_a,
                next_logp,
                gamma=self.config.gamma,
                alpha=alpha,
            )
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        return metrics

    def _actor_step(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        # CrossQ evaluates the actor's actions with the critic's running statistics.
        self.critic.requires_grad_(False)
        if self.target is None:
            self.critic.eval()
        try:
            action, logp = self.actor(obs)
            # RLPD's actor follows the ensemble mean; SAC / CrossQ the minimum.
            actor_loss = rlpd_actor_loss if self.config.name == "rlpd" else sac_actor_loss
            loss, metrics = actor_loss(self.critic(obs, action), logp, self.alpha)
        finally:
            self.critic.requires_grad_(True)
            self.critic.train()
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_opt.step()
        if self.config.autotune:
            a_loss, a_metrics = sac_temperature_loss(self.log_alpha, logp, self.target_entropy)
            self.alpha_opt.zero_grad(set_to_none=True)
            a_loss.backward()
            self.alpha_opt.step()
            metrics.update(a_metrics)
        return metrics

    def pretrain(self, num_updates: int) -> dict[str, float]:
        """IQL's offline phase: up to ``num_updates`` steps on offline batches alone,
        never past ``offline_steps`` in all; returns ``train/*`` means (``train/updates``
        counts these too)."""
        if self.value is None or self.offline is None:
            raise ValueError(
                f"pretrain is IQL's offline phase; this learner is {self.config.name} "
                f"with offline data {self.config.offline_data!r}"
            )
        n = max(0, min(num_updates, self.config.offline_steps - self.offline_updates))
        out = self.update(n, offline_only=True)
        self.offline_updates += n
        return out

    def _step(self, b: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.value is not None:
            assert self.target is not None
            return self.value.step(
                b, self.actor, self.actor_opt, self.critic, self.critic_opt, self.target
            )
        metrics = self._critic_step(b)
        if self.updates % self.config.policy_delay == 0:
            metrics.update(self._actor_step(b["obs"]))
        return metrics

    def update(self, num_updates: int, offline_only: bool = False) -> dict[str, float]:
        """``num_updates`` gradient steps on batches drawn uniformly from the buffer (mixed
        with the offline data when there is some; offline batches alone when
        ``offline_only``); returns ``train/*`` means over them (empty when ``num_updates``
        is 0)."""
        online = self.config.batch_size - self.config.offline_batch
        if num_updates and not offline_only and len(self.buffer) < online:
            share = (
                f"batch_size {online}"
                if online == self.config.batch_size
                else f"the {online} of batch_size {self.config.batch_size} it must supply"
            )
            raise ValueError(f"buffer holds {len(self.buffer)} transitions, fewer than {share}")
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for _ in range(num_updates):
            metrics = self._step(self._sample(offline_only))
            if self.target is not None:
                polyak_update(self.target, self.critic, self.config.tau)
            self.updates += 1
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v)
                counts[k] = counts.get(k, 0) + 1
        out = {f"train/{k}": sums[k] / counts[k] for k in sums}
        if num_updates and self.value is None:
            out["train/alpha"] = float(self.alpha)
        return out

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizers, temperature, counters and RNG states (not the buffer:
        :meth:`save_buffer` writes it as npz)."""
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "target": None if self.target is None else self.target.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "alpha_opt": self.alpha_opt.state_dict(),
            "updates": self.updates,
            "offline_updates": self.offline_updates,
            "value": None if self.value is None else self.value.state_dict(),
            "added": self.added,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        if self.target is not None:
            self.target.load_state_dict(state["target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
        self.updates, self.added = int(state["updates"]), int(state["added"])
        self.offline_updates = int(state["offline_updates"])
        if self.value is not None:
            self.value.load_state_dict(state["value"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])

    def save_buffer(self, path: str) -> None:
        """Write the buffer's transitions (oldest first) to ``path`` as npz."""
        items = self.buffer.ordered() if len(self.buffer) else {}
        np.savez(path, **{k: v.numpy() for k, v in items.items()})

    def load_buffer(self, path: str) -> int:
        """Refill the (empty) buffer from :meth:`save_buffer`'s file; returns its size."""
        with np.load(path) as data:
            batch = {k: torch.from_numpy(data[k]) for k in data.files}
        self.buffer.clear()
        if batch:
            self.buffer.add(batch)
        return len(self.buffer)
