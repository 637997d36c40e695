"""Dynamic re-allocation within a step: a lender that moves idle slots to busy components.

Pure bookkeeping (no Ray, no torch): components report events, the :class:`SlotLender`
answers with :class:`LendDecision` records (who lends which slots to whom, when, and when
they come back). A flow applies each decision with its backend (CPU slots: the borrower
raises its intra-op threads; GPUs: an elastic data-parallel world or engine sleep) through
the :class:`~rlinf.sched.SlotBorrower` protocol; the decisions themselves never change.

Events, per component and step:

- ``start(c)``: ``c`` begins a phase on its own slots. Any of its slots lent out are
  recalled first (the returned decisions must be applied before ``c`` runs).
- ``need(c)``: running ``c`` could use more slots; idle slots are lent to it at once, or
  as soon as some become idle.
- ``done(c)``: ``c``'s part of the step is over. Slots lent *to* it are recalled; its own
  slots (those no running component shares) become idle and go to the first needing
  borrower, in the order given to the lender.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Literal

__all__ = ["LendDecision", "LendError", "SchedulerSection", "SlotLender"]


class LendError(ValueError):
    """An event the lender cannot accept (unknown component, wrong order, time going back)."""


@dataclasses.dataclass(frozen=True)
class SchedulerSection:
    """The ``scheduler`` section of an app config.

    Attributes:
        dynamic: lend the slots of a component whose part of a step is done to a component
            still running, for the rest of that step (``false``: the static placement
            exactly, no lending calls at all).
    """

    dynamic: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.dynamic, bool):
            raise LendError(f"scheduler.dynamic must be true or false, got {self.dynamic!r}")


@dataclasses.dataclass(frozen=True)
class LendDecision:
    """One decision of the lender.

    Attributes:
        action: ``"lend"`` (the borrower may use ``slots`` from now on) or ``"recall"``
            (it must stop using them before the lender's next phase).
        lender: the component that owns ``slots``.
        borrower: the component that uses them while lent.
        slots: the lent device (slot) indices.
        step: the step the event that caused it belongs to.
        at: the event's time (seconds, any monotonic clock).
        reason: why, for logs (``"rollout done"``, ``"actor done"``, ``"rollout starts"``).
    """

    action: Literal["lend", "recall"]
    lender: str
    borrower: str
    slots: tuple[int, ...]
    step: int
    at: float
    reason: str


@dataclasses.dataclass
class _Lease:
    lender: str
    borrower: str
    slots: tuple[int, ...]
    since: float


class SlotLender:
    """Decides which idle slots go to which running component, and when they return.

    Args:
        slots: component -> the slots it owns (its placement's devices); components may
            share slots (a shared slot is idle only when none of its owners runs).
        borrowers: components that may borrow, in priority order (all idle slots go to the
            first one that needs them; a GPU backend may ask for a subset later).

    Raises:
        LendError: a borrower is not in ``slots``, or a component owns no slot.
    """

    def __init__(self, slots: Mapping[str, Sequence[int]], borrowers: Sequence[str]) -> None:
        self._owned = {c: tuple(sorted(set(s))) for c, s in slots.items()}
        for c, owned in self._owned.items():
            if not owned:
                raise LendError(f"component {c!r} owns no slot")
        unknown = [b for b in borrowers if b not in self._owned]
        if unknown:
            raise LendError(f"borrowers {unknown} are not components {sorted(self._owned)}")
        self._borrowers = tuple(borrowers)
        self._running: dict[str, int] = {}  # component -> step of its running phase
        self._needing: set[str] = set()
        self._leases: list[_Lease] = []
        self._clock = float("-inf")
        self._lent_slots = 0
        self._lend_s = 0.0
        self._decisions = 0

    def _check(self, component: str, at: float) -> None:
        if component not in self._owned:
            raise LendError(f"unknown component {component!r}; known: {sorted(self._owned)}")
        if at < self._clock:
            raise LendError(
                f"event of {component!r} at {at} is before the last one ({self._clock})"
            )
        self._clock = at

    def _lent_out(self) -> set[int]:
        return {s for lease in self._leases for s in lease.slots}

    def _recall(
        self, leases: list[_Lease], step: int, at: float, reason: str
    ) -> list[LendDecision]:
        out = []
        for lease in leases:
            self._leases.remove(lease)
            self._lend_s += at - lease.since
            out.append(
                LendDecision("recall", lease.lender, lease.borrower, lease.slots, step, at, reason)
            )
        return out

    def _lend(self, step: int, at: float, reason: str) -> list[LendDecision]:
        """Lend every idle, not yet lent slot to the first needing borrower."""
        borrower = next((b for b in self._borrowers if b in self._needing), None)
        if borrower is None:
            return []
        busy = {s for c in self._running for s in self._owned[c]}
        taken = busy | self._lent_out()
        out = []
        for lender, owned in self._owned.items():
            free = tuple(s for s in owned if s not in taken)
            if lender in self._running or not free:
                continue
            taken.update(free)
            self._leases.append(_Lease(lender, borrower, free, at))
            self._lent_slots += len(free)
            out.append(LendDecision("lend", lender, borrower, free, step, at, reason))
        return out

    def _count(self, decisions: list[LendDecision]) -> list[LendDecision]:
        self._decisions += len(decisions)
        return decisions

    def start(self, component: str, step: int, at: float) -> list[LendDecision]:
        """``component`` begins its phase of ``step``: recall the slots it (or a component
        sharing them) lent out. Apply the recalls before it runs."""
        self._check(component, at)
        if component in self._running:
            raise LendError(
                f"{component!r} starts step {step} while its step {self._running[component]} "
                "still runs (report done first)"
            )
        mine = set(self._owned[component])
        back = [lease for lease in self._leases if mine & set(lease.slots)]
        self._running[component] = step
        return self._count(self._recall(back, step, at, f"{component} starts"))

    def need(self, component: str, step: int, at: float) -> list[LendDecision]:
        """Running ``component`` could use more slots for the rest of its phase."""
        self._check(component, at)
        if self._running.get(component) != step:
            raise LendError(f"{component!r} needs slots in step {step} but is not running it")
        if component not in self._borrowers:
            raise LendError(f"{component!r} is not a borrower ({list(self._borrowers)})")
        self._needing.add(component)
        return self._count(self._lend(step, at, f"{component} needs slots"))

    def done(self, component: str, step: int, at: float) -> list[LendDecision]:
        """``component``'s part of ``step`` is over: recall what it borrowed, then lend
        its now idle slots."""
        self._check(component, at)
        if self._running.get(component) != step:
            raise LendError(f"{component!r} reports step {step} done but is not running it")
        del self._running[component]
        self._needing.discard(component)
        borrowed = [lease for lease in self._leases if lease.borrower == component]
        out = self._recall(borrowed, step, at, f"{component} done")
        return self._count(out + self._lend(step, at, f"{component} done"))

    @property
    def leases(self) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
        """Active leases as ``(lender, borrower, slots)``."""
        return tuple((x.lender, x.borrower, x.slots) for x in self._leases)

    def take_metrics(self) -> dict[str, float]:
        """Totals since the last call, then reset: ``sched/lent_slots`` (slots lent),
        ``sched/lend_s`` (seconds leases were active, summed over recalled leases) and
        ``sched/decisions`` (lends and recalls)."""
        out = {
            "sched/lent_slots": float(self._lent_slots),
            "sched/lend_s": self._lend_s,
            "sched/decisions": float(self._decisions),
        }
        self._lent_slots, self._lend_s, self._decisions = 0, 0.0, 0
        return out
