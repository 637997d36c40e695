"""Finish a step with DAPO dynamic sampling that refills from the data stream.

The driver takes the step's score shards off the scored channel as the reward ranks put
them (small: ``[B]`` rewards and statuses; the token batches go straight from the rollout
ranks to the actor as always). For each shard, :class:`~rlinf.models.llm._refill.RefillLedger`
marks the rows of informative groups and counts the flat ones; as many new prompts are
drawn and their rollouts and scoring started at once, under the same step's channel keys
with shard ids after every row started so far. The shard goes on, with its ``"keep"``
mask, under ``("kept", tag)``; once every started shard is judged, the actor reads all of
them and trains on the kept rows only (``LLMUpdater.update(select=)``).

Nothing waits for a whole round: a refill starts the moment one shard shows a flat group,
while the step's other shards still generate. The refills use the weights the rollout
ranks hold now (the actor's, before this step's update), so their samples are never
staler than the step's own; on a rank they queue behind the steps already started
(``runner.max_staleness``), which keep running.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._flow_step import start_step
from ._refill import RefillLedger
from ._rl_merge import merge_step_metrics

if TYPE_CHECKING:
    from ._flow import LLMRLFlow, PromptRow
    from ._flow_step import PendingStep

__all__ = ["finish_refill_step"]


def _offsets(first: int, counts: Sequence[int]) -> list[int]:
    """Shard ids of consecutive shards of ``counts`` rows starting at ``first``."""
    return [first + sum(counts[:i]) for i in range(len(counts))]


def finish_refill_step(
    flow: LLMRLFlow,
    pending: PendingStep,
    *,
    draw: Callable[[int], Sequence[PromptRow]],
    max_rounds: int,
    version: int,
    first_stream: int,
    max_staleness: int | None = None,
) -> dict[str, float]:
    """Fill ``pending``'s batch with informative groups, then train on it.

    Args:
        flow: the started flow.
        pending: the step (its prompts: the batch's ``target`` groups).
        draw: ``n -> n`` new rows from the data stream.
        max_rounds: the deepest refill round (``algo.max_refill_rounds`` >= 1).
        version: the weights the rollout ranks hold now (the refills generate with them).
        first_stream: the first seed stream no rollout with ``version`` has used.
        max_staleness: as :func:`~rlinf.models.llm._flow_step.finish_step`.

    Returns:
        :func:`finish_step`'s metrics over every generated shard, plus
        :meth:`RefillLedger.metrics` (``train/dynamic_sampling_*``).

    Raises:
        RuntimeError: ``draw`` returned another number of rows than asked.
    """
    timeout = flow.config.runner.timeout_s
    tag = pending.tag
    _, batch_key, scored_key = pending.keys
    ledger = RefillLedger(target=pending.rows, max_rounds=max_rounds)
    rows_of: dict[int, int] = {}
    for shard, count in zip(_offsets(0, pending.counts), pending.counts, strict=True):
        ledger.started(shard, count, 0)
        rows_of[shard] = count
    rollouts, rewards, counts = [pending.rollout], [pending.reward], list(pending.counts)
    next_offset, stream, waiting = pending.rows, first_stream, len(pending.counts)
    while waiting:
        item = flow.scored_channel.get(key=scored_key, timeout=timeout)
        waiting -= 1
        shard = int(item["shard"])
        keep, replace = ledger.observe(shard, item["rewards"], rows_of[shard])
        flow.scored_channel.put({**item, "keep": keep}, key=("kept", tag), timeout=timeout)
        if not replace:
            continue
        rows = draw(replace)
        if len(rows) != replace:
            raise RuntimeError(f"asked the data stream for {replace} rows, got {len(rows)}")
        refill = start_step(flow, rows, version, tag, stream, next_offset)
        round_ = ledger.round_of(shard) + 1
        for sid, count in zip(_offsets(next_offset, refill.counts), refill.counts, strict=True):
            ledger.started(sid, count, round_)
            rows_of[sid] = count
        rollouts.append(refill.rollout)
        rewards.append(refill.reward)
        counts.extend(refill.counts)
        next_offset, stream, waiting = (
            next_offset + replace,
            stream + 1,
            waiting + len(refill.counts),
        )
    actor = flow.actor.call(
        "update_from_channels",
        flow.batch_channel,
        flow.scored_channel,
        len(counts),
        batch_key=batch_key,
        scored_key=("kept", tag),
        max_staleness=max_staleness,
        channel_timeout=timeout,
    )
    roll_metrics: list[Any] = [m for f in rollouts for m in flow._wait(f)]
    reward_metrics: list[Any] = [m for f in rewards for m in flow._wait(f)]
    metrics = flow._wait(actor)[0]
    metrics.update(
        merge_step_metrics(
            roll_metrics,
            counts,
            reward_metrics,
            correct=flow.config.correct_statuses,
            no_answer=flow.config.no_answer_statuses,
        )
    )
    metrics.update(ledger.metrics())
    return metrics
