"""rlinf.models: policies for rlinf.

* :class:`ActorCritic` / :func:`build_policy`: MLP and CNN actor-critics in plain torch,
  Gaussian (optionally tanh-squashed) or categorical heads, shared or separate value
  network, orthogonal init, action chunks, running observation normalization.
* :class:`RunningNormalizer`: mergeable running mean / variance.
* :class:`WeightSnapshot`, :class:`VersionedWeights`, :class:`StaleWeightsError`:
  versioned ``state_dict`` snapshots loaded strictly in version order (trainer -> generator
  weight sync, for embodied policies and LLMs alike).
* :mod:`rlinf.models.embodied` (import it explicitly; it needs Ray): the PPO / GRPO
  ``PolicyUpdater`` and the ``EmbodiedActorWorker`` / ``EmbodiedRolloutWorker`` with
  versioned weight sync.
* :mod:`rlinf.models.llm` (import it explicitly; it imports transformers): Hugging Face
  causal LMs from local directories (and a tiny seeded one built from a config), the
  :class:`~rlinf.models.llm.RolloutBatch` of prompts + responses, memory-bounded response
  log-probabilities, the :class:`~rlinf.models.llm.GenerationBackend` protocol with its HF
  implementation, and a :class:`~rlinf.models.llm.ValueModel` critic.

``rlinf.models`` never imports vllm, sglang or megatron at import time, nor rlinf.envs
(specs are structural: :class:`ActionSpecLike`, :class:`ArraySpecLike`).
"""

from ._actor_critic import ActorCritic, build_policy
from ._config import PolicyConfig
from ._encoders import Encoder, orthogonal_linear
from ._heads import CategoricalHead, GaussianHead, log1m_tanh_sq
from ._normalizer import RunningNormalizer
from ._spec import ActionSpecLike, ArraySpecLike, ObsSpecLike
from ._weights import StaleWeightsError, VersionedWeights, WeightSnapshot

__all__ = [
    "ActionSpecLike",
    "ActorCritic",
    "ArraySpecLike",
    "CategoricalHead",
    "Encoder",
    "GaussianHead",
    "ObsSpecLike",
    "PolicyConfig",
    "RunningNormalizer",
    "StaleWeightsError",
    "VersionedWeights",
    "WeightSnapshot",
    "build_policy",
    "log1m_tanh_sq",
    "orthogonal_linear",
]
