"""Configuration of the LLM policy updater (GRPO, DAPO, PPO, REINFORCE++, RLOO, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from rlinf.algos import (
    ADVANTAGE_ESTIMATORS,
    AGG_MODES,
    KL_ESTIMATORS,
    POLICY_LOSSES,
    AdvantageEstimator,
    PolicyLoss,
    PPOLossConfig,
)

from .._algo_registry import check_name, import_plugins
from ._refill import check_max_refill_rounds

__all__ = ["ALGORITHMS", "OFF_POLICY_CORRECTIONS", "LLMUpdaterConfig"]

OFF_POLICY_CORRECTIONS: Mapping[str, tuple[str | None, str]] = {
    "none": (None, "truncate"),
    "tis": ("ppo", "truncate"),
    "mis": ("ppo", "mask"),
    "decoupled": ("decoupled_ppo", "truncate"),
}
"""``algo.off_policy_correction`` -> (the policy loss it selects, ``None``: ``policy_loss``
as set; what happens to a token whose importance weight exceeds ``is_cap``)."""

ALGORITHMS: Mapping[str, tuple[str, bool]] = {"ppo": ("gae", True), "dapo": ("grpo", False)}
"""Algorithm names that are not advantage-estimator names: name -> (estimator, whiten the
advantages over the batch's valid tokens). Every other ``name`` is an estimator's."""


@dataclass(frozen=True)
class LLMUpdaterConfig:
    """How :class:`~rlinf.models.llm.LLMUpdater` turns scored responses into updates.

    Attributes:
        name: the algorithm: a name in ``rlinf.algos.ADVANTAGE_ESTIMATORS`` or in
            :data:`ALGORITHMS`. ``"grpo"``: group-normalized outcome advantages, KL as a
            loss term; ``"drgrpo"``: group-centered only (Dr.GRPO); ``"rloo"``:
            leave-one-out baseline; ``"reinforce_pp_baseline"``: group-centered, whitened
            over the batch; ``"dapo"``: GRPO advantages (DAPO's other parts are
            ``clip_high``, ``loss_agg_mode``, ``dynamic_sampling`` and ``overlong_*``);
            ``"ppo"``: a :class:`~rlinf.models.llm.ValueModel` critic, token-level GAE
            whitened over the batch, KL as a reward penalty (``"gae"``: the same without
            the whitening); ``"reinforce_pp"``: REINFORCE++ (returns of per-token rewards
            with the KL penalty folded in, whitened over the whole batch). Estimators that
            read per-step rewards get the KL penalty in them; the others get KL as a loss
            term. A user's estimator is selected the same way once its module is listed in
            ``plugins``. (Renamed from ``algorithm``.)
        policy_loss: a name in ``rlinf.algos.POLICY_LOSSES``: ``"ppo"`` (clipped surrogate
            anchored at the old log-probs) or ``"decoupled_ppo"`` (clip at the recomputed
            log-probs, importance weight ``pi_old / pi_rollout``), or a plugin's.
        plugins: modules imported before the names above are checked (when the config is
            built) and again when the updater is built in a worker process; they register
            estimators and losses of their own (``rlinf.algos.advantage_estimator``, ...).
            Each must be importable in the driver and in every worker (installed, or on
            ``PYTHONPATH``).
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
        kl_coef: weight of the KL to the reference (the initial policy). 0 disables it and
            no reference model is loaded.
        kl_estimator: ``k1``, ``k2``, ``k3``, ``abs`` or a plugin's (see
            ``rlinf.algos.KL_ESTIMATORS``).
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
        max_refill_rounds: with ``dynamic_sampling``, DAPO's refill: every flat group is
            replaced by a new prompt from the data stream as soon as it is scored, so the
            step trains ``runner.prompts_per_step`` informative groups; a replacement's
            own flat groups are replaced again, up to this many rounds deep, after which
            the step trains a short batch (``train/dynamic_sampling_short`` groups
            fewer). 0: flat groups are only dropped (a smaller batch, no extra prompts).
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
        off_policy_correction: how the loss corrects for samples generated by older weights
            (``runner.max_staleness > 0``) or by an engine that computes other
            probabilities: ``"none"`` (``policy_loss`` and ``tis_cap`` as set),
            ``"tis"`` (PPO, each token weighted by ``min(pi_old / pi_rollout, is_cap)``),
            ``"mis"`` (PPO, tokens whose weight exceeds ``is_cap`` leave the loss, the
            others keep their weight), ``"decoupled"`` (AReaL's decoupled PPO: the clip is
            anchored at the proximal policy, i.e. the actor's weights before the update,
            and each token is weighted by ``pi_prox / pi_behav`` truncated at ``is_cap``).
            ``pi_old`` / ``pi_prox`` are recomputed by the actor, ``pi_rollout`` /
            ``pi_behav`` are the rollout's own log-probs. Metrics: ``train/is_weight_mean``,
            ``train/is_clip_frac`` (tokens over the cap).
        is_cap: the importance-weight cap of ``off_policy_correction`` (> 0).
    """

    RENAMED_KEYS: ClassVar[Mapping[str, str]] = {"algorithm": "name"}

    name: str = "grpo"
    policy_loss: str = "ppo"
    plugins: tuple[str, ...] = ()
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
    kl_coef: float = 0.0
    kl_estimator: str = "k3"
    entropy_coef: float = 0.0
    max_grad_norm: float | None = 1.0
    temperature: float = 1.0
    logprob_chunk_size: int = 4096
    tis_cap: float | None = None
    dynamic_sampling: bool = False
    max_refill_rounds: int = 0
    overlong_buffer: int = 0
    overlong_penalty: float = 1.0
    max_response_length: int = 0
    gamma: float = 1.0
    lam: float = 0.95
    critic_lr: float = 1e-4
    vf_coef: float = 0.5
    value_clip: float | None = 0.2
    critic_warmup_updates: int = 0
    off_policy_correction: str = "none"
    is_cap: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "adam_betas", tuple(self.adam_betas))
        object.__setattr__(self, "plugins", tuple(self.plugins))
        import_plugins(self.plugins)
        check_name(ADVANTAGE_ESTIMATORS, self.name, "name", extra=tuple(ALGORITHMS))
        check_name(POLICY_LOSSES, self.policy_loss, "policy_loss")
        check_name(KL_ESTIMATORS, self.kl_estimator, "kl_estimator")
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
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
        if self.value_clip is not None and self.value_clip <= 0:
            raise ValueError(f"value_clip must be > 0 or None, got {self.value_clip}")
        if self.tis_cap is not None and self.tis_cap <= 0:
            raise ValueError(f"tis_cap must be > 0 or None, got {self.tis_cap}")
        self._check_off_policy_correction()
        if check_max_refill_rounds(self.max_refill_rounds) and not (
            self.dynamic_sampling and self.group_advantages
        ):
            raise ValueError(
                f"max_refill_rounds={self.max_refill_rounds} refills the groups dynamic "
                f"sampling drops: it needs dynamic_sampling=true and a group-relative name "
                f"(got dynamic_sampling={self.dynamic_sampling}, name={self.name!r})"
            )
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

    def _check_off_policy_correction(self) -> None:
        if self.off_policy_correction not in OFF_POLICY_CORRECTIONS:
            raise ValueError(
                f"off_policy_correction must be one of {list(OFF_POLICY_CORRECTIONS)}, "
                f"got {self.off_policy_correction!r}"
            )
        if not self.is_cap > 0:
            raise ValueError(f"is_cap must be > 0, got {self.is_cap}")
        if self.off_policy_correction == "none":
            return
        if self.policy_loss not in ("ppo", OFF_POLICY_CORRECTIONS[self.off_policy_correction][0]):
            raise ValueError(
                f"off_policy_correction {self.off_policy_correction!r} selects its own policy "
                f"loss; policy_loss must stay 'ppo', got {self.policy_loss!r}"
            )
        if self.tis_cap is not None:
            raise ValueError(
                f"off_policy_correction {self.off_policy_correction!r} caps the importance "
                "weights at is_cap: leave tis_cap unset"
            )

    @property
    def effective_policy_loss(self) -> str:
        """The policy loss name used: ``off_policy_correction``'s, else ``policy_loss``."""
        return OFF_POLICY_CORRECTIONS[self.off_policy_correction][0] or self.policy_loss

    @property
    def effective_tis_cap(self) -> float | None:
        """The importance-weight cap given to the loss: ``is_cap`` under an
        ``off_policy_correction``, else ``tis_cap``."""
        return self.tis_cap if self.off_policy_correction == "none" else self.is_cap

    @property
    def is_mode(self) -> str:
        """``"truncate"`` or ``"mask"``: what the cap does (``rlinf.algos.IS_MODES``)."""
        return OFF_POLICY_CORRECTIONS[self.off_policy_correction][1]

    @property
    def ppo_loss_config(self) -> PPOLossConfig:
        """The policy loss's config: clipping, aggregation, importance-weight cap and mode,
        entropy bonus."""
        return PPOLossConfig(
            clip_low=self.clip_low,
            clip_high=self.clip_high,
            dual_clip=self.dual_clip,
            agg_mode=self.loss_agg_mode,
            tis_cap=self.effective_tis_cap,
            is_mode=self.is_mode,
            entropy_coef=self.entropy_coef,
        )

    @property
    def advantage_estimator(self) -> AdvantageEstimator:
        """The ``rlinf.algos.ADVANTAGE_ESTIMATORS`` entry that :attr:`name` selects."""
        import_plugins(self.plugins)  # a worker's unpickled config has not imported them
        return ADVANTAGE_ESTIMATORS.get(ALGORITHMS.get(self.name, (self.name, False))[0])

    @property
    def whiten_advantages(self) -> bool:
        """Whether advantages are whitened over the batch after the estimator (``ppo``)."""
        return ALGORITHMS.get(self.name, (self.name, False))[1]

    @property
    def loss(self) -> PolicyLoss:
        """The ``rlinf.algos.POLICY_LOSSES`` entry that :attr:`policy_loss` selects."""
        import_plugins(self.plugins)
        return POLICY_LOSSES.get(self.effective_policy_loss)

    @property
    def uses_critic(self) -> bool:
        """Whether the estimator reads critic values (a value model is trained)."""
        return self.advantage_estimator.needs_values

    @property
    def uses_reference(self) -> bool:
        """Whether a reference model is needed (``kl_coef > 0``)."""
        return self.kl_coef > 0

    @property
    def group_advantages(self) -> bool:
        """Whether advantages are group-relative (needs ``n >= 2``; dynamic sampling)."""
        return self.advantage_estimator.group_relative

    @property
    def kl_in_reward(self) -> bool:
        """Whether the KL penalty goes into the per-token rewards (estimators that read
        them) rather than into the loss."""
        return self.advantage_estimator.uses_step_rewards
