"""Partial rollouts across the turns of multi_turn_generate (no Ray): a new weight version
forced at a chosen poll (before turn 2, or inside turn 1). ``continue``: every token
records its version (observations their calling turn's), tokens before the switch equal a
run without one, each model token's log-prob is the full-sequence log-prob under the
version that sampled it, staleness counts from the oldest token. ``abort``: rows still
running at the switch are rerun exactly once, whole, and equal a fresh run under the new
weights with the rerun's seeds; rows ended before it are kept."""

from __future__ import annotations

import concurrent.futures
import dataclasses

import pytest
import torch

from rlinf.models import WeightSnapshot
from rlinf.models.llm import (
    GenerationConfig,
    HFGenerationBackend,
    InFlightUpdates,
    MultiTurnConfig,
    build_tiny_causal_lm,
    load_causal_lm,
    multi_turn_generate,
    response_logprobs,
)
from rlinf.models.llm._partial import check_sample_staleness

STOP = tuple("aeiouAEIOU0123456789")  # short turns on the near-uniform tiny model
RERUN_SEED = 7_919_993  # offset of a rerun's seeds (multi_turn_generate's doc)
PROMPTS = ["3+4=", "Compute 12*3:", "hi", "9-2?"]


class _Session:
    """Answers ``calls`` turns at once (inline futures: deterministic batching), then done."""

    def __init__(self, calls: int) -> None:
        self.left = calls

    def submit(self, turn_text: str) -> concurrent.futures.Future[str] | None:
        if self.left == 0:
            return None
        self.left -= 1
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        future.set_result(f"<r>{len(turn_text)}</r>")
        return future


class _Env:
    stop = STOP

    def session(self, task: int) -> _Session:
        return _Session(task)


class _Switch:
    """A poll that loads version 1 at its ``at``-th call; counts its calls."""

    def __init__(self, backend: HFGenerationBackend, snapshot: WeightSnapshot, at: int) -> None:
        self.backend, self.snapshot, self.at, self.calls = backend, snapshot, at, 0

    def __call__(self) -> bool:
        self.calls += 1
        if self.calls == self.at:
            self.backend.load_weights(self.snapshot)
            return True
        return False


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    path = build_tiny_causal_lm(tmp_path_factory.mktemp("tiny"))
    model, tok = load_causal_lm(path)
    gen = torch.Generator().manual_seed(7)
    state = {
        k: v + 0.3 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
        for k, v in WeightSnapshot.of(model, 0).state.items()
    }
    return path, tok, WeightSnapshot(1, state)


def _backend(path, snapshot: WeightSnapshot | None = None) -> HFGenerationBackend:
    model, tok = load_causal_lm(path)
    if snapshot is not None:
        model.load_state_dict(snapshot.state)
        return HFGenerationBackend(model, tok, version=1)
    return HFGenerationBackend(model, tok, version=0)


GEN = GenerationConfig(max_new_tokens=40, n=2, seed=11, stop_on_eos=False)
CFG = MultiTurnConfig(max_turns=6, max_response_tokens=160, max_observation_tokens=8)


def _run(backend, tok, tasks, updates=None, gen=GEN, prompts=PROMPTS):
    ids = [tok.encode(t) for t in prompts]
    return multi_turn_generate(backend, tok, ids, tasks, _Env(), gen, CFG, updates=updates)


def _model_turns(batch, row):
    """``[(start, end)]`` response positions of the row's model turns (mask runs of 1)."""
    n = int(batch.response_lengths[row])
    mask = batch.response_mask[row, :n].tolist()
    runs, start = [], None
    for t, m in enumerate([*mask, 0.0]):
        if m and start is None:
            start = t
        elif not m and start is not None:
            runs.append((start, t))
            start = None
    return runs


