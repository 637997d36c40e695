"""rlinf.channel: named, keyed, weighted FIFO queues between Ray processes.

A :class:`Channel` connects producers and consumers anywhere in a Ray cluster. Payloads go
from the producer to Ray's object store and from there to the consumer; the actor hosting
the channel keeps only object references, so a payload is copied at most once on its way.
"""

from rlinf.channel._channel import DEFAULT_KEY, Channel
from rlinf.channel._errors import (
    ChannelClosed,
    ChannelDied,
    ChannelEmpty,
    ChannelError,
    ChannelExists,
    ChannelFull,
    ChannelItemLost,
    ChannelNotFound,
    ChannelTimeout,
)

__all__ = [
    "DEFAULT_KEY",
    "Channel",
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
