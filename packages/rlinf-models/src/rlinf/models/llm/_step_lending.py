"""Dynamic re-allocation in the LLM flow (``scheduler.dynamic``).

With a disaggregated placement (rollout and reward on their slots, the actor on its own),
the rollout / reward slots are idle once a step's rollouts and scores are in, while the
actor still computes log-probs and trains on them. :class:`StepLending` then lends those
slots to the actor's update (:class:`~rlinf.models._lending.SlotLending`: decisions by
:class:`~rlinf.sched.SlotLender`, applied as more intra-op threads,
:class:`rlinf.core.ThreadLoans`) until the update ends; the next step's generation starts
only after that (the loan is scoped to the update), so nothing needs recalling.

With ``runner.max_staleness = k > 0`` the rollouts of the next steps were started before
this step trains and run beside its update on the lender's slots: those slots are lent
only when no such rollout or scoring is still running when this step's are done (in
practice the last steps of a run); a rollout that ends during the update lends nothing
(lending then would need the update to wait on it, as the embodied flow's overlapped
case does; not built here). The same samples are trained on either way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rlinf.sched import Placement

from .._lending import SlotLending
from ._generation import GenerationConfig
from ._updater_config import LLMUpdaterConfig

__all__ = ["StepLending", "check_llm_dynamic"]


class StepLending(SlotLending):
    """Lends the rollout / reward slots to the actor's update of each step.

    Per step (``phase`` = the step's tag, increasing): :meth:`begin` when the actor's
    update call is sent, :meth:`lenders_done` once the step's rollouts and scores are in,
    :meth:`end` with the actor's metrics.

    Args: as :class:`~rlinf.models._lending.SlotLending`.
    """

    LENDERS = ("rollout", "reward")

    def begin(self, phase: int) -> None:
        """The actor's update of step ``phase`` was sent; the step's rollouts run."""
        self.decisions = []
        at = time.perf_counter()
        for c in ("actor", *self.LENDERS):
            self._apply(self.lender.start(c, phase, at), phase)
        # Nothing is idle yet: the need is recorded and served when the lenders are done.
        self._apply(self.lender.need("actor", phase, at), phase)

    def lenders_done(self, phase: int, ahead: Sequence[Any] = ()) -> bool:
        """The step's rollouts and scores are in: lend their slots, unless a rollout or
        scoring of a step started ahead (``ahead``: ``PendingStep``\\ s) still runs on
        them. Returns whether the slots were lent."""
        if any(not (p.rollout.done() and p.reward.done()) for p in ahead):
            return False
        self._lenders_done(phase)
        return True

    def _lenders_done(self, phase: int) -> None:
        for c in self.LENDERS:
            self._apply(self.lender.done(c, phase, time.perf_counter()), phase)

    def end(self, phase: int, metrics: dict[str, Any], lent: bool) -> dict[str, Any]:
        """The update of ``phase`` ended: ``metrics`` plus ``sched/*`` (``lent_slots``,
        ``lend_s``, ``decisions``, ``lent_update_s``: seconds the update ran with lent
        threads)."""
        self._apply(self.lender.done("actor", phase, time.perf_counter()), phase)
        if not lent:
            # The lenders' rollouts of later steps kept the slots: close the phase without
            # lending (the actor no longer needs them).
            self._lenders_done(phase)
        return self._metrics(metrics)


def check_llm_dynamic(
    placement: Placement, generation: GenerationConfig, algo: LLMUpdaterConfig
) -> None:
    """Raise ``ValueError`` naming the cause when ``scheduler.dynamic`` cannot apply:
    shared slots (collocated), a multi-rank actor or several nodes
    (:meth:`StepLending.check`), GPUs or a generation engine (lending needs an elastic
    data-parallel world or engine sleep there, not built), or DAPO refill (its rollouts
    run during the update, on the slots that would be lent)."""
    StepLending.check(placement)
    device = placement.topology.device_type
    if device != "cpu":
        raise ValueError(
            f"scheduler.dynamic lends CPU slots (intra-op threads); the placement's devices "
            f"are {device!r} (lending GPUs is not built)"
        )
    if generation.backend != "hf":
        raise ValueError(
            f"scheduler.dynamic: generation.backend={generation.backend!r} keeps its engine "
            "on the rollout slots between steps (engine sleep is not built); use 'hf'"
        )
    if algo.max_refill_rounds:
        raise ValueError(
            f"scheduler.dynamic: algo.max_refill_rounds={algo.max_refill_rounds} generates "
            "refills on the rollout slots while the actor updates, so they are never idle"
        )
