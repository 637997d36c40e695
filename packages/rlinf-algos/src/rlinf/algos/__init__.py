"""rlinf.algos: pure tensor functions and registries for RL.

Advantages (GAE, GRPO, Dr.GRPO, REINFORCE++, RLOO, discounted returns), policy losses (PPO
clip / dual-clip, DAPO clip-higher, decoupled asynchronous PPO), loss aggregation modes,
truncated importance sampling, value loss, KL estimators, chunked entropy, DAPO helpers,
off-policy losses (SAC, CrossQ, RLPD, IQL), a tensor replay buffer and DrQ random-shift
image augmentation.

Conventions:

* Time / tokens are the last dim; shapes are in every docstring.
* Bad input (mismatched shapes, empty masks, NaN/inf) raises ``ValueError`` naming the
  argument; nothing silently returns NaN.
* Losses return ``(loss, metrics)``; metric values are 0-dim detached tensors (no device
  sync on GPU; call ``float(v)`` when logging).
* Importing the package fills ``ADVANTAGE_ESTIMATORS``, ``POLICY_LOSSES``,
  ``LOSS_AGGREGATIONS`` and ``KL_ESTIMATORS``; nothing else happens. Each registry has one
  calling convention (see ``rlinf.algos._registry``): advantage estimators take an
  :class:`AdvantageInputs`, policy losses a :class:`PolicyLossInputs` and a
  :class:`PPOLossConfig`, so an updater can call any entry; register your own with
  :func:`advantage_estimator`, :func:`policy_loss` or ``KL_ESTIMATORS.register``.
"""

from ._aggregation import AGG_MODES, aggregate_loss
from ._async_ppo import AsyncPPOConfig, decoupled_ppo_loss, staleness_mask
from ._augment import random_shift, shift_images
from ._batch_renorm import BatchRenorm1d
from ._critics import CriticEnsemble, mlp
from ._crossq import crossq_critic_loss, joint_critic_forward
from ._dapo import dynamic_sampling_filter, overlong_reward_penalty
from ._entropy import chunked_entropy_from_logits, entropy_from_logits, log_probs_from_logits
from ._gae import discounted_returns, gae_advantages
from ._group import (
    broadcast_to_tokens,
    drgrpo_advantages,
    grpo_advantages,
    rloo_advantages,
)
from ._importance import IS_MODES, truncated_importance_weights
from ._iql import expectile_loss, iql_policy_loss, iql_q_loss, iql_value_loss
from ._kl import kl_abs, kl_estimate, kl_k1, kl_k2, kl_k3, kl_loss, kl_penalized_rewards
from ._masked import masked_mean, masked_sum, masked_var, masked_whiten
from ._policy_loss import PPOLossConfig, ppo_policy_loss, ppo_token_loss
from ._polyak import hard_update, polyak_update
from ._registry import (
    ADVANTAGE_ESTIMATORS,
    KL_ESTIMATORS,
    LOSS_AGGREGATIONS,
    POLICY_LOSSES,
    Registry,
    advantage_estimator,
    policy_loss,
)
from ._reinforce import reinforce_pp_advantages, reinforce_pp_baseline_advantages
from ._replay import ReplayBuffer, sample_mixed
from ._rlpd import rlpd_actor_loss, rlpd_critic_loss, rlpd_critic_target, sample_subset
from ._sac import (
    SACConfig,
    sac_actor_loss,
    sac_critic_loss,
    sac_critic_target,
    sac_temperature_loss,
)
from ._specs import (
    AdvantageEstimator,
    AdvantageFn,
    AdvantageInputs,
    PolicyLoss,
    PolicyLossFn,
    PolicyLossInputs,
)
from ._value_loss import huber, value_loss

# Last: the built-in registry entries adapt the functions imported above.
from . import _builtins  # noqa: F401  isort: skip

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "AGG_MODES",
    "IS_MODES",
    "KL_ESTIMATORS",
    "LOSS_AGGREGATIONS",
    "POLICY_LOSSES",
    "AdvantageEstimator",
    "AdvantageFn",
    "AdvantageInputs",
    "AsyncPPOConfig",
    "BatchRenorm1d",
    "CriticEnsemble",
    "PPOLossConfig",
    "PolicyLoss",
    "PolicyLossFn",
    "PolicyLossInputs",
    "Registry",
    "ReplayBuffer",
    "SACConfig",
    "advantage_estimator",
    "aggregate_loss",
    "broadcast_to_tokens",
    "chunked_entropy_from_logits",
    "crossq_critic_loss",
    "decoupled_ppo_loss",
    "discounted_returns",
    "drgrpo_advantages",
    "dynamic_sampling_filter",
    "entropy_from_logits",
    "expectile_loss",
    "gae_advantages",
    "grpo_advantages",
    "hard_update",
    "huber",
    "iql_policy_loss",
    "iql_q_loss",
    "iql_value_loss",
    "joint_critic_forward",
    "kl_abs",
    "kl_estimate",
    "kl_k1",
    "kl_k2",
    "kl_k3",
    "kl_loss",
    "kl_penalized_rewards",
    "log_probs_from_logits",
    "masked_mean",
    "masked_sum",
    "masked_var",
    "masked_whiten",
    "mlp",
    "overlong_reward_penalty",
    "policy_loss",
    "polyak_update",
    "ppo_policy_loss",
    "ppo_token_loss",
    "random_shift",
    "reinforce_pp_advantages",
    "reinforce_pp_baseline_advantages",
    "rloo_advantages",
    "rlpd_actor_loss",
    "rlpd_critic_loss",
    "rlpd_critic_target",
    "sac_actor_loss",
    "sac_critic_loss",
    "sac_critic_target",
    "sac_temperature_loss",
    "sample_mixed",
    "sample_subset",
    "shift_images",
    "staleness_mask",
    "truncated_importance_weights",
    "value_loss",
]
