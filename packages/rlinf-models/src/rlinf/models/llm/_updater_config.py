"""Configuration of the LLM policy updater (GRPO, DAPO, PPO, REINFORCE++)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rlinf.algos import AGG_MODES, KL_ESTIMATORS

__all__ = ["ALGORITHMS", "LLMUpdaterConfig"]

ALGORITHMS = ("grpo", "dapo", "ppo", "reinforce_pp")


@dataclass(frozen=True)
class LLMUpdaterConfig:
    """How :class:`~rlinf.models.llm.LLMUpdater` turns scored responses into updates.

    Attributes:
        algorithm: ``"grpo"``: group-normalized outcome advantages, KL as a loss term;
            ``"dapo"``: GRPO advantages with clip-higher, token-mean aggregation, dynamic
            sampling (groups with equal rewards dropped) and the overlong reward penalty;
            ``"ppo"``: a :class:`~rlinf.models.llm.ValueModel` critic, token-level GAE, KL
            as a reward penalty; ``"reinforce_pp"``: REINFORCE++ (returns of per-token
            rewards with the KL penalty folded in, whitened over the whole batch).
        lr: AdamW learning rate of the policy after warm-up.
        weight_decay: AdamW weight decay of the policy (and critic).
        adam_betas: AdamW betas.
        lr_warmup_steps: updates over which the learning rate ramps linearly from
            ``lr / lr_warmup_steps`` to ``lr`` (0: no warm-up).
        lr_schedule: after warm-up, ``"constant"``, ``"linear"`` (to 0 at the last update)
            or ``"cosine"`` (to 0 at the last update).
        epochs: passes over each batch of responses (1: strictly on-policy; the rollout's
            own log-probs then need no recompute pass).
        mini_batch_size: responses per optimizer step (0: the whole batch in one step).
        micro_batch_size: responses per forward/backward pass; gradients of the micro
            batches of a mini batch are accumulated (0: the mini batch at once). Bounds
            activation memory; the update is the same for any value.
        clip_low: PPO ratio lower clip ``1 - clip_low``.
        clip_high: PPO ratio upper clip ``1 + clip_high`` (DAPO clip-higher: 0.28).
        dual_clip: dual-clip constant (> 1) for negative advantages; ``None`` disables it.
        loss_agg_mode: how per-token losses become a scalar (``rlinf.algos.AGG_MODES``):
            ``token-mean`` (DAPO), ``seq-mean-token-sum``, ``seq-mean-token-mean`` (GRPO
            paper), ``seq-mean-token-sum-norm`` (Dr.GRPO).
        scale_by_std: GRPO / DAPO: divide group-centered rewards by the group std
            (False: Dr.GRPO).
        kl_coef: weight of the KL to the reference (the initial policy). 0 disables it and
            no reference model is loaded.
        kl_estimator: ``k1``, ``k2`` or ``k3`` (see ``rlinf.algos.KL_ESTIMATORS``).
        entropy_coef: weight of the entropy bonus (0: entropy is only reported).
        max_grad_norm: global gradient-norm clip; ``None`` disables it (norm still logged).
        temperature: sampling temperature of the rollouts; log-probs are computed on logits
            divided by it so they match the distribution the tokens were drawn from.
        logprob_chunk_size: token positions per chunk of the output projection and
            softmax when computing log-probs (bounds the memory of the logits).
        tis_cap: truncated importance-sampling cap on ``pi_old / pi_rollout`` for the
            train-vs-rollout mismatch; ``None`` only reports the mismatch.
        dynamic_sampling: drop groups whose responses all got the same reward (zero
            advantage, no signal; the dapo preset turns it on).
        overlong_buffer: DAPO soft overlong punishment: responses longer than
            ``max_response_length - overlong_buffer`` get a linear penalty down to
            ``-overlong_penalty`` (0 disables it).
        overlong_penalty: magnitude of the full overlong penalty.
        max_response_length: the generation budget the overlong penalty refers to.
        gamma: discount over response tokens (PPO / REINFORCE++).
        lam: GAE lambda (PPO).
        critic_lr: AdamW learning rate of the critic (PPO).
        vf_coef: weight of the value loss (PPO; the critic has its own optimizer, so this
            only scales its gradient).
        value_clip: clip the new values around the rollout-time values (PPO); ``None``
            disables it.
        critic_warmup_updates: PPO: updates during which only the critic is trained.
    """

    algorithm: Literal["grpo", "dapo", "ppo", "reinforce_pp"] = "grpo"
    lr: float = 1e-5
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    lr_warmup_steps: int = 0
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    epochs: int = 1
    mini_batch_size: int = 0
    micro_batch_size: int = 0
    clip_low: float = 0.2
    clip_high: float = 0.2
    dual_clip: float | None = None
    loss_agg_mode: str = "token-mean"
    scale_by_std: bool = True
    kl_coef: float = 0.0
    kl_estimator: str = "k3"
    entropy_coef: float = 0.0
    max_grad_norm: float | None = 1.0
    temperature: float = 1.0
    logprob_chunk_size: int = 4096
    tis_cap: float | None = None
    dynamic_sampling: bool = False
    overlong_buffer: int = 0
    overlong_penalty: float = 1.0
    max_response_length: int = 0
    gamma: float = 1.0
    lam: float = 0.95
    critic_lr: float = 1e-4
    vf_coef: float = 0.5
    value_clip: float | None = 0.2
    critic_warmup_updates: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "adam_betas", tuple(self.adam_betas))
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        for name in ("lr", "critic_lr", "temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("weight_decay", "kl_coef", "entropy_coef", "vf_coef", "overlong_penalty"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in (
            "lr_warmup_steps",
            "mini_batch_size",
            "micro_batch_size",
            "overlong_buffer",
            "max_response_length",
            "critic_warmup_updates",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr_schedule not in ("constant", "linear", "cosine"):
            raise ValueError(
                f"lr_schedule must be 'constant', 'linear' or 'cosine', got {self.lr_schedule!r}"
            )
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.logprob_chunk_size < 1:
            raise ValueError(f"logprob_chunk_size must be >= 1, got {self.logprob_chunk_size}")
        if not 0.0 <= self.clip_low < 1.0 or self.clip_high < 0.0:
            raise ValueError(
                f"need 0 <= clip_low < 1 and clip_high >= 0, got {self.clip_low}, {self.clip_high}"
            )
        if self.loss_agg_mode not in AGG_MODES:
            raise ValueError(
                f"loss_agg_mode must be one of {AGG_MODES}, got {self.loss_agg_mode!r}"
            )
        if self.kl_estimator not in KL_ESTIMATORS:
            raise ValueError(
                f"kl_estimator must be one of {KL_ESTIMATORS.names()}, got {self.kl_estimator!r}"
            )
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
        if self.value_clip is not None and self.value_clip <= 0:
            raise ValueError(f"value_clip must be > 0 or None, got {self.value_clip}")
        if self.tis_cap is not None and self.tis_cap <= 0:
            raise ValueError(f"tis_cap must be > 0 or None, got {self.tis_cap}")
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.lam <= 1.0:
            raise ValueError("gamma and lam must lie in [0, 1]")
        if self.overlong_buffer and not 0 < self.overlong_buffer <= self.max_response_length:
            raise ValueError(
                "overlong_buffer needs max_response_length >= overlong_buffer > 0, got "
                f"overlong_buffer={self.overlong_buffer}, "
                f"max_response_length={self.max_response_length}"
            )
        if (
            self.mini_batch_size
            and self.micro_batch_size
            and self.mini_batch_size % self.micro_batch_size
        ):
            raise ValueError(
                f"micro_batch_size {self.micro_batch_size} must divide mini_batch_size "
                f"{self.mini_batch_size}"
            )

    @property
    def uses_critic(self) -> bool:
        """Whether the algorithm trains a value model (PPO)."""
        return self.algorithm == "ppo"

    @property
    def uses_reference(self) -> bool:
        """Whether a reference model is needed (``kl_coef > 0``)."""
        return self.kl_coef > 0

    @property
    def group_advantages(self) -> bool:
        """Whether advantages are group-relative (GRPO / DAPO: needs ``n >= 2``)."""
        return self.algorithm in ("grpo", "dapo")
