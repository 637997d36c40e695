"""DAPO dynamic sampling with refill, without Ray: the ledger's counts on hand-built reward
patterns (an exact fill, the round bound), the keep masks the actor trains on, the updater
training only the selected rows, config errors, and the prompt order resuming exactly
when steps run ahead and refills draw in between (StepDraws)."""

from __future__ import annotations

import copy

import pytest
import torch

from rlinf.models.llm import (
    GenerationConfig,
    HFGenerationBackend,
    LLMUpdater,
    LLMUpdaterConfig,
    TinyLMConfig,
    build_tiny_causal_lm,
    load_causal_lm,
)
from rlinf.models.llm._draw_log import StepDraws
from rlinf.models.llm._pipeline import AsyncStepPipeline
from rlinf.models.llm._refill import RefillLedger, selection_of

T = torch.tensor


def test_refill_fills_the_batch_exactly():
    # 4 prompts x 2 responses in two shards; each shard has one flat group.
    led = RefillLedger(target=4, max_rounds=1)
    led.started(0, 2, 0)
    led.started(2, 2, 0)
    keep, replace = led.observe(0, T([1.0, 0.0, 1.0, 1.0]), 2)
    assert keep.tolist() == [True, True, False, False] and replace == 1
    keep, replace = led.observe(2, T([0.0, 0.0, 0.0, 1.0]), 2)
    assert keep.tolist() == [False, False, True, True] and replace == 1
    # One refill shard per flat group, both informative: the batch is full.
    led.started(4, 1, led.round_of(0) + 1)
    led.started(5, 1, led.round_of(2) + 1)
    keep, replace = led.observe(4, T([1.0, 0.0]), 1)
    assert keep.tolist() == [True, True] and replace == 0
    assert led.observe(5, T([0.5, 0.25]), 1)[1] == 0
    assert led.metrics() == {
        "train/dynamic_sampling_kept": 4.0,
        "train/dynamic_sampling_dropped": 2.0,
        "train/dynamic_sampling_refill_rounds": 1.0,
        "train/dynamic_sampling_refill_prompts": 2.0,
        "train/dynamic_sampling_short": 0.0,
        "train/dynamic_sampling_prompts_per_trained": 1.5,
    }


def test_refill_bound_trains_a_short_batch():
    led = RefillLedger(target=3, max_rounds=2)
    led.started(0, 3, 0)
    assert led.observe(0, T([1.0, 1.0, 0.0, 0.0, 0.0, 1.0]), 3)[1] == 2
    led.started(3, 2, 1)  # round 1: one flat of two
    assert led.observe(3, T([0.0, 0.0, 1.0, 0.0]), 2)[1] == 1
    led.started(5, 1, 2)  # round 2 is the last: its flat group is not replaced
    keep, replace = led.observe(5, T([1.0, 1.0]), 1)
    assert replace == 0 and not keep.any()
    m = led.metrics()
    assert m["train/dynamic_sampling_kept"] == 2.0
    assert m["train/dynamic_sampling_dropped"] == 4.0
    assert m["train/dynamic_sampling_short"] == 1.0
    assert m["train/dynamic_sampling_refill_rounds"] == 2.0
    assert m["train/dynamic_sampling_refill_prompts"] == 3.0
    assert m["train/dynamic_sampling_prompts_per_trained"] == 3.0


def test_ledger_refuses_lost_unknown_and_bad_shards():
    led = RefillLedger(target=2, max_rounds=1)
    led.started(0, 2, 0)
    with pytest.raises(ValueError, match="started twice"):
        led.started(0, 2, 0)
    with pytest.raises(ValueError, match="shard 7 was never started"):
        led.observe(7, T([1.0, 0.0]), 1)
    with pytest.raises(ValueError, match="n >= 2"):
        led.observe(0, T([1.0, 0.0]), 2)
    # A started shard never judged: its groups would be lost, so the metrics refuse.
    with pytest.raises(RuntimeError, match="2 prompts generated but 0 kept"):
        led.metrics()
    with pytest.raises(ValueError, match="target must be >= 1"):
        RefillLedger(target=0, max_rounds=1)
    with pytest.raises(ValueError, match="max_refill_rounds must be an int >= 0"):
        RefillLedger(target=1, max_rounds=-1)


def test_selection_of_score_shards():
    assert selection_of([{"shard": 0}, {"shard": 2}]) is None
    masks = [{"keep": T([True, False])}, {"keep": T([False, False, True, True])}]
    assert selection_of(masks).tolist() == [True, False, False, False, True, True]
    with pytest.raises(RuntimeError, match="some score shards carry"):
        selection_of([{"keep": T([True])}, {"shard": 1}])


@pytest.mark.parametrize("bad", [-1, True, 1.0])
def test_bad_max_refill_rounds(bad):
    with pytest.raises(ValueError, match="max_refill_rounds must be an int >= 0"):
        LLMUpdaterConfig(name="dapo", dynamic_sampling=True, max_refill_rounds=bad)


