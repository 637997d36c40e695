"""Dynamic re-allocation in the embodied flow (``scheduler.dynamic``).

The actor's update is the borrower. With ``runner.overlap_update`` the next rollout runs
beside the update; when it finishes first, its slots (env and rollout devices) are lent to
the actor for the rest of the update. Without overlap the rollout is over before the
update starts, so its slots are lent at once. :class:`~rlinf.sched.SlotLender` makes the
decisions; this module applies them through the actor's ``lend_slots`` (CPU slots: more
intra-op threads, see :class:`rlinf.core.ThreadLoans`) and reports them as metrics.

A loan is scoped to one update (its ``phase``): the actor gives the threads back when the
update ends, before the driver can start the lender's next rollout, so the lender's
``start`` recalls nothing here. The same samples are trained on: lending changes only how
many threads compute each mini-batch step, never which data or in which order.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from rlinf.core import GroupFuture, WorkerGroup, wait_first
from rlinf.sched import Placement

from .._lending import SlotLending
from ._collect import Collect, Collected

__all__ = ["Overlapped", "UpdateLending"]

LENDERS: tuple[str, ...] = ("env", "rollout")


class Overlapped(NamedTuple):
    """What one lending update left: the actor's metrics (``sched/*`` added), the rollout
    started beside it (``pending``) and, when it ended before the update, what it
    collected (else ``None``: the flow waits for it and then calls
    :meth:`UpdateLending.rollout_done`)."""

    metrics: dict[str, Any]
    pending: Collect | None
    collected: Collected | None


class UpdateLending(SlotLending):
    """Lends the env / rollout slots to the actor's update (see the module docstring;
    checks, spawn options and metrics: :class:`~rlinf.models._lending.SlotLending`).

    Args:
        placement: the flow's placement (which slots each component owns).
        actor: the actor group (one rank, started with ``max_concurrency >= 2``).
        timeout_s: seconds to wait for any call.

    Raises:
        ValueError: the actor has several ranks, or shares a slot with env or rollout
            (nothing to lend: collocated components already take turns on all slots).
    """

    LENDERS = LENDERS

    def __init__(self, placement: Placement, actor: WorkerGroup, timeout_s: float) -> None:
        super().__init__(placement, actor, timeout_s)
        self.phase = -1  # the last update's phase (ThreadLoans wants increasing phases)

    def update(
        self,
        update: Callable[[int], GroupFuture],
        phase: int,
        ahead: Callable[[], Collect] | None,
        finish: Callable[[Collect], Collected],
    ) -> Overlapped:
        """Run the update ``phase`` (``update(phase)`` starts it) with lending; with
        ``ahead`` (overlap) start the next rollout beside it and lend its slots once
        ``finish`` has collected it, if the update still runs."""
        start = time.perf_counter()
        clock = self.lender
        self.decisions = []  # this update's, for logs and tests
        future = update(phase)
        self._apply(clock.start("actor", phase, start), phase)
        if ahead is None:
            # The rollout ran before the update: its slots are idle now.
            self._apply(clock.need("actor", phase, time.perf_counter()), phase)
            metrics = future.wait(self.timeout_s)[0]
            self._apply(clock.done("actor", phase, time.perf_counter()), phase)
            return Overlapped(self._metrics(metrics), None, None)
        pending = ahead()
        for c in LENDERS:
            self._apply(clock.start(c, phase, time.perf_counter()), phase)
        self._apply(clock.need("actor", phase, time.perf_counter()), phase)
        collected = None
        if wait_first([future, pending.envs], self.timeout_s * 2) == 1:
            collected = finish(pending)
            for c in LENDERS:
                self._apply(clock.done(c, phase, time.perf_counter()), phase)
        metrics = future.wait(self.timeout_s)[0]
        self._apply(clock.done("actor", phase, time.perf_counter()), phase)
        # collected None: the update ended first; the flow stages the weights while the
        # rollout still runs, as without lending, then reports it (rollout_done).
        return Overlapped(self._metrics(metrics), pending, collected)

    def run(self, flow: Any, trajectories: list[Any], version: int, overlap: bool) -> Overlapped:
        """:meth:`update` on ``flow`` (an :class:`~rlinf.models.embodied.EmbodiedFlow`): the
        actor updates on ``trajectories``; with ``overlap`` the next rollout acts with
        weights ``version`` beside it. Each call is the next phase."""
        self.phase += 1
        return self.update(
            lambda p: flow.actor.call("update", trajectories, p),
            self.phase,
            functools.partial(flow.start_collect, version) if overlap else None,
            flow.finish_collect,
        )

    def rollout_done(self) -> None:
        """The rollout started beside the last update ended after it (nothing is lent
        then: nobody needs the slots)."""
        for c in LENDERS:
            self._apply(self.lender.done(c, self.phase, time.perf_counter()), self.phase)
