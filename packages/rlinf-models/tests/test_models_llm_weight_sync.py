"""LLMRLFlow with ``runner.weight_sync``: the collective path (bucketed broadcasts from every
actor rank straight into the rollout ranks' generation models) from 2 data-parallel (fsdp2)
actor ranks and from 1 actor rank to 2 rollout ranks. After an update the rollout ranks'
tensors equal the actor's full weights, the driver receives only small messages, versions
stay checked, and (slow) a step's metrics and weights equal the object-store run's."""

from __future__ import annotations

import dataclasses
import sys

import pytest
import torch
from ray import cloudpickle

from rlinf.core import ClusterSection, RunnerSection, WorkerError, count_driver_traffic
from rlinf.models import sync_weights
from rlinf.models.llm import (
    GenerationConfig,
    HFGenerationBackend,
    LLMActorWorker,
    LLMFlowConfig,
    LLMRLFlow,
    LLMRolloutWorker,
    LLMUpdaterConfig,
    TinyLMConfig,
    build_tiny_causal_lm,
    load_causal_lm,
)

# The workers and scorer below are defined here; Ray workers cannot import this module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

TINY = TinyLMConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64)
GEN = GenerationConfig(max_new_tokens=5, n=2, seed=0)
ALGO = LLMUpdaterConfig(lr=1e-2)
ROWS = [f"{i}+1=" for i in range(4)]
# 4 KiB buckets: the small tensors (biases, norms) are packed, the matrices go alone.
BUCKET_MB = 0.004


@dataclasses.dataclass(frozen=True)
class Row:
    prompt: str
    answer: str


@dataclasses.dataclass(frozen=True)
class _Result:
    score: float
    status: str


class StartsWithDigit:
    """Score 1 when the response starts with a digit: a reward that varies between rows."""

    def score(self, responses, answers):
        return [
            _Result(float(text[:1].isdigit()), "correct" if text[:1].isdigit() else "wrong")
            for text in responses
        ]


class ProbeRollout(LLMRolloutWorker):
    """Exposes the generation model's own tensors (what ``generate`` runs on)."""

    def held(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.backend.model.state_dict().items()}


class ProbeActor(LLMActorWorker):
    """Exposes the full weights (a collective under fsdp2: call every rank)."""

    def full(self) -> dict[str, torch.Tensor]:
        return self.updater.backend.full_state_dict()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(build_tiny_causal_lm(tmp_path_factory.mktemp("tiny"), TINY))


def _flow(model_dir: str, weight_sync: str, **extra_placement: str) -> LLMRLFlow:
    placement = {"actor": "0-1", "rollout": "0-1", "reward": "1", **extra_placement}
    runner = RunnerSection(
        timeout_s=300.0, weight_sync=weight_sync, weight_sync_bucket_mb=BUCKET_MB
    )
    return LLMRLFlow(
        LLMFlowConfig(
            name=f"ws-{weight_sync}",
            runner=runner,
            cluster=ClusterSection(num_cpus=2, devices=2),
            placement=placement,
            components=("actor", "rollout", "reward", *extra_placement),
        ),
        model_path=model_dir,
        ref_path=model_dir,
        algo=ALGO,
        total_updates=2,
        scorer_factory=StartsWithDigit,
        rollout_args=(GEN,),
        rollout_worker=ProbeRollout,
    )


def _assert_holds(rollout, expected: dict[str, torch.Tensor], version: int) -> None:
    """Every rollout rank holds ``version`` and exactly ``expected``'s tensors (the tied
    ``lm_head.weight`` included: it is the embedding, written once)."""
    assert rollout.call("get_version").wait(60) == [version, version]
    for held in rollout.call("held").wait(60):
        assert set(held) == set(expected)
        for k, v in expected.items():
            assert torch.equal(held[k], v), k


def _step_metrics(m: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in m.items() if k.startswith(("train/", "rollout/"))}


@pytest.mark.parametrize("tied", [True, False])
def test_weight_targets_are_the_generation_models_own_tensors(tmp_path, tied):
    path = build_tiny_causal_lm(tmp_path, dataclasses.replace(TINY, tie_word_embeddings=tied))
    model, tok = load_causal_lm(path)
    backend = HFGenerationBackend(model, tok)
    weights, targets = backend.weight_targets()
    assert weights.version == backend.version == -1
    names = set(model.state_dict())
    # A tied output embedding is the input embedding: sent and written once, by that name.
    assert set(targets) == (names - {"lm_head.weight"} if tied else names)
    for name, param in model.named_parameters():
        assert targets[name].data_ptr() == param.data_ptr(), name
    # Writing a target changes what generation runs on, and the tied output projection.
    with torch.no_grad():
        targets["model.embed_tokens.weight"].fill_(0.25)
    assert bool((backend.model.lm_head.weight == 0.25).all()) == tied


