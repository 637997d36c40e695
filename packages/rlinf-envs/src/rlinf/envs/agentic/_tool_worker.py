"""ToolWorker: a process that hosts tools for the rollout's agent sessions.

Launch it with ``max_concurrency > 1``: each Ray call runs on one of that many threads, so
the calls of many trajectories (a search, a sandboxed program waiting on its child process)
overlap instead of queueing behind each other::

    group = cluster.launch(ToolWorker, pgs, "tools", args=(tools_factory,), max_concurrency=16)
    env = ToolAgentEnv(TaggedCallFormat(), workers=group)   # or workers=tool_worker_handles(group)

Tools must be safe to call from several threads at once (the ``Tool`` protocol asks it).
"""

from __future__ import annotations

from collections.abc import Callable

import ray

from rlinf.core import Worker, WorkerGroup

from ._tools import ToolCall, ToolResult, ToolSet

__all__ = ["ToolWorker", "tool_worker_handles"]


class ToolWorker(Worker):
    """Hosts the :class:`ToolSet` built by ``tools_factory`` in this process.

    Args:
        tools_factory: picklable zero-argument callable returning the ToolSet (built here,
            so indexes and sandboxes live beside the calls, not in the driver).
    """

    def __init__(self, tools_factory: Callable[[], ToolSet]) -> None:
        super().__init__()
        tools = tools_factory()
        if not isinstance(tools, ToolSet):
            raise TypeError(f"tools_factory must return a ToolSet, got {type(tools).__name__}")
        self._tools = tools

    def names(self) -> tuple[str, ...]:
        """The hosted tools' names."""
        return self._tools.names

    def run(self, name: str, arguments: str) -> ToolResult:
        """Run one call (unknown names give an ``unknown_tool`` result)."""
        return self._tools.run(ToolCall(name, arguments))


def tool_worker_handles(group: WorkerGroup) -> list[ray.actor.ActorHandle]:
    """The Ray actor handles of ``group``'s ranks, in rank order (picklable, unlike what
    holding the whole group would need). Each runs ``handle.call.remote("run", (name,
    arguments), {})`` -> ``("ok", ToolResult)`` or ``("err", type, message, traceback)``."""
    if not (isinstance(group, WorkerGroup) and issubclass(group.worker_cls, ToolWorker)):
        raise TypeError(f"expected a WorkerGroup of ToolWorker, got {group!r}")
    return group.handles