def test_continue_across_turns_records_versions(tiny):
    path, tok, snapshot = tiny
    tasks = [2, 0, 3, 1]  # row 1's prompt ends after turn 1, before the switch
    plain = _run(_backend(path), tok, tasks)
    assert plain.batch.versions is None

    backend = _backend(path)
    # interval > max_new_tokens: polls only between turns; the 2nd poll is before turn 2.
    switch = _Switch(backend, snapshot, at=2)
    result = _run(backend, tok, tasks, InFlightUpdates("continue", 1000, switch))
    batch = result.batch
    assert backend.version == 1 and batch.version == 0
    assert switch.calls == int(result.turns.max())  # one poll before each turn
    assert result.requeued is not None and not result.requeued.any()
    p = batch.prompt_length
    for row in range(batch.batch_size):
        turns = _model_turns(batch, row)
        n = int(batch.response_lengths[row])
        first_end = turns[1][0] if len(turns) > 1 else n
        # Turn 1 and its observation: version 0, identical to the run without a switch.
        assert batch.versions[row, :first_end].tolist() == [0] * first_end
        assert batch.versions[row, first_end:n].tolist() == [1] * (n - first_end)
        same = plain.batch.input_ids[row, p : p + first_end]
        assert torch.equal(batch.input_ids[row, p : p + first_end], same)
        assert torch.equal(
            batch.rollout_logprobs[row, :first_end], plain.batch.rollout_logprobs[row, :first_end]
        )
    ended_early = [i // 2 == 1 for i in range(8)]
    assert batch.mixed_versions().tolist() == [not e for e in ended_early]
    assert batch.oldest_versions().tolist() == [0] * 8
    # Each model token's log-prob is the full-sequence one under the version that sampled it.
    old, new = load_causal_lm(path)[0], load_causal_lm(path)[0]
    new.load_state_dict(snapshot.state)
    with torch.no_grad():
        args = (batch.input_ids, batch.attention_mask, p)
        by_version = torch.stack([response_logprobs(m, *args)[0] for m in (old, new)])
    expected = by_version.gather(0, batch.versions[None]).squeeze(0)
    mask = batch.response_mask.bool()
    assert (expected - batch.rollout_logprobs)[mask].abs().max() < 1e-4
    assert (by_version[0] - by_version[1])[mask & (batch.versions == 1)].abs().max() > 1e-2
    # Staleness counts from the oldest model token.
    assert check_sample_staleness(batch, 1, 1, "actor").tolist() == [1] * 8
    with pytest.raises(RuntimeError, match="version 0, 2 versions behind the actor's 2"):
        check_sample_staleness(batch, 2, 1, "actor")


def test_continue_inside_a_turn(tiny):
    path, tok, snapshot = tiny
    tasks = [1, 1, 1, 1]
    plain = _run(_backend(path), tok, tasks)
    backend = _backend(path)
    # Poll 1 is before turn 1, poll 2 after its 2nd token.
    result = _run(
        backend, tok, tasks, InFlightUpdates("continue", 2, _Switch(backend, snapshot, 2))
    )
    batch = result.batch
    p = batch.prompt_length
    switched_inside = 0  # rows whose first turn went on under version 1
    for row in range(batch.batch_size):
        n = int(batch.response_lengths[row])
        (_, end), *_ = turns = _model_turns(batch, row)
        switched_inside += end > 2
        # Turn 1: 2 tokens of version 0, then 1; its observation: its last token's version.
        first = [0 if t < 2 else 1 for t in range(end)]
        obs_end = turns[1][0] if len(turns) > 1 else n
        expected = first + [first[-1]] * (obs_end - end) + [1] * (n - obs_end)
        assert batch.versions[row, :n].tolist() == expected
        k = min(2, n)
        assert torch.equal(batch.input_ids[row, : p + k], plain.batch.input_ids[row, : p + k])
    assert switched_inside > 0
    assert batch.version == 0 and batch.mixed_versions().any()


@pytest.mark.parametrize(("interval", "at"), [(1000, 2), (2, 2)], ids=["between", "inside"])
def test_abort_reruns_running_rows_once(tiny, interval, at):
    path, tok, snapshot = tiny
    tasks = [2, 0, 3, 1]
    plain = _run(_backend(path), tok, tasks)
    backend = _backend(path)
    switch = _Switch(backend, snapshot, at)
    result = _run(backend, tok, tasks, InFlightUpdates("abort", interval, switch))
    assert switch.calls == at  # no poll after the switch: requeued once
    batch = result.batch
    assert not batch.mixed_versions().any()
    # Between turns: prompt 1's rows ended in turn 1 (kept); inside turn 1 nothing had.
    kept = [i // 2 == 1 and interval == 1000 for i in range(8)]
    assert result.requeued.tolist() == [not k for k in kept]
    assert batch.oldest_versions().tolist() == [0 if k else 1 for k in kept]
    assert batch.version == (0 if any(kept) else 1)
    p = batch.prompt_length
    for row in (i for i in range(8) if kept[i]):
        n = int(batch.response_lengths[row])
        assert torch.equal(batch.input_ids[row, : p + n], plain.batch.input_ids[row, : p + n])
    # The rerun rows equal a fresh run of their prompts under version 1 with the rerun seeds.
    rerun = [i for i in range(4) if not kept[2 * i]]
    fresh = _run(
        _backend(path, snapshot),
        tok,
        [tasks[i] for i in rerun],
        gen=dataclasses.replace(GEN, seed=GEN.seed + RERUN_SEED),
        prompts=[PROMPTS[i] for i in rerun],
    )
    rows = torch.tensor([r for r in range(8) if not kept[r]])
    fb = fresh.batch
    for j, row in enumerate(rows.tolist()):
        n = int(fb.response_lengths[j])
        assert int(batch.response_lengths[row]) == n
        q = fb.prompt_length
        assert torch.equal(batch.input_ids[row, p : p + n], fb.input_ids[j, q : q + n])
        assert torch.equal(batch.rollout_logprobs[row, :n], fb.rollout_logprobs[j, :n])
        assert torch.equal(batch.response_mask[row, :n], fb.response_mask[j, :n])
    assert result.turns[rows].tolist() == fresh.turns.tolist()
    assert result.transcripts[rows[0]] == fresh.transcripts[0]


def test_abort_before_the_first_turn_requeues_nothing(tiny):
    path, tok, snapshot = tiny
    tasks = [2, 0, 3, 1]
    backend = _backend(path)
    switch = _Switch(backend, snapshot, at=1)  # the poll before turn 1
    result = _run(backend, tok, tasks, InFlightUpdates("abort", 1000, switch))
    fresh = _run(_backend(path, snapshot), tok, tasks)
    assert not result.requeued.any()
    assert switch.calls == int(result.turns.max())  # nothing aborted: polls go on
    assert result.batch.version == 1 and not result.batch.mixed_versions().any()
    assert torch.equal(result.batch.input_ids, fresh.batch.input_ids)
    assert torch.equal(result.batch.rollout_logprobs, fresh.batch.rollout_logprobs)
