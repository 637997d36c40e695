"""RolloutBatch: validation, views, select and concat across different paddings."""

from __future__ import annotations

import pytest
import torch

from rlinf.models.llm import RolloutBatch, build_char_tokenizer

PAD, EOS = 0, 1


def _batch(prompts, responses, *, eos_end, version=0, prompt_index=None):
    """Hand-built batch: ``responses`` are token lists (EOS appended where eos_end)."""
    full = [r + ([EOS] if e else []) for r, e in zip(responses, eos_end, strict=True)]
    p, r = max(map(len, prompts)), max(map(len, full))
    b = len(prompts)
    ids = torch.full((b, p + r), PAD)
    mask = torch.zeros((b, p + r), dtype=torch.long)
    logp = torch.zeros(b, r)
    for i, (q, a) in enumerate(zip(prompts, full, strict=True)):
        ids[i, p - len(q) : p + len(a)] = torch.tensor(q + a)
        mask[i, p - len(q) : p + len(a)] = 1
        logp[i, : len(a)] = -torch.arange(1, len(a) + 1, dtype=torch.float32) / 10
    return RolloutBatch(
        input_ids=ids,
        attention_mask=mask,
        prompt_length=p,
        response_mask=mask[:, p:].bool(),
        rollout_logprobs=logp,
        prompt_index=torch.arange(b) if prompt_index is None else torch.tensor(prompt_index),
        truncated=torch.tensor([not e for e in eos_end]),
        version=version,
        pad_token_id=PAD,
    )


def _rows(batch):
    """Per row: (prompt tokens, response tokens, response mask, logprobs) without padding."""
    out = []
    for i in range(batch.batch_size):
        m = batch.attention_mask[i].bool()
        p = batch.prompt_length
        out.append(
            (
                batch.input_ids[i, :p][m[:p]].tolist(),
                batch.input_ids[i, p:][m[p:]].tolist(),
                batch.response_mask[i][m[p:]].tolist(),
                batch.rollout_logprobs[i][m[p:]].tolist(),
            )
        )
    return out


def test_views_and_dtypes():
    b = _batch([[5, 6, 7], [8]], [[9, 10], [11, 12, 13, 14]], eos_end=[True, False])
    assert b.prompt_length == 3 and b.response_length == 4
    assert b.response_mask.dtype == torch.float32 and b.truncated.dtype == torch.bool
    assert b.response_lengths.tolist() == [3, 4]
    assert b.response_ids[0].tolist() == [9, 10, EOS, PAD]
    assert b.input_ids[1, :3].tolist() == [PAD, PAD, 8]  # prompts are left-padded


def test_decode_stops_at_eos():
    tok = build_char_tokenizer()
    ids = [tok.encode(s) for s in ("ab", "xyz")]
    b = _batch([tok.encode("Q:"), tok.encode("Q:")], ids, eos_end=[True, False])
    assert b.decode_responses(tok) == ["ab", "xyz"]


def test_validation_names_the_field():
    b = _batch([[5, 6], [8]], [[7], [9, 10]], eos_end=[True, True])
    kwargs = dict(
        input_ids=b.input_ids,
        attention_mask=b.attention_mask,
        prompt_length=b.prompt_length,
        response_mask=b.response_mask,
        rollout_logprobs=b.rollout_logprobs,
        prompt_index=b.prompt_index,
        truncated=b.truncated,
        version=0,
    )
    with pytest.raises(ValueError, match="rollout_logprobs has shape"):
        RolloutBatch(**{**kwargs, "rollout_logprobs": torch.zeros(1, 5)})
    with pytest.raises(ValueError, match="prompt_length"):
        RolloutBatch(**{**kwargs, "prompt_length": 0})
    with pytest.raises(ValueError, match="nonzero on padding"):
        RolloutBatch(**{**kwargs, "response_mask": torch.ones_like(b.response_mask)})
    with pytest.raises(TypeError, match=r"truncated must be a torch\.Tensor"):
        RolloutBatch(**{**kwargs, "truncated": [False]})


def test_select_keeps_rows():
    b = _batch([[5], [6, 7], [8]], [[9], [10, 11], []], eos_end=[True, False, True])
    rows = _rows(b)
    sub = b.select([2, 0])
    assert _rows(sub) == [rows[2], rows[0]]
    assert sub.prompt_index.tolist() == [2, 0] and sub.truncated.tolist() == [False, False]
    assert _rows(b.select(torch.tensor([False, True, False]))) == [rows[1]]
    assert _rows(b.select(slice(1, 3))) == rows[1:]


def test_concat_different_lengths():
    a = _batch([[5, 6, 7, 8], [9]], [[10], [11, 12]], eos_end=[True, True], prompt_index=[0, 0])
    c = _batch(
        [[13], [14, 15]],
        [[16, 17, 18, 19, 20], [21]],
        eos_end=[False, True],
        prompt_index=[0, 1],
    )
    cat = RolloutBatch.concat([a, c])
    assert cat.prompt_length == 4 and cat.response_length == 5
    assert _rows(cat) == _rows(a) + _rows(c)
    assert cat.input_ids[0].tolist() == [5, 6, 7, 8, 10, EOS, PAD, PAD, PAD]
    assert cat.truncated.tolist() == a.truncated.tolist() + c.truncated.tolist()
    assert cat.prompt_index.tolist() == [0, 0, 1, 2]  # groups of separate calls stay apart
    same_space = RolloutBatch.concat([a, c], offset_prompt_index=False)
    assert same_space.prompt_index.tolist() == [0, 0, 0, 1]
    # Padding stays padding: left of prompts, right of responses.
    assert cat.input_ids[2].tolist() == [PAD, PAD, PAD, 13, 16, 17, 18, 19, 20]
    assert cat.attention_mask[2].tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="different versions"):
        RolloutBatch.concat([a, _batch([[5]], [[6]], eos_end=[True], version=3)])
    with pytest.raises(ValueError, match="at least one"):
        RolloutBatch.concat([])
