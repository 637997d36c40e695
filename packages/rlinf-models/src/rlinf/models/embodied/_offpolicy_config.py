"""Configuration of the embodied off-policy learner (SAC, CrossQ, RLPD, IQL)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "AUGMENTATIONS",
    "OFFLINE_ALGORITHMS",
    "OFFPOLICY_ALGORITHMS",
    "REWARD_NORMALIZATIONS",
    "OffPolicyConfig",
]

AUGMENTATIONS = ("none", "random_shift")
"""Values of ``OffPolicyConfig.augment``."""

REWARD_NORMALIZATIONS = ("none", "offline_returns")
"""Values of ``OffPolicyConfig.reward_normalize``."""

OFFPOLICY_ALGORITHMS: Mapping[str, str] = {
    "sac": "soft actor-critic: twin critics, Polyak-averaged target critics",
    "crossq": "CrossQ: batch-renormalized critics, joint forward pass, no target networks",
    "rlpd": "RLPD: SAC with LayerNorm critic ensemble (REDQ subset target), batches mixing "
    "offline data with online data",
    "iql": "IQL: expectile value, AWR actor; offline pre-training, then online fine-tuning",
}
"""Off-policy algorithm names this learner trains -> what they are."""

OFFLINE_ALGORITHMS = frozenset({"rlpd", "iql"})
"""Algorithms that need ``offline_data``."""


@dataclass(frozen=True)
class OffPolicyConfig:
    """How :class:`~rlinf.models.embodied.OffPolicyLearner` trains from its replay buffer.

    The actor is a tanh-squashed Gaussian over the env's action bounds (its trunk: the
    ``policy`` section's ``hidden_sizes`` and ``activation``, its log-std clamped to
    ``policy.log_std_min/max``); the critics are ``rlinf.algos.CriticEnsemble``.

    Attributes:
        name: ``"sac"``, ``"crossq"``, ``"rlpd"`` or ``"iql"`` (see
            :data:`OFFPOLICY_ALGORITHMS`).
        gamma: discount factor.
        tau: Polyak rate of the SAC target critics (``target <- (1-tau) target + tau critic``).
        actor_lr: Adam learning rate of the actor.
        critic_lr: Adam learning rate of the critics.
        alpha_lr: Adam learning rate of the log-temperature (automatic entropy tuning).
        adam_beta1: Adam's first beta for all three optimizers (CrossQ uses 0.5).
        init_alpha: initial entropy temperature.
        autotune: tune the temperature toward ``target_entropy``; False keeps ``init_alpha``.
        target_entropy: ``None`` means ``-action_dim``.
        critic_hidden_sizes: widths of each critic's hidden layers.
        num_critics: critics in the ensemble (the target takes their minimum; RLPD takes
            the minimum over a random ``subset_size`` of them and uses 10 in the paper).
        buffer_size: replay-buffer capacity in transitions (kept inside the learner).
        batch_size: transitions per gradient update (must be <= ``buffer_size``).
        learning_starts: transitions in the buffer before the first gradient update.
        utd_ratio: gradient updates per collected env step (update-to-data ratio).
        policy_delay: actor and temperature update every this many critic updates.
        weight_push_every: the learner's actor goes to the collectors once at least this
            many updates were made since the last push (checked after every collection).
        save_buffer: checkpoints include the replay buffer (``replay_buffer.npz``); when
            False a resumed run refills the buffer from ``learning_starts`` again.
        offline_data: path of an offline transition file (``rlinf-embodied collect``;
            format in ``rlinf.models.embodied._offline_data``); required by ``rlpd`` and
            ``iql``, optional for ``sac`` / ``crossq`` (then mixed in as for RLPD). It is
            read by the learner's own process and not copied into checkpoints.
        offline_ratio: share of every batch drawn from the offline data (RLPD's symmetric
            sampling: 0.5); the rest comes from the online buffer.
        subset_size: RLPD's ``M``: target critics whose minimum is the bootstrap target.
        backup_entropy: RLPD subtracts ``alpha log pi(a'|s')`` in its target (as SAC does);
            False drops it.
        offline_steps: IQL's gradient updates on the offline data alone before collection
            starts (made once; a resumed run does not repeat them).
        expectile: IQL's value expectile ``tau`` in (0, 1).
        awr_beta: IQL's inverse temperature of the advantage weights.
        awr_max_weight: IQL's clamp of the advantage weights.
        value_lr: IQL's Adam learning rate of ``V``.
        augment: augmentation of image observations in the learner's sampled batches
            (``obs`` and ``next_obs``, each sample its own shift; never what the collectors
            act on): ``"random_shift"`` (DrQ) or ``"none"``. Vector-only envs ignore it.
        augment_pad: largest shift of ``random_shift`` in pixels (DrQ: 4 at 84 x 84).
        reward_scale: every batch the learner samples (offline and online, every
            algorithm) uses ``scale * r + reward_bias`` as its rewards; the buffers keep the
            env's rewards. ``scale`` is this (> 0), times the factor of
            ``reward_normalize``. IQL's AWR weights ``exp(awr_beta (Q - V))`` grow with it
            (a scale ``s`` acts like ``awr_beta * s`` once ``Q`` and ``V`` have fit).
        reward_bias: added after scaling (IQL's AntMaze runs use -1); 0 keeps it off.
        reward_normalize: ``"offline_returns"`` multiplies the scale by
            ``1000 / (max - min)`` of the offline file's episode returns (IQL's paper for
            MuJoCo; needs ``offline_data`` recorded by ``collect``, whose returns differ);
            ``"none"`` leaves it at ``reward_scale``.
    """

    name: str = "sac"
    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    adam_beta1: float = 0.9
    init_alpha: float = 1.0
    autotune: bool = True
    target_entropy: float | None = None
    critic_hidden_sizes: tuple[int, ...] = (256, 256)
    num_critics: int = 2
    buffer_size: int = 1_000_000
    batch_size: int = 256
    learning_starts: int = 1000
    utd_ratio: float = 1.0
    policy_delay: int = 1
    weight_push_every: int = 1
    save_buffer: bool = True
    offline_data: str | None = None
    offline_ratio: float = 0.5
    subset_size: int = 2
    backup_entropy: bool = True
    offline_steps: int = 0
    expectile: float = 0.7
    awr_beta: float = 3.0
    awr_max_weight: float = 100.0
    value_lr: float = 3e-4
    augment: str = "random_shift"
    augment_pad: int = 4
    reward_scale: float = 1.0
    reward_bias: float = 0.0
    reward_normalize: str = "none"

    def __post_init__(self) -> None:
        object.__setattr__(self, "critic_hidden_sizes", tuple(self.critic_hidden_sizes))
        if self.name not in OFFPOLICY_ALGORITHMS:
            raise ValueError(
                f"name: unknown off-policy algorithm {self.name!r}; "
                f"choose from {sorted(OFFPOLICY_ALGORITHMS)}"
            )
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.buffer_size < self.batch_size:
            raise ValueError(
                f"buffer_size ({self.buffer_size}) is smaller than batch_size "
                f"({self.batch_size}): a batch could never be drawn from distinct transitions"
            )
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.tau <= 1.0:
            raise ValueError("gamma and tau must lie in [0, 1]")
        if min(self.actor_lr, self.critic_lr, self.alpha_lr, self.init_alpha) <= 0:
            raise ValueError("actor_lr, critic_lr, alpha_lr and init_alpha must be > 0")
        if not 0.0 <= self.adam_beta1 < 1.0:
            raise ValueError(f"adam_beta1 must lie in [0, 1), got {self.adam_beta1}")
        if not self.critic_hidden_sizes or min(self.critic_hidden_sizes) < 1:
            raise ValueError(
                f"critic_hidden_sizes must be positive, got {self.critic_hidden_sizes}"
            )
        if self.num_critics < 1:
            raise ValueError(f"num_critics must be >= 1, got {self.num_critics}")
        if self.learning_starts < self.batch_size:
            raise ValueError(
                f"learning_starts ({self.learning_starts}) must be >= batch_size "
                f"({self.batch_size})"
            )
        if self.learning_starts > self.buffer_size:
            raise ValueError(
                f"learning_starts ({self.learning_starts}) exceeds buffer_size "
                f"({self.buffer_size}): updates would never start"
            )
        if self.utd_ratio <= 0:
            raise ValueError(f"utd_ratio must be > 0, got {self.utd_ratio}")
        if self.policy_delay < 1 or self.weight_push_every < 1:
            raise ValueError("policy_delay and weight_push_every must be >= 1")
        if not 0.0 <= self.offline_ratio < 1.0:
            raise ValueError(
                f"offline_ratio must lie in [0, 1) (the online share must be > 0), "
                f"got {self.offline_ratio}"
            )
        if not 1 <= self.subset_size <= self.num_critics:
            raise ValueError(
                f"subset_size must lie in [1, num_critics={self.num_critics}], "
                f"got {self.subset_size}"
            )
        if self.offline_steps < 0:
            raise ValueError(f"offline_steps must be >= 0, got {self.offline_steps}")
        if self.offline_steps and self.name != "iql":
            raise ValueError(f"offline_steps is IQL's offline phase; {self.name} has none")
        if not 0.0 < self.expectile < 1.0:
            raise ValueError(f"expectile must lie in (0, 1), got {self.expectile}")
        if min(self.awr_beta, self.awr_max_weight, self.value_lr) <= 0:
            raise ValueError("awr_beta, awr_max_weight and value_lr must be > 0")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(
                f"augment: unknown augmentation {self.augment!r}; choose from {AUGMENTATIONS}"
            )
        if isinstance(self.augment_pad, bool) or self.augment_pad < 0:
            raise ValueError(f"augment_pad must be an int >= 0, got {self.augment_pad!r}")
        if not (math.isfinite(self.reward_scale) and self.reward_scale > 0):
            raise ValueError(f"reward_scale must be finite and > 0, got {self.reward_scale}")
        if not math.isfinite(self.reward_bias):
            raise ValueError(f"reward_bias must be finite, got {self.reward_bias}")
        if self.reward_normalize not in REWARD_NORMALIZATIONS:
            raise ValueError(
                f"reward_normalize: unknown normalization {self.reward_normalize!r}; "
                f"choose from {REWARD_NORMALIZATIONS}"
            )
        if self.reward_normalize != "none" and not self.offline_data:
            raise ValueError(
                f"reward_normalize: {self.reward_normalize} reads the offline file's episode "
                "returns; set offline_data or use reward_scale"
            )

    @property
    def shift_pad(self) -> int:
        """Pixels of DrQ's random shift in learner batches (0: no augmentation)."""
        return self.augment_pad if self.augment == "random_shift" else 0

    @property
    def uses_target(self) -> bool:
        """SAC, RLPD and IQL keep target critics; CrossQ bootstraps from the live critic."""
        return self.name != "crossq"

    @property
    def critic_norm(self) -> str:
        """The critics' normalization (``rlinf.algos.mlp``'s ``norm``)."""
        return {"crossq": "batchrenorm", "rlpd": "layernorm"}.get(self.name, "none")

    @property
    def offline_batch(self) -> int:
        """Transitions of each batch drawn from the offline data (0 without a file)."""
        return round(self.offline_ratio * self.batch_size) if self.offline_data else 0
