"""ToolAgentEnv: per-trajectory sessions that parse each model turn and run its tool call
asynchronously, in a local thread pool or on ToolWorker actors.

It satisfies ``rlinf.models.llm.AgentEnv`` structurally (``stop`` and ``session``); this
module does not import rlinf.models (layer rule).
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ._calls import CallFormat, ParsedTurn
from ._tools import ToolCall, ToolResult, ToolSet

__all__ = ["ToolAgentEnv", "ToolSession"]

_RAW_GROUP = "tool workers"


class ToolSession:
    """One trajectory's session (make them with :meth:`ToolAgentEnv.session`).

    Attributes:
        task: the task this trajectory works on (kept for callers; tools are shared).
        calls: tool calls submitted so far.
        done: the trajectory ended (answer or no call); later turns are ignored.
    """

    def __init__(self, env: ToolAgentEnv, task: Any) -> None:
        self._env = env
        self.task = task
        self.calls = 0
        self.done = False

    def submit(self, turn_text: str) -> Future[str] | None:
        """Parse the newest turn. Returns None when the trajectory is done (an answer, or
        neither call nor answer); otherwise a future of the observation text to append
        (the wrapped tool result, or the wrapped error of a malformed call). A remote
        worker that died makes the future raise ``WorkerDied`` naming it."""
        if self.done:
            return None
        parsed = self._env.call_format.parse(turn_text)
        self._env._bump(f"turns/{parsed.kind}")
        if parsed.kind in ("answer", "none"):
            self.done = True
            return None
        self.calls += 1
        if parsed.kind == "malformed":
            result = ToolResult(f"error: {parsed.error}", "malformed")
            self._env._count_result(result)
            future: Future[str] = Future()
            future.set_result(self._env.call_format.wrap(result))
            return future
        return self._env._dispatch(parsed)


class ToolAgentEnv:
    """Tool-using agent env: ``stop`` = the call format's stop strings, ``session(task)``
    one :class:`ToolSession` per trajectory.

    Exactly one of ``tools_factory`` (local mode: a thread pool of ``max_threads`` in this
    process, built with the tools on first use) and ``workers`` (remote mode: ToolWorker
    actors, called round-robin) is given. The env pickles at any time (its thread pool,
    lock and live tools are left behind and rebuilt lazily), so it can be built in the
    driver and shipped to the rollout worker; counters start at zero in each copy.

    Args:
        call_format: how calls, answers and observations look.
        tools_factory: picklable zero-argument callable returning the ToolSet (local mode).
        workers: a ``WorkerGroup`` of ToolWorker, or its actor handles
            (:func:`rlinf.envs.agentic._tool_worker.tool_worker_handles`) (remote mode).
        max_threads: local mode's pool size (concurrent tool calls).
    """

    def __init__(
        self,
        call_format: CallFormat,
        tools_factory: Callable[[], ToolSet] | None = None,
        workers: Any = None,
        max_threads: int = 8,
    ) -> None:
        if not isinstance(call_format, CallFormat):
            raise TypeError(f"call_format must be a CallFormat, got {type(call_format).__name__}")
        if (tools_factory is None) == (workers is None):
            raise ValueError("give exactly one of tools_factory (local) and workers (remote)")
        if tools_factory is not None and not callable(tools_factory):
            raise TypeError("tools_factory must be a zero-argument callable returning a ToolSet")
        if max_threads < 1:
            raise ValueError(f"max_threads must be >= 1, got {max_threads}")
        self.call_format = call_format
        self.max_threads = max_threads
        self._factory = tools_factory
        self._group = _RAW_GROUP
        self._workers: list[Any] = []
        if workers is not None:
            if hasattr(workers, "worker_cls"):  # a WorkerGroup: errors name it
                from ._tool_worker import tool_worker_handles

                self._group = workers.name
                workers = tool_worker_handles(workers)
            self._workers = list(workers)
            if not self._workers:
                raise ValueError("workers is empty")
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._tools: ToolSet | None = None
        self._next = itertools.count()
        self._counts: Counter[str] = Counter()
        self._tool_time = 0.0

    def __getstate__(self) -> dict[str, Any]:
        # Threads, locks and live tools stay in the process that made them.
        keep = ("call_format", "max_threads", "_factory", "_group", "_workers")
        return {k: self.__dict__[k] for k in keep}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    @property
    def stop(self) -> tuple[str, ...]:
        """Strings that end a model turn (besides EOS)."""
        return self.call_format.stop

    @property
    def remote(self) -> bool:
        """Calls run on ToolWorker actors."""
        return bool(self._workers)

    def session(self, task: Any = None) -> ToolSession:
        """A new trajectory's session."""
        return ToolSession(self, task)

    def stats(self, reset: bool = False) -> dict[str, float]:
        """Counters since creation (or the last reset): ``turns/<kind>`` per parsed turn
        kind, ``calls`` (tool calls run, malformed excluded), ``status/<status>`` per
        result (malformed included), ``failures`` (calls that raised, e.g. a dead worker),
        ``tool_time_s`` (sum of the tools' own elapsed time)."""
        with self._lock:
            out = {k: float(v) for k, v in sorted(self._counts.items())}
            out["tool_time_s"] = self._tool_time
            if reset:
                self._counts.clear()
                self._tool_time = 0.0
        for key in ("calls", "failures"):
            out.setdefault(key, 0.0)
        for kind in ("call", "answer", "none", "malformed"):
            out.setdefault(f"turns/{kind}", 0.0)
        return out

    def close(self) -> None:
        """Stop the local thread pool (pending calls still finish)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)

    # -- internals ---------------------------------------------------------------------

    def _bump(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def _count_result(self, result: ToolResult) -> None:
        with self._lock:
            self._counts[f"status/{result.status}"] += 1
            self._tool_time += result.elapsed_s

    def _dispatch(self, parsed: ParsedTurn) -> Future[str]:
        call = parsed.call
        assert call is not None
        self._bump("calls")
        if self.remote:
            return self._dispatch_remote(call)
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.max_threads, "tool-call")
            executor = self._executor
        return executor.submit(self._run_local, call)

    def _run_local(self, call: ToolCall) -> str:
        try:
            with self._lock:
                if self._tools is None:
                    # Built under the lock: the first calls of a batch arrive together.
                    tools = self._factory()  # type: ignore[misc]
                    if not isinstance(tools, ToolSet):
                        raise TypeError(
                            f"tools_factory must return a ToolSet, got {type(tools).__name__}"
                        )
                    self._tools = tools
                tools = self._tools
            return self._finish(tools.run(call))
        except BaseException:
            self._bump("failures")
            raise

    def _finish(self, result: ToolResult) -> str:
        self._count_result(result)
        return self.call_format.wrap(result)

    def _dispatch_remote(self, call: ToolCall) -> Future[str]:
        from ray.exceptions import RayActorError, RayError

        from rlinf.core import WorkerDied, WorkerError

        rank = next(self._next) % len(self._workers)
        out: Future[str] = Future()

        def fail(exc: BaseException) -> None:
            self._bump("failures")
            out.set_exception(exc)

        def died(cause: object) -> WorkerDied:
            first = str(cause).strip().splitlines()
            return WorkerDied(self._group, rank, "run", first[0] if first else "actor died")

        def done(ray_future: Future) -> None:
            try:
                reply = ray_future.result()
            except RayActorError as e:
                fail(died(e))
                return
            except RayError as e:
                fail(WorkerError(self._group, rank, "run", type(e).__name__, str(e), ""))
                return
            except BaseException as e:  # handed to the waiting caller
                fail(e)
                return
            if reply[0] == "err":
                _, kind, message, tb = reply
                fail(WorkerError(self._group, rank, "run", kind, message, tb))
                return
            try:
                out.set_result(self._finish(reply[1]))
            except BaseException as e:
                fail(e)

        try:
            ref = self._workers[rank].call.remote("run", (call.name, call.arguments), {})
            ref.future().add_done_callback(done)
        except RayActorError as e:
            fail(died(e))
        return out
