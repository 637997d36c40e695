"""What rlinf.sched needs from the systems that use it; higher layers implement these."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ._spec import ComponentPlacement

__all__ = ["Offloadable", "PlacedGroup", "SlotBorrower"]


@runtime_checkable
class Offloadable(Protocol):
    """A process that can free its devices between turns (e.g. move weights to host memory)."""

    def onload(self) -> None:
        """Bring state back onto the devices; called after acquiring them."""
        ...

    def offload(self) -> None:
        """Move state off the devices; called before releasing them to another process."""
        ...


@runtime_checkable
class PlacedGroup(Protocol):
    """A named group of processes launched on one component's placement."""

    @property
    def name(self) -> str:
        """The group's (component's) name."""
        ...

    @property
    def placement(self) -> ComponentPlacement:
        """Where each rank of the group runs."""
        ...


@runtime_checkable
class SlotBorrower(Protocol):
    """A process that can use lent slots for the rest of one phase (see ``SlotLender``).

    CPU slots: raise the intra-op thread count; GPUs (not built): join the lent devices'
    pre-started ranks into an elastic data-parallel world, or wake a sleeping engine. A
    loan is scoped to ``phase``: when that phase ends the borrower gives the slots back by
    itself, and a loan that arrives after its phase ended is ignored.
    """

    def lend_slots(self, phase: int, slots: int) -> None:
        """Use ``slots`` more slots from now until ``phase`` ends (or a recall)."""
        ...

    def recall_slots(self, phase: int) -> None:
        """Stop using the lent slots of ``phase`` before the next work unit."""
        ...
