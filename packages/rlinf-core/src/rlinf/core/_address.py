"""WorkerAddress: how workers name each other (apart from the communicator, which needs
Ray and torch.distributed)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WorkerAddress"]


@dataclass(frozen=True, order=True)
class WorkerAddress:
    """Identifies one worker: its group name and rank.

    Attributes:
        group: Worker group name.
        rank: Rank within the group.
    """

    group: str
    rank: int

    def __str__(self) -> str:
        return f"{self.group}:{self.rank}"
