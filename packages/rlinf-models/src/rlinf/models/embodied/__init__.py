"""rlinf.models.embodied: training and serving policies that act in simulators.

* :class:`PolicyUpdater` / :class:`UpdaterConfig`: PPO (GAE, clipped policy loss, value
  loss) and critic-free GRPO updates; epochs, minibatches, gradient clipping, linear or
  constant learning rate, observation and advantage normalization. Plain torch, no Ray.
* :class:`EmbodiedActorWorker`: the trained policy in a worker; ``update`` (from
  ``rlinf.core.Trajectory`` batches or their object-store references) and versioned
  ``export_weights``. :func:`to_tensors` / :data:`POLICY_RECORDS`: the updater's view of a
  trajectory.
* :class:`EmbodiedRolloutWorker`: an inference copy that loads weights strictly in version
  order and serves env workers' observation requests over per-stage
  ``rlinf.channel.DirectLink`` connections.
* :class:`ActionResponder` / :func:`build_responder`: the rollout's batched, version-checked
  answer to env stages' requests, without transport (an env worker can run it in-process).
* :class:`EmbodiedFlow` (:class:`EmbodiedFlowConfig`, :class:`EmbodiedRunnerSection`):
  the embodied flow env workers <-> rollout -> actor -> weight sync, which the embodied app
  wires with its env worker class; the LLM counterpart is ``rlinf.models.llm.LLMRLFlow``.
* :class:`UpdateLending` (:class:`Overlapped`): ``scheduler.dynamic``, the env / rollout
  slots lent to the actor's update once the rollout is done (``rlinf.sched.SlotLender``
  decides, the actor raises its threads).
* :func:`flow_state` / :func:`restore_flow_state`: the flow's env, rollout-RNG and
  prefetched-rollout state for an exact resume (next to the actor's checkpoint state).
* Off-policy (SAC, CrossQ, RLPD, IQL): :class:`OffPolicyConfig`, :class:`OffPolicyLearner`
  (actor, critics, target critics, temperature, IQL's value network, the replay buffer and
  the offline buffer, plain torch),
  :class:`OffPolicyLearnerWorker`, :class:`OffPolicyResponder` (the actor inside the env
  workers, recording ``next_obs``) and :class:`OffPolicyFlow` (collection overlapping
  updates, weight push every ``weight_push_every`` updates).
* Offline data: :func:`save_offline_data` / :func:`load_offline_data` (the npz transition
  file ``rlinf-embodied collect`` writes, validated against a run's env) and
  :class:`OfflineDataError`.
* :func:`reward_transform`: the ``(scale, bias)`` the off-policy learner applies to every
  batch's rewards (``reward_scale``, ``reward_bias``, ``reward_normalize``).
* :class:`WeightSnapshot`, :class:`VersionedWeights`, :class:`StaleWeightsError`.
"""

from ._actor_worker import EmbodiedActorWorker
from ._batch import POLICY_RECORDS, to_tensors
from ._config import UpdaterConfig
from ._dynamic import Overlapped, UpdateLending
from ._flow import EmbodiedFlow
from ._flow_config import EmbodiedFlowConfig, EnvSectionLike
from ._offline_data import (
    OFFLINE_FORMAT,
    OfflineDataError,
    check_offline_data,
    load_offline_data,
    read_offline_metadata,
    save_offline_data,
)
from ._offpolicy_actor import SquashedGaussianActor, flat_obs, vector_obs_dim
from ._offpolicy_config import (
    OFFLINE_ALGORITHMS,
    OFFPOLICY_ALGORITHMS,
    REWARD_NORMALIZATIONS,
    OffPolicyConfig,
)
from ._offpolicy_flow import OffPolicyFlow
from ._offpolicy_learner import OffPolicyLearner
from ._offpolicy_obs import ObsLayout, transitions
from ._offpolicy_responder import OffPolicyResponder, build_actor, build_offpolicy_responder
from ._offpolicy_worker import BUFFER_FILE, OffPolicyLearnerWorker
from ._responder import ActionResponder, build_responder
from ._resume import flow_state, restore_flow_state
from ._reward_scale import NORMALIZED_RETURN_RANGE, reward_transform
from ._rollout_worker import EmbodiedRolloutWorker
from ._runner import EmbodiedRunnerSection
from ._updater import PolicyUpdater
from ._weights import StaleWeightsError, VersionedWeights, WeightSnapshot

__all__ = [
    "BUFFER_FILE",
    "NORMALIZED_RETURN_RANGE",
    "OFFLINE_ALGORITHMS",
    "OFFLINE_FORMAT",
    "OFFPOLICY_ALGORITHMS",
    "POLICY_RECORDS",
    "REWARD_NORMALIZATIONS",
    "ActionResponder",
    "EmbodiedActorWorker",
    "EmbodiedFlow",
    "EmbodiedFlowConfig",
    "EmbodiedRolloutWorker",
    "EmbodiedRunnerSection",
    "EnvSectionLike",
    "ObsLayout",
    "OffPolicyConfig",
    "OffPolicyFlow",
    "OffPolicyLearner",
    "OffPolicyLearnerWorker",
    "OffPolicyResponder",
    "OfflineDataError",
    "Overlapped",
    "PolicyUpdater",
    "SquashedGaussianActor",
    "StaleWeightsError",
    "UpdateLending",
    "UpdaterConfig",
    "VersionedWeights",
    "WeightSnapshot",
    "build_actor",
    "build_offpolicy_responder",
    "build_responder",
    "check_offline_data",
    "flat_obs",
    "flow_state",
    "load_offline_data",
    "read_offline_metadata",
    "restore_flow_state",
    "reward_transform",
    "save_offline_data",
    "to_tensors",
    "transitions",
    "vector_obs_dim",
]
