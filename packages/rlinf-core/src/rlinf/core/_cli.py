"""What every app's command line shares: Ray's environment, the ``train`` command, errors.

Under ``uv run``, Ray's uv hook makes every worker process rebuild the whole virtual
environment in its runtime env (tens of seconds per worker, and a network dependency)
unless ``RAY_ENABLE_UV_RUN_RUNTIME_ENV=0`` is set before Ray is imported. Ray reads it only
at import, so a process that imported Ray already must start again to see it. This module
imports no Ray, so that a CLI can import it first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._cause import clear_failures, report_failure
from ._config import ConfigError
from ._signals import InterruptGuard

__all__ = [
    "add_checkpoint_eval_command",
    "add_sft_command",
    "add_train_command",
    "ensure_ray_env",
    "run_cli",
    "train_or_resume",
]

_ENV = {"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}


def ensure_ray_env(module: str, argv: Sequence[str]) -> None:
    """Set Ray's variables for a CLI run, before anything imports Ray.

    ``RAY_AUTH_MODE`` defaults to ``disabled``: the CLI starts a private local cluster,
    where token auth only adds a warning and a token file (a user who joins an
    authenticated cluster sets the variable themselves). If Ray is already imported and a
    variable is missing, the process re-executes itself as ``python -m <module> *argv``.
    """
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    missing = {k: v for k, v in _ENV.items() if os.environ.get(k) != v}
    if not missing:
        return
    os.environ.update(missing)
    if "ray" in sys.modules:
        os.execv(sys.executable, [sys.executable, "-m", module, *argv])


def add_train_command(subparsers: Any, *, help: str, config_help: str) -> argparse.ArgumentParser:
    """Add ``train (--config C | --resume RUN_DIR) [--run-dir D] [--address A] [key=value ...]``.

    ``--address`` joins a running Ray cluster instead of starting one: the same as the
    override ``cluster.address=A`` (see :func:`train_or_resume`).

    ``subparsers`` is what ``ArgumentParser.add_subparsers`` returned; the new subparser is
    returned so that an app can add options of its own.
    """
    t = subparsers.add_parser("train", help=help)
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help=config_help)
    src.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    t.add_argument("--run-dir", help="run directory (default: <runs_root>/<timestamp>-<name>)")
    t.add_argument(
        "--address",
        help="join this running Ray cluster ('auto' or the head's host:port) instead of "
        "starting one; the placement may then span its nodes (= cluster.address=...)",
    )
    t.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    return t


def add_checkpoint_eval_command(subparsers: Any, *, help: str) -> argparse.ArgumentParser:
    """Add ``eval --checkpoint DIR [--num-prompts N]`` (a run, checkpoint or model
    directory; the first N held-out rows, 0: all); returns the new subparser."""
    e = subparsers.add_parser("eval", help=help)
    e.add_argument("--checkpoint", required=True, help="run, checkpoint or model directory")
    e.add_argument("--num-prompts", type=int, default=0, help="first N held-out rows (0: all)")
    return e


def add_sft_command(subparsers: Any, *, help: str, out_help: str) -> argparse.ArgumentParser:
    """Add ``sft --config C --out DIR [key=value ...]``; returns the new subparser."""
    s = subparsers.add_parser("sft", help=help)
    s.add_argument("--config", required=True, help="preset name or YAML (its sft section)")
    s.add_argument("--out", required=True, help=out_help)
    s.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    return s


def train_or_resume(
    args: argparse.Namespace,
    train: Callable[[str, Sequence[str], str | None], Any],
    resume: Callable[[str, Sequence[str]], Any],
) -> Any:
    """Run the ``train`` command parsed by :func:`add_train_command`; returns the result
    of ``train(config, overrides, run_dir)`` or ``resume(run_dir, overrides)``.

    ``--address A`` comes last among the overrides as ``cluster.address=A``, so it wins
    over an override of the same key and over the address a resumed run was started with.
    """
    overrides = list(args.overrides)
    if args.address is not None:
        # Quoted: YAML would read some host:port strings as numbers (base-60 integers).
        overrides.append(f"cluster.address={json.dumps(args.address)}")
    if args.resume:
        if args.run_dir:
            raise ConfigError("--run-dir cannot be combined with --resume")
        return resume(args.resume, overrides)
    return train(args.config, overrides, args.run_dir)


def run_cli(
    module: str,
    parser: argparse.ArgumentParser,
    command: Callable[[argparse.Namespace], None],
    argv: Sequence[str] | None = None,
    *,
    errors: tuple[type[BaseException], ...] = (ConfigError, FileNotFoundError, FileExistsError),
) -> int:
    """An app's ``main``: Ray's environment (:func:`ensure_ray_env` with ``module``), then
    ``command(parser.parse_args(argv))`` under an :class:`~rlinf.core._signals.InterruptGuard`.

    Returns the exit code:

    - 0;
    - 2 after printing ``<prog>: error: <message>`` for the ``errors`` a user can fix (bad
      config, missing or occupied paths);
    - 130 (SIGINT) or 143 (SIGTERM) after a signal stopped the run: the first one
      unwinds it (so every ``finally`` shuts its part down), later ones cannot cut that
      short; the last line says so;
    - 1 for any other error: its traceback, then ``<prog>: error: <root cause>`` as the
      last line, naming the first death (``WorkerDied``, ``ChannelDied``) in the chain or
      among the failures seen rather than a follow-up error (see
      :func:`rlinf.core._cause.root_cause`).
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    ensure_ray_env(module, args_list)
    args = parser.parse_args(args_list)
    clear_failures()
    with InterruptGuard(parser.prog) as guard:
        try:
            command(args)
        except errors as e:
            print(f"{parser.prog}: error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return guard.report()
        except Exception as e:
            return report_failure(parser.prog, e)
    return 0
