"""The command line every app builds the same way: its parser, the errors a user can fix,
and a probe that runs a CLI in a fresh interpreter to check what it started.

Imports no Ray and no torch (an app's ``cli`` module imports this before setting Ray's
environment; see :mod:`rlinf.core._cli`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._cli import add_checkpoint_eval_command, add_sft_command, add_train_command, run_cli
from ._config import ConfigError

__all__ = [
    "USER_ERRORS",
    "CliProbe",
    "add_plan_command",
    "app_main",
    "app_parser",
    "lazy_command",
    "probe_cli",
]

USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    FileNotFoundError,
    FileExistsError,
    ValueError,
)
"""Exceptions an app's CLI reports as one ``<prog>: error: <message>`` line with exit code 2:
bad config values and files, missing or occupied paths, malformed data (``ValueError``
subclasses such as ``rlinf.envs.math.MathDataError`` name the file and line)."""


def app_parser(prog: str, description: str, helps: Mapping[str, str]) -> argparse.ArgumentParser:
    """An app's parser: ``train`` (:func:`~rlinf.core.add_train_command`), and when
    ``helps`` names them, ``eval --checkpoint`` (:func:`~rlinf.core.add_checkpoint_eval_command`)
    and ``sft --config --out`` (:func:`~rlinf.core.add_sft_command`).

    ``helps`` maps ``"train"``, ``"--config"`` (both required), ``"eval"``, ``"sft"``,
    ``"--out"`` (of ``sft``; default ``"output directory"``) and ``"plan"``
    (:func:`add_plan_command`) to their help texts. An app
    with another ``eval`` leaves it out and adds its own to ``parser.sub`` (the subparsers).
    """
    unknown = set(helps) - {"train", "--config", "eval", "sft", "--out", "plan"}
    if unknown:
        raise ValueError(f"app_parser: unknown help keys {sorted(unknown)}")
    p = argparse.ArgumentParser(prog=prog, description=description.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    add_train_command(sub, help=helps["train"], config_help=helps["--config"])
    if "eval" in helps:
        add_checkpoint_eval_command(sub, help=helps["eval"])
    if "sft" in helps:
        add_sft_command(sub, help=helps["sft"], out_help=helps.get("--out", "output directory"))
    if "plan" in helps:
        add_plan_command(sub, help=helps["plan"])
    p.set_defaults(sub=sub)  # read back by apps that add commands of their own
    return p


def add_plan_command(sub: Any, help: str) -> argparse.ArgumentParser:
    """``plan --config X [--iterations N] [--profile-devices 1,2] [--out FILE] [--top K]
    [key=value ...]``: profile reference runs, print the ranked placements, write the
    chosen block."""
    pl = sub.add_parser("plan", help=help)
    pl.add_argument("--config", required=True, help="preset name or YAML path")
    pl.add_argument(
        "--iterations", type=int, default=4, help="reference iterations (first is warm-up)"
    )
    pl.add_argument(
        "--profile-devices",
        default="1",
        help="device counts to profile at, e.g. 1,2 (measured data-parallel scaling)",
    )
    pl.add_argument(
        "--out", help="write the chosen block here as YAML (and <stem>.profile.json beside it)"
    )
    pl.add_argument("--top", type=int, default=10, help="rows of the ranked table")
    pl.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    return pl


def app_main(
    module: str,
    description: str,
    helps: Mapping[str, str],
    command: str,
    argv: Sequence[str] | None = None,
) -> int:
    """An app's console-script ``main``: :func:`app_parser` (``prog`` is the app's
    ``rlinf-<name>`` from ``module`` ``rlinf.apps.<name>.cli``), then
    :func:`~rlinf.core.run_cli` with :func:`lazy_command` of ``command`` and
    :data:`USER_ERRORS`. Returns the exit code."""
    prog = "rlinf-" + module.split(".")[-2]
    parser = app_parser(prog, description, helps)
    return run_cli(module, parser, lazy_command(command), argv, errors=USER_ERRORS)


def lazy_command(target: str) -> Callable[[argparse.Namespace], None]:
    """The command ``"package.module:attr"``, imported only when it runs: an app's heavy
    modules (torch, Ray) load after :func:`~rlinf.core.run_cli` has set Ray's environment
    and parsed the arguments. ``attr`` is called with the parsed arguments."""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"command target must look like 'package.module:attr', got {target!r}")

    def command(args: argparse.Namespace) -> None:
        getattr(importlib.import_module(module), attr)(args)

    return command


@dataclass(frozen=True)
class CliProbe:
    """What :func:`probe_cli` saw.

    Attributes:
        code: the exit code ``main`` returned.
        stdout: what the CLI printed.
        stderr: what the CLI printed to stderr (its error line).
        started_ray: whether anything called ``ray.init`` (Cluster does, before any worker
            starts) while ``main`` ran.
    """

    code: int
    stdout: str
    stderr: str
    started_ray: bool


# Ray is imported up front (with the variables the CLI would set, so it does not re-exec)
# only to record every ray.init call; rlinf imports Ray anyway (rlinf.sched does).
_PROBE = """
import contextlib, io, json, os, sys
os.environ.update(RAY_ENABLE_UV_RUN_RUNTIME_ENV="0", RAY_AUTH_MODE="disabled")
import ray, ray._private.worker as rw
calls = []
def recording(real):
    def init(*a, **k):
        calls.append(1)
        return real(*a, **k)
    return init
ray.init = recording(ray.init)
rw.init = recording(rw.init)
import {module} as cli
for argv in {argvs!r}:
    calls.clear()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    print(json.dumps([code, out.getvalue(), err.getvalue(), bool(calls)]))
"""


def probe_cli(
    module: str, argvs: Sequence[Sequence[str]], *, timeout_s: float = 600.0
) -> list[CliProbe]:
    """Run ``<module>.main(argv)`` for each of ``argvs`` in one fresh Python process (one
    after the other: the imports are paid once) and report each exit code, output, and
    whether that call started Ray: shows that input errors fail before Ray or any worker
    starts.

    Raises:
        RuntimeError: the process failed outside ``main`` (e.g. a traceback); the message
            holds its stderr.
    """
    code = _PROBE.format(module=module, argvs=[list(a) for a in argvs])
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout_s
    )
    lines = proc.stdout.strip().splitlines()[-len(argvs) :] if argvs else []
    if proc.returncode != 0 or len(lines) != len(argvs):
        raise RuntimeError(f"{module} {argvs} failed (exit {proc.returncode}):\n{proc.stderr}")
    probes = []
    for line in lines:
        rc, out, err, started = json.loads(line)
        probes.append(CliProbe(int(rc), out, err, bool(started)))
    return probes
