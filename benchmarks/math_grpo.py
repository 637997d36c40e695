"""GRPO training throughput on the math task: rlinf's math flow vs TRL's GRPOTrainer.

Both train the same tiny Qwen2 model directory (character tokenizer, built here) on the
same synthetic arithmetic prompts, with the same group size, generation budget, prompts
per step, learning rate and answer checker (rlinf.envs.math.MathChecker), in one run, one
after the other. Throughput is tokens per second of wall-clock training time, counting
generated tokens plus trained tokens (prompt + response tokens of every sequence the update
runs on), over the steps after a warm-up step. Setup (Ray start, TRL trainer construction)
is not timed on either side.

    uv run --locked --group bench python benchmarks/math_grpo.py

TRL runs in one process with ``--threads`` torch threads (default: all cores); rlinf runs
its collocated default (rollout, reward and actor workers, one torch thread each, taking
turns on one device slot) or, with ``--placement disaggregated``, actor and rollout on
separate slots. Goal: rlinf >= 1.5x TRL.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import torch

from rlinf.apps.math._config import load_math_config
from rlinf.apps.math._data import load_splits
from rlinf.apps.math._flow import MathFlow
from rlinf.envs.math import MathChecker, MathCheckerConfig
from rlinf.models.llm import TinyLMConfig, build_tiny_causal_lm, load_tokenizer


def _overrides(args: argparse.Namespace, model_dir: str) -> list[str]:
    placement = (
        ["placement.actor=0", "placement.rollout=1", "placement.reward=1"]
        if args.placement == "disaggregated"
        else []
    )
    return [
        f"model.path={model_dir}",
        "sft.steps=0",
        f"generation.n={args.n}",
        f"generation.max_new_tokens={args.max_new_tokens}",
        f"runner.prompts_per_step={args.prompts}",
        f"runner.steps={args.steps + 1}",
        f"algo.lr={args.lr}",
        "checker.num_workers=1",
        *placement,
    ]


def run_rlinf(args: argparse.Namespace, model_dir: str) -> dict[str, float]:
    cfg = load_math_config("grpo", _overrides(args, model_dir))
    train, _ = load_splits(cfg.data)
    flow = MathFlow(cfg, model_dir, model_dir, total_updates=cfg.runner.steps)
    try:
        version = flow.sync_weights()
        tokens = seconds = 0.0
        for step in range(args.steps + 1):
            rows = train[step * args.prompts : (step + 1) * args.prompts]
            start = time.perf_counter()
            metrics = flow.step(rows, version)
            elapsed = time.perf_counter() - start
            version += 1
            if step:  # the first step pays for lazy start-up (checker pool, allocations)
                tokens += metrics["rollout/generated_tokens"] + metrics["train/trained_tokens"]
                seconds += elapsed
    finally:
        flow.shutdown()
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def run_trl(args: argparse.Namespace, model_dir: str, workdir: str) -> dict[str, float]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(args.threads)
    cfg = load_math_config("grpo", _overrides(args, model_dir))
    train, _ = load_splits(cfg.data)
    rows = train[: (args.steps + 1) * args.prompts]
    tokenizer = load_tokenizer(model_dir)
    answers = {r.prompt: r.answer for r in rows}
    checker = MathChecker(MathCheckerConfig(num_workers=1))
    counts = {"tokens": 0.0}

    def reward(prompts, completions, completion_ids, **_):
        # Same definition as rlinf: generated tokens plus prompt + completion tokens trained.
        generated = sum(len(c) for c in completion_ids)
        prompt_tokens = sum(
            len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts
        )
        counts["tokens"] += 2 * generated + prompt_tokens
        results = checker.score(list(completions), [answers[p] for p in prompts])
        return [r.score for r in results]

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.marks: list[tuple[float, float]] = []

        def on_step_begin(self, *a, **k):
            self.marks.append((time.perf_counter(), counts["tokens"]))

        def on_step_end(self, *a, **k):
            self.marks.append((time.perf_counter(), counts["tokens"]))

    config = GRPOConfig(
        output_dir=workdir,
        per_device_train_batch_size=args.prompts * args.n,
        gradient_accumulation_steps=1,
        num_generations=args.n,
        max_completion_length=args.max_new_tokens,
        temperature=1.0,
        learning_rate=args.lr,
        beta=0.0,
        max_steps=args.steps + 1,
        shuffle_dataset=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=0,
    )
    clock = Clock()
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=config,
        train_dataset=Dataset.from_list([{"prompt": r.prompt} for r in rows]),
        processing_class=tokenizer,
        callbacks=[clock],
    )
    try:
        trainer.train()
    finally:
        checker.close()
    # Steps after the first: from the end of step 1 to the end of the last step.
    (t0, k0), (t1, k1) = clock.marks[1], clock.marks[-1]
    return {"tokens": k1 - k0, "seconds": t1 - t0, "tokens_per_s": (k1 - k0) / (t1 - t0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after 1 warm-up)")
    parser.add_argument("--prompts", type=int, default=32, help="prompts per step")
    parser.add_argument("--n", type=int, default=8, help="samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--placement", choices=["collocated", "disaggregated"], default="collocated"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(build_tiny_causal_lm(f"{tmp}/model", TinyLMConfig()))
        print(
            f"tiny Qwen2 {TinyLMConfig()}, {args.prompts} prompts x {args.n} samples, "
            f"{args.max_new_tokens} new tokens, {args.steps} timed steps, {os.cpu_count()} CPUs"
        )
        ours = run_rlinf(args, model_dir)
        print(
            f"rlinf ({args.placement}): {ours['tokens_per_s']:.0f} tokens/s "
            f"({ours['tokens']:.0f} tokens in {ours['seconds']:.1f}s)",
            flush=True,
        )
        trl = run_trl(args, model_dir, f"{tmp}/trl")
        print(
            f"TRL GRPOTrainer:  {trl['tokens_per_s']:.0f} tokens/s "
            f"({trl['tokens']:.0f} tokens in {trl['seconds']:.1f}s)"
        )
        print(
            f"ratio rlinf / TRL: {ours['tokens_per_s'] / trl['tokens_per_s']:.2f}x (goal >= 1.5x)"
        )


if __name__ == "__main__":
    main()
