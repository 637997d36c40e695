"""``rlinf-agentic``: ``train --config <preset|yaml> [key=value ...]``, ``train --resume
<run dir>``, ``eval --checkpoint <dir>``, ``sft --config <preset|yaml> --out <dir>``.

Ray is imported only inside the commands, after :func:`rlinf.core.run_cli` has set its
environment (see :func:`rlinf.core.ensure_ray_env`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

# rlinf.core is lazy: these import no Ray.
from rlinf.core import (
    ConfigError,
    add_checkpoint_eval_command,
    add_sft_command,
    add_train_command,
    run_cli,
    train_or_resume,
)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rlinf-agentic", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    add_train_command(
        sub,
        help="SFT warm-up on gold tool-use traces (if configured) then RL; or resume a run",
        config_help="preset name (search, coder) or YAML",
    )
    add_checkpoint_eval_command(sub, help="greedy held-out accuracy and tool calls of a checkpoint")
    add_sft_command(
        sub,
        help="SFT warm-up only, HF dir out, then a greedy evaluation",
        out_help="output directory",
    )
    return p


def _sft(config: str, out: str, overrides: Sequence[str]) -> dict[str, float | str]:
    import pathlib

    import torch

    from ._config import load_agentic_config
    from ._eval import greedy_eval
    from ._task import load_task
    from ._train import initial_model

    cfg = load_agentic_config(config, overrides)
    if not cfg.sft.steps:
        raise ConfigError("sft.steps is 0: nothing to train (set sft.steps=N)")
    out_dir = pathlib.Path(out)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"output directory {out_dir} is not empty")
    torch.set_num_threads(cfg.runner.torch_threads)
    task = load_task(cfg.task)
    model = initial_model(cfg, out_dir, task)
    rows = task.test[: cfg.runner.eval_prompts] if cfg.runner.eval_prompts else task.test
    dtype = getattr(torch, cfg.model.dtype)
    metrics = greedy_eval(model, rows, task, cfg.generation, cfg.multi_turn, dtype=dtype)
    return {**metrics, "model_dir": str(model)}


def _command(args: argparse.Namespace) -> None:
    if args.command == "train":
        from ._train import resume, train

        result = train_or_resume(args, train, resume)
        print(
            f"run {result.run_dir}: {result.steps} steps, held-out accuracy "
            f"{result.initial_accuracy:.3f} -> {result.final_accuracy:.3f}, tool calls per "
            f"trajectory {result.initial_tool_calls:.2f} -> {result.final_tool_calls:.2f}, "
            f"{result.wall_s:.1f}s ({result.placement_mode})"
        )
    elif args.command == "eval":
        from ._eval import evaluate

        print(json.dumps(evaluate(args.checkpoint, args.num_prompts), indent=1))
    else:
        print(json.dumps(_sft(args.config, args.out, args.overrides), indent=1))


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    errors = (ConfigError, FileNotFoundError, FileExistsError, ValueError)
    return run_cli("rlinf.apps.agentic.cli", _parser(), _command, argv, errors=errors)


if __name__ == "__main__":
    sys.exit(main())
