"""``rlinf-embodied``: ``train --config <preset|yaml> [key=value ...]``, ``train --resume
<run dir>``, ``eval --checkpoint <dir>``, ``collect --checkpoint <dir> --episodes N
[--out FILE]``, ``plan --config <preset|yaml> [--profile-devices 1,2] [--out FILE]``.

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
    c = p.get_default("sub").add_parser(
        "collect", help="record a trained policy's transitions to an offline file (npz)"
    )
    c.add_argument("--checkpoint", required=True, help="checkpoint directory or run directory")
    c.add_argument("--episodes", type=int, required=True, help="whole episodes to record")
    c.add_argument("--out", help="file to write (default <run dir>/offline/<ckpt>_<N>ep.npz)")
    c.add_argument("--num-envs", type=int, default=4)
    c.add_argument("--seed", type=int, default=2024, help="env seed of the recorded episodes")
    c.add_argument(
        "--deterministic", action="store_true", help="the policy's mode instead of samples"
    )
    c.add_argument("overrides", nargs="*", metavar="key=value", help="change the run's config")
    pl = p.get_default("sub").add_parser(
        "plan", help="profile a few iterations collocated and rank the placements"
    )
    pl.add_argument("--config", required=True, help="preset name or YAML path")
    pl.add_argument(
        "--iterations", type=int, default=4, help="reference iterations (first is warm-up)"
    )
    pl.add_argument(
        "--out", help="write the chosen block here as YAML (and <stem>.profile.json beside it)"
    )
    pl.add_argument("--top", type=int, default=10, help="rows of the ranked table")
    pl.add_argument(
        "--profile-devices",
        default="1",
        help="device counts to profile at, e.g. 1,2 (measured data-parallel scaling)",
    )
    pl.add_argument("--address", help="join this running Ray cluster (= cluster.address=...)")
    pl.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    return p


def _plan_command(args: argparse.Namespace) -> None:
    import pathlib

    from rlinf.core import ConfigError

    from ._config import load_embodied_config
    from ._plan import describe, plan, reference_iterations

    if args.top < 1:
        raise ConfigError(f"--top must be >= 1, got {args.top}")
    reference_iterations(args.iterations)
    overrides = list(args.overrides)
    if args.address is not None:
        overrides.append(f"cluster.address={json.dumps(args.address)}")
    cfg = load_embodied_config(args.config, overrides)
    from rlinf.models.planning import parse_profile_devices

    counts = parse_profile_devices(args.profile_devices, cfg.cluster.topology().num_devices)
    result = plan(cfg, args.iterations, counts)
    print("\n".join(describe(result, args.top)))
    if args.out is None:
        print(result.block_yaml(), end="")
        return
    from ._plan import write_plan_files

    out, prof = write_plan_files(result, pathlib.Path(args.out))
    print(f"wrote {out} (chosen block) and {prof} (profile)")


def _command(args: argparse.Namespace) -> None:
    if args.command == "train":
        from ._train import resume, train

        result = train_or_resume(args, train, resume)
        print(
            f"run {result.run_dir}: {result.env_steps} env steps, {result.updates} updates, "
            f"last return {result.last_return:.1f}, {result.wall_s:.1f}s "
            f"({result.placement_mode}, {result.backend})"
        )
    elif args.command == "plan":
        _plan_command(args)
    elif args.command == "collect":
        from ._collect import collect

        path, meta = collect(
            args.checkpoint,
            args.episodes,
            args.out,
            args.num_envs,
            deterministic=args.deterministic,
            seed=args.seed,
            overrides=args.overrides,
        )
        print(
            f"wrote {path}: {meta['num_transitions']} transitions of {meta['episodes']} "
            f"episodes on {meta['env_id']}, return mean {meta['return_mean']:.1f}"
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
