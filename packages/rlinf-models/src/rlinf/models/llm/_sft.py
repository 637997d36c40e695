"""Supervised fine-tuning of a causal LM on (prompt, segments) examples: full or LoRA.

Each example is a prompt followed by text segments, each marked trained or not, then EOS
(trained). The loss covers only the trained segments' tokens and EOS: an agent trace can
teach the model's own turns while tool observations in between only serve as context.
Every text is tokenized on its own and the token lists are concatenated, so segment
boundaries are exact. Sequences are right-padded, so positions start at 0 at the prompt's
first token, as they do in generation with left padding (positions from the attention mask).
"""

from __future__ import annotations

import math
import pathlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ._load import load_causal_lm

__all__ = ["IGNORE_INDEX", "SFTConfig", "SFTExample", "run_sft", "sft_batch"]

IGNORE_INDEX = -100  # label of positions outside the loss (Hugging Face's convention)


@dataclass(frozen=True)
class SFTExample:
    """One supervised sequence.

    Attributes:
        prompt: the context the model is given (never trained).
        segments: ``(text, trained)`` pairs appended after the prompt in order; the loss
            covers the tokens of trained segments and the EOS appended after the last.
    """

    prompt: str
    segments: tuple[tuple[str, bool], ...]

    def __post_init__(self) -> None:
        segments = tuple((str(text), bool(trained)) for text, trained in self.segments)
        object.__setattr__(self, "segments", segments)


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning.

    Attributes:
        steps: optimizer steps (0: no fine-tuning).
        batch_size: examples per step, drawn with replacement.
        lr: AdamW learning rate after warm-up; decays by cosine to 10% at the last step.
        warmup_steps: linear learning-rate warm-up steps.
        weight_decay: AdamW weight decay.
        lora: train LoRA adapters instead of all weights (needs ``peft``); merged into the
            base weights on save, so the result is a plain HF directory.
        lora_rank: LoRA rank.
        lora_alpha: LoRA scaling numerator (scale = alpha / rank).
        lora_dropout: dropout on the LoRA input.
        lora_target_modules: module names that get adapters (Qwen2 attention + MLP).
        seed: seed of example sampling and adapter initialization.
        log_every: log the loss every this many steps.
    """

    steps: int = 0
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 20
    weight_decay: float = 0.0
    lora: bool = False
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_target_modules: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )
    seed: int = 0
    log_every: int = 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "lora_target_modules", tuple(self.lora_target_modules))
        for name in ("steps", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("batch_size", "lora_rank", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")


def sft_batch(
    tokenizer, examples: Sequence[SFTExample]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids [B, L], attention_mask [B, L], labels [B, L])``, right-padded.

    ``labels`` equal ``input_ids`` on trained segments and EOS, :data:`IGNORE_INDEX`
    elsewhere (prompt, untrained segments, padding).
    """
    if tokenizer.eos_token_id is None or tokenizer.pad_token_id is None:
        raise ValueError("SFT needs a tokenizer with an EOS and a pad token")
    seqs, labels = [], []
    for ex in examples:
        ids = tokenizer(ex.prompt, add_special_tokens=False)["input_ids"]
        lab = [IGNORE_INDEX] * len(ids)
        for text, trained in ex.segments:
            seg = tokenizer(text, add_special_tokens=False)["input_ids"]
            ids += seg
            lab += seg if trained else [IGNORE_INDEX] * len(seg)
        seqs.append([*ids, tokenizer.eos_token_id])
        labels.append([*lab, tokenizer.eos_token_id])
    width = max(map(len, seqs))
    pad = tokenizer.pad_token_id
    ids_t = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    lab_t = torch.tensor([lb + [IGNORE_INDEX] * (width - len(lb)) for lb in labels])
    return ids_t, mask, lab_t


def _lr(step: int, config: SFTConfig) -> float:
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _with_lora(model, config: SFTConfig):
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:
        raise ImportError("SFT with lora=True needs peft: pip install 'rlinf-models[lora]'") from e
    torch.manual_seed(config.seed)
    return get_peft_model(
        model,
        LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.lora_target_modules),
            task_type="CAUSAL_LM",
        ),
    )


def run_sft(
    examples: Sequence[SFTExample],
    model_path: str | pathlib.Path,
    out_dir: str | pathlib.Path,
    config: SFTConfig,
    *,
    dtype: torch.dtype = torch.float32,
    log: Callable[[dict[str, float], int], None] | None = None,
) -> pathlib.Path:
    """Fine-tune ``model_path`` on ``examples`` for ``config.steps`` steps and save a plain
    HF directory (LoRA merged) with its tokenizer to ``out_dir``; returns ``out_dir``.

    ``log(metrics, step)`` receives ``sft/loss`` (mean since the last log) and ``sft/lr``
    every ``log_every`` steps and at the last step.
    """
    if not examples:
        raise ValueError("SFT needs at least one example")
    if not any(trained for ex in examples for _, trained in ex.segments):
        # EOS alone would be the only target: almost surely a data-preparation bug.
        raise ValueError("no example has a trained segment")
    model, tokenizer = load_causal_lm(model_path, dtype=dtype)
    if config.lora:
        model = _with_lora(model, config)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    rng = random.Random(config.seed)
    running, seen = 0.0, 0
    for step in range(config.steps):
        picked = [examples[rng.randrange(len(examples))] for _ in range(config.batch_size)]
        ids, mask, labels = sft_batch(tokenizer, picked)
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, config)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        running, seen = running + float(loss.detach()), seen + 1
        if log is not None and ((step + 1) % config.log_every == 0 or step + 1 == config.steps):
            log({"sft/loss": running / seen, "sft/lr": _lr(step, config)}, step + 1)
            running, seen = 0.0, 0
    if config.lora:
        model = model.merge_and_unload()
    model.eval()
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
