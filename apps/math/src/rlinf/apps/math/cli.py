"""``rlinf-math``: ``train --config <preset|yaml> [key=value ...]``, ``train --resume <run
dir>``, ``eval --checkpoint <dir>``, ``sft --config <preset|yaml> --out <dir>``.

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
    p = argparse.ArgumentParser(prog="rlinf-math", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    add_train_command(
        sub,
        help="SFT warm-up (if configured) then RL; or resume a run",
        config_help="preset name (grpo, dapo, ppo, reinforce_pp) or YAML",
    )
    add_checkpoint_eval_command(sub, help="greedy held-out accuracy of a checkpoint")
    add_sft_command(
        sub,
        help="supervised fine-tuning only (full or LoRA), HF dir out",
        out_help="output model directory",
    )
    return p


def _sft(config: str, out: str, overrides: Sequence[str]) -> dict[str, float]:
    import pathlib

    import torch

    from rlinf.models.llm import build_tiny_causal_lm

    from ._config import load_math_config
    from ._data import load_splits
    from ._eval import greedy_accuracy
    from ._sft import run_sft

    cfg = load_math_config(config, overrides)
    if not cfg.sft.steps:
        raise ValueError("sft.steps is 0: nothing to train (set sft.steps=N)")
    out_dir = pathlib.Path(out)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"output directory {out_dir} is not empty")
    torch.set_num_threads(cfg.runner.torch_threads)
    train, test = load_splits(cfg.data)
    base = cfg.model.path or str(build_tiny_causal_lm(out_dir / "base_model", cfg.model.tiny))
    dtype = getattr(torch, cfg.model.dtype)
    model = run_sft(train, base, out_dir / "model", cfg.sft, dtype=dtype)
    rows = test[: cfg.runner.eval_prompts] if cfg.runner.eval_prompts else test
    metrics = greedy_accuracy(model, rows, cfg.generation, cfg.checker, dtype=dtype)
    return {**metrics, "model_dir": str(model)}


def _command(args: argparse.Namespace) -> None:
    if args.command == "train":
        from ._train import resume, train

        result = train_or_resume(args, train, resume)
        print(
            f"run {result.run_dir}: {result.steps} steps, held-out accuracy "
            f"{result.initial_accuracy:.3f} -> {result.final_accuracy:.3f}, "
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
    return run_cli("rlinf.apps.math.cli", _parser(), _command, argv, errors=errors)


if __name__ == "__main__":
    sys.exit(main())
