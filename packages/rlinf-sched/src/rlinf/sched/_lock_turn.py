"""What every device lock does with a grant: hold it for a body of work, with the holder's
onload / offload hooks around it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from ._protocols import Offloadable

__all__ = ["TurnTaking"]


class TurnTaking:
    """Mixin of the device locks: :meth:`turn` over the subclass's ``acquire`` / ``release``."""

    def acquire(self, devices: Sequence[int], holder: str, timeout: float | None = None) -> None:
        raise NotImplementedError

    def release(self, devices: Sequence[int], holder: str) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def turn(
        self,
        devices: Sequence[int],
        holder: str,
        hooks: Offloadable | None = None,
        timeout: float | None = None,
    ) -> Iterator[None]:
        """Hold ``devices`` for the body; ``hooks.onload()`` runs after acquiring and
        ``hooks.offload()`` before releasing, so the next holder finds the devices free."""
        self.acquire(devices, holder, timeout)
        try:
            if hooks is not None:
                hooks.onload()
            try:
                yield
            finally:
                if hooks is not None:
                    hooks.offload()
        finally:
            self.release(devices, holder)
