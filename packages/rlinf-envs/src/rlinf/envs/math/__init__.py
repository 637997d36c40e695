"""rlinf.envs.math: the text-side math task.

* Data: :class:`MathRow` rows (prompt, ground-truth answer, id, metadata) from JSONL,
  Parquet or a Hugging Face dataset on disk (:class:`MathDataConfig`,
  :func:`load_math_rows`); malformed rows raise :class:`MathDataError` naming file and line.
  :class:`PromptIterator` walks them in a seeded order with a resumable state.
* Answers: :func:`extract_answer` (last well-formed ``\\boxed{}``; a failed box is no
  answer; only a response without any box falls back to its last number) and
  :class:`MathChecker`, which checks with math-verify in a pool of worker processes with a
  hard per-answer timeout (a stuck check scores 0, is counted, and its worker is replaced).
* Synthetic task: :func:`generate_arithmetic` makes integer arithmetic problems with
  disjoint train / held-out splits; :func:`write_math_jsonl` saves them for the loader.

Importing the package starts no process and does not import math-verify or datasets.
"""

from ._checker import STATUSES, CheckResult, CheckStatus, MathChecker, MathCheckerConfig
from ._data import MathDataConfig, load_math_rows, write_math_jsonl
from ._extract import Extraction, extract_answer, extract_boxed, extract_last_number
from ._pool import PoolError, TaskOutcome, TimeoutPool
from ._rows import MathDataError, MathRow
from ._sampler import PromptIterator
from ._synthetic import ARITHMETIC_PRESETS, ArithmeticConfig, generate_arithmetic, split_of
from ._verify import MathVerifyCheck

__all__ = [
    "ARITHMETIC_PRESETS",
    "STATUSES",
    "ArithmeticConfig",
    "CheckResult",
    "CheckStatus",
    "Extraction",
    "MathChecker",
    "MathCheckerConfig",
    "MathDataConfig",
    "MathDataError",
    "MathRow",
    "MathVerifyCheck",
    "PoolError",
    "PromptIterator",
    "TaskOutcome",
    "TimeoutPool",
    "extract_answer",
    "extract_boxed",
    "extract_last_number",
    "generate_arithmetic",
    "load_math_rows",
    "split_of",
    "write_math_jsonl",
]
