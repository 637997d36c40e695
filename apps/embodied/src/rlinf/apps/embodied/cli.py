"""``rlinf-embodied``: ``train --config <preset|yaml> [key=value ...]``, ``train --resume
<run dir>``, ``eval --checkpoint <dir>``.

Why this module imports nothing heavy at the top: under ``uv run``, Ray's uv hook makes every
worker process rebuild the whole virtual environment in its runtime env (tens of seconds
per worker, and a network dependency), unless ``RAY_ENABLE_UV_RUN_RUNTIME_ENV=0`` is set
before Ray is imported. :func:`main` sets it first and only then imports the trainer (which
imports Ray). If something imported Ray earlier anyway, it re-executes the process with the
variable set, which is the only way to make Ray see it.
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
    # The CLI starts a private local cluster: token auth only adds a warning and a token
    # file there. A user who joins an authenticated cluster sets the variable themselves.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    missing = {k: v for k, v in _ENV.items() if os.environ.get(k) != v}
    if not missing:
        return
    if "ray" in sys.modules:
        # Ray read its settings at import: only a fresh process sees the variable.
        os.environ.update(missing)
        os.execv(sys.executable, [sys.executable, "-m", "rlinf.apps.embodied.cli", *argv])
    os.environ.update(missing)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rlinf-embodied", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a policy (or resume a run)")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="preset name (cartpole, hopper, ...) or YAML path")
    src.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    t.add_argument("--run-dir", help="run directory (default: <runs_root>/<timestamp>-<name>)")
    t.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    e = sub.add_parser("eval", help="evaluate a checkpoint")
    e.add_argument("--checkpoint", required=True, help="checkpoint directory or run directory")
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--num-envs", type=int, default=4)
    e.add_argument("--stochastic", action="store_true", help="sample instead of the mode")
    return p


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
                f"run {result.run_dir}: {result.env_steps} env steps, {result.updates} updates, "
                f"last return {result.last_return:.1f}, {result.wall_s:.1f}s "
                f"({result.placement_mode})"
            )
        else:
            from ._eval import evaluate

            metrics = evaluate(
                args.checkpoint, args.episodes, args.num_envs, deterministic=not args.stochastic
            )
            print(json.dumps(metrics, indent=1))
    except (ConfigError, FileNotFoundError, FileExistsError) as e:
        print(f"rlinf-embodied: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
