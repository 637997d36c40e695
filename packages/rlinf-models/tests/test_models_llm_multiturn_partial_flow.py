"""Partial rollouts of multi-turn agent trajectories in the Ray flow (the agentic app's
worker, :class:`AgentRolloutWorker`, on a tiny model, ``max_staleness=1``). The test's
worker waits, in one chosen call, for the next version at the poll before the second
turn, so the switch falls between turn 1 and turn 2 whatever the load: ``continue``
trains a step whose every trajectory mixes versions 0 and 1 (staleness 1 counted on the
oldest token, within the bound); ``abort`` restarts every running trajectory once under the new
version (a trajectory that ended in turn 1, cut by a limit, is kept). Every channel key
is empty afterwards."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import sys

import pytest
import ray
from ray import cloudpickle

from rlinf.core import ClusterSection, RunnerSection
from rlinf.models.llm import (
    AgentRolloutWorker,
    AsyncStepPipeline,
    GenerationConfig,
    LLMFlowConfig,
    LLMRLFlow,
    LLMUpdaterConfig,
    MultiTurnConfig,
    PartialRolloutConfig,
    TinyLMConfig,
    build_tiny_causal_lm,
)

cloudpickle.register_pickle_by_value(sys.modules[__name__])

TINY = TinyLMConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64)
GEN = GenerationConfig(max_new_tokens=24, n=2, seed=0, stop_on_eos=False)
MULTI = MultiTurnConfig(max_turns=3, max_response_tokens=64, max_observation_tokens=8)
ROWS = 2
INTERVAL = 1000  # > max_new_tokens: polls only at a call's start and before each turn


@dataclasses.dataclass(frozen=True)
class Row:
    prompt: str
    answer: str


@dataclasses.dataclass(frozen=True)
class _Result:
    score: float
    status: str


class StartsWithDigit:
    def score(self, responses, answers):
        return [
            _Result(1.0, "correct") if t[:1].isdigit() else _Result(0.0, "wrong") for t in responses
        ]


class _Session:
    """Two tool calls (resolved at once), then done: every trajectory has >= 2 turns
    unless a limit cuts it."""

    def __init__(self) -> None:
        self.left = 2

    def submit(self, turn_text: str) -> concurrent.futures.Future[str] | None:
        if self.left == 0:
            return None
        self.left -= 1
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        future.set_result(f"<r>{len(turn_text)}</r>")
        return future


class Env:
    stop = tuple("aeiouAEIOU0123456789")

    def session(self, task: object) -> _Session:
        return _Session()


def make_env() -> Env:
    return Env()


class WaitingAgentWorker(AgentRolloutWorker):
    """In its ``forced``-th sampling call: no weights at the call's start (poll 1) nor
    before turn 1 (poll 2); at poll 3, before turn 2, it waits for the next version."""

    forced = 0
    calls = 0
    polls = 0

    def force_switch_in_call(self, call: int) -> None:
        self.forced = call

    def generate(self, prompts, tasks, *, greedy=False, **kwargs):
        if not greedy:
            self.calls += 1
            self.polls = 0
        return super().generate(prompts, tasks, greedy=greedy, **kwargs)

    def _poll_weights(self) -> bool:
        self.polls += 1
        if self.calls != self.forced:
            return super()._poll_weights()
        if self.polls < 3:
            return False
        if self.polls == 3:
            staged = self._weights_channel.get(key=("weights", self.rank), timeout=120)
            self.backend.load_weights(ray.get(staged.ref))
            return True
        return super()._poll_weights()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(build_tiny_causal_lm(tmp_path_factory.mktemp("tiny"), TINY))


def _draw():
    count = iter(range(1000))

    def draw():
        i = next(count)
        return [Row(f"{i + j}+{j}=", str(i + 2 * j)) for j in range(ROWS)]

    return draw


def _no_task(row: Row) -> None:
    return None


# Minutes of Ray flow on a loaded machine: slow. The quick suite keeps the mechanism
# without Ray (test_models_llm_multiturn_partial.py).
@pytest.mark.slow
def test_agent_partial_rollouts_continue_then_abort(ray_cluster, model_dir):
    flow = LLMRLFlow(
        LLMFlowConfig(
            name="agent_partial",
            runner=RunnerSection(timeout_s=300.0),
            cluster=ClusterSection(num_cpus=2, devices=2),
            placement={"actor": "0", "rollout": "1", "reward": "1"},
            partial=PartialRolloutConfig("continue", INTERVAL),
        ),
        model_path=model_dir,
        ref_path=model_dir,
        algo=LLMUpdaterConfig(lr=1e-2),
        total_updates=8,
        scorer_factory=StartsWithDigit,
        rollout_args=(GEN, MULTI, make_env),
        rollout_worker=WaitingAgentWorker,
        task_of=_no_task,
    )
    draw = _draw()
    try:
        assert flow.weight_sync == "object_store"
        version = flow.sync_weights()
        # Step 1's rollout (call 2, started with version 0) takes version 1 before turn 2.
        flow._wait(flow.rollout.call("force_switch_in_call", 2))
        pipe = AsyncStepPipeline(
            flow, max_staleness=1, version=version, first_step=0, total_steps=2, draw=draw
        )
        ms = [pipe.step() for _ in range(2)]
        assert ms[0]["train/staleness_max"] == 0.0
        assert ms[0].get("train/mixed_version_frac", 0.0) == 0.0
        assert ms[1]["rollout/turns"] >= 2.0  # mean turns per trajectory
        assert ms[1]["rollout/mixed_versions"] == 1.0
        assert ms[1]["train/mixed_version_frac"] == 1.0
        assert ms[1]["train/sample_version"] == 0.0
        assert ms[1]["train/staleness_max"] == 1.0  # the oldest token's, within k=1
        assert all(m["rollout/requeued"] == 0.0 for m in ms)
        assert pipe.version == 2

        flow._wait(
            flow.rollout.call(
                "enable_partial", flow.weights_channel, PartialRolloutConfig("abort", INTERVAL)
            )
        )
        # Step 3's rollout (call 4, started with version 2) meets version 3 before turn 2:
        # every trajectory still running restarts once under version 3.
        flow._wait(flow.rollout.call("force_switch_in_call", 4))
        pipe = AsyncStepPipeline(
            flow, max_staleness=1, version=2, first_step=2, total_steps=4, draw=draw
        )
        ms = [pipe.step() for _ in range(2)]
        assert ms[0]["rollout/requeued"] == 0.0 and ms[0]["train/staleness_max"] <= 1.0
        requeued = ms[1]["rollout/requeued"]
        assert requeued > 0.0
        assert ms[1]["rollout/mixed_versions"] == 0.0
        assert ms[1]["train/mixed_version_frac"] == 0.0
        # A trajectory cut by max_new_tokens in turn 1 had ended (kept, version 2); the
        # others restarted under version 3.
        everyone = requeued == 1.0
        assert ms[1]["train/sample_version"] == (3.0 if everyone else 2.0)
        assert ms[1]["train/staleness_max"] == (0.0 if everyone else 1.0)
        assert ms[1]["rollout/responses"] == ROWS * GEN.n
        # Evaluation asks for the version just published: the rank takes it first.
        assert flow.evaluate(draw(), pipe.version)["eval/prompts"] == ROWS
        assert pipe.in_flight == 0
        for channel in (flow.rollout_channel, flow.batch_channel, flow.scored_channel):
            for tag in range(5):
                for key in ("rollout", "batch", "scored", "kept"):
                    assert channel.qsize((key, tag)) == 0, (key, tag)
        assert flow.weights_channel.qsize(("weights", 0)) == 0
    finally:
        flow.shutdown()
