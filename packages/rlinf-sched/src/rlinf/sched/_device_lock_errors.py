"""The device locks' error, apart from the Ray-backed lock so that raising it imports no Ray."""

from __future__ import annotations

__all__ = ["DeviceLockTimeout"]


class DeviceLockTimeout(TimeoutError):
    """A process waited too long for its devices; the message names who holds them."""
