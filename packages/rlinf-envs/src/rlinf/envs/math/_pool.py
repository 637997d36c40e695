"""A process pool with a hard per-task timeout that kills and replaces a stuck worker.

``concurrent.futures.ProcessPoolExecutor`` cannot do this: a task that never returns keeps
its worker forever, and the only way out is to break the whole executor. Here every worker
owns a pipe and runs one task at a time, so the driver knows which process holds which task
and can SIGKILL exactly that one when its deadline passes (SIGKILL, because a task stuck in
C code, e.g. a huge sympy integer power, never sees Python-level signals), then start a
fresh worker while the others keep going.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Literal

__all__ = ["PoolError", "TaskOutcome", "TimeoutPool"]

_READY = "ready"


class PoolError(RuntimeError):
    """The pool itself cannot work (a worker fails to start), as opposed to one bad task."""


@dataclass(frozen=True)
class TaskOutcome:
    """What became of one task.

    Attributes:
        status: ``"ok"`` (returned), ``"timeout"`` (killed at its deadline) or ``"error"``
            (raised, returned something unpicklable, or its process died).
        value: the return value when ``status == "ok"``, else ``None``.
        error: a one-line description when ``status != "ok"``, else ``None``.
    """

    status: Literal["ok", "timeout", "error"]
    value: Any = None
    error: str | None = None


def _worker_main(conn: Connection, fn: Callable[..., Any]) -> None:
    """Loop of a worker process: warm up, then answer ``(args)`` messages until ``None``."""
    # Ctrl-C reaches the whole process group; the driver handles it and closes the pool,
    # so workers ignore it instead of each printing a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warmup = getattr(fn, "warmup", None)
    if callable(warmup):
        warmup()  # heavy imports happen here, outside any task's deadline
    conn.send(_READY)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the driver went away
        if task is None:
            return
        try:
            reply: tuple[str, Any] = ("ok", fn(*task))
        except SystemExit:
            raise  # fn asked to end the process: the driver sees a dead worker
        except BaseException as exc:  # some libraries raise BaseException subclasses
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except Exception as exc:  # e.g. an unpicklable return value
            conn.send(("error", f"could not send result: {type(exc).__name__}: {exc}"))


class _Worker:
    """One worker process and the driver's end of its pipe."""

    def __init__(self, ctx: Any, fn: Callable[..., Any]) -> None:
        self.conn, child_conn = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child_conn, fn), daemon=True)
        self.process.start()
        child_conn.close()  # so that the driver sees EOF when the worker dies
        self.ready = False
        self.started_at = time.monotonic()
        self.task: int | None = None  # index of the task it runs
        self.deadline = 0.0

    def kill(self) -> None:
        """Stop the process now and reap it (no zombie, no leaked pipe)."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()
        with contextlib.suppress(ValueError):  # still running only if join timed out
            self.process.close()  # frees the sentinel fd; long runs replace many workers


def _shutdown(workers: list[_Worker]) -> None:
    """Stop all workers: ask politely, then kill whoever does not exit promptly."""
    for worker in workers:
        with contextlib.suppress(OSError, ValueError):
            worker.conn.send(None)
    deadline = time.monotonic() + 2.0
    for worker in workers:
        worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        worker.kill()
    workers.clear()


class TimeoutPool:
    """Run ``fn(*args)`` for many argument tuples in worker processes, each within a deadline.

    Workers start on the first :meth:`run` (never at construction or import) and live until
    :meth:`close`. If ``fn`` has a ``warmup()`` method, each worker calls it once before taking
    tasks, so slow imports do not eat into task deadlines.

    Args:
        fn: a picklable callable (module-level function or instance of a module-level
            class); it is sent to each worker once.
        num_workers: number of worker processes (>= 1).
        timeout_s: wall-clock limit of one task, counted from when a ready worker receives it.
        start_method: ``"forkserver"`` or ``"spawn"``; ``"fork"`` is refused because forking
            a driver that runs Ray, torch or gRPC threads can deadlock the child.
        startup_timeout_s: how long a new worker may take to become ready.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        num_workers: int,
        timeout_s: float,
        start_method: str = "forkserver",
        startup_timeout_s: float = 120.0,
    ) -> None:
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if start_method not in ("forkserver", "spawn"):
            raise ValueError(f"start_method must be 'forkserver' or 'spawn', got {start_method!r}")
        self._fn = fn
        self._num_workers = num_workers
        self._timeout_s = float(timeout_s)
        self._startup_timeout_s = float(startup_timeout_s)
        self._ctx = multiprocessing.get_context(start_method)
        self._workers: list[_Worker] = []
        self._closed = False
        self.restarts = 0  # workers replaced after a timeout or a crash
        # Kill the workers even if the owner forgets close() and the pool is collected.
        self._finalizer = weakref.finalize(self, _shutdown, self._workers)

    @property
    def num_alive(self) -> int:
        """Worker processes currently alive (for tests and health metrics)."""
        return sum(w.process.is_alive() for w in self._workers)

    def pids(self) -> list[int]:
        """Process ids of the current workers."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def run(self, tasks: Sequence[tuple[Any, ...]]) -> list[TaskOutcome]:
        """Run every task; outcomes come back in task order. Never raises for a bad task."""
        if self._closed:
            raise RuntimeError("TimeoutPool is closed")
        while len(self._workers) < self._num_workers:
            self._workers.append(_Worker(self._ctx, self._fn))
        outcomes: list[TaskOutcome | None] = [None] * len(tasks)
        pending = deque(range(len(tasks)))
        remaining = len(tasks)
        try:
            while remaining:
                for worker in self._workers:
                    if pending and worker.ready and worker.task is None:
                        remaining -= self._dispatch(worker, pending.popleft(), tasks, outcomes)
                if not remaining:
                    break
                remaining -= self._wait_and_collect(outcomes)
        except BaseException:
            # A worker that failed to start or a Ctrl-C: tasks still in flight would send
            # their replies into the next run, so drop every worker; the next run starts
            # fresh ones.
            _shutdown(self._workers)
            raise
        return [outcome for outcome in outcomes if outcome is not None]

    def _dispatch(
        self,
        worker: _Worker,
        index: int,
        tasks: Sequence[tuple[Any, ...]],
        outcomes: list[TaskOutcome | None],
    ) -> int:
        """Hand a task to an idle worker; returns 1 if the task finished right away."""
        try:
            worker.conn.send(tuple(tasks[index]))
        except (OSError, EOFError) as exc:  # worker died while idle
            self._replace(worker)
            outcomes[index] = TaskOutcome("error", error=f"worker pipe broken: {exc}")
            return 1
        except Exception as exc:  # unpicklable arguments; pickling fails before writing
            outcomes[index] = TaskOutcome("error", error=f"could not send task: {exc}")
            return 1
        worker.task = index
        worker.deadline = time.monotonic() + self._timeout_s
        return 0

    def _wait_and_collect(self, outcomes: list[TaskOutcome | None]) -> int:
        """Wait for the next reply, death or deadline; returns how many tasks finished."""
        now = time.monotonic()
        deadlines = [
            w.deadline if w.ready else w.started_at + self._startup_timeout_s
            for w in self._workers
            if w.task is not None or not w.ready
        ]
        timeout = max(0.0, min(deadlines) - now) if deadlines else None
        waitables: list[Any] = []
        for w in self._workers:
            waitables += [w.conn, w.process.sentinel]
        wait(waitables, timeout=timeout)
        finished = 0
        for worker in list(self._workers):
            finished += self._poll(worker, outcomes)
        return finished

    def _poll(self, worker: _Worker, outcomes: list[TaskOutcome | None]) -> int:
        """Handle whatever happened to one worker; returns 1 if its task finished."""
        message: Any = None
        try:
            has_message = worker.conn.poll()
            if has_message:
                message = worker.conn.recv()
        except (EOFError, OSError):
            has_message = False
        if has_message and not worker.ready:
            worker.ready = message == _READY
            return 0
        if has_message and worker.task is not None:
            status, payload = message
            if status == "ok":
                outcomes[worker.task] = TaskOutcome("ok", value=payload)
            else:
                outcomes[worker.task] = TaskOutcome("error", error=payload)
            worker.task = None
            return 1
        if not worker.process.is_alive():
            code = worker.process.exitcode
            if not worker.ready:
                self._remove(worker)
                raise PoolError(f"a checker worker exited with code {code} before it was ready")
            task = worker.task
            self._replace(worker)
            if task is not None:
                outcomes[task] = TaskOutcome("error", error=f"worker died with exit code {code}")
                return 1
            return 0
        now = time.monotonic()
        if not worker.ready and now > worker.started_at + self._startup_timeout_s:
            self._remove(worker)
            raise PoolError(f"a checker worker was not ready within {self._startup_timeout_s} s")
        if worker.task is not None and now >= worker.deadline:
            task = worker.task
            self._replace(worker)
            outcomes[task] = TaskOutcome("timeout", error=f"no result within {self._timeout_s} s")
            return 1
        return 0

    def _remove(self, worker: _Worker) -> None:
        worker.kill()
        self._workers.remove(worker)

    def _replace(self, worker: _Worker) -> None:
        """Kill a stuck or dead worker and start a fresh one in its slot."""
        index = self._workers.index(worker)
        worker.kill()
        self._workers[index] = _Worker(self._ctx, self._fn)
        self.restarts += 1

    def close(self) -> None:
        """Stop all workers (idempotent)."""
        self._closed = True
        self._finalizer()

    def __enter__(self) -> TimeoutPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
