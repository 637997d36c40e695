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
from rlinf.sched import LendDecision, Placement, SlotLender

from ._collect import Collect, Collected

__all__ = ["Overlapped", "UpdateLending"]

LENDERS = ("env", "rollout")


class Overlapped(NamedTuple):
    """What one lending update left: the actor's metrics (``sched/*`` added), the rollout
    started beside it (``pending``) and, when it ended before the update, what it
    collected (else ``None``: the flow waits for it and then calls
    :meth:`UpdateLending.rollout_done`)."""

    metrics: dict[str, Any]
    pending: Collect | None
    collected: Collected | None


class UpdateLending:
    """Lends the env / rollout slots to the actor's update (see the module docstring).

    Args:
        placement: the flow's placement (which slots each component owns).
        actor: the actor group (one rank, started with ``max_concurrency >= 2``).
        timeout_s: seconds to wait for any call.

    Raises:
        ValueError: the actor has several ranks, or shares a slot with env or rollout
            (nothing to lend: collocated components already take turns on all slots).
    """

    def __init__(self, placement: Placement, actor: WorkerGroup, timeout_s: float) -> None:
        self.check(placement)
        self.lender = SlotLender(
            {c: placement[c].devices for c in ("actor", *LENDERS)}, borrowers=["actor"]
        )
        self.actor = actor
        self.timeout_s = timeout_s
        self.decisions: list[LendDecision] = []  # the last update's
        self.phase = -1  # the last update's phase (ThreadLoans wants increasing phases)

    @staticmethod
    def spawn_options(dynamic: bool) -> dict[str, Any]:
        """``WorkerGroup.spawn`` options of the actor group.

        Dynamic: a second thread per rank, on which loans arrive while the update runs;
        and OpenMP's passive wait policy, so that the lent threads sleep rather than spin
        between parallel regions: a spinning thread would keep using the lender's core
        after the loan ends (on a shared machine, spinning threads also slowed a 2-thread
        MLP update 7-20x under load, against about even with passive waits).
        """
        if not dynamic:
            return {}
        return {"max_concurrency": 2, "env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}}

    @staticmethod
    def check(placement: Placement) -> None:
        """Raise ``ValueError`` naming the cause when ``placement`` cannot lend."""
        if placement["actor"].world_size != 1:
            raise ValueError(
                "scheduler.dynamic lends threads to a one-rank actor; placement.actor has "
                f"{placement['actor'].world_size} ranks (an elastic data-parallel world is "
                "not built)"
            )
        nodes = {rp.node_index for c in ("actor", *LENDERS) for rp in placement[c].ranks}
        if len(nodes) > 1:
            raise ValueError(
                f"scheduler.dynamic: actor, env and rollout run on nodes {sorted(nodes)}; "
                "threads can only be lent within one node"
            )
        slots = {c: placement[c].devices for c in ("actor", *LENDERS)}
        shared = set(slots["actor"]) & {s for c in LENDERS for s in slots[c]}
        if shared:
            raise ValueError(
                f"scheduler.dynamic: placement.actor shares slots {sorted(shared)} with env / "
                "rollout, so no slot is ever idle while it updates (give the actor slots "
                "of its own)"
            )

    def _apply(self, decisions: list[LendDecision], phase: int) -> None:
        self.decisions.extend(decisions)
        for d in decisions:
            if d.action == "lend":
                self.actor.call("lend_slots", phase, len(d.slots)).wait(self.timeout_s)
            # A recall needs no call: the loan ends with its update (phase scope).

    def _metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        out = dict(metrics)
        out.update(self.lender.take_metrics())
        out["sched/lent_update_s"] = out.pop("sched/actor_lent_s", 0.0)
        return out

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
