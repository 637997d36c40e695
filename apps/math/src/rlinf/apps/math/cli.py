"""``rlinf-math``: ``train --config <preset|yaml> [key=value ...]``, ``train --resume <run
dir>``, ``eval --checkpoint <dir>``, ``sft --config <preset|yaml> --out <dir>``, ``plan
--config <preset|yaml> [--iterations N] [--profile-devices 1,2] [--out FILE]``.

Every command is one of the LLM apps' shared ones (``rlinf.models.llm.LLMApp``) on math
rows and the answer checker (``rlinf.apps.math._app``), loaded after Ray's environment is
set and run only once every input has been checked.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rlinf.core import app_main  # imports no Ray and no torch

__all__ = ["main"]

_HELPS = {
    "train": "SFT warm-up (if configured) then RL; or resume a run",
    "--config": "preset name (grpo, dapo, ppo, reinforce_pp) or YAML",
    "eval": "greedy held-out accuracy of a checkpoint",
    "sft": "supervised fine-tuning only (full or LoRA), HF dir out",
    "--out": "output model directory",
    "plan": "profile a few steps collocated and rank the placements",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    return app_main("rlinf.apps.math.cli", __doc__, _HELPS, "rlinf.apps.math._app:command", argv)


if __name__ == "__main__":
    sys.exit(main())
