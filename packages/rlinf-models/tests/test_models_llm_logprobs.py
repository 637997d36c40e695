"""response_logprobs against a naive full log-softmax on unpadded sequences."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlinf.models.llm import build_tiny_causal_lm, load_causal_lm, response_logprobs

PAIRS = [("1+1=", "2<|endoftext|>"), ("hello there", "abc"), ("x", "long answer")]
TEMP = 0.7


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    torch.manual_seed(0)
    return load_causal_lm(build_tiny_causal_lm(tmp_path_factory.mktemp("tiny")))


def _layout(tok):
    """Left-padded prompts + right-padded responses, plus the unpadded rows."""
    prompts = [tok.encode(p) for p, _ in PAIRS]
    responses = [tok.encode(r) for _, r in PAIRS]
    p, r = max(map(len, prompts)), max(map(len, responses))
    ids = torch.full((len(PAIRS), p + r), tok.pad_token_id)
    mask = torch.zeros_like(ids)
    for i, (q, a) in enumerate(zip(prompts, responses, strict=True)):
        ids[i, p - len(q) : p + len(a)] = torch.tensor(q + a)
        mask[i, p - len(q) : p + len(a)] = 1
    return ids, mask, p, prompts, responses


def _reference(model, prompts, responses):
    """Per row, alone (no padding): full float64 log-softmax of logits / T."""
    logps, ents = [], []
    for q, a in zip(prompts, responses, strict=True):
        logits = model(torch.tensor([q + a])).logits[0].double() / TEMP
        ls = torch.log_softmax(logits, dim=-1)[len(q) - 1 : -1]
        logps.append(ls.gather(-1, torch.tensor(a)[:, None]).squeeze(-1))
        ents.append(-(ls.exp() * ls).sum(-1))
    return logps, ents


class _NoSplit(nn.Module):
    """Hides get_decoder / get_output_embeddings: forces the logits_to_keep path."""

    def __init__(self, model):
        super().__init__()
        self.inner = model

    def forward(self, **kwargs):
        return self.inner(**kwargs)


@pytest.mark.parametrize("chunk_size", [1, 5, 1024])
def test_matches_naive_reference_with_left_padding(lm, chunk_size):
    model, tok = lm
    ids, mask, p, prompts, responses = _layout(tok)
    with torch.no_grad():
        logp, ent = response_logprobs(
            model, ids, mask, p, temperature=TEMP, chunk_size=chunk_size, with_entropy=True
        )
        ref_logp, ref_ent = _reference(model, prompts, responses)
    assert logp.shape == ent.shape == (len(PAIRS), ids.shape[1] - p)
    assert logp.dtype == torch.float32
    for i, a in enumerate(responses):
        torch.testing.assert_close(logp[i, : len(a)].double(), ref_logp[i], atol=1e-5, rtol=0)
        torch.testing.assert_close(ent[i, : len(a)].double(), ref_ent[i], atol=1e-5, rtol=0)
    # Entropy of a V-way distribution is at most log V, and the tiny model is near-uniform.
    assert (ent <= torch.log(torch.tensor(float(len(tok)))) + 1e-5).all()
    no_ent = response_logprobs(model, ids, mask, p, temperature=TEMP, chunk_size=chunk_size)
    assert no_ent[1] is None and torch.equal(no_ent[0], logp)


def test_logits_path_equals_hidden_state_path(lm):
    model, tok = lm
    ids, mask, p, _, _ = _layout(tok)
    with torch.no_grad():
        fast = response_logprobs(model, ids, mask, p, temperature=TEMP, with_entropy=True)
        slow = response_logprobs(_NoSplit(model), ids, mask, p, temperature=TEMP, with_entropy=True)
    torch.testing.assert_close(fast[0], slow[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(fast[1], slow[1], atol=1e-5, rtol=0)


def test_gradients_match_unchunked(lm):
    model, tok = lm
    ids, mask, p, _, _ = _layout(tok)
    weights = mask[:, p:].float()

    def grads(chunk_size):
        model.zero_grad()
        logp, ent = response_logprobs(
            model, ids, mask, p, temperature=TEMP, chunk_size=chunk_size, with_entropy=True
        )
        ((logp + 0.1 * ent) * weights).sum().backward()
        return {n: q.grad.clone() for n, q in model.named_parameters() if q.grad is not None}

    chunked, whole = grads(2), grads(10_000)
    model.zero_grad()
    assert set(chunked) == {n for n, _ in model.named_parameters()}  # every weight gets one
    assert all(g.abs().sum() > 0 for g in chunked.values())
    for name, g in whole.items():
        torch.testing.assert_close(chunked[name], g, atol=1e-6, rtol=1e-4)


def test_bad_arguments(lm):
    model, tok = lm
    ids, mask, p, _, _ = _layout(tok)
    with pytest.raises(ValueError, match="prompt_length"):
        response_logprobs(model, ids, mask, 0)
    with pytest.raises(ValueError, match="temperature"):
        response_logprobs(model, ids, mask, p, temperature=0.0)
    with pytest.raises(ValueError, match="attention_mask"):
        response_logprobs(model, ids, mask[:, 1:], p)
    empty, _ = response_logprobs(model, ids, mask, ids.shape[1])
    assert empty.shape == (len(PAIRS), 0)
