"""Supervised warm-up on (prompt, answer) rows: a thin adapter over ``rlinf.models.llm``.

The target of a row is its answer in the response format the checker reads, e.g.
``"\\boxed{7}"``, followed by EOS; the loss covers only those target tokens (see
:func:`rlinf.models.llm.run_sft`, which does the training, full or LoRA).
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from rlinf.envs.math import MathRow
from rlinf.models import llm

__all__ = ["SFTConfig", "format_target", "run_sft", "sft_examples"]


@dataclass(frozen=True)
class SFTConfig(llm.SFTConfig):
    """The supervised warm-up before RL: :class:`rlinf.models.llm.SFTConfig` (``steps=0``:
    no warm-up; RL starts from the model as it is) plus the target format.

    Attributes:
        response_format: target text; ``{answer}`` is the ground truth (``str.format``
            syntax: literal braces doubled).
    """

    response_format: str = "\\boxed{{{answer}}}"

    def __post_init__(self) -> None:
        super().__post_init__()
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


def sft_examples(rows: Sequence[MathRow], config: SFTConfig) -> list[llm.SFTExample]:
    """Each row as an example: its prompt, then its formatted answer (trained)."""
    return [llm.SFTExample(row.prompt, ((format_target(row, config), True),)) for row in rows]


def run_sft(
    rows: Sequence[MathRow],
    model_path: str | pathlib.Path,
    out_dir: str | pathlib.Path,
    config: SFTConfig,
    *,
    dtype: torch.dtype = torch.float32,
    log: Callable[[dict[str, float], int], None] | None = None,
) -> pathlib.Path:
    """Fine-tune ``model_path`` on ``rows`` and save a plain HF directory to ``out_dir``
    (see :func:`rlinf.models.llm.run_sft`); returns ``out_dir``."""
    if not rows:
        raise ValueError("SFT needs at least one row")
    return llm.run_sft(
        sft_examples(rows, config), model_path, out_dir, config, dtype=dtype, log=log
    )
