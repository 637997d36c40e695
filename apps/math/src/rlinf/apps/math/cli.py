"""``rlinf-math``: ``train --config <preset|yaml> [key=value ...]``, ``train --resume <run
dir>``, ``eval --checkpoint <dir>``, ``sft --config <preset|yaml> --out <dir>``.

Why this module imports nothing heavy at the top: under ``uv run``, Ray's uv hook makes every
worker process rebuild the whole virtual environment in its runtime env unless
``RAY_ENABLE_UV_RUN_RUNTIME_ENV=0`` is set before Ray is imported. :func:`main` sets it first
and only then imports the trainer (which imports Ray). If something imported Ray earlier
anyway, it re-executes the process with the variable set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]

_ENV = {"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}


def _ensure_ray_env(argv: Sequence[str]) -> None:
    # A private local cluster: token auth only adds a warning and a token file. A user who
    # joins an authenticated cluster sets the variable themselves.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    missing = {k: v for k, v in _ENV.items() if os.environ.get(k) != v}
    if not missing:
        return
    if "ray" in sys.modules:
        # Ray read its settings at import: only a fresh process sees the variable.
        os.environ.update(missing)
        os.execv(sys.executable, [sys.executable, "-m", "rlinf.apps.math.cli", *argv])
    os.environ.update(missing)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rlinf-math", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="SFT warm-up (if configured) then RL; or resume a run")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="preset name (grpo, dapo, ppo, reinforce_pp) or YAML")
    src.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    t.add_argument("--run-dir", help="run directory (default: <runs_root>/<timestamp>-<name>)")
    t.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    e = sub.add_parser("eval", help="greedy held-out accuracy of a checkpoint")
    e.add_argument("--checkpoint", required=True, help="run, checkpoint or model directory")
    e.add_argument("--num-prompts", type=int, default=0, help="first N held-out rows (0: all)")
    s = sub.add_parser("sft", help="supervised fine-tuning only (full or LoRA), HF dir out")
    s.add_argument("--config", required=True, help="preset name or YAML (its sft section)")
    s.add_argument("--out", required=True, help="output model directory")
    s.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    _ensure_ray_env(args_list)
    args = _parser().parse_args(args_list)
    from rlinf.core import ConfigError

    try:
        if args.command == "train":
            from ._train import resume, train

            if args.resume:
                if args.run_dir:
                    raise ConfigError("--run-dir cannot be combined with --resume")
                result = resume(args.resume, args.overrides)
            else:
                result = train(args.config, args.overrides, args.run_dir)
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
    except (ConfigError, FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"rlinf-math: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
