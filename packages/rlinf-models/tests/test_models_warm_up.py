"""The trainers' ``warm_up`` leaves nothing for their first optimizer to import."""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = """
import sys
import torch
from rlinf.models.embodied import EmbodiedActorWorker, OffPolicyLearnerWorker
assert "torch._dynamo" not in sys.modules, "imported before warm_up"
getattr({cls}, "warm_up")()
before = set(sys.modules)
torch.optim.Adam(torch.nn.Linear(2, 2).parameters(), lr=1e-3)
print(sorted(set(sys.modules) - before))
"""


@pytest.mark.parametrize("cls", ["EmbodiedActorWorker", "OffPolicyLearnerWorker"])
def test_trainer_warm_up_imports_what_the_first_optimizer_needs(cls):
    # A fresh process: this one may have built optimizers already.
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(cls=cls)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
