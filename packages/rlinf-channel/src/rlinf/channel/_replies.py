"""Turning the hosting actor's replies and a caller's arguments into results or clear errors."""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

from rlinf.channel._actor import Status
from rlinf.channel._errors import (
    ChannelClosed,
    ChannelDied,
    ChannelEmpty,
    ChannelError,
    ChannelFull,
    ChannelItemLost,
    ChannelTimeout,
)

__all__ = [
    "check_target",
    "check_timeout",
    "check_weight",
    "died_error",
    "lost_error",
    "raise_for_status",
]


def raise_for_status(
    name: str, reply: tuple[Any, ...], key: Hashable, timeout: float | None
) -> None:
    """Raise the error that ``reply``'s status stands for; return if it is ``Status.OK``."""
    status = reply[0]
    if status == Status.OK:
        return
    where = f"channel {name!r}, key {key!r}"
    if status == Status.CLOSED:
        raise ChannelClosed(f"{where}: the channel is closed")
    if status == Status.TIMEOUT:
        raise ChannelTimeout(f"{where}: timed out after {timeout} s")
    if status == Status.FULL:
        raise ChannelFull(f"{where}: the queue is full")
    if status == Status.EMPTY:
        raise ChannelEmpty(f"{where}: the queue is empty")
    if status == Status.OVERSIZED:
        raise ValueError(
            f"{where}: the next item weighs {reply[1]}, more than the batch target; "
            f"get it with get() or raise the target"
        )
    raise ChannelError(f"{where}: unexpected reply {status!r}")


def died_error(name: str, err: BaseException) -> ChannelDied:
    """The error for a call whose hosting actor died."""
    return ChannelDied(f"The actor hosting channel {name!r} is dead: {err}")


def lost_error(name: str, key: Hashable, err: BaseException) -> ChannelItemLost:
    """The error for an item whose payload died with its producer."""
    return ChannelItemLost(
        f"channel {name!r}, key {key!r}: the item's payload is gone because the "
        f"process that put it died before it was consumed ({type(err).__name__})"
    )


def check_weight(name: str, weight: float) -> None:
    """Reject a put weight that is negative, NaN or infinite."""
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(f"channel {name!r}: weight must be finite and >= 0, got {weight!r}")


def check_target(name: str, target_weight: float) -> None:
    """Reject a batch target that is not a finite positive number."""
    if not math.isfinite(target_weight) or target_weight <= 0:
        raise ValueError(
            f"channel {name!r}: target_weight must be finite and > 0, got {target_weight!r}"
        )


def check_timeout(name: str, timeout: float | None) -> None:
    """Reject a negative or NaN timeout (``None`` waits forever)."""
    if timeout is not None and not timeout >= 0:
        raise ValueError(f"channel {name!r}: timeout must be None or >= 0, got {timeout!r}")
