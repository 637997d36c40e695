"""Exceptions raised by channels.

Every error names the channel (and the key where one is involved) so that a failure in a
flow of many channels points at the right one.
"""

from __future__ import annotations

__all__ = [
    "ChannelClosed",
    "ChannelDied",
    "ChannelEmpty",
    "ChannelError",
    "ChannelExists",
    "ChannelFull",
    "ChannelItemLost",
    "ChannelNotFound",
    "ChannelTimeout",
]


class ChannelError(Exception):
    """Base class of every error a channel raises."""


class ChannelClosed(ChannelError):
    """The channel was closed: no more puts, and gets find the key drained."""


class ChannelTimeout(ChannelError, TimeoutError):
    """A blocking put or get did not complete within its timeout; nothing was moved."""


class ChannelFull(ChannelError):
    """A non-blocking put found the key's queue at ``maxsize``."""


class ChannelEmpty(ChannelError):
    """A non-blocking get found nothing queued under the key."""


class ChannelDied(ChannelError):
    """The actor hosting the channel is dead; its queued items are gone with it."""


class ChannelNotFound(ChannelError):
    """No channel with that name exists in the namespace."""


class ChannelExists(ChannelError):
    """A channel with that name already exists in the namespace."""


class ChannelItemLost(ChannelError):
    """An item was delivered but its payload could not be fetched.

    The payload lives in the object store under the ownership of the process that put it;
    if that process died before the item was consumed, Ray cannot recover the payload.
    """
