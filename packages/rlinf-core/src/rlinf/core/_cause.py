"""Which error a failed run reports last: the root cause, not a follow-up failure.

When a process dies, its peers fail too (a rollout rank's connection to a killed env worker
closes; every user of a dead channel gets a dead-actor error), and the error that reaches
the top of the driver is often such a follow-up, raised while the first one was handled.
:func:`root_cause` picks the error to name from the exception chain and from the failures
this process recorded (:func:`record_failure`: the deaths a ``GroupFuture`` or a shutdown
observed), so that a CLI's last line names the cause.

This module imports no Ray.
"""

from __future__ import annotations

import collections
import sys
import traceback
from collections.abc import Sequence
from typing import IO

from ._errors import WorkerError

__all__ = [
    "NAMED_DEATHS",
    "clear_failures",
    "death_rank",
    "describe",
    "exception_chain",
    "failures_seen",
    "record_failure",
    "report_failure",
    "root_cause",
]

NAMED_DEATHS = frozenset({"WorkerDied", "ChannelDied"})
"""Error types that name what died (a group and rank, a channel)."""

_UNNAMED_DEATHS = frozenset({"RayActorError", "ActorDiedError", "ActorUnavailableError"})

_SEEN: collections.deque[BaseException] = collections.deque(maxlen=32)


def record_failure(error: BaseException) -> None:
    """Remember ``error`` as a failure this process saw (the last 32 are kept)."""
    _SEEN.append(error)


def failures_seen() -> list[BaseException]:
    """The failures recorded since the last :func:`clear_failures`, oldest first."""
    return list(_SEEN)


def clear_failures() -> None:
    """Forget the recorded failures (at the start of a run)."""
    _SEEN.clear()


def exception_chain(error: BaseException) -> list[BaseException]:
    """``error`` and the errors it was raised from or while handling, oldest first.

    Follows ``__cause__``, else ``__context__`` unless suppressed (``raise ... from
    None``), as Python's traceback printing does; stops at cycles.
    """
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__suppress_context__:
            current = None
        else:
            current = current.__context__
    return chain[::-1]


def _type_names(error: BaseException) -> set[str]:
    names = {cls.__name__ for cls in type(error).__mro__}
    if isinstance(error, WorkerError):
        # The remote exception's class, e.g. a ChannelDied raised inside a worker.
        names.add(error.remote_type)
    return names


def death_rank(error: BaseException) -> int:
    """0: a named death (``WorkerDied``, ``ChannelDied``, also raised in a worker);
    1: an unnamed one (Ray's dead-actor errors); 2: anything else."""
    names = _type_names(error)
    if names & NAMED_DEATHS:
        return 0
    if names & _UNNAMED_DEATHS:
        return 1
    return 2


def root_cause(error: BaseException, seen: Sequence[BaseException] = ()) -> BaseException:
    """The error a failed run should name last.

    Among ``error``'s chain (oldest first) and then ``seen``: the first named death, else
    the first unnamed death. Otherwise the error that the others were raised while
    handling: follow ``__context__`` back while no ``raise ... from`` ended it (an
    explicit cause is a deliberate rewording and is kept).
    """
    chain = exception_chain(error)
    candidates = [*chain, *(e for e in seen if all(e is not c for c in chain))]
    best = min(candidates, key=death_rank)
    if death_rank(best) < 2:
        return best
    first, visited = error, {id(error)}
    while (
        first.__cause__ is None
        and not first.__suppress_context__
        and first.__context__ is not None
        and id(first.__context__) not in visited
    ):
        first = first.__context__
        visited.add(id(first))
    return first


def describe(error: BaseException) -> str:
    """One line: ``<type>: <first line of the message>`` (a worker's error message is
    several lines long, ending with its remote traceback)."""
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    name = type(error).__name__
    return f"{name}: {first}" if first else name


def report_failure(prog: str, error: BaseException, stream: IO[str] | None = None) -> int:
    """Print ``error``'s traceback, then ``<prog>: error: <root cause>`` as the last line
    (:func:`root_cause` over the chain and :func:`failures_seen`); returns 1."""
    out = stream if stream is not None else sys.stderr
    traceback.print_exception(error, file=out)
    cause = root_cause(error, failures_seen())
    print(f"{prog}: error: {describe(cause)}", file=out, flush=True)
    return 1
