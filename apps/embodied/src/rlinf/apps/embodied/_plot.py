"""The end-of-run PNG: episode return and success rate against env steps."""

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
    fig, (ax_r, ax_s) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in (
        (ax_r, "env/return_mean", "episode return"),
        (ax_s, "env/success_rate", "success rate"),
    ):
        points = [(r["step"], r[key]) for r in rows if key in r and not math.isnan(r[key])]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys)
        else:
            ax.text(0.5, 0.5, "not reported by this env", ha="center", transform=ax.transAxes)
        ax.set_xlabel("env steps")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    out = run_dir / "learning_curve.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
