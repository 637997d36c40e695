"""GRPO on the math task: ``rlinf-math train --config grpo`` vs TRL's GRPOTrainer.

Each round runs both sides, each in its own fresh process, in alternating order (rlinf
first in even rounds, TRL first in odd ones), and the report gives medians over rounds of

* seconds per training step after ``--warmup`` steps (one step = generate
  ``prompts x n`` responses, score them, one optimizer step on all of them),
* tokens/s over those steps (generated tokens + trained tokens, i.e. prompt and response
  tokens of every trained sequence, as each side counts them),
* the mean reward of all steps (fraction of correct answers), to compare at equal reward
  (with the default 8 new tokens it is 0 on both sides: the task's answer ``\\boxed{NN}``
  takes 9-11 character tokens; ``--max-new-tokens 12``, the preset's, scores non-zero),
* the whole command's wall time: process start to exit, imports, Ray start, model load,
  every step and what the command does after the last one.

rlinf runs the real CLI, ``rlinf-math train --config grpo`` (``grpo_disaggregated`` with
``--placement disaggregated``), with the preset as shipped (placement, cluster devices,
``runner.torch_threads``, checker pool, sampling temperature, lr, clip, loss
aggregation: all read from the preset at run time) except for the overrides printed
(model, batch, length, steps, evaluation size). Its per-step times come from the run's
``metrics.jsonl`` (``time/step``). Its whole command also evaluates ``--eval-prompts``
held-out prompts greedily before and after training and saves a checkpoint; the TRL script
saves its model at the end but does not evaluate.

TRL is set up as its docs recommend for speed on a small model on CPU:
``gradient_checkpointing=False`` (GRPOConfig turns it on by default: it saves memory at
the price of a second forward pass in every backward and, in transformers, turns the KV
cache off), a plain Python reward function that runs in the trainer's process (answer
extraction and math-verify check of ``rlinf.envs.math``: ``extract_answer`` and
``MathVerifyCheck``, the same check rlinf's checker workers run), ``beta=0`` (no reference model), one generation batch per optimizer step
(``per_device_train_batch_size = prompts x n``, ``steps_per_generation=1``,
``num_iterations=1``), the preset's lr (constant schedule), temperature, clip, grad-norm
clip and token-mean loss (TRL ``loss_type="dapo"``). Both sides see the same prompts in the
same order and start from the same weights (a tiny Qwen2 after ``--sft-steps`` of the
preset's SFT warm-up, so that rewards are not all zero). TRL runs once per round for each
``--trl-threads`` value (default: all cores, and 1) and its fastest setting is the baseline:
on a machine busy with other jobs, 2 torch threads on 2 cores wait for each other at every
parallel region and run several times slower than 1.

Why an earlier version of this script reported ~11 s per TRL step (0.25-0.29 s measured by
hand on the same batch): it left GRPOConfig's default ``gradient_checkpointing=True``, and
its reward function scored through ``MathChecker``'s process pool (a forkserver worker that
re-imports this script's ``__main__`` and sympy at first use, then a pipe round-trip per
answer) and re-tokenized every prompt to count tokens. Under this machine's load both cost
seconds per step; the figures are in ``benchmarks/README.md``. TRL's own ``num_tokens``
log now gives the token count.

    uv run --locked --group bench python benchmarks/math_grpo.py             # a few minutes
    uv run --locked --group bench python benchmarks/math_grpo.py --rounds 1 --steps 4

Goal: rlinf >= 1.5x TRL GRPOTrainer steps/s at equal reward.
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
from typing import Any

__all__ = ["main"]

PRESETS = {"collocated": "grpo", "disaggregated": "grpo_disaggregated"}


def rlinf_overrides(args: argparse.Namespace, model_dir: str) -> list[str]:
    """The only keys the rlinf side changes from the preset."""
    return [
        f"model.path={model_dir}",
        "sft.steps=0",
        f"generation.n={args.n}",
        f"generation.max_new_tokens={args.max_new_tokens}",
        f"runner.prompts_per_step={args.prompts}",
        f"runner.steps={args.steps}",
        "runner.eval_every=0",
        f"runner.eval_prompts={args.eval_prompts}",
        "runner.checkpoint_every=0",
        "runner.progress=false",
    ]


def trl_spec(args: argparse.Namespace, cfg: Any, model_dir: str, rows_path: str) -> dict:
    """TRL's settings, taken from the loaded rlinf config wherever both have the knob."""
    a = cfg.algo
    if a.kl_coef != 0 or a.loss_agg_mode != "token-mean" or a.lr_schedule != "constant":
        raise SystemExit(
            f"the preset's algo ({a.kl_coef=}, {a.loss_agg_mode=}, {a.lr_schedule=}) has no "
            "TRL counterpart set up here; extend trl_spec"
        )
    return {
        "model_dir": model_dir,
        "rows": rows_path,
        "grpo": {
            "per_device_train_batch_size": args.prompts * args.n,
            "gradient_accumulation_steps": 1,
            "steps_per_generation": 1,
            "num_iterations": 1,
            "num_generations": args.n,
            "max_completion_length": args.max_new_tokens,
            "temperature": cfg.generation.temperature,
            "learning_rate": a.lr,
            "lr_scheduler_type": "constant",
            "weight_decay": a.weight_decay,
            "adam_beta1": a.adam_betas[0],
            "adam_beta2": a.adam_betas[1],
            "max_grad_norm": a.max_grad_norm,
            "epsilon": a.clip_low,
            "epsilon_high": a.clip_high,
            "loss_type": "dapo",
            "beta": 0.0,
            "max_steps": args.steps,
            "gradient_checkpointing": False,
            "shuffle_dataset": False,
            "logging_steps": 1,
            "save_strategy": "no",
            "report_to": "none",
            "use_cpu": True,
            "bf16": False,
            "seed": cfg.runner.seed,
        },
    }


