"""Which rollout rank serves each (env rank, pipeline stage) direct link."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LinkPlan", "plan_links"]


@dataclass(frozen=True)
class LinkPlan:
    """The env <-> rollout wiring of one flow.

    Attributes:
        endpoints: ``endpoints[e][s]``, the rollout endpoint env rank ``e``'s stage ``s``
            connects to.
        requests: per rollout rank, the requests it answers per rollout (``horizon + 1``
            per link: one per step plus the bootstrap value).
        peers: per rollout rank, how many links connect to it.
    """

    endpoints: list[list[Any]]
    requests: list[int]
    peers: list[int]


def plan_links(endpoints: list[Any], env_ranks: int, stages: int, horizon: int) -> LinkPlan:
    """Round robin over the rollout ranks' ``endpoints``: with 2 stages and one rollout
    rank, that rank serves both stages of every env worker (answering whichever request
    arrives first, batched when several wait)."""
    n_roll = len(endpoints)
    rows: list[list[Any]] = []
    requests, peers = [0] * n_roll, [0] * n_roll
    for e in range(env_ranks):
        row = []
        for s in range(stages):
            rank = (e * stages + s) % n_roll
            row.append(endpoints[rank])
            requests[rank] += horizon + 1
            peers[rank] += 1
        rows.append(row)
    return LinkPlan(rows, requests, peers)
