"""rlinf.channel: every transport between rlinf's processes.

A :class:`Channel` connects producers and consumers anywhere in a Ray cluster. Payloads go
from the producer to Ray's object store and from there to the consumer; the actor hosting
the channel keeps only object references, so a payload is copied at most once on its way.

A :class:`DirectLink` (made by :meth:`DirectLink.connect` to a :class:`LinkListener`) is a
token-authenticated TCP connection for lockstep request/reply exchanges: one message each
way per round trip, no Ray call on the path.
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
from rlinf.channel._link import (
    DirectLink,
    LinkAddress,
    LinkClosed,
    LinkError,
    LinkListener,
    LinkRefused,
    LinkTimeout,
    PeerDied,
    wait_links,
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
    "DirectLink",
    "LinkAddress",
    "LinkClosed",
    "LinkError",
    "LinkListener",
    "LinkRefused",
    "LinkTimeout",
    "PeerDied",
    "wait_links",
]
