"""The calling conventions of the advantage-estimator and policy-loss registries.

An updater fills one :class:`AdvantageInputs` (or :class:`PolicyLossInputs`) with what it
has and calls any registered spec with it; a spec's flags tell the updater what the entry
reads, so it can provide it (a critic for ``needs_values``, groups of ``>= 2`` samples for
``group_relative``, the KL penalty folded into ``rewards`` for ``uses_step_rewards``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ._policy_loss import PPOLossConfig

__all__ = [
    "AdvantageEstimator",
    "AdvantageFn",
    "AdvantageInputs",
    "PolicyLoss",
    "PolicyLossFn",
    "PolicyLossInputs",
]


@dataclass(frozen=True)
class AdvantageInputs:
    """Everything an advantage estimator may read; ``N`` rows of ``T`` steps.

    A row is one LLM response (``T`` response tokens, right-padded) or one env's trajectory
    over the rollout horizon (possibly several episodes).

    Attributes:
        rewards: ``[N, T]`` reward of each step. LLM updaters put the outcome score on the
            last valid token (minus the per-token KL penalty when the estimator has
            ``uses_step_rewards``).
        mask: ``[N, T]`` bool, valid steps; ``None``: all valid.
        outcomes: ``[N]`` one scalar score per row when each row is one scored sequence
            (LLM); ``None`` for per-step data (embodied), where group-relative estimators
            compare the rows' returns-to-go at each step instead.
        values: ``[N, T]`` critic values ``V(s_t)``; ``None`` without a critic.
        next_values: ``[N, T]`` ``V`` of the observation reached after step ``t`` (the
            final observation on truncation); ``None``: each row is one episode ending at
            its last valid step.
        terminated: ``[N, T]`` bool, an episode ended in a terminal state after step ``t``.
        truncated: ``[N, T]`` bool, an episode was cut after step ``t``.
        group_size: consecutive rows that form one group (samples of one prompt, or envs
            compared with each other); divides ``N``.
        gamma: discount over valid steps.
        lam: GAE lambda.
    """

    rewards: torch.Tensor
    mask: torch.Tensor | None = None
    outcomes: torch.Tensor | None = None
    values: torch.Tensor | None = None
    next_values: torch.Tensor | None = None
    terminated: torch.Tensor | None = None
    truncated: torch.Tensor | None = None
    group_size: int = 1
    gamma: float = 1.0
    lam: float = 1.0

    @property
    def episode_ends(self) -> torch.Tensor | None:
        """``[N, T]`` bool ``terminated | truncated`` (``None`` when neither is given)."""
        if self.terminated is None:
            return self.truncated
        if self.truncated is None:
            return self.terminated
        return self.terminated | self.truncated


AdvantageFn = Callable[[AdvantageInputs], tuple[torch.Tensor, torch.Tensor | None]]
"""``fn(inputs) -> (advantages [N, T], returns [N, T] | None)``: 0 at invalid steps;
``returns`` are the critic's targets (or the returns-to-go the advantages came from),
``None`` when there are none."""


@dataclass(frozen=True)
class AdvantageEstimator:
    """A registered advantage estimator: the function and what it reads.

    Attributes:
        fn: the estimator, see :data:`AdvantageFn`.
        needs_values: reads ``inputs.values``: the updater must train a critic.
        group_relative: compares the rows of a group: needs ``group_size >= 2`` (and
            dynamic sampling, which drops groups without reward spread, applies).
        uses_step_rewards: reads the per-step ``inputs.rewards``; LLM updaters then put the
            KL penalty into those rewards. Otherwise it reads ``inputs.outcomes`` and the
            KL (when enabled) is a loss term.
        description: one line for listings and docs.
    """

    fn: AdvantageFn
    needs_values: bool = False
    group_relative: bool = False
    uses_step_rewards: bool = False
    description: str = ""

    def __call__(self, inputs: AdvantageInputs) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the estimator, checking its declared needs first."""
        if self.needs_values and inputs.values is None:
            raise ValueError("this advantage estimator needs the critic's values (inputs.values)")
        if self.group_relative and inputs.group_size < 2:
            raise ValueError(
                f"a group-relative advantage estimator needs group_size >= 2, got "
                f"{inputs.group_size}"
            )
        return self.fn(inputs)


@dataclass(frozen=True)
class PolicyLossInputs:
    """Everything a policy loss may read; all tensors ``[B, T]``.

    Attributes:
        log_probs: log-probs of the taken tokens/actions under the current policy (with
            gradient).
        old_log_probs: the clip's anchor: log-probs under the policy at the start of the
            update (recomputed by the trainer, or the rollout's own when on-policy).
        advantages: per-token advantages.
        mask: bool, valid tokens; ``None``: all.
        rollout_log_probs: log-probs under the policy that generated the data (the
            behaviour policy); ``None`` when it is the anchor itself.
        entropy: per-token entropy (reported; a bonus when the config says so).
        sample_versions: ``[B]`` policy version that generated each sample.
        current_version: the trainer's policy version.
    """

    log_probs: torch.Tensor
    old_log_probs: torch.Tensor
    advantages: torch.Tensor
    mask: torch.Tensor | None = None
    rollout_log_probs: torch.Tensor | None = None
    entropy: torch.Tensor | None = None
    sample_versions: torch.Tensor | None = None
    current_version: int | None = None


PolicyLossFn = Callable[
    [PolicyLossInputs, "PPOLossConfig"], tuple[torch.Tensor, dict[str, torch.Tensor]]
]
"""``fn(inputs, config) -> (loss [], metrics)``; metrics are 0-dim detached tensors and
include at least ``pg_loss`` (the built-ins add ``entropy``, ``approx_kl``,
``clip_frac_low`` / ``clip_frac_high`` and ``tis/*``)."""


@dataclass(frozen=True)
class PolicyLoss:
    """A registered policy loss: the function and what it reads.

    Attributes:
        fn: the loss, see :data:`PolicyLossFn`.
        decoupled: separates the clip's anchor (``old_log_probs``, recomputed at the start
            of the update) from the behaviour policy (``rollout_log_probs``, required).
        description: one line for listings and docs.
    """

    fn: PolicyLossFn
    decoupled: bool = False
    description: str = ""

    def __call__(
        self, inputs: PolicyLossInputs, config: PPOLossConfig
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run the loss, checking its declared needs first."""
        if self.decoupled and inputs.rollout_log_probs is None:
            raise ValueError("a decoupled policy loss needs rollout_log_probs (behaviour policy)")
        return self.fn(inputs, config)
