"""Evaluation of :class:`~rlinf.models.llm.LLMRLFlow`: greedy responses scored by reward
rank 0, only metrics come back to the driver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rlinf.channel import Channel, ChannelEmpty

from ._rl_merge import merge_step_metrics
from ._route import RolloutRoute

if TYPE_CHECKING:
    from ._flow import LLMRLFlow, PromptRow

__all__ = ["evaluate"]


def evaluate(flow: LLMRLFlow, rows: Sequence[PromptRow], version: int) -> dict[str, float]:
    """One greedy response per row from weights ``version``, scored by reward rank 0;
    responses go from the rollout ranks to the scorer through the rollout channel
    (key ``"eval"``), only metrics come back.

    Returns ``eval/accuracy`` (mean score), ``eval/no_answer_rate``,
    ``eval/response_length`` (tokens per row), ``eval/prompts``, and ``eval/<key>``: the
    mean of every other per-row ``[B]`` tensor ``generate`` returns (turns, tool calls).
    """
    if not rows:
        raise ValueError("no rows to evaluate")
    route = RolloutRoute(reward=flow.rollout_channel, reward_key="eval")
    rollout, counts = flow._rollout(rows, route, version, greedy=True)
    # Scoring starts once every shard is in: a failed rank (e.g. asked for weights it
    # lacks) must not leave a scorer blocked on shards that never come, nor leave the
    # other ranks' shards for the next evaluation.
    try:
        roll_metrics = flow._wait(rollout)
    except BaseException:
        _drain(flow.rollout_channel, "eval")
        raise
    reward = flow.reward.call(
        "serve",
        flow.rollout_channel,
        None,
        len(counts),
        ranks=0,
        in_key="eval",
        channel_timeout=flow.config.runner.timeout_s,
    )
    merged = merge_step_metrics(
        roll_metrics,
        counts,
        flow._wait(reward),
        correct=flow.config.correct_statuses,
        no_answer=flow.config.no_answer_statuses,
    )
    out = {
        "eval/accuracy": merged["rollout/reward_mean"],
        "eval/no_answer_rate": merged["rollout/no_answer_rate"],
        "eval/response_length": merged["rollout/response_length"],
    }
    # The rollout ranks' per-row means (turns, tool calls, ...), weighted by rows.
    per_row = {k for m in roll_metrics for k in m if k.startswith("rollout/")}
    for key in sorted(per_row - {"rollout/generated_tokens"}):
        out["eval/" + key.removeprefix("rollout/")] = merged[key]
    out["eval/prompts"] = float(len(rows))
    return out


def _drain(channel: Channel, key: str) -> None:
    """Drop what is queued under ``key`` (the shards of a failed evaluation)."""
    while True:
        try:
            channel.get_nowait(key=key)
        except ChannelEmpty:
            return