def test_refill_needs_dynamic_sampling_and_groups():
    with pytest.raises(ValueError, match="needs dynamic_sampling=true"):
        LLMUpdaterConfig(name="dapo", max_refill_rounds=2)
    with pytest.raises(ValueError, match="group-relative name"):
        LLMUpdaterConfig(name="ppo", dynamic_sampling=True, max_refill_rounds=2)
    assert LLMUpdaterConfig(name="dapo", dynamic_sampling=True, max_refill_rounds=2)


def test_pipeline_refuses_half_a_refill():
    with pytest.raises(ValueError, match="refill and max_refill_rounds go together"):
        AsyncStepPipeline(
            None, max_staleness=0, version=0, first_step=0, total_steps=1, draw=list,
            max_refill_rounds=2,
        )  # fmt: skip


def test_updater_trains_only_the_selected_rows(tmp_path):
    torch.set_num_threads(1)
    tiny = TinyLMConfig(
        hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64
    )
    model, tok = load_causal_lm(build_tiny_causal_lm(tmp_path, tiny))
    prompts = [
        tok(p, add_special_tokens=False)["input_ids"] for p in ("1+2=", "30-4=", "7*7=", "9-1=")
    ]
    gen = GenerationConfig(max_new_tokens=5, n=2, seed=0)
    batch = HFGenerationBackend(model, tok).generate(prompts, gen)
    rewards = T([1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    select = T([False] * 4 + [True] * 4)
    cfg = LLMUpdaterConfig(name="dapo", lr=1e-2, dynamic_sampling=True, max_refill_rounds=1)
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    picked = LLMUpdater(a, cfg).update(batch, rewards, select=select)
    alone = LLMUpdater(b, cfg).update(batch.select(torch.arange(4, 8)), rewards[4:])
    # The same update as training the last two groups alone; the flat one is still counted.
    assert picked["train/kept_responses"] == 2.0 == alone["train/kept_responses"]
    assert picked["train/dropped_groups"] == 1.0
    assert picked["train/loss"] == pytest.approx(alone["train/loss"], abs=1e-6)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(x, y, atol=1e-6), name
    with pytest.raises(ValueError, match="select has 3 rows for 8 responses"):
        LLMUpdater(a, cfg).update(batch, rewards, select=T([True, True, True]))


class Numbers:
    """A resumable prompt order: the integers from 0."""

    def __init__(self) -> None:
        self.pos = 0

    def next_batch(self, n: int) -> list[int]:
        self.pos += n
        return list(range(self.pos - n, self.pos))

    def state_dict(self) -> dict[str, int]:
        return {"pos": self.pos}

    def load_state_dict(self, state) -> None:
        self.pos = state["pos"]


REFILLS = {0: [2], 1: [], 2: [1, 3], 3: [2], 4: [1]}  # per step: sizes of its refill draws


def _run(draws: StepDraws, k: int, first: int, last: int, stop: int | None = None):
    """Draw as AsyncStepPipeline and the refills do: step s+k's rows before step s trains,
    then step s's refills. Returns {step: rows}, plus the checkpoint after ``stop``."""
    got: dict[int, list[int]] = {}
    started = first
    for s in range(first, last):
        while started <= min(s + k, last - 1):
            got[started] = list(draws.draw(started, 2))
            started += 1
        for n in REFILLS[s]:
            got[s] += draws.draw(s, n, refill=True)
        if stop is not None and s + 1 == stop:
            return got, draws.checkpoint(stop)
    return got, draws.checkpoint(last)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_prompt_order_resumes_exactly_with_refills(k):
    whole, _ = _run(StepDraws(Numbers()), k, 0, 5)
    part, (state, skips) = _run(StepDraws(Numbers()), k, 0, 5, stop=2)
    # Rows drawn ahead for steps 2.. are drawn again; refills trained by then are skipped.
    assert {s: part[s] for s in (0, 1)} == {s: whole[s] for s in (0, 1)}
    src = Numbers()
    src.load_state_dict(state)
    resumed, _ = _run(StepDraws(src, skips), k, 2, 5)
    assert resumed == {s: whole[s] for s in (2, 3, 4)}
    # Every row of the stream went to exactly one step.
    assert sorted(r for rows in whole.values() for r in rows) == list(range(src.pos))


def test_prompt_order_without_refills_is_the_old_checkpoint():
    draws = StepDraws(Numbers())
    draws.draw(0, 2)
    draws.draw(1, 2)  # drawn ahead (k=1)
    assert draws.checkpoint(1) == ({"pos": 2}, [])
    assert draws.checkpoint(2) == ({"pos": 4}, [])
    with pytest.raises(ValueError, match="bad prompt skips"):
        StepDraws(Numbers(), [[0, 0]])
