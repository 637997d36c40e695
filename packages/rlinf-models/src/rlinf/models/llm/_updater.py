"""Policy-gradient updates of a causal LM from scored rollouts (no Ray): the advantage
estimator, policy loss and KL estimator are the ``rlinf.algos`` registry entries that the
config names (GRPO, DAPO, PPO, REINFORCE++, RLOO, Dr.GRPO, ... or a plugin's)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from rlinf.algos import (
    PolicyLossInputs,
    PPOLossConfig,
    dynamic_sampling_filter,
    kl_loss,
    overlong_reward_penalty,
    value_loss,
)

from .._algo_registry import import_plugins
from ._advantages import group_size_of, token_advantages
from ._updater_config import LLMUpdaterConfig

__all__ = ["LLMUpdater"]


class LLMUpdater:
    """Owns the optimizer(s) and runs one update per batch of scored responses.

    One :meth:`update`: reward shaping (DAPO overlong penalty), dynamic sampling (drop
    groups without reward spread), old / reference / value passes without gradient, token
    advantages (:func:`token_advantages`), then ``epochs`` x mini-batches optimizer steps,
    each accumulating gradients over micro-batches. The model stays in ``eval()`` mode:
    dropout would make the trained log-probs differ from the rollout's for no benefit.

    Args:
        model: the causal LM to train (in place); ``model(input_ids, attention_mask)``.
        config: :class:`LLMUpdaterConfig`.
        ref_model: frozen reference policy; required when ``config.kl_coef > 0``.
        critic: :class:`~rlinf.models.llm.ValueModel`; required for PPO.
        total_updates: updates the run will make (learning-rate schedule).
    """

    def __init__(
        self,
        model: nn.Module,
        config: LLMUpdaterConfig,
        *,
        ref_model: nn.Module | None = None,
        critic: nn.Module | None = None,
        total_updates: int = 1,
    ) -> None:
        if total_updates < 1:
            raise ValueError(f"total_updates must be >= 1, got {total_updates}")
        # In a worker process the config arrives pickled (its checks did not run here), so
        # the plugins' registrations must be made again before any lookup.
        import_plugins(config.plugins)
        self.estimator = config.advantage_estimator
        self.policy_loss = config.loss
        if config.uses_reference and ref_model is None:
            raise ValueError("kl_coef > 0 needs a ref_model")
        if config.uses_critic and critic is None:
            raise ValueError(f"algorithm {config.name!r} needs a critic (ValueModel)")
        self.model = model
        self.config = config
        self.ref_model = ref_model if config.uses_reference else None
        self.critic = critic if config.uses_critic else None
        self.total_updates = total_updates
        self.num_updates = 0
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=config.lr, betas=config.adam_betas, weight_decay=config.weight_decay
        )
        self.critic_optimizer = None
        if self.critic is not None:
            self.critic_optimizer = torch.optim.AdamW(
                [p for p in self.critic.parameters() if p.requires_grad],
                lr=config.critic_lr,
                betas=config.adam_betas,
                weight_decay=config.weight_decay,
            )
        self.loss_config = PPOLossConfig(
            clip_low=config.clip_low,
            clip_high=config.clip_high,
            dual_clip=config.dual_clip,
            agg_mode=config.loss_agg_mode,
            tis_cap=config.tis_cap,
            entropy_coef=config.entropy_coef,
        )

    def lr_at(self, update: int, base: float | None = None) -> float:
        """Learning rate of the ``update``-th update (0-based): warm-up, then the schedule."""
        cfg = self.config
        lr = cfg.lr if base is None else base
        if cfg.lr_warmup_steps and update < cfg.lr_warmup_steps:
            return lr * (update + 1) / cfg.lr_warmup_steps
        span = max(1, self.total_updates - cfg.lr_warmup_steps)
        progress = min(1.0, (update - cfg.lr_warmup_steps) / span)
        if cfg.lr_schedule == "linear":
            return lr * (1.0 - progress)
        if cfg.lr_schedule == "cosine":
            return lr * 0.5 * (1.0 + math.cos(math.pi * progress))
        return lr

    def update(self, batch: Any, rewards: torch.Tensor) -> dict[str, float]:
        """One update from a :class:`~rlinf.models.llm.RolloutBatch` and its rewards.

        Args:
            batch: ``B`` responses, ``n`` consecutive samples per prompt.
            rewards: ``[B]`` scalar reward per response.

        Returns:
            ``train/*`` float metrics: ``loss``, ``pg_loss``, ``kl``, ``entropy``,
            ``clip_frac``, ``approx_kl``, ``grad_norm``, ``logprob_mismatch`` (mean
            ``|log pi_train - log pi_rollout|`` before the update), ``mismatch_kl``, ``lr``,
            ``advantage_abs_mean``, ``kept_responses``, ``dropped_groups``, and for PPO
            ``vf_loss``, ``value_mean``.
        """
        cfg = self.config
        device = next(self.model.parameters()).device
        rewards = torch.as_tensor(rewards, dtype=torch.float32).reshape(-1)
        if rewards.shape[0] != batch.input_ids.shape[0]:
            raise ValueError(
                f"got {rewards.shape[0]} rewards for {batch.input_ids.shape[0]} responses"
            )
        group = group_size_of(batch.prompt_index)
        if cfg.group_advantages and group < 2:
            raise ValueError(f"{cfg.name} needs >= 2 samples per prompt, got {group}")
        if cfg.overlong_buffer:
            rewards = rewards + overlong_reward_penalty(
                batch.response_lengths,
                max_length=cfg.max_response_length,
                buffer_length=cfg.overlong_buffer,
                penalty_factor=cfg.overlong_penalty,
            )
        out: dict[str, float] = {"train/reward_mean": float(rewards.mean())}
        keep = torch.ones_like(rewards, dtype=torch.bool)
        dropped = 0
        if cfg.dynamic_sampling and cfg.group_advantages:
            keep, dropped = dynamic_sampling_filter(rewards, group)
        out["train/dropped_groups"] = float(dropped)
        out["train/kept_responses"] = float(keep.sum())
        lr = self.lr_at(self.num_updates)
        out["train/lr"] = lr
        self.num_updates += 1
        if not bool(keep.any()):
            # Nothing carries signal: an update would only apply weight decay and momentum.
            return out
        idx = keep.nonzero().squeeze(1)
        t = {
            "input_ids": batch.input_ids[idx].to(device),
            "attention_mask": batch.attention_mask[idx].to(device),
            "mask": batch.response_mask[idx].to(device).bool(),
            "rollout_logp": batch.rollout_logprobs[idx].to(device).float(),
        }
        rewards = rewards[idx].to(device)
        prompt_length = int(batch.prompt_length)
        n = t["input_ids"].shape[0]
        mini = cfg.mini_batch_size or n
        steps_per_batch = cfg.epochs * math.ceil(n / mini)
        kl_in_reward = cfg.kl_in_reward and self.ref_model is not None
        # Strictly on-policy (one optimizer step) with no KL in the reward: the old policy is
        # the current one, so its log-probs come from the training forward pass itself.
        reuse = steps_per_batch == 1 and not kl_in_reward
        with torch.no_grad():
            if not reuse:
                t["old_logp"] = self._logprobs(self.model, t, prompt_length)
            if self.ref_model is not None:
                t["ref_logp"] = self._logprobs(self.ref_model, t, prompt_length)
            if self.critic is not None:
                t["old_values"] = self._values(t, prompt_length)
        adv, returns = token_advantages(
            self.estimator,
            rewards,
            t["mask"],
            group,
            logp=t.get("old_logp"),
            ref_logp=t.get("ref_logp") if kl_in_reward else None,
            kl_coef=cfg.kl_coef,
            kl_estimator=cfg.kl_estimator,
            values=t.get("old_values"),
            gamma=cfg.gamma,
            lam=cfg.lam,
            whiten=cfg.whiten_advantages,
        )
        t["adv"] = adv
        if returns is not None:
            t["returns"] = returns
        out["train/advantage_abs_mean"] = float(adv.abs()[t["mask"]].mean())
        for group_pg in self.optimizer.param_groups:
            group_pg["lr"] = lr
        if self.critic_optimizer is not None:
            for group_pg in self.critic_optimizer.param_groups:
                group_pg["lr"] = self.lr_at(self.num_updates - 1, cfg.critic_lr)
        sums: dict[str, float] = {}
        count = 0
        for _ in range(cfg.epochs):
            order = torch.randperm(n, device=device) if steps_per_batch > 1 else None
            for start in range(0, n, mini):
                rows = (
                    order[start : start + mini]
                    if order is not None
                    else torch.arange(start, min(n, start + mini), device=device)
                )
                metrics = self._step(t, rows, prompt_length, reuse)
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
        out.update({f"train/{k}": v / count for k, v in sums.items()})
        if "old_logp" in t:
            # Recomputed before any step: the pure trainer-vs-rollout-engine mismatch.
            diff = (t["old_logp"] - t["rollout_logp"]).abs()[t["mask"]]
            out["train/logprob_mismatch"] = float(diff.mean())
        return out

    def _step(
        self, t: Mapping[str, torch.Tensor], rows: torch.Tensor, prompt_length: int, reuse: bool
    ) -> dict[str, float]:
        """One optimizer step on mini-batch ``rows``, accumulating over micro-batches."""
        cfg = self.config
        train_policy = self.num_updates > cfg.critic_warmup_updates or self.critic is None
        token_mean = cfg.loss_agg_mode == "token-mean"
        total = float(t["mask"][rows].sum()) if token_mean else float(rows.shape[0])
        self.optimizer.zero_grad(set_to_none=True)
        if self.critic_optimizer is not None:
            self.critic_optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        for mrows in rows.split(cfg.micro_batch_size or rows.shape[0]):
            mask = t["mask"][mrows]
            # Gradient accumulation: weight each micro-batch's mean by its share of the
            # mini-batch's tokens (token-mean) or sequences (sequence modes), so the sum is
            # the loss of the whole mini-batch.
            weight = (float(mask.sum()) if token_mean else float(mrows.shape[0])) / total
            ids, am, p, r = _trim(t["input_ids"][mrows], t["attention_mask"][mrows], prompt_length)
            mask = mask[:, :r]
            logp, entropy = _response_logprobs(
                self.model, ids, am, p, cfg.temperature, cfg.logprob_chunk_size, True
            )
            old = logp.detach() if reuse else t["old_logp"][mrows, :r]
            pg, m = self.policy_loss(
                PolicyLossInputs(
                    logp,
                    old,
                    t["adv"][mrows, :r],
                    mask,
                    rollout_log_probs=t["rollout_logp"][mrows, :r],
                    entropy=entropy,
                ),
                self.loss_config,
            )
            loss = pg
            parts = _loss_metrics(m, reuse)
            if "ref_logp" in t:
                kl, _ = kl_loss(
                    logp,
                    t["ref_logp"][mrows, :r],
                    mask,
                    kind=cfg.kl_estimator,
                    agg_mode=cfg.loss_agg_mode,
                )
                parts["kl"] = float(kl.detach())
                if not cfg.kl_in_reward:
                    loss = loss + cfg.kl_coef * kl
            parts["loss"] = float(loss.detach())
            if train_policy:
                (loss * weight).backward()
            if self.critic is not None:
                values = _critic_values(self.critic, ids, am, p)
                vf, _ = value_loss(
                    values,
                    t["returns"][mrows, :r],
                    mask,
                    old_values=t["old_values"][mrows, :r] if cfg.value_clip else None,
                    clip=cfg.value_clip,
                )
                (cfg.vf_coef * vf * weight).backward()
                parts["vf_loss"] = float(vf.detach())
                parts["value_mean"] = float(values.detach()[mask].mean())
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v * weight
        limit = cfg.max_grad_norm if cfg.max_grad_norm is not None else float("inf")
        if train_policy:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            sums["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, limit))
            self.optimizer.step()
        if self.critic_optimizer is not None:
            params = [p for g in self.critic_optimizer.param_groups for p in g["params"]]
            sums["critic_grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, limit))
            self.critic_optimizer.step()
        return sums

    def _logprobs(
        self, model: nn.Module, t: Mapping[str, torch.Tensor], prompt_length: int
    ) -> torch.Tensor:
        """``[N, R]`` log-probs of the batch's responses under ``model`` (no gradient)."""
        logp, _ = _response_logprobs(
            model,
            t["input_ids"],
            t["attention_mask"],
            prompt_length,
            self.config.temperature,
            self.config.logprob_chunk_size,
            False,
        )
        return logp.float()

    def _values(self, t: Mapping[str, torch.Tensor], prompt_length: int) -> torch.Tensor:
        """``[N, R]`` critic values of the response positions (no gradient)."""
        return _critic_values(
            self.critic, t["input_ids"], t["attention_mask"], prompt_length
        ).float()

    def state_dict(self) -> dict[str, Any]:
        """Optimizer state(s) and the update counter (models are saved separately)."""
        state: dict[str, Any] = {
            "optimizer": self.optimizer.state_dict(),
            "num_updates": self.num_updates,
        }
        if self.critic_optimizer is not None:
            state["critic_optimizer"] = self.critic_optimizer.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.optimizer.load_state_dict(state["optimizer"])
        if self.critic_optimizer is not None:
            self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.num_updates = int(state["num_updates"])


# Metrics of the loss reported under these names when the loss returns them (every
# built-in does; a plugin's loss needs only ``pg_loss``).
_LOSS_METRICS = {"entropy": "entropy", "approx_kl": "approx_kl", "mismatch_kl": "tis/mismatch_kl"}


def _loss_metrics(m: Mapping[str, torch.Tensor], reuse: bool) -> dict[str, float]:
    """Floats of the policy loss's metrics (``pg_loss`` required)."""
    if "pg_loss" not in m:
        raise ValueError(f"a policy loss must return a 'pg_loss' metric, got {sorted(m)}")
    parts = {"pg_loss": float(m["pg_loss"])}
    parts.update({k: float(m[src]) for k, src in _LOSS_METRICS.items() if src in m})
    if "clip_frac_low" in m:
        parts["clip_frac"] = float(m["clip_frac_low"] + m["clip_frac_high"])
    if reuse and "tis/mismatch_abs" in m:
        parts["logprob_mismatch"] = float(m["tis/mismatch_abs"])
    return parts


def _trim(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_length: int
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Drop columns that are padding in every row: leading prompt padding and trailing
    response padding. Returns ``(input_ids, attention_mask, new prompt length, new response
    length)``; the model sees the same tokens at the same relative positions."""
    am = attention_mask.bool()
    prompt_pad = (~am[:, :prompt_length]).sum(dim=1).min()
    resp = am[:, prompt_length:]
    width = int(resp.any(dim=0).nonzero().max()) + 1 if bool(resp.any()) else 1
    lead = int(prompt_pad)
    end = prompt_length + width
    return input_ids[:, lead:end], attention_mask[:, lead:end], prompt_length - lead, width


def _response_logprobs(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_length: int,
    temperature: float,
    chunk_size: int,
    with_entropy: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    # Imported here: rlinf.models.llm's __init__ imports this module before the log-prob
    # helper's own line, and the helper never needs to be loaded to build an updater.
    from ._logprobs import response_logprobs

    return response_logprobs(
        model,
        input_ids,
        attention_mask,
        prompt_length,
        temperature=temperature,
        chunk_size=chunk_size,
        with_entropy=with_entropy,
    )


def _critic_values(
    critic: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_length: int
) -> torch.Tensor:
    """``[B, R]`` values of the response positions."""
    return critic(input_ids, attention_mask, prompt_length)
