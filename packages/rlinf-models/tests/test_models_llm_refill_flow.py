"""DAPO refill through the real flow in Ray on a tiny model: a scorer whose rewards follow
each row's answer (``flat``: every response 0; ``mixed``: 0, 1 by position) gives a
hand-built pattern. Synchronous (k=0): the first round leaves 2 of 4 groups informative
and the refill fills the batch exactly; then a step that hits the round bound trains a
short batch, every group counted. With ``max_staleness=1`` the refills generate with the
current weights while the next step's rollouts run, and no trained sample is more than one
version behind; every channel key is empty afterwards."""

from __future__ import annotations

import dataclasses
import sys

import pytest
from ray import cloudpickle

from rlinf.core import ClusterSection, RunnerSection
from rlinf.models.llm import (
    AsyncStepPipeline,
    GenerationConfig,
    LLMFlowConfig,
    LLMRLFlow,
    LLMUpdaterConfig,
    TinyLMConfig,
    build_tiny_causal_lm,
)

cloudpickle.register_pickle_by_value(sys.modules[__name__])

TINY = TinyLMConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64)
GEN = GenerationConfig(max_new_tokens=3, n=2, seed=0)
ALGO = LLMUpdaterConfig(name="dapo", lr=1e-2, dynamic_sampling=True, max_refill_rounds=2)
ROWS = 4
P = "train/dynamic_sampling_"


@dataclasses.dataclass(frozen=True)
class Row:
    prompt: str
    answer: str


@dataclasses.dataclass(frozen=True)
class _Result:
    score: float
    status: str


class ByAnswer:
    """``flat`` rows score 0; ``mixed`` rows score their position's parity (a prompt's two
    responses are consecutive, so its group is 0, 1)."""

    def score(self, responses, answers):
        return [
            _Result(float(i % 2) if a == "mixed" else 0.0, "correct" if a == "mixed" else "wrong")
            for i, a in enumerate(answers)
        ]


class Stream:
    """The prompt order: rows whose answers follow ``pattern``."""

    def __init__(self, pattern: str) -> None:
        self.answers = ["mixed" if c == "m" else "flat" for c in pattern]
        self.pos = 0

    def next_batch(self, n: int) -> list[Row]:
        if self.pos + n > len(self.answers):
            raise AssertionError(f"the test's stream ran out at {self.pos} + {n}")
        rows = [Row(f"{i}+1=", a) for i, a in enumerate(self.answers[self.pos : self.pos + n])]
        self.pos += n
        return rows


def _pipeline(flow, stream, k, version, first, total):
    return AsyncStepPipeline(
        flow,
        max_staleness=k,
        version=version,
        first_step=first,
        total_steps=total,
        draw=lambda: stream.next_batch(ROWS),
        refill=stream.next_batch,
        max_refill_rounds=ALGO.max_refill_rounds,
    )


@pytest.mark.slow  # about 50-70 s with Ray's start on this machine
def test_refill_flow_fills_bounds_and_keeps_staleness(ray_cluster, tmp_path):
    model_dir = str(build_tiny_causal_lm(tmp_path, TINY))
    flow = LLMRLFlow(
        LLMFlowConfig(
            name="refill",
            runner=RunnerSection(timeout_s=300.0),
            cluster=ClusterSection(num_cpus=2, devices=2),
            placement={"actor": "0", "rollout": "1", "reward": "1"},
        ),
        model_path=model_dir,
        ref_path=model_dir,
        algo=ALGO,
        total_updates=6,
        scorer_factory=ByAnswer,
        rollout_args=(GEN,),
    )
    try:
        version = flow.sync_weights()
        # Step 0: m f m f -> 2 flat, refilled by m m (full). Step 1: f f f f -> refill
        # f m f f (round 1, 3 flat) -> refill f m m (round 2, the bound: 1 flat left).
        stream = Stream("mfmf" + "mm" + "ffff" + "fmff" + "fmm")
        pipe = _pipeline(flow, stream, 0, version, 0, 2)
        full, short = pipe.step(), pipe.step()
        assert stream.pos == len(stream.answers)
        assert {k: v for k, v in full.items() if k.startswith(P)} == {
            P + "kept": 4.0,
            P + "dropped": 2.0,
            P + "refill_rounds": 1.0,
            P + "refill_prompts": 2.0,
            P + "short": 0.0,
            P + "prompts_per_trained": 1.5,
        }
        assert full["train/kept_responses"] == ROWS * GEN.n
        assert full["rollout/responses"] == 6 * GEN.n
        assert full["train/dropped_groups"] == 2.0
        assert short[P + "kept"] == 3.0 and short[P + "short"] == 1.0
        assert short[P + "dropped"] == 8.0 and short[P + "refill_rounds"] == 2.0
        assert short[P + "prompts_per_trained"] == pytest.approx(11 / 3)
        assert short["train/kept_responses"] == 3 * GEN.n
        assert short["rollout/responses"] == 11 * GEN.n

        # k=1 over steps 2-4 (versions 2..): each step has one flat group, refilled.
        stream = Stream("mmmf" + "mfmm" + "m" + "fmmm" + "m" + "m")
        pipe = _pipeline(flow, stream, 1, pipe.version, 2, 5)
        ms = [pipe.step() for _ in range(3)]
        assert stream.pos == len(stream.answers)
        assert [m[P + "kept"] for m in ms] == [4.0] * 3
        assert [m[P + "refill_prompts"] for m in ms] == [1.0] * 3
        # A step's own rows lag one version (started ahead); its refill's are current.
        assert [m["train/staleness_max"] for m in ms] == [0.0, 1.0, 1.0]
        assert [m["train/sample_version"] for m in ms] == [2.0, 2.0, 3.0]
        assert [m["train/in_flight_steps"] for m in ms] == [1.0, 1.0, 0.0]
        # Rows of two versions join with per-token versions; no row mixes them.
        assert [m.get("train/mixed_version_frac") for m in ms] == [None, 0.0, 0.0]
        assert pipe.in_flight == 0
        for channel in (flow.rollout_channel, flow.batch_channel, flow.scored_channel):
            for tag in range(5):
                for key in ("rollout", "batch", "scored", "kept"):
                    assert channel.qsize((key, tag)) == 0, (key, tag)
    finally:
        flow.shutdown()
