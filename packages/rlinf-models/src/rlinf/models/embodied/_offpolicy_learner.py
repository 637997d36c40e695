"""OffPolicyLearner: SAC / CrossQ / RLPD / IQL updates from a replay buffer it owns (plain
torch, no Ray).

The buffer lives inside the learner (no buffer worker): collectors' trajectories reach it
through the object store (see :class:`~rlinf.models.embodied.OffPolicyLearnerWorker`), so a
sampled batch never crosses a process boundary, and one update step is local tensor work.
With ``offline_data`` a second, fixed buffer holds the offline file (read in this process)
and every batch mixes ``offline_ratio`` of it with online data (RLPD's symmetric sampling).

From pixels (DrQ, ``policy.encoder: cnn``): the buffer keeps uint8 frames; each sampled
batch's ``obs`` and ``next_obs`` images are randomly shifted (``algo.augment``), one shared
CNN encoder (a submodule of the actor, so weight pushes carry it) turns them into features,
the critic loss trains it (it is in the critic optimizer), and the actor loss reads the
features detached (its optimizer holds the trunk and heads only), as DrQ-v2 does. The
target critics read the online encoder's features of ``next_obs``; there is no target
encoder. Offline data and IQL are flat-layout only.
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
from ._offpolicy_actor import SquashedGaussianActor
from ._offpolicy_config import OffPolicyConfig
from ._offpolicy_iql import IQLValue
from ._offpolicy_obs import NEXT_OBS_RECORD, ObsLayout, transitions
from ._offpolicy_optim import adam, polyak_pairs, polyak_step
from ._reward_scale import reward_transform, scale_rewards

__all__ = ["NEXT_OBS_RECORD", "OffPolicyLearner", "transitions"]


class OffPolicyLearner:
    """Actor, critics (and target critics unless CrossQ), temperature, optimizers, replay
    buffer; RLPD's LayerNorm ensemble, IQL's value network, the offline buffer.

    Args:
        config: :class:`OffPolicyConfig`.
        policy_config: the actor's trunk (``hidden_sizes``, ``activation``,
            ``log_std_min``/``log_std_max``).
        obs_spec: the env's observation spec (image keys need ``policy_config.encoder:
            cnn``).
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
        self.layout = ObsLayout.of(policy_config, obs_spec)
        if self.layout.pixels and (config.offline_data or config.name == "iql"):
            raise ValueError(
                f"{config.name}{' with offline data' if config.offline_data else ''} reads flat "
                f"vector observations only; the images {list(self.layout.image_keys)} need "
                "sac, crossq or rlpd without an offline file"
            )
        self.obs_dim = self.layout.features_dim(policy_config)
        self.action_dim = math.prod(tuple(action_spec.shape))
        self.encoder = self.layout.encoder(policy_config, obs_spec)
        self.actor = SquashedGaussianActor(
            self.obs_dim,
            action_spec,
            policy_config.hidden_sizes,
            policy_config.activation,
            policy_config.log_std_min,
            policy_config.log_std_max,
            encoder=self.encoder,
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
        self.actor_opt = adam(self.actor.head_parameters(), config.actor_lr, betas)
        critic_params = list(self.critic.parameters())
        if self.encoder is not None:  # DrQ: the critic loss trains the shared encoder
            critic_params += list(self.encoder.parameters())
        self.critic_opt = adam(critic_params, config.critic_lr, betas)
        self.alpha_opt = adam([self.log_alpha], config.alpha_lr, betas)
        # Fixed for the learner's life: walking the modules on every update costs more
        # than the small networks' arithmetic saves.
        self._critic_params = list(self.critic.parameters())
        self._polyak = None if self.target is None else polyak_pairs(self.target, self.critic)
        self.buffer = ReplayBuffer(config.buffer_size)
        self.offline: ReplayBuffer | None = None
        meta = None
        if config.offline_data:
            data, meta = load_offline_data(
                config.offline_data,
                obs_dim=self.obs_dim,
                action_dim=self.action_dim,
                min_transitions=max(1, config.offline_batch),
            )
            self.offline = ReplayBuffer(int(data["rewards"].shape[0]))
            self.offline.add(data)
        # Applied to sampled batches only: the buffers keep the env's rewards.
        self.reward_scale, self.reward_bias = reward_transform(config, meta)
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
        batch = transitions(traj, self.layout)
        if not self.layout.pixels and batch["obs"].shape[1] != self.obs_dim:
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
        """A batch with rewards already scaled (``reward_scale``, ``reward_bias``)."""
        c = self.config
        if offline_only:
            assert self.offline is not None
            batch = self.offline.sample(c.batch_size, self.generator)
        elif self.offline is None:
            batch = self.buffer.sample(c.batch_size, self.generator)
        else:
            batch = sample_mixed(
                self.offline,
                self.buffer,
                c.batch_size,
                ratio=c.offline_batch / c.batch_size,
                generator=self.generator,
            )
        return scale_rewards(batch, self.reward_scale, self.reward_bias)

    def _features(self, b: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z [B, F], z_next [B, F])``: the flat obs themselves, or (pixels) the shared
        encoder's features of the augmented images, ``z`` with gradient to the encoder and
        ``z_next`` without."""
        obs = self.layout.from_batch(b, "obs")
        nxt = self.layout.from_batch(b, NEXT_OBS_RECORD)
        if self.encoder is None:
            return obs, nxt
        pad = self.config.shift_pad
        z = self.encoder(self.layout.augment(obs, pad, self.generator))
        with torch.no_grad():
            z_next = self.encoder(self.layout.augment(nxt, pad, self.generator))
        return z, z_next

    def _critic_step(
        self, b: Mapping[str, torch.Tensor], z: torch.Tensor, z_next: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """One critic update on features ``z`` / ``z_next`` ``[B, F]`` of ``b``'s obs."""
        alpha = self.alpha
        if self.config.name == "rlpd":
            assert self.target is not None
            with torch.no_grad():
                next_a, next_logp = self.actor.sample(z_next)
                target, _ = rlpd_critic_target(
                    b["rewards"],
                    b["terminated"],
                    self.target(z_next, next_a),
                    next_logp if self.config.backup_entropy else None,
                    gamma=self.config.gamma,
                    alpha=alpha,
                    subset_size=self.config.subset_size,
                    generator=self.generator,
                )
            loss, metrics = sac_critic_loss(self.critic(z, b["actions"]), target)
        elif self.target is not None:
            with torch.no_grad():
                next_a, next_logp = self.actor.sample(z_next)
                target = sac_critic_target(
                    b["rewards"],
                    b["terminated"],
                    self.target(z_next, next_a),
                    next_logp,
                    gamma=self.config.gamma,
                    alpha=alpha,
                )
            loss, metrics = sac_critic_loss(self.critic(z, b["actions"]), target)
        else:
            with torch.no_grad():
                next_a, next_logp = self.actor.sample(z_next)
            self.critic.train()
            loss, metrics = crossq_critic_loss(
                self.critic,
                z,
                b["actions"],
                b["rewards"],
                z_next,
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

    def _actor_step(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """One actor (and temperature) update on detached features ``[B, F]``."""
        # CrossQ evaluates the actor's actions with the critic's running statistics.
        for p in self._critic_params:  # no weight gradients for the critics here
            p.requires_grad_(False)
        if self.target is None:
            self.critic.eval()
        try:
            action, logp = self.actor.sample(features)
            # RLPD's actor follows the ensemble mean; SAC / CrossQ the minimum.
            actor_loss = rlpd_actor_loss if self.config.name == "rlpd" else sac_actor_loss
            loss, metrics = actor_loss(self.critic(features, action), logp, self.alpha)
        finally:
            for p in self._critic_params:
                p.requires_grad_(True)
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
        z, z_next = self._features(b)
        metrics = self._critic_step(b, z, z_next)
        if self.updates % self.config.policy_delay == 0:
            metrics.update(self._actor_step(z.detach()))
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
        # Metrics stay tensors until the end: one conversion per key, not per update.
        values: dict[str, list[torch.Tensor]] = {}
        for _ in range(num_updates):
            metrics = self._step(self._sample(offline_only))
            if self._polyak is not None:
                polyak_step(self._polyak, self.config.tau)
            self.updates += 1
            for k, v in metrics.items():
                values.setdefault(k, []).append(torch.as_tensor(v).detach().float())
        out = {f"train/{k}": float(torch.stack(v).mean()) for k, v in values.items()}
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
