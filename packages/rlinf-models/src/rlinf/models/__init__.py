"""rlinf.models: policies for rlinf.

* :class:`ActorCritic` / :func:`build_policy`: MLP and CNN actor-critics in plain torch,
  Gaussian (optionally tanh-squashed) or categorical heads, shared or separate value
  network, orthogonal init, action chunks, running observation normalization.
* :class:`RunningNormalizer`: mergeable running mean / variance.
* :class:`WeightSnapshot`, :class:`VersionedWeights`, :class:`StaleWeightsError`:
  versioned ``state_dict`` snapshots loaded strictly in version order (trainer -> generator
  weight sync, for embodied policies and LLMs alike).
* :class:`StagedWeights`, :func:`sync_weights`, :func:`stage_weights`,
  :func:`load_staged_weights`, :class:`WeightStager`, :func:`put_weights`: weight sync from
  a trainer group to generator groups; the trainer's process puts the snapshot into Ray's
  object store and the driver only passes the reference on (loaded lazily: needs Ray).
  ``sync_weights(..., method="collective")`` (or ``"auto"``, :func:`choose_weight_sync`)
  broadcasts the (sharded) weights in buckets instead, between workers that inherit
  :class:`WeightBroadcaster` / :class:`WeightReceiver`.
* :mod:`rlinf.models.embodied` (import it explicitly; it needs Ray): the PPO / GRPO
  ``PolicyUpdater`` and the ``EmbodiedActorWorker`` / ``EmbodiedRolloutWorker`` with
  versioned weight sync.
* :mod:`rlinf.models.llm` (import it explicitly; it imports transformers): Hugging Face
  causal LMs from local directories (and a tiny seeded one built from a config), the
  :class:`~rlinf.models.llm.RolloutBatch` of prompts + responses, memory-bounded response
  log-probabilities, the :class:`~rlinf.models.llm.GenerationBackend` protocol with its HF
  implementation, and a :class:`~rlinf.models.llm.ValueModel` critic.

* :mod:`rlinf.models.planning` (import it explicitly): what every app's ``plan`` command
  and ``placement: auto`` share: the planner's candidates filtered by the app's checks,
  the plan record and files, profiles at several device counts merged into one.

``rlinf.models`` never imports a heavy engine at import time, nor rlinf.envs
(specs are structural: :class:`ActionSpecLike`, :class:`ArraySpecLike`).
"""

from ._actor_critic import ActorCritic, build_policy
from ._config import PolicyConfig
from ._encoders import Encoder, orthogonal_linear
from ._heads import CategoricalHead, GaussianHead, log1m_tanh_sq
from ._normalizer import RunningNormalizer
from ._spec import ActionSpecLike, ArraySpecLike, ObsSpecLike
from ._weights import StaleWeightsError, VersionedWeights, WeightSnapshot

# Weight sync imports Ray: loaded on first use (PEP 562) so `import rlinf.models` stays
# Ray-free.
_WEIGHT_SYNC = (
    "DEFAULT_BUCKET_BYTES",
    "WEIGHT_SYNC_METHODS",
    "StagedWeights",
    "WeightBroadcaster",
    "WeightReceiver",
    "WeightStager",
    "choose_weight_sync",
    "load_staged_weights",
    "put_weights",
    "resolve_snapshot",
    "stage_weights",
    "sync_weights",
)

__all__ = [
    "DEFAULT_BUCKET_BYTES",
    "WEIGHT_SYNC_METHODS",
    "ActionSpecLike",
    "ActorCritic",
    "ArraySpecLike",
    "CategoricalHead",
    "Encoder",
    "GaussianHead",
    "ObsSpecLike",
    "PolicyConfig",
    "RunningNormalizer",
    "StagedWeights",
    "StaleWeightsError",
    "VersionedWeights",
    "WeightBroadcaster",
    "WeightReceiver",
    "WeightSnapshot",
    "WeightStager",
    "build_policy",
    "choose_weight_sync",
    "load_staged_weights",
    "log1m_tanh_sq",
    "orthogonal_linear",
    "put_weights",
    "resolve_snapshot",
    "stage_weights",
    "sync_weights",
]


def __getattr__(name: str) -> object:
    if name in _WEIGHT_SYNC:
        from . import _weight_sync

        return getattr(_weight_sync, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
