"""Supervised warm-up on (prompt, answer) pairs: full fine-tuning or LoRA (merged on save).

The target of a row is its answer in the response format the checker reads, e.g.
``"\\boxed{7}"``, followed by EOS; the loss covers only those target tokens. Sequences are
right-padded, so positions start at 0 at the prompt's first token, as they do in
generation with left padding (where positions come from the attention mask).
"""

from __future__ import annotations

import math
import pathlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from rlinf.envs.math import MathRow
from rlinf.models.llm import load_causal_lm

__all__ = ["SFTConfig", "format_target", "run_sft"]


@dataclass(frozen=True)
class SFTConfig:
    """The supervised warm-up before RL.

    Attributes:
        steps: optimizer steps (0: no warm-up; RL starts from the model as it is).
        batch_size: rows per step, drawn with replacement from the train split.
        lr: AdamW learning rate after warm-up; decays by cosine to 10% at the last step.
        warmup_steps: linear learning-rate warm-up steps.
        weight_decay: AdamW weight decay.
        lora: train LoRA adapters instead of all weights; merged into the base weights on
            save, so the result is a plain HF directory.
        lora_rank: LoRA rank.
        lora_alpha: LoRA scaling numerator (scale = alpha / rank).
        lora_dropout: dropout on the LoRA input.
        lora_target_modules: module names that get adapters (Qwen2 attention + MLP).
        response_format: target text; ``{answer}`` is the ground truth (``str.format``
            syntax: literal braces doubled).
        seed: seed of row sampling and adapter initialization.
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
    response_format: str = "\\boxed{{{answer}}}"
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
        try:
            self.response_format.format(answer="1")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"response_format must use only {{answer}} (double other braces): {exc!r}"
            ) from None
        if "{answer}" not in self.response_format:
            raise ValueError("response_format must contain {answer}")


def format_target(row: MathRow, config: SFTConfig) -> str:
    """The response the warm-up teaches for ``row`` (without EOS)."""
    return config.response_format.format(answer=row.answer)


def _batch(
    tokenizer, rows: Sequence[MathRow], config: SFTConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids [B, L], attention_mask [B, L], labels [B, L])``, right-padded; labels
    are -100 except on the target tokens and EOS."""
    seqs, labels = [], []
    for row in rows:
        p = tokenizer(row.prompt, add_special_tokens=False)["input_ids"]
        t = tokenizer(format_target(row, config), add_special_tokens=False)["input_ids"]
        t = [*t, tokenizer.eos_token_id]
        seqs.append(p + t)
        labels.append([-100] * len(p) + t)
    width = max(map(len, seqs))
    pad = tokenizer.pad_token_id
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    lab = torch.tensor([lb + [-100] * (width - len(lb)) for lb in labels])
    return ids, mask, lab


def _lr(step: int, config: SFTConfig) -> float:
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def run_sft(
    rows: Sequence[MathRow],
    model_path: str | pathlib.Path,
    out_dir: str | pathlib.Path,
    config: SFTConfig,
    *,
    dtype: torch.dtype = torch.float32,
    log: Callable[[dict[str, float], int], None] | None = None,
) -> pathlib.Path:
    """Fine-tune ``model_path`` on ``rows`` for ``config.steps`` steps and save a plain HF
    directory (LoRA merged) to ``out_dir``; returns ``out_dir``.

    ``log(metrics, step)`` receives ``sft/loss``, ``sft/lr`` every ``log_every`` steps.
    """
    if not rows:
        raise ValueError("SFT needs at least one row")
    model, tokenizer = load_causal_lm(model_path, dtype=dtype)
    if config.lora:
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(config.seed)
        model = get_peft_model(
            model,
            LoraConfig(
                r=config.lora_rank,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=list(config.lora_target_modules),
                task_type="CAUSAL_LM",
            ),
        )
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    rng = random.Random(config.seed)
    running, seen = 0.0, 0
    for step in range(config.steps):
        picked = [rows[rng.randrange(len(rows))] for _ in range(config.batch_size)]
        ids, mask, labels = _batch(tokenizer, picked, config)
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
