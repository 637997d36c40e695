"""The end-of-run PNG: rollout reward / accuracy and held-out accuracy against RL steps."""

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
    fig, (ax_r, ax_a) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, series in (
        (ax_r, (("rollout/reward_mean", "rollout reward"),)),
        (
            ax_a,
            (("rollout/accuracy", "rollout accuracy"), ("eval/accuracy", "held-out (greedy)")),
        ),
    ):
        for key, label in series:
            points = [(r["step"], r[key]) for r in rows if key in r and not math.isnan(r[key])]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o" if key.startswith("eval/") else None, label=label)
        ax.set_xlabel("RL step")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    ax_r.set_ylabel("reward")
    ax_a.set_ylabel("accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    out = run_dir / "learning_curve.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
