"""AsyncStepPipeline: LLM RL steps with rollouts running up to ``max_staleness`` versions
ahead of the actor.

Before training step ``s`` (the actor then holds version ``v``), the rollouts of steps
``s+1 .. s+k`` are started too, with the weights the rollout ranks hold. They run while the
actor trains step ``s``; the weight sync after the update queues behind them on the rollout
ranks (a rank runs its calls in order), so step ``s+k``'s samples come from version
``v`` and are trained at version ``v+k``: never more than ``k`` behind, which the actor
checks again (``max_staleness`` of ``update_from_channels``). ``k=0`` is the synchronous
flow: start, train, sync, the same calls in the same order as ``LLMRLFlow.step``.
With partial rollouts (``LLMFlowConfig.partial``) the sync only publishes the new version
on a channel: a running rollout takes it between decoding steps and a queued one at its
start, so samples can only get fresher; the actor's check counts each sample's oldest
token.

With dynamic-sampling refill (``algo.max_refill_rounds``) a step's flat groups are replaced
while it trains, from the same stream, with the current weights (never staler than the
step's own samples); the steps started ahead keep running before them on the ranks.

Ray-free at import (the run loop's config checks use :func:`check_max_staleness`). No step
is started past ``total_steps``; a pipeline closed early (an error, a stop) discards
what it started ahead explicitly and counts it (:meth:`AsyncStepPipeline.close`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._flow import LLMRLFlow
    from ._flow_step import PendingStep

__all__ = ["AsyncStepPipeline", "check_max_staleness"]


def check_max_staleness(value: Any) -> int:
    """``value`` as a staleness bound: an ``int`` >= 0 (``bool`` refused).

    Raises:
        ValueError: naming ``max_staleness`` and the value.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"max_staleness must be an int >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"max_staleness must be >= 0, got {value}")
    return value


class AsyncStepPipeline:
    """Runs a flow's steps ``first_step .. total_steps - 1`` with bounded staleness.

    Args:
        flow: a started :class:`~rlinf.models.llm.LLMRLFlow` whose rollout ranks hold
            ``version`` (just synced).
        max_staleness: ``k``, how many versions a trained sample may lag the actor.
        version: the weight version the actor and the rollout ranks hold now.
        first_step: index of the next step to train (its channel tag).
        total_steps: steps of the whole run; none is started at or past it.
        draw: ``() -> rows`` of the next step to start (called in step order, up to ``k``
            steps before that step trains).
        refill: ``n -> n`` more rows for the step training now (dynamic sampling with
            refill, :mod:`~rlinf.models.llm._flow_refill`); ``None``: no refill.
        max_refill_rounds: ``algo.max_refill_rounds`` (>= 1 with ``refill``).
    """

    def __init__(
        self,
        flow: LLMRLFlow,
        *,
        max_staleness: int,
        version: int,
        first_step: int,
        total_steps: int,
        draw: Callable[[], Sequence[Any]],
        refill: Callable[[int], Sequence[Any]] | None = None,
        max_refill_rounds: int = 0,
    ) -> None:
        if (refill is None) != (max_refill_rounds == 0):
            raise ValueError(
                f"refill and max_refill_rounds go together, got refill={refill!r}, "
                f"max_refill_rounds={max_refill_rounds}"
            )
        self.refill = refill
        self.max_refill_rounds = max_refill_rounds
        self.flow = flow
        self.max_staleness = check_max_staleness(max_staleness)
        self.version = version
        self.total_steps = total_steps
        self.draw = draw
        self._next_train = first_step
        self._next_start = first_step
        self._started: deque[PendingStep] = deque()

    @property
    def in_flight(self) -> int:
        """Steps started and not yet trained."""
        return len(self._started)

    def step(self) -> dict[str, float]:
        """Start what the bound allows, train the oldest started step, sync the weights.

        Returns the flow's step metrics; ``time/step`` is this call's duration. The sync
        at its end waits for every rollout started so far (a rank runs its calls in
        order), so nothing runs between calls (evaluation, checkpoints) and the calls'
        durations add up to the run's training time: ``throughput/*`` is the pipeline's
        rate, the generation of later steps overlapping this step's update.

        Raises:
            RuntimeError: every step has been trained already.
        """
        from ._flow_step import add_throughput  # imports Ray: not at this module's import

        if self._next_train >= self.total_steps:
            raise RuntimeError(f"all {self.total_steps} steps are trained")
        begin = time.perf_counter()
        last = min(self._next_train + self.max_staleness, self.total_steps - 1)
        while self._next_start <= last:
            rows = self.draw()
            # Rollouts started with the same weights draw from distinct seed streams.
            stream = sum(p.version == self.version for p in self._started)
            pending = self.flow.start_step(rows, self.version, tag=self._next_start, stream=stream)
            self._started.append(pending)
            self._next_start += 1
        pending = self._started.popleft()
        if self.refill is None:
            metrics = self.flow.finish_step(
                pending, max_staleness=self.max_staleness, ahead=tuple(self._started)
            )
        else:
            metrics = self._finish_with_refill(pending)
        self._next_train += 1
        t_update_done = time.perf_counter()
        self.version = self.flow.sync_weights()
        end = time.perf_counter()
        metrics["time/weight_sync"] = end - t_update_done
        metrics["train/in_flight_steps"] = float(len(self._started))
        return add_throughput(metrics, end - begin)

    def _finish_with_refill(self, pending: PendingStep) -> dict[str, float]:
        """Train ``pending`` with refills generated by the weights held now (the actor's)."""
        from ._flow_refill import finish_refill_step

        assert self.refill is not None
        # The refills' seeds: streams after those of every rollout started with them.
        used = sum(p.version == self.version for p in (pending, *self._started))
        return finish_refill_step(
            self.flow,
            pending,
            draw=self.refill,
            max_rounds=self.max_refill_rounds,
            version=self.version,
            first_stream=used,
            max_staleness=self.max_staleness,
        )

    def close(self) -> dict[str, float]:
        """Discard every step started and not trained: wait for its rollouts and scoring,
        take its items off the channels. Returns ``rollout/discarded_steps`` and
        ``rollout/discarded_responses``."""
        from ._flow_step import discard_step

        steps = responses = 0
        while self._started:
            responses += discard_step(self.flow, self._started.popleft())
            steps += 1
        return {
            "rollout/discarded_steps": float(steps),
            "rollout/discarded_responses": float(responses),
        }
