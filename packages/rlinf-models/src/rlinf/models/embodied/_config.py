"""Configuration of the embodied policy-gradient updater (PPO, GRPO, RLOO, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from rlinf.algos import ADVANTAGE_ESTIMATORS, POLICY_LOSSES, AdvantageEstimator, PolicyLoss

from .._algo_registry import check_name, import_plugins

__all__ = ["ALGORITHMS", "UpdaterConfig"]

ALGORITHMS: Mapping[str, str] = {"ppo": "gae"}
"""Algorithm names that are not advantage-estimator names: name -> estimator."""


@dataclass(frozen=True)
class UpdaterConfig:
    """How :class:`~rlinf.models.embodied.PolicyUpdater` turns trajectories into updates.

    Attributes:
        name: the algorithm: ``"ppo"`` (GAE advantages from the critic, clipped policy
            loss plus value loss) or any name in ``rlinf.algos.ADVANTAGE_ESTIMATORS``.
            Estimators without a critic train no value loss; the group-relative ones
            (``"grpo"``, ``"drgrpo"``, ``"rloo"``, ``"reinforce_pp_baseline"``) compare the
            discounted returns-to-go of groups of envs at the same time step (see
            ``group_size``). A user's estimator is selected the same way once its module is
            listed in ``plugins``. (Renamed from ``algo``.)
        policy_loss: a name in ``rlinf.algos.POLICY_LOSSES`` (``"ppo"``,
            ``"decoupled_ppo"``, or a plugin's); ``decoupled`` turns ``"ppo"`` into
            ``"decoupled_ppo"`` (any other loss must itself be decoupled).
        plugins: modules imported before the names are checked (when the config is built)
            and again when the updater is built in a worker process; they register
            estimators and losses of their own. Each must be importable in the driver and
            in every worker (installed, or on ``PYTHONPATH``).
        lr: Adam learning rate at the start of training.
        lr_schedule: ``"linear"`` decays the learning rate to 0 at ``total_updates``;
            ``"constant"`` keeps it.
        adam_eps: Adam epsilon (1e-5 is the usual PPO choice; smaller is noisier).
        epochs: passes over each batch of trajectories.
        minibatches: minibatches per epoch (the batch of ``N * T`` samples is split evenly).
        clip_low: PPO ratio clip below 1 (``1 - clip_low``).
        clip_high: PPO ratio clip above 1 (``1 + clip_high``).
        entropy_coef: weight of the entropy bonus.
        vf_coef: weight of the value loss (PPO only).
        value_clip: clip value predictions around the rollout values; ``None`` disables it.
        max_grad_norm: global gradient-norm clip; ``None`` disables it.
        gamma: discount factor.
        lam: GAE lambda (PPO only).
        normalize_advantages: standardize advantages within each minibatch.
        group_size: group-relative estimators only: number of consecutive envs (in the concatenated batch order)
            whose returns-to-go are normalized together at each time step; ``0`` means all
            envs of the batch form one group.
        decoupled: the decoupled PPO objective, i.e. ``policy_loss: decoupled_ppo`` (``rlinf.algos.decoupled_ppo_loss``) for
            data sampled with older weights (e.g. one version behind with an overlapped
            update): the clip is anchored at log-probs recomputed with the weights at the
            start of the update, and the rollout's own log-probs only enter through the
            importance weight ``pi_prox / pi_rollout`` (capped at 5). Plain PPO anchors the
            clip at the rollout's log-probs, so with stale data many samples start outside
            the clip range and give no gradient. On fresh data both are the same.
    """

    RENAMED_KEYS: ClassVar[Mapping[str, str]] = {"algo": "name"}

    name: str = "ppo"
    policy_loss: str = "ppo"
    plugins: tuple[str, ...] = ()
    lr: float = 1e-3
    lr_schedule: Literal["linear", "constant"] = "linear"
    adam_eps: float = 1e-5
    epochs: int = 4
    minibatches: int = 4
    clip_low: float = 0.2
    clip_high: float = 0.2
    entropy_coef: float = 0.0
    vf_coef: float = 0.5
    value_clip: float | None = None
    max_grad_norm: float | None = 0.5
    gamma: float = 0.99
    lam: float = 0.95
    normalize_advantages: bool = True
    group_size: int = 0
    decoupled: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "plugins", tuple(self.plugins))
        import_plugins(self.plugins)
        check_name(ADVANTAGE_ESTIMATORS, self.name, "name", extra=tuple(ALGORITHMS))
        check_name(POLICY_LOSSES, self.policy_loss, "policy_loss")
        if self.decoupled and self.policy_loss != "ppo" and not self.loss.decoupled:
            raise ValueError(
                f"decoupled needs a decoupled policy loss, and policy_loss "
                f"{self.policy_loss!r} is not one (use ppo or decoupled_ppo)"
            )
        if self.lr_schedule not in ("linear", "constant"):
            raise ValueError(
                f"lr_schedule must be 'linear' or 'constant', got {self.lr_schedule!r}"
            )
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.epochs < 1 or self.minibatches < 1:
            raise ValueError("epochs and minibatches must be >= 1")
        if self.clip_low <= 0 or self.clip_high <= 0:
            raise ValueError("clip_low and clip_high must be > 0")
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.lam <= 1.0:
            raise ValueError("gamma and lam must lie in [0, 1]")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
        if self.value_clip is not None and self.value_clip <= 0:
            raise ValueError(f"value_clip must be > 0 or None, got {self.value_clip}")
        if self.group_size < 0 or self.group_size == 1:
            raise ValueError(f"group_size must be 0 (all envs) or >= 2, got {self.group_size}")

    @property
    def advantage_estimator(self) -> AdvantageEstimator:
        """The ``rlinf.algos.ADVANTAGE_ESTIMATORS`` entry that :attr:`name` selects."""
        import_plugins(self.plugins)  # a worker's unpickled config has not imported them
        return ADVANTAGE_ESTIMATORS.get(ALGORITHMS.get(self.name, self.name))

    @property
    def loss(self) -> PolicyLoss:
        """The ``rlinf.algos.POLICY_LOSSES`` entry: :attr:`policy_loss`, except that
        :attr:`decoupled` turns ``ppo`` into ``decoupled_ppo``."""
        import_plugins(self.plugins)
        swap = self.decoupled and self.policy_loss == "ppo"
        return POLICY_LOSSES.get("decoupled_ppo" if swap else self.policy_loss)
