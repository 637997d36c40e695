"""Policy-gradient updates of a causal LM from scored rollouts (no Ray): the advantage
estimator, policy loss and KL estimator are the ``rlinf.algos`` registry entries that the
config names (GRPO, DAPO, PPO, REINFORCE++, RLOO, Dr.GRPO, ... or a plugin's)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rlinf.algos import (
    PolicyLossInputs,
    dynamic_sampling_filter,
    kl_loss,
    overlong_reward_penalty,
    value_loss,
)

from .._algo_registry import import_plugins
from ..train import TrainingConfig, build_backend, from_rank0, sum_metrics
from ._actor_offload import ActorOffload
from ._advantages import group_size_of, token_advantages
from ._update_steps import (
    _critic_values,
    _loss_metrics,
    _micro_batches,
    _response_logprobs,
    _trim,
)
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
        training: :class:`~rlinf.models.train.TrainingConfig` of the policy and the critic
            (default: the one-process ``torch`` backend).

    Data parallel (``training.backend="fsdp2"`` over ``W`` ranks): every rank gets the
    same global batch and seed, runs the gradient-free passes and the advantages on it,
    and draws the same mini-batches; each rank trains on its
    :func:`~rlinf.models.train.token_balanced_split` share of every mini-batch (balanced
    by tokens), each micro-batch's loss weighted by its tokens (or sequences) over the
    whole mini-batch's, so the summed gradient and the step are the one-rank ones and the
    metrics are summed over ranks.
    """

    def __init__(
        self,
        model: nn.Module,
        config: LLMUpdaterConfig,
        *,
        ref_model: nn.Module | None = None,
        critic: nn.Module | None = None,
        total_updates: int = 1,
        training: TrainingConfig | None = None,
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
        training = training or TrainingConfig()
        self.config = config
        self.ref_model = ref_model if config.uses_reference else None
        self.total_updates = total_updates
        self.num_updates = 0

        def adamw(lr: float) -> Callable[[Any], torch.optim.Optimizer]:
            return lambda params: torch.optim.AdamW(
                params, lr=lr, betas=config.adam_betas, weight_decay=config.weight_decay
            )

        self.backend = build_backend(training, model, adamw(config.lr))
        self.model = self.backend.model
        self.optimizer = self.backend.optimizer
        self.critic = None
        self.critic_backend = None
        self.critic_optimizer = None
        if config.uses_critic:
            self.critic_backend = build_backend(training, critic, adamw(config.critic_lr))
            self.critic = self.critic_backend.model
            self.critic_optimizer = self.critic_backend.optimizer
        self.loss_config = config.ppo_loss_config
        first = next(self.model.parameters())
        self.device = getattr(first, "_local_tensor", first).device
        # training.offload="phase": each model on the device only for its own phases.
        self.phases = ActorOffload(
            training.offload, self.backend, self.critic_backend, self.ref_model, self.device
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

    def update(
        self,
        batch: Any,
        rewards: torch.Tensor,
        select: torch.Tensor | None = None,
        on_step: Callable[[], None] | None = None,
    ) -> dict[str, float]:
        """One update from a :class:`~rlinf.models.llm.RolloutBatch` and its rewards.

        Args:
            batch: ``B`` responses, ``n`` consecutive samples per prompt.
            rewards: ``[B]`` scalar reward per response.
            select: ``[B]`` bool rows to train on (dynamic sampling with refill; ``None``:
                all); the others still count in ``reward_mean`` and ``dropped_groups``.
            on_step: runs before the gradient-free passes and before every mini-batch
                step (where slots lent by ``scheduler.dynamic`` take effect).

        Returns:
            ``train/*`` float metrics: ``loss``, ``pg_loss``, ``kl``, ``entropy``,
            ``clip_frac``, ``approx_kl``, ``grad_norm``, ``logprob_mismatch`` (mean
            ``|log pi_train - log pi_rollout|`` before the update), ``mismatch_kl``, ``lr``,
            ``advantage_abs_mean``, ``kept_responses``, ``dropped_groups``, and for PPO
            ``vf_loss``, ``value_mean``; on CUDA ``memory/<phase>_peak_gib`` of each phase
            (:attr:`phases`, which with ``training.offload="phase"`` also onloads each
            model for its own phases; the caller offloads them after).
        """
        cfg = self.config
        device = self.device
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
        if select is not None:
            select = torch.as_tensor(select, dtype=torch.bool).reshape(-1)
            if select.shape != keep.shape:
                raise ValueError(f"select has {select.shape[0]} rows for {keep.shape[0]} responses")
            keep = keep & select
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
        step_hook = on_step or (lambda: None)
        step_hook()
        with torch.no_grad():
            if self.ref_model is not None:
                with self.phases.phase("reference", out):
                    t["ref_logp"] = self._logprobs(self.ref_model, t, prompt_length)
            with self.phases.phase("actor_logprob", out):
                if not reuse:
                    t["old_logp"] = self._logprobs(self.model, t, prompt_length)
            if self.critic is not None:
                with self.phases.phase("critic", out):
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
        with self.phases.phase("actor_update", out):
            for _ in range(cfg.epochs):
                order = (
                    from_rank0(torch.randperm(n, device=device)) if steps_per_batch > 1 else None
                )
                for start in range(0, n, mini):
                    rows = (
                        order[start : start + mini]
                        if order is not None
                        else torch.arange(start, min(n, start + mini), device=device)
                    )
                    step_hook()
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
        self.backend.zero_grad()
        if self.critic_backend is not None:
            self.critic_backend.zero_grad()
        sums: dict[str, float] = {}
        for mrows, real in _micro_batches(
            t["attention_mask"],
            rows,
            cfg.micro_batch_size,
            self.backend.world_size,
            self.backend.rank,
        ):
            mask = t["mask"][mrows]
            # Gradient accumulation: weight each micro-batch's mean by its share of the
            # mini-batch's tokens (token-mean) or sequences (sequence modes), so the sum is
            # the loss of the whole mini-batch (over all ranks). A padding micro-batch
            # (real=False) only keeps the ranks' collectives in step: weight 0.
            weight = (float(mask.sum()) if token_mean else float(mrows.shape[0])) / total
            weight = weight if real else 0.0
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
                self.backend.backward(loss * weight)
            if self.critic is not None:
                values = _critic_values(self.critic, ids, am, p)
                vf, _ = value_loss(
                    values,
                    t["returns"][mrows, :r],
                    mask,
                    old_values=t["old_values"][mrows, :r] if cfg.value_clip else None,
                    clip=cfg.value_clip,
                )
                self.critic_backend.backward(cfg.vf_coef * vf * weight)
                parts["vf_loss"] = float(vf.detach())
                parts["value_mean"] = float(values.detach()[mask].mean())
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v * weight
        sums = sum_metrics(sums)
        if train_policy:
            sums["grad_norm"] = self.backend.clip_grad_norm(cfg.max_grad_norm)
            self.backend.step()
        if self.critic_backend is not None:
            sums["critic_grad_norm"] = self.critic_backend.clip_grad_norm(cfg.max_grad_norm)
            self.critic_backend.step()
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

    def save_checkpoint(self, path: str | Path) -> None:
        """Policy (``path/policy``) and critic (``path/critic``) with their optimizers and
        the update counter, as sharded ``torch.distributed.checkpoint`` directories (every
        rank calls it); any number of ranks can :meth:`load_checkpoint` them."""
        self.backend.save(Path(path) / "policy", extra={"num_updates": self.num_updates})
        if self.critic_backend is not None:
            self.critic_backend.save(Path(path) / "critic")

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore :meth:`save_checkpoint`'s directories, resharded to these ranks."""
        extra = self.backend.load(Path(path) / "policy", extra={"num_updates": 0})
        if self.critic_backend is not None:
            self.critic_backend.load(Path(path) / "critic")
        self.num_updates = int(extra["num_updates"])

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.optimizer.load_state_dict(state["optimizer"])
        if self.critic_optimizer is not None:
            self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.num_updates = int(state["num_updates"])
