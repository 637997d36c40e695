"""LLM workers in Ray: version-checked generation, scoring, one update through channels."""

from __future__ import annotations

import functools
import sys

import pytest
import ray
import torch
from ray import cloudpickle

from rlinf.channel import Channel
from rlinf.core import Cluster, ClusterConfig, WorkerError
from rlinf.models import StaleWeightsError, WeightSnapshot
from rlinf.models.llm import (
    GenerationConfig,
    HFGenerationBackend,
    LLMActorWorker,
    LLMRolloutWorker,
    LLMUpdaterConfig,
    RewardWorker,
    RolloutRoute,
    TinyLMConfig,
    build_tiny_causal_lm,
    load_causal_lm,
)
from rlinf.models.train import TrainingConfig

# The scorer below is defined here; Ray workers cannot import this test module by name.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class _Result:
    def __init__(self, score: float, status: str) -> None:
        self.score, self.status = score, status


class ContainsScorer:
    """Status ``correct`` when the response contains the answer text; the score is a
    deterministic function of the text (character codes mod 7) so that every group of
    random-model samples has reward spread and the update really moves the weights."""

    def __init__(self, empty_status: str = "no_answer") -> None:
        self.empty_status = empty_status

    def score(self, responses, answers):
        out = []
        for text, answer in zip(responses, answers, strict=True):
            if not text:
                out.append(_Result(0.0, self.empty_status))
            else:
                status = "correct" if answer in text else "wrong"
                out.append(_Result(float(sum(map(ord, text)) % 7), status))
        return out


TINY = TinyLMConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64)
GEN = GenerationConfig(max_new_tokens=5, n=4, seed=0)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(build_tiny_causal_lm(tmp_path_factory.mktemp("tiny"), TINY))


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    # Joins the shared Ray (root conftest.py); shutdown kills what this module launched.
    with Cluster(ClusterConfig(num_cpus=2, num_gpus=0, devices_per_node=1)) as c:
        yield c


def test_stale_backend_never_serves_old_weights(model_dir):
    model, tok = load_causal_lm(model_dir)
    backend = HFGenerationBackend(model, tok)
    backend.load_weights(WeightSnapshot.of(model, 0))
    with pytest.raises(StaleWeightsError, match="stale"):
        backend.load_weights(WeightSnapshot.of(model, 0))


def test_reward_worker_scores_in_process_semantics():
    # The worker class is plain Python around the scorer; its sums are checked in Ray below.
    results = ContainsScorer().score(["a 7 b", "", "x"], ["7", "1", "2"])
    assert [r.status for r in results] == ["correct", "no_answer", "wrong"]
    assert [r.score for r in results] == [float((97 + 32 + 55 + 32 + 98) % 7), 0.0, 1.0]


def test_rollout_reward_actor_step_through_channels(cluster, model_dir):
    pgs = cluster.allocate({"actor": "0", "rollout": "0", "reward": "0"})
    algo = LLMUpdaterConfig(lr=1e-2, kl_coef=0.05)
    # Phase offload: the actor starts in host memory, brings the policy and the reference
    # back for their phases and offloads at the end of its turn; everything it serves
    # (weights, metrics, checkpoint state) is as without.
    kwargs = {"total_updates": 2, "training": TrainingConfig(offload="phase")}
    actor = cluster.launch(LLMActorWorker, pgs, "actor", args=(model_dir, algo), kwargs=kwargs)
    # The rollout's HF copy in host memory outside its turns: weights load into it there.
    rollout = cluster.launch(
        LLMRolloutWorker, pgs, "rollout", args=(model_dir, GEN), kwargs={"offload_model": True}
    )
    reward = cluster.launch(
        RewardWorker, pgs, "reward", args=(functools.partial(ContainsScorer, "no_answer"),)
    )
    prompts, answers = ["1+1=", "2+5="], ["2", "7"]
    # Before any weight sync the rollout holds no version: generating must fail.
    with pytest.raises(WorkerError, match="StaleWeightsError"):
        rollout.call("generate", prompts, version=0).wait(120)
    v0 = actor.call("export_weights").wait(120)[0]
    assert rollout.call("load_weights", ray.put(v0)).wait(120) == [0]

    ch_roll, ch_scored = Channel.create("llm-test-rollout"), Channel.create("llm-test-scored")
    ch_batch = Channel.create("llm-test-batch")
    route = RolloutRoute(reward=ch_roll, batch=ch_batch)
    try:
        (roll_m,) = rollout.call("rollout", (prompts,), answers, route, 10, version=0).wait(120)
        # The scorer gets the texts, the actor the token batch, both tagged with the shard.
        texts = ch_roll.get(key="rollout", timeout=60)
        assert set(texts) == {"shard", "responses", "answers", "response_lengths", "truncated"}
        assert texts["shard"] == 10 and texts["answers"] == ["2"] * 4 + ["7"] * 4
        ch_roll.put(texts, key="rollout")
        (score_m,) = reward.call("serve", ch_roll, ch_scored, 1).wait(120)
        scored = ch_scored.get(key="scored", timeout=60)
        assert set(scored) == {"shard", "rewards", "statuses"} and scored["shard"] == 10
        ch_scored.put(scored, key="scored")
        assert ch_batch.qsize("batch") == 1
        (metrics,) = actor.call("update_from_channels", ch_batch, ch_scored, 1).wait(120)
    finally:
        ch_roll.kill()
        ch_scored.kill()
        ch_batch.kill()
    assert roll_m["rollout/generated_tokens"] > 0
    assert score_m["sum/responses"] == 8.0
    statuses = sum(v for k, v in score_m.items() if k.startswith("sum/status_"))
    assert statuses == 8.0
    assert metrics["train/weight_version"] == 1.0
    assert metrics["train/kl"] == pytest.approx(0.0, abs=1e-6)  # policy == reference
    assert metrics["train/trained_tokens"] > 0
    assert not any(k.startswith("memory/") for k in metrics)  # CPU: no memory metrics

    # Version 1 exists on the actor but not on the rollout: asking for it must fail, and
    # re-sending version 0 is refused as stale.
    with pytest.raises(WorkerError, match="StaleWeightsError"):
        rollout.call("generate", prompts, version=1).wait(120)
    with pytest.raises(WorkerError, match="stale"):
        rollout.call("load_weights", v0).wait(120)
    v1 = actor.call("export_weights").wait(120)[0]
    assert v1.version == 1
    assert not all(torch.equal(v0.state[k], v1.state[k]) for k in v0.state)
    assert rollout.call("load_weights", v1).wait(120) == [1]
    out = rollout.call("generate", prompts, version=1, greedy=True).wait(120)[0]
    assert out["batch"].input_ids.shape[0] == 2 and len(out["responses"]) == 2
    scored = reward.call("score", out["responses"], answers).wait(120)[0]
    assert scored["rewards"].shape == (2,)

    state = actor.call("checkpoint_state").wait(120)[0]
    assert state["version"] == 1 and state["updater"]["num_updates"] == 1
    for group in (actor, rollout, reward):
        group.kill()