def trl_worker(spec_path: str, threads: int) -> None:
    """The TRL script: train, save, print one JSON line of per-step times and logs."""
    spec = json.loads(pathlib.Path(spec_path).read_text())
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rlinf.envs.math import MathVerifyCheck, extract_answer
    from rlinf.models.llm import load_tokenizer

    torch.set_num_threads(threads)
    rows = [json.loads(line) for line in pathlib.Path(spec["rows"]).read_text().splitlines()]
    check = MathVerifyCheck()

    def reward(completions: list[str], answer: list[str], **_: Any) -> list[float]:
        out = []
        for text, gold in zip(completions, answer, strict=True):
            found = extract_answer(text).text
            out.append(float(found is not None and check(found, gold) == "correct"))
        return out

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.starts: list[float] = []
            self.seconds: list[float] = []

        def on_step_begin(self, *a: Any, **k: Any) -> None:
            self.starts.append(time.perf_counter())

        def on_step_end(self, *a: Any, **k: Any) -> None:
            self.seconds.append(time.perf_counter() - self.starts[-1])

    clock = Clock()
    out_dir = spec["rows"] + ".trl"
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(spec["model_dir"]),
        reward_funcs=reward,
        args=GRPOConfig(output_dir=out_dir, **spec["grpo"]),
        train_dataset=Dataset.from_list(rows),
        processing_class=load_tokenizer(spec["model_dir"]),
        callbacks=[clock],
    )
    trainer.train()
    trainer.save_model(out_dir)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    batch = spec["grpo"]["per_device_train_batch_size"]
    totals = [h["num_tokens"] for h in logs]  # cumulative prompt + completion tokens
    trained = [b - a for a, b in zip([0.0, *totals], totals, strict=False)]
    generated = [h["completions/mean_length"] * batch for h in logs]
    steps = [
        {"time/step": s, "tokens": g + t, "reward": h["reward"]}
        for s, g, t, h in zip(clock.seconds, generated, trained, logs, strict=True)
    ]
    print("TRL_RESULT " + json.dumps(steps), flush=True)


