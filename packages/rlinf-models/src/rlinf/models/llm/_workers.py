"""LLM workers: the trained policy (actor), generation copies (rollout) and scoring (reward).

Data between them travels through channels as plain dicts tagged with the shard id (see
:mod:`rlinf.models.llm._route`): texts rollout -> reward, token batches rollout -> actor,
scores reward -> actor. Weights travel from the actor to every rollout rank as one
versioned :class:`~rlinf.models.WeightSnapshot` that the actor puts into Ray's object store.
"""

from ._actor_worker import LLMActorWorker
from ._reward_worker import RewardWorker, Scorer
from ._rollout_worker import LLMRolloutWorker

__all__ = ["LLMActorWorker", "LLMRolloutWorker", "RewardWorker", "Scorer"]
