"""Where a rollout rank sends what it generated: text to the scorers, tensors to the actor.

The two go separate ways so that each payload crosses the object store once and goes only
where it is used: the reward ranks need the response texts (and two per-row numbers for
their statistics), never the token tensors; the actor needs the :class:`RolloutBatch`,
never the texts. Both carry the shard's ``prompt_offset``, the id the actor joins them by.

Items::

    reward channel: {"shard": int, "responses": [str], "answers": [Any],
                     "response_lengths": [B] int, "truncated": [B] bool}
    batch channel:  {"shard": int, "batch": RolloutBatch}
    scored channel: {"shard": int, "rewards": [B] float tensor, "statuses": [str]}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlinf.channel import Channel

__all__ = ["RolloutRoute"]


@dataclass(frozen=True)
class RolloutRoute:
    """The channels (and keys) a rollout rank publishes one shard to.

    Attributes:
        reward: channel of the reward ranks' inputs (texts and answers).
        batch: channel of the actor's inputs (the token batch); ``None`` for evaluation,
            where nothing is trained.
        reward_key: key of ``reward`` (training and evaluation use different keys).
        batch_key: key of ``batch``.
    """

    reward: Channel
    batch: Channel | None = None
    reward_key: Any = "rollout"
    batch_key: Any = "batch"
