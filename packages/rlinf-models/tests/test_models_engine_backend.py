"""EngineBackend's versioned, bucketed updates and sleep / wake rules, on CPU.

The engine under test is a Hugging Face model driven through the engine hooks (its
"engine memory" is the model's parameters): the samples it returns go through
``pack_rollout`` and must give back exactly the HF backend's batch.
"""

from __future__ import annotations

import copy

import pytest
import torch

from rlinf.models import StaleWeightsError, WeightSnapshot
from rlinf.models.llm import (
    GenerationConfig,
    HFGenerationBackend,
    build_tiny_causal_lm,
    load_causal_lm,
)
from rlinf.models.llm.engines import EngineBackend, EngineSample


class _HFEngine(EngineBackend):
    """Engine hooks over an HF model: ``_push`` writes named tensors into it, ``_sleep``
    with ``discard_weights`` zeroes them (the memory is gone), ``_run`` samples with the
    HF backend and returns per-sample tokens / log-probs as an engine does."""

    def __init__(self, model: torch.nn.Module, tokenizer: object, bucket_bytes: int) -> None:
        self.hf = HFGenerationBackend(model, tokenizer)
        super().__init__(
            vocab_size=model.config.vocab_size,
            pad_token_id=self.hf.pad_token_id,
            eos_token_ids=self.hf.eos_token_ids,
            bucket_bytes=bucket_bytes,
        )
        self.pushed: list[list[str]] = []
        self.events: list[str] = []
        self.fail_after: int | None = None

    def _run(self, prompts, config):
        batch = self.hf.generate(prompts, config)
        out = []
        for i in range(batch.input_ids.shape[0]):
            k = int(batch.response_mask[i].sum())
            ids = batch.input_ids[i, batch.prompt_length : batch.prompt_length + k]
            logps = batch.rollout_logprobs[i, :k]
            out.append(
                EngineSample(
                    tuple(ids.tolist()), tuple(logps.tolist()), not bool(batch.truncated[i])
                )
            )
        return out

    def _push(self, bucket):
        if self.fail_after is not None and len(self.pushed) == self.fail_after:
            raise RuntimeError("engine update failed")
        self.pushed.append([n for n, _ in bucket])
        self.hf.model.load_state_dict(dict(bucket), strict=False)

    def _after_update(self):
        self.events.append("flush")

    def _sleep(self, discard_weights):
        self.events.append(f"sleep{2 if discard_weights else 1}")
        if discard_weights:
            with torch.no_grad():
                for p in self.hf.model.parameters():
                    p.zero_()

    def _wake(self, weights_only):
        self.events.append("wake_weights" if weights_only else "wake")
        if not weights_only:
            self._sleeping = False


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_causal_lm(build_tiny_causal_lm(tmp_path_factory.mktemp("tiny")))


def _perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    other = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.3)
    return other


CFG = GenerationConfig(max_new_tokens=6, temperature=0.8, n=2, seed=3)
PROMPTS = [[5, 6, 7], [8, 9]]


def test_engine_batch_equals_hf_batch_and_updates_are_bucketed(tiny) -> None:
    model, tok = tiny
    engine = _HFEngine(copy.deepcopy(model), tok, bucket_bytes=4096)
    new = _perturbed(model, 0)
    engine.load_weights(WeightSnapshot.of(new, 0))
    state = new.state_dict()
    assert [n for b in engine.pushed for n in b] == list(state)
    for bucket in engine.pushed:  # each bucket within the limit unless one tensor alone
        size = sum(state[n].numel() * state[n].element_size() for n in bucket)
        assert size <= 4096 or len(bucket) == 1
    assert len(engine.pushed) > 1 and engine.events == ["flush"]
    got = engine.generate(PROMPTS, CFG)
    want = HFGenerationBackend(copy.deepcopy(new), tok).generate(PROMPTS, CFG)
    for field in ("input_ids", "attention_mask", "response_mask", "prompt_index", "truncated"):
        assert torch.equal(getattr(got, field), getattr(want, field)), field
    torch.testing.assert_close(got.rollout_logprobs, want.rollout_logprobs)
    assert got.version == 0 and engine.version == 0


def test_versions_sleep_and_failed_updates(tiny) -> None:
    model, tok = tiny
    engine = _HFEngine(copy.deepcopy(model), tok, bucket_bytes=1 << 20)
    engine.load_weights(WeightSnapshot.of(model, 4))  # the first load takes any version
    with pytest.raises(StaleWeightsError, match="stale weights: holding version 4, got 4"):
        engine.load_weights(WeightSnapshot.of(model, 4))
    with pytest.raises(StaleWeightsError, match="skipped weights: holding version 4, got 6"):
        engine.load_weights(WeightSnapshot.of(model, 6))

    # Sleep keeping weights: generation wakes the engine and serves the same weights.
    before = engine.generate(PROMPTS, CFG)
    engine.offload()
    engine.offload()  # idempotent
    after = engine.generate(PROMPTS, CFG)
    assert torch.equal(before.input_ids, after.input_ids)
    assert engine.events[-2:] == ["sleep1", "wake"]

    # Discarded weights: no generation until the next version is in (TRL #5312).
    engine.offload(discard_weights=True)
    with pytest.raises(StaleWeightsError, match="load weights first"):
        engine.generate(PROMPTS, CFG)
    new = _perturbed(model, 1)
    engine.load_weights(WeightSnapshot.of(new, 5))
    assert engine.events[-3:] == ["sleep2", "wake_weights", "flush"]
    want = HFGenerationBackend(copy.deepcopy(new), tok).generate(PROMPTS, CFG)
    assert torch.equal(engine.generate(PROMPTS, CFG).input_ids, want.input_ids)
    assert engine.events[-1] == "wake"

    # An update that fails half-way leaves no version and refuses to generate.
    engine.fail_after, engine.pushed = 1, []
    engine.bucket_bytes = 4096
    with pytest.raises(RuntimeError, match="engine update failed"):
        engine.load_weights(WeightSnapshot.of(model, 6))
    assert engine.version == -1
    with pytest.raises(StaleWeightsError, match="half-written"):
        engine.generate(PROMPTS, CFG)
    engine.fail_after = None
    engine.load_weights(WeightSnapshot.of(model, 9))  # from no version: any is accepted
    assert engine.generate(PROMPTS, CFG).version == 9


def test_bad_prompts_and_config_are_refused(tiny) -> None:
    model, tok = tiny
    engine = _HFEngine(copy.deepcopy(model), tok, bucket_bytes=1 << 20)
    engine.load_weights(WeightSnapshot.of(model, 0))
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        engine.generate([[1], []], CFG)
    with pytest.raises(TypeError, match="GenerationConfig"):
        engine.generate(PROMPTS, {"n": 1})
    with pytest.raises(ValueError, match="bucket_bytes must be >= 1"):
        _HFEngine(model, tok, bucket_bytes=0)
