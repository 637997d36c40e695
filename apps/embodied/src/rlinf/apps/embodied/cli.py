"""``rlinf-embodied``: ``train --config <preset|yaml> [key=value ...]``, ``train --resume
<run dir>``, ``eval --checkpoint <dir>``.

Ray is imported only inside the commands, after :func:`rlinf.core.run_cli` has set its
environment (see :func:`rlinf.core.ensure_ray_env`), and only once the config (the env id
included) has been checked.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

# rlinf.core is lazy: these import no Ray.
from rlinf.core import app_parser, run_cli, train_or_resume

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    helps = {
        "train": "train a policy (or resume a run)",
        "--config": "preset name (cartpole, hopper, ...) or YAML path",
    }
    p = app_parser("rlinf-embodied", __doc__, helps)
    e = p.get_default("sub").add_parser("eval", help="evaluate a checkpoint")
    e.add_argument("--checkpoint", required=True, help="checkpoint directory or run directory")
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--num-envs", type=int, default=4)
    e.add_argument("--stochastic", action="store_true", help="sample instead of the mode")
    e.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="change the run's config for this evaluation (e.g. env.env_kwargs.x=y)",
    )
    return p


def _command(args: argparse.Namespace) -> None:
    if args.command == "train":
        from ._train import resume, train

        result = train_or_resume(args, train, resume)
        print(
            f"run {result.run_dir}: {result.env_steps} env steps, {result.updates} updates, "
            f"last return {result.last_return:.1f}, {result.wall_s:.1f}s "
            f"({result.placement_mode})"
        )
    else:
        from ._eval import evaluate

        metrics = evaluate(
            args.checkpoint,
            args.episodes,
            args.num_envs,
            deterministic=not args.stochastic,
            overrides=args.overrides,
        )
        print(json.dumps(metrics, indent=1))


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    return run_cli("rlinf.apps.embodied.cli", _parser(), _command, argv)


if __name__ == "__main__":
    sys.exit(main())
