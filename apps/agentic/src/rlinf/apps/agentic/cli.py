"""``rlinf-agentic``: ``train --config <preset|yaml> [key=value ...]``, ``train --resume
<run dir>``, ``eval --checkpoint <dir>``, ``sft --config <preset|yaml> --out <dir>``.

An agent's multi-turn tool use trained by the LLM apps' shared commands
(``rlinf.models.llm.LLMApp``); this app brings the task, the tools and the scorer
(``rlinf.apps.agentic._app``). Nothing heavy is imported before the arguments are parsed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rlinf.core import app_main  # imports no Ray and no torch

__all__ = ["main"]

_COMMAND = "rlinf.apps.agentic._app:command"
_HELPS = {
    "train": "SFT warm-up on gold tool-use traces (if configured) then RL; or resume a run",
    "--config": "preset name (search, coder) or YAML",
    "eval": "greedy held-out accuracy and tool calls of a checkpoint",
    "sft": "SFT warm-up only, HF dir out, then a greedy evaluation",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    return app_main("rlinf.apps.agentic.cli", __doc__, _HELPS, _COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