def test_collective_sync_from_two_and_one_actor_ranks(ray_cluster, model_dir, tmp_path):
    model, _ = load_causal_lm(model_dir)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    weight_bytes = sum(t.numel() * t.element_size() for t in initial.values())
    bound = 8 * 1024
    assert weight_bytes > 6 * bound
    rows = [Row(p, "2") for p in ROWS]
    flow = _flow(model_dir, "auto", one="0")
    try:
        # auto: 2 actor ranks -> collective; the actor ranks no longer gather after updates.
        assert flow.weight_sync == "collective"
        assert flow.sync_weights() == 0
        _assert_holds(flow.rollout, initial, 0)
        with count_driver_traffic() as traffic:
            m = flow.step(rows, 0)
        assert traffic.received_bytes < bound and traffic.sent_bytes == 0
        assert m["train/weight_version"] == 1.0 and m["train/grad_norm"] > 0
        # The rollout ranks hold the actor's full weights (gathered by save_pretrained on
        # demand, every actor rank taking part), which the update changed.
        assert flow.call_actor("save_pretrained", str(tmp_path / "v1")) == str(tmp_path / "v1")
        full = load_causal_lm(tmp_path / "v1")[0].state_dict()
        assert not torch.equal(full["model.norm.weight"], initial["model.norm.weight"])
        _assert_holds(flow.rollout, full, 1)
        with pytest.raises(WorkerError, match="gather_full_state=False"):
            flow.actor.call("export_weights", ranks=0).wait(60)
        with pytest.raises(WorkerError, match="StaleWeightsError"):
            flow.evaluate(rows[:2], 0)

        # From ONE actor rank (plain torch, unsharded) to the same 2 rollout ranks.
        one = flow.launch(ProbeActor, "one", args=(model_dir, ALGO), kwargs={"total_updates": 2})
        timeout = 120.0
        # Its version 1 is stale for ranks that hold 1: refused before anything is written.
        one.call("update", *_batch(flow, 0)).wait(timeout)
        with pytest.raises(WorkerError, match="StaleWeightsError"):
            sync_weights(one, flow.rollout, timeout, "collective", 4096)
        _assert_holds(flow.rollout, full, 1)
        one.call("update", *_batch(flow, 1)).wait(timeout)
        with count_driver_traffic() as traffic:
            assert sync_weights(one, flow.rollout, timeout, "collective", 4096) == 2
        assert traffic.received_bytes < 1024
        _assert_holds(flow.rollout, one.call("full").wait(timeout)[0], 2)
        assert flow.evaluate(rows[:2], 2)["eval/prompts"] == 2.0
    finally:
        flow.shutdown()


# Two flows of five worker processes each (~70 s on two shared cores): slow.
@pytest.mark.slow(seconds=125)
def test_collective_step_equals_the_object_store_step(ray_cluster, model_dir):
    rows = [Row(p, "2") for p in ROWS]
    runs = {}
    flows = []
    for method in ("object_store", "collective"):
        # Flows stay referenced: their groups hold the handle that keeps rlinf-core's shared
        # rendezvous actor alive, which the next flow's collectives meet through.
        flows.append(_flow(model_dir, method))
        flow = flows[-1]
        try:
            assert flow.weight_sync == method
            assert flow.sync_weights() == 0
            metrics = _step_metrics(flow.step(rows, 0))
            held = flow.rollout.call("held", ranks=0).wait(60)[0]
            _assert_holds(flow.rollout, held, 1)
            runs[method] = (metrics, held)
        finally:
            flow.shutdown()
    (expected, reference), (got, held) = runs["object_store"], runs["collective"]
    assert got == expected
    assert all(torch.equal(held[k], v) for k, v in reference.items())


def _batch(flow: LLMRLFlow, seed: int):
    """A generated batch (from rollout rank 0, weights it holds) and random 0/1 rewards."""
    version = flow.rollout.call("get_version", ranks=0).wait(60)[0]
    out = flow.rollout.call("generate", ROWS, version=version, ranks=0).wait(60)[0]
    g = torch.Generator().manual_seed(seed)
    return out["batch"], torch.randint(0, 2, (out["batch"].batch_size,), generator=g).float()
