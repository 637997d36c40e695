"""Run directories: resolved config, checkpoints with a ``latest`` pointer, driver RNG, metrics.

Layout shared by every app::

    <run_dir>/config.yaml                  resolved config (every default filled in)
    <run_dir>/metrics.jsonl                one row per logged step (MetricLogger "jsonl")
    <run_dir>/checkpoints/<tag>/state.pt   counters, worker states, driver RNG
    <run_dir>/checkpoints/<tag>/model/     HF model directory (apps that save one)
    <run_dir>/checkpoints/latest           the newest checkpoint's tag
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import pathlib
import random
import shutil
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
import yaml

from ._config import config_to_dict

__all__ = [
    "CONFIG_FILE",
    "METRICS_FILE",
    "MODEL_DIR",
    "check_run_dir_free",
    "find_run_dir",
    "latest_checkpoint",
    "load_checkpoint",
    "new_run_dir",
    "read_metrics",
    "restore_driver_rng",
    "resume_run",
    "run_model_dir",
    "save_checkpoint",
    "start_run",
    "truncate_metrics",
    "write_config",
]

CONFIG_FILE = "config.yaml"
MODEL_DIR = "model"
METRICS_FILE = "metrics.jsonl"
_STATE_FILE = "state.pt"
_LATEST = "latest"
_METRICS_STEP = "metrics_step"

C = TypeVar("C")
D = TypeVar("D")


def new_run_dir(
    runs_root: str | pathlib.Path, name: str, run_dir: str | pathlib.Path | None = None
) -> pathlib.Path:
    """``run_dir`` if given, else a new ``<runs_root>/<UTC timestamp>-<name>``; created empty.

    Without ``run_dir``, the name is claimed with an atomic ``mkdir`` (no check-then-create):
    a run started in the same second as another gets ``<timestamp>-<name>-2`` (``-3``, ...)
    instead of failing.

    Raises:
        FileExistsError: ``run_dir`` exists and is not empty.
    """
    if run_dir is not None:
        path = pathlib.Path(run_dir)
        check_run_dir_free(path)
        path.mkdir(parents=True, exist_ok=True)
        check_run_dir_free(path)  # another process may have filled it in between
        return path
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    root = pathlib.Path(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        path = root / (f"{stamp}-{name}" if n == 1 else f"{stamp}-{name}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")  # itertools.count never ends


def check_run_dir_free(run_dir: str | pathlib.Path | None) -> None:
    """Raise ``FileExistsError`` if ``run_dir`` is given and is a non-empty directory (or
    not a directory): the early check before a new run loads its data."""
    if run_dir is None:
        return
    path = pathlib.Path(run_dir)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"run directory {path} is not empty (use --resume to continue it)")


def write_config(cfg: Any, run_dir: str | pathlib.Path) -> pathlib.Path:
    """Write the resolved config dataclass (every default filled in) as YAML."""
    path = pathlib.Path(run_dir) / CONFIG_FILE
    path.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    return path


def save_checkpoint(
    run_dir: str | pathlib.Path,
    tag: str,
    state: Mapping[str, Any],
    save_model: Callable[[str], Any] | None = None,
    *,
    metrics_step: int | None = None,
) -> pathlib.Path:
    """Save ``checkpoints/<tag>/`` and point ``checkpoints/latest`` at it.

    ``save_model(dir)``, when given, writes the model into ``<ckpt>/model`` first (e.g. a
    plain HF directory). ``state`` goes to ``state.pt`` together with the driver's numpy and
    python RNG states and ``metrics_step``: the step of the last metrics row this checkpoint
    covers (a resume drops the rows after it, which the resumed run logs again). The pointer moves only after both are complete, so a crash mid-save
    leaves ``latest`` on the previous, whole checkpoint.
    """
    if not tag or "/" in tag or tag in (".", "..", _LATEST):
        raise ValueError(f"checkpoint tag must be a plain directory name, got {tag!r}")
    root = pathlib.Path(run_dir) / "checkpoints"
    ckpt = root / tag
    if ckpt.exists():
        shutil.rmtree(ckpt)  # a re-save of the same tag must not keep stale model files
    ckpt.mkdir(parents=True)
    if save_model is not None:
        save_model(str(ckpt / MODEL_DIR))
    full = {**state, "numpy_rng": np.random.get_state(), "python_rng": random.getstate()}
    if metrics_step is not None:
        full[_METRICS_STEP] = metrics_step
    tmp = ckpt / (_STATE_FILE + ".tmp")
    torch.save(full, tmp)
    tmp.replace(ckpt / _STATE_FILE)
    (root / _LATEST).write_text(tag + "\n")
    return ckpt


def latest_checkpoint(run_dir: str | pathlib.Path) -> pathlib.Path:
    """The checkpoint directory that ``checkpoints/latest`` names."""
    root = pathlib.Path(run_dir) / "checkpoints"
    pointer = root / _LATEST
    if not pointer.is_file():
        raise FileNotFoundError(f"{run_dir} has no checkpoint (no checkpoints/latest)")
    return root / pointer.read_text().strip()


def load_checkpoint(path: str | pathlib.Path) -> dict[str, Any]:
    """Load a checkpoint directory (or a run directory: its latest checkpoint).

    Returns the saved state with ``dir`` (the checkpoint directory) and ``model_dir``
    (``<dir>/model``, which exists only if the app saved a model) added.
    """
    path = pathlib.Path(path)
    if (path / CONFIG_FILE).is_file():
        path = latest_checkpoint(path)
    file = path / _STATE_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint directory (no {_STATE_FILE})")
    # weights_only=False: the state holds numpy RNG tuples and plain Python objects that
    # this process wrote itself.
    state = torch.load(file, weights_only=False)
    state["dir"] = path
    state["model_dir"] = path / MODEL_DIR
    return state


def restore_driver_rng(state: Mapping[str, Any]) -> None:
    """Restore the numpy and python RNG states saved with a checkpoint."""
    np.random.set_state(state["numpy_rng"])
    random.setstate(state["python_rng"])


def find_run_dir(path: str | pathlib.Path) -> pathlib.Path:
    """The nearest of ``path`` and its parents that holds a ``config.yaml``."""
    path = pathlib.Path(path)
    for candidate in (path, *path.parents):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise FileNotFoundError(f"{path} is not inside a run directory (no {CONFIG_FILE} above it)")


def start_run(
    load: Callable[[str | pathlib.Path, Sequence[str]], C],
    config: str | pathlib.Path,
    overrides: Sequence[str] = (),
    run_dir: str | pathlib.Path | None = None,
    *,
    prepare: Callable[[C], D],
) -> tuple[C, pathlib.Path, D]:
    """``(config, run_dir, prepared)`` of a new run: everything is checked before the run
    directory exists, so that a bad input leaves nothing behind to block the next try.

    In order: ``load(config, overrides)`` (the app's validating config loader), a given
    ``run_dir`` must be free (:func:`check_run_dir_free`), ``prepare(cfg)`` (the app's
    checks in the driver that need more than the config: data files, env ids, model paths;
    what it returns, e.g. the loaded rows, is handed back), and only then the directory is
    created (:func:`new_run_dir` of ``runner.runs_root`` / ``runner.name``) with the
    resolved config written into it.
    """
    cfg = load(config, overrides)
    check_run_dir_free(run_dir)
    prepared = prepare(cfg)
    runner = cfg.runner  # type: ignore[attr-defined]  # every app config has a runner
    path = new_run_dir(runner.runs_root, runner.name, run_dir)
    write_config(cfg, path)
    return cfg, path, prepared


def resume_run(
    run_dir: str | pathlib.Path,
    load: Callable[[pathlib.Path, Sequence[str]], C],
    overrides: Sequence[str] = (),
    *,
    prepare: Callable[[C], D],
) -> tuple[C, pathlib.Path, dict[str, Any], D]:
    """``(config, run_dir, latest checkpoint state, prepared)`` of a run to continue.

    ``load(config_path, overrides)`` is the app's validating config loader, and
    ``prepare(cfg)`` the app's checks in the driver (as for :func:`start_run`); both run
    before the run directory is touched. Then the config is rewritten only when overrides
    changed it (e.g. more steps), so it stays the record of what the run used, and
    ``metrics.jsonl`` keeps one row per step: the rows after the checkpoint's
    ``metrics_step`` (see :func:`save_checkpoint`), which the resumed run logs again, are
    dropped.
    """
    path = pathlib.Path(run_dir)
    cfg = load(path / CONFIG_FILE, overrides)
    state = load_checkpoint(path)
    prepared = prepare(cfg)
    if overrides:
        write_config(cfg, path)
    if _METRICS_STEP in state:
        truncate_metrics(path, state[_METRICS_STEP])
    return cfg, path, state, prepared


def truncate_metrics(run_dir: str | pathlib.Path, last_step: float) -> int:
    """Drop the rows of ``<run_dir>/metrics.jsonl`` whose ``step`` is after ``last_step``
    (the file is replaced atomically; the kept lines are unchanged). Returns the number of
    rows dropped (0 when there is no file)."""
    path = pathlib.Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return 0
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line)["step"] <= last_step]
    if len(kept) == len(lines):
        return 0
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)
    return len(lines) - len(kept)


def run_model_dir(
    checkpoint: str | pathlib.Path, load: Callable[[pathlib.Path, Sequence[str]], C]
) -> tuple[C, pathlib.Path]:
    """``(run config, HF model directory)`` of ``checkpoint``: a run directory (its latest
    checkpoint's model), a checkpoint directory, or an HF model directory inside a run
    (e.g. ``<run>/sft_model``). ``load(config_path, ())`` is the app's config loader.

    Raises:
        FileNotFoundError: ``checkpoint`` does not exist, is no checkpoint, holds no model,
            or is not inside a run directory.
    """
    path = pathlib.Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if (path / "config.json").is_file() and not (path / CONFIG_FILE).is_file():
        model_dir = path
    else:
        model_dir = load_checkpoint(path)["model_dir"]
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{model_dir} holds no model ({MODEL_DIR}/config.json)")
    return load(find_run_dir(path) / CONFIG_FILE, ()), model_dir


def read_metrics(path: str | pathlib.Path) -> list[dict[str, float]]:
    """Rows of a run's ``metrics.jsonl`` (``path``: the file or its run directory).

    Non-finite values, which the logger stores as strings, become NaN.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            rows.append({k: float(v) for k, v in json.loads(line).items()})
    return rows
