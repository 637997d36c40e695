"""ToolAgentEnv sessions: local thread pool, and ToolWorker actors on a small Ray cluster
(round-robin, overlapping calls, a dead worker surfacing as an error)."""

from __future__ import annotations

import os
import pickle
import sys
import time
from concurrent.futures import wait

import pytest

pytest.importorskip("bm25s")

from rlinf.envs.agentic import (
    JSONCallFormat,
    SearchTool,
    TaggedCallFormat,
    ToolAgentEnv,
    ToolResult,
    ToolSet,
    ToolWorker,
)

DOCS = [
    "Paris is the capital of France.",
    "Berlin is the capital of Germany.",
    "The Seine flows through Paris.",
]
SLEEP_S = 0.5


class SleepTool:
    """Sleeps, then reports ``"pid start end"`` (wall-clock seconds of the call)."""

    name = "sleep"
    description = "sleep(x): sleeps a while and reports when it ran"

    def run(self, arguments: str) -> ToolResult:
        start = time.time()
        time.sleep(SLEEP_S)
        return ToolResult(f"{os.getpid()} {start} {time.time()}", "ok", time.time() - start)


def make_tools() -> ToolSet:
    return ToolSet([SearchTool(DOCS), SleepTool()])


def not_a_toolset() -> list:
    return [SleepTool()]


def _intervals(observations: list[str]) -> list[tuple[int, float, float]]:
    out = []
    for obs in observations:
        assert obs.startswith("<result>") and obs.endswith("</result>")
        pid, start, end = obs[len("<result>") : -len("</result>")].split()
        out.append((int(pid), float(start), float(end)))
    return out


def _all_overlap(intervals: list[tuple[int, float, float]]) -> bool:
    """Some instant lies inside every interval: all calls were running at once."""
    return max(s for _, s, _ in intervals) < min(e for _, _, e in intervals)


# -- local mode ------------------------------------------------------------------------


def test_local_session_search_malformed_answer():
    env = ToolAgentEnv(TaggedCallFormat(tools=("search", "sleep")), tools_factory=make_tools)
    assert env.stop == ("</search>", "</sleep>", "</answer>") and not env.remote
    env = pickle.loads(pickle.dumps(env))  # picklable before first use
    session = env.session({"question": "capital of France?"})
    future = session.submit("Let me look. <search>capital of France</search>")
    assert future.result(timeout=30) == "<result>Paris is the capital of France.</result>"
    bad = session.submit("<search> </search>")
    assert bad.done()
    assert bad.result() == "<result>error: empty <search> call (no arguments)</result>"
    assert (
        session.submit("<search>tokyo</search>").result(timeout=30) == "<result>no results</result>"
    )
    assert session.calls == 3
    assert session.submit("It is <answer>Paris</answer>") is None
    assert session.done and session.submit("<search>more</search>") is None
    assert env.session().submit("I give up.") is None
    stats = env.stats(reset=True)
    assert stats["calls"] == 2 and stats["failures"] == 0
    assert stats["turns/call"] == 2 and stats["turns/malformed"] == 1
    assert stats["turns/answer"] == 1 and stats["turns/none"] == 1
    assert stats["status/ok"] == 2 and stats["status/malformed"] == 1
    assert stats["tool_time_s"] > 0
    assert env.stats()["calls"] == 0
    # A used env still pickles (threads and tools stay behind; the copy starts fresh).
    copy = pickle.loads(pickle.dumps(env))
    assert copy.stats()["calls"] == 0
    assert (
        copy.session()
        .submit("<search>Berlin</search>")
        .result(timeout=30)
        .startswith("<result>Berlin")
    )
    env.close()
    copy.close()


def test_local_json_format_and_unknown_tool():
    env = ToolAgentEnv(JSONCallFormat(tools=("search",)), tools_factory=make_tools)
    session = env.session(None)
    call = '<tool_call>{"name": "search", "arguments": {"query": "Seine"}}</tool_call>'
    assert (
        session.submit(call).result(timeout=30) == "<result>The Seine flows through Paris.</result>"
    )
    unknown = '<tool_call>{"name": "sleep", "arguments": {"x": "1"}}</tool_call>'
    assert session.submit(unknown).result() == (
        "<result>error: unknown tool 'sleep' (tools: search)</result>"
    )
    env.close()


def test_local_calls_overlap():
    env = ToolAgentEnv(TaggedCallFormat(tools=("sleep",)), tools_factory=make_tools, max_threads=4)
    futures = [env.session(i).submit("<sleep>x</sleep>") for i in range(4)]
    assert _all_overlap(_intervals([f.result(timeout=30) for f in futures]))
    env.close()