def summarize(steps: list[dict[str, float]], warmup: int, wall: float) -> dict[str, float]:
    timed = steps[warmup:]
    if not timed:
        raise SystemExit(f"--steps must exceed --warmup ({warmup}): no timed steps")
    seconds = sum(s["time/step"] for s in timed)
    return {
        "s_per_step": seconds / len(timed),
        "tokens_per_s": sum(s["tokens"] for s in timed) / seconds,
        "reward": statistics.fmean(s["reward"] for s in steps),
        "wall_s": wall,
    }


def _run(cmd: list[str], log: pathlib.Path) -> float:
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "disabled"}
    start = time.perf_counter()
    with log.open("w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    wall = time.perf_counter() - start
    if code:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise SystemExit(f"{' '.join(cmd[:4])} ... exited with {code}; log {log}:\n{tail}")
    return wall


def run_rlinf(args: argparse.Namespace, overrides: list[str], tmp: pathlib.Path, i: int) -> dict:
    cli = shutil.which("rlinf-math", path=str(pathlib.Path(sys.executable).parent))
    if cli is None:
        raise SystemExit("rlinf-math is not installed in this environment (uv sync)")
    run_dir = tmp / f"rlinf_{i}"
    cmd = [cli, "train", "--config", PRESETS[args.placement], "--run-dir", str(run_dir)]
    wall = _run([*cmd, *overrides], tmp / f"rlinf_{i}.log")
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    rows = [r for r in map(json.loads, lines) if "time/step" in r]
    steps = [
        {
            "time/step": r["time/step"],
            "tokens": r["rollout/generated_tokens"] + r["train/trained_tokens"],
            "reward": r["rollout/reward_mean"],
        }
        for r in rows
    ]
    return summarize(steps, args.warmup, wall)


def run_trl(
    args: argparse.Namespace, spec_path: pathlib.Path, tmp: pathlib.Path, i: int, threads: int
) -> dict:
    log = tmp / f"trl_{i}_{threads}.log"
    cmd = [sys.executable, __file__, "--trl-worker", str(spec_path), "--trl-threads", str(threads)]
    wall = _run(cmd, log)
    line = next(x for x in log.read_text().splitlines() if x.startswith("TRL_RESULT "))
    return summarize(json.loads(line.removeprefix("TRL_RESULT ")), args.warmup, wall)


def prepare(args: argparse.Namespace, tmp: pathlib.Path) -> tuple[list[str], pathlib.Path, Any]:
    """Build (and optionally SFT-warm) the shared model; write the TRL spec and prompts."""
    from rlinf.apps.math._config import load_math_config
    from rlinf.apps.math._data import load_splits, prompt_iterator
    from rlinf.models.llm import TinyLMConfig, build_tiny_causal_lm

    tiny = TinyLMConfig(
        hidden_size=args.hidden, num_layers=args.layers, intermediate_size=4 * args.hidden
    )
    model_dir = build_tiny_causal_lm(tmp / "base", tiny)
    preset = PRESETS[args.placement]
    if args.sft_steps:
        cli = str(pathlib.Path(sys.executable).parent / "rlinf-math")
        sft = [f"model.path={model_dir}", f"sft.steps={args.sft_steps}", "runner.eval_prompts=16"]
        _run([cli, "sft", "--config", preset, "--out", str(tmp / "sft"), *sft], tmp / "sft.log")
        model_dir = tmp / "sft" / "model"
    overrides = rlinf_overrides(args, str(model_dir))
    cfg = load_math_config(preset, overrides)
    train, _ = load_splits(cfg.data)
    order = prompt_iterator(cfg.data, list(train), cfg.runner.seed)
    rows = [r for _ in range(args.steps) for r in order.next_batch(args.prompts)]
    rows_path = tmp / "prompts.jsonl"
    rows_path.write_text(
        "".join(json.dumps({"prompt": r.prompt, "answer": str(r.answer)}) + "\n" for r in rows)
    )
    spec = trl_spec(args, cfg, str(model_dir), str(rows_path))
    spec_path = tmp / "trl_spec.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    print(f"model: tiny Qwen2 {tiny}; SFT warm-up {args.sft_steps} steps (untimed)")
    print(f"rlinf: rlinf-math train --config {preset} {' '.join(overrides)}")
    print(
        f"  preset as loaded: placement {dict(cfg.placement)}, cluster {cfg.cluster}, "
        f"torch_threads {cfg.runner.torch_threads!r}, checker {cfg.checker}, "
        f"generation {cfg.generation}, algo {cfg.algo}"
    )
    print(f"TRL: GRPOTrainer, torch threads {args.trl_threads}, GRPOConfig {spec['grpo']}")
    return overrides, spec_path, cfg


def _cells(name: str, runs: list[dict]) -> str:
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return (
        f"{name:<6} {med['s_per_step']:6.3f} s/step  {med['tokens_per_s']:7.0f} tokens/s  "
        f"reward {med['reward']:.3f}  whole command {med['wall_s']:6.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--steps", type=int, default=12, help="training steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--prompts", type=int, default=16, help="prompts per step")
    parser.add_argument("--n", type=int, default=8, help="samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=128, help="tiny Qwen2 width")
    parser.add_argument("--layers", type=int, default=4, help="tiny Qwen2 depth")
    parser.add_argument("--sft-steps", type=int, default=200, help="warm-up before RL")
    parser.add_argument("--eval-prompts", type=int, default=16, help="rlinf's greedy eval")
    parser.add_argument(
        "--trl-threads",
        type=int,
        nargs="+",
        default=sorted({os.cpu_count() or 1, 1}, reverse=True),
        help="torch threads of TRL; each value is run every round, the fastest is the baseline",
    )
    parser.add_argument("--placement", choices=list(PRESETS), default="collocated")
    parser.add_argument("--trl-worker", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trl_worker:
        trl_worker(args.trl_worker, args.trl_threads[0])
        return
    if args.steps <= args.warmup:
        parser.error(f"--steps ({args.steps}) must exceed --warmup ({args.warmup})")
    with tempfile.TemporaryDirectory(prefix="math_grpo_") as name:
        tmp = pathlib.Path(name)
        overrides, spec_path, _ = prepare(args, tmp)
        ours: list[dict] = []
        trl: dict[int, list[dict]] = {t: [] for t in args.trl_threads}
        for i in range(args.rounds):
            sides = ["rlinf", *args.trl_threads]
            for side in sides if i % 2 == 0 else sides[::-1]:
                if side == "rlinf":
                    ours.append(run_rlinf(args, overrides, tmp, i))
                else:
                    trl[side].append(run_trl(args, spec_path, tmp, i, side))
            print(f"round {i}: {_cells('rlinf', [ours[-1]])}", flush=True)
            for t, runs in trl.items():
                print(f"         {_cells(f'TRL/{t}t', [runs[-1]])}", flush=True)
    print(
        f"{args.prompts} prompts x {args.n} samples, {args.max_new_tokens} new tokens, "
        f"{args.steps} steps ({args.warmup} warm-up), {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; medians of {args.rounds} alternating rounds"
    )
    print(_cells("rlinf", ours))
    for t, runs in trl.items():
        print(_cells(f"TRL/{t}t", runs))
    # The baseline is TRL's fastest thread count: on a machine busy with other work, torch's
    # OpenMP threads wait for each other at every parallel region and 1 thread can win.
    best = min(trl, key=lambda t: statistics.median(r["s_per_step"] for r in trl[t]))
    base = trl[best]
    step_ratio = statistics.median(
        t["s_per_step"] / o["s_per_step"] for o, t in zip(ours, base, strict=True)
    )
    wall_ratio = statistics.median(
        t["wall_s"] / o["wall_s"] for o, t in zip(ours, base, strict=True)
    )
    print(
        f"vs TRL with {best} thread(s): steps/s rlinf / TRL {step_ratio:.2f}x (goal >= 1.5x); "
        f"whole command TRL time / rlinf time {wall_ratio:.2f}x"
    )


if __name__ == "__main__":
    main()
