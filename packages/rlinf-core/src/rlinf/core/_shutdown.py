"""Shutdown helpers shared by the flows."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

__all__ = ["best_effort"]


def best_effort(fn: Callable[[], Any]) -> None:
    """Call ``fn`` and ignore any error it raises.

    For shutdown paths: when a run already failed, its first error is the one to report,
    not a follow-up failure while closing what is left.
    """
    with contextlib.suppress(Exception):
        fn()