def test_local_bad_factory_and_arguments():
    env = ToolAgentEnv(TaggedCallFormat(tools=("sleep",)), tools_factory=not_a_toolset)
    with pytest.raises(TypeError, match="must return a ToolSet, got list"):
        env.session().submit("<sleep>x</sleep>").result(timeout=30)
    assert env.stats()["failures"] == 1
    env.close()
    with pytest.raises(ValueError, match="exactly one of tools_factory"):
        ToolAgentEnv(TaggedCallFormat())
    with pytest.raises(ValueError, match="exactly one of tools_factory"):
        ToolAgentEnv(TaggedCallFormat(), tools_factory=make_tools, workers=[object()])
    with pytest.raises(TypeError, match="must be a CallFormat"):
        ToolAgentEnv("tagged", tools_factory=make_tools)
    with pytest.raises(ValueError, match="max_threads"):
        ToolAgentEnv(TaggedCallFormat(), tools_factory=make_tools, max_threads=0)
    with pytest.raises(ValueError, match="workers is empty"):
        ToolAgentEnv(TaggedCallFormat(), workers=[])


# -- remote mode -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tool_group(ray_cluster):
    pytest.importorskip("ray")
    import ray.cloudpickle

    from rlinf.core import Cluster, ClusterConfig

    # Workers cannot import this test module: ship its functions and classes by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with Cluster(ClusterConfig(num_cpus=2, num_gpus=0, devices_per_node=2)) as cluster:
        pgs = cluster.allocate({"tools": "0-1"})
        group = cluster.launch(ToolWorker, pgs, "tools", args=(make_tools,), max_concurrency=4)
        yield group


def test_remote_search_round_robin_and_overlap(tool_group):
    from rlinf.envs.agentic._tool_worker import tool_worker_handles

    assert tool_group.execute("names") == [("search", "sleep")] * 2
    handles = tool_worker_handles(tool_group)
    env = ToolAgentEnv(TaggedCallFormat(tools=("search", "sleep")), workers=handles)
    env = pickle.loads(pickle.dumps(env))
    assert env.remote
    search = env.session().submit("<search>Germany</search>")
    assert search.result(timeout=60) == "<result>Berlin is the capital of Germany.</result>"
    # 8 calls round-robin over 2 workers (after the search above: ranks 1, 0, 1, 0, ...),
    # each running 4 at once on its threads.
    futures = [env.session(i).submit("<sleep>x</sleep>") for i in range(8)]
    done, _ = wait(futures, timeout=60)
    assert len(done) == 8
    intervals = _intervals([f.result() for f in futures])
    pids = [pid for pid, _, _ in intervals]
    assert len(set(pids)) == 2 and pids[0::2] == [pids[0]] * 4 and pids[1::2] == [pids[1]] * 4
    for pid in set(pids):
        assert _all_overlap([iv for iv in intervals if iv[0] == pid])
    stats = env.stats()
    assert stats["calls"] == 9 and stats["status/ok"] == 9 and stats["failures"] == 0


def test_remote_dead_worker_is_an_error(tool_group):
    import ray

    from rlinf.core import WorkerDied
    from rlinf.envs.agentic._tool_worker import tool_worker_handles

    env = ToolAgentEnv(TaggedCallFormat(), workers=tool_group)
    dead = tool_worker_handles(tool_group)[1]
    ray.kill(dead, no_restart=True)
    # ray.kill only requests the kill: a call sent right after it can still be served. Wait
    # until the actor refuses calls, so the env below meets a worker that is really dead.
    deadline = time.monotonic() + 60
    while True:
        try:
            ray.get(dead.call.remote("names", (), {}), timeout=10)
        except ray.exceptions.RayActorError:
            break
        assert time.monotonic() < deadline, "killed tool worker still answers after 60 s"
        time.sleep(0.1)
    # Round-robin: rank 0 (alive) answers, rank 1 (dead) fails with an error naming it,
    # well before the timeout (a hang would raise TimeoutError instead).
    for _ in range(2):
        futures = [env.session().submit("<search>France</search>") for _ in range(2)]
        assert futures[0].result(timeout=60) == "<result>Paris is the capital of France.</result>"
        with pytest.raises(WorkerDied, match="worker group 'tools' rank 1 died during run"):
            futures[1].result(timeout=60)
    stats = env.stats()
    assert stats["failures"] == 2 and stats["status/ok"] == 2
