"""The learning-curve figure the LLM apps write into their run directories."""

from __future__ import annotations

import math
import pathlib
from collections.abc import Sequence

from rlinf.core import read_metrics

__all__ = ["plot_run_panels"]


def plot_run_panels(
    run_dir: pathlib.Path,
    panels: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    *,
    title: str = "",
    figsize: tuple[float, float] = (10, 4),
) -> pathlib.Path:
    """Write ``run_dir/learning_curve.png`` from ``run_dir/metrics.jsonl``: one panel per
    ``(ylabel, ((metric key, legend label), ...))`` against the RL step (``eval/*``
    points marked; rows without the key, or NaN, skipped)."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError(
            "plot_run_panels needs matplotlib: pip install 'rlinf-models[plot]'"
        ) from e

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
    fig, axes = plt.subplots(1, len(panels), figsize=figsize, squeeze=False)
    for ax, (ylabel, series) in zip(axes[0], panels, strict=True):
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
