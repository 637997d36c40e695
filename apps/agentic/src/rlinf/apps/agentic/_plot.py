"""The end-of-run PNG: rollout reward and tool calls, and held-out accuracy, against RL
steps."""

from __future__ import annotations

import math
import pathlib

from rlinf.core import read_metrics

__all__ = ["plot_learning_curve"]


def plot_learning_curve(run_dir: pathlib.Path, title: str = "") -> pathlib.Path:
    """Write ``run_dir/learning_curve.png`` from ``run_dir/metrics.jsonl``."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    panels = (
        ("reward", (("rollout/reward_mean", "rollout reward"),)),
        ("tool calls / trajectory", (("rollout/tool_calls", "rollout"), ("eval/tool_calls", "held-out (greedy)"))),
        ("accuracy", (("rollout/accuracy", "rollout"), ("eval/accuracy", "held-out (greedy)"))),
    )  # fmt: skip
    for ax, (ylabel, series) in zip(axes, panels, strict=True):
        for key, label in series:
            points = [(r["step"], r[key]) for r in rows if key in r and not math.isnan(r[key])]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o" if key.startswith("eval/") else None, label=label)
        ax.set_xlabel("RL step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    out = run_dir / "learning_curve.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
