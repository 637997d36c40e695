"""One training step of :class:`~rlinf.models.llm.LLMRLFlow` in two halves, so that a
driver can start the rollouts of later steps before an earlier step has trained.

:func:`start_step` sends step ``tag``'s prompts to the rollout ranks and asks the reward
ranks to score them; everything the step produces travels under keys of its own
(``("rollout", tag)``, ``("batch", tag)``, ``("scored", tag)``), so the items of several
steps in flight never mix. :func:`finish_step` asks the actor to train on the step's data
and waits for all three groups. The synchronous ``LLMRLFlow.step`` is the two halves back to
back, then a weight sync; :class:`~rlinf.models.llm.AsyncStepPipeline` keeps up to
``max_staleness`` steps started ahead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rlinf.channel import ChannelEmpty

from ._rl_merge import merge_step_metrics, split_evenly
from ._route import RolloutRoute

if TYPE_CHECKING:
    from ._flow import LLMRLFlow, PromptRow

__all__ = ["PendingStep", "add_throughput", "discard_step", "finish_step", "start_step"]


@dataclass(frozen=True)
class PendingStep:
    """A step whose rollouts and scoring have started.

    Attributes:
        tag: the step's id (its channel keys end with it).
        version: the weight version the rollout ranks were asked to generate with.
        rows: prompts of the step.
        rollout: future of the rollout ranks' ``rollout`` calls.
        reward: future of the reward ranks' ``serve`` calls.
        counts: rows per started shard (one shard per rollout rank with rows).
    """

    tag: int
    version: int
    rows: int
    rollout: Any
    reward: Any
    counts: tuple[int, ...]

    @property
    def keys(self) -> tuple[tuple[str, int], tuple[str, int], tuple[str, int]]:
        """Channel keys of the texts, the token batches and the scores of this step."""
        return ("rollout", self.tag), ("batch", self.tag), ("scored", self.tag)


def start_step(
    flow: LLMRLFlow,
    rows: Sequence[PromptRow],
    version: int,
    tag: int = 0,
    stream: int = 0,
    offset: int = 0,
) -> PendingStep:
    """Start the rollouts of ``rows`` with weights ``version`` and their scoring
    (``stream``: the index of this start among those with ``version``, for the seeds;
    ``offset``: the first shard's id, after the rows a step started already).

    Raises:
        ValueError: no rows.
    """
    if not rows:
        raise ValueError("a step needs at least one row")
    timeout = flow.config.runner.timeout_s
    text_key, batch_key, scored_key = ("rollout", tag), ("batch", tag), ("scored", tag)
    route = RolloutRoute(
        reward=flow.rollout_channel,
        batch=flow.batch_channel,
        reward_key=text_key,
        batch_key=batch_key,
    )
    rollout, counts = flow._rollout(
        rows, route, version, greedy=False, stream=stream, offset=offset
    )
    per_reward = split_evenly(range(len(counts)), flow.reward.world_size)
    reward = flow.reward.call_per_rank(
        "serve",
        [(flow.rollout_channel, flow.scored_channel, len(p)) for p in per_reward],
        in_key=text_key,
        out_key=scored_key,
        channel_timeout=timeout,
    )
    return PendingStep(tag, version, len(rows), rollout, reward, tuple(counts))


def finish_step(
    flow: LLMRLFlow,
    pending: PendingStep,
    max_staleness: int | None = None,
    ahead: Sequence[PendingStep] = (),
) -> dict[str, float]:
    """Train on ``pending``'s data: the actor's ``train/*`` (with ``train/staleness_*``)
    merged with the rollout and reward ranks' metrics; no weight sync, no ``time/step``.

    With ``flow.lending`` (``scheduler.dynamic``) the rollout / reward slots go to the
    update once ``pending``'s rollouts and scores are in, unless a step started ``ahead``
    still runs on them (:class:`~rlinf.models.llm._step_lending.StepLending`), and
    ``sched/*`` metrics are added."""
    timeout = flow.config.runner.timeout_s
    _, batch_key, scored_key = pending.keys
    lending = flow.lending
    phase = {} if lending is None else {"phase": pending.tag}
    actor = flow.actor.call(
        "update_from_channels",
        flow.batch_channel,
        flow.scored_channel,
        len(pending.counts),
        batch_key=batch_key,
        scored_key=scored_key,
        max_staleness=max_staleness,
        channel_timeout=timeout,
        **phase,
    )
    if lending is not None:
        lending.begin(pending.tag)
    # Wait on all three, actor last: an error in any group surfaces here (the others
    # then time out on their channels instead of hanging).
    roll_metrics = flow._wait(pending.rollout)
    reward_metrics = flow._wait(pending.reward)
    lent = lending is not None and lending.lenders_done(pending.tag, ahead)
    metrics = flow._wait(actor)[0]
    if lending is not None:
        metrics = lending.end(pending.tag, metrics, lent)
    metrics.update(
        merge_step_metrics(
            roll_metrics,
            list(pending.counts),
            reward_metrics,
            correct=flow.config.correct_statuses,
            no_answer=flow.config.no_answer_statuses,
        )
    )
    return metrics


def discard_step(flow: LLMRLFlow, pending: PendingStep) -> int:
    """Wait for ``pending``'s rollouts and scoring, then take its items off the channels
    unused (a step started ahead of the run's end); returns the response rows dropped."""
    flow._wait(pending.rollout)
    flow._wait(pending.reward)
    text_key, batch_key, scored_key = pending.keys
    dropped = 0
    for channel, key in (
        (flow.rollout_channel, text_key),
        (flow.batch_channel, batch_key),
        (flow.scored_channel, scored_key),
    ):
        while True:
            try:
                item = channel.get_nowait(key=key)
            except ChannelEmpty:
                break
            if key is batch_key:
                dropped += int(item["batch"].batch_size)
    return dropped


def add_throughput(metrics: dict[str, float], seconds: float) -> dict[str, float]:
    """Set ``time/step`` to ``seconds`` and ``throughput/tokens_per_s`` (generated plus
    trained tokens per second) and ``throughput/generated_tokens_per_s``; returns
    ``metrics``."""
    generated = metrics["rollout/generated_tokens"]
    metrics["time/step"] = seconds
    metrics["throughput/tokens_per_s"] = (generated + metrics["train/trained_tokens"]) / seconds
    metrics["throughput/generated_tokens_per_s"] = generated / seconds
    return metrics
