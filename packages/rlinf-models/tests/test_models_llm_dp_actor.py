"""LLMActorWorker on two actor ranks (Ray, gloo, fsdp2): an update fed through the
channels (rank 0 reads them and broadcasts the joined batch) equals the one-process
LLMUpdater's on the same batch for the policy with a KL reference and the PPO critic;
rank 0 exports the full weights; the checkpoint files (plain HF directory with the critic,
sharded train state) resume on ONE rank and continue identically."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

import dp_cases

from rlinf.channel import Channel
from rlinf.core import Cluster, ClusterConfig, WorkerError
from rlinf.models.llm import (
    LLMActorWorker,
    LLMUpdater,
    LLMUpdaterConfig,
    TinyLMConfig,
    ValueModel,
    build_tiny_causal_lm,
    load_causal_lm,
)

ALGO = LLMUpdaterConfig(name="ppo", lr=1e-3, critic_lr=1e-2, kl_coef=0.05, micro_batch_size=3)
TOL = {"rel": 1e-5, "abs": 1e-6}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(
        build_tiny_causal_lm(
            tmp_path_factory.mktemp("tiny"),
            TinyLMConfig(
                hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=64
            ),
        )
    )


def _local_updates(model_dir: str, vocab: int) -> tuple[list[dict], dict, dict]:
    """Two one-process updates: their metrics, the policy after the first, and after both."""
    torch.manual_seed(0)
    model, _ = load_causal_lm(model_dir)
    ref, _ = load_causal_lm(model_dir)
    critic = ValueModel.from_pretrained(model_dir)
    up = LLMUpdater(
        model, ALGO, ref_model=ref.requires_grad_(False), critic=critic, total_updates=3
    )
    m1 = up.update(*dp_cases._rollout(1, vocab))
    params1 = {k: v.detach().clone() for k, v in model.state_dict().items()}
    m2 = up.update(*dp_cases._rollout(2, vocab))
    return [m1, m2], params1, {k: v.detach().clone() for k, v in model.state_dict().items()}


def _check(got: dict, expected: dict) -> None:
    assert expected["train/grad_norm"] > 0 and "train/vf_loss" in expected
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, **TOL), k


def test_two_rank_actor_updates_like_one_process_and_resumes_on_one(
    ray_cluster, tmp_path, model_dir
):
    vocab = load_causal_lm(model_dir)[0].config.vocab_size
    expected, params1, params2 = _local_updates(model_dir, vocab)
    ckpt = tmp_path / "model"
    kwargs = {"total_updates": 3, "ref_path": model_dir}
    with Cluster(ClusterConfig(num_cpus=2, num_gpus=0, devices_per_node=2)) as cluster:
        pgs = cluster.allocate({"actor": "0-1", "resumed": "0"})
        actor = cluster.launch(LLMActorWorker, pgs, "actor", args=(model_dir, ALGO), kwargs=kwargs)
        ch_batch, ch_scored = Channel.create("dp-actor-batch"), Channel.create("dp-actor-scored")
        batch, rewards = dp_cases._rollout(1, vocab)
        # Shards that do not match: rank 0 fails, and rank 1 (waiting for the batch) fails
        # with rank 0's error instead of hanging.
        ch_batch.put({"shard": 0, "batch": batch}, key="batch")
        ch_scored.put({"shard": 4, "rewards": rewards}, key="scored")
        args = ("update_from_channels", ch_batch, ch_scored, 1)
        first, second = actor.call(*args, ranks=0), actor.call(*args, ranks=1)
        with pytest.raises(WorkerError, match=r"batch shards \[0\] but score shards \[4\]"):
            first.wait(120)
        with pytest.raises(WorkerError, match="actor rank 0 could not read the step"):
            second.wait(120)
        # Two rollout shards (prompts 0 and 1), put out of order: rank 0 joins them in order.
        for shard, rows in ((4, slice(4, 8)), (0, slice(0, 4))):
            part = batch.select(rows)
            ch_batch.put({"shard": shard, "batch": part}, key="batch")
            ch_scored.put({"shard": shard, "rewards": rewards[rows]}, key="scored")
        got = actor.call("update_from_channels", ch_batch, ch_scored, 2).wait(300)
        for rank_metrics in got:
            _check(rank_metrics, expected[0])
        snap = actor.call("export_weights", ranks=0).wait(60)[0]
        assert snap.version == 1
        for k, v in params1.items():
            torch.testing.assert_close(snap.state[k], v, atol=1e-5, rtol=1e-5)
        assert actor.call("save_checkpoint_files", str(ckpt)).wait(120) == [str(ckpt), None]
        state = actor.call("checkpoint_state").wait(60)[0]
        assert state["version"] == 1 and state["train_state"] == "train_state"
        two = actor.call("update", *dp_cases._rollout(2, vocab)).wait(300)[0]
        _check(two, expected[1])
        # The plain HF directory holds the full weights after update 1, the critic too.
        saved, _ = load_causal_lm(ckpt)
        for k, v in saved.state_dict().items():
            torch.testing.assert_close(v, params1[k], atol=1e-5, rtol=1e-5)
        assert ValueModel.from_pretrained(ckpt / "critic").head_loaded
        one = cluster.launch(
            LLMActorWorker,
            pgs,
            "resumed",
            args=(str(ckpt), ALGO),
            kwargs=kwargs,
        )
        assert one.call("load_checkpoint_state", state).wait(120) == [1]
        again = one.call("update", *dp_cases._rollout(2, vocab)).wait(300)[0]
        _check(again, expected[1])
        final = one.call("export_weights").wait(60)[0]
        for k, v in params2.items():
            torch.testing.assert_close(final.state[k], v, atol=1e-5, rtol=1e-5)
