"""The driver side of ``scheduler.dynamic``, shared by the embodied and the LLM flows.

A flow lends the slots of components whose part of a step is done (its ``LENDERS``) to the
actor's update. :class:`~rlinf.sched.SlotLender` makes the decisions; :class:`SlotLending`
checks that a placement can lend, spawns the actor so that it can receive loans, applies
the decisions through the actor's ``lend_slots`` (``rlinf.sched.SlotBorrower``; CPU slots:
more intra-op threads, :class:`rlinf.core.ThreadLoans`) and turns them into ``sched/*``
metrics. Each flow's subclass decides *when* its lenders are done.

A loan is scoped to one update (its ``phase``): the actor gives the threads back when the
update ends, before the driver can start the lenders' next phase, so no recall call is
needed. Lending changes how many threads compute each update step, never which data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rlinf.sched import LendDecision, Placement, SlotLender

if TYPE_CHECKING:
    from rlinf.core import WorkerGroup

__all__ = ["SlotLending"]


class SlotLending:
    """Lends the ``LENDERS``' slots to the one-rank actor (see the module docstring).

    Args:
        placement: the flow's placement (which slots each component owns).
        actor: the actor group (one rank, spawned with :meth:`spawn_options`).
        timeout_s: seconds to wait for any call.

    Raises:
        ValueError: :meth:`check` fails.
    """

    LENDERS: ClassVar[tuple[str, ...]] = ()
    """The components whose slots are lent (set by each flow's subclass)."""

    def __init__(self, placement: Placement, actor: WorkerGroup, timeout_s: float) -> None:
        self.check(placement)
        self.lender = SlotLender(
            {c: placement[c].devices for c in ("actor", *self.LENDERS)}, borrowers=["actor"]
        )
        self.actor = actor
        self.timeout_s = timeout_s
        self.decisions: list[LendDecision] = []  # the last update's

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

    @classmethod
    def check(cls, placement: Placement) -> None:
        """Raise ``ValueError`` naming the cause when ``placement`` cannot lend."""
        if placement["actor"].world_size != 1:
            raise ValueError(
                "scheduler.dynamic lends threads to a one-rank actor; placement.actor has "
                f"{placement['actor'].world_size} ranks (an elastic data-parallel world is "
                "not built)"
            )
        names = " / ".join(cls.LENDERS)
        nodes = {rp.node_index for c in ("actor", *cls.LENDERS) for rp in placement[c].ranks}
        if len(nodes) > 1:
            raise ValueError(
                f"scheduler.dynamic: actor, {names} run on nodes {sorted(nodes)}; threads "
                "can only be lent within one node"
            )
        slots = {c: placement[c].devices for c in ("actor", *cls.LENDERS)}
        shared = set(slots["actor"]) & {s for c in cls.LENDERS for s in slots[c]}
        if shared:
            raise ValueError(
                f"scheduler.dynamic: placement.actor shares slots {sorted(shared)} with "
                f"{names}, so no slot is ever idle while it updates (give the actor slots "
                "of its own)"
            )

    def _apply(self, decisions: list[LendDecision], phase: int) -> None:
        self.decisions.extend(decisions)
        for d in decisions:
            if d.action == "lend":
                self.actor.call("lend_slots", phase, len(d.slots)).wait(self.timeout_s)
            # A recall needs no call: the loan ends with its update (phase scope).

    def _metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """``metrics`` plus the lender's ``sched/*`` totals, with the actor's
        ``sched/actor_lent_s`` renamed ``sched/lent_update_s``."""
        out = dict(metrics)
        out.update(self.lender.take_metrics())
        out["sched/lent_update_s"] = out.pop("sched/actor_lent_s", 0.0)
        return out
