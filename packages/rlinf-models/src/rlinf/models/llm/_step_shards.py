"""Joining one step's shards: the rollout ranks' batches with the reward ranks' scores."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ._batch import RolloutBatch

__all__ = ["join_step_shards"]


def join_step_shards(
    batches: list[Mapping[str, Any]], scores: list[Mapping[str, Any]], where: str = "actor"
) -> tuple[RolloutBatch, torch.Tensor]:
    """One step's batch and ``[B]`` rewards from the rollout ranks' ``{"shard", "batch"}``
    items and the reward ranks' ``{"shard", "rewards"}`` items, joined by shard id and
    concatenated in shard (prompt) order.

    Raises:
        RuntimeError: the shards of the two lists do not match one to one, or a shard's
            scores do not have one reward per response row.
    """
    by_shard = {int(s["shard"]): s["rewards"] for s in scores}
    # Items arrive in completion order; sorting by shard (the first prompt index) makes
    # the batch, and so the update, independent of which rank finished first.
    ordered = sorted(batches, key=lambda it: int(it["shard"]))
    shards = [int(it["shard"]) for it in ordered]
    if len(by_shard) != len(scores) or sorted(by_shard) != shards:
        raise RuntimeError(f"{where}: batch shards {shards} but score shards {sorted(by_shard)}")
    for it in ordered:
        rows, rewards = it["batch"].batch_size, len(by_shard[int(it["shard"])])
        if rows != rewards:
            raise RuntimeError(
                f"{where}: shard {it['shard']} has {rows} rows but {rewards} rewards"
            )
    parts = [it["batch"] for it in ordered]
    if len({b.version for b in parts}) > 1:
        # Refills (dynamic sampling) use newer weights than the step's own rows.
        parts = [b.with_token_versions() for b in parts]
    batch = RolloutBatch.concat(parts)
    return batch, torch.cat([by_shard[s] for s in shards])
