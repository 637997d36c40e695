"""LLM workers: the trained policy (actor), generation copies (rollout) and scoring (reward).

Data between them travels through channels as plain dicts:

* rollout -> reward: ``{"batch": RolloutBatch, "responses": [str], "answers": [str]}``;
* reward -> actor: the same plus ``"rewards"`` (``[B]`` float tensor) and ``"statuses"``.

Weights travel from the actor to every rollout rank as one versioned
:class:`~rlinf.models.WeightSnapshot` in Ray's object store.
"""

from ._actor_worker import LLMActorWorker
from ._reward_worker import RewardWorker, Scorer
from ._rollout_worker import LLMRolloutWorker

__all__ = ["LLMActorWorker", "LLMRolloutWorker", "RewardWorker", "Scorer"]
