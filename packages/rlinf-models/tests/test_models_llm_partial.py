"""Partial rollouts in the HF backend (no Ray): a new weight version forced after ``N``
tokens. ``continue``: tokens before the switch carry version v and equal the run without
a switch, tokens after it carry v+1 and their log-probs are the new weights' on the old
KV cache (computed here by hand); ``abort``: rows still generating at the switch are run
again exactly once, whole, under v+1 (checked against a fresh v+1 run), rows finished
before it are untouched; per-token versions drive staleness and the actor's bound."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rlinf.models import WeightSnapshot
from rlinf.models.llm import (
    GenerationConfig,
    HFGenerationBackend,
    InFlightUpdates,
    PartialRolloutConfig,
    RolloutBatch,
    build_tiny_causal_lm,
    load_causal_lm,
)
from rlinf.models.llm._partial import check_sample_staleness, sample_staleness

N = 4  # tokens generated before the forced switch
TEXTS = ["12+3=", "45+6=", "78+9="]  # equal lengths: no left padding to tell apart


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny"))


def _backend(tiny_dir, eos: int | None = None) -> HFGenerationBackend:
    model, tok = load_causal_lm(tiny_dir)
    if eos is not None:
        model.generation_config.eos_token_id = eos
    return HFGenerationBackend(model, tok, version=0)


def _new_weights(backend: HFGenerationBackend) -> WeightSnapshot:
    """Version 1: version 0 moved far enough to change every distribution."""
    gen = torch.Generator().manual_seed(7)
    state = {
        k: v + 0.3 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
        for k, v in WeightSnapshot.of(backend.model, 0).state.items()
    }
    return WeightSnapshot(1, state)


class _Switch:
    """A poll that loads version 1 at its first call (after ``N`` tokens) and reports no
    change afterwards; counts its calls."""

    def __init__(self, backend: HFGenerationBackend, snapshot: WeightSnapshot) -> None:
        self.backend, self.snapshot, self.calls = backend, snapshot, 0

    def __call__(self) -> bool:
        self.calls += 1
        if self.backend.version == 0:
            self.backend.load_weights(self.snapshot)
            return True
        return False


def _prompts(backend: HFGenerationBackend) -> list[list[int]]:
    return [backend.tokenizer.encode(t) for t in TEXTS]


def test_continue_records_per_token_versions(tiny_dir):
    cfg = GenerationConfig(max_new_tokens=10, n=2, seed=3, stop_on_eos=False)
    plain = _backend(tiny_dir)
    prompts = _prompts(plain)
    before = plain.generate(prompts, cfg)
    assert before.versions is None  # the plain path is unchanged

    # A poll that never finds new weights: the same batch, every token version 0.
    still = _backend(tiny_dir)
    never = InFlightUpdates("continue", N, lambda: False)
    same = still.generate(prompts, cfg, updates=never)
    assert torch.equal(same.input_ids, before.input_ids)
    assert torch.equal(same.rollout_logprobs, before.rollout_logprobs)
    assert torch.equal(same.versions, torch.zeros(6, 10, dtype=torch.long))

    backend = _backend(tiny_dir)
    snapshot = _new_weights(backend)
    switch = _Switch(backend, snapshot)
    batch = backend.generate(prompts, cfg, updates=InFlightUpdates("continue", N, switch))
    # Polls after tokens 4 and 8 (not after the last token).
    assert switch.calls == 2
    assert batch.version == 0 and backend.version == 1
    assert torch.equal(batch.versions[:, :N], torch.zeros(6, N, dtype=torch.long))
    assert torch.equal(batch.versions[:, N:], torch.ones(6, 10 - N, dtype=torch.long))
    assert batch.oldest_versions().tolist() == [0] * 6
    assert batch.mixed_versions().tolist() == [True] * 6
    assert not backend.requeued.any()
    p = batch.prompt_length
    # Before the switch: the same tokens and log-probs as without it.
    assert torch.equal(batch.input_ids[:, : p + N], before.input_ids[:, : p + N])
    assert torch.equal(batch.rollout_logprobs[:, :N], before.rollout_logprobs[:, :N])

    # Token N by hand: the new weights on the cache that the old ones computed.
    old, _ = load_causal_lm(tiny_dir)
    new, _ = load_causal_lm(tiny_dir)
    new.load_state_dict(snapshot.state)
    with torch.no_grad():
        cache = old(input_ids=batch.input_ids[:, : p + N - 1], use_cache=True).past_key_values
        logits = new(input_ids=batch.input_ids[:, p + N - 1 : p + N], past_key_values=cache).logits[
            :, -1
        ]
    expected = torch.log_softmax(logits.float(), dim=-1).gather(
        -1, batch.response_ids[:, N : N + 1]
    )
    torch.testing.assert_close(batch.rollout_logprobs[:, N], expected.squeeze(-1))
    assert not torch.allclose(batch.rollout_logprobs[:, N], before.rollout_logprobs[:, N])


def _early_eos(tiny_dir, prompts, cfg) -> int:
    """A token that ends some rows before the switch and not others (rows sampled without
    stopping: the prefix until a row's first EOS is the same with stopping)."""
    free = _backend(tiny_dir).generate(prompts, dataclasses.replace(cfg, stop_on_eos=False))
    heads = free.response_ids[:, : N - 1].tolist()
    for token in sorted({t for row in heads for t in row}):
        ends = [token in row for row in heads]
        if any(ends) and not all(ends):
            return token
    raise AssertionError("no token splits the rows; change the seed")


def test_abort_requeues_unfinished_rows_once(tiny_dir):
    cfg = GenerationConfig(max_new_tokens=8, n=2, seed=5)
    prompts = _prompts(_backend(tiny_dir))
    eos = _early_eos(tiny_dir, prompts, cfg)
    before = _backend(tiny_dir, eos).generate(prompts, cfg)
    # Rows ended by the Nth token are kept: the switch comes after it.
    done = (before.response_lengths <= N) & ~before.truncated
    assert done.any() and not done.all()

    backend = _backend(tiny_dir, eos)
    snapshot = _new_weights(backend)
    switch = _Switch(backend, snapshot)
    batch = backend.generate(prompts, cfg, updates=InFlightUpdates("abort", N, switch))
    # One switch, then the rerun takes no updates: requeued exactly once.
    assert switch.calls == 1
    assert torch.equal(backend.requeued, ~done)
    assert not batch.mixed_versions().any()
    assert batch.version == 0  # the oldest token's: rows finished before the switch
    assert batch.oldest_versions().tolist() == [0 if d else 1 for d in done.tolist()]
    # Rows finished before the switch are untouched.
    lengths = batch.response_lengths
    for i in done.nonzero().squeeze(1).tolist():
        n = int(lengths[i])
        assert n == int(before.response_lengths[i])
        assert torch.equal(batch.response_ids[i, :n], before.response_ids[i, :n])
    # Requeued rows: a whole version-1 run of their prompts with the rerun's seed stream.
    fresh = _backend(tiny_dir, eos)
    fresh.load_weights(snapshot)
    rows = (~done).nonzero().squeeze(1)
    rerun = fresh.generate(
        [prompts[int(i) // cfg.n] for i in rows],
        dataclasses.replace(cfg, n=1, seed=cfg.seed + 7_919_993),
    )
    r = rerun.response_length
    assert torch.equal(batch.response_ids[rows, :r], rerun.response_ids)
    assert torch.equal(
        batch.attention_mask[rows, batch.prompt_length :][:, :r],
        rerun.attention_mask[:, rerun.prompt_length :],
    )
    torch.testing.assert_close(batch.rollout_logprobs[rows, :r], rerun.rollout_logprobs)
    assert torch.equal(batch.truncated[rows], rerun.truncated)


def _batch(versions: list[list[int]], lengths: list[int]) -> RolloutBatch:
    b, r = len(versions), len(versions[0])
    real = torch.tensor([[1] * n + [0] * (r - n) for n in lengths])
    return RolloutBatch(
        input_ids=torch.ones(b, 1 + r, dtype=torch.long),
        attention_mask=torch.cat([torch.ones(b, 1, dtype=torch.long), real], dim=1),
        prompt_length=1,
        response_mask=real.float(),
        rollout_logprobs=torch.zeros(b, r),
        prompt_index=torch.arange(b),
        truncated=torch.zeros(b, dtype=torch.bool),
        version=min(min(v[:n]) for v, n in zip(versions, lengths, strict=True)),
        versions=torch.tensor(versions),
    )


def test_staleness_counts_the_oldest_real_token():
    # Row 0 switched 3 -> 4; row 1 is all 4 (its padding says 2: ignored); row 2 all 3.
    batch = _batch([[3, 4, 4], [4, 4, 2], [3, 3, 3]], [3, 2, 3])
    assert batch.oldest_versions().tolist() == [3, 4, 3]
    assert batch.mixed_versions().tolist() == [True, False, False]
    assert sample_staleness(batch, 5).tolist() == [2, 1, 2]
    assert check_sample_staleness(batch, 5, 2, "actor").tolist() == [2, 1, 2]
    # One token of version 3 in a row otherwise of 5 makes the row 3 versions stale.
    stale = _batch([[3, 5, 5], [5, 5, 5]], [3, 3])
    with pytest.raises(
        RuntimeError, match=r"actor: .*version 3, 3 versions behind .* max_staleness=2"
    ):
        check_sample_staleness(stale, 6, 2, "actor")

    # Shards of different start versions join only with per-token versions.
    joined = RolloutBatch.concat([batch.select([1]), stale.select([0])])
    assert joined.version == 3 and joined.versions.tolist() == [[4, 4, 2], [3, 5, 5]]
    plain = dataclasses.replace(batch.select([1]), versions=None, version=4)
    with pytest.raises(ValueError, match="different versions"):
        RolloutBatch.concat([plain, stale.select([0])])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "sometimes"}, "partial_mode must be one of"),
        ({"mode": "continue", "update_interval_tokens": 0}, "update_interval_tokens must be"),
        ({"mode": "abort", "update_interval_tokens": True}, "update_interval_tokens must be"),
    ],
)
def test_bad_partial_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PartialRolloutConfig(**kwargs)
