"""What rlinf.sched needs from the systems that use it; higher layers implement these."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ._spec import ComponentPlacement

__all__ = ["Offloadable", "PlacedGroup"]


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
