"""GroupFuture: the pending result of one call on several ranks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, NamedTuple

from ._batch import concat_batches
from ._cause import death_rank, record_failure
from ._errors import CallTimeout, WorkerDied, WorkerError
from ._local import LocalRankDied

__all__ = ["GroupFuture", "wait_first"]

_UNSET: Any = object()


class GroupFuture:
    """Results of ``method`` on ``ranks``, in the order the ranks were given.

    ``wait()`` blocks (``await future`` does the same in asyncio code). The first failing
    rank raises at once, without waiting for the others: WorkerError (with the remote
    traceback), WorkerDied (process gone), or CallTimeout.

    The pending answers are Ray ObjectRefs, or ``concurrent.futures.Future`` of ranks
    hosted in this process (:mod:`rlinf.core._local`); Ray is imported only for the former.
    """

    def __init__(
        self,
        group: str,
        method: str,
        ranks: Sequence[int],
        refs: Sequence[Any],
        timeout: float | None,
        on_died: Callable[[int], None] | None = None,
    ):
        self.group = group
        self.method = method
        self.ranks = tuple(ranks)
        self._refs = list(refs)
        self._timeout = timeout
        self._on_died = on_died
        self._results: dict[int, Any] = {}

    def _unwrap(self, index: int, ref: Any) -> None:
        rank = self.ranks[index]
        reply = _reply(ref)
        if isinstance(reply, _Died):
            if self._on_died is not None:
                self._on_died(rank)
            died = WorkerDied(self.group, rank, self.method, reply.cause)
            # Kept for the CLI's last line, in case a follow-up error replaces this one.
            record_failure(died)
            raise died from None
        if isinstance(reply, BaseException):
            raise WorkerError(
                self.group, rank, self.method, type(reply).__name__, str(reply), ""
            ) from None
        if reply[0] == "err":
            _, kind, message, tb = reply
            error = WorkerError(self.group, rank, self.method, kind, message, tb)
            if death_rank(error) < 2:
                record_failure(error)
            raise error
        self._results[index] = reply[1]

    def _pending(self) -> dict[Any, int]:
        return {ref: i for i, ref in enumerate(self._refs) if i not in self._results}

    def _timeout_error(self, pending: dict[Any, int], timeout: float) -> CallTimeout:
        return CallTimeout(
            self.group, self.method, [self.ranks[i] for i in pending.values()], timeout
        )

    def wait(self, timeout: float | None = _UNSET) -> list[Any]:
        """Block until every rank answered; return the results in rank order.

        Args:
            timeout: Seconds to wait (None: forever); defaults to the call's timeout.
        """
        timeout = self._timeout if timeout is _UNSET else timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        pending = self._pending()
        while pending:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = _wait(list(pending), 1, remaining)
            if not ready:
                raise self._timeout_error(pending, timeout)
            for ref in ready:
                self._unwrap(pending.pop(ref), ref)
        return [self._results[i] for i in range(len(self._refs))]

    def gather(self, timeout: float | None = _UNSET) -> Any:
        """``wait()``, then concatenate the per-rank results (tensors along dim 0, lists
        chained, dicts key by key)."""
        return concat_batches(self.wait(timeout))

    def done(self) -> bool:
        """Whether every rank has answered (successfully or not)."""
        pending = list(self._pending())
        if not pending:
            return True
        return len(_wait(pending, len(pending), 0)) == len(pending)

    async def _wait_async(self) -> list[Any]:
        timeout = self._timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        futures = {
            asyncio.wrap_future(ref if _is_local(ref) else ref.future()): (ref, i)
            for ref, i in self._pending().items()
        }
        while futures:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = await asyncio.wait(
                list(futures), timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                for f in futures:
                    f.cancel()
                raise self._timeout_error({r: i for r, i in futures.values()}, timeout)
            for f in done:
                ref, i = futures.pop(f)
                self._unwrap(i, ref)
        return [self._results[i] for i in range(len(self._refs))]

    def __await__(self) -> Generator[Any, None, list[Any]]:
        return self._wait_async().__await__()

    def __repr__(self) -> str:
        return f"GroupFuture({self.group!r}.{self.method}, ranks={list(self.ranks)})"


def wait_first(futures: Sequence[GroupFuture], timeout: float) -> int:
    """Block until one of ``futures`` has every answer; return its index (the first one
    in order when several are). Answers are not unwrapped: ``wait()`` the returned future
    to get its results or its error.

    Raises:
        CallTimeout: none finished within ``timeout`` seconds (names the first future).
    """
    if not futures:
        raise ValueError("wait_first needs at least one future")
    deadline = time.monotonic() + timeout
    while True:
        for i, future in enumerate(futures):
            if future.done():
                return i
        pending = [ref for f in futures for ref in f._pending()]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            first = futures[0]
            raise first._timeout_error(first._pending(), timeout)
        # Wake on one more answer than those already in (answers of a future whose other
        # ranks still run would otherwise return at once, and the loop would spin).
        ready = _wait(pending, len(pending), 0)
        _wait(pending, len(ready) + 1, remaining)


def _is_local(ref: Any) -> bool:
    return isinstance(ref, concurrent.futures.Future)


def _wait(refs: list[Any], num_returns: int, timeout: float | None) -> list[Any]:
    """The answers among ``refs`` that are in, once ``num_returns`` are (or ``timeout``
    passed); ``ray.wait``'s contract, for ObjectRefs or in-process futures."""
    if not refs:
        return []
    if not _is_local(refs[0]):
        import ray

        return ray.wait(refs, num_returns=num_returns, timeout=timeout)[0]
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        done = [f for f in refs if f.done()]
        waiting = [f for f in refs if not f.done()]
        remaining = None if deadline is None else deadline - time.monotonic()
        # All in (num_returns above len(refs) asks for more than there is): no busy loop.
        if len(done) >= num_returns or not waiting or (remaining is not None and remaining <= 0):
            return done
        concurrent.futures.wait(
            waiting, timeout=remaining, return_when=concurrent.futures.FIRST_COMPLETED
        )


class _Died(NamedTuple):
    """The rank behind an answer is gone (process died, or in-process rank killed)."""

    cause: str


def _reply(ref: Any) -> Any:
    """The host's reply tuple behind a finished answer, or what stands for it:
    :class:`_Died` when the rank is gone, the exception when the transport failed."""
    if _is_local(ref):
        try:
            return ref.result(timeout=0)
        except LocalRankDied as e:
            return _Died(_first_line(e))
        except Exception as e:
            return e
    import ray
    from ray.exceptions import RayActorError, RayError

    try:
        return ray.get(ref, timeout=0)
    except RayActorError as e:
        return _Died(_first_line(e))
    except ray.exceptions.GetTimeoutError:
        raise
    except RayError as e:
        return e


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
