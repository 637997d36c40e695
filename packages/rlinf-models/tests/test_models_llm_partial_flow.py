"""Partial rollouts in the Ray flow on a tiny model (``max_staleness=1``): the new version
is published through the weights channel while the next step's rollout runs, and a rank
takes it between decoding steps. The test's rollout worker waits at one chosen poll until
the version is published, so the switch falls after exactly ``N`` tokens: ``continue``
trains a step whose every row has ``N`` tokens of version 0 and the rest of version 1;
``abort`` requeues every row of the step once and trains it with version 3 only."""

from __future__ import annotations

import dataclasses
import sys

import pytest
import ray
from ray import cloudpickle

from rlinf.core import ClusterSection, RunnerSection
from rlinf.models.llm import (
    AsyncStepPipeline,
    GenerationConfig,
    LLMFlowConfig,
    LLMRLFlow,
    LLMRolloutWorker,
    LLMUpdaterConfig,
    PartialRolloutConfig,
    TinyLMConfig,
    build_tiny_causal_lm,
)

cloudpickle.register_pickle_by_value(sys.modules[__name__])

TINY = TinyLMConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64)
N = 2  # update_interval_tokens: the forced switch falls after N tokens
GEN = GenerationConfig(max_new_tokens=6, n=2, seed=0, stop_on_eos=False)
ROWS = 2


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


class WaitingRolloutWorker(LLMRolloutWorker):
    """In its ``forced``-th sampling call it does not look for weights at the start and
    waits for the next version at the first poll inside the generation (after ``N``
    tokens) instead of looking once: the switch lands there whatever the machine's load."""

    forced = 0
    calls = 0
    polls = 0

    def force_switch_in_call(self, call: int) -> None:
        self.forced = call

    def generate(self, prompts, *, greedy=False, **kwargs):
        if not greedy:
            self.calls += 1
            self.polls = 0
        return super().generate(prompts, greedy=greedy, **kwargs)

    def _poll_weights(self) -> bool:
        self.polls += 1
        if self.calls != self.forced:
            return super()._poll_weights()
        if self.polls == 1:
            # At the call's start: as if the next version had not been published yet
            # (on a loaded machine it may already have been).
            return False
        if self.polls == 2:
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


# Minutes of Ray flow on a loaded machine: slow. The quick suite keeps the mechanism
# without Ray (test_models_llm_partial.py: forced switches, per-token versions, requeue).
@pytest.mark.slow
def test_partial_rollouts_continue_then_abort(ray_cluster, model_dir):
    flow = LLMRLFlow(
        LLMFlowConfig(
            name="partial",
            runner=RunnerSection(timeout_s=300.0),
            cluster=ClusterSection(num_cpus=2, devices=2),
            placement={"actor": "0", "rollout": "1", "reward": "1"},
            partial=PartialRolloutConfig("continue", N),
        ),
        model_path=model_dir,
        ref_path=model_dir,
        algo=LLMUpdaterConfig(lr=1e-2),
        total_updates=8,
        scorer_factory=StartsWithDigit,
        rollout_args=(GEN,),
        rollout_worker=WaitingRolloutWorker,
    )
    draw = _draw()
    try:
        assert flow.weight_sync == "object_store"
        version = flow.sync_weights()
        assert version == 0
        # Steps 0 and 1 start with version 0; version 1 is published after step 0
        # trains and reaches step 1's rollout (call 2) after N tokens.
        flow._wait(flow.rollout.call("force_switch_in_call", 2))
        pipe = AsyncStepPipeline(
            flow, max_staleness=1, version=version, first_step=0, total_steps=2, draw=draw
        )
        ms = [pipe.step() for _ in range(2)]
        assert ms[0]["train/mixed_version_frac"] == 0.0
        assert ms[0]["train/staleness_max"] == 0.0
        # Every row of step 1: N tokens of version 0, then version 1.
        assert ms[1]["rollout/mixed_versions"] == 1.0
        assert ms[1]["train/mixed_version_frac"] == 1.0
        assert ms[1]["train/sample_version"] == 0.0
        assert ms[1]["train/staleness_max"] == 1.0
        for m in ms:
            # Counted on the oldest token: never more than max_staleness=1.
            assert m["train/staleness_max"] <= 1.0
            assert m["rollout/requeued"] == 0.0
        assert pipe.version == 2

        # abort on the same flow: step 3's rollout (call 4) is aborted after N tokens
        # when version 3 comes in; every row (none had ended) runs again under it.
        flow._wait(
            flow.rollout.call(
                "enable_partial", flow.weights_channel, PartialRolloutConfig("abort", N)
            )
        )
        flow._wait(flow.rollout.call("force_switch_in_call", 4))
        pipe = AsyncStepPipeline(
            flow, max_staleness=1, version=2, first_step=2, total_steps=4, draw=draw
        )
        ms = [pipe.step() for _ in range(2)]
        assert ms[1]["rollout/requeued"] == 1.0
        assert ms[1]["rollout/mixed_versions"] == 0.0
        assert ms[1]["train/mixed_version_frac"] == 0.0
        assert ms[1]["train/sample_version"] == 3.0
        assert ms[1]["train/staleness_max"] == 0.0
        assert ms[1]["rollout/responses"] == ROWS * GEN.n
        assert ms[0]["rollout/requeued"] == 0.0 and ms[0]["train/staleness_max"] <= 1.0
        # Evaluation asks for the version just published: the rank catches up first.
        assert flow.evaluate(draw(), pipe.version)["eval/prompts"] == ROWS
    finally:
        flow.shutdown()
