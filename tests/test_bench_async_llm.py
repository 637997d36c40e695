"""``benchmarks/async_llm.py``'s pure parts: the summary per k (ratio per round then the
median, accuracy difference of means) and the overrides each app's runs get. Checked
against numbers worked out by hand; no run is started."""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys

_PATH = pathlib.Path(__file__).parents[1] / "benchmarks" / "async_llm.py"
_SPEC = importlib.util.spec_from_file_location("bench_async_llm", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = bench
_SPEC.loader.exec_module(bench)


def _row(tps: float, acc: float, stale: float = 0.0, mixed: float = 0.0) -> dict:
    return {
        "tokens_per_s": tps,
        "accuracy": acc,
        "staleness_max": stale,
        "mixed": mixed,
        "requeued": 0.0,
    }


def test_summary_takes_the_ratio_per_round_then_the_median():
    runs = {
        0: [_row(100, 0.50), _row(200, 0.60), _row(50, 0.40)],
        1: [_row(150, 0.40, 1, 0.2), _row(200, 0.70, 1, 0.4), _row(150, 0.45, 1, 0.0)],
    }
    k0, k1 = bench.summary(runs)
    # k=0: median of 100, 200, 50 = 100; ratio to itself 1; mean accuracy 0.5.
    assert k0.startswith("k=0:     100 tokens/s (1.00x k=0)  accuracy 0.500 (+0.000")
    # k=1: median 150; ratios 1.5, 1.0, 3.0 -> median 1.5; mean accuracy 0.5167 -> +0.017.
    assert "150 tokens/s (1.50x k=0)  accuracy 0.517 (+0.017 vs k=0)" in k1
    assert "staleness_max 1  mixed 0.20  requeued 0.00" in k1


def test_summary_pairs_rounds_not_medians():
    # Per round: ratios 2, 2, 0.25, 0.25 -> median (2 + 0.25) / 2 = 1.125.
    runs = {
        0: [_row(10, 0.0), _row(20, 0.0), _row(400, 0.0), _row(800, 0.0)],
        1: [_row(20, 0.0), _row(40, 0.0), _row(100, 0.0), _row(200, 0.0)],
    }
    # The medians' ratio would say 0.33x: k=0 (20 + 400) / 2 = 210, k=1 (40 + 100) / 2 = 70.
    assert "70 tokens/s (1.12x k=0)" in bench.summary(runs)[1]


def _args(app: str, tokens: int | None, partial: str = "off") -> argparse.Namespace:
    return argparse.Namespace(
        app=app,
        n=8,
        max_new_tokens=tokens,
        prompts=8,
        steps=6,
        eval_prompts=32,
        correction="decoupled",
        partial_mode=partial,
        update_interval=4,
    )


def test_overrides_per_app_and_k():
    math = bench.overrides(_args("math", 12), "/m", 0, 3)
    assert "generation.max_new_tokens=12" in math
    assert "runner.seed=3" in math and "runner.max_staleness=0" in math
    assert not any(o.startswith("algo.off_policy_correction") for o in math)  # k=0 as shipped
    agentic = bench.overrides(_args("agentic", None, "abort"), "/m", 1, 0)
    # Agentic keeps its preset's per-turn length; k > 0 adds the correction and partial mode.
    assert not any(o.startswith("generation.max_new_tokens") for o in agentic)
    assert "algo.off_policy_correction=decoupled" in agentic
    assert "runner.partial_mode=abort" in agentic
    assert "runner.update_interval_tokens=4" in agentic
    assert bench.APPS["agentic"][:2] == ("rlinf-agentic", "search_disaggregated")
