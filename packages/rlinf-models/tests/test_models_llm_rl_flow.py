"""LLMRLFlow end to end in Ray on a tiny model: evaluation against a driver-side reference,
two steps that advance the weight version, the agent variant (tasks, an extra group,
per-trajectory metrics), and the metric merge against hand-computed values."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import sys

import pytest
from ray import cloudpickle

from rlinf.core import ClusterSection, RunnerSection, Worker, WorkerError, count_driver_traffic
from rlinf.models.llm import (
    AgentRolloutWorker,
    GenerationConfig,
    HFGenerationBackend,
    LLMFlowConfig,
    LLMRLFlow,
    LLMTrainingSection,
    LLMUpdaterConfig,
    MultiTurnConfig,
    TinyLMConfig,
    build_tiny_causal_lm,
    load_causal_lm,
)
from rlinf.models.llm._rl_merge import merge_step_metrics, split_evenly

# The scorer, env and worker below are defined here; Ray workers cannot import this test
# module by name.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

TINY = TinyLMConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64)
GEN = GenerationConfig(max_new_tokens=5, n=4, seed=0)
ALGO = LLMUpdaterConfig(lr=1e-2)


@dataclasses.dataclass(frozen=True)
class Row:
    prompt: str
    answer: str
    task: int = 0


@dataclasses.dataclass(frozen=True)
class _Result:
    score: float
    status: str


class ExactMatch:
    """Score 1 (``correct``) when the response equals the answer, else 0 (``wrong``;
    ``no_answer`` when empty)."""

    def score(self, responses, answers):
        return [
            _Result(1.0, "correct")
            if text == answer
            else _Result(0.0, "wrong" if text else "no_answer")
            for text, answer in zip(responses, answers, strict=True)
        ]


class _OneCallSession:
    def __init__(self, calls: int) -> None:
        self.left = calls

    def submit(self, turn_text: str) -> concurrent.futures.Future[str] | None:
        if self.left == 0:
            return None
        self.left -= 1
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        future.set_result(f"<r>{len(turn_text)}</r>")
        return future


class CallEnv:
    """AgentEnv: turns end on vowels; the task is the number of tool calls."""

    stop = tuple("aeiou")

    def session(self, task: int) -> _OneCallSession:
        return _OneCallSession(int(task))


class Pinger(Worker):
    """The extra group of the agent test."""

    def ping(self) -> int:
        return self.rank


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(build_tiny_causal_lm(tmp_path_factory.mktemp("tiny"), TINY))


def _config(placement: dict[str, str], **kwargs) -> LLMFlowConfig:
    return LLMFlowConfig(
        name="test",
        runner=RunnerSection(timeout_s=300.0),
        cluster=ClusterSection(num_cpus=2, devices=2),
        placement=placement,
        **kwargs,
    )


def _greedy(model_dir: str, prompts: list[str]) -> tuple[list[str], list[int]]:
    """Greedy responses and their lengths, computed in this process."""
    model, tok = load_causal_lm(model_dir)
    backend = HFGenerationBackend(model, tok)
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    batch = backend.generate(ids, dataclasses.replace(GEN, n=1, do_sample=False))
    return batch.decode_responses(tok), batch.response_lengths.tolist()


def test_single_turn_flow_evaluates_and_steps(ray_cluster, model_dir):
    # Rollout on two ranks (shards of 2 prompts), actor and reward on one slot each.
    placement = {"actor": "0", "rollout": "0-1", "reward": "1"}
    prompts = ["1+1=", "2+3=", "4+4=", "9-2="]
    # Reference per shard, as the flow splits them (same batch composition, same padding).
    texts, lengths = [], []
    for shard in split_evenly(prompts, 2):
        t, n = _greedy(model_dir, shard)
        texts, lengths = texts + t, lengths + n
    # Two rows answered with the model's own greedy response: accuracy exactly 0.5.
    answers = [t if i < 2 else t + "#" for i, t in enumerate(texts)]
    rows = [Row(p, a) for p, a in zip(prompts, answers, strict=True)]
    # Phase offload: rollout rank 0 shares slot 0 with the actor, so both move their models
    # to host memory outside their turns; the evaluation below must still be exactly the
    # greedy reference computed in this process.
    flow = LLMRLFlow(
        _config(placement),
        model_path=model_dir,
        ref_path=model_dir,
        algo=ALGO,
        total_updates=2,
        scorer_factory=ExactMatch,
        rollout_args=(GEN,),
        training=LLMTrainingSection(offload="phase"),
    )
    try:
        assert flow.sync_weights() == 0
        assert str(flow.mode) == "hybrid" and set(flow.groups) == {"actor", "rollout", "reward"}
        ev = flow.evaluate(rows, 0)
        assert ev["eval/accuracy"] == 0.5
        assert ev["eval/no_answer_rate"] == sum(t == "" for t in texts) / 4
        assert ev["eval/response_length"] == pytest.approx(sum(lengths) / 4)
        assert ev["eval/prompts"] == 4.0
        with pytest.raises(WorkerError, match="StaleWeightsError"):
            flow.evaluate(rows, 1)

        train = [Row(p, "2") for p in ["1+1=", "0+2=", "3-1=", "5-3=", "4-2="]]
        for version in (0, 1):
            m = flow.step(train, version)
            assert flow.rollout.call("get_version").wait(60) == [version + 1] * 2
            assert m["train/weight_version"] == version + 1
            assert m["rollout/responses"] == len(train) * GEN.n
            assert 0.0 <= m["rollout/accuracy"] <= 1.0
            generated = m["rollout/generated_tokens"]
            assert generated == pytest.approx(m["rollout/response_length"] * len(train) * GEN.n)
            assert m["throughput/tokens_per_s"] == pytest.approx(
                (generated + m["train/trained_tokens"]) / m["time/step"]
            )
            for key in (
                "rollout/reward_mean",
                "rollout/truncation_rate",
                "rollout/no_answer_rate",
                "rollout/checker_timeouts",
                "rollout/checker_errors",
                "train/loss",
                "time/generate",
                "time/reward",
                "time/weight_sync",
                "throughput/generated_tokens_per_s",
            ):
                assert key in m, key
        with pytest.raises(ValueError, match="at least one row"):
            flow.step([], 2)
    finally:
        flow.shutdown()


@pytest.mark.slow  # a flow of its own (~1-2 min here); the workspace suite runs it
def test_payloads_never_pass_through_the_driver(ray_cluster, model_dir):
    """Batches go rollout -> actor, texts rollout -> reward, scores reward -> actor and
    weights actor -> rollout without the driver: what it receives per step is metrics and
    references, the same few KB whatever the batch, far less than one weight snapshot."""
    model, _ = load_causal_lm(model_dir)
    weight_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    bound = 8 * 1024
    assert weight_bytes > 6 * bound
    flow = LLMRLFlow(
        _config({"actor": "0", "rollout": "0-1", "reward": "1"}),
        model_path=model_dir,
        ref_path=model_dir,
        algo=ALGO,
        total_updates=3,
        scorer_factory=ExactMatch,
        rollout_args=(dataclasses.replace(GEN, max_new_tokens=12),),
    )
    try:
        version = flow.sync_weights()
        received = []
        for n_rows in (2, 32):
            rows = [Row(f"{i}+1=", "2") for i in range(n_rows)]
            with count_driver_traffic() as traffic:
                m = flow.step(rows, version)
            version += 1
            assert m["train/weight_version"] == version
            assert traffic.sent_bytes == 0
            received.append(traffic.received_bytes)
        with count_driver_traffic() as traffic:
            ev = flow.evaluate([Row(f"{i}+2=", "3") for i in range(32)], version)
        assert ev["eval/prompts"] == 32.0
        received.append(traffic.received_bytes)
    finally:
        flow.shutdown()
    # 16x the rows (128 responses of up to 12 tokens): the driver's share does not grow.
    assert max(received) < bound, received
    assert abs(received[1] - received[0]) < 2048, received


# Four more worker processes: ~20 s alone, 80 s on two cores shared with other jobs.
@pytest.mark.slow
def test_agent_flow_with_tasks_and_an_extra_group(ray_cluster, model_dir):
    placement = {"actor": "0", "rollout": "0", "reward": "0", "tools": "1"}
    launched = []

    def launch_tools(launch):
        launched.append(launch(Pinger, "tools"))
        return (functools.partial(CallEnv),)

    gen = dataclasses.replace(GEN, max_new_tokens=8, n=2, stop_on_eos=False)
    flow = LLMRLFlow(
        _config(placement, components=("actor", "rollout", "reward", "tools")),
        model_path=model_dir,
        ref_path=model_dir,
        algo=ALGO,
        total_updates=1,
        scorer_factory=ExactMatch,
        rollout_args=(gen, MultiTurnConfig(max_turns=3, max_response_tokens=24)),
        rollout_worker=AgentRolloutWorker,
        task_of=lambda row: row.task,
        launch_extra=launch_tools,
    )
    try:
        assert flow.groups["tools"] is launched[0]
        assert launched[0].call("ping").wait(60) == [0]
        version = flow.sync_weights()
        # Task = tool calls granted: 1 then 0, so turns differ between the rows.
        rows = [Row("ab", "x", task=1), Row("cd", "y", task=0)]
        ev = flow.evaluate(rows, version)
        assert {"eval/turns", "eval/tool_calls"} <= set(ev)
        assert 0.0 <= ev["eval/tool_calls"] <= 0.5  # at most row 0's one call, over 2 rows
        m = flow.step(rows, version)
        assert m["train/weight_version"] == version + 1
        assert {"rollout/turns", "rollout/tool_calls", "time/tool_wait"} <= set(m)
        assert 0.0 <= m["rollout/tool_calls"] <= 0.5
    finally:
        flow.shutdown()


def test_merge_step_metrics_hand_computed():
    rollout = [
        {"rollout/generated_tokens": 30.0, "rollout/turns": 2.0, "time/generate": 1.5},
        {"rollout/generated_tokens": 10.0, "rollout/turns": 4.0, "time/generate": 2.5},
    ]
    reward = [
        {
            "sum/responses": 6.0,
            "sum/reward": 3.0,
            "sum/response_length": 24.0,
            "sum/truncated": 1.0,
            "sum/status_correct": 2.0,
            "sum/status_no_code": 1.0,
            "sum/status_timeout": 1.0,
            "time/reward": 0.5,
        },
        {
            "sum/responses": 2.0,
            "sum/reward": 1.0,
            "sum/response_length": 8.0,
            "sum/truncated": 0.0,
            "sum/status_passed": 1.0,
            "sum/status_no_answer": 1.0,
            "time/reward": 0.75,
        },
    ]
    out = merge_step_metrics(
        rollout,
        [3, 1],
        reward,
        correct=("correct", "passed"),
        no_answer=("no_answer", "no_code"),
    )
    assert out == {
        "rollout/reward_mean": 4.0 / 8,
        "rollout/accuracy": 3.0 / 8,
        "rollout/response_length": 32.0 / 8,
        "rollout/truncation_rate": 1.0 / 8,
        "rollout/no_answer_rate": 2.0 / 8,
        "rollout/checker_timeouts": 1.0,
        "rollout/checker_errors": 0.0,
        "rollout/responses": 8.0,
        "rollout/generated_tokens": 40.0,
        "rollout/turns": 0.75 * 2.0 + 0.25 * 4.0,
        "time/generate": 2.5,
        "time/reward": 0.75,
    }
    # Math's statuses: "passed" and "no_code" are not counted.
    plain = merge_step_metrics(rollout, [3, 1], reward)
    assert plain["rollout/accuracy"] == 2.0 / 8 and plain["rollout/no_answer_rate"] == 1.0 / 8
    with pytest.raises(ValueError, match="2 rollout results for 1 row counts"):
        merge_step_metrics(rollout, [4], reward)
