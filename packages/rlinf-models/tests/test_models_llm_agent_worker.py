"""AgentRolloutWorker in Ray: version checks, seeds derived like LLMRolloutWorker's, the
channel item RewardWorker consumes, metrics recomputed from the batch."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import re
import sys

import pytest
import ray
import torch
from ray import cloudpickle

from rlinf.channel import Channel
from rlinf.core import Cluster, ClusterConfig, WorkerError
from rlinf.models import WeightSnapshot
from rlinf.models.llm import (
    AgentRolloutWorker,
    GenerationConfig,
    HFGenerationBackend,
    MultiTurnConfig,
    RolloutRoute,
    TinyLMConfig,
    build_tiny_causal_lm,
    load_causal_lm,
    multi_turn_generate,
)

# The env below is defined here; Ray workers cannot import this test module by name.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

TINY = TinyLMConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64)
GEN = GenerationConfig(max_new_tokens=24, n=3, seed=0, stop_on_eos=False)
MULTI = MultiTurnConfig(max_turns=3, max_response_tokens=64, max_observation_tokens=16)


class _CountSession:
    """Answers ``calls`` turns with the number of digits and letters in the turn, then says
    done. The answer future is already resolved, so rollouts are deterministic."""

    def __init__(self, calls: int) -> None:
        self.left = calls

    def submit(self, turn_text: str) -> concurrent.futures.Future[str] | None:
        if self.left == 0:
            return None
        self.left -= 1
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        digits = len(re.findall(r"\d", turn_text))
        letters = len(re.findall(r"[A-Za-z]", turn_text))
        future.set_result(f"<r>{digits} digits {letters} letters</r>")
        return future


class CountEnv:
    """AgentEnv: turns end on vowels and digits; the task is the number of tool calls."""

    stop = tuple("aeiouAEIOU0123456789")

    def session(self, task: int) -> _CountSession:
        return _CountSession(int(task))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(build_tiny_causal_lm(tmp_path_factory.mktemp("tiny"), TINY))


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    # Joins the shared Ray (root conftest.py); shutdown kills what this module launched.
    with Cluster(ClusterConfig(num_cpus=2, num_gpus=0, devices_per_node=1)) as c:
        yield c


def _runs(mask_row: torch.Tensor, attn_row: torch.Tensor, value: bool) -> int:
    """Number of maximal runs of real tokens whose response mask is ``value``."""
    flags = [bool(m) for m, a in zip(mask_row.tolist(), attn_row.tolist(), strict=True) if a]
    return sum(1 for i, f in enumerate(flags) if f == value and (i == 0 or flags[i - 1] != f))


def test_agent_rollout_worker_through_a_channel(cluster, model_dir):
    pgs = cluster.allocate({"rollout": "0"})
    worker = cluster.launch(
        AgentRolloutWorker,
        pgs,
        "rollout",
        args=(model_dir, GEN, MULTI, CountEnv),
        kwargs={"seed": 5},
    )
    prompts, tasks, answers = ["1+1=", "Count: a1b2"], [2, 0], ["2", "x"]
    with pytest.raises(WorkerError, match="StaleWeightsError"):
        worker.call("generate", prompts, tasks, version=0).wait(120)
    model, tok = load_causal_lm(model_dir)
    assert worker.call("load_weights", ray.put(WeightSnapshot.of(model, 0))).wait(120) == [0]

    channel = Channel.create("agent-worker-test")
    route = RolloutRoute(reward=channel, batch=channel)
    try:
        (metrics,) = worker.call("rollout", (prompts, tasks), answers, route, 10, version=0).wait(
            120
        )
        item = channel.get(key="rollout", timeout=60)
        batch = channel.get(key="batch", timeout=60)["batch"]
    finally:
        channel.kill()
    assert batch.batch_size == 6 and batch.version == 0
    assert batch.prompt_index.tolist() == [10, 10, 10, 11, 11, 11]
    assert item["answers"] == ["2"] * 3 + ["x"] * 3
    attn = batch.attention_mask[:, batch.prompt_length :]
    assert item["responses"] == [
        tok.decode(ids[m.bool()].tolist(), skip_special_tokens=True)
        for ids, m in zip(batch.response_ids, attn, strict=True)
    ]

    # Seeds as LLMRolloutWorker derives them (rank 0, version 0), tools deterministic: the
    # driver reproduces the worker's batch exactly.
    seed = GEN.seed + 5 + 7919 * (0 + 1)
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    backend = HFGenerationBackend(model, tok, version=0)
    ref = multi_turn_generate(
        backend, tok, ids, tasks, CountEnv(), dataclasses.replace(GEN, seed=seed), MULTI
    )
    assert torch.equal(ref.batch.input_ids, batch.input_ids)
    torch.testing.assert_close(ref.batch.rollout_logprobs, batch.rollout_logprobs)
    assert item["responses"] == ref.transcripts

    # Metrics recomputed from the batch: model turns / observations are the mask's runs.
    turns = [_runs(m, a, True) for m, a in zip(batch.response_mask, attn, strict=True)]
    calls = [_runs(m, a, False) for m, a in zip(batch.response_mask, attn, strict=True)]
    assert turns == ref.turns.tolist() and calls == ref.tool_calls.tolist()
    assert metrics["rollout/generated_tokens"] == float(batch.response_mask.sum())
    assert metrics["rollout/turns"] == pytest.approx(sum(turns) / 6)
    assert metrics["rollout/tool_calls"] == pytest.approx(sum(calls) / 6)
    assert max(turns) > 1 and min(calls) == 0  # the prompts' tasks: 2 calls and 0 calls
    assert metrics["time/generate"] > 0 and metrics["time/tool_wait"] >= 0

    (out,) = worker.call("generate", prompts, tasks, version=0, greedy=True).wait(120)
    assert out["batch"].batch_size == 2 and len(out["responses"]) == 2
    assert out["turns"].shape == (2,) and out["tool_calls"].shape == (2,)
    assert out["tokens"] == int(out["batch"].response_mask.sum())
    with pytest.raises(WorkerError, match="got 1 tasks for 2 prompts"):
        worker.call("generate", prompts, [1], version=0).wait(120)
    worker.kill()
