"""Run directories and checkpoints: HF model dirs, optimizer state, prompt-iterator state."""

from __future__ import annotations

import datetime
import pathlib
import random
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import yaml

from rlinf.core import config_to_dict

from ._config import MathConfig

__all__ = [
    "CONFIG_FILE",
    "latest_checkpoint",
    "load_checkpoint",
    "new_run_dir",
    "restore_driver_rng",
    "save_checkpoint",
    "write_config",
]

CONFIG_FILE = "config.yaml"
MODEL_DIR = "model"
_STATE_FILE = "state.pt"


def new_run_dir(cfg: MathConfig, run_dir: str | pathlib.Path | None = None) -> pathlib.Path:
    """``run_dir`` if given, else ``<runs_root>/<UTC timestamp>-<name>``; created empty."""
    if run_dir is None:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
        run_dir = pathlib.Path(cfg.runner.runs_root) / f"{stamp}-{cfg.runner.name}"
    path = pathlib.Path(run_dir)
    if path.exists() and any(path.iterdir()):
        raise FileExistsError(f"run directory {path} is not empty (use --resume to continue it)")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_config(cfg: MathConfig, run_dir: pathlib.Path) -> pathlib.Path:
    """Write the resolved config (every default filled in) as YAML."""
    path = run_dir / CONFIG_FILE
    path.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    return path


def save_checkpoint(
    run_dir: pathlib.Path,
    step: int,
    save_model: Callable[[str], Any],
    state: dict[str, Any],
) -> pathlib.Path:
    """Save ``checkpoints/step_<step>/`` and point ``checkpoints/latest`` at it.

    ``save_model(dir)`` writes the policy as a plain HF directory into ``<ckpt>/model``
    (loadable by ``from_pretrained`` and by ``rlinf-math eval``); ``state`` (actor
    optimizer, weight version, prompt-iterator position, counters) goes to ``state.pt``
    with the driver's numpy / python RNG states.
    """
    ckpt = run_dir / "checkpoints" / f"step_{step:06d}"
    if ckpt.exists():
        shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True)
    save_model(str(ckpt / MODEL_DIR))
    full = {
        **state,
        "step": step,
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
    }
    # Write then rename, so a crash mid-save never leaves a truncated checkpoint.
    tmp = ckpt / (_STATE_FILE + ".tmp")
    torch.save(full, tmp)
    tmp.replace(ckpt / _STATE_FILE)
    (run_dir / "checkpoints" / "latest").write_text(ckpt.name + "\n")
    return ckpt


def latest_checkpoint(run_dir: pathlib.Path) -> pathlib.Path:
    """The checkpoint directory that ``checkpoints/latest`` names."""
    pointer = run_dir / "checkpoints" / "latest"
    if not pointer.is_file():
        raise FileNotFoundError(f"{run_dir} has no checkpoint (no checkpoints/latest)")
    return run_dir / "checkpoints" / pointer.read_text().strip()


def load_checkpoint(path: str | pathlib.Path) -> dict[str, Any]:
    """Load a checkpoint directory (or a run directory: its latest checkpoint).

    The returned state has ``dir`` (the checkpoint) and ``model_dir`` (its HF model) added.
    """
    path = pathlib.Path(path)
    if (path / CONFIG_FILE).is_file():
        path = latest_checkpoint(path)
    file = path / _STATE_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint directory (no {_STATE_FILE})")
    state = torch.load(file, weights_only=False)
    state["dir"] = path
    state["model_dir"] = path / MODEL_DIR
    return state


def restore_driver_rng(state: dict[str, Any]) -> None:
    """Restore the numpy and python RNG states saved with a checkpoint."""
    np.random.set_state(state["numpy_rng"])
    random.setstate(state["python_rng"])
