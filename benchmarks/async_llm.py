"""Asynchronous LLM RL: ``runner.max_staleness`` k = 0, 1, 2 on disaggregated placement,
for the math app and the agentic search app (``--app math agentic``; default math).

Each round runs ``rlinf-math train --config grpo_disaggregated`` (actor, rollout and reward
on their own slots) or ``rlinf-agentic train --config search_disaggregated`` (actor,
rollout, reward and the search tool workers on their own slots; multi-turn trajectories)
once per k, each in a fresh process, in alternating order (k ascending in even rounds,
descending in odd ones), all with the same number of trained samples (``--steps`` x
``--prompts`` x ``--n``) from the same SFT-warmed tiny model (the app's own ``sft`` command:
math answers, or gold tool-use traces); round ``i`` uses ``runner.seed=i`` for every k.
``--max-new-tokens`` is per response for math (default 12) and per model turn for agentic
(default: the preset's 28; a trajectory has at most 3 turns). Reported per app and k:

* tokens/s after ``--warmup`` steps: generated plus trained tokens over the summed
  ``time/step`` (with k > 0 a step's time covers its update and, overlapping it, the
  generation of later steps: the pipeline's rate), median over rounds; the ratio to k=0
  is taken per round, then the median;
* held-out greedy accuracy after the last update (``--eval-prompts`` prompts), mean over
  rounds (one seed each) and its difference to k=0;
* the largest ``train/staleness_max`` seen (never above k);
* with partial rollouts, the mean shares of samples whose tokens span versions
  (``train/mixed_version_frac``) and of requeued responses (``rollout/requeued``).

k > 0 uses ``algo.off_policy_correction=--correction`` (default ``decoupled``) and
``runner.partial_mode=--partial-mode`` (default ``off``; ``continue`` / ``abort``: new weights
reach a rollout rank every ``--update-interval`` new tokens, for agentic also before each
model turn; the shares above are reported); k = 0 runs the preset's synchronous flow
unchanged. Evaluation runs only before the first and after
the last update, so that no evaluation sits between pipelined steps.

    uv run --locked python benchmarks/async_llm.py --quick      # math, 1 round, minutes
    uv run --locked python benchmarks/async_llm.py              # math, 3 rounds (3 seeds)
    uv run --locked python benchmarks/async_llm.py --app agentic --quick --staleness 0 1
    uv run --locked python benchmarks/async_llm.py --app math agentic   # both, 3 rounds

Goal (issue 17): k=1 >= 1.6x k=0 tokens/s; accuracy within 0.02 of k=0 (mean of 3 seeds).
On a shared CPU machine the rollout and actor slots are processes competing for the same
cores, so the overlap that disaggregated GPUs give shows only in part.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

__all__ = ["main"]

# Per app: console script, disaggregated preset, and the directory its ``sft`` command
# writes the warmed model to under ``--out`` (``LLMApp.sft_dir``).
APPS = {
    "math": ("rlinf-math", "grpo_disaggregated", "model"),
    "agentic": ("rlinf-agentic", "search_disaggregated", "sft_model"),
}
# --quick's SFT warm-up per app: agentic search after 150 steps still answers no held-out
# question (accuracy 0, every reward 0, nothing for GRPO to learn from); the preset's 300
# steps reach ~0.5 (apps/agentic/README.md).
QUICK_SFT_STEPS = {"math": 150, "agentic": 300}


def _cli(app: str) -> str:
    name = APPS[app][0]
    cli = shutil.which(name, path=str(pathlib.Path(sys.executable).parent))
    if cli is None:
        raise SystemExit(f"{name} is not installed in this environment (uv sync)")
    return cli


def _run(cmd: list[str], log: pathlib.Path) -> float:
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "disabled"}
    start = time.perf_counter()
    with log.open("w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if code:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise SystemExit(f"{' '.join(cmd[:4])} ... exited with {code}; log {log}:\n{tail}")
    return time.perf_counter() - start


def overrides(args: argparse.Namespace, model_dir: str, k: int, seed: int) -> list[str]:
    """Every key a run changes from ``args.app``'s preset."""
    out = [
        f"model.path={model_dir}",
        "sft.steps=0",
        f"generation.n={args.n}",
    ]
    if args.max_new_tokens is not None:  # agentic: per model turn; None keeps the preset's
        out.append(f"generation.max_new_tokens={args.max_new_tokens}")
    out += [
        f"runner.prompts_per_step={args.prompts}",
        f"runner.steps={args.steps}",
        "runner.eval_every=0",
        f"runner.eval_prompts={args.eval_prompts}",
        "runner.checkpoint_every=0",
        "runner.metric_backends=[jsonl]",
        "runner.progress=false",
        f"runner.seed={seed}",
        f"runner.max_staleness={k}",
    ]
    if k:
        out.append(f"algo.off_policy_correction={args.correction}")
    if k and args.partial_mode != "off":
        out.append(f"runner.partial_mode={args.partial_mode}")
        out.append(f"runner.update_interval_tokens={args.update_interval}")
    return out


