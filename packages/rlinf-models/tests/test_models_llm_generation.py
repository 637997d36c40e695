"""HFGenerationBackend: layout, EOS handling, seeding, greedy, log-probs, weight versions."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rlinf.models import StaleWeightsError, WeightSnapshot
from rlinf.models.llm import (
    GenerationBackend,
    GenerationConfig,
    HFGenerationBackend,
    TinyLMConfig,
    build_tiny_causal_lm,
    load_causal_lm,
    response_logprobs,
    sample_next_token,
)

TEXTS = ["1+1=", "What is 7*8? Answer:", "hi"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def backend(tiny_dir):
    model, tok = load_causal_lm(tiny_dir)
    return HFGenerationBackend(model, tok)


@pytest.fixture(scope="module")
def prompts(backend):
    return [backend.tokenizer.encode(t) for t in TEXTS]


@pytest.fixture(scope="module")
def sampled(backend, prompts):
    # Near-uniform tiny model: each token is EOS with p ~ 1/99, so over 40 tokens and 36 rows
    # both EOS-ended and truncated rows occur (all of one kind has probability < 1e-6).
    config = GenerationConfig(max_new_tokens=40, temperature=0.7, n=12, seed=3)
    return backend.generate(prompts, config), config


def test_protocol_and_config_validation(backend):
    assert isinstance(backend, GenerationBackend)
    assert backend.version == -1
    with pytest.raises(ValueError, match="temperature must be > 0"):
        GenerationConfig(temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        GenerationConfig(top_p=0.0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        GenerationConfig(n=0)


def test_layout_and_eos_masks(sampled, prompts, backend):
    batch, config = sampled
    eos = backend.tokenizer.eos_token_id
    pad = backend.tokenizer.pad_token_id
    b = len(prompts) * config.n
    p = max(map(len, prompts))
    assert batch.input_ids.shape[0] == b and batch.prompt_length == p
    assert batch.version == -1
    # The n samples of a prompt are consecutive, and each row starts with its prompt.
    assert batch.prompt_index.tolist() == [i for i in range(len(prompts)) for _ in range(12)]
    for row in range(b):
        q = prompts[int(batch.prompt_index[row])]
        assert batch.input_ids[row, p - len(q) : p].tolist() == q
        assert batch.attention_mask[row, :p].tolist() == [0] * (p - len(q)) + [1] * len(q)
    lengths = batch.response_lengths
    resp = batch.response_ids
    assert batch.response_length == int(lengths.max())
    ended = ~batch.truncated
    assert ended.any() and batch.truncated.any()
    for row in range(b):
        n = int(lengths[row])
        assert batch.response_mask[row].tolist() == [1.0] * n + [0.0] * (resp.shape[1] - n)
        assert (resp[row, n:] == pad).all()
        assert (batch.rollout_logprobs[row, n:] == 0).all()
        assert (batch.rollout_logprobs[row, :n] < 0).all()
        real = resp[row, :n].tolist()
        if ended[row]:
            assert real[-1] == eos and eos not in real[:-1]
        else:
            assert n == config.max_new_tokens and eos not in real


def test_rollout_logprobs_match_training_logprobs(sampled, backend):
    batch, config = sampled
    with torch.no_grad():
        logp, _ = response_logprobs(
            backend.model,
            batch.input_ids,
            batch.attention_mask,
            batch.prompt_length,
            temperature=config.temperature,
        )
    diff = ((logp - batch.rollout_logprobs) * batch.response_mask).abs().max()
    assert diff < 1e-4


def test_seeded_reproducible(backend, prompts):
    config = GenerationConfig(max_new_tokens=8, n=2, seed=3, stop_on_eos=False)
    first, again = backend.generate(prompts, config), backend.generate(prompts, config)
    assert torch.equal(again.input_ids, first.input_ids)
    assert torch.equal(again.rollout_logprobs, first.rollout_logprobs)
    other = backend.generate(prompts, GenerationConfig(max_new_tokens=8, n=2, seed=4))
    assert not torch.equal(other.response_ids[:, :4], first.response_ids[:, :4])


def test_greedy_equals_argmax_continuation(backend, prompts):
    config = GenerationConfig(max_new_tokens=8, do_sample=False)
    batch = backend.generate(prompts, config)
    for row in range(batch.batch_size):
        ids = list(prompts[row])
        with torch.no_grad():
            for _ in range(int(batch.response_lengths[row])):
                ids.append(int(backend.model(torch.tensor([ids])).logits[0, -1].argmax()))
        n = int(batch.response_lengths[row])
        assert batch.response_ids[row, :n].tolist() == ids[len(prompts[row]) :]


def test_stop_on_eos_off_generates_max_tokens(backend, prompts):
    batch = backend.generate(prompts, GenerationConfig(max_new_tokens=5, stop_on_eos=False))
    assert batch.response_lengths.tolist() == [5] * len(prompts)
    assert batch.truncated.all()


def test_sample_next_token_filters():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(4000, 1)
    gen = torch.Generator().manual_seed(0)
    top_k = sample_next_token(logits, GenerationConfig(top_k=2), gen)
    assert set(top_k.tolist()) == {0, 1}
    assert abs((top_k == 0).float().mean().item() - 0.5 / 0.8) < 0.03
    # top_p=0.7: 0.5 alone is < 0.7, so {0, 1} is the nucleus.
    top_p = sample_next_token(logits, GenerationConfig(top_p=0.7), gen)
    assert set(top_p.tolist()) == {0, 1}
    full = sample_next_token(logits, GenerationConfig(), gen)
    freq = torch.bincount(full, minlength=4).float() / len(full)
    torch.testing.assert_close(freq, torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.03, rtol=0)


def test_bad_prompts(backend):
    config = GenerationConfig(max_new_tokens=2)
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        backend.generate([[5], []], config)
    with pytest.raises(TypeError, match="prompt 0 is a string"):
        backend.generate(["abc"], config)
    with pytest.raises(ValueError, match="outside"):
        backend.generate([[5, 10_000]], config)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        backend.generate([[5] * 500], GenerationConfig(max_new_tokens=20))


def test_load_weights_versions_and_effect(tiny_dir, tmp_path, prompts):
    model, tok = load_causal_lm(tiny_dir)
    be = HFGenerationBackend(model, tok)
    other_model, _ = load_causal_lm(build_tiny_causal_lm(tmp_path, TinyLMConfig(seed=7)))
    # Seeded sampling: same weights + same seed -> same tokens and log-probs. (Greedy would
    # not tell these random models apart: both just repeat the last prompt token.)
    config = GenerationConfig(max_new_tokens=10, seed=0, stop_on_eos=False)
    before = be.generate(prompts, config)
    reference = HFGenerationBackend(other_model, tok).generate(prompts, config)
    assert not torch.allclose(before.rollout_logprobs, reference.rollout_logprobs, atol=1e-3)

    be.load_weights(WeightSnapshot.of(other_model, 5))  # the first load may start anywhere
    assert be.version == 5
    after = be.generate(prompts, config)
    assert after.version == 5
    assert torch.equal(after.input_ids, reference.input_ids)
    torch.testing.assert_close(after.rollout_logprobs, reference.rollout_logprobs)
    with pytest.raises(StaleWeightsError, match="stale"):
        be.load_weights(WeightSnapshot.of(other_model, 5))
    with pytest.raises(StaleWeightsError, match="skipped"):
        be.load_weights(WeightSnapshot.of(other_model, 7))
    be.load_weights(WeightSnapshot.of(model, 6))
    assert be.version == 6


@pytest.mark.gpu
def test_cuda_generation_matches_training_logprobs(tiny_dir, prompts):
    model, tok = load_causal_lm(tiny_dir, device="cuda")
    be = HFGenerationBackend(model, tok, device="cuda")
    config = GenerationConfig(max_new_tokens=16, temperature=0.7, n=4, seed=0)
    batch = be.generate(prompts, config)
    assert batch.input_ids.device.type == "cpu"
    assert torch.equal(be.generate(prompts, config).input_ids, batch.input_ids)
    with torch.no_grad():
        logp, _ = response_logprobs(
            model,
            batch.input_ids.cuda(),
            batch.attention_mask.cuda(),
            batch.prompt_length,
            temperature=0.7,
        )
    diff = ((logp.cpu() - batch.rollout_logprobs) * batch.response_mask).abs().max()
    assert diff < 1e-4


def test_stop_config_validation():
    assert GenerationConfig(stop=["</a>", "x"]).stop == ("</a>", "x")  # YAML lists -> tuple
    assert GenerationConfig().stop == ()
    with pytest.raises(ValueError, match="non-empty strings"):
        GenerationConfig(stop=("ok", ""))
    with pytest.raises(ValueError, match="non-empty strings"):
        GenerationConfig(stop=(3,))
    with pytest.raises(TypeError, match="list or tuple of strings"):
        GenerationConfig(stop="</a>")


def test_stop_strings_end_responses_where_they_first_complete(backend, prompts):
    tok = backend.tokenizer
    # Without stop strings (and EOS as an ordinary token) every row runs the full length;
    # one shared generator per batch means each row's tokens do not depend on other rows
    # stopping, so the stopped run must be each reference row cut after its first stop.
    base = GenerationConfig(max_new_tokens=30, n=6, seed=11, stop_on_eos=False)
    ref = backend.generate(prompts, base)
    texts = tok.batch_decode(ref.response_ids.tolist(), skip_special_tokens=True)
    # Single chars, a 2-char string taken from a reference row (a stop across tokens) and
    # one that never occurs.
    stop = ("e", "a", "o", texts[0][10:12], "~~~~~~~~")
    out = backend.generate(prompts, dataclasses.replace(base, stop=stop))
    assert out.version == ref.version
    hits = 0
    for row in range(ref.batch_size):
        ids = ref.response_ids[row].tolist()
        # Special tokens (EOS sampled as an ordinary token) do not count as text.
        prefixes = tok.batch_decode([ids[:k] for k in range(1, 31)], skip_special_tokens=True)
        cut = next((k + 1 for k, t in enumerate(prefixes) if any(s in t for s in stop)), None)
        n = int(out.response_lengths[row])
        got = out.response_ids[row, :n].tolist()
        if cut is None:
            assert got == ids and bool(out.truncated[row])
            continue
        hits += 1
        text = tok.decode(got, skip_special_tokens=True)
        assert got == ids[:cut] and not bool(out.truncated[row])
        assert any(text.endswith(s) for s in stop)
        assert out.attention_mask[row, out.prompt_length + n :].sum() == 0  # nothing follows
        torch.testing.assert_close(out.rollout_logprobs[row, :n], ref.rollout_logprobs[row, :n])
    assert hits >= 4 and hits < ref.batch_size  # both outcomes really occurred
    assert not bool(out.truncated[0])  # row 0 stops at the latest on its own 2-char string


def test_stop_that_never_matches_changes_nothing(backend, prompts):
    config = GenerationConfig(max_new_tokens=12, n=2, seed=4)
    plain = backend.generate(prompts, config)
    never = backend.generate(prompts, dataclasses.replace(config, stop=("~~~~~~~~~~~~~~",)))
    assert torch.equal(never.input_ids, plain.input_ids)
    assert torch.equal(never.rollout_logprobs, plain.rollout_logprobs)
    assert torch.equal(never.truncated, plain.truncated)
