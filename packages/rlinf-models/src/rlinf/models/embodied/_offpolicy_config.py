"""Configuration of the embodied off-policy learner (SAC, CrossQ)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["OFFPOLICY_ALGORITHMS", "OffPolicyConfig"]

OFFPOLICY_ALGORITHMS: Mapping[str, str] = {
    "sac": "soft actor-critic: twin critics, Polyak-averaged target critics",
    "crossq": "CrossQ: batch-renormalized critics, joint forward pass, no target networks",
}
"""Off-policy algorithm names this learner trains -> what they are. ``rlpd`` and ``iql``
have losses in ``rlinf.algos`` but need demonstration / offline data, which the app does not
load yet; naming them fails with this list."""


@dataclass(frozen=True)
class OffPolicyConfig:
    """How :class:`~rlinf.models.embodied.OffPolicyLearner` trains from its replay buffer.

    The actor is a tanh-squashed Gaussian over the env's action bounds (its trunk: the
    ``policy`` section's ``hidden_sizes`` and ``activation``, its log-std clamped to
    ``policy.log_std_min/max``); the critics are ``rlinf.algos.CriticEnsemble``.

    Attributes:
        name: ``"sac"`` or ``"crossq"`` (see :data:`OFFPOLICY_ALGORITHMS`).
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
        num_critics: critics in the ensemble (the target takes their minimum).
        buffer_size: replay-buffer capacity in transitions (kept inside the learner).
        batch_size: transitions per gradient update (must be <= ``buffer_size``).
        learning_starts: transitions in the buffer before the first gradient update.
        utd_ratio: gradient updates per collected env step (update-to-data ratio).
        policy_delay: actor and temperature update every this many critic updates.
        weight_push_every: the learner's actor goes to the collectors once at least this
            many updates were made since the last push (checked after every collection).
        save_buffer: checkpoints include the replay buffer (``replay_buffer.npz``); when
            False a resumed run refills the buffer from ``learning_starts`` again.
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

    @property
    def uses_target(self) -> bool:
        """SAC keeps target critics; CrossQ bootstraps from the live critic."""
        return self.name == "sac"