def run_one(args: argparse.Namespace, tmp: pathlib.Path, model_dir: str, k: int, i: int) -> dict:
    """One training run; returns tokens/s after the warm-up, final accuracy, staleness."""
    run_dir = tmp / f"{args.app}_k{k}_r{i}"
    cmd = [_cli(args.app), "train", "--config", APPS[args.app][1], "--run-dir", str(run_dir)]
    wall = _run([*cmd, *overrides(args, model_dir, k, i)], tmp / f"{run_dir.name}.log")
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "time/step" in r]
    if len(steps) != args.steps:
        raise SystemExit(f"k={k} round {i}: {len(steps)} steps logged, expected {args.steps}")
    timed = steps[args.warmup :]
    tokens = sum(r["rollout/generated_tokens"] + r["train/trained_tokens"] for r in timed)
    evals = [r for r in rows if "eval/accuracy" in r]
    return {
        "tokens_per_s": tokens / sum(r["time/step"] for r in timed),
        "accuracy": evals[-1]["eval/accuracy"],
        "staleness_max": max(r["train/staleness_max"] for r in steps),
        # Partial rollouts only (0 otherwise): samples spanning versions, rerun responses.
        "mixed": statistics.fmean(r.get("train/mixed_version_frac", 0.0) for r in steps),
        "requeued": statistics.fmean(r.get("rollout/requeued", 0.0) for r in steps),
        # Where a step's time goes: with k > 0 generation overlaps the update.
        "generate_s": statistics.median(r["time/generate"] for r in timed),
        "update_s": statistics.median(r["time/update"] for r in timed),
        "step_s": statistics.median(r["time/step"] for r in timed),
        "wall_s": wall,
    }


def prepare(args: argparse.Namespace, tmp: pathlib.Path) -> str:
    """The shared starting model: a tiny Qwen2 (the same builder the presets' ``model.tiny``
    uses) after ``--sft-steps`` of the app's own SFT (gold traces for agentic search)."""
    from rlinf.models.llm import TinyLMConfig, build_tiny_causal_lm

    _, preset, sft_dir = APPS[args.app]
    tiny = TinyLMConfig(
        hidden_size=args.hidden, num_layers=args.layers, intermediate_size=4 * args.hidden
    )
    model_dir = build_tiny_causal_lm(tmp / "base", tiny)
    if not args.sft_steps:
        return str(model_dir)
    sft = [f"model.path={model_dir}", f"sft.steps={args.sft_steps}", "runner.eval_prompts=16"]
    cmd = [_cli(args.app), "sft", "--config", preset, "--out", str(tmp / "sft"), *sft]
    _run(cmd, tmp / "sft.log")
    return str(tmp / "sft" / sft_dir)


