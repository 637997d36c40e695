"""Asynchronous LLM RL (AsyncStepPipeline) in Ray on a tiny model: ``max_staleness=0`` is
the synchronous flow metric for metric; with ``k=1, 2`` the recorded generating versions
are exactly the expected ones and never more than ``k`` behind; steps started ahead of a
stop are discarded and counted, leaving the channels empty; the actor refuses a staler
batch."""

from __future__ import annotations

import dataclasses
import itertools
import sys

import pytest
from ray import cloudpickle

from rlinf.core import ClusterSection, RunnerSection, WorkerError
from rlinf.models.llm import (
    AsyncStepPipeline,
    GenerationConfig,
    LLMFlowConfig,
    LLMRLFlow,
    LLMRunnerSection,
    LLMUpdaterConfig,
    TinyLMConfig,
    build_tiny_causal_lm,
)

cloudpickle.register_pickle_by_value(sys.modules[__name__])

TINY = TinyLMConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64)
GEN = GenerationConfig(max_new_tokens=4, n=2, seed=0)
ALGO = LLMUpdaterConfig(lr=1e-2)
ROWS = 2  # prompts per step


@dataclasses.dataclass(frozen=True)
class Row:
    prompt: str
    answer: str


@dataclasses.dataclass(frozen=True)
class _Result:
    score: float
    status: str


class StartsWithDigit:
    """Score 1 when the response starts with a digit: some reward spread from the start."""

    def score(self, responses, answers):
        return [
            _Result(1.0, "correct") if t[:1].isdigit() else _Result(0.0, "wrong") for t in responses
        ]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(build_tiny_causal_lm(tmp_path_factory.mktemp("tiny"), TINY))


def _flow(model_dir: str, total_updates: int) -> LLMRLFlow:
    # Disaggregated: the actor on slot 0, rollout and reward on slot 1.
    return LLMRLFlow(
        LLMFlowConfig(
            name="async",
            runner=RunnerSection(timeout_s=300.0),
            cluster=ClusterSection(num_cpus=2, devices=2),
            placement={"actor": "0", "rollout": "1", "reward": "1"},
        ),
        model_path=model_dir,
        ref_path=model_dir,
        algo=ALGO,
        total_updates=total_updates,
        scorer_factory=StartsWithDigit,
        rollout_args=(GEN,),
    )


def _draw():
    counter = itertools.count()

    def draw() -> list[Row]:
        i = next(counter)
        return [Row(f"{i + j}+{j}=", str(i + 2 * j)) for j in range(ROWS)]

    return draw


def _pipeline(flow: LLMRLFlow, k: int, version: int, first: int, total: int, draw):
    return AsyncStepPipeline(
        flow, max_staleness=k, version=version, first_step=first, total_steps=total, draw=draw
    )


def _comparable(m: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in m.items() if not k.startswith(("time/", "throughput/"))}


def test_staleness_zero_is_the_synchronous_flow(ray_cluster, model_dir):
    runs = []
    for synchronous in (True, False):
        flow = _flow(model_dir, 3)
        draw = _draw()
        try:
            version = flow.sync_weights()
            if synchronous:
                runs.append([flow.step(draw(), v) for v in range(version, version + 3)])
            else:
                pipe = _pipeline(flow, 0, version, 0, 3, draw)
                runs.append([pipe.step() for _ in range(3)])
                assert pipe.in_flight == 0
        finally:
            flow.shutdown()
    sync, piped = runs
    for a, b in zip(sync, piped, strict=True):
        assert b.pop("train/in_flight_steps") == 0.0
        assert _comparable(a) == _comparable(b)
        assert a["train/staleness_max"] == 0.0
    # The run trained (the weights moved), so equality is not that of untouched models.
    assert sync[-1]["train/weight_version"] == 3.0
    assert any(m["train/grad_norm"] > 0 for m in sync)


def test_bounded_staleness_versions_discard_and_refusal(ray_cluster, model_dir):
    flow = _flow(model_dir, 16)
    draw = _draw()
    try:
        version = flow.sync_weights()
        # k=2 over steps 0-3: steps 0, 1, 2 start with version 0, step 3 after the first
        # sync (version 1); step s trains at version s.
        pipe = _pipeline(flow, 2, version, 0, 4, draw)
        ms = [pipe.step() for _ in range(4)]
        assert [m["train/sample_version"] for m in ms] == [0, 0, 0, 1]
        assert [m["train/staleness_max"] for m in ms] == [0, 1, 2, 2]
        assert [m["train/staleness_mean"] for m in ms] == [0, 1, 2, 2]
        assert [m["train/in_flight_steps"] for m in ms] == [2, 2, 1, 0]
        assert [m["rollout/responses"] for m in ms] == [ROWS * GEN.n] * 4
        assert pipe.version == 4 and pipe.in_flight == 0
        assert pipe.close() == {"rollout/discarded_steps": 0.0, "rollout/discarded_responses": 0.0}
        with pytest.raises(RuntimeError, match="all 4 steps are trained"):
            pipe.step()

        # k=1 over steps 4-6 from version 4.
        pipe = _pipeline(flow, 1, 4, 4, 7, draw)
        ms = [pipe.step() for _ in range(3)]
        assert [m["train/sample_version"] for m in ms] == [4, 4, 5]
        assert [m["train/staleness_max"] for m in ms] == [0, 1, 1]

        # Stopped after 2 of steps 7-10 with k=2: steps 9 and 10 were started ahead.
        pipe = _pipeline(flow, 2, 7, 7, 11, draw)
        ms = [pipe.step() for _ in range(2)]
        assert pipe.in_flight == 2
        assert pipe.close() == {
            "rollout/discarded_steps": 2.0,
            "rollout/discarded_responses": float(2 * ROWS * GEN.n),
        }
        for channel, key in (
            (flow.rollout_channel, "rollout"),
            (flow.batch_channel, "batch"),
            (flow.scored_channel, "scored"),
        ):
            for tag in range(11):
                assert channel.qsize((key, tag)) == 0, (key, tag)

        # The actor itself refuses a batch staler than the bound.
        version = pipe.version
        first = flow.start_step(draw(), version, tag=100)
        second = flow.start_step(draw(), version, tag=101, stream=1)
        assert flow.finish_step(first, max_staleness=0)["train/staleness_max"] == 0.0
        assert flow.sync_weights() == version + 1
        with pytest.raises(WorkerError, match=r"1 versions behind .* max_staleness=0"):
            flow.finish_step(second, max_staleness=0)
    finally:
        flow.shutdown()


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1"])
def test_bad_max_staleness_is_refused(bad):
    with pytest.raises(ValueError, match="max_staleness must be"):
        LLMRunnerSection(max_staleness=bad)
