"""rlinf.channel: every transport between rlinf's processes.

A :class:`Channel` connects producers and consumers anywhere in a Ray cluster. Payloads go
from the producer to Ray's object store and from there to the consumer; the actor hosting
the channel keeps only object references, so a payload is copied at most once on its way.

A :class:`DirectLink` (made by :meth:`DirectLink.connect` to a :class:`LinkListener`) is a
token-authenticated TCP connection for lockstep request/reply exchanges: one message each
way per round trip, no Ray call on the path.

:func:`put` / :func:`get` are the object store's two calls for everything else that hands
large values between processes (trajectories, weight snapshots): Ray's store where Ray runs
in the process, the value itself (:class:`LocalRef`) where every component runs in one.

Exports load on first use, so that importing the package imports no Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

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
    "LocalRef",
    "PeerDied",
    "get",
    "is_ref",
    "put",
    "wait_links",
]

_ERRORS = [
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
_LINK = [
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

# Each export's home module, imported on first access.
_HOMES = {
    "DEFAULT_KEY": "._channel",
    "Channel": "._channel",
    **dict.fromkeys(_ERRORS, "._errors"),
    **dict.fromkeys(_LINK, "._link"),
    **dict.fromkeys(("LocalRef", "get", "is_ref", "put"), "._store"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