def bench(args: argparse.Namespace) -> None:
    """Every round and k of ``args.app``, printed as it goes, then the summary per k."""
    ks = sorted(args.staleness)
    cli, preset, _ = APPS[args.app]
    with tempfile.TemporaryDirectory(prefix=f"async_llm_{args.app}_") as name:
        tmp = pathlib.Path(name)
        model_dir = prepare(args, tmp)
        print(f"\n{cli} train --config {preset} " + " ".join(overrides(args, "<sft>", 1, 0)))
        runs: dict[int, list[dict]] = {k: [] for k in ks}
        for i in range(args.rounds):
            for k in ks if i % 2 == 0 else ks[::-1]:
                runs[k].append(run_one(args, tmp, model_dir, k, i))
                r = runs[k][-1]
                print(
                    f"{args.app} round {i} k={k}: {r['tokens_per_s']:7.0f} tokens/s  accuracy "
                    f"{r['accuracy']:.3f}  staleness_max {r['staleness_max']:.0f}  "
                    f"mixed {r['mixed']:.2f}  requeued {r['requeued']:.2f}  "
                    f"step {r['step_s']:.2f} s (generate {r['generate_s']:.2f}, update "
                    f"{r['update_s']:.2f})  "
                    f"whole command {r['wall_s']:.0f} s",
                    flush=True,
                )
    print(f"\n{args.app}: medians over {args.rounds} round(s); accuracy: mean over rounds (seeds)")
    for line in summary(runs):
        print(line)


def summary(runs: dict[int, list[dict]]) -> list[str]:
    """One line per k: median tokens/s, the per-round ratio to k=0 (then its median), mean
    accuracy and its difference to k=0's mean, the largest staleness; with partial rollouts
    also the mean shares of mixed-version samples and requeued responses."""
    base = runs[0]
    acc0 = statistics.fmean(r["accuracy"] for r in base)
    lines = []
    for k, rows in sorted(runs.items()):
        ratio = statistics.median(
            r["tokens_per_s"] / b["tokens_per_s"] for r, b in zip(rows, base, strict=True)
        )
        acc = statistics.fmean(r["accuracy"] for r in rows)
        lines.append(
            f"k={k}: {statistics.median(r['tokens_per_s'] for r in rows):7.0f} tokens/s "
            f"({ratio:.2f}x k=0)  accuracy {acc:.3f} ({acc - acc0:+.3f} vs k=0)  "
            f"staleness_max {max(r['staleness_max'] for r in rows):.0f}  "
            f"mixed {statistics.fmean(r['mixed'] for r in rows):.2f}  "
            f"requeued {statistics.fmean(r['requeued'] for r in rows):.2f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--app",
        nargs="+",
        default=["math"],
        choices=sorted(APPS),
        help="apps to run, one after the other, each with its own warm-up and runs",
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 6 steps, small")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (seeds)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--prompts", type=int, default=16, help="prompts per step")
    parser.add_argument("--n", type=int, default=8, help="samples per prompt")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="math: per response (default 12); agentic: per model turn (default: preset's)",
    )
    parser.add_argument("--hidden", type=int, default=64, help="tiny Qwen2 width")
    parser.add_argument("--layers", type=int, default=2, help="tiny Qwen2 depth")
    parser.add_argument("--sft-steps", type=int, default=300, help="warm-up before RL")
    parser.add_argument("--eval-prompts", type=int, default=64, help="held-out prompts")
    parser.add_argument("--staleness", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--correction", default="decoupled", choices=["none", "tis", "mis", "decoupled"]
    )
    parser.add_argument(
        "--partial-mode",
        default="off",
        choices=["off", "continue", "abort"],
        help="runner.partial_mode of the k > 0 runs",
    )
    parser.add_argument("--update-interval", type=int, default=4, help="tokens between polls")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.steps, args.warmup = 1, 6, 1
        args.prompts, args.eval_prompts = 8, 32
    if 0 not in args.staleness:
        parser.error("--staleness must include 0, the baseline")
    if args.steps <= args.warmup:
        parser.error(f"--steps ({args.steps}) must exceed --warmup ({args.warmup})")
    for app in dict.fromkeys(args.app):  # each app once, in the order given
        tokens = args.max_new_tokens
        if tokens is None and app == "math":
            tokens = 12  # the math preset's own length, as before
        sft_steps = QUICK_SFT_STEPS[app] if args.quick else args.sft_steps
        per_app = {"app": app, "max_new_tokens": tokens, "sft_steps": sft_steps}
        bench(argparse.Namespace(**{**vars(args), **per_app}))


if __name__ == "__main__":
    main()
