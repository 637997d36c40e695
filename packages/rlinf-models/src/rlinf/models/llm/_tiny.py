"""A tiny, seeded Qwen2 causal LM and a character-level tokenizer, built offline.

Tests and CPU examples need a real Hugging Face model directory without downloading one:
:func:`build_tiny_causal_lm` writes one (config, weights, generation config, tokenizer) that
:func:`~rlinf.models.llm.load_causal_lm` loads exactly as it loads a real checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = [
    "EOS_TOKEN",
    "PAD_TOKEN",
    "UNK_TOKEN",
    "TinyLMConfig",
    "build_char_tokenizer",
    "build_tiny_causal_lm",
]

PAD_TOKEN = "<|pad|>"
EOS_TOKEN = "<|endoftext|>"
UNK_TOKEN = "<|unk|>"
# Printable ASCII (space .. tilde) plus newline: one token each.
_CHARS = [chr(c) for c in range(32, 127)] + ["\n"]


@dataclass(frozen=True)
class TinyLMConfig:
    """Size of the tiny Qwen2 model.

    Attributes:
        hidden_size: model width; a multiple of ``num_heads``.
        num_layers: decoder layers.
        num_heads: query attention heads.
        num_kv_heads: key/value heads (grouped-query attention); divides ``num_heads``.
        intermediate_size: MLP width.
        max_position_embeddings: longest sequence (prompt + response) the model supports.
        tie_word_embeddings: share the input embedding with the output projection.
        seed: seed of the random initialization (the same seed gives the same weights).
    """

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 256
    max_position_embeddings: int = 512
    tie_word_embeddings: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (
            "hidden_size",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "intermediate_size",
            "max_position_embeddings",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"TinyLMConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"TinyLMConfig.hidden_size ({self.hidden_size}) must be divisible by "
                f"num_heads ({self.num_heads})"
            )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"TinyLMConfig.num_heads ({self.num_heads}) must be divisible by "
                f"num_kv_heads ({self.num_kv_heads})"
            )
        if (self.hidden_size // self.num_heads) % 2:
            # Rotary embeddings rotate pairs of dimensions.
            raise ValueError(
                f"TinyLMConfig head size hidden_size / num_heads = "
                f"{self.hidden_size // self.num_heads} must be even (rotary embeddings)"
            )


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level fast tokenizer: each printable ASCII character and ``"\\n"`` is one
    token; ``<|pad|>`` (id 0, padding), ``<|endoftext|>`` (id 1, end of sequence) and
    ``<|unk|>`` (id 2, any other character) are special.

    ``decode(encode(s)) == s`` for text made of those characters (no spaces are inserted,
    no clean-up is applied). Built with the ``tokenizers`` library, nothing is downloaded.
    """
    # tokenizers / transformers are imported by the builders only: TinyLMConfig is part of
    # app configs, which load without them.
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([PAD_TOKEN, EOS_TOKEN, UNK_TOKEN, *_CHARS])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    # Split every character (newline included: "." would skip it) into its own word.
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    # Fuse joins the decoded characters with nothing in between.
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        clean_up_tokenization_spaces=False,
        model_max_length=1 << 30,
    )


def build_tiny_causal_lm(out_dir: str | Path, config: TinyLMConfig = TinyLMConfig()) -> Path:
    """Write a randomly initialized Qwen2 causal LM and :func:`build_char_tokenizer` to
    ``out_dir`` (created if needed) with ``save_pretrained``; return the directory.

    The vocabulary is the tokenizer's; ``eos_token_id`` / ``pad_token_id`` are set in the
    model config and its generation config. Initialization is seeded by ``config.seed``
    without touching the global torch RNG.
    """
    from transformers import GenerationConfig as HFGenerationConfig
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_char_tokenizer()
    hf_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=config.tie_word_embeddings,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = Qwen2ForCausalLM(hf_config)
    model.generation_config = HFGenerationConfig(
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
