"""Shared by the dynamic-scheduling benchmarks: run candidates through an app's CLI,
interleaved over rounds, and compare the best static one with the best dynamic one.

Each candidate is a fresh ``rlinf-<app> train`` process (start-up excluded: timings are
medians over the metrics rows after the first).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

__all__ = ["Column", "compare", "median_of", "train_rows"]

# (header, how one run's rows become the cell's number, format)
Column = tuple[str, Callable[[list[dict[str, float]]], float], str]


def train_rows(
    app: str, preset: str, name: str, overrides: Sequence[str], tmp: pathlib.Path
) -> list[dict[str, float]]:
    """Train ``preset`` with ``overrides`` through ``rlinf-<app>``; its metrics rows.

    Raises:
        SystemExit: the CLI is not installed, or the run failed (with its log's tail).
    """
    from rlinf.core import read_metrics

    cli = shutil.which(f"rlinf-{app}", path=str(pathlib.Path(sys.executable).parent))
    if cli is None:
        raise SystemExit(f"rlinf-{app} is not installed in this environment (uv sync)")
    run_dir = tmp / name.replace(" ", "_")
    shutil.rmtree(run_dir, ignore_errors=True)
    log = tmp / f"{run_dir.name}.log"
    cmd = [cli, "train", "--config", preset, "--run-dir", str(run_dir), *overrides]
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "disabled"}
    with log.open("w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if code:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise SystemExit(f"{name}: exited with {code}; log {log}:\n{tail}")
    return read_metrics(run_dir / "metrics.jsonl")


def median_of(key: str) -> Callable[[list[dict[str, float]]], float]:
    """A column: the median of ``key`` over a run's rows (0 where a row lacks it)."""
    return lambda rows: statistics.median(r.get(key, 0.0) for r in rows)


def compare(
    run: Callable[[str, pathlib.Path], list[dict[str, float]]],
    names: Sequence[str],
    static: Sequence[str],
    columns: Sequence[Column],
    *,
    rounds: int,
    unit: str,
) -> dict[str, float]:
    """Run every candidate ``rounds`` times, interleaved (load changes hit all alike), print
    a table of per-column medians over rounds (the first column is the time compared) and
    the best static vs best dynamic speed-up; returns each candidate's median time.

    Args:
        run: ``(name, tmp) -> rows`` for one run of a candidate (rows after the first).
        static: the candidates without dynamic scheduling; the others are dynamic.
        columns: the table's numeric columns; ``columns[0]`` is s/``unit``.
    """
    print(f"load average before: {os.getloadavg()[0]:.1f} (cores: {os.cpu_count()})")
    start = time.perf_counter()
    cells: dict[str, list[list[float]]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="dynsched-") as tmp:
        for _ in range(rounds):
            for name in names:
                rows = run(name, pathlib.Path(tmp))
                if not rows:
                    raise SystemExit(f"{name}: needs >= 2 metrics rows")
                cells[name].append([fn(rows) for _, fn, _ in columns])
    print(f"load average after: {os.getloadavg()[0]:.1f}; wall {time.perf_counter() - start:.0f} s")
    print()
    print("| candidate | " + " | ".join(h for h, _, _ in columns) + " |")
    print("|" + "---|" * (len(columns) + 1))
    times: dict[str, float] = {}
    for name in names:
        med = [statistics.median(run_[i] for run_ in cells[name]) for i in range(len(columns))]
        times[name] = med[0]
        print(
            f"| {name} | "
            + " | ".join(f"{v:{fmt}}" for v, (_, _, fmt) in zip(med, columns, strict=True))
            + " |"
        )
    fixed = {n: t for n, t in times.items() if n in static}
    dynamic = {n: t for n, t in times.items() if n not in static}
    if fixed and dynamic:
        s_name, d_name = min(fixed, key=fixed.__getitem__), min(dynamic, key=dynamic.__getitem__)
        speedup = fixed[s_name] / dynamic[d_name]
        verdict = "met" if speedup >= 1.2 else "NOT met"
        print(
            f"\nbest static: {s_name} {fixed[s_name]:.3f} s/{unit}; best dynamic: {d_name} "
            f"{dynamic[d_name]:.3f} s/{unit}; speed-up {speedup:.2f}x (goal 1.2x: {verdict})"
        )
    return times
