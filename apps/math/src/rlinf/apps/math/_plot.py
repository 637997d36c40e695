"""The end-of-run PNG: rollout reward / accuracy and held-out accuracy against RL steps."""

from __future__ import annotations

import pathlib

from rlinf.models.llm import plot_run_panels

__all__ = ["plot_learning_curve"]

PANELS = (
    ("reward", (("rollout/reward_mean", "rollout reward"),)),
    ("accuracy", (("rollout/accuracy", "rollout accuracy"), ("eval/accuracy", "held-out (greedy)"))),
)  # fmt: skip


def plot_learning_curve(run_dir: pathlib.Path, title: str = "") -> pathlib.Path:
    """Write ``run_dir/learning_curve.png`` from ``run_dir/metrics.jsonl``."""
    return plot_run_panels(run_dir, PANELS, title=title, figsize=(10, 4))
