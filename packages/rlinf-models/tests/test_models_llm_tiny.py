"""Tiny LM, character tokenizer and local loading."""

from __future__ import annotations

import pytest
import torch

from rlinf.models.llm import (
    TinyLMConfig,
    build_char_tokenizer,
    build_tiny_causal_lm,
    load_causal_lm,
)

TEXT = "Q: what is 12*(3+4)?\nA: 84 ~ `ok` {x|y} <tag> 'quote' \"dq\" \\ end  "


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny"))


def test_char_tokenizer_roundtrip_and_specials():
    tok = build_char_tokenizer()
    ids = tok.encode(TEXT)
    assert len(ids) == len(TEXT)  # one token per character, no BOS/EOS added
    assert tok.decode(ids) == TEXT
    printable = "".join(chr(c) for c in range(32, 127)) + "\n"
    assert tok.decode(tok.encode(printable)) == printable
    assert len(set(tok.encode(printable))) == len(printable)
    assert tok.pad_token == "<|pad|>" and tok.eos_token == "<|endoftext|>"
    assert tok.pad_token_id != tok.eos_token_id
    assert len(tok) == len(printable) + 3  # pad, eos, unk
    with_eos = tok.encode("ab<|endoftext|>")
    assert with_eos[-1] == tok.eos_token_id and len(with_eos) == 3
    assert tok.decode(with_eos, skip_special_tokens=True) == "ab"
    assert tok.encode("é") == [tok.unk_token_id]


def test_tiny_config_validation():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        TinyLMConfig(hidden_size=30, num_heads=4)
    with pytest.raises(ValueError, match="divisible by num_kv_heads"):
        TinyLMConfig(num_heads=4, num_kv_heads=3)
    with pytest.raises(ValueError, match="num_layers must be >= 1"):
        TinyLMConfig(num_layers=0)


def test_build_and_load(tiny_dir, tmp_path):
    model, tok = load_causal_lm(tiny_dir)
    assert not model.training
    assert tok.padding_side == "left"
    assert tok.decode(tok.encode(TEXT)) == TEXT  # the saved tokenizer is the same
    assert model.config.vocab_size == len(tok)
    assert model.config.eos_token_id == tok.eos_token_id
    assert model.generation_config.pad_token_id == tok.pad_token_id
    assert model.config.hidden_size == 64 and model.config.num_hidden_layers == 2
    x = torch.tensor([tok.encode("hello")])
    with torch.no_grad():
        ref = model(x).logits
        # Same seed -> identical weights; another seed -> different ones.
        same, _ = load_causal_lm(build_tiny_causal_lm(tmp_path / "same"))
        other, _ = load_causal_lm(build_tiny_causal_lm(tmp_path / "other", TinyLMConfig(seed=1)))
        assert torch.equal(same(x).logits, ref)
        assert not torch.allclose(other(x).logits, ref)
        # save_pretrained -> load_causal_lm round trip.
        model.save_pretrained(tmp_path / "resaved")
        tok.save_pretrained(tmp_path / "resaved")
        again, tok2 = load_causal_lm(tmp_path / "resaved", dtype=torch.float64)
        assert again.dtype == torch.float64
        assert torch.allclose(again(x).logits.float(), ref, atol=1e-5)
    assert tok2.decode(tok2.encode(TEXT)) == TEXT


def test_load_errors(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match="nope"):
        load_causal_lm(missing)
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"empty_dir.*config\.json"):
        load_causal_lm(empty)
    a_file = tmp_path / "weights.bin"
    a_file.write_bytes(b"")
    with pytest.raises(ValueError, match="not a directory"):
        load_causal_lm(a_file)
