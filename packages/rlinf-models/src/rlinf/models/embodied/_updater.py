"""PPO / GRPO updates of an actor-critic from on-policy trajectories (plain torch, no Ray)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from rlinf.algos import (
    AsyncPPOConfig,
    PPOLossConfig,
    decoupled_ppo_loss,
    discounted_returns,
    gae_advantages,
    grpo_advantages,
    ppo_policy_loss,
    value_loss,
)
from rlinf.core import Trajectory

from .._actor_critic import ActorCritic
from ._batch import to_tensors
from ._config import UpdaterConfig

__all__ = ["PolicyUpdater"]


class PolicyUpdater:
    """Owns the optimizer of ``policy`` and runs one PPO / GRPO update per batch.

    Each :meth:`update` call: optional observation-normalizer update with the batch, then
    advantages (GAE with truncation bootstrapping for PPO, group-normalized returns for
    GRPO), then ``epochs`` x ``minibatches`` clipped-policy-gradient steps with gradient-norm
    clipping. The learning rate of update ``u`` (0-based) is ``lr * (1 - u / total_updates)``
    under the linear schedule.

    Args:
        policy: the :class:`~rlinf.models.ActorCritic` to train (in place).
        config: :class:`UpdaterConfig`.
        total_updates: number of updates the run will make (for the linear schedule).
    """

    def __init__(self, policy: ActorCritic, config: UpdaterConfig, total_updates: int) -> None:
        if total_updates < 1:
            raise ValueError(f"total_updates must be >= 1, got {total_updates}")
        self.policy = policy
        self.config = config
        self.total_updates = total_updates
        self.num_updates = 0
        # fused: one kernel per parameter for the whole Adam step. torch picks it on no
        # device by default; on the CPU it made a 256 x 256 MLP update 5% faster than the
        # foreach kernels (which were 15% faster than the default per-parameter loop).
        self.optimizer = torch.optim.Adam(
            policy.parameters(), lr=config.lr, eps=config.adam_eps, fused=True
        )
        self.loss_config = PPOLossConfig(
            clip_low=config.clip_low,
            clip_high=config.clip_high,
            entropy_coef=config.entropy_coef,
        )
        self.async_config = AsyncPPOConfig(ppo=self.loss_config)

    def lr_at(self, update: int) -> float:
        """Learning rate of the ``update``-th update (0-based)."""
        if self.config.lr_schedule == "constant":
            return self.config.lr
        return self.config.lr * max(0.0, 1.0 - update / self.total_updates)

    def advantages(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(advantages [N, T], returns [N, T])`` of a tensor batch (see ``to_tensors``).

        PPO: :func:`rlinf.algos.gae_advantages` with ``next_values`` = V(final_obs), so a
        truncated episode and the cut at ``T`` bootstrap while a terminated one does not.
        GRPO: returns-to-go (episode ends, truncated or not, stop the sum: there is no
        critic to bootstrap from) normalized per time step within groups of envs by
        :func:`rlinf.algos.grpo_advantages`; ``returns`` are the raw returns-to-go.
        """
        cfg = self.config
        if cfg.algo == "ppo":
            return gae_advantages(
                batch["rewards"],
                batch["values"],
                gamma=cfg.gamma,
                lam=cfg.lam,
                next_values=batch["next_values"],
                terminated=batch["terminated"],
                truncated=batch["truncated"],
            )
        rtg = discounted_returns(
            batch["rewards"],
            gamma=cfg.gamma,
            terminated=batch["terminated"] | batch["truncated"],
        )
        n, t = rtg.shape
        group = n if cfg.group_size == 0 else cfg.group_size
        if n % group:
            raise ValueError(f"GRPO group_size {group} does not divide the {n} envs of the batch")
        if group < 2:
            raise ValueError("GRPO needs at least 2 envs per group")
        # [T, N] flattened keeps each time step's groups contiguous, as grpo_advantages wants.
        adv = grpo_advantages(rtg.t().reshape(-1), group).reshape(t, n).t()
        return adv, rtg

    def update(self, trajectories: Trajectory) -> dict[str, float]:
        """One update from a :class:`rlinf.core.Trajectory` (arrays or tensors) whose records
        hold ``POLICY_RECORDS`` (``log_probs``, ``values``, ``next_values``: ``[N, T]``).

        Returns:
            ``train/*`` metrics (means over minibatches): ``pg_loss``, ``vf_loss``,
            ``entropy``, ``approx_kl``, ``clip_frac``, ``grad_norm``, ``lr``,
            ``explained_variance``, ``advantage_mean``, ``return_mean``.
        """
        cfg = self.config
        device = next(self.policy.parameters()).device
        batch = to_tensors(trajectories, device)
        n, t = batch["rewards"].shape
        flat_obs = {k: v.reshape(n * t, *v.shape[2:]) for k, v in batch["obs"].items()}
        self.policy.update_obs_normalizer(flat_obs)
        adv, ret = self.advantages(batch)
        adv, ret = adv.reshape(-1), ret.reshape(-1)
        actions = batch["actions"].reshape(n * t, *batch["actions"].shape[2:])
        old_logp = batch["log_probs"].reshape(-1).float()
        old_values = batch["values"].reshape(-1).float()
        prox_logp = None
        if cfg.decoupled:
            # The clip's anchor: this update's starting policy (normalizer included).
            with torch.no_grad():
                prox_logp = self.policy.log_prob(flat_obs, actions).reshape(-1).float()
        lr = self.lr_at(self.num_updates)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        sums: dict[str, float] = {}
        count = 0
        for _ in range(cfg.epochs):
            for idx in torch.randperm(n * t, device=device).chunk(cfg.minibatches):
                metrics = self._step(
                    {k: v[idx] for k, v in flat_obs.items()},
                    actions[idx],
                    old_logp[idx],
                    old_values[idx],
                    adv[idx],
                    ret[idx],
                    None if prox_logp is None else prox_logp[idx],
                )
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
        self.num_updates += 1
        out = {f"train/{k}": v / count for k, v in sums.items()}
        var = ret.var()
        out["train/explained_variance"] = float(
            1.0 - (ret - old_values).var() / var if var > 0 else 0.0
        )
        out["train/lr"] = lr
        out["train/advantage_mean"] = float(adv.mean())
        out["train/return_mean"] = float(ret.mean())
        return out

    def _step(
        self,
        obs: dict[str, torch.Tensor],
        actions: torch.Tensor,
        old_logp: torch.Tensor,
        old_values: torch.Tensor,
        adv: torch.Tensor,
        ret: torch.Tensor,
        prox_logp: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """One gradient step on a minibatch of ``B`` samples (all tensors ``[B, ...]``);
        ``prox_logp`` (decoupled objective only) anchors the clip."""
        cfg = self.config
        logp, entropy, value = self.policy.evaluate(obs, actions)
        if cfg.normalize_advantages and adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        # The loss functions are written for [B, T] token layouts: a minibatch is one row.
        if prox_logp is None:
            pg, pg_metrics = ppo_policy_loss(
                logp[None],
                old_logp[None],
                adv[None],
                config=self.loss_config,
                entropy=entropy[None],
            )
        else:
            pg, pg_metrics = decoupled_ppo_loss(
                logp[None], prox_logp[None], old_logp[None], adv[None], config=self.async_config
            )
            pg = pg - cfg.entropy_coef * entropy.mean()
            pg_metrics["entropy"] = entropy.mean().detach()
        loss = pg
        out = {
            "pg_loss": float(pg_metrics["pg_loss"]),
            "entropy": float(pg_metrics["entropy"]),
            "approx_kl": float(pg_metrics["approx_kl"]),
            "clip_frac": float(pg_metrics["clip_frac_low"] + pg_metrics["clip_frac_high"]),
        }
        if prox_logp is not None:
            out["behav_weight_mean"] = float(pg_metrics["behav_weight_mean"])
        if cfg.algo == "ppo":
            vf, _ = value_loss(
                value,
                ret,
                old_values=old_values if cfg.value_clip is not None else None,
                clip=cfg.value_clip,
            )
            loss = loss + cfg.vf_coef * vf
            out["vf_loss"] = float(vf.detach())
        self.optimizer.zero_grad()
        loss.backward()
        # An infinite max norm clips nothing but still reports the norm.
        limit = cfg.max_grad_norm if cfg.max_grad_norm is not None else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), limit)
        self.optimizer.step()
        out["grad_norm"] = float(norm)
        return out

    def state_dict(self) -> dict[str, Any]:
        """Optimizer state and update counter (the policy is saved separately)."""
        return {"optimizer": self.optimizer.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.num_updates = int(state["num_updates"])
