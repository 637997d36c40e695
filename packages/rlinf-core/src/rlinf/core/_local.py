"""The in-process backend: every rank of a flow hosted by a thread of the driver's process.

For a flow whose whole placement is one slot (one rank per component, all on the same
device), starting Ray and one process per rank costs most of the time to the first step
on a laptop. Here each rank is a :class:`LocalRank`: the same :class:`WorkerHost` (so the
same Worker classes, errors and warm-up) served by its own thread(s), calls run in the
order they were submitted, as on a Ray actor. :class:`LocalPlacement` stands in for the
Ray placement groups. Nothing here imports Ray.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from concurrent.futures import Future, InvalidStateError
from typing import Any

from rlinf.sched import LocalDeviceLock, Placement

from ._backend import check_single_slot
from ._host import WorkerHost
from ._worker import Worker, WorkerContext

__all__ = ["LocalPlacement", "LocalRank", "LocalRankDied"]


# Worker constructors seed torch's process-wide generator and then build their models
# from it (as each would in a process of its own): two at once in one process would
# interleave their draws. They run one at a time; calls run concurrently.
_CONSTRUCTING = threading.Lock()


class LocalRankDied(RuntimeError):
    """A call on a :class:`LocalRank` that was killed (its future fails with this)."""


class LocalPlacement:
    """A placement realized in this process (what ``Cluster.allocate`` returns on the
    in-process backend): nothing is reserved, ranks share the process's cores.

    Attributes:
        placement: the parsed placement (checked by :func:`check_single_slot`).
        name: unique name (prefix of the device lock's name).
        device_lock: the lock its collocated ranks take turns with.
    """

    def __init__(self, placement: Placement) -> None:
        check_single_slot(placement)
        self.placement = placement
        self.name = f"rlinf-local-{uuid.uuid4().hex[:8]}"
        self.device_lock = LocalDeviceLock(f"{self.name}-device-lock")

    def rank(
        self, worker_cls: type[Worker], component: str, group: str, max_concurrency: int = 1
    ) -> tuple[LocalRank, LocalDeviceLock | None]:
        """The one rank of ``component`` as group ``group``, and the device lock it takes
        turns with when other components share its slot (no rendezvous: there is no
        second process to meet)."""
        rp = self.placement[component].ranks[0]
        lock = self.device_lock if self.placement.is_shared(component, 0) else None
        ctx = WorkerContext(
            group=group,
            rank=0,
            world_size=1,
            placement=rp,
            device_type=self.placement.topology.device_type,
            namespace=None,
            lock_name=lock.name if lock else None,
            comm_timeout=0.0,
            in_process=True,
            local_lock=lock,
        )
        return LocalRank(group, worker_cls, ctx, max_concurrency), lock

    def remove(self) -> None:
        """Nothing to release (kept for ``PlacementGroups``' interface)."""


class _Remote:
    """``handle.<method>.remote(*args)`` on a :class:`LocalRank`, as on a Ray actor handle."""

    def __init__(self, rank: LocalRank, method: str) -> None:
        self._rank = rank
        self._method = method

    def remote(self, *args: Any) -> Future:
        return self._rank.submit(self._method, *args)


class LocalRank:
    """One rank hosted by this process: a :class:`WorkerHost` whose ``start`` / ``call``
    run on the rank's own thread(s) (``max_concurrency`` of them), in submission order.

    ``rank.start.remote(args, kwargs)`` and ``rank.call.remote(method, args, kwargs)``
    return a ``concurrent.futures.Future`` of the host's reply, like an actor's ObjectRef.
    The host is built here, in the caller's thread, so the class's ``warm_up`` runs at once.
    Worker constructors (``start``) of all ranks run one at a time: each seeds torch's
    default generator and builds from it, which must not interleave.
    """

    def __init__(
        self, name: str, worker_cls: type[Worker], ctx: WorkerContext, max_concurrency: int = 1
    ) -> None:
        self.name = name
        self._host = WorkerHost(worker_cls, ctx)
        self._queue: queue.SimpleQueue[tuple[Future, str, tuple] | None] = queue.SimpleQueue()
        self._guard = threading.Lock()
        self._pending: set[Future] = set()
        self._death: str | None = None
        # Daemon threads: a call that never returns must not keep the interpreter alive.
        self._threads = [
            threading.Thread(target=self._serve, name=f"rlinf-{name}-{i}", daemon=True)
            for i in range(max(1, max_concurrency))
        ]
        for thread in self._threads:
            thread.start()

    @property
    def start(self) -> _Remote:
        return _Remote(self, "start")

    @property
    def call(self) -> _Remote:
        return _Remote(self, "call")

    @property
    def alive(self) -> bool:
        """False once :meth:`kill` ran."""
        return self._death is None

    def submit(self, method: str, *args: Any) -> Future:
        """Queue ``host.<method>(*args)``; the future holds the host's reply tuple."""
        future: Future = Future()
        with self._guard:
            if self._death is not None:
                future.set_exception(LocalRankDied(self._death))
                return future
            self._pending.add(future)
        self._queue.put((future, method, args))
        return future

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, method, args = item
            with self._guard:
                # Failed by a kill while queued (under the guard: a kill cannot slip in).
                if future.done() or not future.set_running_or_notify_cancel():
                    continue
            try:
                if method == "start":
                    with _CONSTRUCTING:
                        reply: Any = self._host.start(*args)
                else:
                    reply = getattr(self._host, method)(*args)
            except BaseException as e:  # the host catches Exceptions; this is e.g. SystemExit
                reply = ("err", type(e).__name__, str(e), "")
            with self._guard:
                self._pending.discard(future)
            # A kill may have failed the future while the call ran.
            with contextlib.suppress(InvalidStateError):
                future.set_result(reply)

    def kill(self, reason: str = "killed") -> None:
        """Fail every pending call with :class:`LocalRankDied` and stop the threads after
        the call they run (a thread cannot be interrupted mid-call)."""
        with self._guard:
            if self._death is not None:
                return
            self._death = reason
            for future in self._pending:
                with contextlib.suppress(InvalidStateError):
                    future.set_exception(LocalRankDied(reason))
            self._pending.clear()
        for _ in self._threads:
            self._queue.put(None)

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` s for the threads to finish the call they run (after
        :meth:`kill`); returns whether they all did. An interpreter that exits while one
        still runs torch code may abort, so shutdowns wait here."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def __repr__(self) -> str:
        return f"LocalRank({self.name!r}, alive={self.alive})"
