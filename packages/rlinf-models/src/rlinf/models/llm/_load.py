"""Load a Hugging Face causal LM and its tokenizer from a local directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = ["check_model_dir", "load_causal_lm", "load_tokenizer"]

# Generic fast-tokenizer classes: AutoTokenizer would replace them by the model type's own
# tokenizer class (e.g. Qwen2Tokenizer, with its own pre-tokenizer), so load them as saved.
_GENERIC_TOKENIZER_CLASSES = ("TokenizersBackend", "PreTrainedTokenizerFast")


def check_model_dir(path: str | Path) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path` after checking it is a local model
    directory: :class:`FileNotFoundError` if it does not exist, :class:`ValueError` if it
    is not a directory holding a ``config.json``. Both name the path.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"model path {str(p)!r} does not exist")
    if not p.is_dir():
        raise ValueError(f"model path {str(p)!r} is not a directory")
    if not (p / "config.json").is_file():
        raise ValueError(
            f"model path {str(p)!r} has no config.json: not a Hugging Face model directory"
        )
    return p


def load_tokenizer(path: str | Path) -> Any:
    """The tokenizer saved in ``path``, set up for batched generation: left padding, and
    the EOS token as padding when the tokenizer defines no pad token."""
    p = check_model_dir(path)
    tokenizer_config = p / "tokenizer_config.json"
    saved_class = None
    if tokenizer_config.is_file():
        saved_class = json.loads(tokenizer_config.read_text()).get("tokenizer_class")
    # Imported here: checking a model path must not cost the seconds transformers takes.
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if saved_class in _GENERIC_TOKENIZER_CLASSES:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(p, local_files_only=True)
    else:
        tokenizer = AutoTokenizer.from_pretrained(p, local_files_only=True)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"tokenizer in {str(p)!r} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(
    path: str | Path,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> tuple[PreTrainedModel, Any]:
    """Load ``(model, tokenizer)`` from a local Hugging Face directory (nothing is
    downloaded).

    The model is cast to ``dtype``, moved to ``device`` and put in eval mode (callers that
    train call ``model.train()``). The tokenizer pads on the left, with EOS as the pad token
    if it has none.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a directory with a ``config.json``.
    """
    from transformers import AutoModelForCausalLM

    p = check_model_dir(path)
    model = AutoModelForCausalLM.from_pretrained(p, dtype=dtype, local_files_only=True)
    model.to(device)
    model.eval()
    return model, load_tokenizer(p)
