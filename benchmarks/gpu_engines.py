"""Generation engines side by side on one GPU: the math app (GRPO) with hf, vllm and sglang.

Each configuration is a fresh ``rlinf-math train --config grpo`` run of ``--steps`` RL steps
(20 by default) with a ~0.5B Qwen2-shaped model built from its config (Qwen2-0.5B's
hidden size, layers, heads and MLP width; the char tokenizer's vocabulary, so ~0.36B
parameters), bf16 weights, collocated on GPU 0. Every backend runs twice: with the actor
resident, and with ``training.offload=phase`` (the actor's parameters, gradients and
optimizer state go to pinned host memory at the end of each update and come back for the
next one, so the engine generates on a device the actor has left). Collocated engines always sleep between their turns (vLLM sleep level
1, SGLang KV-cache release: the rollout worker's ``offload``).

Reported per run, side by side:

* tokens/s over the steps after ``--warmup`` (generated + trained tokens, from
  ``metrics.jsonl``), and the ratio to hf without offload measured in the same invocation;
* peak device memory of the whole GPU (``nvidia-smi`` polled every 0.2 s: engines allocate
  outside torch's counters), the rollout worker's ``memory/rollout_peak_gib``, the actor's
  ``memory/actor_update_peak_gib`` and ``memory/actor_resident_gib`` (what the actor keeps on
  the device while the engine generates);
* mean reward (the engines should not change what is learned).

vLLM and SGLang cannot share one environment (vLLM 0.32 pins torch 2.13.0, the workspace
and SGLang use 2.14.1): each backend runs through ``uv run --locked --all-packages
--extra <engine>``, which syncs that engine's fork of the lock into ``--venv-root/<name>``.

    uv run --locked python benchmarks/gpu_engines.py                 # ~10 min on one H100
    uv run --locked python benchmarks/gpu_engines.py --backends hf vllm --steps 10

Needs a CUDA GPU; nothing here runs on CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import tempfile
import threading
import time

QWEN2_05B_SHAPE = {
    "model.tiny.hidden_size": 896,
    "model.tiny.num_layers": 24,
    "model.tiny.num_heads": 14,
    "model.tiny.num_kv_heads": 2,
    "model.tiny.intermediate_size": 4864,
}
ROOT = pathlib.Path(__file__).resolve().parents[1]


class GpuMemoryPeak:
    """Highest ``memory.used`` (MiB) of GPU 0 seen by ``nvidia-smi`` while running."""

    def __init__(self, period: float = 0.2) -> None:
        self.period, self.peak_mib = period, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        cmd = ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"]
        while not self._stop.is_set():
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            self.peak_mib = max(self.peak_mib, float(out.strip().splitlines()[0]))
            self._stop.wait(self.period)

    def __enter__(self) -> GpuMemoryPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def overrides(backend: str, offload: bool, steps: int) -> list[str]:
    """The CLI overrides of one configuration (printed with the results)."""
    out = [f"{k}={v}" for k, v in QWEN2_05B_SHAPE.items()]
    out += [
        "model.dtype=bfloat16",
        f"generation.backend={backend}",
        f"runner.steps={steps}",
        "runner.prompts_per_step=32",
        "runner.eval_every=0",
        "runner.checkpoint_every=0",
        "sft.steps=20",
        "cluster.num_cpus=8",
    ]
    if offload:
        out += ["training.offload=phase"]
    return out


def run_one(backend: str, offload: bool, args: argparse.Namespace, tmp: pathlib.Path) -> dict:
    name = f"{backend}{'_offload' if offload else ''}"
    run_dir = tmp / name
    uv = ["uv", "run", "--locked", "--all-packages"]
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "disabled"}
    if backend != "hf":
        uv += ["--extra", backend]
        env["UV_PROJECT_ENVIRONMENT"] = str(pathlib.Path(args.venv_root) / backend)
    cmd = [*uv, "rlinf-math", "train", "--config", "grpo", "--run-dir", str(run_dir)]
    cmd += overrides(backend, offload, args.steps)
    log = tmp / f"{name}.log"
    start = time.perf_counter()
    with GpuMemoryPeak() as mem, log.open("w") as f:
        code = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    wall = time.perf_counter() - start
    if code:
        tail = "\n".join(log.read_text().splitlines()[-25:])
        return {"name": name, "error": f"exit {code}; log {log}:\n{tail}"}
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "time/step" in r][args.warmup :]
    if not steps:
        return {"name": name, "error": f"no timed steps after warmup {args.warmup}"}
    seconds = sum(r["time/step"] for r in steps)
    tokens = sum(r["rollout/generated_tokens"] + r["train/trained_tokens"] for r in steps)

    def peak(key: str) -> float:
        seen = [r[key] for r in rows if key in r]
        return max(seen) if seen else float("nan")

    return {
        "name": name,
        "tokens_per_s": tokens / seconds,
        "gpu_peak_gib": mem.peak_mib / 1024,
        "rollout_peak_gib": peak("memory/rollout_peak_gib"),
        "update_peak_gib": peak("memory/actor_update_peak_gib"),
        "actor_resident_gib": peak("memory/actor_resident_gib"),
        "reward": statistics.fmean(r["rollout/reward_mean"] for r in steps),
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["hf", "vllm", "sglang"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-offload-runs", action="store_true", help="skip the offload runs")
    parser.add_argument("--venv-root", default=str(ROOT / ".venv-engines"))
    args = parser.parse_args()
    bad = [b for b in args.backends if b not in ("hf", "vllm", "sglang")]
    if bad:
        raise SystemExit(f"unknown backends {bad}; choose among hf, vllm, sglang")
    if subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode:
        raise SystemExit("benchmarks/gpu_engines.py needs a CUDA GPU (nvidia-smi failed)")
    print("overrides:", " ".join(overrides("<backend>", False, args.steps)))
    results = []
    with tempfile.TemporaryDirectory(prefix="rlinf_engines_") as tmp:
        for backend in args.backends:
            for offload in (False,) if args.no_offload_runs else (False, True):
                results.append(run_one(backend, offload, args, pathlib.Path(tmp)))
                print(json.dumps(results[-1]), flush=True)
    base = next((r for r in results if r["name"] == "hf" and "error" not in r), None)
    print(
        f"\n{'run':<16}{'tokens/s':>10}{'vs hf':>8}{'GPU peak GiB':>14}{'rollout GiB':>13}"
        f"{'update GiB':>12}{'actor idle GiB':>16}{'reward':>8}"
    )
    for r in results:
        if "error" in r:
            print(f"{r['name']:<16} failed: {r['error'].splitlines()[0]}")
            continue
        ratio = r["tokens_per_s"] / base["tokens_per_s"] if base else float("nan")
        print(
            f"{r['name']:<16}{r['tokens_per_s']:>10.0f}{ratio:>8.2f}{r['gpu_peak_gib']:>14.1f}"
            f"{r['rollout_peak_gib']:>13.1f}{r['update_peak_gib']:>12.1f}"
            f"{r['actor_resident_gib']:>16.2f}{r['reward']:>8.3f}"
        )


if __name__ == "__main__":
    main()
